/* webrtc/ice.c: two real libnice agents through the ice_agent API on
 * 127.0.0.1 UDP, one controlling and one controlled, as a browser call has. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <gio/gio.h>
#include <glib.h>

#include "webrtc/ice.h"

#define PACKETS 1000

typedef struct {
  const char *name;
  ice_agent *agent;
  bool gathered;
  ice_state state;
  gint64 state_at[ICE_FAILED + 1]; /* monotonic time each state was reported */
  unsigned states_reported;
  unsigned received, bad;
  uint32_t next_seq;
  unsigned free_after; /* > 0: ice_agent_free() itself inside on_receive after this many */
  bool free_on_checking;
} peer;

static void on_gathered(void *user) {
  peer *p = user;
  p->gathered = true;
}

static void on_state(void *user, ice_state state) {
  peer *p = user;
  p->state = state;
  p->state_at[state] = g_get_monotonic_time();
  p->states_reported++;
  if (state == ICE_CHECKING && p->free_on_checking) {
    ice_agent_free(p->agent);
    p->agent = NULL;
  }
}

/* packet i: 4-byte big-endian sequence number, then bytes (seq + k) & 0xff;
 * length 60 + (seq * 7) % 1100 */
static size_t packet_fill(uint8_t *buf, uint32_t seq) {
  size_t len = 60 + (seq * 7) % 1100;
  buf[0] = seq >> 24, buf[1] = seq >> 16, buf[2] = seq >> 8, buf[3] = seq;
  for (size_t k = 4; k < len; k++)
    buf[k] = (uint8_t)(seq + k);
  return len;
}

static void on_receive(void *user, uint8_t *data, size_t len) {
  peer *p = user;
  uint8_t want[1200];
  if (len < 4) {
    p->bad++;
    return;
  }
  uint32_t seq = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
  size_t wlen = packet_fill(want, seq);
  if (seq != p->next_seq || len != wlen || memcmp(data, want, len) != 0)
    p->bad++;
  p->next_seq = seq + 1;
  p->received++;
  data[0] ^= 0xff; /* the buffer is ours to modify */
  if (p->free_after && p->received == p->free_after) {
    ice_agent_free(p->agent);
    p->agent = NULL;
  }
}

static const ice_callbacks callbacks = { on_gathered, on_state, on_receive };
static const char *const loopback[] = { "127.0.0.1", NULL };

/* Port ranges in 31000-31049: below Linux's ephemeral ports (32768-60999,
 * which the other integration tests' free ports come from) and outside the
 * daemon's default RTP range (20000-29999). */
static ice_settings settings_for(bool controlling, uint16_t port_min, uint16_t port_max) {
  return (ice_settings){
    .controlling = controlling,
    .local_addresses = loopback,
    .port_min = port_min,
    .port_max = port_max,
    .connect_timeout_ms = 3000,
    .log_id = controlling ? "ice-L" : "ice-D",
  };
}

/* Runs the default context until done(data) or TIMEOUT_MS have passed. */
static bool run_until(bool (*done)(void *), void *data, unsigned timeout_ms) {
  gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  while (!done(data)) {
    if (g_get_monotonic_time() > end)
      return false;
    g_main_context_iteration(NULL, FALSE);
    g_usleep(200);
  }
  return true;
}

static void run_for(unsigned ms) {
  gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
  while (g_get_monotonic_time() < end) {
    g_main_context_iteration(NULL, FALSE);
    g_usleep(500);
  }
}

static bool both_gathered(void *d) {
  peer *p = d;
  return p[0].gathered && p[1].gathered;
}

static bool both_connected(void *d) {
  peer *p = d;
  return p[0].state == ICE_CONNECTED && p[1].state == ICE_CONNECTED;
}

static bool first_checking(void *d) {
  peer *p = d;
  return p[0].state >= ICE_CHECKING;
}

/* "candidate:1 1 UDP 2015363327 127.0.0.1 40000 typ host" */
static void check_candidates(char **cands, uint16_t port_min, uint16_t port_max) {
  g_assert_nonnull(cands);
  g_assert_cmpuint(g_strv_length(cands), >=, 1);
  for (char **c = cands; *c; c++) {
    g_test_message("candidate %s", *c);
    g_assert_true(g_str_has_prefix(*c, "candidate:"));
    g_auto(GStrv) tok = g_strsplit(*c, " ", 0);
    g_assert_cmpuint(g_strv_length(tok), >=, 8);
    g_assert_cmpstr(tok[1], ==, "1");
    g_assert_cmpstr(tok[2], ==, "UDP");
    g_assert_cmpstr(tok[6], ==, "typ");
    if (strcmp(tok[7], "host") != 0)
      continue; /* srflx, relay: address and port are the server's choice */
    g_assert_cmpstr(tok[4], ==, "127.0.0.1");
    guint64 port = g_ascii_strtoull(tok[5], NULL, 10);
    g_assert_cmpuint(port, >=, port_min);
    g_assert_cmpuint(port, <=, port_max);
  }
}

/* Both agents gathered, and each given the other's credentials; WRONG_PWD
 * (if not NULL) replaces the password given to p[WRONG_SIDE]. */
static void setup_pair_filtered(peer p[2], const char *wrong_pwd, int wrong_side,
                                const ice_filter *filter_d) {
  ice_settings sl = settings_for(true, 31000, 31009), sd = settings_for(false, 31010, 31019);
  sd.filter = filter_d;
  g_assert_cmpint(ice_agent_new(&sl, &callbacks, &p[0], &p[0].agent), ==, 0);
  g_assert_cmpint(ice_agent_new(&sd, &callbacks, &p[1], &p[1].agent), ==, 0);
  g_assert_cmpint(ice_agent_gather(p[0].agent), ==, 0);
  g_assert_cmpint(ice_agent_gather(p[1].agent), ==, 0);
  g_assert_false(p[0].gathered); /* never from inside an API call */
  g_assert_true(run_until(both_gathered, p, 5000));

  g_auto(GStrv) cl = ice_agent_local_candidates(p[0].agent);
  g_auto(GStrv) cd = ice_agent_local_candidates(p[1].agent);
  check_candidates(cl, 31000, 31009);
  check_candidates(cd, 31010, 31019);

  const char *ul, *pl, *ud, *pd;
  ice_agent_local_credentials(p[0].agent, &ul, &pl);
  ice_agent_local_credentials(p[1].agent, &ud, &pd);
  g_assert_cmpuint(strlen(ul), >=, 4);
  g_assert_cmpuint(strlen(pl), >=, 22);
  g_assert_cmpstr(ul, !=, ud);

  /* as they would come out of an SDP: one with "a=" and a CR, one without */
  g_autofree char *with_a = g_strconcat("a=", cl[0], "\r", NULL);
  const char *const cl_sdp[] = { with_a, NULL };
  /* what a browser also sends and libnice cannot use: skipped, not fatal */
  const char *const cd_sdp[] = {
    cd[0],
    "candidate:2 1 udp 2113937151 0a1b2c3d-1111-2222-3333-444455556666.local 50000 typ host generation 0",
    "candidate:3 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0",
    "candidate:4 2 udp 2113937150 127.0.0.1 50001 typ host",
    "garbage",
    NULL,
  };
  g_assert_cmpint(ice_agent_set_remote(p[0].agent, ud, wrong_pwd && wrong_side == 0 ? wrong_pwd : pd,
                                       cd_sdp), ==, 0);
  g_assert_cmpint(ice_agent_set_remote(p[1].agent, ul, wrong_pwd && wrong_side == 1 ? wrong_pwd : pl,
                                       cl_sdp), ==, 0);
}

static void setup_pair(peer p[2], const char *wrong_pwd, int wrong_side) {
  setup_pair_filtered(p, wrong_pwd, wrong_side, NULL);
}

static void test_connect_and_exchange(void) {
  peer p[2] = { { .name = "controlling" }, { .name = "controlled" } };
  setup_pair(p, NULL, 0);

  gint64 t0 = g_get_monotonic_time();
  g_assert_true(run_until(both_connected, p, 5000));
  g_test_message("both connected after %" G_GINT64_FORMAT " ms", (g_get_monotonic_time() - t0) / 1000);
  g_assert_cmpint(p[0].state_at[ICE_CHECKING], >, 0);

  /* in bursts, so that loopback socket buffers never overflow */
  uint8_t buf[1200];
  for (uint32_t seq = 0; seq < PACKETS;) {
    for (unsigned k = 0; k < 50 && seq < PACKETS; k++, seq++) {
      size_t len = packet_fill(buf, seq);
      g_assert_cmpint(ice_agent_send(p[0].agent, buf, len), ==, 0);
      len = packet_fill(buf, seq);
      g_assert_cmpint(ice_agent_send(p[1].agent, buf, len), ==, 0);
    }
    gint64 end = g_get_monotonic_time() + 2 * G_TIME_SPAN_SECOND;
    while ((p[0].received < seq || p[1].received < seq) && g_get_monotonic_time() < end)
      g_main_context_iteration(NULL, TRUE);
  }
  run_for(100);
  g_assert_cmpuint(p[0].bad, ==, 0);
  g_assert_cmpuint(p[1].bad, ==, 0);
  g_assert_cmpuint(p[0].received, ==, PACKETS);
  g_assert_cmpuint(p[1].received, ==, PACKETS);
  g_assert_cmpint(p[0].state, ==, ICE_CONNECTED);
  g_assert_cmpint(p[1].state, ==, ICE_CONNECTED);

  ice_agent_free(p[0].agent);
  ice_agent_free(p[1].agent);
  run_for(50);
}

/* The controlling agent (rtcsipd in a call from the PBX) nominates in its
 * first check (aggressive nomination): connected one pacing tick (Ta,
 * 20 ms) after its checks start, plus a round trip.  Regular nomination
 * takes three ticks (the check, the stopping criterion, the check with
 * USE-CANDIDATE): 60 ms at the least, as timers never fire early. */
static void test_controlling_nominates_at_once(void) {
  peer p[2] = { { .name = "controlling" }, { .name = "controlled" } };
  setup_pair(p, NULL, 0);
  g_assert_true(run_until(both_connected, p, 5000));
  gint64 ms = (p[0].state_at[ICE_CONNECTED] - p[0].state_at[ICE_CHECKING]) / 1000;
  g_test_message("controlling: connected %" G_GINT64_FORMAT " ms after checking", ms);
  g_assert_cmpint(p[0].state_at[ICE_CHECKING], >, 0);
  g_assert_cmpint(ms, <, 50);
  ice_agent_free(p[0].agent);
  ice_agent_free(p[1].agent);
  run_for(50);
}

static bool wrong_side_failed(void *d) {
  peer *p = d;
  return p->state == ICE_FAILED;
}

/* The side given a wrong password for its peer: its checks are rejected, so
 * it must report ICE_FAILED, at the latest when connect_timeout_ms (3 s)
 * runs out.  (The other side's checks are fine: it may connect, correctly.) */
static void wrong_password(int side) {
  peer p[2] = { { .name = "controlling" }, { .name = "controlled" } };
  setup_pair(p, "wrongwrongwrongwrongwrong", side);
  gint64 t0 = g_get_monotonic_time();
  bool failed = run_until(wrong_side_failed, &p[side], 3000 + 500);
  gint64 ms = (g_get_monotonic_time() - t0) / 1000;
  g_test_message("%s (wrong password): %s after %" G_GINT64_FORMAT " ms; %s: %s",
                 p[side].name, ice_state_to_string(p[side].state), ms,
                 p[!side].name, ice_state_to_string(p[!side].state));
  g_assert_true(failed);
  g_assert_cmpint(p[side].state_at[ICE_CONNECTED], ==, 0);
  g_assert_cmpint(ice_agent_send(p[side].agent, (const uint8_t *)"x", 1), ==, -ENOTCONN);
  run_for(200);
  g_assert_cmpint(p[side].state, ==, ICE_FAILED); /* terminal */
  ice_agent_free(p[0].agent);
  ice_agent_free(p[1].agent);
  run_for(50);
}

static void test_wrong_password_controlled(void) {
  wrong_password(1);
}

static void test_wrong_password_controlling(void) {
  wrong_password(0);
}

static void test_free_mid_connect(void) {
  /* at several points of the checks (they connect after about 60 ms here) */
  static const unsigned delays_ms[] = { 0, 5, 20, 40 };
  for (unsigned i = 0; i < G_N_ELEMENTS(delays_ms); i++) {
    peer p[2] = { { .name = "controlling" }, { .name = "controlled" } };
    setup_pair(p, NULL, 0);
    g_assert_true(run_until(first_checking, p, 1000));
    run_for(delays_ms[i]);
    ice_agent_free(p[i % 2].agent); /* while checks are in flight */
    p[i % 2].agent = NULL;
    run_for(300);
    ice_agent_free(p[!(i % 2)].agent);
    run_for(50);
  }
}

static void test_free_from_callbacks(void) {
  /* the controlling side frees itself in on_state(ICE_CHECKING) */
  peer p[2] = { { .name = "controlling", .free_on_checking = true }, { .name = "controlled" } };
  setup_pair(p, NULL, 0);
  run_for(300);
  g_assert_null(p[0].agent);
  g_assert_cmpuint(p[0].states_reported, ==, 2); /* gathering, checking: nothing after free */
  ice_agent_free(p[1].agent);
  run_for(50);

  /* the controlled side frees itself in on_receive, with packets still coming */
  peer q[2] = { { .name = "controlling" }, { .name = "controlled", .free_after = 10 } };
  setup_pair(q, NULL, 0);
  g_assert_true(run_until(both_connected, q, 5000));
  uint8_t buf[1200];
  for (uint32_t seq = 0; seq < 100; seq++) {
    size_t len = packet_fill(buf, seq);
    g_assert_cmpint(ice_agent_send(q[0].agent, buf, len), ==, 0);
  }
  run_for(300);
  g_assert_null(q[1].agent);
  g_assert_cmpuint(q[1].received, ==, 10);
  ice_agent_free(q[0].agent);
  run_for(50);
}

/* The selected pair as a socket of our own (ice_agent_fastpath_open, what a
 * media worker reads): the peer's datagrams reach it and not libnice, ours
 * sent on it reach the peer; once it is closed libnice gets them again.
 * (libnice runs no consent of its own any more: a vanished peer is the media
 * worker's to notice, gateway/media_engine.h.) */
static void test_fastpath(void) {
  peer p[2] = { { .name = "controlling" }, { .name = "controlled" } };
  uint8_t buf[1200];
  char *ufrag = NULL, *pwd = NULL;

  setup_pair(p, NULL, 0);
  g_assert_true(run_until(both_connected, p, 5000));
  run_for(100); /* nominations settle */
  int fd = ice_agent_fastpath_open(p[1].agent, &ufrag, &pwd);
  g_assert_cmpint(fd, >=, 0);
  const char *u, *pw;
  ice_agent_local_credentials(p[1].agent, &u, &pw);
  g_assert_cmpstr(ufrag, ==, u);
  g_assert_cmpstr(pwd, ==, pw);

  for (uint32_t seq = 0; seq < 100; seq++)
    g_assert_cmpint(ice_agent_send(p[0].agent, buf, packet_fill(buf, seq)), ==, 0);
  unsigned got = 0;
  gint64 end = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
  while (got < 100 && g_get_monotonic_time() < end) {
    g_main_context_iteration(NULL, FALSE);
    uint8_t in[1500];
    ssize_t n = recv(fd, in, sizeof in, MSG_DONTWAIT);
    if (n < 0) {
      g_usleep(500);
      continue;
    }
    uint8_t want[1200];
    static const uint8_t cookie[4] = { 0x21, 0x12, 0xa4, 0x42 };
    if (n >= 8 && memcmp(in + 4, cookie, 4) == 0)
      continue; /* libnice's keepalive (a STUN indication) */
    g_assert_cmpmem(in, n, want, packet_fill(want, got++));
  }
  g_assert_cmpuint(got, ==, 100);
  g_assert_cmpuint(p[1].received, ==, 0);

  for (uint32_t seq = 0; seq < 100; seq++) {
    size_t len = packet_fill(buf, seq);
    g_assert_cmpint(send(fd, buf, len, 0), ==, (ssize_t)len);
  }
  run_for(300);
  g_assert_cmpuint(p[0].received, ==, 100);
  g_assert_cmpuint(p[0].bad, ==, 0);

  close(fd);
  for (uint32_t seq = 0; seq < 10; seq++)
    g_assert_cmpint(ice_agent_send(p[0].agent, buf, packet_fill(buf, seq)), ==, 0);
  run_for(300);
  g_assert_cmpuint(p[1].received, ==, 10);
  g_free(ufrag);
  g_free(pwd);
  ice_agent_free(p[0].agent);
  ice_agent_free(p[1].agent);
  run_for(50);
}

/* Datagrams from an address that never passed a connectivity check are
 * not delivered to on_receive (libnice drops them), neither while checking
 * nor once connected. */
static void test_stranger_dropped(void) {
  peer p[2] = { { .name = "controlling" }, { .name = "controlled" } };
  setup_pair(p, NULL, 0);
  g_auto(GStrv) cands = ice_agent_local_candidates(p[1].agent);
  g_auto(GStrv) tok = g_strsplit(cands[0], " ", 0);
  GSocket *stranger = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new_from_string(tok[4], (guint)g_ascii_strtoull(tok[5], NULL, 10));
  uint8_t buf[1200];
  size_t len = packet_fill(buf, 0);
  g_assert_cmpint(g_socket_send_to(stranger, to, (const gchar *)buf, len, NULL, NULL), ==, (gssize)len);
  g_assert_true(run_until(both_connected, p, 5000));
  g_assert_cmpint(g_socket_send_to(stranger, to, (const gchar *)buf, len, NULL, NULL), ==, (gssize)len);
  run_for(100);
  g_assert_cmpuint(p[1].received, ==, 0);
  g_assert_cmpint(ice_agent_send(p[0].agent, buf, len), ==, 0); /* the real peer's is */
  run_for(100);
  g_assert_cmpuint(p[1].received, ==, 1);
  g_assert_cmpuint(p[1].bad, ==, 0);
  g_object_unref(stranger);
  ice_agent_free(p[0].agent);
  ice_agent_free(p[1].agent);
  run_for(50);
}

/* An ICE restart (a re-INVITE with new credentials) on a connected call:
 * new local credentials, the same candidates, media keeps flowing and the
 * state stays connected. */
static void test_restart(void) {
  peer p[2] = { { .name = "controlling" }, { .name = "controlled" } };
  setup_pair(p, NULL, 0);
  g_assert_true(run_until(both_connected, p, 5000));
  const char *u, *w;
  ice_agent_local_credentials(p[0].agent, &u, &w);
  g_autofree char *old_ufrag = g_strdup(u);
  g_assert_cmpint(ice_agent_restart(p[0].agent, true), ==, 0);
  g_assert_cmpint(ice_agent_restart(p[1].agent, false), ==, 0);
  const char *ul, *pl, *ud, *pd;
  ice_agent_local_credentials(p[0].agent, &ul, &pl);
  ice_agent_local_credentials(p[1].agent, &ud, &pd);
  g_assert_cmpstr(ul, !=, old_ufrag);
  g_auto(GStrv) cl = ice_agent_local_candidates(p[0].agent);
  g_auto(GStrv) cd = ice_agent_local_candidates(p[1].agent);
  check_candidates(cl, 31000, 31009);
  check_candidates(cd, 31010, 31019);
  g_assert_cmpint(ice_agent_set_remote(p[0].agent, ud, pd, (const char *const *)cd), ==, 0);
  g_assert_cmpint(ice_agent_set_remote(p[1].agent, ul, pl, (const char *const *)cl), ==, 0);
  run_for(500);
  uint8_t buf[1200];
  for (uint32_t seq = 0; seq < 20; seq++) {
    size_t len = packet_fill(buf, seq);
    g_assert_cmpint(ice_agent_send(p[0].agent, buf, len), ==, 0);
    g_assert_cmpint(ice_agent_send(p[1].agent, buf, len), ==, 0);
  }
  run_for(200);
  g_assert_cmpuint(p[0].received, ==, 20);
  g_assert_cmpuint(p[1].received, ==, 20);
  g_assert_cmpuint(p[0].bad + p[1].bad, ==, 0);
  g_assert_cmpint(p[0].state, ==, ICE_CONNECTED);
  g_assert_cmpint(p[1].state, ==, ICE_CONNECTED);
  ice_agent_free(p[0].agent);
  ice_agent_free(p[1].agent);
  run_for(50);
}

/* Every port of the configured range in use: gathering fails, it does not
 * fall back to a port outside the range. */
static void test_port_range_exhausted(void) {
  peer p[2] = { { .name = "first" }, { .name = "second" } };
  ice_settings s = settings_for(false, 31020, 31020);
  g_assert_cmpint(ice_agent_new(&s, &callbacks, &p[0], &p[0].agent), ==, 0);
  g_assert_cmpint(ice_agent_new(&s, &callbacks, &p[1], &p[1].agent), ==, 0);
  g_assert_cmpint(ice_agent_gather(p[0].agent), ==, 0);
  g_assert_cmpint(ice_agent_gather(p[1].agent), ==, -EIO);
  run_for(50);
  g_auto(GStrv) c = ice_agent_local_candidates(p[0].agent);
  check_candidates(c, 31020, 31020);
  ice_agent_free(p[0].agent);
  ice_agent_free(p[1].agent);
  run_for(50);
}

/* A minimal STUN server (Binding only) on 127.0.0.1 that maps every client
 * to 127.0.0.2:(its port + 1000), so that the server-reflexive candidate
 * differs from the host one and libnice keeps it.  libnice 0.1.21 sends
 * classic RFC 3489 requests (no magic cookie) for server discovery even in
 * RFC 5245 mode, so this answers those with MAPPED-ADDRESS, and RFC 5389
 * ones with XOR-MAPPED-ADDRESS and FINGERPRINT. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffff;
  while (n--) {
    c ^= *p++;
    for (int k = 0; k < 8; k++)
      c = c & 1 ? (c >> 1) ^ 0xedb88320 : c >> 1;
  }
  return ~c;
}

static gboolean stun_server_read(GSocket *sock, GIOCondition cond, gpointer data) {
  static const uint8_t cookie[4] = { 0x21, 0x12, 0xa4, 0x42 }, mapped[4] = { 127, 0, 0, 2 };
  unsigned *requests = data;
  uint8_t in[1500], out[64] = { 0 };
  GSocketAddress *from = NULL;
  gssize n = g_socket_receive_from(sock, &from, (gchar *)in, sizeof in, NULL, NULL);
  if (n >= 20 && in[0] == 0x00 && in[1] == 0x01) { /* a Binding request */
    (*requests)++;
    bool rfc5389 = memcmp(in + 4, cookie, 4) == 0;
    uint16_t port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(from)) + 1000;
    size_t len = 32;
    out[0] = 0x01, out[1] = 0x01;                   /* Binding success */
    memcpy(out + 4, in + 4, 16);                     /* (cookie and) transaction id */
    out[21] = rfc5389 ? 0x20 : 0x01, out[23] = 8;    /* (XOR-)MAPPED-ADDRESS, IPv4 */
    out[25] = 0x01;
    if (rfc5389)
      port ^= 0x2112;
    out[26] = port >> 8, out[27] = port & 0xff;
    for (int k = 0; k < 4; k++)
      out[28 + k] = rfc5389 ? mapped[k] ^ cookie[k] : mapped[k];
    out[3] = 12;
    if (rfc5389) {
      out[3] = 12 + 8;
      out[32] = 0x80, out[33] = 0x28, out[35] = 4;   /* FINGERPRINT */
      uint32_t fp = crc32_ieee(out, 32) ^ 0x5354554e;
      out[36] = fp >> 24, out[37] = fp >> 16, out[38] = fp >> 8, out[39] = fp;
      len = 40;
    }
    g_socket_send_to(sock, from, (const gchar *)out, len, NULL, NULL);
  }
  g_clear_object(&from);
  return G_SOURCE_CONTINUE;
}

static bool gathered(void *d) {
  return ((peer *)d)->gathered;
}

static void test_stun_server(void) {
  unsigned requests = 0;
  GSocket *sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) bind_addr = g_inet_socket_address_new(lo, 0);
  g_assert_true(g_socket_bind(sock, bind_addr, FALSE, NULL));
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(sock, NULL);
  GSource *src = g_socket_create_source(sock, G_IO_IN, NULL);
  g_source_set_callback(src, (GSourceFunc)(void (*)(void))stun_server_read, &requests, NULL);
  g_source_attach(src, NULL);

  peer p = { .name = "stun" };
  ice_settings s = settings_for(false, 31030, 31039);
  s.stun_host = "localhost"; /* a name: libnice resolves it */
  s.stun_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
  g_assert_cmpint(ice_agent_new(&s, &callbacks, &p, &p.agent), ==, 0);
  g_assert_cmpint(ice_agent_gather(p.agent), ==, 0);
  g_assert_true(run_until(gathered, &p, 5000));
  g_auto(GStrv) c = ice_agent_local_candidates(p.agent);
  check_candidates(c, 31030, 31039);
  g_assert_cmpuint(requests, >=, 1);
  bool srflx = false;
  for (char **l = c; *l; l++) {
    g_auto(GStrv) tok = g_strsplit(*l, " ", 0);
    if (g_strv_length(tok) >= 12 && strcmp(tok[7], "srflx") == 0) {
      /* "candidate:2 1 UDP 1679819775 127.0.0.2 32031 typ srflx raddr 127.0.0.1 rport 31031" */
      g_assert_cmpstr(tok[4], ==, "127.0.0.2");
      g_assert_cmpstr(tok[8], ==, "raddr");
      g_assert_cmpstr(tok[9], ==, "127.0.0.1");
      g_assert_cmpuint(g_ascii_strtoull(tok[5], NULL, 10), ==, g_ascii_strtoull(tok[11], NULL, 10) + 1000);
      srflx = true;
    }
  }
  g_assert_true(srflx);
  ice_agent_free(p.agent);
  g_source_destroy(src);
  g_source_unref(src);
  g_object_unref(sock);
}

/* A STUN or TURN server that does not answer (nothing listens on
 * 127.0.0.1:3) delays gathering by a bounded time and leaves the host
 * candidate. */
static void test_servers_unreachable(void) {
  for (int i = 0; i < 3; i++) {
    peer p = { .name = "unreachable" };
    ice_settings s = settings_for(false, 31040, 31049);
    if (i == 0) {
      s.stun_host = "127.0.0.1", s.stun_port = 3;
    } else {
      s.turn_transport = i == 1 ? ICE_TURN_UDP : ICE_TURN_TCP;
      s.turn_host = "127.0.0.1", s.turn_port = 3;
      s.turn_username = "user", s.turn_password = "pass";
    }
    g_assert_cmpint(ice_agent_new(&s, &callbacks, &p, &p.agent), ==, 0);
    gint64 t0 = g_get_monotonic_time();
    g_assert_cmpint(ice_agent_gather(p.agent), ==, 0);
    g_assert_true(run_until(gathered, &p, 5000));
    g_test_message("%s: gathered after %" G_GINT64_FORMAT " ms",
                   i == 0 ? "stun" : i == 1 ? "turn/udp" : "turn/tcp",
                   (g_get_monotonic_time() - t0) / 1000);
    g_auto(GStrv) c = ice_agent_local_candidates(p.agent);
    check_candidates(c, 31040, 31049);
    ice_agent_free(p.agent);
    run_for(50);
  }
}

static void test_bad_settings(void) {
  ice_agent *a = NULL;
  ice_settings s = settings_for(false, 31020, 31010);
  g_assert_cmpint(ice_agent_new(&s, &callbacks, NULL, &a), ==, -EINVAL);
  s = settings_for(false, 0, 0);
  s.turn_transport = ICE_TURN_UDP;
  s.turn_host = "turn.example.org"; /* libnice would take it and never use it */
  s.turn_username = "user", s.turn_password = "pass";
  g_assert_cmpint(ice_agent_new(&s, &callbacks, NULL, &a), ==, -EINVAL);
  s = settings_for(false, 0, 0);
  const char *const bad_addr[] = { "not-an-address", NULL };
  s.local_addresses = bad_addr;
  g_assert_cmpint(ice_agent_new(&s, &callbacks, NULL, &a), ==, -EINVAL);
  s = settings_for(false, 0, 0);
  s.turn_transport = ICE_TURN_UDP;
  s.turn_host = "127.0.0.1";
  g_assert_cmpint(ice_agent_new(&s, &callbacks, NULL, &a), ==, -EINVAL); /* no credentials */
  g_assert_null(a);
}


/* ---- the candidate filter (webrtc/ice_filter.c) with libnice ---- */

/* The controlled agent (rtcsipd's side of a browser's call) is given none
 * of the peer's candidates (loopback refused), yet the peer's checks from
 * 127.0.0.1 make it learn a peer-reflexive candidate: both connect and
 * carry data. */
static void test_filter_prflx(void) {
  peer p[2] = { { .name = "controlling" }, { .name = "controlled" } };
  const ice_filter no_loopback = { .loopback = false, .candidates_max = 20 };
  setup_pair_filtered(p, NULL, 0, &no_loopback);
  g_assert_true(run_until(both_connected, p, 5000));
  uint8_t buf[1200];
  size_t len = packet_fill(buf, 0);
  g_assert_cmpint(ice_agent_send(p[1].agent, buf, len), ==, 0);
  len = packet_fill(buf, 0);
  g_assert_cmpint(ice_agent_send(p[0].agent, buf, len), ==, 0);
  run_for(200);
  g_assert_cmpuint(p[0].received, ==, 1);
  g_assert_cmpuint(p[1].received, ==, 1);
  ice_agent_free(p[0].agent);
  ice_agent_free(p[1].agent);
  run_for(50);
}

/* The same with the peer's address denied: its candidates are refused and
 * its checks dropped by the socket filter (no answer, nothing learned), so
 * neither side connects. */
static void test_filter_prflx_denied(void) {
  peer p[2] = { { .name = "controlling" }, { .name = "controlled" } };
  config_network deny;
  g_assert_cmpint(netlist_parse("127.0.0.1", &deny), ==, 0);
  const ice_filter denied = { .loopback = true, .deny = &deny, .n_deny = 1 };
  setup_pair_filtered(p, NULL, 0, &denied);
  g_assert_false(run_until(both_connected, p, 2500));
  g_assert_cmpint(p[0].state, !=, ICE_CONNECTED);
  g_assert_cmpint(p[1].state, !=, ICE_CONNECTED);
  ice_agent_free(p[0].agent);
  ice_agent_free(p[1].agent);
  run_for(50);
}

/* At most candidates_max of the peer's candidates over the agent's life,
 * ICE restarts included: with the one allowed used up by the first offer,
 * the restart's candidate is over the limit, and the media goes on (the
 * peer's checks with the new credentials come from a known address). */
static void test_filter_limit(void) {
  peer p[2] = { { .name = "controlling" }, { .name = "controlled" } };
  const ice_filter one = { .loopback = true, .candidates_max = 1 };
  setup_pair_filtered(p, NULL, 0, &one);
  g_assert_true(run_until(both_connected, p, 5000));
  g_assert_cmpint(ice_agent_restart(p[0].agent, true), ==, 0);
  g_assert_cmpint(ice_agent_restart(p[1].agent, false), ==, 0);
  const char *ul, *pl, *ud, *pd;
  ice_agent_local_credentials(p[0].agent, &ul, &pl);
  ice_agent_local_credentials(p[1].agent, &ud, &pd);
  g_auto(GStrv) cl = ice_agent_local_candidates(p[0].agent);
  g_auto(GStrv) cd = ice_agent_local_candidates(p[1].agent);
  g_assert_cmpint(ice_agent_set_remote(p[0].agent, ud, pd, (const char *const *)cd), ==, 0);
  g_assert_cmpint(ice_agent_set_remote(p[1].agent, ul, pl, (const char *const *)cl), ==, 0);
  run_for(1000);
  uint8_t buf[1200];
  for (uint32_t seq = 0; seq < 20; seq++) {
    size_t len = packet_fill(buf, seq);
    g_assert_cmpint(ice_agent_send(p[0].agent, buf, len), ==, 0);
    g_assert_cmpint(ice_agent_send(p[1].agent, buf, len), ==, 0);
  }
  run_for(200);
  g_assert_cmpuint(p[0].received, ==, 20);
  g_assert_cmpuint(p[1].received, ==, 20);
  ice_agent_free(p[0].agent);
  ice_agent_free(p[1].agent);
  run_for(50);
}

static GSocket *udp_bound(GSocketFamily family, const char *address) {
  GSocket *sock = g_socket_new(family, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_assert_nonnull(sock);
  g_autoptr(GInetAddress) ia = g_inet_address_new_from_string(address);
  g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(ia, 0);
  if (!g_socket_bind(sock, sa, FALSE, NULL)) {
    g_object_unref(sock);
    return NULL;
  }
  g_socket_set_blocking(sock, FALSE);
  return sock;
}

/* What reaches a socket carrying the filter from FROM: bit 0 a Binding
 * request, bit 1 a Binding success response, bit 2 an RTP packet, bit 3 a
 * 3-byte datagram. */
static unsigned filter_passes(GSocket *rx, GSocket *from) {
  uint8_t request[20] = { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3 };
  uint8_t response[20] = { 0x01, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 4, 5, 6 };
  uint8_t rtp[172] = { 0x80, 0x6f };
  uint8_t tiny[3] = { 0x00, 0x01, 0x00 };
  const struct { uint8_t *data; size_t len; } pk[] = {
    { request, sizeof request }, { response, sizeof response }, { rtp, sizeof rtp }, { tiny, sizeof tiny },
  };
  g_autoptr(GSocketAddress) to = g_socket_get_local_address(rx, NULL);
  unsigned got = 0;

  for (unsigned i = 0; i < G_N_ELEMENTS(pk); i++) {
    g_assert_cmpint(g_socket_send_to(from, to, (const gchar *)pk[i].data, pk[i].len, NULL, NULL), ==,
                    (gssize)pk[i].len);
    run_for(20);
    uint8_t in[2000];
    gssize n;
    while ((n = g_socket_receive(rx, (gchar *)in, sizeof in, NULL, NULL)) > 0)
      for (unsigned k = 0; k < G_N_ELEMENTS(pk); k++)
        if ((size_t)n == pk[k].len && memcmp(in, pk[k].data, pk[k].len) == 0)
          got |= 1u << k;
  }
  return got;
}

/* The socket filter in the kernel: from a denied or forbidden source only
 * the Binding requests are dropped; from anywhere else everything passes. */
static void test_filter_socket(void) {
  config_network deny[2];
  g_assert_cmpint(netlist_parse("127.0.0.64/26", &deny[0]), ==, 0);
  g_assert_cmpint(netlist_parse("::1", &deny[1]), ==, 0);
  const ice_filter f = { .loopback = true, .deny = deny, .n_deny = 2 };

  GSocket *rx = udp_bound(G_SOCKET_FAMILY_IPV4, "127.0.0.1");
  GSocket *good = udp_bound(G_SOCKET_FAMILY_IPV4, "127.0.0.1");
  GSocket *bad = udp_bound(G_SOCKET_FAMILY_IPV4, "127.0.0.77");
  GSocket *edge = udp_bound(G_SOCKET_FAMILY_IPV4, "127.0.0.128"); /* just past the /26 */
  g_assert_nonnull(rx);
  g_assert_nonnull(good);
  g_assert_nonnull(bad);
  g_assert_nonnull(edge);
  g_assert_cmpuint(filter_passes(rx, bad), ==, 0xf); /* no filter yet */
  g_assert_cmpint(ice_filter_attach(&f, g_socket_get_fd(rx)), ==, 0);
  g_assert_cmpuint(filter_passes(rx, good), ==, 0xf);
  g_assert_cmpuint(filter_passes(rx, edge), ==, 0xf);
  g_assert_cmpuint(filter_passes(rx, bad), ==, 0xe);
  /* NULL: forbidden sources only, and 127.0.0.77 is not one */
  g_assert_cmpint(ice_filter_attach(NULL, g_socket_get_fd(rx)), ==, 0);
  g_assert_cmpuint(filter_passes(rx, bad), ==, 0xf);
  g_object_unref(rx);
  g_object_unref(good);
  g_object_unref(bad);
  g_object_unref(edge);

  /* IPv6 (when the host has ::1): the four-word compare */
  GSocket *rx6 = udp_bound(G_SOCKET_FAMILY_IPV6, "::1");
  GSocket *bad6 = rx6 ? udp_bound(G_SOCKET_FAMILY_IPV6, "::1") : NULL;
  if (!rx6 || !bad6) {
    g_test_message("no ::1 here: IPv6 part skipped");
  } else {
    g_assert_cmpuint(filter_passes(rx6, bad6), ==, 0xf);
    g_assert_cmpint(ice_filter_attach(&f, g_socket_get_fd(rx6)), ==, 0);
    g_assert_cmpuint(filter_passes(rx6, bad6), ==, 0xe);
  }
  g_clear_object(&rx6);
  g_clear_object(&bad6);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/ice/connect-and-exchange", test_connect_and_exchange);
  g_test_add_func("/ice/controlling-nominates-at-once", test_controlling_nominates_at_once);
  g_test_add_func("/ice/wrong-password-controlled", test_wrong_password_controlled);
  g_test_add_func("/ice/wrong-password-controlling", test_wrong_password_controlling);
  g_test_add_func("/ice/free-mid-connect", test_free_mid_connect);
  g_test_add_func("/ice/free-from-callbacks", test_free_from_callbacks);
  g_test_add_func("/ice/fastpath", test_fastpath);
  g_test_add_func("/ice/stranger-dropped", test_stranger_dropped);
  g_test_add_func("/ice/restart", test_restart);
  g_test_add_func("/ice/port-range-exhausted", test_port_range_exhausted);
  g_test_add_func("/ice/stun-server", test_stun_server);
  g_test_add_func("/ice/servers-unreachable", test_servers_unreachable);
  g_test_add_func("/ice/bad-settings", test_bad_settings);
  g_test_add_func("/ice/filter/prflx", test_filter_prflx);
  g_test_add_func("/ice/filter/prflx-denied", test_filter_prflx_denied);
  g_test_add_func("/ice/filter/limit", test_filter_limit);
  g_test_add_func("/ice/filter/socket", test_filter_socket);
  return g_test_run();
}
