/* The media of a browser, for the node integration tests that need real
 * audio through a running rtcsipd (tests/integration/media_source.test.mjs):
 * ICE (controlling, host candidates on 127.0.0.1), DTLS-SRTP and RTP made of
 * rtcsipd's own webrtc/ modules, as tests/integration/test_media_bridge.c's
 * fake browser.  The test speaks SIP itself and drives this over stdio, one
 * line per item:
 *
 *   out: "ufrag U", "pwd P", "fingerprint sha-256 ..", "candidate candidate:..",
 *        then "gathered": the browser's side of its offer
 *   in:  "remote-ufrag U", "remote-pwd P", "remote-fingerprint sha-256 ..",
 *        "remote-candidate candidate:..", "remote-setup active|passive"
 *        (rtcsipd's answer), then "start": ICE checks, then DTLS
 *   out: "ready" (SRTP keyed), or "failed WHY"
 *   then the browser sends RTP (PT 0, SSRC 0x11111111, 160 bytes every 20 ms)
 *   out: every 100 ms "stats sent N rtcp-in N bad N ssrc XXXXXXXX=N ...": what
 *        it sent, and the RTP it received by SSRC (after SRTP), RTCP, and
 *        what did not unprotect
 *   in:  "send off" / "send on": stops and resumes the RTP; "quit" (or end
 *        of input): exits 0.
 *
 * Usage: fake_browser [PORT_MIN PORT_MAX]   (its ICE ports; default any) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>

#include "config/log.h"
#include "webrtc/demux.h"
#include "webrtc/dtls.h"
#include "webrtc/ice.h"
#include "webrtc/srtp.h"

#define SSRC 0x11111111u
#define PAYLOAD 160
#define MAX_SSRCS 8

typedef struct {
  GMainLoop *loop;
  dtls_identity *id;
  ice_agent *ice;
  dtls_session *dtls;
  srtp_leg *srtp;
  char *remote_ufrag, *remote_pwd, *remote_fingerprint;
  GPtrArray *remote_candidates;
  dtls_role role;
  bool started, ready, paused;
  GString *in; /* stdin, up to the next newline */
  guint stdin_watch;
  uint16_t seq;
  uint32_t ts;
  uint64_t sent, rtcp_in, bad;
  struct { uint32_t ssrc; uint64_t n; } rx[MAX_SSRCS];
  unsigned n_rx;
} browser;

static void say(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void say(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static void fail(browser *b, const char *why)
{
  say("failed %s", why);
  g_main_loop_quit(b->loop);
}

/* ---- ICE and DTLS ---- */

static void on_gathered(void *user)
{
  browser *b = user;
  const char *ufrag, *pwd;
  g_auto(GStrv) cands = ice_agent_local_candidates(b->ice);

  ice_agent_local_credentials(b->ice, &ufrag, &pwd);
  say("ufrag %s", ufrag);
  say("pwd %s", pwd);
  say("fingerprint %s", dtls_identity_fingerprint(b->id));
  for (char **c = cands; c && *c; c++)
    say("candidate %s", *c);
  say("gathered");
}

static void on_state(void *user, ice_state state)
{
  browser *b = user;

  if (state == ICE_CONNECTED && b->dtls)
    dtls_session_start(b->dtls);
  else if (state == ICE_FAILED)
    fail(b, "ICE");
}

static void count_ssrc(browser *b, uint32_t ssrc)
{
  for (unsigned i = 0; i < b->n_rx; i++)
    if (b->rx[i].ssrc == ssrc) {
      b->rx[i].n++;
      return;
    }
  if (b->n_rx < MAX_SSRCS) {
    b->rx[b->n_rx].ssrc = ssrc;
    b->rx[b->n_rx++].n = 1;
  }
}

static void on_receive(void *user, uint8_t *data, size_t len)
{
  browser *b = user;

  switch (demux_classify(data, len)) {
  case DEMUX_DTLS:
    if (b->dtls)
      dtls_session_feed(b->dtls, data, len);
    return;
  case DEMUX_RTP:
    break;
  default:
    b->bad++;
    return;
  }
  if (!b->srtp) {
    b->bad++;
    return;
  }
  if (demux_is_rtcp(data, len)) {
    if (srtp_leg_unprotect_rtcp(b->srtp, data, &len) == 0)
      b->rtcp_in++;
    else
      b->bad++;
    return;
  }
  if (srtp_leg_unprotect(b->srtp, data, &len) < 0 || len < 12) {
    b->bad++;
    return;
  }
  count_ssrc(b, (uint32_t)data[8] << 24 | (uint32_t)data[9] << 16 | (uint32_t)data[10] << 8 | data[11]);
}

static void dtls_send(void *user, const uint8_t *data, size_t len)
{
  (void)ice_agent_send(((browser *)user)->ice, data, len);
}

static void dtls_connected(void *user, const dtls_srtp_keys *keys)
{
  browser *b = user;

  if (srtp_leg_new(keys, &b->srtp) < 0) {
    fail(b, "SRTP");
    return;
  }
  b->ready = true;
  say("ready");
}

static void dtls_failed(void *user, const char *why)
{
  fail(user, why);
}

static const ice_callbacks ice_cb = {on_gathered, on_state, on_receive};
static const dtls_callbacks dtls_cb = {dtls_send, dtls_connected, dtls_failed};

/* ---- media ---- */

static gboolean send_rtp(gpointer data)
{
  browser *b = data;
  uint8_t buf[12 + PAYLOAD + SRTP_LEG_MAX_TRAILER];
  size_t len = 12 + PAYLOAD;

  if (!b->ready || b->paused)
    return G_SOURCE_CONTINUE;
  buf[0] = 0x80;
  buf[1] = 0; /* PCMU */
  buf[2] = (uint8_t)(b->seq >> 8), buf[3] = (uint8_t)b->seq;
  buf[4] = (uint8_t)(b->ts >> 24), buf[5] = (uint8_t)(b->ts >> 16), buf[6] = (uint8_t)(b->ts >> 8), buf[7] = (uint8_t)b->ts;
  buf[8] = (uint8_t)(SSRC >> 24), buf[9] = (uint8_t)(SSRC >> 16), buf[10] = (uint8_t)(SSRC >> 8), buf[11] = (uint8_t)SSRC;
  memset(buf + 12, 0xd5, PAYLOAD);
  b->seq++;
  b->ts += PAYLOAD;
  if (srtp_leg_protect(b->srtp, buf, &len, sizeof buf) == 0 && ice_agent_send(b->ice, buf, len) == 0)
    b->sent++;
  return G_SOURCE_CONTINUE;
}

static gboolean report(gpointer data)
{
  browser *b = data;
  GString *s;

  if (!b->ready)
    return G_SOURCE_CONTINUE;
  s = g_string_new(NULL);
  g_string_printf(s, "stats sent %" G_GUINT64_FORMAT " rtcp-in %" G_GUINT64_FORMAT " bad %" G_GUINT64_FORMAT " ssrc",
                  b->sent, b->rtcp_in, b->bad);
  for (unsigned i = 0; i < b->n_rx; i++)
    g_string_append_printf(s, " %08x=%" G_GUINT64_FORMAT, b->rx[i].ssrc, b->rx[i].n);
  say("%s", s->str);
  g_string_free(s, TRUE);
  return G_SOURCE_CONTINUE;
}

/* ---- the test's commands ---- */

static void start(browser *b)
{
  if (b->started)
    return;
  b->started = true;
  if (!b->remote_ufrag || !b->remote_pwd || !b->remote_fingerprint) {
    fail(b, "start without the remote ufrag, pwd and fingerprint");
    return;
  }
  if (dtls_session_new(b->id, b->role, b->remote_fingerprint, &dtls_cb, b, &b->dtls) < 0) {
    fail(b, "dtls_session_new");
    return;
  }
  g_ptr_array_add(b->remote_candidates, NULL);
  if (ice_agent_set_remote(b->ice, b->remote_ufrag, b->remote_pwd,
                           (const char *const *)b->remote_candidates->pdata) < 0)
    fail(b, "ice_agent_set_remote");
  else if (ice_agent_state(b->ice) == ICE_CONNECTED)
    dtls_session_start(b->dtls);
}

static void command(browser *b, const char *line)
{
  const char *sp = strchr(line, ' ');
  g_autofree char *word = g_strndup(line, sp ? (size_t)(sp - line) : strlen(line));
  const char *arg = sp ? sp + 1 : "";

  if (strcmp(word, "remote-ufrag") == 0)
    g_free(b->remote_ufrag), b->remote_ufrag = g_strdup(arg);
  else if (strcmp(word, "remote-pwd") == 0)
    g_free(b->remote_pwd), b->remote_pwd = g_strdup(arg);
  else if (strcmp(word, "remote-fingerprint") == 0)
    g_free(b->remote_fingerprint), b->remote_fingerprint = g_strdup(arg);
  else if (strcmp(word, "remote-candidate") == 0)
    g_ptr_array_add(b->remote_candidates, g_strdup(arg));
  else if (strcmp(word, "remote-setup") == 0) /* rtcsipd active: it is the client */
    b->role = strcmp(arg, "active") == 0 ? DTLS_ROLE_SERVER : DTLS_ROLE_CLIENT;
  else if (strcmp(word, "start") == 0)
    start(b);
  else if (strcmp(word, "send") == 0)
    b->paused = strcmp(arg, "off") == 0;
  else if (strcmp(word, "quit") == 0)
    g_main_loop_quit(b->loop);
  else if (*word)
    say("error unknown command '%s'", word);
}

static gboolean on_stdin(gint fd, GIOCondition cond, gpointer data)
{
  browser *b = data;
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);

  if (n <= 0) {
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      return G_SOURCE_CONTINUE;
    g_main_loop_quit(b->loop); /* the test is gone */
    b->stdin_watch = 0;
    return G_SOURCE_REMOVE;
  }
  g_string_append_len(b->in, buf, n);
  for (char *nl; (nl = memchr(b->in->str, '\n', b->in->len));) {
    size_t len = (size_t)(nl - b->in->str);
    g_autofree char *line = g_strndup(b->in->str, len);
    g_strchomp(line);
    g_string_erase(b->in, 0, (gssize)len + 1);
    command(b, line);
  }
  return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer data)
{
  g_main_loop_quit(((browser *)data)->loop);
  return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
  static const char *const loopback[] = {"127.0.0.1", NULL};
  browser b = {0};
  ice_settings is = {.controlling = true, .local_addresses = loopback, .connect_timeout_ms = 20000,
                     .log_id = "fake-browser"};
  guint sources[2];

  if (argc == 3) {
    is.port_min = (uint16_t)strtoul(argv[1], NULL, 10);
    is.port_max = (uint16_t)strtoul(argv[2], NULL, 10);
  }
  log_set_level(LOG_WARNING);
  b.loop = g_main_loop_new(NULL, FALSE);
  b.in = g_string_new(NULL);
  b.remote_candidates = g_ptr_array_new_with_free_func(g_free);
  b.role = DTLS_ROLE_CLIENT;
  if (dtls_identity_new(&b.id) < 0 || ice_agent_new(&is, &ice_cb, &b, &b.ice) < 0 || ice_agent_gather(b.ice) < 0) {
    say("failed setup");
    return 1;
  }
  b.stdin_watch = g_unix_fd_add(STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, &b);
  sources[0] = g_timeout_add(20, send_rtp, &b);
  sources[1] = g_timeout_add(100, report, &b);
  g_unix_signal_add(SIGTERM, on_signal, &b);
  g_unix_signal_add(SIGINT, on_signal, &b);
  g_main_loop_run(b.loop);

  g_source_remove(sources[0]);
  g_source_remove(sources[1]);
  if (b.stdin_watch)
    g_source_remove(b.stdin_watch);
  dtls_session_free(b.dtls);
  srtp_leg_free(b.srtp);
  ice_agent_free(b.ice);
  dtls_identity_free(b.id);
  g_ptr_array_free(b.remote_candidates, TRUE);
  g_string_free(b.in, TRUE);
  g_free(b.remote_ufrag);
  g_free(b.remote_pwd);
  g_free(b.remote_fingerprint);
  g_main_loop_unref(b.loop);
  return 0;
}
