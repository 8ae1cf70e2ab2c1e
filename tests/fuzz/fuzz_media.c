/* Fuzz target: the media path of a call -- the demultiplexer (webrtc/demux.h,
 * RFC 7983) and the browser leg's receive path (webrtc/browser_leg.c: DTLS,
 * SRTP, drops), the PBX's RTP socket (webrtc/rtp_socket.c, real UDP on
 * 127.0.0.1), the bridge (gateway/media_bridge.c: PT map, sequence offsets,
 * hold, RFC 4733 events through gateway/rfc4733.c, echo mode) and SRTP
 * (webrtc/srtp.c).
 *
 * Input: one mode byte, then records of [op][length: 2 bytes, big endian]
 * [that many bytes] (a length past the end takes the rest).  Mode: bit 0
 * echo (no PBX socket), bit 1 AEAD_AES_128_GCM instead of AES_CM_128 for the
 * SRTP records, bit 2 RFC 4733 payload types set (browser 126/48000, PBX
 * 101/8000), bit 3 a PT map (111 <-> 0, 9 <-> 9, 126 <-> 101).  Ops (op % 9):
 *
 *   0  a datagram to the bridge's RTP port from the PBX (UDP)
 *   1  the same to its RTCP port
 *   2  a datagram from the browser's ICE pair (browser_leg_inject: demux,
 *      DTLS to the DTLS server, SRTP before keys: dropped)
 *   3  plaintext RTP/RTCP from the browser, as the leg hands it over after
 *      SRTP (media_bridge_receive; RTCP by the second byte, RFC 5761)
 *   4  plaintext RTP from the PBX (what its socket hands over)
 *   5  plaintext RTCP from the PBX
 *   6  control: byte 0 picks set_sending, forward_dtmf, send_dtmf, set_dtmf,
 *      set_pt_map; the next bytes are its arguments
 *   7  SRTP round trip: protect with one leg, unprotect with its peer, which
 *      must give the packet back unchanged
 *   8  SRTP/SRTCP from the network: unprotect arbitrary bytes
 *
 * A new bridge, browser leg and SRTP legs for every input; the RTP socket and
 * the UDP sockets playing the PBX live as long as the process (the remote is
 * set again per input, which drops any latch). */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <glib.h>

#include "config/log.h"
#include "gateway/media_bridge.h"
#include "webrtc/browser_leg.h"
#include "webrtc/demux.h"
#include "webrtc/dtls.h"
#include "webrtc/rtp_socket.h"
#include "webrtc/srtp.h"
#include "tests/fuzz/fuzz_common.h"

#define MAX_PACKET 1500
#define BUF_CAP (MAX_PACKET + SRTP_LEG_MAX_TRAILER)

enum { MODE_ECHO = 1, MODE_GCM = 2, MODE_DTMF = 4, MODE_PT_MAP = 8 };
enum {
  OP_PBX_UDP_RTP, OP_PBX_UDP_RTCP, OP_BROWSER_DATAGRAM, OP_BROWSER_PLAIN, OP_PBX_PLAIN_RTP,
  OP_PBX_PLAIN_RTCP, OP_CONTROL, OP_SRTP_ROUND_TRIP, OP_SRTP_UNPROTECT, OP_COUNT
};

static const char *const loopback[] = {"127.0.0.1", NULL};

static struct {
  bool ready;
  dtls_identity *id;
  rtp_socket *rs;
  int pbx_rtp, pbx_rtcp;       /* the PBX's sockets: send from, receive what the bridge sends */
  uint16_t pbx_rtp_port, pbx_rtcp_port;
  struct sockaddr_in to_rtp, to_rtcp; /* the bridge's RTP and RTCP ports */
  unsigned dtmf_reports;
} g;

static int udp_socket(uint16_t *port)
{
  struct sockaddr_in sin = {.sin_family = AF_INET};
  socklen_t len = sizeof sin;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  FUZZ_CHECK(fd >= 0);
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  FUZZ_CHECK(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
  FUZZ_CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
  *port = ntohs(sin.sin_port);
  return fd;
}

static struct sockaddr_in loopback_port(uint16_t port)
{
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  return sin;
}

static void init(void)
{
  const char *level = g_getenv("RTCSIPD_FUZZ_LOG");

  log_set_level(level ? log_level_from_string(level) : LOG_ERR);
  FUZZ_CHECK(dtls_identity_new(&g.id) == 0);
  g.pbx_rtp = udp_socket(&g.pbx_rtp_port);
  g.pbx_rtcp = udp_socket(&g.pbx_rtcp_port);
  /* the bridge's socket: any free even pair in a range no test uses */
  rtp_socket_settings rss = {.local_address = "127.0.0.1", .port_min = 46000, .port_max = 47999};
  int r = rtp_socket_new(&rss, &g.rs);
  if (r < 0) {
    rss.port_min = 30000, rss.port_max = 60999;
    r = rtp_socket_new(&rss, &g.rs);
  }
  FUZZ_CHECK(r == 0);
  g.to_rtp = loopback_port(rtp_socket_local_port(g.rs));
  g.to_rtcp = loopback_port((uint16_t)(rtp_socket_local_port(g.rs) + 1));
  g.ready = true;
}

static void drain(int fd)
{
  uint8_t buf[2048];
  while (recv(fd, buf, sizeof buf, 0) > 0)
    ;
}

static void run_loop(void)
{
  for (int i = 0; i < 4 && g_main_context_iteration(NULL, FALSE); i++)
    ;
}

static void on_dtmf(void *user, bool from_browser, char digit, unsigned duration_ms)
{
  FUZZ_CHECK((digit >= '0' && digit <= '9') || digit == '*' || digit == '#' ||
             (digit >= 'A' && digit <= 'D'));
  g.dtmf_reports++;
}

static void on_timeout(void *user)
{
}

static const media_bridge_callbacks bridge_cb = {.on_timeout = on_timeout, .on_dtmf = on_dtmf};

static void leg_failed(void *user, const char *why)
{
  FUZZ_CHECK(why);
}

static const browser_leg_callbacks leg_cb = {.on_failed = leg_failed};

/* ---- SRTP: two legs with each other's keys ---- */

typedef struct {
  srtp_leg *a, *b; /* a protects what b unprotects */
} srtp_pair;

static void srtp_pair_make(srtp_pair *p, bool gcm)
{
  dtls_srtp_keys k = {
    .profile = gcm ? DTLS_SRTP_AEAD_AES_128_GCM : DTLS_SRTP_AES128_CM_SHA1_80,
    .key_len = 16,
    .salt_len = gcm ? 12 : 14,
  };
  for (unsigned i = 0; i < sizeof k.local_key; i++)
    k.local_key[i] = (uint8_t)(i * 7 + 1), k.remote_key[i] = (uint8_t)(i * 11 + 3);
  for (unsigned i = 0; i < sizeof k.local_salt; i++)
    k.local_salt[i] = (uint8_t)(i * 5 + 2), k.remote_salt[i] = (uint8_t)(i * 13 + 4);
  FUZZ_CHECK(srtp_leg_new(&k, &p->a) == 0);
  uint8_t t[DTLS_SRTP_MAX_KEY_LEN];
  memcpy(t, k.local_key, sizeof t), memcpy(k.local_key, k.remote_key, sizeof t), memcpy(k.remote_key, t, sizeof t);
  uint8_t s[DTLS_SRTP_MAX_SALT_LEN];
  memcpy(s, k.local_salt, sizeof s), memcpy(k.local_salt, k.remote_salt, sizeof s), memcpy(k.remote_salt, s, sizeof s);
  FUZZ_CHECK(srtp_leg_new(&k, &p->b) == 0);
}

static void srtp_round_trip(srtp_pair *p, const uint8_t *data, size_t len)
{
  uint8_t buf[BUF_CAP], orig[MAX_PACKET];
  size_t n = len;
  bool rtcp = demux_is_rtcp(data, len);

  memcpy(buf, data, len);
  memcpy(orig, data, len);
  int r = rtcp ? srtp_leg_protect_rtcp(p->a, buf, &n, sizeof buf) : srtp_leg_protect(p->a, buf, &n, sizeof buf);
  FUZZ_CHECK(r == 0 || r == -EINVAL);
  if (r < 0)
    return;
  FUZZ_CHECK(n > len && n <= len + SRTP_LEG_MAX_TRAILER);
  r = rtcp ? srtp_leg_unprotect_rtcp(p->b, buf, &n) : srtp_leg_unprotect(p->b, buf, &n);
  /* a replayed index (the same sequence number twice in one input) is refused */
  FUZZ_CHECK(r == 0 || r == -EALREADY);
  if (r == 0)
    FUZZ_CHECK(n == len && memcmp(buf, orig, len) == 0);
}

static void srtp_unprotect_any(srtp_pair *p, const uint8_t *data, size_t len)
{
  uint8_t buf[BUF_CAP];
  size_t n = len;

  memcpy(buf, data, len);
  int r = demux_is_rtcp(data, len) ? srtp_leg_unprotect_rtcp(p->b, buf, &n) : srtp_leg_unprotect(p->b, buf, &n);
  FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EALREADY || r == -EINVAL);
  FUZZ_CHECK(r < 0 ? n == len : n <= len);
}

/* ---- control ---- */

static const unsigned rates[] = {8000, 16000, 48000, 0};

static void control(media_bridge *b, const uint8_t *d, size_t len)
{
  if (len == 0)
    return;
  uint8_t arg = len > 1 ? d[1] : 0;
  switch (d[0] % 5) {
  case 0:
    media_bridge_set_sending(b, arg & 1, arg & 2);
    break;
  case 1:
    media_bridge_forward_dtmf(b, arg & 1, arg & 2);
    break;
  case 2: {
    unsigned ms = len > 3 ? (unsigned)(d[2] << 8 | d[3]) : 0;
    int r = media_bridge_send_dtmf(b, arg & 0x80, (char)(arg & 0x7f), ms);
    FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOTCONN || r == -ENOBUFS);
    break;
  }
  case 3: {
    /* PTs as signed bytes (-1: none, and out-of-range ones), rates from the table */
    media_bridge_dtmf_settings s = {
      .browser_pt = (int8_t)arg,
      .pbx_pt = len > 2 ? (int8_t)d[2] : -1,
      .browser_rate = rates[(len > 3 ? d[3] : 0) % G_N_ELEMENTS(rates)],
      .pbx_rate = rates[(len > 3 ? d[3] >> 4 : 0) % G_N_ELEMENTS(rates)],
    };
    int r = media_bridge_set_dtmf(b, &s);
    FUZZ_CHECK(r == 0 || r == -EINVAL);
    break;
  }
  case 4: {
    media_bridge_pt_pair pairs[MEDIA_BRIDGE_MAX_PT_PAIRS + 1];
    size_t n = MIN((len - 1) / 2, G_N_ELEMENTS(pairs));
    for (size_t i = 0; i < n; i++)
      pairs[i] = (media_bridge_pt_pair){d[1 + 2 * i], d[2 + 2 * i]};
    int r = media_bridge_set_pt_map(b, pairs, n);
    FUZZ_CHECK(r == 0 || r == -EINVAL);
    break;
  }
  }
}

/* ---- one input ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  media_bridge *b = NULL;
  browser_leg *leg = NULL;
  srtp_pair sp = {0};
  uint8_t buf[BUF_CAP];

  if (!g.ready)
    init();
  if (size < 1)
    return 0;
  uint8_t mode = data[0];
  bool echo = mode & MODE_ECHO;

  browser_leg_settings ls = {
    .role = DTLS_ROLE_SERVER,
    .ice = {.local_addresses = loopback, .port_min = 48000, .port_max = 48999, .log_id = "fuzz"},
  };
  FUZZ_CHECK(browser_leg_new(g.id, &ls, &leg_cb, NULL, &leg) == 0);
  FUZZ_CHECK(rtp_socket_set_remote(g.rs, "127.0.0.1", g.pbx_rtp_port, g.pbx_rtcp_port) == 0);
  media_bridge_settings bs = {.timeout_ms = 30000, .log_id = "fuzz"};
  FUZZ_CHECK(media_bridge_new(browser_leg_media(leg), echo ? NULL : g.rs, &bs, &bridge_cb, NULL, &b) == 0);
  if (mode & MODE_DTMF) {
    media_bridge_dtmf_settings s = {.browser_pt = 126, .pbx_pt = 101, .browser_rate = 48000, .pbx_rate = 8000};
    FUZZ_CHECK(media_bridge_set_dtmf(b, &s) == 0);
  }
  if (mode & MODE_PT_MAP) {
    static const media_bridge_pt_pair map[] = {{111, 0}, {9, 9}, {126, 101}};
    FUZZ_CHECK(media_bridge_set_pt_map(b, map, G_N_ELEMENTS(map)) == 0);
  }

  for (const uint8_t *p = data + 1, *end = data + size; p < end;) {
    uint8_t op = p[0] % OP_COUNT;
    size_t len = p + 3 <= end ? (size_t)(p[1] << 8 | p[2]) : 0;
    const uint8_t *d = MIN(p + 3, end);
    len = MIN(len, (size_t)(end - d));
    len = MIN(len, (size_t)MAX_PACKET);
    p = d + len;

    switch (op) {
    case OP_PBX_UDP_RTP:
    case OP_PBX_UDP_RTCP: {
      int fd = op == OP_PBX_UDP_RTP ? g.pbx_rtp : g.pbx_rtcp;
      const struct sockaddr_in *to = op == OP_PBX_UDP_RTP ? &g.to_rtp : &g.to_rtcp;
      (void)sendto(fd, d, len, 0, (const struct sockaddr *)to, sizeof *to);
      run_loop();
      break;
    }
    case OP_BROWSER_DATAGRAM:
      if (len == 0)
        break;
      memcpy(buf, d, len);
      browser_leg_inject(leg, buf, len);
      break;
    case OP_BROWSER_PLAIN: {
      /* what srtp_leg_unprotect lets through: RTP >= 12 bytes, RTCP >= 8 */
      bool rtcp = demux_is_rtcp(d, len);
      if (demux_classify(d, len) != DEMUX_RTP || len < (rtcp ? 8u : 12u))
        break;
      memcpy(buf, d, len);
      media_bridge_receive(b, true, rtcp, buf, len, len + SRTP_LEG_MAX_TRAILER);
      break;
    }
    case OP_PBX_PLAIN_RTP:
    case OP_PBX_PLAIN_RTCP:
      /* what rtp_socket.c lets through: 8..1500 bytes, RTP's first byte */
      if (echo || len < 8 || demux_classify(d, len) != DEMUX_RTP)
        break;
      memcpy(buf, d, len);
      media_bridge_receive(b, false, op == OP_PBX_PLAIN_RTCP, buf, len, len + SRTP_LEG_MAX_TRAILER);
      break;
    case OP_CONTROL:
      control(b, d, len);
      break;
    case OP_SRTP_ROUND_TRIP:
    case OP_SRTP_UNPROTECT:
      if (!sp.a)
        srtp_pair_make(&sp, mode & MODE_GCM);
      if (op == OP_SRTP_ROUND_TRIP)
        srtp_round_trip(&sp, d, len);
      else
        srtp_unprotect_any(&sp, d, len);
      break;
    }
  }

  media_bridge_stats st;
  media_bridge_get_stats(b, &st);
  browser_media_stats lst;
  rtp_socket_stats rst;
  browser_media_get_stats(browser_leg_media(leg), &lst);
  rtp_socket_get_stats(g.rs, &rst);
  g_autofree char *summary = media_bridge_summary(&lst, echo ? NULL : &rst, &st);
  FUZZ_CHECK(summary);
  media_bridge_free(b);
  browser_leg_free(leg);
  srtp_leg_free(sp.a);
  srtp_leg_free(sp.b);
  drain(g.pbx_rtp);
  drain(g.pbx_rtcp);
  run_loop(); /* datagrams still queued for the RTP socket: no sink now, dropped */
  return 0;
}
