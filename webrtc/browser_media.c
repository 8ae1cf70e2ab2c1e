/* The per-packet half of the browser's media: see browser_media.h. */
#include "webrtc/browser_media.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <glib.h>

#include "webrtc/demux.h"
#include "webrtc/udp_batch.h"

struct browser_media {
  ice_agent *ice;           /* borrowed: libnice's send without a socket */
  srtp_leg *srtp;           /* NULL until keyed */
  int fd;                   /* the pair, connected; -1: none */
  struct sockaddr_storage peer; /* where it is connected to */
  socklen_t peer_len;
  gint64 last_rx;
  stun_responder stun;
  browser_media_fn on_rtp, on_rtcp;
  browser_media_dtls_fn on_dtls;
  void *user, *dtls_user;
  browser_media_stats stats;
};

int browser_media_new(ice_agent *ice, browser_media **ret)
{
  browser_media *m = g_try_new0(browser_media, 1);

  if (!m)
    return -ENOMEM;
  m->ice = ice;
  m->fd = -1;
  *ret = m;
  return 0;
}

void browser_media_free(browser_media *m)
{
  if (!m)
    return;
  if (m->fd >= 0)
    close(m->fd);
  srtp_leg_free(m->srtp);
  g_free(m);
}

void browser_media_set_sink(browser_media *m, browser_media_fn on_rtp, browser_media_fn on_rtcp,
                            void *user)
{
  m->on_rtp = on_rtp;
  m->on_rtcp = on_rtcp;
  m->user = user;
}

void browser_media_set_dtls_sink(browser_media *m, browser_media_dtls_fn on_dtls, void *user)
{
  m->on_dtls = on_dtls;
  m->dtls_user = user;
}

void browser_media_set_srtp(browser_media *m, srtp_leg *srtp)
{
  srtp_leg_free(m->srtp);
  m->srtp = srtp;
  m->last_rx = g_get_monotonic_time();
}

gint64 browser_media_last_rx(const browser_media *m)
{
  return m->last_rx;
}

int browser_media_set_socket(browser_media *m, int fd, const char *ufrag, const char *pwd)
{
  if (fd >= 0 && stun_responder_init(&m->stun, ufrag, pwd) < 0)
    return -EINVAL;
  if (m->fd >= 0)
    close(m->fd);
  m->fd = fd;
  m->peer_len = sizeof m->peer;
  if (fd >= 0 && getpeername(fd, (struct sockaddr *)&m->peer, &m->peer_len) < 0)
    m->peer_len = 0;
  return 0;
}

int browser_media_socket(const browser_media *m)
{
  return m->fd;
}

bool browser_media_keyed(const browser_media *m)
{
  return m->srtp != NULL;
}

/* ---- the per-packet path ---- */

static void on_stun(browser_media *m, const uint8_t *data, size_t len)
{
  uint8_t reply[STUN_RESPONDER_MAX_REPLY];
  size_t n;

  m->stats.stun_in++;
  if (m->fd < 0 || m->peer_len == 0 ||
      stun_responder_reply(&m->stun, data, len, (const struct sockaddr *)&m->peer, m->peer_len,
                           reply, sizeof reply, &n) < 0)
    return; /* a late response to libnice's checks, or not for us: nothing to answer */
  if (send(m->fd, reply, n, MSG_DONTWAIT) == (ssize_t)n)
    m->stats.stun_replies++;
}

static void handle(browser_media *m, uint8_t *data, size_t len, size_t cap, bool from_socket)
{
  int r;

  switch (demux_classify(data, len)) {
  case DEMUX_RTP:
    break;
  case DEMUX_DTLS:
    if (m->on_dtls)
      m->on_dtls(m->dtls_user, data, len);
    return;
  case DEMUX_STUN:
    if (from_socket) {
      on_stun(m, data, len);
      return;
    }
    /* libnice keeps its STUN */
    G_GNUC_FALLTHROUGH;
  default:
    m->stats.malformed_in++;
    return;
  }
  if (G_UNLIKELY(!m->srtp)) {
    m->stats.not_keyed_in++;
    return;
  }
  if (demux_is_rtcp(data, len)) {
    r = srtp_leg_unprotect_rtcp(m->srtp, data, &len);
    if (G_LIKELY(r == 0 && m->on_rtcp)) {
      m->stats.rtcp_in++;
      m->stats.rtcp_in_bytes += len;
      m->on_rtcp(m->user, data, len, cap);
      return;
    }
  } else {
    r = srtp_leg_unprotect(m->srtp, data, &len);
    if (G_LIKELY(r == 0 && m->on_rtp)) {
      m->stats.rtp_in++;
      m->stats.rtp_in_bytes += len;
      m->on_rtp(m->user, data, len, cap);
      return;
    }
  }
  if (r == -EBADMSG)
    m->stats.auth_failures++;
  else if (r == -EALREADY)
    m->stats.replays++;
  else
    m->stats.malformed_in++;
}

unsigned browser_media_drain(browser_media *m)
{
  udp_batch *b = udp_batch_for_thread();
  int err;
  unsigned n;

  if (m->fd < 0)
    return 0;
  n = udp_batch_recv(b, m->fd, &err);
  if (G_UNLIKELY(err == ECONNREFUSED))
    m->stats.peer_unreachable++;
  if (n)
    m->last_rx = g_get_monotonic_time();
  for (unsigned i = 0; i < n; i++) {
    size_t len = b->msgs[i].msg_len;
    if (G_UNLIKELY(len > UDP_MAX_PACKET)) {
      m->stats.malformed_in++;
      continue;
    }
    handle(m, b->buf[i], len, UDP_BATCH_SLOT, true);
  }
  return n;
}

void browser_media_receive(browser_media *m, uint8_t *data, size_t len, size_t cap)
{
  m->last_rx = g_get_monotonic_time();
  handle(m, data, len, cap, false);
}

static int send_protected(browser_media *m, uint8_t *buf, size_t len, size_t cap, bool rtcp)
{
  int r;

  if (G_UNLIKELY(!m->srtp)) {
    m->stats.not_keyed_out++;
    return -ENOTCONN;
  }
  r = rtcp ? srtp_leg_protect_rtcp(m->srtp, buf, &len, cap) : srtp_leg_protect(m->srtp, buf, &len, cap);
  if (G_LIKELY(r == 0)) {
    if (G_LIKELY(m->fd >= 0))
      r = send(m->fd, buf, len, MSG_DONTWAIT) == (ssize_t)len ? 0 : -EAGAIN;
    else
      r = ice_agent_send_mt(m->ice, buf, len);
  }
  if (G_UNLIKELY(r < 0)) {
    m->stats.send_failed++;
    return r;
  }
  if (rtcp) {
    m->stats.rtcp_out++;
    m->stats.rtcp_out_bytes += len;
  } else {
    m->stats.rtp_out++;
    m->stats.rtp_out_bytes += len;
  }
  return 0;
}

int browser_media_send_rtp(browser_media *m, uint8_t *buf, size_t len, size_t cap)
{
  return send_protected(m, buf, len, cap, false);
}

int browser_media_send_rtcp(browser_media *m, uint8_t *buf, size_t len, size_t cap)
{
  return send_protected(m, buf, len, cap, true);
}

void browser_media_get_stats(const browser_media *m, browser_media_stats *out)
{
  *out = m->stats;
}
