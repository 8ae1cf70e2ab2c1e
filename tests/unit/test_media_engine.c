/* gateway/media_engine.c: the messages between the main loop and a media
 * worker, with a real worker thread, and the browser's side on a datagram
 * socketpair (no network): ADD, SRTP and SOCKET bring a call's media up (the
 * browser's SRTP comes back echoed), DTLS datagrams come up as events,
 * SEND_DTMF answers synchronously and its packets flow at 20 ms, the media
 * timeout comes up once, REMOVE hands the counters back, and nothing comes
 * for a call after it. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <glib.h>

#include "gateway/media_engine.h"
#include "webrtc/srtp.h"

typedef struct {
  unsigned timeouts, dtls, dtmf;
  uint8_t dtls_data[64];
  size_t dtls_len;
} seen;

static void on_timeout(void *user) { ((seen *)user)->timeouts++; }
static void on_dtmf(void *user, bool from_browser, char digit, unsigned ms)
{
  (void)from_browser, (void)digit, (void)ms;
  ((seen *)user)->dtmf++;
}
static void on_dtls(void *user, const uint8_t *data, size_t len)
{
  seen *s = user;
  s->dtls++;
  s->dtls_len = MIN(len, sizeof s->dtls_data);
  memcpy(s->dtls_data, data, s->dtls_len);
}
static const media_call_callbacks cbs = { on_timeout, on_dtmf, on_dtls, NULL };

static void keys(dtls_srtp_keys *gw, dtls_srtp_keys *br)
{
  memset(gw, 0, sizeof *gw);
  gw->profile = DTLS_SRTP_AEAD_AES_128_GCM;
  gw->key_len = 16;
  gw->salt_len = 12;
  memset(gw->local_key, 0x11, 16);
  memset(gw->local_salt, 0x22, 12);
  memset(gw->remote_key, 0x33, 16);
  memset(gw->remote_salt, 0x44, 12);
  *br = *gw;
  memcpy(br->local_key, gw->remote_key, 16);
  memcpy(br->local_salt, gw->remote_salt, 12);
  memcpy(br->remote_key, gw->local_key, 16);
  memcpy(br->remote_salt, gw->local_salt, 12);
}

static void run_ms(unsigned ms)
{
  gint64 end = g_get_monotonic_time() + ms * 1000;
  while (g_get_monotonic_time() < end) {
    g_main_context_iteration(NULL, FALSE);
    g_usleep(1000);
  }
}

static size_t rtp(uint8_t *buf, uint8_t pt, uint16_t seq)
{
  memset(buf, 0, 172);
  buf[0] = 0x80;
  buf[1] = pt;
  buf[2] = (uint8_t)(seq >> 8);
  buf[3] = (uint8_t)seq;
  buf[11] = 7; /* SSRC 7 */
  for (int i = 12; i < 172; i++)
    buf[i] = (uint8_t)(seq + i);
  return 172;
}

/* What came back on FD: SRTP unprotected with BR; counts the packets of PT. */
static unsigned read_back(int fd, srtp_leg *br, uint8_t pt, unsigned *other)
{
  uint8_t in[1500];
  unsigned n = 0;
  ssize_t got;

  while ((got = recv(fd, in, sizeof in, MSG_DONTWAIT)) > 0) {
    size_t len = (size_t)got;
    g_assert_cmpint(srtp_leg_unprotect(br, in, &len), ==, 0);
    if ((in[1] & 0x7f) == pt)
      n++;
    else if (other)
      (*other)++;
  }
  return n;
}

static void test_call(void)
{
  media_engine *e;
  media_call *mc;
  browser_media *bm;
  srtp_leg *gw_srtp, *br_srtp;
  dtls_srtp_keys kg, kb;
  int sv[2];
  seen s = { 0 };
  uint8_t buf[172 + SRTP_LEG_MAX_TRAILER];

  g_assert_cmpint(media_engine_new(2, &e), ==, 0);
  g_assert_cmpuint(media_engine_workers(e), ==, 2);
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), ==, 0);
  keys(&kg, &kb);
  g_assert_cmpint(srtp_leg_new(&kg, &gw_srtp), ==, 0);
  g_assert_cmpint(srtp_leg_new(&kb, &br_srtp), ==, 0);
  g_assert_cmpint(browser_media_new(NULL, &bm), ==, 0);

  media_bridge_settings st = { .timeout_ms = 300, .log_id = "t" };
  g_assert_cmpint(media_call_new(e, bm, NULL, &st, &cbs, &s, &mc), ==, 0);
  media_call_set_srtp(mc, gw_srtp);
  media_call_set_socket(mc, sv[0], "ufrag", "password-password-22");
  media_bridge_dtmf_settings ds = { .browser_pt = 101, .pbx_pt = -1, .browser_rate = 8000 };
  g_assert_cmpint(media_call_set_dtmf(mc, &ds), ==, 0);
  media_bridge_dtmf_settings bad = { .browser_pt = 200, .pbx_pt = -1 };
  g_assert_cmpint(media_call_set_dtmf(mc, &bad), ==, -EINVAL);
  media_bridge_pt_pair pairs[MEDIA_BRIDGE_MAX_PT_PAIRS + 1] = { { 0 } };
  g_assert_cmpint(media_call_set_pt_map(mc, pairs, G_N_ELEMENTS(pairs)), ==, -EINVAL);
  /* no stream toward the browser yet: the worker says so */
  g_assert_cmpint(media_call_send_dtmf(mc, false, '5', 100), ==, -ENOTCONN);

  /* 50 packets of SRTP: each comes back, echoed and protected again */
  for (uint16_t seq = 0; seq < 50; seq++) {
    size_t len = rtp(buf, 111, seq);
    g_assert_cmpint(srtp_leg_protect(br_srtp, buf, &len, sizeof buf), ==, 0);
    g_assert_cmpint(send(sv[1], buf, len, 0), ==, (ssize_t)len);
  }
  unsigned back = 0;
  for (int i = 0; i < 200 && back < 50; i++) {
    run_ms(5);
    back += read_back(sv[1], br_srtp, 111, NULL);
  }
  g_assert_cmpuint(back, ==, 50);

  /* a DTLS datagram (an alert) comes up to the main loop as it was */
  static const uint8_t alert[] = { 21, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 2, 1, 0 };
  g_assert_cmpint(send(sv[1], alert, sizeof alert, 0), ==, (ssize_t)sizeof alert);
  for (int i = 0; i < 200 && !s.dtls; i++)
    run_ms(2);
  g_assert_cmpuint(s.dtls, ==, 1);
  g_assert_cmpmem(s.dtls_data, s.dtls_len, alert, sizeof alert);

  /* DTMF toward the browser: accepted now, 100 ms = 4 packets + 3 ends, 20 ms apart */
  gint64 t0 = g_get_monotonic_time();
  g_assert_cmpint(media_call_send_dtmf(mc, false, '5', 100), ==, 0);
  unsigned events = 0, other = 0;
  for (int i = 0; i < 100 && events < 7; i++) {
    run_ms(5);
    events += read_back(sv[1], br_srtp, 101, &other);
  }
  g_assert_cmpuint(events, ==, 7);
  g_assert_cmpint(g_get_monotonic_time() - t0, >=, 6 * 20000 - 5000);

  /* silence: the timeout comes, once */
  run_ms(600);
  g_assert_cmpuint(s.timeouts, ==, 1);

  /* REMOVE: the counters come back; nothing for the call afterwards */
  g_assert_cmpint(send(sv[1], alert, sizeof alert, 0), ==, (ssize_t)sizeof alert);
  media_call_stats fin;
  media_call_free(mc, &fin);
  g_assert_cmpuint(fin.browser.rtp_in, ==, 50);
  g_assert_cmpuint(fin.browser.rtp_out, ==, 50 + 7);
  g_assert_cmpuint(fin.bridge.rtp_to_browser, ==, 50);
  g_assert_cmpuint(fin.bridge.dtmf_to_browser, ==, 1);
  g_assert_false(fin.has_pbx);
  unsigned dtls_before = s.dtls;
  run_ms(50);
  g_assert_cmpuint(s.dtls, ==, dtls_before);

  browser_media_free(bm); /* closes sv[0] */
  close(sv[1]);
  srtp_leg_free(br_srtp);
  media_engine_free(e);
}

/* Calls go to the worker with the fewest. */
static void test_balance(void)
{
  media_engine *e;
  media_call *mc[4];
  browser_media *bm[4];
  unsigned load[2];
  media_bridge_settings st = { .log_id = "t" };

  g_assert_cmpint(media_engine_new(2, &e), ==, 0);
  for (int i = 0; i < 4; i++) {
    g_assert_cmpint(browser_media_new(NULL, &bm[i]), ==, 0);
    g_assert_cmpint(media_call_new(e, bm[i], NULL, &st, NULL, NULL, &mc[i]), ==, 0);
  }
  media_engine_load(e, load, 2);
  g_assert_cmpuint(load[0], ==, 2);
  g_assert_cmpuint(load[1], ==, 2);
  /* 0 and 2 went to the first worker (a tie goes to the first), 1 and 3 to the second */
  media_call_free(mc[0], NULL);
  media_call_free(mc[2], NULL);
  media_engine_load(e, load, 2);
  g_assert_cmpuint(load[0], ==, 0);
  g_assert_cmpuint(load[1], ==, 2);
  g_assert_cmpint(media_call_new(e, bm[0], NULL, &st, NULL, NULL, &mc[0]), ==, 0);
  media_engine_load(e, load, 2);
  g_assert_cmpuint(load[0], ==, 1);
  media_call_free(mc[0], NULL);
  media_call_free(mc[1], NULL);
  media_call_free(mc[3], NULL);
  for (int i = 0; i < 4; i++)
    browser_media_free(bm[i]);
  media_engine_free(e);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/media_engine/call", test_call);
  g_test_add_func("/media_engine/balance", test_balance);
  return g_test_run();
}
