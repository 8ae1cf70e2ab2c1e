/* Plain RTP/RTCP toward the PBX: see rtp_socket.h. */
#include "webrtc/rtp_socket.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <glib-unix.h>

#include "webrtc/demux.h"
#include "webrtc/rtp_source.h"
#include "webrtc/srtp.h"
#include "webrtc/udp_batch.h"

#define RTP_MAX_PACKET UDP_MAX_PACKET

typedef struct {
  struct sockaddr_storage addr; /* the SDP's, or the latched one */
  socklen_t len;                /* 0: no SDP in force */
  bool latched;
} peer_addr;

struct rtp_socket {
  int fd[2];             /* RTP, RTCP (-1 with rtcp-mux) */
  GSource *source[2];
  GMainContext *context;
  uint16_t port;
  bool mux;
  peer_addr remote[2];   /* where RTP, RTCP go, and whom they are taken from */
  peer_addr sdp[2];      /* what the SDP named (set_remote), len 0: none */
  rtp_source_policy policy; /* its trusted networks: owned */
  rtp_socket_media_fn on_rtp, on_rtcp;
  void *user;
  rtp_socket_stats stats;
};

static int parse_address(const char *text, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

  memset(ss, 0, sizeof *ss);
  if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    *len = sizeof *sin;
    return 0;
  }
  if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    *len = sizeof *sin6;
    return 0;
  }
  return -EINVAL;
}

static int bind_one(const struct sockaddr_storage *base, socklen_t len, uint16_t port)
{
  struct sockaddr_storage ss = *base;
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -errno;
  if (ss.ss_family == AF_INET)
    ((struct sockaddr_in *)&ss)->sin_port = htons(port);
  else
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
    int r = -errno;
    close(fd);
    return r;
  }
  return fd;
}

/* Packets read per wakeup at most: one busy socket must not starve the
 * others (and, on the main loop, signalling).  Readiness is level-triggered:
 * what is left wakes the reader again at once. */
#define RTP_MAX_PER_WAKEUP (2 * UDP_BATCH)

/* Media hot path: one datagram of N bytes in BUF (capacity CAP) from FROM. */
static inline void handle(rtp_socket *s, bool is_rtcp_socket, uint8_t *buf, size_t n, size_t cap,
                          const struct sockaddr_storage *from, socklen_t from_len)
{
  if (G_UNLIKELY(n > RTP_MAX_PACKET || n < 8 || demux_classify(buf, n) != DEMUX_RTP)) {
    s->stats.drops_in++;
    return;
  }
  bool rtcp = is_rtcp_socket || (s->mux && demux_is_rtcp(buf, n));
  peer_addr *p = &s->remote[rtcp];
  rtp_socket_media_fn fn = rtcp ? s->on_rtcp : s->on_rtp;
  rtp_source_verdict v = rtp_source_check(&s->policy, p->len ? (const struct sockaddr *)&p->addr : NULL,
                                          p->latched, (const struct sockaddr *)from);

  if (G_UNLIKELY(v != RTP_SOURCE_ACCEPT)) {
    if (v == RTP_SOURCE_REJECT) {
      s->stats.rejected_source++;
      memcpy(&s->stats.last_rejected, from, from_len);
      return;
    }
    memcpy(&p->addr, from, from_len); /* RTP_SOURCE_LEARN: hold it */
    p->len = from_len;
    p->latched = true;
  }
  if (G_UNLIKELY(!fn)) {
    s->stats.drops_in++;
    return;
  }
  if (rtcp) {
    s->stats.rtcp_in++;
    s->stats.rtcp_in_bytes += (uint64_t)n;
  } else {
    s->stats.rtp_in++;
    s->stats.rtp_in_bytes += (uint64_t)n;
  }
  fn(s->user, buf, n, cap);
}

unsigned rtp_socket_drain(rtp_socket *s, unsigned i)
{
  udp_batch *b = udp_batch_for_thread();
  unsigned total = 0, n;
  int err;

  if (i > 1 || s->fd[i] < 0)
    return 0;
  do {
    n = udp_batch_recv(b, s->fd[i], &err);
    for (unsigned k = 0; k < n; k++)
      handle(s, i == 1, b->buf[k], b->msgs[k].msg_len, UDP_BATCH_SLOT, &b->from[k],
             b->msgs[k].msg_hdr.msg_namelen);
    total += n;
  } while (n == UDP_BATCH && total < RTP_MAX_PER_WAKEUP);
  return total;
}

int rtp_socket_fd(const rtp_socket *s, unsigned i)
{
  return i > 1 ? -1 : s->fd[i];
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer data)
{
  rtp_socket *s = data;

  (void)cond;
  rtp_socket_drain(s, fd == s->fd[1]);
  return G_SOURCE_CONTINUE;
}

static void attach(rtp_socket *s, int i)
{
  s->source[i] = g_unix_fd_source_new(s->fd[i], G_IO_IN);
  g_source_set_callback(s->source[i], G_SOURCE_FUNC(on_readable), s, NULL);
  g_source_attach(s->source[i], s->context);
}

/* Where the search for a free port pair starts: round robin over the
 * range.  From port_min each time, a new call walked past every pair in
 * use (a socket, a failed bind and a close each): with 800 calls up that
 * was most of the main loop's time.  It also keeps a pair just freed from
 * being taken by the very next call (late packets of the call before). */
static atomic_uint next_pair;

int rtp_socket_new(const rtp_socket_settings *settings, rtp_socket **ret)
{
  struct sockaddr_storage base;
  socklen_t len;

  g_return_val_if_fail(settings && ret, -EINVAL);
  if (settings->port_min > settings->port_max ||
      parse_address(settings->local_address ? settings->local_address : "0.0.0.0", 0, &base, &len) < 0)
    return -EINVAL;

  uint32_t first = (settings->port_min + 1u) & ~1u;
  uint32_t last = (uint32_t)settings->port_max - (settings->rtcp_mux ? 0 : 1);
  uint32_t pairs = last >= first ? (last - first) / 2 + 1 : 0;
  uint32_t start = pairs ? atomic_fetch_add(&next_pair, 1) % pairs : 0;

  for (uint32_t i = 0; i < pairs; i++) {
    uint32_t k = (start + i) % pairs, port = first + 2 * k;
    int rtp = bind_one(&base, len, (uint16_t)port), rtcp = -1;
    if (rtp < 0)
      continue;
    if (!settings->rtcp_mux && (rtcp = bind_one(&base, len, (uint16_t)(port + 1))) < 0) {
      close(rtp);
      continue;
    }
    rtp_socket *s = g_new0(rtp_socket, 1);
    s->fd[0] = rtp;
    s->fd[1] = rtcp;
    s->port = (uint16_t)port;
    s->mux = settings->rtcp_mux;
    s->policy.mode = settings->source;
    if (settings->n_trusted) {
      s->policy.trusted = g_memdup2(settings->trusted, settings->n_trusted * sizeof *settings->trusted);
      s->policy.n_trusted = settings->n_trusted;
    }
    s->context = settings->context ? g_main_context_ref(settings->context) : g_main_context_ref_thread_default();
    attach(s, 0);
    if (rtcp >= 0)
      attach(s, 1);
    atomic_store(&next_pair, k + 1);
    *ret = s;
    return 0;
  }
  return -EADDRINUSE;
}

void rtp_socket_detach(rtp_socket *s)
{
  for (int i = 0; i < 2; i++) {
    if (s->source[i]) {
      g_source_destroy(s->source[i]);
      g_source_unref(s->source[i]);
      s->source[i] = NULL;
    }
  }
}

void rtp_socket_free(rtp_socket *s)
{
  if (!s)
    return;
  rtp_socket_detach(s);
  for (int i = 0; i < 2; i++)
    if (s->fd[i] >= 0)
      close(s->fd[i]);
  g_main_context_unref(s->context);
  g_free((config_network *)s->policy.trusted);
  g_free(s);
}

void rtp_socket_set_sink(rtp_socket *s, rtp_socket_media_fn on_rtp, rtp_socket_media_fn on_rtcp, void *user)
{
  s->on_rtp = on_rtp;
  s->on_rtcp = on_rtcp;
  s->user = user;
}

uint16_t rtp_socket_local_port(const rtp_socket *s)
{
  return s->port;
}

int rtp_socket_set_remote(rtp_socket *s, const char *address, uint16_t rtp_port, uint16_t rtcp_port)
{
  peer_addr p[2] = {0};

  if (!address || rtp_port == 0)
    return -EINVAL;
  if (rtcp_port == 0)
    rtcp_port = s->mux ? rtp_port : (uint16_t)(rtp_port + 1);
  if (parse_address(address, rtp_port, &p[0].addr, &p[0].len) < 0 ||
      parse_address(address, rtcp_port, &p[1].addr, &p[1].len) < 0)
    return -EINVAL;
  for (int i = 0; i < 2; i++) {
    if (s->sdp[i].len && rtp_source_same((const struct sockaddr *)&s->sdp[i].addr,
                                         (const struct sockaddr *)&p[i].addr))
      continue; /* the same SDP address again: what was learnt stays */
    s->sdp[i] = p[i];
    s->remote[i] = p[i]; /* not latched: latch learns anew */
  }
  return 0;
}

void rtp_socket_clear_remote(rtp_socket *s)
{
  memset(s->sdp, 0, sizeof s->sdp);
  memset(s->remote, 0, sizeof s->remote);
}

static int send_to(rtp_socket *s, int i, const uint8_t *buf, size_t len)
{
  const peer_addr *p = &s->remote[i];
  int fd = s->fd[s->mux ? 0 : i];

  if (G_UNLIKELY(p->len == 0)) {
    s->stats.no_remote++;
    return -ENOTCONN;
  }
  if (G_UNLIKELY(sendto(fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)&p->addr, p->len) != (ssize_t)len)) {
    s->stats.send_failed++;
    return -EAGAIN;
  }
  if (i) {
    s->stats.rtcp_out++;
    s->stats.rtcp_out_bytes += len;
  } else {
    s->stats.rtp_out++;
    s->stats.rtp_out_bytes += len;
  }
  return 0;
}

int rtp_socket_send_rtp(rtp_socket *s, const uint8_t *buf, size_t len)
{
  return send_to(s, 0, buf, len);
}

int rtp_socket_send_rtcp(rtp_socket *s, const uint8_t *buf, size_t len)
{
  return send_to(s, 1, buf, len);
}

void rtp_socket_get_stats(const rtp_socket *s, rtp_socket_stats *out)
{
  *out = s->stats;
}
