/* The media path of one call, per packet: CPU time of the bridge's two
 * directions on loopback, against references measured in the same run.
 *
 *   browser -> PBX: SRTP datagram on the leg's ICE socket -> libnice recv ->
 *     demux -> SRTP unprotect -> PT map -> sendto (rtp_socket) -> the PBX
 *   PBX -> browser: RTP datagram on the rtp_socket -> recvfrom -> source
 *     check ([media] rtp_source = sdp) -> PT map -> SRTP protect ->
 *     ice_agent_send (libnice sendto) -> the fake browser
 *
 * Each batch of packets is queued in the receiving socket first (not timed),
 * then the default main context is run until the bridge has forwarded the
 * whole batch (timed, CLOCK_THREAD_CPUTIME_ID: everything runs on this
 * thread).  The fake browser's ICE runs on its own context, drained between
 * batches, so its cost is not counted.  References: a plain recvfrom/sendto
 * relay of the same packets, and libsrtp2 protect and unprotect alone.
 *
 * Usage: media_path [N]   (N packets each way, default 200000)
 * Instruction counts: see the line printed at the end (callgrind). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
#include "webrtc/ice.h"
#include "webrtc/rtp_socket.h"
#include "webrtc/srtp.h"

#define PKT 172   /* RTP header + 160 bytes of G.711, 20 ms */
#define BATCH 64  /* well within a loopback socket's default buffer */

static const char *const loopback[] = {"127.0.0.1", NULL};

typedef struct {
  browser_leg *leg;
  rtp_socket *rs;
  media_bridge *bridge;
  bool ready, failed;
  GMainContext *fb_ctx;
  ice_agent *ice;
  dtls_session *dtls;
  srtp_leg *srtp;
  bool fb_gathered, leg_gathered;
} bench;

static double cpu_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void leg_gathered(void *u) { ((bench *)u)->leg_gathered = true; }
static void leg_ready(void *u) { ((bench *)u)->ready = true; }
static void leg_failed(void *u, const char *why) { ((bench *)u)->failed = true; }
static void fb_gathered(void *u) { ((bench *)u)->fb_gathered = true; }
static void fb_state(void *u, ice_state st)
{
  if (st == ICE_CONNECTED)
    dtls_session_start(((bench *)u)->dtls);
}
static void fb_receive(void *u, uint8_t *data, size_t len)
{
  bench *b = u;
  if (demux_classify(data, len) == DEMUX_DTLS)
    dtls_session_feed(b->dtls, data, len);
  /* media: dropped unread, not part of the figures */
}
static void fb_send(void *u, const uint8_t *data, size_t len) { (void)ice_agent_send(((bench *)u)->ice, data, len); }
static void fb_connected(void *u, const dtls_srtp_keys *k)
{
  if (srtp_leg_new(k, &((bench *)u)->srtp) < 0)
    abort();
}
static void fb_failed(void *u, const char *why) { ((bench *)u)->failed = true; }

static const browser_leg_callbacks leg_cb = {leg_gathered, leg_ready, leg_failed};
static const ice_callbacks fb_ice_cb = {fb_gathered, fb_state, fb_receive};
static const dtls_callbacks fb_dtls_cb = {fb_send, fb_connected, fb_failed};

static void pump(bench *b)
{
  g_main_context_iteration(NULL, FALSE);
  g_main_context_iteration(b->fb_ctx, FALSE);
}

static bool pump_until(bench *b, bool *flag1, bool *flag2, unsigned ms)
{
  gint64 end = g_get_monotonic_time() + ms * 1000;
  while (!(*flag1 && *flag2) && !b->failed && g_get_monotonic_time() < end) {
    pump(b);
    g_usleep(100);
  }
  return *flag1 && *flag2;
}

static int udp_socket(uint16_t *port)
{
  struct sockaddr_in sin = {.sin_family = AF_INET};
  socklen_t len = sizeof sin;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
      getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
    abort();
  *port = ntohs(sin.sin_port);
  return fd;
}

static struct sockaddr_in to(uint16_t port)
{
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  return sin;
}

static void drain(int fd)
{
  uint8_t buf[2048];
  while (recv(fd, buf, sizeof buf, 0) > 0)
    ;
}

static size_t make_rtp(uint8_t *buf, uint32_t seq, uint8_t pt)
{
  buf[0] = 0x80;
  buf[1] = pt;
  buf[2] = (uint8_t)(seq >> 8), buf[3] = (uint8_t)seq;
  buf[4] = (uint8_t)(seq >> 24), buf[5] = (uint8_t)(seq >> 16), buf[6] = (uint8_t)(seq >> 8), buf[7] = (uint8_t)seq;
  memset(buf + 8, 0x42, 4);
  memset(buf + 12, (int)(seq & 0xff), PKT - 12);
  return PKT;
}

static uint64_t leg_rtp_in(bench *b) { browser_leg_stats s; browser_leg_get_stats(b->leg, &s); return s.rtp_in; }
static uint64_t rs_rtp_in(bench *b) { rtp_socket_stats s; rtp_socket_get_stats(b->rs, &s); return s.rtp_in; }

int main(int argc, char **argv)
{
  unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 200000;
  n -= n % BATCH;
  if (n == 0)
    n = BATCH;
  bench b = {0};
  dtls_identity *id_gw, *id_br;
  uint16_t pbx_port, relay_in_port, relay_sink_port;
  int pbx = udp_socket(&pbx_port); /* the PBX: its SDP's address, where its RTP comes from */
  int relay_in = udp_socket(&relay_in_port), relay_sink = udp_socket(&relay_sink_port);
  uint8_t pkts[BATCH][PKT + SRTP_LEG_MAX_TRAILER];
  size_t lens[BATCH];

  log_set_level(LOG_WARNING);
  if (dtls_identity_new(&id_gw) < 0 || dtls_identity_new(&id_br) < 0)
    return 1;

  /* ---- one call, set up as in tests/integration/test_media_bridge.c ---- */
  b.fb_ctx = g_main_context_new();
  browser_leg_settings ls = {.role = DTLS_ROLE_SERVER, .peer_fingerprint = dtls_identity_fingerprint(id_br),
                             .ice = {.local_addresses = loopback, .log_id = "leg"}};
  ice_settings fs = {.controlling = true, .local_addresses = loopback, .context = b.fb_ctx, .log_id = "browser"};
  rtp_socket_settings rss = {.local_address = "127.0.0.1", .port_min = 31180, .port_max = 31199};
  media_bridge_settings bs = {.timeout_ms = 30000, .log_id = "bridge"};
  static const media_bridge_pt_pair map[] = {{111, 0}, {126, 101}};
  if (browser_leg_new(id_gw, &ls, &leg_cb, &b, &b.leg) < 0 || rtp_socket_new(&rss, &b.rs) < 0 ||
      rtp_socket_set_remote(b.rs, "127.0.0.1", pbx_port, 0) < 0 ||
      media_bridge_new(browser_leg_media(b.leg), b.rs, &bs, NULL, NULL, &b.bridge) < 0 ||
      media_bridge_set_pt_map(b.bridge, map, G_N_ELEMENTS(map)) < 0 ||
      ice_agent_new(&fs, &fb_ice_cb, &b, &b.ice) < 0 ||
      dtls_session_new(id_br, DTLS_ROLE_CLIENT, dtls_identity_fingerprint(id_gw), &fb_dtls_cb, &b, &b.dtls) < 0)
    return 1;
  ice_agent_gather(browser_leg_ice(b.leg));
  ice_agent_gather(b.ice);
  if (!pump_until(&b, &b.leg_gathered, &b.fb_gathered, 5000))
    return 1;
  {
    g_auto(GStrv) cl = ice_agent_local_candidates(browser_leg_ice(b.leg));
    g_auto(GStrv) cb = ice_agent_local_candidates(b.ice);
    const char *ul, *pl, *ub, *pb;
    ice_agent_local_credentials(browser_leg_ice(b.leg), &ul, &pl);
    ice_agent_local_credentials(b.ice, &ub, &pb);
    ice_agent_set_remote(browser_leg_ice(b.leg), ub, pb, (const char *const *)cb);
    ice_agent_set_remote(b.ice, ul, pl, (const char *const *)cl);
  }
  bool t = true;
  if (!pump_until(&b, &b.ready, &t, 5000) || !b.srtp) {
    for (int i = 0; i < 200 && !b.srtp; i++) { pump(&b); g_usleep(1000); }
    if (!b.srtp || !b.ready) {
      fprintf(stderr, "setup failed\n");
      return 1;
    }
  }
  /* one packet PBX -> browser first: the bridge's PBX side is warm */
  {
    struct sockaddr_in dst = to(rtp_socket_local_port(b.rs));
    uint8_t p[PKT];
    sendto(pbx, p, make_rtp(p, 0, 0), 0, (struct sockaddr *)&dst, sizeof dst);
    for (int i = 0; i < 50; i++) { pump(&b); g_usleep(1000); }
  }

  /* ---- browser -> PBX through the bridge ---- */
  double t_b2p = 0, t_b2p_inject = 0;
  uint32_t seq = 1;
  for (unsigned done = 0; done < n; done += BATCH) {
    uint64_t want = leg_rtp_in(&b) + BATCH;
    for (int i = 0; i < BATCH; i++) {
      size_t len = make_rtp(pkts[i], seq++, 111);
      srtp_leg_protect(b.srtp, pkts[i], &len, sizeof pkts[i]);
      if (ice_agent_send(b.ice, pkts[i], len) < 0)
        abort();
    }
    double t0 = cpu_now();
    gint64 end = g_get_monotonic_time() + G_USEC_PER_SEC;
    while (leg_rtp_in(&b) < want && g_get_monotonic_time() < end)
      g_main_context_iteration(NULL, FALSE);
    t_b2p += cpu_now() - t0;
    if (leg_rtp_in(&b) < want) {
      fprintf(stderr, "browser -> PBX: packets lost in the kernel; try again\n");
      return 1;
    }
    drain(pbx);
  }
  /* the same, entering at the leg's receive function (no libnice, no poll) */
  for (unsigned done = 0; done < n; done += BATCH) {
    uint8_t work[PKT + SRTP_LEG_MAX_TRAILER];
    for (int i = 0; i < BATCH; i++) {
      lens[i] = make_rtp(pkts[i], seq++, 111);
      srtp_leg_protect(b.srtp, pkts[i], &lens[i], sizeof pkts[i]);
    }
    double t0 = cpu_now();
    for (int i = 0; i < BATCH; i++) {
      memcpy(work, pkts[i], lens[i]);
      browser_leg_inject(b.leg, work, lens[i]);
    }
    t_b2p_inject += cpu_now() - t0;
    drain(pbx);
  }

  /* ---- PBX -> browser through the bridge ---- */
  double t_p2b = 0;
  struct sockaddr_in dst = to(rtp_socket_local_port(b.rs));
  for (unsigned done = 0; done < n; done += BATCH) {
    uint64_t want = rs_rtp_in(&b) + BATCH;
    for (int i = 0; i < BATCH; i++) {
      uint8_t p[PKT];
      sendto(pbx, p, make_rtp(p, seq++, 0), 0, (struct sockaddr *)&dst, sizeof dst);
    }
    double t0 = cpu_now();
    gint64 end = g_get_monotonic_time() + G_USEC_PER_SEC;
    while (rs_rtp_in(&b) < want && g_get_monotonic_time() < end)
      g_main_context_iteration(NULL, FALSE);
    t_p2b += cpu_now() - t0;
    if (rs_rtp_in(&b) < want) {
      fprintf(stderr, "PBX -> browser: packets lost in the kernel; try again\n");
      return 1;
    }
    while (g_main_context_iteration(b.fb_ctx, FALSE)) /* the fake browser reads them, not timed */
      ;
  }

  /* ---- reference: a plain recvfrom/sendto relay of the same packets ---- */
  double t_relay = 0;
  struct sockaddr_in relay_dst = to(relay_in_port), relay_out = to(relay_sink_port);
  for (unsigned done = 0; done < n; done += BATCH) {
    for (int i = 0; i < BATCH; i++) {
      uint8_t p[PKT];
      sendto(pbx, p, make_rtp(p, seq++, 0), 0, (struct sockaddr *)&relay_dst, sizeof relay_dst);
    }
    double t0 = cpu_now();
    for (int got = 0; got < BATCH;) {
      uint8_t buf[2048];
      struct sockaddr_storage from;
      socklen_t fl = sizeof from;
      ssize_t r = recvfrom(relay_in, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
      if (r < 0)
        continue; /* not there yet */
      buf[1] = 111;
      sendto(relay_in, buf, (size_t)r, 0, (struct sockaddr *)&relay_out, sizeof relay_out);
      got++;
    }
    t_relay += cpu_now() - t0;
    drain(relay_sink);
  }

  /* ---- reference: libsrtp2 alone (srtp_leg), a pair of legs with mirrored keys ---- */
  double t_protect = 0, t_unprotect = 0;
  {
    dtls_srtp_keys ka = {.profile = DTLS_SRTP_AEAD_AES_128_GCM, .key_len = 16, .salt_len = 12}, kb;
    for (int i = 0; i < 16; i++)
      ka.local_key[i] = (uint8_t)i, ka.remote_key[i] = (uint8_t)(0x80 + i);
    for (int i = 0; i < 12; i++)
      ka.local_salt[i] = (uint8_t)(0x40 + i), ka.remote_salt[i] = (uint8_t)(0xc0 + i);
    kb = ka;
    memcpy(kb.local_key, ka.remote_key, 16), memcpy(kb.remote_key, ka.local_key, 16);
    memcpy(kb.local_salt, ka.remote_salt, 12), memcpy(kb.remote_salt, ka.local_salt, 12);
    srtp_leg *la, *lb;
    if (srtp_leg_new(&ka, &la) < 0 || srtp_leg_new(&kb, &lb) < 0)
      return 1;
    for (unsigned done = 0; done < n; done += BATCH) {
      for (int i = 0; i < BATCH; i++)
        lens[i] = make_rtp(pkts[i], seq++, 111);
      double t0 = cpu_now();
      for (int i = 0; i < BATCH; i++)
        srtp_leg_protect(la, pkts[i], &lens[i], sizeof pkts[i]);
      double t1 = cpu_now();
      for (int i = 0; i < BATCH; i++)
        if (srtp_leg_unprotect(lb, pkts[i], &lens[i]) < 0)
          abort();
      t_unprotect += cpu_now() - t1;
      t_protect += t1 - t0;
    }
    srtp_leg_free(la);
    srtp_leg_free(lb);
  }

  browser_leg_stats lst;
  rtp_socket_stats rst;
  media_bridge_stats bst;
  browser_leg_get_stats(b.leg, &lst);
  rtp_socket_get_stats(b.rs, &rst);
  media_bridge_get_stats(b.bridge, &bst);

  double relay = t_relay / n;
  printf("rtcsipd media path, %u packets of %d bytes each way, SRTP AEAD_AES_128_GCM, one thread, loopback\n", n, PKT);
  printf("CPU time per packet (CLOCK_THREAD_CPUTIME_ID):\n");
  printf("  %-52s %8.0f ns  (x%.2f relay)\n", "browser -> PBX (libnice recv .. sendto)", t_b2p / n, t_b2p / n / relay);
  printf("  %-52s %8.0f ns  (x%.2f relay)\n", "browser -> PBX from leg receive (unprotect .. sendto)", t_b2p_inject / n,
         t_b2p_inject / n / relay);
  printf("  %-52s %8.0f ns  (x%.2f relay)\n", "PBX -> browser (recvfrom .. protect .. libnice send)", t_p2b / n,
         t_p2b / n / relay);
  printf("reference, same run:\n");
  printf("  %-52s %8.0f ns\n", "plain relay recvfrom + sendto", relay);
  printf("  %-52s %8.0f ns\n", "srtp_leg_protect alone", t_protect / n);
  printf("  %-52s %8.0f ns\n", "srtp_leg_unprotect alone", t_unprotect / n);
  printf("  %-52s %8.0f ns\n", "bridge overhead b->p over relay + unprotect",
         t_b2p / n - relay - t_unprotect / n);
  printf("  %-52s %8.0f ns\n", "bridge overhead p->b over relay + protect", t_p2b / n - relay - t_protect / n);
  printf("counters: leg rtp_in %" G_GUINT64_FORMAT " rtp_out %" G_GUINT64_FORMAT " auth_failures %" G_GUINT64_FORMAT
         " drops %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "; socket rtp_in %" G_GUINT64_FORMAT " rtp_out %" G_GUINT64_FORMAT
         " drops %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " rejected source %" G_GUINT64_FORMAT
         "; bridge runts %" G_GUINT64_FORMAT "\n",
         lst.rtp_in, lst.rtp_out, lst.auth_failures, lst.drops_in, lst.drops_out, rst.rtp_in, rst.rtp_out, rst.drops_in,
         rst.no_remote, rst.send_failed, rst.rejected_source, bst.runts);
  printf("instruction counts: valgrind --tool=callgrind --callgrind-out-file=callgrind.media_path %s 20000 &&"
         " callgrind_annotate --inclusive=yes callgrind.media_path | head -40\n", argv[0]);

  media_bridge_free(b.bridge);
  browser_leg_free(b.leg);
  rtp_socket_free(b.rs);
  dtls_session_free(b.dtls);
  ice_agent_free(b.ice);
  srtp_leg_free(b.srtp);
  for (int i = 0; i < 20; i++)
    pump(&b);
  g_main_context_unref(b.fb_ctx);
  dtls_identity_free(id_gw);
  dtls_identity_free(id_br);
  close(pbx), close(relay_in), close(relay_sink);
  return 0;
}
