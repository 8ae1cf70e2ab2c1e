/* rtcsipd-loadgen: many browser-like clients against a WebRTC-to-SIP gateway
 * (rtcsipd, or any other: it speaks only standard protocols).
 *
 *   loadgen --ws ws://127.0.0.1:8080 --domain example.com --target sip:echo@example.com \
 *           --calls 100 --rate 20 --hold 30 [--codec opus|pcmu] [--register --password P]
 *   loadgen --ws ... --incoming --calls 50 --register ...   (the PBX calls the clients)
 *
 * Each client opens its own WebSocket, optionally registers (digest auth),
 * places one call (or waits for one), sends RTP at 20 ms with its sending
 * time in the payload, checks what an echo far end sends back, and hangs up
 * with BYE after the hold time.  A progress line goes to stderr every
 * second; at the end a human summary goes to stderr and one JSON report to
 * stdout (or --json FILE).  Exit 0 when the run completed (whatever the
 * figures: the report says), 2 for bad arguments, 1 when it could not run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <glib.h>
#include <glib-unix.h>
#include <libwebsockets.h>

#include "config/log.h"
#include "lg_client.h"
#include "lg_media.h"
#include "lg_report.h"

typedef struct {
  lg_client_config cfg;
  lg_env env;
  GMainLoop *loop;
  GPtrArray *clients;
  unsigned calls, started, finished, waiting;
  double rate;
  int64_t t_start, t_end_of_ramp;
  unsigned timeout_s;
  guint ramp_timer, progress_timer, deadline_timer;
  bool incoming, aborted;
  const char *json_path;
} loadgen;

/* ---- the run ---- */

static void check_done(loadgen *lg)
{
  if (lg->started == lg->calls && lg->finished == lg->calls)
    g_main_loop_quit(lg->loop);
}

static void on_client_state(void *user, unsigned index, lg_client_state state)
{
  loadgen *lg = user;

  if (state == LG_CLIENT_WAITING) {
    lg->waiting++;
    if (lg->waiting == lg->calls && lg->incoming)
      fprintf(stderr, "loadgen: all %u clients registered, waiting for calls\n", lg->calls);
    return;
  }
  lg->finished++;
  check_done(lg);
}

static gboolean on_ramp(gpointer data)
{
  loadgen *lg = data;
  int64_t now = g_get_monotonic_time();
  /* as many as the rate says by now: a late timer catches up */
  unsigned due = (unsigned)((double)(now - lg->t_start) / 1e6 * lg->rate) + 1;

  if (due > lg->calls)
    due = lg->calls;
  while (lg->started < due) {
    lg->started++;
    g_ptr_array_add(lg->clients, lg_client_new(&lg->env, lg->started));
  }
  if (lg->started == lg->calls) {
    lg->ramp_timer = 0;
    lg->t_end_of_ramp = now;
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

static gboolean on_progress(gpointer data)
{
  loadgen *lg = data;
  unsigned by_state[LG_CLIENT_FAILED + 1] = { 0 };
  uint64_t sent, received;

  for (guint i = 0; i < lg->clients->len; i++)
    by_state[lg_client_get_result(g_ptr_array_index(lg->clients, i))->state]++;
  lg_media_progress(lg->env.media, &sent, &received);
  fprintf(stderr, "loadgen: %4.0fs started %u, setting up %u, up %u, done %u, failed %u; packets sent %" G_GUINT64_FORMAT
          ", back %" G_GUINT64_FORMAT "\n",
          (double)(g_get_monotonic_time() - lg->t_start) / 1e6, lg->started,
          by_state[LG_CLIENT_CONNECTING] + by_state[LG_CLIENT_REGISTERING] + by_state[LG_CLIENT_INVITING] +
            by_state[LG_CLIENT_CONNECTING_MEDIA],
          by_state[LG_CLIENT_UP], by_state[LG_CLIENT_DONE], by_state[LG_CLIENT_FAILED], sent, received);
  return G_SOURCE_CONTINUE;
}

static gboolean on_deadline(gpointer data)
{
  loadgen *lg = data;

  lg->deadline_timer = 0;
  if (!lg->aborted) {
    fprintf(stderr, "loadgen: the time is up (%u s): ending what is left\n", lg->timeout_s);
    lg->aborted = true;
    for (guint i = 0; i < lg->clients->len; i++)
      lg_client_abort(g_ptr_array_index(lg->clients, i), "not done when the time was up");
    lg->calls = lg->started; /* those never started are not counted */
    check_done(lg);
    /* what is left gets a few seconds for its BYE */
    lg->deadline_timer = g_timeout_add_seconds(5, on_deadline, lg);
    return G_SOURCE_REMOVE;
  }
  g_main_loop_quit(lg->loop);
  return G_SOURCE_REMOVE;
}

static gboolean on_signal(gpointer data)
{
  loadgen *lg = data;
  lg->timeout_s = 0;
  if (!lg->aborted)
    on_deadline(lg);
  return G_SOURCE_CONTINUE;
}

/* ---- the report ---- */

typedef struct {
  GHashTable *failures; /* reason -> count */
  lg_totals t;
  lg_hist setup, media;
  unsigned established, media_ready, ok, failed, pcmu_calls;
  uint64_t send_failed, auth_failures, malformed, stun_replies;
} summary;

static void summarise(loadgen *lg, summary *s)
{
  memset(s, 0, sizeof(*s));
  s->failures = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < lg->clients->len; i++) {
    const lg_client_result *r = lg_client_get_result(g_ptr_array_index(lg->clients, i));
    if (r->state == LG_CLIENT_DONE && r->media_ready)
      s->ok++;
    else if (r->state == LG_CLIENT_DONE && lg->incoming && !r->established)
      ; /* never called: not a call */
    else {
      s->failed++;
      const char *why = r->failure ? r->failure : lg_client_state_name(r->state);
      gpointer n = g_hash_table_lookup(s->failures, why);
      g_hash_table_insert(s->failures, g_strdup(why), GUINT_TO_POINTER(GPOINTER_TO_UINT(n) + 1));
    }
    if (r->established) {
      s->established++;
      lg_hist_add(&s->setup, r->setup_us);
    }
    if (r->media_ready) {
      s->media_ready++;
      lg_hist_add(&s->media, r->media_us);
      s->pcmu_calls += r->codec == LG_CODEC_PCMU;
      lg_totals_add(&s->t, r->sent, &r->stream);
      s->send_failed += r->send_failed;
      s->auth_failures += r->bm.auth_failures;
      s->malformed += r->bm.malformed_in;
      s->stun_replies += r->bm.stun_replies;
    }
  }
}

static void json_hist_ms(GString *j, const char *name, const lg_hist *h)
{
  g_string_append_printf(j, "\"%s\": {\"n\": %" G_GUINT64_FORMAT ", \"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}",
                         name, h->n, (double)lg_hist_percentile(h, 0.5) / 1000.0,
                         (double)lg_hist_percentile(h, 0.99) / 1000.0, (double)h->max_us / 1000.0);
}

static char *report_json(loadgen *lg, const summary *s, double duration_s)
{
  GString *j = g_string_new("{");
  GHashTableIter it;
  gpointer k, v;
  bool first = true;

  g_string_append_printf(j, "\"direction\": \"%s\", \"codec\": \"%s\", \"calls\": %u, \"rate\": %.1f, "
                         "\"hold_s\": %.1f, \"duration_s\": %.1f, ",
                         lg->incoming ? "incoming" : "outgoing", lg->cfg.codec == LG_CODEC_OPUS ? "opus" : "pcmu",
                         lg->calls, lg->rate, lg->cfg.hold_ms / 1000.0, duration_s);
  g_string_append_printf(j, "\"established\": %u, \"media_ready\": %u, \"pcmu_calls\": %u, \"ok\": %u, "
                         "\"failed\": %u, \"failures\": {",
                         s->established, s->media_ready, s->pcmu_calls, s->ok, s->failed);
  g_hash_table_iter_init(&it, s->failures);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    g_autofree char *key = g_strescape(k, NULL);
    g_string_append_printf(j, "%s\"%s\": %u", first ? "" : ", ", key, GPOINTER_TO_UINT(v));
    first = false;
  }
  g_string_append(j, "}, ");
  json_hist_ms(j, "setup_ms", &s->setup);
  g_string_append(j, ", ");
  json_hist_ms(j, "media_ready_ms", &s->media);
  g_string_append_printf(j, ", \"packets\": {\"sent\": %" G_GUINT64_FORMAT ", \"received\": %" G_GUINT64_FORMAT
                         ", \"lost\": %" G_GUINT64_FORMAT ", \"loss_percent\": %.4f, \"duplicated\": %" G_GUINT64_FORMAT
                         ", \"reordered\": %" G_GUINT64_FORMAT ", \"send_failed\": %" G_GUINT64_FORMAT
                         ", \"auth_failures\": %" G_GUINT64_FORMAT ", \"malformed\": %" G_GUINT64_FORMAT "}",
                         s->t.sent, s->t.received, s->t.lost, lg_totals_loss_percent(&s->t), s->t.duplicates,
                         s->t.reordered, s->send_failed, s->auth_failures, s->malformed);
  g_string_append_printf(j, ", \"rtt_ms\": {\"n\": %" G_GUINT64_FORMAT ", \"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f, "
                         "\"mean\": %.3f}",
                         s->t.latency.n, (double)lg_hist_percentile(&s->t.latency, 0.5) / 1000.0,
                         (double)lg_hist_percentile(&s->t.latency, 0.99) / 1000.0,
                         (double)s->t.latency.max_us / 1000.0,
                         s->t.latency.n ? s->t.latency.sum_us / (double)s->t.latency.n / 1000.0 : 0.0);
  g_string_append_printf(j, ", \"jitter_ms\": {\"mean\": %.3f, \"max\": %.3f}}",
                         s->t.calls ? s->t.jitter_sum_us / (double)s->t.calls / 1000.0 : 0.0,
                         s->t.jitter_max_us / 1000.0);
  return g_string_free(j, FALSE);
}

static void report_human(loadgen *lg, const summary *s)
{
  GHashTableIter it;
  gpointer k, v;

  fprintf(stderr, "loadgen: %s calls: %u ok, %u failed (of %u; established %u, media %u)\n",
          lg->incoming ? "incoming" : "outgoing", s->ok, s->failed, lg->calls, s->established, s->media_ready);
  g_hash_table_iter_init(&it, s->failures);
  while (g_hash_table_iter_next(&it, &k, &v))
    fprintf(stderr, "loadgen:   %u x %s\n", GPOINTER_TO_UINT(v), (const char *)k);
  fprintf(stderr, "loadgen: setup p50 %.1f ms p99 %.1f ms; media ready after the answer p50 %.1f ms p99 %.1f ms\n",
          lg_hist_percentile(&s->setup, 0.5) / 1000.0, lg_hist_percentile(&s->setup, 0.99) / 1000.0,
          lg_hist_percentile(&s->media, 0.5) / 1000.0, lg_hist_percentile(&s->media, 0.99) / 1000.0);
  fprintf(stderr, "loadgen: packets sent %" G_GUINT64_FORMAT ", back %" G_GUINT64_FORMAT ", lost %" G_GUINT64_FORMAT
          " (%.4f %%), duplicated %" G_GUINT64_FORMAT ", reordered %" G_GUINT64_FORMAT "\n",
          s->t.sent, s->t.received, s->t.lost, lg_totals_loss_percent(&s->t), s->t.duplicates, s->t.reordered);
  fprintf(stderr, "loadgen: round trip p50 %.3f ms, p99 %.3f ms, max %.3f ms; jitter mean %.3f ms\n",
          lg_hist_percentile(&s->t.latency, 0.5) / 1000.0, lg_hist_percentile(&s->t.latency, 0.99) / 1000.0,
          s->t.latency.max_us / 1000.0, s->t.calls ? s->t.jitter_sum_us / (double)s->t.calls / 1000.0 : 0.0);
}

/* ---- main ---- */

static int parse_ws_url(const char *url, loadgen *lg)
{
  g_autoptr(GUri) u = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);

  if (!u || g_strcmp0(g_uri_get_scheme(u), "ws") || !g_uri_get_host(u))
    return -EINVAL;
  lg->cfg.ws_host = g_strdup(g_uri_get_host(u));
  lg->cfg.ws_port = g_uri_get_port(u) > 0 ? g_uri_get_port(u) : 80;
  lg->cfg.ws_path = g_strdup(*g_uri_get_path(u) ? g_uri_get_path(u) : "/");
  return 0;
}

static void raise_fd_limit(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static const struct lws_protocols protocols[] = {
  { "sip", lg_client_lws_callback, 0, 65536, 0, NULL, 0 },
  { NULL, NULL, 0, 0, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
  loadgen lg = { 0 };
  g_autofree char *ws = NULL, *codec = NULL, *ice_ports = NULL;
  char *domain = NULL, *target = NULL, *prefix = NULL, *password = NULL, *ice_address = NULL, *json = NULL;
  int calls = 10, workers = 0, timeout_s = 0, setup_timeout_s = 15;
  double rate = 10, hold = 10, drain = 0.3;
  gboolean do_register = FALSE, incoming = FALSE;
  GOptionEntry entries[] = {
    { "ws", 0, 0, G_OPTION_ARG_STRING, &ws, "the gateway's WebSocket URL (ws://host:port[/path])", "URL" },
    { "domain", 0, 0, G_OPTION_ARG_STRING, &domain, "SIP domain of the clients (default example.com)", "D" },
    { "target", 0, 0, G_OPTION_ARG_STRING, &target, "call this URI (outgoing calls)", "URI" },
    { "incoming", 0, 0, G_OPTION_ARG_NONE, &incoming, "register and wait for calls from the PBX", NULL },
    { "calls", 'n', 0, G_OPTION_ARG_INT, &calls, "clients, each with one call (default 10)", "N" },
    { "rate", 'r', 0, G_OPTION_ARG_DOUBLE, &rate, "clients started per second (default 10)", "R" },
    { "hold", 's', 0, G_OPTION_ARG_DOUBLE, &hold, "seconds of media per call before the BYE (default 10)", "S" },
    { "drain", 0, 0, G_OPTION_ARG_DOUBLE, &drain, "seconds between the last packet and the BYE (default 0.3)", "S" },
    { "codec", 0, 0, G_OPTION_ARG_STRING, &codec, "opus (100-byte payloads) or pcmu (160); default opus", "C" },
    { "register", 0, 0, G_OPTION_ARG_NONE, &do_register, "REGISTER first", NULL },
    { "user-prefix", 0, 0, G_OPTION_ARG_STRING, &prefix, "client i is PREFIX<i> (default lg)", "PREFIX" },
    { "password", 0, 0, G_OPTION_ARG_STRING, &password, "digest password of every client", "P" },
    { "ice-address", 0, 0, G_OPTION_ARG_STRING, &ice_address, "the clients' ICE host address (default 127.0.0.1)", "IP" },
    { "ice-ports", 0, 0, G_OPTION_ARG_STRING, &ice_ports, "the clients' ICE port range MIN-MAX", "RANGE" },
    { "workers", 'w', 0, G_OPTION_ARG_INT, &workers, "media threads (default one per core)", "N" },
    { "setup-timeout", 0, 0, G_OPTION_ARG_INT, &setup_timeout_s, "seconds a call may take to set up (default 15)", "S" },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout_s, "seconds the whole run may take (default: ramp + hold + 60)", "S" },
    { "json", 0, 0, G_OPTION_ARG_STRING, &json, "write the JSON report here instead of stdout", "FILE" },
    { NULL },
  };
  g_autoptr(GOptionContext) oc = g_option_context_new("- browser-like load for a WebRTC-to-SIP gateway");
  g_autoptr(GError) err = NULL;

  g_option_context_add_main_entries(oc, entries, NULL);
  if (!g_option_context_parse(oc, &argc, &argv, &err)) {
    fprintf(stderr, "loadgen: %s\n", err->message);
    return 2;
  }
  if (!ws || parse_ws_url(ws, &lg) < 0) {
    fprintf(stderr, "loadgen: --ws ws://host:port is needed\n");
    return 2;
  }
  if (!incoming && !target) {
    fprintf(stderr, "loadgen: --target URI (outgoing calls) or --incoming is needed\n");
    return 2;
  }
  if (calls < 1 || rate <= 0 || hold < 0 || drain < 0 || setup_timeout_s < 1) {
    fprintf(stderr, "loadgen: --calls, --rate, --hold, --drain, --setup-timeout out of range\n");
    return 2;
  }
  lg.cfg.codec = LG_CODEC_OPUS;
  if (codec && !g_ascii_strcasecmp(codec, "pcmu"))
    lg.cfg.codec = LG_CODEC_PCMU;
  else if (codec && g_ascii_strcasecmp(codec, "opus")) {
    fprintf(stderr, "loadgen: --codec opus or pcmu\n");
    return 2;
  }
  if (ice_ports) {
    unsigned a, b;
    if (sscanf(ice_ports, "%u-%u", &a, &b) != 2 || a < 1 || b > 65535 || a > b) {
      fprintf(stderr, "loadgen: --ice-ports MIN-MAX\n");
      return 2;
    }
    lg.cfg.ice_port_min = (uint16_t)a, lg.cfg.ice_port_max = (uint16_t)b;
  }
  lg.cfg.domain = domain ? domain : "example.com";
  lg.cfg.target = incoming ? NULL : target;
  lg.cfg.user_prefix = prefix ? prefix : "lg";
  lg.cfg.password = password;
  lg.cfg.do_register = do_register || incoming;
  lg.cfg.hold_ms = (unsigned)(hold * 1000);
  lg.cfg.drain_ms = (unsigned)(drain * 1000);
  lg.cfg.ice_address = ice_address ? ice_address : "127.0.0.1";
  lg.cfg.setup_timeout_ms = (unsigned)setup_timeout_s * 1000;
  lg.incoming = incoming;
  lg.calls = (unsigned)calls;
  lg.rate = rate;
  lg.json_path = json;
  lg.timeout_s = timeout_s > 0 ? (unsigned)timeout_s : (unsigned)(calls / rate + hold + 60);

  raise_fd_limit();
  log_set_level(LOG_WARNING);
  lws_set_log_level(LLL_ERR, NULL);
  lg.loop = g_main_loop_new(NULL, FALSE);

  void *foreign[1] = { lg.loop };
  struct lws_context_creation_info info = { 0 };
  info.options = LWS_SERVER_OPTION_GLIB | LWS_SERVER_OPTION_VALIDATE_UTF8;
  info.foreign_loops = foreign;
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.gid = -1;
  info.uid = -1;
  info.fd_limit_per_thread = 0;
  info.timeout_secs = (unsigned)setup_timeout_s;
  lg.env.lws = lws_create_context(&info);
  if (!lg.env.lws) {
    fprintf(stderr, "loadgen: libwebsockets context failed\n");
    return 1;
  }
  int rc = dtls_identity_new(&lg.env.dtls_id);
  if (rc == 0)
    rc = lg_media_new((unsigned)workers, &lg.env.media);
  if (rc < 0) {
    fprintf(stderr, "loadgen: setup failed: %s\n", g_strerror(-rc));
    return 1;
  }
  lg.env.cfg = &lg.cfg;
  lg.env.on_state = on_client_state;
  lg.env.user = &lg;
  lg.clients = g_ptr_array_new();

  lg.t_start = g_get_monotonic_time();
  on_ramp(&lg);
  if (lg.started < lg.calls)
    lg.ramp_timer = g_timeout_add(rate >= 1000 ? 1 : (guint)(1000 / rate), on_ramp, &lg);
  lg.progress_timer = g_timeout_add_seconds(1, on_progress, &lg);
  lg.deadline_timer = g_timeout_add_seconds(lg.timeout_s, on_deadline, &lg);
  g_unix_signal_add(SIGINT, on_signal, &lg);
  g_unix_signal_add(SIGTERM, on_signal, &lg);
  g_main_loop_run(lg.loop);

  double duration = (double)(g_get_monotonic_time() - lg.t_start) / 1e6;
  /* the clients that are not done yet end here (media off its worker) */
  for (guint i = 0; i < lg.clients->len; i++)
    lg_client_abort(g_ptr_array_index(lg.clients, i), "not done at the end of the run");
  summary s;
  summarise(&lg, &s);
  g_autofree char *report = report_json(&lg, &s, duration);
  report_human(&lg, &s);
  if (lg.json_path) {
    if (!g_file_set_contents(lg.json_path, report, -1, &err)) {
      fprintf(stderr, "loadgen: %s\n", err->message);
      return 1;
    }
  } else {
    printf("%s\n", report);
  }
  g_hash_table_unref(s.failures);

  if (lg.ramp_timer)
    g_source_remove(lg.ramp_timer);
  g_source_remove(lg.progress_timer);
  if (lg.deadline_timer)
    g_source_remove(lg.deadline_timer);
  for (guint i = 0; i < lg.clients->len; i++)
    lg_client_free(g_ptr_array_index(lg.clients, i));
  g_ptr_array_unref(lg.clients);
  lws_context_destroy(lg.env.lws);
  lg_media_free(lg.env.media);
  dtls_identity_free(lg.env.dtls_id);
  g_main_loop_unref(lg.loop);
  return 0;
}
