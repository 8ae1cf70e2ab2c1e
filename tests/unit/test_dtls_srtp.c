/* Unit tests: DTLS-SRTP (webrtc/dtls.c) and SRTP legs (webrtc/srtp.c).
 *
 * Two dtls_sessions are joined in memory: each one's send callback queues the
 * datagram for the other, and pump() delivers the queues and runs the default
 * GMainContext for the retransmission timers.  No network. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <glib.h>

#include "webrtc/demux.h"
#include "webrtc/dtls.h"
#include "webrtc/srtp.h"

static dtls_identity *id_a, *id_b;

typedef struct peer peer;
struct peer {
  const char *name;
  dtls_session *s;
  peer *other;
  GQueue inbox; /* GBytes, sent by the other peer, not yet fed */
  unsigned sent;
  unsigned drop; /* datagrams to lose, starting with the next one sent */
  bool connected, failed;
  char *why;
  dtls_srtp_keys keys;
  bool free_on_failed;
};

static void on_send(void *user, const uint8_t *data, size_t len)
{
  peer *p = user;

  p->sent++;
  if (p->drop > 0) {
    p->drop--;
    return;
  }
  g_queue_push_tail(&p->other->inbox, g_bytes_new(data, len));
}

static void on_connected(void *user, const dtls_srtp_keys *keys)
{
  peer *p = user;

  g_assert_false(p->connected);
  g_assert_false(p->failed);
  p->connected = true;
  p->keys = *keys;
}

static void on_failed(void *user, const char *why)
{
  peer *p = user;

  g_assert_false(p->failed);
  p->failed = true;
  p->why = g_strdup(why);
  if (p->free_on_failed)
    g_clear_pointer(&p->s, dtls_session_free);
}

static const dtls_callbacks callbacks = {on_send, on_connected, on_failed};

static void peer_clear(peer *p)
{
  g_clear_pointer(&p->s, dtls_session_free);
  g_queue_clear_full(&p->inbox, (GDestroyNotify)g_bytes_unref);
  g_clear_pointer(&p->why, g_free);
}

/* Client C (identity A) and server S (identity B), each expecting the given
 * fingerprint of the other (NULL: not known yet). */
static void pair_new(peer *c, peer *s, const char *c_expects, const char *s_expects)
{
  memset(c, 0, sizeof *c);
  memset(s, 0, sizeof *s);
  c->name = "client";
  s->name = "server";
  c->other = s;
  s->other = c;
  g_assert_cmpint(dtls_session_new(id_a, DTLS_ROLE_CLIENT, c_expects, &callbacks, c, &c->s), ==, 0);
  g_assert_cmpint(dtls_session_new(id_b, DTLS_ROLE_SERVER, s_expects, &callbacks, s, &s->s), ==, 0);
}

static bool both_done(peer *c, peer *s)
{
  return (c->connected || c->failed) && (s->connected || s->failed);
}

static gboolean on_deadline(gpointer data)
{
  *(bool *)data = true;
  return G_SOURCE_REMOVE;
}

static void deliver(peer *p)
{
  GBytes *b;

  while ((b = g_queue_pop_head(&p->inbox))) {
    gsize len;
    const uint8_t *data = g_bytes_get_data(b, &len);
    if (p->s)
      dtls_session_feed(p->s, data, len);
    g_bytes_unref(b);
  }
}

/* Delivers datagrams and runs timers until DONE(c, s) or MS milliseconds. */
static void pump(peer *c, peer *s, bool (*done)(peer *, peer *), guint ms)
{
  bool timed_out = false;
  guint deadline = g_timeout_add(ms, on_deadline, &timed_out);

  while (!done(c, s) && !timed_out) {
    if (!g_queue_is_empty(&c->inbox) || !g_queue_is_empty(&s->inbox)) {
      deliver(c);
      deliver(s);
      g_main_context_iteration(NULL, FALSE);
    } else {
      g_main_context_iteration(NULL, TRUE);
    }
  }
  if (!timed_out)
    g_source_remove(deadline);
  /* what is still in flight (a last Finished, an alert) */
  deliver(c);
  deliver(s);
}

static bool queues_empty(peer *c, peer *s)
{
  return g_queue_is_empty(&c->inbox) && g_queue_is_empty(&s->inbox);
}

static void handshake(peer *c, peer *s)
{
  dtls_session_start(s->s);
  dtls_session_start(c->s);
  pump(c, s, both_done, 5000);
}

/* The client is done and nothing is in flight (the server may be waiting). */
static bool client_done(peer *c, peer *s)
{
  return (c->connected || c->failed) && queues_empty(c, s);
}

static void handshake_wire_only(peer *c, peer *s)
{
  dtls_session_start(s->s);
  dtls_session_start(c->s);
  pump(c, s, client_done, 5000);
}

static void assert_mirrored(const peer *c, const peer *s, dtls_srtp_profile profile)
{
  g_assert_true(c->connected);
  g_assert_true(s->connected);
  g_assert_cmpint(c->keys.profile, ==, profile);
  g_assert_cmpint(s->keys.profile, ==, profile);
  g_assert_cmpuint(c->keys.key_len, ==, 16);
  g_assert_cmpuint(c->keys.salt_len, ==, profile == DTLS_SRTP_AEAD_AES_128_GCM ? 12 : 14);
  g_assert_cmpuint(s->keys.salt_len, ==, c->keys.salt_len);
  g_assert_cmpmem(c->keys.local_key, 16, s->keys.remote_key, 16);
  g_assert_cmpmem(c->keys.remote_key, 16, s->keys.local_key, 16);
  g_assert_cmpmem(c->keys.local_salt, c->keys.salt_len, s->keys.remote_salt, s->keys.salt_len);
  g_assert_cmpmem(c->keys.remote_salt, c->keys.salt_len, s->keys.local_salt, s->keys.salt_len);
  g_assert_true(memcmp(c->keys.local_key, c->keys.remote_key, 16) != 0);
}

/* ---- identity and demux ---- */

static void test_identity(void)
{
  const char *fa = dtls_identity_fingerprint(id_a), *fb = dtls_identity_fingerprint(id_b);

  g_assert_true(g_regex_match_simple("^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$", fa, 0, 0));
  g_assert_true(g_regex_match_simple("^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$", fb, 0, 0));
  g_assert_cmpstr(fa, !=, fb);
}

static void test_bad_fingerprint_text(void)
{
  static const char *const bad[] = {
    "", "sha-256", "sha-256 ", "md5 AB:CD", "sha-256 AB:CD", "sha-256 zz",
    "sha-1 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23", /* 21 bytes */
    "sha-1 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:0", /* odd digit */
  };
  dtls_session *s = NULL;

  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
    g_assert_cmpint(dtls_session_new(id_a, DTLS_ROLE_CLIENT, bad[i], &callbacks, NULL, &s), ==, -EINVAL);
  g_assert_null(s);
  /* lower case and other algorithms are read */
  g_assert_cmpint(dtls_session_new(id_a, DTLS_ROLE_CLIENT,
                                   "SHA-1 ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01\r\n",
                                   &callbacks, NULL, &s), ==, 0);
  g_assert_cmpint(dtls_session_set_peer_fingerprint(s, dtls_identity_fingerprint(id_b)), ==, -EEXIST);
  g_assert_cmpint(dtls_session_set_srtp_profiles(s, "NO_SUCH_PROFILE"), ==, -EINVAL);
  dtls_session_free(s);
}

static void test_demux(void)
{
  static const uint8_t stun[] = {0x00, 0x01, 0, 0}, dtls[] = {22, 0xfe, 0xfd}, rtp[] = {0x80, 0x00},
                       rtcp[] = {0x81, 200}, other[] = {64}, zrtp[] = {16};

  g_assert_cmpint(demux_classify(stun, sizeof stun), ==, DEMUX_STUN);
  g_assert_cmpint(demux_classify(dtls, sizeof dtls), ==, DEMUX_DTLS);
  g_assert_cmpint(demux_classify(rtp, sizeof rtp), ==, DEMUX_RTP);
  g_assert_cmpint(demux_classify(rtcp, sizeof rtcp), ==, DEMUX_RTP);
  g_assert_cmpint(demux_classify(other, sizeof other), ==, DEMUX_UNKNOWN);
  g_assert_cmpint(demux_classify(zrtp, sizeof zrtp), ==, DEMUX_UNKNOWN);
  g_assert_cmpint(demux_classify(rtp, 0), ==, DEMUX_UNKNOWN);
  g_assert_cmpint(demux_classify(NULL, 4), ==, DEMUX_UNKNOWN);
  g_assert_false(demux_is_rtcp(rtp, sizeof rtp));
  g_assert_true(demux_is_rtcp(rtcp, sizeof rtcp));
  g_assert_false(demux_is_rtcp(rtcp, 1));
}

/* ---- SRTP between the two sides of a handshake ---- */

static size_t make_rtp(uint8_t *buf, uint16_t seq, uint32_t ssrc, size_t payload)
{
  buf[0] = 0x80;
  buf[1] = 111;
  buf[2] = (uint8_t)(seq >> 8);
  buf[3] = (uint8_t)seq;
  memset(buf + 4, 0, 4); /* timestamp */
  buf[8] = (uint8_t)(ssrc >> 24);
  buf[9] = (uint8_t)(ssrc >> 16);
  buf[10] = (uint8_t)(ssrc >> 8);
  buf[11] = (uint8_t)ssrc;
  for (size_t i = 0; i < payload; i++)
    buf[12 + i] = (uint8_t)(i * 7 + seq);
  return 12 + payload;
}

static size_t make_rtcp_rr(uint8_t *buf, uint32_t ssrc)
{
  static const uint8_t rr[8] = {0x80, 201, 0x00, 0x01};
  memcpy(buf, rr, sizeof rr);
  buf[4] = (uint8_t)(ssrc >> 24);
  buf[5] = (uint8_t)(ssrc >> 16);
  buf[6] = (uint8_t)(ssrc >> 8);
  buf[7] = (uint8_t)ssrc;
  return sizeof rr;
}

/* Sends from TX to RX: round trip, tampering, replay, room, for RTP or RTCP. */
static void check_srtp_direction(srtp_leg *tx, srtp_leg *rx, bool rtcp, size_t trailer)
{
  int (*protect)(srtp_leg *, uint8_t *, size_t *, size_t) = rtcp ? srtp_leg_protect_rtcp : srtp_leg_protect;
  int (*unprotect)(srtp_leg *, uint8_t *, size_t *) = rtcp ? srtp_leg_unprotect_rtcp : srtp_leg_unprotect;
  uint8_t plain[200], copy[200 + SRTP_LEG_MAX_TRAILER];
  size_t plain_len = rtcp ? make_rtcp_rr(plain, 0x1234) : make_rtp(plain, 1000, 0x1234, 160);
  size_t len = plain_len, cap = plain_len + trailer, copy_len;
  uint8_t *buf = g_malloc(cap); /* exactly the room promised: valgrind sees overruns */
  srtp_leg_stats before, after;

  srtp_leg_get_stats(rx, &before);

  /* too little room */
  memcpy(buf, plain, plain_len);
  g_assert_cmpint(protect(tx, buf, &len, cap - 1), ==, -ENOSPC);
  g_assert_cmpuint(len, ==, plain_len);

  /* round trip */
  g_assert_cmpint(protect(tx, buf, &len, cap), ==, 0);
  g_assert_cmpuint(len, ==, plain_len + trailer);
  if (!rtcp) /* the payload is encrypted, the header not */
    g_assert_true(memcmp(buf + 12, plain + 12, plain_len - 12) != 0);
  memcpy(copy, buf, len);
  copy_len = len;
  g_assert_cmpint(unprotect(rx, buf, &len), ==, 0);
  g_assert_cmpmem(buf, len, plain, plain_len);

  /* replay of the same packet */
  memcpy(buf, copy, copy_len);
  len = copy_len;
  g_assert_cmpint(unprotect(rx, buf, &len), ==, -EALREADY);

  /* a flipped byte in the encrypted part, and one in the tag, of a new packet */
  for (int where = 0; where < 2; where++) {
    if (rtcp)
      plain_len = make_rtcp_rr(plain, 0x1234);
    else
      plain_len = make_rtp(plain, (uint16_t)(1001 + where), 0x1234, 160);
    memcpy(buf, plain, plain_len);
    len = plain_len;
    g_assert_cmpint(protect(tx, buf, &len, cap), ==, 0);
    buf[where == 0 ? (rtcp ? 6 : 20) : len - 1] ^= 0x01;
    g_assert_cmpint(unprotect(rx, buf, &len), ==, -EBADMSG);
  }

  /* garbage too short to be a packet */
  len = 3;
  g_assert_cmpint(unprotect(rx, buf, &len), ==, -EINVAL);

  srtp_leg_get_stats(rx, &after);
  g_assert_cmpuint(after.auth_failures, ==, before.auth_failures + 2);
  g_assert_cmpuint(after.replays, ==, before.replays + 1);
  g_assert_cmpuint(after.malformed, ==, before.malformed + 1);
  if (rtcp)
    g_assert_cmpuint(after.rtcp_unprotected, ==, before.rtcp_unprotected + 1);
  else
    g_assert_cmpuint(after.rtp_unprotected, ==, before.rtp_unprotected + 1);
  g_free(buf);
}

static void check_srtp(const peer *c, const peer *s)
{
  srtp_leg *lc = NULL, *ls = NULL;
  size_t tag = c->keys.profile == DTLS_SRTP_AEAD_AES_128_GCM ? 16 : 10;
  srtp_leg_stats st;

  g_assert_cmpint(srtp_leg_new(&c->keys, &lc), ==, 0);
  g_assert_cmpint(srtp_leg_new(&s->keys, &ls), ==, 0);
  check_srtp_direction(lc, ls, false, tag);
  check_srtp_direction(ls, lc, false, tag);
  check_srtp_direction(lc, ls, true, tag + 4);
  check_srtp_direction(ls, lc, true, tag + 4);
  srtp_leg_get_stats(lc, &st);
  g_assert_cmpuint(st.rtp_protected, ==, 3);
  g_assert_cmpuint(st.rtcp_protected, ==, 3);

  /* a leg keyed the wrong way round (its own key inbound) authenticates nothing */
  {
    dtls_srtp_keys wrong = c->keys;
    srtp_leg *lw = NULL;
    uint8_t buf[300];
    size_t len = make_rtp(buf, 5, 0x99, 100);

    memcpy(wrong.remote_key, c->keys.local_key, 16);
    memcpy(wrong.local_key, c->keys.remote_key, 16);
    g_assert_cmpint(srtp_leg_new(&wrong, &lw), ==, 0);
    g_assert_cmpint(srtp_leg_protect(lc, buf, &len, sizeof buf), ==, 0);
    g_assert_cmpint(srtp_leg_unprotect(lw, buf, &len), ==, -EBADMSG);
    srtp_leg_free(lw);
  }
  srtp_leg_free(lc);
  srtp_leg_free(ls);
}

/* ---- handshakes ---- */

static void test_handshake_default(void)
{
  peer c, s;

  pair_new(&c, &s, dtls_identity_fingerprint(id_b), dtls_identity_fingerprint(id_a));
  handshake(&c, &s);
  g_assert_null(c.why);
  g_assert_null(s.why);
  /* GCM is preferred when both offer it */
  assert_mirrored(&c, &s, DTLS_SRTP_AEAD_AES_128_GCM);
  check_srtp(&c, &s);

  /* after the handshake: stray datagrams are harmless */
  pump(&c, &s, queues_empty, 1000);
  dtls_session_feed(c.s, (const uint8_t *)"\x17\xfe\xfd garbage", 12);
  dtls_session_feed(s.s, (const uint8_t *)"\x16", 1);
  g_assert_false(c.failed || s.failed);
  peer_clear(&c);
  peer_clear(&s);
}

static void test_handshake_profile(gconstpointer data)
{
  dtls_srtp_profile profile = GPOINTER_TO_INT(data);
  const char *name = profile == DTLS_SRTP_AEAD_AES_128_GCM ? "SRTP_AEAD_AES_128_GCM" : "SRTP_AES128_CM_SHA1_80";
  peer c, s;

  /* the client offers only one profile */
  pair_new(&c, &s, dtls_identity_fingerprint(id_b), dtls_identity_fingerprint(id_a));
  g_assert_cmpint(dtls_session_set_srtp_profiles(c.s, name), ==, 0);
  handshake(&c, &s);
  assert_mirrored(&c, &s, profile);
  check_srtp(&c, &s);
  peer_clear(&c);
  peer_clear(&s);

  /* the server accepts only one profile */
  pair_new(&c, &s, dtls_identity_fingerprint(id_b), dtls_identity_fingerprint(id_a));
  g_assert_cmpint(dtls_session_set_srtp_profiles(s.s, name), ==, 0);
  handshake(&c, &s);
  assert_mirrored(&c, &s, profile);
  peer_clear(&c);
  peer_clear(&s);
}

static void test_no_common_profile(void)
{
  peer c, s;

  pair_new(&c, &s, dtls_identity_fingerprint(id_b), dtls_identity_fingerprint(id_a));
  g_assert_cmpint(dtls_session_set_srtp_profiles(c.s, "SRTP_AES128_CM_SHA1_32"), ==, 0);
  g_assert_cmpint(dtls_session_set_srtp_profiles(s.s, "SRTP_AES128_CM_SHA1_80"), ==, 0);
  handshake(&c, &s);
  g_assert_false(c.connected);
  g_assert_false(s.connected);
  g_assert_true(c.failed);
  g_test_message("client: %s; server: %s", c.why, s.failed ? s.why : "-");
  peer_clear(&c);
  peer_clear(&s);
}

/* A wrong expected fingerprint on either side: no keys anywhere. */
static void test_wrong_fingerprint(gconstpointer data)
{
  bool client_is_wrong = GPOINTER_TO_INT(data);
  const char *wrong = dtls_identity_fingerprint(client_is_wrong ? id_a : id_b); /* its own */
  peer c, s;

  if (client_is_wrong)
    pair_new(&c, &s, wrong, dtls_identity_fingerprint(id_a));
  else
    pair_new(&c, &s, dtls_identity_fingerprint(id_b), wrong);
  handshake(&c, &s);
  g_assert_false(c.connected);
  g_assert_false(s.connected);
  g_assert_true(c.failed);
  g_assert_true(s.failed);
  g_assert_cmpstr((client_is_wrong ? &c : &s)->why, ==, "fingerprint mismatch");
  g_test_message("client: %s; server: %s", c.why, s.why);
  peer_clear(&c);
  peer_clear(&s);
}

/* The peer's SDP comes after the handshake: keys only then, and only for the
 * right certificate. */
static void test_late_fingerprint(void)
{
  peer c, s;

  pair_new(&c, &s, dtls_identity_fingerprint(id_b), NULL);
  handshake_wire_only(&c, &s);
  g_assert_true(c.connected);
  g_assert_false(s.connected);
  g_assert_false(s.failed);
  g_assert_cmpint(dtls_session_set_peer_fingerprint(s.s, "sha-256 nonsense"), ==, -EINVAL);
  g_assert_cmpint(dtls_session_set_peer_fingerprint(s.s, dtls_identity_fingerprint(id_a)), ==, 0);
  assert_mirrored(&c, &s, DTLS_SRTP_AEAD_AES_128_GCM);
  peer_clear(&c);
  peer_clear(&s);

  pair_new(&c, &s, dtls_identity_fingerprint(id_b), NULL);
  handshake_wire_only(&c, &s);
  g_assert_false(s.connected);
  s.free_on_failed = true; /* and freeing from inside on_failed is safe */
  g_assert_cmpint(dtls_session_set_peer_fingerprint(s.s, dtls_identity_fingerprint(id_b)), ==, 0);
  g_assert_false(s.connected);
  g_assert_true(s.failed);
  g_assert_cmpstr(s.why, ==, "fingerprint mismatch");
  g_assert_null(s.s);
  pump(&c, &s, queues_empty, 1000); /* the close_notify reaches the client */
  g_assert_true(c.failed);
  g_assert_cmpstr(c.why, ==, "closed by peer");
  peer_clear(&c);
  peer_clear(&s);
}

/* The first flight is lost (each side's in turn): the retransmission timer
 * completes the handshake. */
static void test_lost_flight(gconstpointer data)
{
  bool lose_client_hello = GPOINTER_TO_INT(data);
  gint64 start = g_get_monotonic_time();
  peer c, s;

  pair_new(&c, &s, dtls_identity_fingerprint(id_b), dtls_identity_fingerprint(id_a));
  if (lose_client_hello)
    c.drop = 1;
  else
    s.drop = 100; /* the whole first server flight, whatever its datagram count */
  dtls_session_start(s.s);
  dtls_session_start(c.s);
  if (!lose_client_hello) {
    /* let the server's first flight go out, and be lost */
    pump(&c, &s, queues_empty, 1000);
    g_assert_cmpuint(s.sent, >, 0);
    s.drop = 0;
  }
  pump(&c, &s, both_done, 5000);
  assert_mirrored(&c, &s, DTLS_SRTP_AEAD_AES_128_GCM);
  g_assert_cmpint(g_get_monotonic_time() - start, <, 3 * G_USEC_PER_SEC);
  g_test_message("completed after %" G_GINT64_FORMAT " ms, client sent %u, server sent %u",
                 (g_get_monotonic_time() - start) / 1000, c.sent, s.sent);
  peer_clear(&c);
  peer_clear(&s);
}

/* Garbage and truncated records before and during the handshake: dropped. */
static void test_garbage(void)
{
  static const uint8_t short_record[] = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  uint8_t junk[1500];
  peer c, s;

  pair_new(&c, &s, dtls_identity_fingerprint(id_b), dtls_identity_fingerprint(id_a));
  for (unsigned i = 0; i < 200; i++) {
    size_t len = 1 + g_test_rand_int_range(0, sizeof junk);
    for (size_t j = 0; j < len; j++)
      junk[j] = (uint8_t)g_test_rand_int();
    if (i % 2)
      junk[0] = (uint8_t)g_test_rand_int_range(20, 64); /* looks like DTLS */
    if (i % 4 == 1 && len > 13) { /* a well-formed header, then junk */
      memcpy(junk, short_record, sizeof short_record);
    }
    dtls_session_feed(s.s, junk, len);
    dtls_session_feed(c.s, junk, len); /* not started: ignored */
  }
  dtls_session_feed(s.s, short_record, sizeof short_record);
  dtls_session_feed(s.s, NULL, 10);
  dtls_session_feed(s.s, junk, 0);
  /* the server may have answered something: forget it */
  g_queue_clear_full(&c.inbox, (GDestroyNotify)g_bytes_unref);
  g_assert_false(s.failed);

  /* a real handshake still works, with garbage between the flights */
  dtls_session_start(c.s);
  for (int round = 0; round < 20 && !both_done(&c, &s); round++) {
    dtls_session_feed(s.s, junk, 100);
    dtls_session_feed(c.s, junk, 100);
    pump(&c, &s, queues_empty, 1000);
  }
  pump(&c, &s, both_done, 5000);
  g_assert_true(c.connected);
  g_assert_true(s.connected);
  peer_clear(&c);
  peer_clear(&s);
}

/* No answer at all: retransmissions, then failure (shortened: just check that
 * the client retransmits with backoff and that freeing it stops the timer). */
static void test_retransmit_and_free(void)
{
  peer c, s;

  pair_new(&c, &s, dtls_identity_fingerprint(id_b), dtls_identity_fingerprint(id_a));
  c.drop = 1000;
  dtls_session_start(c.s);
  pump(&c, &s, both_done, 1500); /* after 250 and 750 ms: two retransmissions */
  g_assert_cmpuint(c.sent, >=, 3);
  g_assert_false(c.failed);
  peer_clear(&c); /* removes its timer */
  peer_clear(&s);
  for (int i = 0; i < 3; i++)
    g_main_context_iteration(NULL, FALSE);
}

int main(int argc, char **argv)
{
  int r;

  g_test_init(&argc, &argv, NULL);
  g_assert_cmpint(dtls_identity_new(&id_a), ==, 0);
  g_assert_cmpint(dtls_identity_new(&id_b), ==, 0);

  g_test_add_func("/dtls/identity", test_identity);
  g_test_add_func("/dtls/bad-fingerprint-text", test_bad_fingerprint_text);
  g_test_add_func("/demux/classify", test_demux);
  g_test_add_func("/dtls/handshake", test_handshake_default);
  g_test_add_data_func("/dtls/profile/aes-cm-128-hmac-sha1-80",
                       GINT_TO_POINTER(DTLS_SRTP_AES128_CM_SHA1_80), test_handshake_profile);
  g_test_add_data_func("/dtls/profile/aead-aes-128-gcm",
                       GINT_TO_POINTER(DTLS_SRTP_AEAD_AES_128_GCM), test_handshake_profile);
  g_test_add_func("/dtls/no-common-profile", test_no_common_profile);
  g_test_add_data_func("/dtls/wrong-fingerprint/client", GINT_TO_POINTER(1), test_wrong_fingerprint);
  g_test_add_data_func("/dtls/wrong-fingerprint/server", GINT_TO_POINTER(0), test_wrong_fingerprint);
  g_test_add_func("/dtls/late-fingerprint", test_late_fingerprint);
  g_test_add_data_func("/dtls/lost-flight/client-hello", GINT_TO_POINTER(1), test_lost_flight);
  g_test_add_data_func("/dtls/lost-flight/server-hello", GINT_TO_POINTER(0), test_lost_flight);
  g_test_add_func("/dtls/garbage", test_garbage);
  g_test_add_func("/dtls/retransmit-and-free", test_retransmit_and_free);
  r = g_test_run();
  dtls_identity_free(id_a);
  dtls_identity_free(id_b);
  return r;
}
