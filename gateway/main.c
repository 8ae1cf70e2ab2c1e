/* rtcsipd: main(), the daemon's start, reload and stop.
 *
 * Start: read the configuration (exit 78 on any error), make the listeners
 * (WebSocket edge, SIP side), tell systemd READY=1.  SIGHUP: read the file
 * again and apply what can change at run time (log level, limits, PBX
 * address, domains), saying what changed.  SIGTERM/SIGINT: stop accepting,
 * close every WebSocket cleanly, answer what is pending, exit 0.
 */
#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <glib.h>
#include <glib-unix.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_glib.h>
#include <sofia-sip/su_log.h>

#include "config/config.h"
#include "config/log.h"
#include "gateway/lifecycle.h"
#include "gateway/media_engine.h"
#include "gateway/router.h"
#include "gateway/selfsigned.h"
#include "sip/pbx.h"
#include "sip/ws_edge.h"
#include "webrtc/dtls.h"

#define SHUTDOWN_GRACE_MS 2000
#define STATUS_INTERVAL_S 2

typedef struct {
  GMainLoop *loop;
  config *cfg;
  su_root_t *root;
  router *router;
  dtls_identity *dtls_id; /* one per process: its fingerprint goes in every SDP */
  media_engine *engine;   /* the media workers */
  ws_edge *edge;
  pbx_link *pbx;
  char *cert_pem; /* self-signed development certificate, when made */
  char *key_pem;
  bool stopping;
  guint status_timer;
  guint grace_timer;
} daemon_state;

static gboolean on_status_tick(gpointer user)
{
  daemon_state *d = user;
  g_autofree char *s = router_status(d->router);
  lifecycle_notify_status(s);
  return G_SOURCE_CONTINUE;
}

static gboolean on_grace_over(gpointer user)
{
  daemon_state *d = user;
  d->grace_timer = 0;
  g_main_loop_quit(d->loop);
  return G_SOURCE_REMOVE;
}

static gboolean on_stop_poll(gpointer user)
{
  daemon_state *d = user;
  if (ws_edge_connection_count(d->edge) > 0 && d->grace_timer)
    return G_SOURCE_CONTINUE;
  g_main_loop_quit(d->loop);
  return G_SOURCE_REMOVE;
}

static gboolean on_terminate(gpointer user)
{
  daemon_state *d = user;

  if (d->stopping) {
    log_msg(LOG_NOTICE, "second stop signal: exiting now");
    g_main_loop_quit(d->loop);
    return G_SOURCE_CONTINUE;
  }
  d->stopping = true;
  lifecycle_notify_stopping();
  log_msg(LOG_NOTICE, "stopping: closing %u connections", ws_edge_connection_count(d->edge));
  ws_edge_stop_accepting(d->edge);
  ws_edge_close_all(d->edge);
  d->grace_timer = g_timeout_add(SHUTDOWN_GRACE_MS, on_grace_over, d);
  g_timeout_add(50, on_stop_poll, d);
  return G_SOURCE_CONTINUE;
}

static bool strv_equal(char **a, char **b)
{
  return g_strv_equal((const char *const *)a, (const char *const *)b);
}

static void note_restart_only(const char *what, bool changed)
{
  if (changed)
    log_msg(LOG_WARNING, "reload: %s changed; it takes effect after a restart", what);
}

static gboolean on_reload(gpointer user)
{
  daemon_state *d = user;
  config *old = d->cfg, *c = NULL;
  g_autofree char *error = NULL;

  lifecycle_notify_reloading();
  if (config_load(old->path, &c, &error) < 0) {
    log_msg(LOG_ERR, "reload failed, keeping the running configuration: %s", error);
    lifecycle_notify_reloaded();
    return G_SOURCE_CONTINUE;
  }

  if (c->log_level != old->log_level) {
    log_msg(LOG_NOTICE, "reload: log_level %s -> %s", log_level_to_string(old->log_level),
            log_level_to_string(c->log_level));
    log_set_level(c->log_level);
  }
  if (c->max_message_size != old->max_message_size ||
      c->connections_per_ip != old->connections_per_ip) {
    log_msg(LOG_NOTICE, "reload: max_message_size %zu -> %zu, connections_per_ip %u -> %u",
            old->max_message_size, c->max_message_size, old->connections_per_ip,
            c->connections_per_ip);
    ws_edge_set_limits(d->edge, c->max_message_size, c->connections_per_ip);
  }
  if (c->max_registrations != old->max_registrations)
    log_msg(LOG_NOTICE, "reload: max_registrations %u -> %u", old->max_registrations,
            c->max_registrations);
  if (c->max_expires != old->max_expires)
    log_msg(LOG_NOTICE, "reload: max_expires %u -> %u", old->max_expires, c->max_expires);
  if (c->transaction_timeout != old->transaction_timeout)
    log_msg(LOG_NOTICE, "reload: transaction_timeout %u -> %u", old->transaction_timeout,
            c->transaction_timeout);
  if (!strv_equal(c->domains, old->domains)) {
    g_autofree char *a = g_strjoinv(";", old->domains), *b = g_strjoinv(";", c->domains);
    log_msg(LOG_NOTICE, "reload: domains %s -> %s", a, b);
  }
  if (g_strcmp0(c->pbx_host, old->pbx_host) != 0 || c->pbx_port != old->pbx_port ||
      c->pbx_transport != old->pbx_transport) {
    int r = pbx_link_set_target(d->pbx, c->pbx_host, c->pbx_port, c->pbx_transport);
    if (r < 0) {
      log_msg(LOG_ERR, "reload: PBX %s:%u (%s) is not usable%s; keeping %s", c->pbx_host,
              c->pbx_port, sip_transport_name(c->pbx_transport),
              r == -EPROTONOSUPPORT ? " without a restart (tls)" : "", pbx_link_target(d->pbx));
      g_free(c->pbx_host);
      c->pbx_host = g_strdup(old->pbx_host);
      c->pbx_port = old->pbx_port;
      c->pbx_transport = old->pbx_transport;
    } else {
      log_msg(LOG_NOTICE, "reload: PBX is now %s", pbx_link_target(d->pbx));
    }
  }
  /* the PBX's addresses are resolved anew at every reload (DNS may have changed) */
  if (pbx_link_set_trusted(d->pbx, c->pbx_trusted, c->n_pbx_trusted) < 0)
    log_msg(LOG_ERR, "reload: the trusted addresses could not be set; the old ones stay");
  note_restart_only("[websocket] ws", g_strcmp0(c->ws.host, old->ws.host) || c->ws.port != old->ws.port);
  note_restart_only("[websocket] wss", g_strcmp0(c->wss.host, old->wss.host) || c->wss.port != old->wss.port);
  note_restart_only("[websocket] certificate/private_key",
                    g_strcmp0(c->tls_certificate, old->tls_certificate) ||
                    g_strcmp0(c->tls_private_key, old->tls_private_key));
  note_restart_only("[websocket] static_dir", g_strcmp0(c->static_dir, old->static_dir));
  note_restart_only("[sip] listen", g_strcmp0(c->sip.host, old->sip.host) || c->sip.port != old->sip.port);
  note_restart_only("[sip] advertised_address", g_strcmp0(c->advertised_address, old->advertised_address));
  note_restart_only("[pbx] tls_directory", g_strcmp0(c->pbx_tls_directory, old->pbx_tls_directory));
  note_restart_only("[media] rtp ports",
                    c->rtp_port_min != old->rtp_port_min || c->rtp_port_max != old->rtp_port_max);

  d->cfg = c;
  router_set_config(d->router, c);
  config_free(old);
  log_msg(LOG_NOTICE, "reloaded %s", c->path);
  lifecycle_notify_reloaded();
  return G_SOURCE_CONTINUE;
}

/* File descriptors a call holds (measured: about 6 with 400 calls up): its
 * WebSocket, libnice's socket and the worker's own for the ICE pair, RTP
 * and RTCP toward the PBX, and a share of libnice's and OpenSSL's. */
#define FDS_PER_CALL 6

/* The soft limit on open files up to the hard one (systemd's unit sets
 * both; a shell often leaves the soft one at 1024), and a warning when even
 * that cannot hold [limits] max_calls. */
static void raise_fd_limit(const config *c)
{
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
      (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  rlim_t need = (rlim_t)c->max_calls * FDS_PER_CALL + 256;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
    log_msg(LOG_WARNING, "open files are limited to %llu: fewer than [limits] max_calls = %u calls need (about %llu); "
            "raise LimitNOFILE (or ulimit -n)", (unsigned long long)rl.rlim_cur, c->max_calls,
            (unsigned long long)need);
}

static int start(daemon_state *d)
{
  const config *c = d->cfg;
  int r;

  raise_fd_limit(c);

  if (c->wss.port && !c->tls_certificate) {
    r = selfsigned_generate(c->advertised_address, &d->cert_pem, &d->key_pem);
    if (r < 0) {
      log_msg(LOG_ERR, "wss: cannot make a self-signed certificate: %s", g_strerror(-r));
      return r;
    }
    log_msg(LOG_WARNING, "**********************************************************");
    log_msg(LOG_WARNING, "wss: NO CERTIFICATE CONFIGURED. Using a SELF-SIGNED certificate");
    log_msg(LOG_WARNING, "wss: made at start, for development only. Browsers will refuse");
    log_msg(LOG_WARNING, "wss: it until accepted by hand. Set [websocket] certificate and");
    log_msg(LOG_WARNING, "wss: private_key in %s for production.", c->path);
    log_msg(LOG_WARNING, "**********************************************************");
  }

  r = dtls_identity_new(&d->dtls_id);
  if (r < 0) {
    log_msg(LOG_ERR, "cannot make the DTLS certificate: %s", g_strerror(-r));
    return r;
  }
  r = media_engine_new(c->media_workers, &d->engine);
  if (r < 0) {
    log_msg(LOG_ERR, "cannot start the media workers: %s", g_strerror(-r));
    return r;
  }
  log_msg(LOG_INFO, "media: %u worker threads", media_engine_workers(d->engine));
  d->router = router_new(c, d->dtls_id, d->engine);

  ws_edge_settings ws = {
    .ws_host = c->ws.host, .ws_port = c->ws.port,
    .wss_host = c->wss.host, .wss_port = c->wss.port,
    .cert_file = c->tls_certificate, .key_file = c->tls_private_key,
    .cert_pem = d->cert_pem, .key_pem = d->key_pem,
    .static_dir = c->static_dir,
    .max_message_size = c->max_message_size,
    .max_connections_per_ip = c->connections_per_ip,
  };
  r = ws_edge_new(&ws, &router_ws_callbacks, d->router, &d->edge);
  if (r < 0)
    return r;

  pbx_settings ps = {
    .listen_host = c->sip.host, .listen_port = c->sip.port,
    .advertised_host = c->advertised_address,
    .pbx_host = c->pbx_host, .pbx_port = c->pbx_port, .pbx_transport = c->pbx_transport,
    .tls_directory = c->pbx_tls_directory,
    .trusted = c->pbx_trusted, .n_trusted = c->n_pbx_trusted,
  };
  r = pbx_link_new(d->root, &ps, &router_pbx_callbacks, d->router, &d->pbx);
  if (r < 0)
    return r;
  router_attach(d->router, d->edge, d->pbx);
  return 0;
}

static void stop(daemon_state *d)
{
  if (d->status_timer)
    g_source_remove(d->status_timer);
  if (d->grace_timer)
    g_source_remove(d->grace_timer);
  lifecycle_stop_watchdog();
  router_free(d->router);   /* answers what is pending */
  pbx_link_free(d->pbx);
  ws_edge_free(d->edge);
  media_engine_free(d->engine); /* after the calls */
  dtls_identity_free(d->dtls_id);
  g_free(d->cert_pem);
  if (d->key_pem) {
    explicit_bzero(d->key_pem, strlen(d->key_pem));
    g_free(d->key_pem);
  }
}

int main(int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  gboolean check_only = FALSE, version = FALSE;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
      "Configuration file (default " CONFIG_DEFAULT_PATH ")", "FILE" },
    { "check-config", 0, 0, G_OPTION_ARG_NONE, &check_only,
      "Check the configuration and exit (0 if good, 78 if not)", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) opts = g_option_context_new("- WebRTC-to-SIP gateway");
  g_autoptr(GError) error = NULL;
  g_autofree char *config_error = NULL;
  daemon_state d = { 0 };
  int r;

  setlocale(LC_ALL, "");
  g_option_context_add_main_entries(opts, entries, NULL);
  g_option_context_set_summary(opts,
    "Terminates SIP over WebSocket (RFC 7118) from browsers and bridges it to a SIP PBX.");
  if (!g_option_context_parse(opts, &argc, &argv, &error)) {
    fprintf(stderr, "rtcsipd: %s (see --help)\n", error->message);
    return 64; /* EX_USAGE */
  }
  if (version) {
    printf("rtcsipd %s\n", RTCSIPD_VERSION);
    return 0;
  }
  if (!config_path)
    config_path = g_strdup(CONFIG_DEFAULT_PATH);

  if (config_load(config_path, &d.cfg, &config_error) < 0) {
    fprintf(stderr, "%s\n", config_error);
    return CONFIG_EX_CONFIG;
  }
  if (check_only) {
    printf("%s: configuration is valid\n", config_path);
    config_free(d.cfg);
    return 0;
  }
  log_set_level(d.cfg->log_level);

  /* Sofia prints its own debug lines unless told not to */
  g_setenv("SOFIA_DEBUG", "0", FALSE);
  g_setenv("SU_DEBUG", "0", FALSE);
  signal(SIGPIPE, SIG_IGN);
  su_init();
  d.root = su_glib_root_create(NULL);
  g_source_attach(su_glib_root_gsource(d.root), NULL);
  d.loop = g_main_loop_new(NULL, FALSE);

  r = start(&d);
  if (r < 0) {
    log_msg(LOG_ERR, "cannot start: %s", g_strerror(-r));
    stop(&d);
    su_root_destroy(d.root);
    su_deinit();
    g_main_loop_unref(d.loop);
    config_free(d.cfg);
    return EXIT_FAILURE;
  }

  g_unix_signal_add(SIGTERM, on_terminate, &d);
  g_unix_signal_add(SIGINT, on_terminate, &d);
  g_unix_signal_add(SIGHUP, on_reload, &d);
  lifecycle_start_watchdog();
  {
    g_autofree char *s = router_status(d.router);
    lifecycle_notify_ready(s);
  }
  d.status_timer = g_timeout_add_seconds(STATUS_INTERVAL_S, on_status_tick, &d);
  {
    g_autofree char *ws = d.cfg->ws.port ? g_strdup_printf("%s:%u", d.cfg->ws.host, d.cfg->ws.port)
                                         : g_strdup("off");
    g_autofree char *wss = d.cfg->wss.port ? g_strdup_printf("%s:%u", d.cfg->wss.host, d.cfg->wss.port)
                                           : g_strdup("off");
    log_msg(LOG_NOTICE, "rtcsipd %s ready: ws %s, wss %s, SIP %s:%u, PBX %s", RTCSIPD_VERSION,
            ws, wss, d.cfg->sip.host, d.cfg->sip.port, pbx_link_target(d.pbx));
  }

  g_main_loop_run(d.loop);

  stop(&d);
  su_root_destroy(d.root);
  su_deinit();
  g_main_loop_unref(d.loop);
  log_msg(LOG_NOTICE, "stopped");
  config_free(d.cfg);
  return 0;
}
