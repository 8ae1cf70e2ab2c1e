/* gateway/media_bridge.c with webrtc/browser_leg.c and webrtc/rtp_socket.c on
 * 127.0.0.1: a fake browser made of the same modules (ice_agent controlling,
 * DTLS client, srtp_leg) talks to the bridge's browser leg (ICE controlled,
 * DTLS server); plain UDP sockets play the PBX.  The RTP socket runs with
 * [media] rtp_source = latch and 127.0.0.1 trusted (the PBX sends from
 * other ports than its SDP says), but in the source-sdp test; strangers
 * send from 127.0.0.66 (and from 127.0.0.1's other ports).
 *
 * Ports 31100-31199 (test_ice uses 31000-31049): the bridge's RTP socket
 * 31100-31119, its ICE 31120-31139, the fake browser's ICE 31140-31159, the
 * PBX and the strangers 31160-31199. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <glib.h>

#include "gateway/media_bridge.h"
#include "gateway/rfc4733.h"
#include "webrtc/browser_leg.h"
#include "webrtc/demux.h"
#include "webrtc/dtls.h"
#include "webrtc/ice.h"
#include "webrtc/rtp_socket.h"
#include "webrtc/srtp.h"

#define PACKETS 500
#define PAYLOAD 160
#define BROWSER_PT 111
#define PBX_PT 0
#define BROWSER_DTMF_PT 126
#define PBX_DTMF_PT 101
#define PBX_SDP_PORT 31160 /* what the PBX's SDP says: RTP here, RTCP +1 */
#define PBX_REAL_RTP 31170 /* where it actually sends RTP from */
#define PBX_REAL_RTCP 31173
#define PBX_OTHER_PORT 31175 /* the PBX's address, another port: a spoofer, or a second trusted sender */
#define STRANGER_ADDRESS "127.0.0.66"
#define STRANGER_PORT 31190
#define STRANGER_SSRC 0x6666

static dtls_identity *id_gw, *id_browser;
static dtls_role leg_role = DTLS_ROLE_SERVER; /* the browser takes the other one */
static const char *const loopback[] = {"127.0.0.1", NULL};
static const media_bridge_pt_pair pt_map[] = {{BROWSER_PT, PBX_PT}, {BROWSER_DTMF_PT, PBX_DTMF_PT}};
/* the RTP socket's [media] rtp_source in setup(), and its trusted network */
static rtp_source_mode pbx_source = RTP_SOURCE_LATCH;
static config_network pbx_trusted; /* 127.0.0.1 */

#define CAP_MAX 128

typedef struct {
  uint8_t pt;
  bool marker;
  uint16_t seq;
  uint32_t ts, ssrc;
  size_t len;
  uint8_t payload[4];
} cap_pkt;

static void capture(cap_pkt *cap, unsigned *n, const uint8_t *buf, size_t len)
{
  g_assert_cmpuint(len, >=, 16);
  g_assert_cmpuint(*n, <, CAP_MAX);
  cap_pkt *c = &cap[(*n)++];
  c->pt = buf[1] & 0x7f;
  c->marker = (buf[1] & 0x80) != 0;
  c->seq = (uint16_t)(buf[2] << 8 | buf[3]);
  c->ts = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
  c->ssrc = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 | (uint32_t)buf[10] << 8 | buf[11];
  c->len = len;
  memcpy(c->payload, buf + 12, 4);
}

typedef struct {
  /* the gateway side */
  browser_leg *leg;
  rtp_socket *rs;
  media_bridge *bridge;
  bool gathered, ready, failed, timed_out;
  char *why;
  gint64 timeout_at;
  /* the fake browser */
  ice_agent *ice;
  dtls_session *dtls;
  srtp_leg *srtp;
  bool fb_gathered, fb_failed;
  ice_state fb_state;
  unsigned rx_rtp, rx_rtcp, rx_bad;
  uint16_t rx_next_seq;
  bool late; /* the leg has no fingerprint yet: keyed when the browser is */
  /* what the fake browser's DTLS sent before its ICE was connected: sent
   * once it is (as a browser does), or handed to the leg by the test */
  GPtrArray *fb_unsent;
  gint64 leg_connected_at; /* when the leg's ICE was first seen connected */
  /* the PBX: [0] SDP RTP, [1] SDP RTCP, [2] real RTP, [3] real RTCP */
  int pbx[4];
  unsigned pbx_rx[4], pbx_bad;
  uint16_t pbx_next_seq;
  /* DTMF tests: RTP as each side received it (plaintext), not checked */
  bool capture;
  cap_pkt pbx_cap[CAP_MAX], fb_cap[CAP_MAX];
  unsigned n_pbx_cap, n_fb_cap;
  /* on_dtmf */
  unsigned n_dtmf;
  bool dtmf_from_browser;
  char dtmf_digit;
  unsigned dtmf_ms;
} fixture;

/* ---- packets: RTP with sequence SEQ, PT, PAYLOAD bytes (seq * 7 + i) ---- */

static size_t make_rtp(uint8_t *buf, uint16_t seq, uint8_t pt, uint32_t ssrc)
{
  buf[0] = 0x80;
  buf[1] = pt;
  buf[2] = (uint8_t)(seq >> 8);
  buf[3] = (uint8_t)seq;
  memset(buf + 4, 0, 4);
  buf[8] = (uint8_t)(ssrc >> 24), buf[9] = (uint8_t)(ssrc >> 16), buf[10] = (uint8_t)(ssrc >> 8), buf[11] = (uint8_t)ssrc;
  for (size_t i = 0; i < PAYLOAD; i++)
    buf[12 + i] = (uint8_t)(seq * 7 + i);
  return 12 + PAYLOAD;
}

/* every 10th packet is a DTMF event with the marker bit */
static uint8_t pt_for(uint16_t seq, bool browser_side)
{
  if (seq % 10 == 9)
    return 0x80 | (browser_side ? BROWSER_DTMF_PT : PBX_DTMF_PT);
  return browser_side ? BROWSER_PT : PBX_PT;
}

/* true if BUF is packet SEQ as the given side should see it */
static bool check_rtp(const uint8_t *buf, size_t len, uint16_t seq, bool browser_side)
{
  uint8_t want[12 + PAYLOAD];

  make_rtp(want, seq, pt_for(seq, browser_side), 0);
  return len == sizeof want && buf[1] == want[1] && (uint16_t)(buf[2] << 8 | buf[3]) == seq &&
         memcmp(buf + 12, want + 12, PAYLOAD) == 0;
}

static size_t make_rtcp_rr(uint8_t *buf, uint32_t ssrc)
{
  static const uint8_t rr[8] = {0x80, 201, 0x00, 0x01};
  memcpy(buf, rr, sizeof rr);
  buf[4] = (uint8_t)(ssrc >> 24), buf[5] = (uint8_t)(ssrc >> 16), buf[6] = (uint8_t)(ssrc >> 8), buf[7] = (uint8_t)ssrc;
  return sizeof rr;
}

/* ---- the gateway side's events ---- */

static void leg_gathered(void *user) { ((fixture *)user)->gathered = true; }
static void leg_ready(void *user) { ((fixture *)user)->ready = true; }
static void leg_failed(void *user, const char *why)
{
  fixture *f = user;
  g_assert_false(f->failed);
  f->failed = true;
  f->why = g_strdup(why);
}
static void bridge_timeout(void *user)
{
  fixture *f = user;
  g_assert_false(f->timed_out);
  f->timed_out = true;
  f->timeout_at = g_get_monotonic_time();
}

static void bridge_dtmf(void *user, bool from_browser, char digit, unsigned duration_ms)
{
  fixture *f = user;
  f->n_dtmf++;
  f->dtmf_from_browser = from_browser;
  f->dtmf_digit = digit;
  f->dtmf_ms = duration_ms;
}

static const browser_leg_callbacks leg_cb = {leg_gathered, leg_ready, leg_failed};
static const media_bridge_callbacks bridge_cb = {.on_timeout = bridge_timeout, .on_dtmf = bridge_dtmf};

/* ---- the fake browser ---- */

static void fb_gathered(void *user) { ((fixture *)user)->fb_gathered = true; }
static void fb_state(void *user, ice_state state)
{
  fixture *f = user;
  f->fb_state = state;
  if (state == ICE_CONNECTED) {
    for (guint i = 0; f->fb_unsent && i < f->fb_unsent->len; i++) {
      gsize len;
      const uint8_t *d = g_bytes_get_data(g_ptr_array_index(f->fb_unsent, i), &len);
      (void)ice_agent_send(f->ice, d, len);
    }
    if (f->fb_unsent)
      g_ptr_array_set_size(f->fb_unsent, 0);
    dtls_session_start(f->dtls);
  }
}

static void fb_receive(void *user, uint8_t *data, size_t len)
{
  fixture *f = user;
  uint8_t rr[8], own_rr[8];

  if (demux_classify(data, len) == DEMUX_DTLS) {
    dtls_session_feed(f->dtls, data, len);
    return;
  }
  if (!f->srtp || demux_classify(data, len) != DEMUX_RTP) {
    f->rx_bad++;
    return;
  }
  if (demux_is_rtcp(data, len)) {
    /* the PBX's RR, or the browser's own one reflected in echo mode */
    make_rtcp_rr(own_rr, 0xaaaa);
    if (srtp_leg_unprotect_rtcp(f->srtp, data, &len) == 0 && len == make_rtcp_rr(rr, 0xbbbb) &&
        (memcmp(data, rr, len) == 0 || memcmp(data, own_rr, len) == 0))
      f->rx_rtcp++;
    else
      f->rx_bad++;
    return;
  }
  if (f->capture) {
    g_assert_cmpint(srtp_leg_unprotect(f->srtp, data, &len), ==, 0);
    capture(f->fb_cap, &f->n_fb_cap, data, len);
    return;
  }
  if (srtp_leg_unprotect(f->srtp, data, &len) == 0 && check_rtp(data, len, f->rx_next_seq, true))
    f->rx_rtp++;
  else
    f->rx_bad++;
  f->rx_next_seq++;
}

static void fb_dtls_send(void *user, const uint8_t *data, size_t len)
{
  fixture *f = user;

  if (ice_agent_send(f->ice, data, len) == -ENOTCONN && f->fb_unsent)
    g_ptr_array_add(f->fb_unsent, g_bytes_new(data, len));
}
static void fb_dtls_connected(void *user, const dtls_srtp_keys *keys)
{
  fixture *f = user;
  g_assert_cmpint(srtp_leg_new(keys, &f->srtp), ==, 0);
}
static void fb_dtls_failed(void *user, const char *why) { ((fixture *)user)->fb_failed = true; }

static const ice_callbacks fb_ice_cb = {fb_gathered, fb_state, fb_receive};
static const dtls_callbacks fb_dtls_cb = {fb_dtls_send, fb_dtls_connected, fb_dtls_failed};

/* ---- the PBX ---- */

static int udp_bind_at(const char *address, uint16_t port)
{
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  g_assert_cmpint(fd, >=, 0);
  inet_pton(AF_INET, address, &sin.sin_addr);
  g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof sin), ==, 0);
  return fd;
}

static int udp_bind(uint16_t port)
{
  return udp_bind_at("127.0.0.1", port);
}

static void udp_send(int fd, uint16_t port, const uint8_t *buf, size_t len)
{
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  g_assert_cmpint(sendto(fd, buf, len, 0, (struct sockaddr *)&sin, sizeof sin), ==, (ssize_t)len);
}

/* reads what the PBX's sockets have: RTP is checked in sequence, RTCP against the RR */
static bool pbx_drain(fixture *f)
{
  uint8_t buf[2048], rr[8];
  bool any = false;

  for (int i = 0; i < 4; i++) {
    ssize_t n;
    while ((n = recv(f->pbx[i], buf, sizeof buf, 0)) > 0) {
      any = true;
      f->pbx_rx[i]++;
      if (i == 1 || i == 3) {
        if ((size_t)n != make_rtcp_rr(rr, 0xaaaa) || memcmp(buf, rr, sizeof rr) != 0)
          f->pbx_bad++;
      } else if (f->capture) {
        capture(f->pbx_cap, &f->n_pbx_cap, buf, (size_t)n);
      } else {
        if (!check_rtp(buf, (size_t)n, f->pbx_next_seq, false))
          f->pbx_bad++;
        f->pbx_next_seq++;
      }
    }
  }
  return any;
}

/* ---- running ---- */

static bool run_until(fixture *f, bool (*done)(fixture *), unsigned timeout_ms)
{
  gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

  while (!done(f)) {
    if (g_get_monotonic_time() > end)
      return false;
    bool busy = g_main_context_iteration(NULL, FALSE);
    busy |= pbx_drain(f);
    if (!busy)
      g_usleep(200);
  }
  return true;
}

static bool never(fixture *f) { return false; }
static void run_for(fixture *f, unsigned ms) { run_until(f, never, ms); }

static bool both_gathered(fixture *f) { return f->gathered && f->fb_gathered; }
static bool keyed(fixture *f) { return ((f->ready || f->late) && f->srtp) || f->failed || f->fb_failed; }
static bool failed_and_settled(fixture *f) { return f->failed && (f->fb_failed || f->fb_state == ICE_CONNECTED); }

/* Both sides up to ICE checks; BRIDGE_NOW: the bridge exists before DTLS is done. */
static void setup(fixture *f, const char *leg_expects, bool with_pbx, unsigned timeout_ms, bool bridge_now)
{
  memset(f, 0, sizeof *f);
  f->late = !leg_expects;
  for (int i = 0; i < 4; i++)
    f->pbx[i] = udp_bind(i < 2 ? PBX_SDP_PORT + i : (i == 2 ? PBX_REAL_RTP : PBX_REAL_RTCP));

  browser_leg_settings ls = {
    .role = leg_role,
    .peer_fingerprint = leg_expects,
    .ice = {.controlling = false, .local_addresses = loopback, .port_min = 31120, .port_max = 31139,
            .connect_timeout_ms = 3000, .log_id = "leg"},
  };
  g_assert_cmpint(browser_leg_new(id_gw, &ls, &leg_cb, f, &f->leg), ==, 0);
  if (with_pbx) {
    rtp_socket_settings rss = {.local_address = "127.0.0.1", .port_min = 31100, .port_max = 31119,
                               .source = pbx_source, .trusted = &pbx_trusted, .n_trusted = 1};
    g_assert_cmpint(rtp_socket_new(&rss, &f->rs), ==, 0);
    g_assert_cmpuint(rtp_socket_local_port(f->rs) % 2, ==, 0);
    g_assert_cmpint(rtp_socket_set_remote(f->rs, "127.0.0.1", PBX_SDP_PORT, 0), ==, 0);
  }
  media_bridge_settings bs = {.timeout_ms = timeout_ms, .log_id = "bridge"};

  ice_settings fs = {.controlling = true, .local_addresses = loopback, .port_min = 31140, .port_max = 31159,
                     .connect_timeout_ms = 3000, .log_id = "browser"};
  g_assert_cmpint(ice_agent_new(&fs, &fb_ice_cb, f, &f->ice), ==, 0);
  g_assert_cmpint(dtls_session_new(id_browser, leg_role == DTLS_ROLE_SERVER ? DTLS_ROLE_CLIENT : DTLS_ROLE_SERVER,
                                   dtls_identity_fingerprint(id_gw), &fb_dtls_cb, f, &f->dtls), ==, 0);

  g_assert_cmpint(ice_agent_gather(browser_leg_ice(f->leg)), ==, 0);
  g_assert_cmpint(ice_agent_gather(f->ice), ==, 0);
  g_assert_true(run_until(f, both_gathered, 5000));
  g_auto(GStrv) cl = ice_agent_local_candidates(browser_leg_ice(f->leg));
  g_auto(GStrv) cb = ice_agent_local_candidates(f->ice);
  const char *ul, *pl, *ub, *pb;
  ice_agent_local_credentials(browser_leg_ice(f->leg), &ul, &pl);
  ice_agent_local_credentials(f->ice, &ub, &pb);
  g_assert_cmpint(ice_agent_set_remote(browser_leg_ice(f->leg), ub, pb, (const char *const *)cb), ==, 0);
  g_assert_cmpint(ice_agent_set_remote(f->ice, ul, pl, (const char *const *)cl), ==, 0);
  if (bridge_now) {
    g_assert_cmpint(media_bridge_new(browser_leg_media(f->leg), f->rs, &bs, &bridge_cb, f, &f->bridge), ==, 0);
    g_assert_cmpint(media_bridge_set_pt_map(f->bridge, pt_map, G_N_ELEMENTS(pt_map)), ==, 0);
  }
  g_assert_true(run_until(f, keyed, 5000));
  if (!bridge_now && f->ready) {
    g_assert_cmpint(media_bridge_new(browser_leg_media(f->leg), f->rs, &bs, &bridge_cb, f, &f->bridge), ==, 0);
    g_assert_cmpint(media_bridge_set_pt_map(f->bridge, pt_map, G_N_ELEMENTS(pt_map)), ==, 0);
  }
}

static void teardown(fixture *f)
{
  g_clear_pointer(&f->bridge, media_bridge_free);
  g_clear_pointer(&f->leg, browser_leg_free);
  g_clear_pointer(&f->rs, rtp_socket_free);
  g_clear_pointer(&f->dtls, dtls_session_free);
  g_clear_pointer(&f->ice, ice_agent_free);
  g_clear_pointer(&f->srtp, srtp_leg_free);
  g_clear_pointer(&f->why, g_free);
  g_clear_pointer(&f->fb_unsent, g_ptr_array_unref);
  for (int i = 0; i < 4; i++)
    if (f->pbx[i] > 0)
      close(f->pbx[i]);
  for (int i = 0; i < 20; i++) /* libnice releases its sockets from idle sources */
    g_main_context_iteration(NULL, FALSE);
}

/* fake browser -> gateway: packet SEQ */
static void browser_send_rtp(fixture *f, uint16_t seq)
{
  uint8_t buf[12 + PAYLOAD + SRTP_LEG_MAX_TRAILER];
  size_t len = make_rtp(buf, seq, pt_for(seq, true), 0x1111);

  g_assert_cmpint(srtp_leg_protect(f->srtp, buf, &len, sizeof buf), ==, 0);
  g_assert_cmpint(ice_agent_send(f->ice, buf, len), ==, 0);
}

static void browser_send_rtcp(fixture *f)
{
  uint8_t buf[8 + SRTP_LEG_MAX_TRAILER];
  size_t len = make_rtcp_rr(buf, 0xaaaa);

  g_assert_cmpint(srtp_leg_protect_rtcp(f->srtp, buf, &len, sizeof buf), ==, 0);
  g_assert_cmpint(ice_agent_send(f->ice, buf, len), ==, 0);
}

static unsigned want_pbx_rx[4], want_rx_rtp, want_rx_rtcp;
static bool pbx_got_all(fixture *f)
{
  for (int i = 0; i < 4; i++)
    if (f->pbx_rx[i] < want_pbx_rx[i])
      return false;
  return true;
}
static bool browser_got_all(fixture *f) { return f->rx_rtp + f->rx_bad >= want_rx_rtp && f->rx_rtcp >= want_rx_rtcp; }

/* browser -> PBX socket I: N packets in bursts of 50 */
static void browser_to_pbx(fixture *f, uint16_t first, unsigned n, int i)
{
  for (unsigned k = 0; k < n;) {
    for (unsigned b = 0; b < 50 && k < n; b++, k++)
      browser_send_rtp(f, (uint16_t)(first + k));
    want_pbx_rx[i] = f->pbx_rx[i] + (k % 50 ? k % 50 : 50);
    g_assert_true(run_until(f, pbx_got_all, 3000));
  }
}

/* ---- tests ---- */

static void test_media(void)
{
  fixture f;
  uint8_t buf[2048];

  setup(&f, dtls_identity_fingerprint(id_browser), true, 0, true);
  g_assert_true(f.ready);
  g_assert_nonnull(f.srtp);
  g_assert_false(f.failed);
  g_assert_true(browser_leg_ready(f.leg));

  /* browser -> PBX: to the SDP address while nothing came from the PBX */
  memset(want_pbx_rx, 0, sizeof want_pbx_rx);
  browser_to_pbx(&f, 0, PACKETS, 0);
  g_assert_cmpuint(f.pbx_rx[0], ==, PACKETS);
  g_assert_cmpuint(f.pbx_bad, ==, 0);

  /* RTCP browser -> PBX: the SDP's RTCP port */
  browser_send_rtcp(&f);
  want_pbx_rx[1] = 1;
  g_assert_true(run_until(&f, pbx_got_all, 3000));

  /* PBX -> browser, from other ports than its SDP said (latch: 127.0.0.1 is trusted) */
  uint16_t port = rtp_socket_local_port(f.rs);
  for (unsigned k = 0; k < PACKETS;) {
    for (unsigned b = 0; b < 50 && k < PACKETS; b++, k++)
      udp_send(f.pbx[2], port, buf, make_rtp(buf, (uint16_t)k, pt_for((uint16_t)k, false), 0x2222));
    want_rx_rtp = k;
    g_assert_true(run_until(&f, browser_got_all, 3000));
  }
  g_assert_cmpuint(f.rx_rtp, ==, PACKETS);
  g_assert_cmpuint(f.rx_bad, ==, 0);
  udp_send(f.pbx[3], port + 1, buf, make_rtcp_rr(buf, 0xbbbb));
  want_rx_rtcp = 1;
  g_assert_true(run_until(&f, browser_got_all, 3000));

  /* latched: the browser's media now goes where the PBX's came from */
  f.pbx_next_seq = 1000;
  browser_to_pbx(&f, 1000, 20, 2);
  browser_send_rtcp(&f);
  want_pbx_rx[3] = 1;
  g_assert_true(run_until(&f, pbx_got_all, 3000));
  run_for(&f, 50);
  g_assert_cmpuint(f.pbx_rx[0], ==, PACKETS);
  g_assert_cmpuint(f.pbx_rx[1], ==, 1);
  g_assert_cmpuint(f.pbx_rx[2], ==, 20);
  g_assert_cmpuint(f.pbx_rx[3], ==, 1);
  g_assert_cmpuint(f.pbx_bad, ==, 0);

  /* a tampered packet: counted, not forwarded */
  {
    uint8_t p[12 + PAYLOAD + SRTP_LEG_MAX_TRAILER];
    size_t len = make_rtp(p, 2000, BROWSER_PT, 0x1111);
    g_assert_cmpint(srtp_leg_protect(f.srtp, p, &len, sizeof p), ==, 0);
    p[len - 1] ^= 1;
    g_assert_cmpint(ice_agent_send(f.ice, p, len), ==, 0);
    run_for(&f, 100);
  }

  browser_leg_stats ls;
  rtp_socket_stats rs;
  media_bridge_stats bs;
  browser_leg_get_stats(f.leg, &ls);
  rtp_socket_get_stats(f.rs, &rs);
  media_bridge_get_stats(f.bridge, &bs);
  g_assert_cmpuint(ls.rtp_in, ==, PACKETS + 20);
  g_assert_cmpuint(ls.rtp_in_bytes, ==, (PACKETS + 20) * (12 + PAYLOAD));
  g_assert_cmpuint(ls.rtcp_in, ==, 2);
  g_assert_cmpuint(ls.rtp_out, ==, PACKETS);
  g_assert_cmpuint(ls.rtcp_out, ==, 1);
  g_assert_cmpuint(ls.auth_failures, ==, 1);
  g_assert_cmpuint(ls.drops_out, ==, 0);
  g_assert_cmpuint(rs.rtp_in, ==, PACKETS);
  g_assert_cmpuint(rs.rtp_out, ==, PACKETS + 20);
  g_assert_cmpuint(rs.rtcp_in, ==, 1);
  g_assert_cmpuint(rs.rtcp_out, ==, 2);
  g_assert_cmpuint(bs.rtp_to_pbx, ==, PACKETS + 20);
  g_assert_cmpuint(bs.rtp_to_browser, ==, PACKETS);
  g_assert_cmpuint(bs.rtcp_to_pbx, ==, 2);
  g_assert_cmpuint(bs.rtcp_to_browser, ==, 1);
  g_assert_cmpuint(bs.runts, ==, 0);
  g_assert_false(f.failed);
  teardown(&f);
}

/* The leg expects another certificate: on_failed, no keys, no media. */
static void test_wrong_fingerprint(void)
{
  fixture f;
  uint8_t buf[64 + SRTP_LEG_MAX_TRAILER];

  setup(&f, dtls_identity_fingerprint(id_gw) /* its own: wrong */, true, 0, true);
  g_assert_true(run_until(&f, failed_and_settled, 5000));
  g_assert_true(f.failed);
  g_assert_cmpstr(f.why, ==, "fingerprint mismatch");
  g_assert_false(f.ready);
  g_assert_null(f.srtp);
  g_assert_false(browser_leg_ready(f.leg));

  /* whatever comes from the browser now is dropped, nothing goes out */
  buf[0] = 0x80;
  memset(buf + 1, 0x11, 63);
  buf[1] = BROWSER_PT;
  if (f.fb_state == ICE_CONNECTED)
    for (int i = 0; i < 10; i++)
      g_assert_cmpint(ice_agent_send(f.ice, buf, 64), ==, 0);
  size_t len = make_rtp(buf, 1, PBX_PT, 1);
  g_assert_cmpint(browser_leg_send_rtp(f.leg, buf, len, sizeof buf), ==, -ENOTCONN);
  udp_send(f.pbx[2], rtp_socket_local_port(f.rs), buf, len);
  run_for(&f, 200);
  for (int i = 0; i < 4; i++)
    g_assert_cmpuint(f.pbx_rx[i], ==, 0);
  browser_leg_stats ls;
  browser_leg_get_stats(f.leg, &ls);
  g_assert_cmpuint(ls.rtp_in + ls.rtp_out, ==, 0);
  g_assert_cmpuint(ls.drops_out, ==, 2); /* ours, and the PBX's packet via the bridge */
  media_bridge_stats bs;
  media_bridge_get_stats(f.bridge, &bs);
  g_assert_cmpuint(bs.rtp_to_browser + bs.rtp_to_pbx, ==, 0);
  g_assert_cmpuint(bs.runts, ==, 0); /* the failed send is the leg's count */
  teardown(&f);
}

static bool timed_out(fixture *f) { return f->timed_out; }

/* Media for longer than the timeout keeps it off; silence ends it in time. */
static void test_timeout(void)
{
  fixture f;
  const unsigned timeout_ms = 600;

  setup(&f, dtls_identity_fingerprint(id_browser), true, timeout_ms, false);
  g_assert_nonnull(f.bridge);
  memset(want_pbx_rx, 0, sizeof want_pbx_rx);
  gint64 last = 0;
  for (uint16_t seq = 0; seq < 12; seq++) { /* 1.2 s of packets every 100 ms */
    browser_send_rtp(&f, seq);
    last = g_get_monotonic_time();
    run_for(&f, 100);
  }
  g_assert_false(f.timed_out);
  g_assert_cmpuint(f.pbx_rx[0], ==, 12);
  g_assert_true(run_until(&f, timed_out, 3000));
  gint64 after_ms = (f.timeout_at - last) / 1000;
  g_test_message("timeout after %" G_GINT64_FORMAT " ms of silence", after_ms);
  g_assert_cmpint(after_ms, >=, timeout_ms);
  g_assert_cmpint(after_ms, <=, timeout_ms + timeout_ms / 4 + 100); /* checked every timeout/4 */
  teardown(&f);
}

/* No PBX: the browser's RTP and RTCP come back to it. */
static void test_echo(void)
{
  fixture f;

  setup(&f, dtls_identity_fingerprint(id_browser), false, 0, true);
  g_assert_true(f.ready);
  for (uint16_t k = 0; k < PACKETS;) {
    for (unsigned b = 0; b < 50 && k < PACKETS; b++, k++)
      browser_send_rtp(&f, k);
    want_rx_rtp = k;
    want_rx_rtcp = 0;
    g_assert_true(run_until(&f, browser_got_all, 3000));
  }
  g_assert_cmpuint(f.rx_rtp, ==, PACKETS);
  g_assert_cmpuint(f.rx_bad, ==, 0);
  media_bridge_stats bs;
  media_bridge_get_stats(f.bridge, &bs);
  g_assert_cmpuint(bs.rtp_to_browser, ==, PACKETS);
  g_assert_cmpuint(bs.rtp_to_pbx, ==, 0);
  teardown(&f);
}

/* The gateway as DTLS client (a=setup:active, the browser passive), echo. */
static void test_leg_dtls_client(void)
{
  fixture f;

  leg_role = DTLS_ROLE_CLIENT;
  setup(&f, dtls_identity_fingerprint(id_browser), false, 0, true);
  leg_role = DTLS_ROLE_SERVER;
  g_assert_true(f.ready);
  g_assert_nonnull(f.srtp);
  for (uint16_t k = 0; k < 100; k++)
    browser_send_rtp(&f, k);
  browser_send_rtcp(&f); /* reflected too */
  want_rx_rtp = 100;
  want_rx_rtcp = 1;
  g_assert_true(run_until(&f, browser_got_all, 3000));
  g_assert_cmpuint(f.rx_rtp, ==, 100);
  g_assert_cmpuint(f.rx_rtcp, ==, 1);
  g_assert_cmpuint(f.rx_bad, ==, 0);
  teardown(&f);
}

/* The browser's fingerprint comes after the handshake (its SDP late): media
 * starts only then. */
static void test_late_fingerprint(void)
{
  fixture f;

  setup(&f, NULL, true, 0, true);
  g_assert_nonnull(f.srtp); /* the client is done */
  run_for(&f, 100);
  g_assert_false(f.ready);
  g_assert_cmpint(browser_leg_set_peer_fingerprint(f.leg, dtls_identity_fingerprint(id_browser)), ==, 0);
  g_assert_true(f.ready);
  memset(want_pbx_rx, 0, sizeof want_pbx_rx);
  browser_to_pbx(&f, 0, 50, 0);
  g_assert_cmpuint(f.pbx_bad, ==, 0);
  teardown(&f);
}

static bool leg_keyed(fixture *f)
{
  if (!f->leg_connected_at && ice_agent_state(browser_leg_ice(f->leg)) == ICE_CONNECTED)
    f->leg_connected_at = g_get_monotonic_time();
  return (f->ready && f->srtp) || f->failed || f->fb_failed;
}

/* A call from the PBX: rtcsipd offered (ICE controlling, DTLS server); the
 * browser has rtcsipd's candidates, and its ClientHello comes as soon as
 * its own ICE check has succeeded: before the leg has the browser's answer,
 * its ICE not connected.  The leg's answer to it is held and goes out the
 * moment the leg's ICE is connected: keyed long before DTLS's first
 * retransmission (250 ms after the ClientHello), which is what it took when
 * that answer was dropped. */
static void test_early_client_hello(void)
{
  fixture f;

  memset(&f, 0, sizeof f);
  f.fb_unsent = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  browser_leg_settings ls = {
    .role = DTLS_ROLE_SERVER,
    .peer_fingerprint = dtls_identity_fingerprint(id_browser),
    .ice = {.controlling = true, .local_addresses = loopback, .port_min = 31120, .port_max = 31139,
            .connect_timeout_ms = 3000, .log_id = "leg"},
  };
  g_assert_cmpint(browser_leg_new(id_gw, &ls, &leg_cb, &f, &f.leg), ==, 0);
  ice_settings fs = {.controlling = false, .local_addresses = loopback, .port_min = 31140, .port_max = 31159,
                     .connect_timeout_ms = 3000, .log_id = "browser"};
  g_assert_cmpint(ice_agent_new(&fs, &fb_ice_cb, &f, &f.ice), ==, 0);
  g_assert_cmpint(dtls_session_new(id_browser, DTLS_ROLE_CLIENT, dtls_identity_fingerprint(id_gw), &fb_dtls_cb,
                                   &f, &f.dtls), ==, 0);
  g_assert_cmpint(ice_agent_gather(browser_leg_ice(f.leg)), ==, 0);
  g_assert_cmpint(ice_agent_gather(f.ice), ==, 0);
  g_assert_true(run_until(&f, both_gathered, 5000));

  /* the browser's ClientHello, as the leg gets it before it knows the browser */
  dtls_session_start(f.dtls);
  g_assert_cmpuint(f.fb_unsent->len, >=, 1);
  gint64 hello_at = g_get_monotonic_time();
  for (guint i = 0; i < f.fb_unsent->len; i++) {
    gsize len;
    const uint8_t *d = g_bytes_get_data(g_ptr_array_index(f.fb_unsent, i), &len);
    g_autofree uint8_t *copy = g_memdup2(d, len); /* the leg may modify it, as libnice's buffer */
    browser_leg_inject(f.leg, copy, len);
  }
  g_ptr_array_set_size(f.fb_unsent, 0);
  run_for(&f, 20);
  g_assert_false(f.ready);
  g_assert_false(f.failed);

  /* then the answer: each side gets the other's candidates */
  g_auto(GStrv) cl = ice_agent_local_candidates(browser_leg_ice(f.leg));
  g_auto(GStrv) cb = ice_agent_local_candidates(f.ice);
  const char *ul, *pl, *ub, *pb;
  ice_agent_local_credentials(browser_leg_ice(f.leg), &ul, &pl);
  ice_agent_local_credentials(f.ice, &ub, &pb);
  g_assert_cmpint(ice_agent_set_remote(f.ice, ul, pl, (const char *const *)cl), ==, 0);
  g_assert_cmpint(ice_agent_set_remote(browser_leg_ice(f.leg), ub, pb, (const char *const *)cb), ==, 0);
  g_assert_true(run_until(&f, leg_keyed, 5000));
  gint64 now = g_get_monotonic_time();
  g_test_message("ICE connected %" G_GINT64_FORMAT " ms after the early ClientHello, keyed %" G_GINT64_FORMAT
                 " ms after that", (f.leg_connected_at - hello_at) / 1000, (now - f.leg_connected_at) / 1000);
  g_assert_false(f.failed);
  g_assert_false(f.fb_failed);
  g_assert_true(f.ready);
  g_assert_nonnull(f.srtp);
  g_assert_cmpint(f.leg_connected_at, >, 0);
  /* Keyed soon after the leg's ICE is connected (the fake browser's next
   * flight waits for its own ICE, one more 20 ms pacing tick: about 20 ms),
   * not when the leg's DTLS retransmits, 250 ms after the ClientHello (some
   * 200 ms after ICE on 127.0.0.1). */
  g_assert_cmpint((now - f.leg_connected_at) / 1000, <, 100);
  teardown(&f);
}

/* ---- DTMF and hold ---- */

#define AUDIO_TS_STEP 160

/* fake browser -> gateway: one RTP packet with these fields, PLEN bytes of payload */
static void browser_send_pkt(fixture *f, uint8_t pt, uint16_t seq, uint32_t ts, const uint8_t *payload, size_t plen)
{
  uint8_t buf[12 + PAYLOAD + SRTP_LEG_MAX_TRAILER];
  size_t len = make_rtp(buf, seq, pt, 0x1111);

  buf[4] = (uint8_t)(ts >> 24), buf[5] = (uint8_t)(ts >> 16), buf[6] = (uint8_t)(ts >> 8), buf[7] = (uint8_t)ts;
  if (payload) {
    memcpy(buf + 12, payload, plen);
    len = 12 + plen;
  }
  g_assert_cmpint(srtp_leg_protect(f->srtp, buf, &len, sizeof buf), ==, 0);
  g_assert_cmpint(ice_agent_send(f->ice, buf, len), ==, 0);
}

/* the PBX -> gateway, from its real RTP port */
static void pbx_send_pkt(fixture *f, uint8_t pt, uint16_t seq, uint32_t ts, const uint8_t *payload, size_t plen)
{
  uint8_t buf[12 + PAYLOAD];
  size_t len = make_rtp(buf, seq, pt, 0x2222);

  buf[4] = (uint8_t)(ts >> 24), buf[5] = (uint8_t)(ts >> 16), buf[6] = (uint8_t)(ts >> 8), buf[7] = (uint8_t)ts;
  if (payload) {
    memcpy(buf + 12, payload, plen);
    len = 12 + plen;
  }
  udp_send(f->pbx[2], rtp_socket_local_port(f->rs), buf, len);
}

static unsigned want_cap;
static bool pbx_cap_n(fixture *f) { return f->n_pbx_cap >= want_cap; }
static bool fb_cap_n(fixture *f) { return f->n_fb_cap >= want_cap; }

/* CAP[*I..]: one generated event of DIGIT's code, DURATION_MS at RATE, PT:
 * marker first, rising durations, 3 end packets.  Returns its timestamp. */
static uint32_t expect_event(const cap_pkt *cap, unsigned n, unsigned *i, uint8_t pt, uint8_t event, unsigned rate,
                             unsigned duration_ms, uint32_t ssrc)
{
  unsigned total = duration_ms * rate / 1000, ends = 0, first = *i;
  unsigned prev = 0;
  uint32_t ts = cap[first].ts;

  g_assert_cmpuint(first, <, n);
  g_assert_true(cap[first].marker);
  for (; *i < n && cap[*i].pt == pt && ends < 3; (*i)++) {
    const cap_pkt *c = &cap[*i];
    unsigned dur = (unsigned)(c->payload[2] << 8 | c->payload[3]);
    g_assert_cmpuint(c->len, ==, 16);
    g_assert_cmpuint(c->ssrc, ==, ssrc);
    g_assert_cmpuint(c->ts, ==, ts);
    g_assert_cmpuint(c->payload[0], ==, event);
    g_assert_cmpuint(c->payload[1] & 0x3f, ==, 10);
    g_assert_true(*i == first || !c->marker);
    if (c->payload[1] & 0x80) {
      ends++;
      g_assert_cmpuint(dur, ==, total);
    } else {
      g_assert_cmpuint(ends, ==, 0);
      g_assert_cmpuint(dur, >, prev);
      g_assert_cmpuint(dur, <, total);
      prev = dur;
    }
  }
  g_assert_cmpuint(ends, ==, 3);
  g_assert_cmpuint(*i - first, ==, (duration_ms + 19) / 20 - 1 + 3); /* every 20 ms, then the ends */
  return ts;
}

static void expect_continuous(const cap_pkt *cap, unsigned n)
{
  for (unsigned k = 1; k < n; k++)
    if (cap[k].seq != (uint16_t)(cap[k - 1].seq + 1))
      g_error("packet %u: seq %u after %u", k, cap[k].seq, cap[k - 1].seq);
}

static const media_bridge_dtmf_settings dtmf_settings = {BROWSER_DTMF_PT, PBX_DTMF_PT, 48000, 8000};

/* Generated toward the PBX: its stream's SSRC, timestamp and sequence
 * numbers, before, during and after; digits queue. */
static void test_dtmf_to_pbx(void)
{
  fixture f;
  const uint16_t seq0 = 65530; /* wraps during the test */
  uint32_t ts0 = 0xfffff000;

  setup(&f, dtls_identity_fingerprint(id_browser), true, 0, true);
  g_assert_true(f.ready);
  f.capture = true;
  g_assert_cmpint(media_bridge_send_dtmf(f.bridge, true, '5', 0), ==, -EINVAL); /* no PT yet */
  g_assert_cmpint(media_bridge_set_dtmf(f.bridge, &dtmf_settings), ==, 0);
  g_assert_cmpint(media_bridge_send_dtmf(f.bridge, true, '5', 0), ==, -ENOTCONN); /* no stream yet */
  g_assert_cmpint(media_bridge_send_dtmf(f.bridge, true, 'x', 0), ==, -EINVAL);

  uint16_t seq = seq0;
  uint32_t ts = ts0;
  for (int k = 0; k < 5; k++, seq++, ts += AUDIO_TS_STEP)
    browser_send_pkt(&f, BROWSER_PT, seq, ts, NULL, 0);
  want_cap = 5;
  g_assert_true(run_until(&f, pbx_cap_n, 3000));
  uint32_t last_audio_ts = ts - AUDIO_TS_STEP;

  /* '5' 100 ms (the default) while audio goes on every 20 ms, then '#' 60 ms and 'D' 40 ms queued */
  g_assert_cmpint(media_bridge_send_dtmf(f.bridge, true, '5', 0), ==, 0);
  g_assert_cmpint(media_bridge_send_dtmf(f.bridge, true, '#', 60), ==, 0);
  g_assert_cmpint(media_bridge_send_dtmf(f.bridge, true, 'D', 1), ==, 0); /* clamped to 40 */
  unsigned audio = 5;
  for (int k = 0; k < 30; k++, seq++, ts += AUDIO_TS_STEP, audio++) {
    run_for(&f, 20);
    browser_send_pkt(&f, BROWSER_PT, seq, ts, NULL, 0);
  }
  want_cap = audio + 7 + 5 + 4;
  g_assert_true(run_until(&f, pbx_cap_n, 3000));
  run_for(&f, 100);
  g_assert_cmpuint(f.n_pbx_cap, ==, audio + 7 + 5 + 4);

  /* the audio as sent, the events between, one continuous stream */
  expect_continuous(f.pbx_cap, f.n_pbx_cap);
  g_assert_cmpuint(f.pbx_cap[0].seq, ==, seq0);
  cap_pkt ev_cap[CAP_MAX];
  unsigned n_ev = 0, n_audio = 0;
  for (unsigned i = 0; i < f.n_pbx_cap; i++) {
    if (f.pbx_cap[i].pt == PBX_DTMF_PT) {
      ev_cap[n_ev++] = f.pbx_cap[i];
    } else {
      g_assert_cmpuint(f.pbx_cap[i].pt, ==, PBX_PT);
      g_assert_cmpuint(f.pbx_cap[i].ssrc, ==, 0x1111);
      g_assert_cmpuint(f.pbx_cap[i].ts, ==, ts0 + n_audio * AUDIO_TS_STEP);
      n_audio++;
    }
  }
  /* the events among them, one after the other */
  static const uint8_t codes[3] = {5, 11, 15};
  static const unsigned ms[3] = {100, 60, 40};
  uint32_t ev_ts[3] = {0};
  unsigned events = 0;
  for (unsigned i = 0; i < n_ev; events++) {
    g_assert_cmpuint(events, <, 3);
    ev_ts[events] = expect_event(ev_cap, n_ev, &i, PBX_DTMF_PT, codes[events], 8000, ms[events], 0x1111);
  }
  g_assert_cmpuint(events, ==, 3);
  g_assert_cmpuint(n_audio, ==, audio);
  /* timestamps: where the audio was when each event started, in order */
  gint32 d0 = (gint32)(ev_ts[0] - last_audio_ts);
  g_test_message("first event %d units after the last audio packet", d0);
  g_assert_cmpint(d0, >=, 0);
  g_assert_cmpint(d0, <=, 8000 / 10); /* sent at once: well within 100 ms */
  g_assert_cmpint((gint32)(ev_ts[1] - ev_ts[0]), >=, 800); /* after the first one's 100 ms */
  g_assert_cmpint((gint32)(ev_ts[2] - ev_ts[1]), >=, 480);

  media_bridge_stats bs;
  media_bridge_get_stats(f.bridge, &bs);
  g_assert_cmpuint(bs.dtmf_to_pbx, ==, 3);
  g_assert_cmpuint(bs.dtmf_to_browser, ==, 0);
  g_assert_cmpuint(bs.rtp_to_pbx, ==, audio);
  g_assert_cmpuint(bs.runts + bs.held, ==, 0);

  /* the queue: one being sent and 32 behind it */
  int r = 0;
  unsigned queued = 0;
  while ((r = media_bridge_send_dtmf(f.bridge, true, '1', 2000)) == 0)
    queued++;
  g_assert_cmpint(r, ==, -ENOBUFS);
  g_assert_cmpuint(queued, ==, MEDIA_BRIDGE_DTMF_QUEUE + 1);
  teardown(&f); /* freed while sending: its timer goes too */
}

/* Generated toward the browser: SRTP, the PBX stream's SSRC, sequence
 * numbers, 48 kHz durations. */
static void test_dtmf_to_browser(void)
{
  fixture f;
  uint16_t seq = 1000;
  uint32_t ts = 5000;
  const unsigned step = 960; /* 20 ms at 48 kHz */

  setup(&f, dtls_identity_fingerprint(id_browser), true, 0, true);
  g_assert_true(f.ready);
  f.capture = true;
  g_assert_cmpint(media_bridge_set_dtmf(f.bridge, &dtmf_settings), ==, 0);
  g_assert_cmpint(media_bridge_send_dtmf(f.bridge, false, '9', 0), ==, -ENOTCONN);
  for (int k = 0; k < 5; k++, seq++, ts += step)
    pbx_send_pkt(&f, PBX_PT, seq, ts, NULL, 0);
  want_cap = 5;
  g_assert_true(run_until(&f, fb_cap_n, 3000));
  g_assert_cmpint(media_bridge_send_dtmf(f.bridge, false, '*', 200), ==, 0);
  want_cap = 5 + 9 + 3; /* 9 packets 20..180 ms, 3 end packets */
  g_assert_true(run_until(&f, fb_cap_n, 3000));
  for (int k = 0; k < 5; k++, seq++, ts += step)
    pbx_send_pkt(&f, PBX_PT, seq, ts, NULL, 0);
  want_cap = 5 + 12 + 5;
  g_assert_true(run_until(&f, fb_cap_n, 3000));
  run_for(&f, 100);
  g_assert_cmpuint(f.n_fb_cap, ==, 22);

  expect_continuous(f.fb_cap, f.n_fb_cap);
  g_assert_cmpuint(f.fb_cap[0].seq, ==, 1000);
  for (unsigned i = 0; i < 5; i++)
    g_assert_cmpuint(f.fb_cap[i].pt, ==, BROWSER_PT);
  unsigned i = 5;
  uint32_t ev_ts = expect_event(f.fb_cap, f.n_fb_cap, &i, BROWSER_DTMF_PT, 10, 48000, 200, 0x2222);
  g_assert_cmpuint(i, ==, 17);
  g_assert_cmpint((gint32)(ev_ts - (5000 + 4 * step)), >=, 0);
  g_assert_cmpint((gint32)(ev_ts - (5000 + 4 * step)), <=, 48000 / 10);
  for (; i < f.n_fb_cap; i++) {
    g_assert_cmpuint(f.fb_cap[i].pt, ==, BROWSER_PT);
    g_assert_cmpuint(f.fb_cap[i].ssrc, ==, 0x2222);
  }
  media_bridge_stats bs;
  media_bridge_get_stats(f.bridge, &bs);
  g_assert_cmpuint(bs.dtmf_to_browser, ==, 1);
  g_assert_cmpuint(bs.rtp_to_browser, ==, 10);
  g_assert_cmpuint(bs.runts + bs.held, ==, 0);
  teardown(&f);
}

/* One event as a browser (or PBX) sends it: 4 packets, then 3 end packets,
 * sequence numbers from *SEQ on. */
static void send_event(fixture *f, bool from_browser, uint16_t *seq, uint32_t ts, uint8_t event, unsigned rate)
{
  uint8_t pl[4];
  for (int k = 0; k < 7; k++) {
    unsigned dur = k < 4 ? (k + 1) * 20 * rate / 1000 : 100 * rate / 1000;
    rfc4733_event ev = {.event = event, .end = k >= 4, .volume = 10, .duration = (uint16_t)dur};
    rfc4733_encode(&ev, pl);
    if (from_browser)
      browser_send_pkt(f, (uint8_t)((k == 0 ? 0x80 : 0) | BROWSER_DTMF_PT), (*seq)++, ts, pl, 4);
    else
      pbx_send_pkt(f, (uint8_t)((k == 0 ? 0x80 : 0) | PBX_DTMF_PT), (*seq)++, ts, pl, 4);
  }
}

static unsigned want_dtmf;
static bool got_dtmf(fixture *f) { return f->n_dtmf >= want_dtmf && f->n_pbx_cap >= want_cap; }

/* Events from either side: reported once each; forwarded with the other
 * side's PT, or dropped without a gap in the sequence numbers. */
static void test_dtmf_received(void)
{
  fixture f;
  uint16_t seq = 200;
  uint32_t ts = 48000;

  setup(&f, dtls_identity_fingerprint(id_browser), true, 0, true);
  g_assert_true(f.ready);
  f.capture = true;
  g_assert_cmpint(media_bridge_set_dtmf(f.bridge, &dtmf_settings), ==, 0);
  for (int k = 0; k < 3; k++, ts += 960)
    browser_send_pkt(&f, BROWSER_PT, seq++, ts, NULL, 0);
  send_event(&f, true, &seq, ts, 7, 48000);
  for (int k = 0; k < 3; k++, ts += 960)
    browser_send_pkt(&f, BROWSER_PT, seq++, ts, NULL, 0);
  want_dtmf = 1;
  want_cap = 13;
  g_assert_true(run_until(&f, got_dtmf, 3000));
  run_for(&f, 100);
  g_assert_cmpuint(f.n_dtmf, ==, 1);
  g_assert_true(f.dtmf_from_browser);
  g_assert_cmpint(f.dtmf_digit, ==, '7');
  g_assert_cmpuint(f.dtmf_ms, ==, 100);
  g_assert_cmpuint(f.n_pbx_cap, ==, 13);
  expect_continuous(f.pbx_cap, f.n_pbx_cap);
  for (unsigned i = 3; i < 10; i++) {
    g_assert_cmpuint(f.pbx_cap[i].pt, ==, PBX_DTMF_PT); /* rewritten */
    g_assert_true(f.pbx_cap[i].marker == (i == 3));
    g_assert_cmpuint(f.pbx_cap[i].payload[0], ==, 7);
  }

  /* not forwarded: still reported; the PBX sees the audio without a gap */
  media_bridge_forward_dtmf(f.bridge, true, false);
  send_event(&f, true, &seq, ts, 11, 48000);
  for (int k = 0; k < 3; k++, ts += 960)
    browser_send_pkt(&f, BROWSER_PT, seq++, ts, NULL, 0);
  want_dtmf = 2;
  want_cap = 16;
  g_assert_true(run_until(&f, got_dtmf, 3000));
  run_for(&f, 100);
  g_assert_cmpuint(f.n_dtmf, ==, 2);
  g_assert_cmpint(f.dtmf_digit, ==, '#');
  g_assert_cmpuint(f.n_pbx_cap, ==, 16);
  expect_continuous(f.pbx_cap, f.n_pbx_cap);
  for (unsigned i = 13; i < 16; i++)
    g_assert_cmpuint(f.pbx_cap[i].pt, ==, PBX_PT);

  /* from the PBX, 8 kHz: reported; not forwarded either, the browser sees no gap */
  uint16_t pseq = 10;
  uint32_t pts = 8000;
  media_bridge_forward_dtmf(f.bridge, false, false);
  pbx_send_pkt(&f, PBX_PT, pseq++, pts, NULL, 0);
  send_event(&f, false, &pseq, pts += 160, 12, 8000);
  pbx_send_pkt(&f, PBX_PT, pseq++, pts += 960, NULL, 0);
  want_dtmf = 3;
  want_cap = 16;
  g_assert_true(run_until(&f, got_dtmf, 3000));
  run_for(&f, 100);
  g_assert_cmpuint(f.n_dtmf, ==, 3);
  g_assert_false(f.dtmf_from_browser);
  g_assert_cmpint(f.dtmf_digit, ==, 'A');
  g_assert_cmpuint(f.dtmf_ms, ==, 100);
  g_assert_cmpuint(f.n_fb_cap, ==, 2);
  expect_continuous(f.fb_cap, f.n_fb_cap);

  media_bridge_stats bs;
  media_bridge_get_stats(f.bridge, &bs);
  g_assert_cmpuint(bs.rtp_to_pbx, ==, 16);
  g_assert_cmpuint(bs.rtp_to_browser, ==, 2);
  g_assert_cmpuint(bs.runts + bs.held, ==, 0);
  teardown(&f);
}

/* Hold: nothing toward the side that does not receive (counted), RTCP goes
 * on; media resumes. */
static void test_hold(void)
{
  fixture f;
  uint8_t buf[64];
  uint16_t seq = 0;

  setup(&f, dtls_identity_fingerprint(id_browser), true, 0, true);
  g_assert_true(f.ready);
  f.capture = true;
  g_assert_cmpint(media_bridge_set_dtmf(f.bridge, &dtmf_settings), ==, 0);
  for (int k = 0; k < 5; k++)
    browser_send_pkt(&f, BROWSER_PT, seq, 160u * seq, NULL, 0), seq++;
  want_cap = 5;
  g_assert_true(run_until(&f, pbx_cap_n, 3000));

  media_bridge_set_sending(f.bridge, true, false);
  for (int k = 0; k < 10; k++)
    browser_send_pkt(&f, BROWSER_PT, seq, 160u * seq, NULL, 0), seq++;
  browser_send_rtcp(&f);
  g_assert_cmpint(media_bridge_send_dtmf(f.bridge, true, '1', 40), ==, 0); /* 1 + 3 packets, held */
  memset(want_pbx_rx, 0, sizeof want_pbx_rx);
  want_pbx_rx[1] = 1;
  g_assert_true(run_until(&f, pbx_got_all, 3000));
  run_for(&f, 200);
  g_assert_cmpuint(f.n_pbx_cap, ==, 5);
  media_bridge_stats bs;
  media_bridge_get_stats(f.bridge, &bs);
  g_assert_cmpuint(bs.held, ==, 10 + 4);
  g_assert_cmpuint(bs.rtcp_to_pbx, ==, 1);
  g_assert_cmpuint(bs.rtp_to_pbx, ==, 5);

  media_bridge_set_sending(f.bridge, true, true);
  for (int k = 0; k < 5; k++)
    browser_send_pkt(&f, BROWSER_PT, seq, 160u * seq, NULL, 0), seq++;
  want_cap = 10;
  g_assert_true(run_until(&f, pbx_cap_n, 3000));
  g_assert_cmpuint(f.pbx_cap[5].seq, ==, 15);

  /* toward the browser */
  media_bridge_set_sending(f.bridge, false, false);
  for (uint16_t k = 0; k < 6; k++)
    pbx_send_pkt(&f, PBX_PT, k, 160u * k, NULL, 0);
  udp_send(f.pbx[3], rtp_socket_local_port(f.rs) + 1, buf, make_rtcp_rr(buf, 0xbbbb));
  run_for(&f, 200);
  g_assert_cmpuint(f.n_fb_cap, ==, 0);
  media_bridge_get_stats(f.bridge, &bs);
  g_assert_cmpuint(bs.held, ==, 14 + 6);
  g_assert_cmpuint(bs.rtcp_to_browser, ==, 1);
  media_bridge_set_sending(f.bridge, false, true);
  pbx_send_pkt(&f, PBX_PT, 6, 960, NULL, 0);
  want_cap = 1;
  g_assert_true(run_until(&f, fb_cap_n, 3000));
  media_bridge_get_stats(f.bridge, &bs);
  g_assert_cmpuint(bs.held, ==, 20);
  g_assert_cmpuint(bs.runts, ==, 0);
  teardown(&f);
}

/* Echo: DTMF from the browser is reported and reflected; generated toward it. */
static void test_dtmf_echo(void)
{
  fixture f;
  uint16_t seq = 0;

  setup(&f, dtls_identity_fingerprint(id_browser), false, 0, true);
  g_assert_true(f.ready);
  f.capture = true;
  g_assert_cmpint(media_bridge_set_dtmf(f.bridge, &dtmf_settings), ==, 0);
  g_assert_cmpint(media_bridge_send_dtmf(f.bridge, true, '1', 0), ==, -ENOTCONN); /* no PBX */
  browser_send_pkt(&f, BROWSER_PT, seq++, 0, NULL, 0);
  send_event(&f, true, &seq, 960, 3, 48000);
  want_cap = 8;
  g_assert_true(run_until(&f, fb_cap_n, 3000));
  g_assert_cmpuint(f.n_dtmf, ==, 1);
  g_assert_cmpint(f.dtmf_digit, ==, '3');
  g_assert_cmpint(media_bridge_send_dtmf(f.bridge, false, '4', 40), ==, 0);
  want_cap = 12;
  g_assert_true(run_until(&f, fb_cap_n, 3000));
  expect_continuous(f.fb_cap, f.n_fb_cap);
  unsigned i = 8;
  expect_event(f.fb_cap, f.n_fb_cap, &i, BROWSER_DTMF_PT, 4, 48000, 40, 0x1111);
  teardown(&f);
}

/* ---- whom the PBX-side port takes packets from ([media] rtp_source) ---- */

/* From FD, to the bridge's RTP port: RTP with sequence numbers FIRST.., as
 * the PBX's stream (the browser checks them in order), N packets in bursts
 * of 50, each burst waited for at the browser. */
static void pbx_stream_from(fixture *f, int fd, uint16_t first, unsigned n)
{
  uint8_t buf[12 + PAYLOAD];
  uint16_t port = rtp_socket_local_port(f->rs);

  for (unsigned k = 0; k < n;) {
    unsigned burst = 0;
    for (; burst < 50 && k < n; burst++, k++) {
      uint16_t seq = (uint16_t)(first + k);
      udp_send(fd, port, buf, make_rtp(buf, seq, pt_for(seq, false), 0x2222));
    }
    want_rx_rtp = f->rx_rtp + f->rx_bad + burst;
    want_rx_rtcp = 0;
    g_assert_true(run_until(f, browser_got_all, 3000));
  }
}

/* From FD: N RTP packets (a stranger's SSRC, sequence numbers the browser
 * does not expect) and one RTCP RR to the RTCP port.  Returns N + 1. */
static unsigned stranger_send(fixture *f, int fd, unsigned n)
{
  uint8_t buf[12 + PAYLOAD];
  uint16_t port = rtp_socket_local_port(f->rs);

  for (unsigned k = 0; k < n; k++)
    udp_send(fd, port, buf, make_rtp(buf, (uint16_t)(40000 + k), PBX_PT, STRANGER_SSRC));
  udp_send(fd, port + 1, buf, make_rtcp_rr(buf, STRANGER_SSRC));
  return n + 1;
}

/* Datagrams waiting on FD (read and dropped). */
static unsigned fd_drain(int fd)
{
  uint8_t buf[2048];
  unsigned n = 0;

  while (recv(fd, buf, sizeof buf, 0) > 0)
    n++;
  return n;
}

/* Runs the loop until FD has received N datagrams (counted in *GOT), at
 * most MS ms. */
static bool fd_wait(fixture *f, int fd, unsigned *got, unsigned n, unsigned ms)
{
  gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

  while (*got < n && g_get_monotonic_time() < end) {
    bool busy = g_main_context_iteration(NULL, FALSE);
    busy |= pbx_drain(f);
    *got += fd_drain(fd);
    if (!busy)
      g_usleep(200);
  }
  return *got >= n;
}

static void expect_last_rejected(const rtp_socket_stats *rs, const char *address, uint16_t port)
{
  const struct sockaddr_in *sin = (const struct sockaddr_in *)&rs->last_rejected;
  char text[INET_ADDRSTRLEN];

  g_assert_cmpint(sin->sin_family, ==, AF_INET);
  g_assert_nonnull(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text));
  g_assert_cmpstr(text, ==, address);
  g_assert_cmpuint(ntohs(sin->sin_port), ==, port);
}

/* sdp: only the SDP's address and port, RTP and RTCP.  A stranger
 * (127.0.0.66) and a spoofer on the PBX's address (127.0.0.1, another port)
 * send before the PBX's first packet and while media flows: nothing of
 * theirs reaches the browser, nothing of the browser's reaches them, the
 * call's audio is intact both ways, and the summary counts them.  With no
 * SDP address in force (c=0.0.0.0) nothing is taken until a new one. */
static void test_source_sdp(void)
{
  fixture f;
  uint8_t buf[64];
  unsigned rejected = 0;
  rtp_socket_stats rs;
  int stranger = udp_bind_at(STRANGER_ADDRESS, STRANGER_PORT), spoofer = udp_bind(PBX_OTHER_PORT);

  pbx_source = RTP_SOURCE_SDP;
  setup(&f, dtls_identity_fingerprint(id_browser), true, 0, true);
  pbx_source = RTP_SOURCE_LATCH;
  g_assert_true(f.ready);
  uint16_t port = rtp_socket_local_port(f.rs);

  /* before the PBX's media */
  rejected += stranger_send(&f, stranger, 20);
  rejected += stranger_send(&f, spoofer, 20);
  run_for(&f, 100);
  g_assert_cmpuint(f.rx_rtp + f.rx_rtcp + f.rx_bad, ==, 0);
  rtp_socket_get_stats(f.rs, &rs);
  g_assert_cmpuint(rs.rejected_source, ==, rejected);
  g_assert_cmpuint(rs.rtp_in + rs.rtcp_in, ==, 0);

  /* the browser's audio goes to the SDP's ports, to no one else */
  memset(want_pbx_rx, 0, sizeof want_pbx_rx);
  browser_to_pbx(&f, 0, 100, 0);
  browser_send_rtcp(&f);
  want_pbx_rx[1] = 1;
  g_assert_true(run_until(&f, pbx_got_all, 3000));

  /* the PBX's audio, from its SDP port, reaches the browser */
  pbx_stream_from(&f, f.pbx[0], 0, 100);

  /* while media flows: the stranger and the spoofer between the PBX's packets */
  for (unsigned round = 0; round < 5; round++) {
    rejected += stranger_send(&f, stranger, 10);
    pbx_stream_from(&f, f.pbx[0], (uint16_t)(100 + round * 20), 20);
    rejected += stranger_send(&f, spoofer, 10);
  }
  pbx_stream_from(&f, f.pbx[0], 200, 50);
  udp_send(f.pbx[3], port + 1, buf, make_rtcp_rr(buf, 0xbbbb)); /* RTCP from elsewhere than the SDP's */
  rejected++;
  udp_send(f.pbx[1], port + 1, buf, make_rtcp_rr(buf, 0xbbbb)); /* ... and from the SDP's RTCP port */
  want_rx_rtcp = 1;
  g_assert_true(run_until(&f, browser_got_all, 3000));
  browser_to_pbx(&f, 100, 100, 0);
  run_for(&f, 100);

  g_assert_cmpuint(f.rx_rtp, ==, 250);
  g_assert_cmpuint(f.rx_rtcp, ==, 1);
  g_assert_cmpuint(f.rx_bad, ==, 0);
  g_assert_cmpuint(f.pbx_rx[0], ==, 200);
  g_assert_cmpuint(f.pbx_rx[1], ==, 1);
  g_assert_cmpuint(f.pbx_rx[2] + f.pbx_rx[3], ==, 0);
  g_assert_cmpuint(f.pbx_bad, ==, 0);
  g_assert_cmpuint(fd_drain(stranger), ==, 0);
  g_assert_cmpuint(fd_drain(spoofer), ==, 0);
  rtp_socket_get_stats(f.rs, &rs);
  g_assert_cmpuint(rs.rejected_source, ==, rejected);
  g_assert_cmpuint(rs.rtp_in, ==, 250);
  g_assert_cmpuint(rs.rtcp_in, ==, 1);
  g_assert_cmpuint(rs.drops_in, ==, 0);
  expect_last_rejected(&rs, "127.0.0.1", PBX_REAL_RTCP);
  {
    browser_media_stats lst;
    media_bridge_stats bst;
    browser_media_get_stats(browser_leg_media(f.leg), &lst);
    media_bridge_get_stats(f.bridge, &bst);
    g_autofree char *summary = media_bridge_summary(&lst, &rs, &bst);
    g_autofree char *want = g_strdup_printf(", rejected source %u (last 127.0.0.1:%u)", rejected, PBX_REAL_RTCP);
    g_test_message("summary: %s", summary);
    g_assert_true(g_str_has_suffix(summary, want));
  }

  /* c=0.0.0.0: nothing is taken, nothing sent; a new SDP opens it again */
  rtp_socket_clear_remote(f.rs);
  pbx_send_pkt(&f, PBX_PT, 250, 0, NULL, 0);
  udp_send(f.pbx[0], port, buf, make_rtp(buf, 250, PBX_PT, 0x2222));
  rejected += 2;
  for (uint16_t k = 200; k < 205; k++)
    browser_send_rtp(&f, k);
  run_for(&f, 200);
  g_assert_cmpuint(f.rx_rtp + f.rx_bad, ==, 250);
  g_assert_cmpuint(f.pbx_rx[0], ==, 200);
  rtp_socket_get_stats(f.rs, &rs);
  g_assert_cmpuint(rs.rejected_source, ==, rejected);
  g_assert_cmpuint(rs.no_remote, ==, 5);
  g_assert_cmpint(rtp_socket_set_remote(f.rs, "127.0.0.1", PBX_SDP_PORT, 0), ==, 0);
  pbx_stream_from(&f, f.pbx[0], 250, 10);
  f.pbx_next_seq = 205;
  browser_to_pbx(&f, 205, 10, 0);
  g_assert_cmpuint(f.rx_rtp, ==, 260);
  g_assert_cmpuint(f.rx_bad, ==, 0);
  g_assert_cmpuint(f.pbx_bad, ==, 0);
  g_assert_false(f.failed);
  close(stranger);
  close(spoofer);
  teardown(&f);
}

/* latch: the first packet from a trusted address (127.0.0.1, any port) is
 * learnt, a stranger's never; once latched a second trusted port does not
 * move it, the same SDP again (a refresh) neither; a new SDP learns anew. */
static void test_source_latch(void)
{
  fixture f;
  unsigned rejected = 0, got = 0;
  rtp_socket_stats rs;
  int stranger = udp_bind_at(STRANGER_ADDRESS, STRANGER_PORT), second = udp_bind(PBX_OTHER_PORT);

  setup(&f, dtls_identity_fingerprint(id_browser), true, 0, true);
  g_assert_true(f.ready);

  /* the stranger first: not learnt */
  rejected += stranger_send(&f, stranger, 20);
  run_for(&f, 100);
  g_assert_cmpuint(f.rx_rtp + f.rx_rtcp + f.rx_bad, ==, 0);
  memset(want_pbx_rx, 0, sizeof want_pbx_rx);
  browser_to_pbx(&f, 0, 20, 0); /* still to the SDP's address */
  g_assert_cmpuint(fd_drain(stranger), ==, 0);

  /* the PBX from other ports than its SDP's (behind a NAT): learnt, RTP and RTCP each */
  pbx_stream_from(&f, f.pbx[2], 0, 50);
  browser_to_pbx(&f, 20, 20, 2); /* the browser's audio goes there now */
  {
    uint8_t rr[8];
    udp_send(f.pbx[3], rtp_socket_local_port(f.rs) + 1, rr, make_rtcp_rr(rr, 0xbbbb));
    want_rx_rtcp = 1;
    g_assert_true(run_until(&f, browser_got_all, 3000));
  }

  /* latched: a second trusted port and the stranger do not move it */
  rejected += stranger_send(&f, second, 10);
  rejected += stranger_send(&f, stranger, 10);
  pbx_stream_from(&f, f.pbx[2], 50, 50);
  rejected += stranger_send(&f, second, 10);
  browser_to_pbx(&f, 40, 20, 2);
  run_for(&f, 100);
  g_assert_cmpuint(fd_drain(second) + fd_drain(stranger), ==, 0);

  /* the same SDP again (a session refresh, a=sendonly): still held */
  g_assert_cmpint(rtp_socket_set_remote(f.rs, "127.0.0.1", PBX_SDP_PORT, 0), ==, 0);
  rejected += stranger_send(&f, second, 5);
  pbx_stream_from(&f, f.pbx[2], 100, 10);
  browser_to_pbx(&f, 60, 10, 2);
  g_assert_cmpuint(f.rx_rtp, ==, 110);
  g_assert_cmpuint(f.rx_bad, ==, 0);
  g_assert_cmpuint(f.pbx_rx[0], ==, 20);
  g_assert_cmpuint(f.pbx_rx[2], ==, 50);
  g_assert_cmpuint(f.pbx_bad, ==, 0);
  rtp_socket_get_stats(f.rs, &rs);
  g_assert_cmpuint(rs.rejected_source, ==, rejected);
  expect_last_rejected(&rs, "127.0.0.1", PBX_OTHER_PORT);

  /* a new SDP (another port): learns anew, from the first trusted sender */
  g_assert_cmpint(rtp_socket_set_remote(f.rs, "127.0.0.1", PBX_SDP_PORT + 2, 0), ==, 0);
  rejected += stranger_send(&f, stranger, 5);
  pbx_stream_from(&f, second, 110, 20);
  pbx_send_pkt(&f, PBX_PT, 130, 0, NULL, 0); /* the old source, now one too many */
  rejected++;
  run_for(&f, 100);
  for (uint16_t k = 70; k < 80; k++)
    browser_send_rtp(&f, k);
  g_assert_true(fd_wait(&f, second, &got, 10, 3000));
  run_for(&f, 100);
  g_assert_cmpuint(got + fd_drain(second), ==, 10);
  g_assert_cmpuint(fd_drain(stranger), ==, 0);
  g_assert_cmpuint(f.pbx_rx[2], ==, 50);
  g_assert_cmpuint(f.rx_rtp, ==, 130);
  g_assert_cmpuint(f.rx_bad, ==, 0);
  rtp_socket_get_stats(f.rs, &rs);
  g_assert_cmpuint(rs.rejected_source, ==, rejected);
  g_assert_cmpuint(rs.rtp_in, ==, 130);
  expect_last_rejected(&rs, "127.0.0.1", PBX_REAL_RTP);

  /* c=0.0.0.0: nothing is learnt, not even from a trusted sender */
  rtp_socket_clear_remote(f.rs);
  pbx_send_pkt(&f, PBX_PT, 130, 0, NULL, 0);
  run_for(&f, 100);
  rtp_socket_get_stats(f.rs, &rs);
  g_assert_cmpuint(rs.rejected_source, ==, rejected + 1);
  g_assert_cmpuint(f.rx_rtp + f.rx_bad, ==, 130);
  g_assert_false(f.failed);
  close(stranger);
  close(second);
  teardown(&f);
}

int main(int argc, char **argv)
{
  int r;

  g_test_init(&argc, &argv, NULL);
  g_assert_cmpint(dtls_identity_new(&id_gw), ==, 0);
  g_assert_cmpint(dtls_identity_new(&id_browser), ==, 0);
  g_assert_cmpint(netlist_parse("127.0.0.1", &pbx_trusted), ==, 0);
  g_test_add_func("/media-bridge/media", test_media);
  g_test_add_func("/media-bridge/wrong-fingerprint", test_wrong_fingerprint);
  g_test_add_func("/media-bridge/timeout", test_timeout);
  g_test_add_func("/media-bridge/echo", test_echo);
  g_test_add_func("/media-bridge/late-fingerprint", test_late_fingerprint);
  g_test_add_func("/media-bridge/leg-dtls-client", test_leg_dtls_client);
  g_test_add_func("/media-bridge/early-client-hello", test_early_client_hello);
  g_test_add_func("/media-bridge/dtmf-to-pbx", test_dtmf_to_pbx);
  g_test_add_func("/media-bridge/dtmf-to-browser", test_dtmf_to_browser);
  g_test_add_func("/media-bridge/dtmf-received", test_dtmf_received);
  g_test_add_func("/media-bridge/hold", test_hold);
  g_test_add_func("/media-bridge/dtmf-echo", test_dtmf_echo);
  g_test_add_func("/media-bridge/source-sdp", test_source_sdp);
  g_test_add_func("/media-bridge/source-latch", test_source_latch);
  r = g_test_run();
  dtls_identity_free(id_gw);
  dtls_identity_free(id_browser);
  return r;
}
