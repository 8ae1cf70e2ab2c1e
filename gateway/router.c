/* Router: out-of-dialog signalling between browser flows and the PBX.
 * See router.h. */
#include "gateway/router.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/url.h>

#include "config/log.h"
#include "gateway/bindings.h"
#include "gateway/call.h"
#include "gateway/echo.h"
#include "sip/rewrite.h"
#include "sip/sipmsg.h"

#define ALLOW_METHODS "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REGISTER, MESSAGE, NOTIFY"

/* Retry-After of a 503 to a call refused by a [limits] limit, seconds */
#define LIMIT_RETRY_AFTER 10
/* how often refusals by the same limit are summed up in the log, seconds */
#define LIMIT_LOG_PERIOD 60

typedef enum {
  LIMIT_MAX_CALLS,
  LIMIT_PER_CONNECTION,
  LIMIT_PER_IP,
  LIMIT_PORTS,
  N_LIMITS,
} call_limit;

/* The media ports a call may hold at most from [media] rtp_port_min..max:
 * its RTP/RTCP pair, its ICE port, and the pair that port may break up. */
#define PORTS_PER_CALL 4

static const char *const limit_names[N_LIMITS] = {
  [LIMIT_MAX_CALLS] = "max_calls",
  [LIMIT_PER_CONNECTION] = "pending_calls_per_connection",
  [LIMIT_PER_IP] = "pending_calls_per_ip",
  [LIMIT_PORTS] = "media ports (rtp_port_min..rtp_port_max)",
};

/* One log line when a limit first refuses a call, then a count per period. */
typedef struct {
  gint64 since;      /* monotonic us of the first refusal logged; 0: none */
  unsigned refused;  /* refusals since */
} limit_log;

struct router {
  const config *cfg;
  unsigned long rss_idle_kib; /* the process's RSS before any call */
  const dtls_identity *dtls_id;
  struct media_engine *engine;
  GPtrArray *calls;       /* echo_call: calls rtcsipd answers itself */
  GPtrArray *pbx_calls;   /* call: calls through the PBX */
  ws_edge *edge;
  pbx_link *pbx;
  bindings *bindings;
  GHashTable *to_browser; /* branch -> browser_tx */
  GHashTable *to_pbx;     /* pbx_tx set */
  guint expire_timer;
  limit_log limits[N_LIMITS];
  uint64_t sip_dropped;   /* pbx_link_dropped() when last logged */
  unsigned ticks;         /* of expire_timer */
};

/* A request from the PBX, delivered to a browser, waiting for its answer. */
typedef struct {
  router *r;
  uint64_t flow;
  char branch[32];
  pbx_server_tx *stx;
  guint timer;
} browser_tx;

/* A request from a browser, forwarded to the PBX. */
typedef struct {
  router *r;
  uint64_t flow;
  msg_t *request;         /* a copy as the browser sent it, for local answers */
  pbx_client_tx *ctx;
  bool is_register;
  bool made_binding;      /* this REGISTER created a pending binding */
  char token[17];         /* binding token, "" when none */
  char *remove_aor;       /* "Contact: *": the AOR whose bindings go on 2xx */
} pbx_tx;

/* ---- helpers ---- */

static int send_to_flow(router *r, ws_conn *conn, msg_t *msg)
{
  size_t len = 0;
  g_autofree char *text = sipmsg_print(msg, &len);

  if (!text) {
    log_id(ws_conn_name(conn), LOG_WARNING, "cannot print a message for the browser");
    return -EINVAL;
  }
  if (ws_conn_send(conn, text, len) < 0)
    log_id(ws_conn_name(conn), LOG_DEBUG, "flow closing, message dropped");
  return 0;
}

static int reply_to_browser(router *r, ws_conn *conn, msg_t *request, int status,
                            const char *phrase, const char *warning)
{
  g_autofree char *w = warning ? g_strdup_printf("399 rtcsipd \"%s\"", warning) : NULL;
  msg_t *resp = sipmsg_response(request, status, phrase,
                                TAG_IF(w, SIPTAG_WARNING_STR(w)), TAG_END());
  int ret;

  if (!resp) {
    log_id(ws_conn_name(conn), LOG_WARNING, "cannot make a %d response", status);
    return -EINVAL;
  }
  ret = send_to_flow(r, conn, resp);
  msg_destroy(resp);
  return ret;
}

static bool is_own_host(router *r, const char *host)
{
  const config *c = r->cfg;

  return host && (config_serves_domain(c, host) ||
                  g_ascii_strcasecmp(host, c->advertised_address) == 0 ||
                  (c->sip.host && g_ascii_strcasecmp(host, c->sip.host) == 0) ||
                  (c->ws.host && g_ascii_strcasecmp(host, c->ws.host) == 0) ||
                  (c->wss.host && g_ascii_strcasecmp(host, c->wss.host) == 0));
}

static char *aor_of(const url_t *url)
{
  g_autofree char *host = g_ascii_strdown(url->url_host, -1);
  return url->url_user ? g_strdup_printf("sip:%s@%s", url->url_user, host)
                       : g_strdup_printf("sip:%s", host);
}

static char *uri_string(const url_t *url)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  char *s = url_as_string(home, url);
  char *copy = g_strdup(s);
  su_home_deinit(home);
  return copy;
}

/* ---- browser -> PBX ---- */

static void pbx_tx_free(pbx_tx *t)
{
  if (t->request)
    msg_destroy(t->request);
  g_free(t->remove_aor);
  g_free(t);
}

static void register_answered(router *r, pbx_tx *t, int status, msg_t *response)
{
  binding *b = t->token[0] ? bindings_lookup_by_token(r->bindings, t->token) : NULL;

  if (status >= 200 && status < 300) {
    if (!b && response) {
      unsigned ignored = 0;
      rewrite_register_response(response, NULL, NULL, &ignored); /* no binding of others */
    }
    if (b && response) {
      unsigned expires = 0;
      if (rewrite_register_response(response, b->token, b->contact_uri, &expires) == 0 &&
          expires > 0) {
        bindings_confirm(r->bindings, b, expires, g_get_monotonic_time());
        ws_conn *conn = r->edge ? ws_edge_find(r->edge, b->flow) : NULL;
        if (conn)
          ws_conn_set_registered(conn); /* the PBX vouched for it: no per-IP limit */
        log_id(t->token, LOG_INFO, "registered %s on ws-%" G_GUINT64_FORMAT " for %us",
               b->aor, b->flow, expires);
      } else {
        log_id(t->token, LOG_INFO, "unregistered %s on ws-%" G_GUINT64_FORMAT, b->aor, b->flow);
        bindings_remove(r->bindings, b);
      }
    }
    if (t->remove_aor) {
      unsigned n = bindings_remove_aor(r->bindings, t->remove_aor);
      log_msg(LOG_INFO, "unregistered all %u bindings of %s", n, t->remove_aor);
    }
  } else if (status >= 300 && b && t->made_binding && b->expires_at == 0) {
    /* a first REGISTER that failed (or was challenged) leaves nothing behind */
    bindings_remove(r->bindings, b);
  }
}

static void on_pbx_response(void *user, pbx_client_tx *ctx, int status, msg_t *response)
{
  pbx_tx *t = user;
  router *r = t->r;
  ws_conn *conn = ws_edge_find(r->edge, t->flow);

  if (response && rewrite_pop_via(response, pbx_client_tx_branch(ctx)) < 0) {
    log_msg(LOG_WARNING, "pbx: response without rtcsipd's Via, dropped");
    response = NULL;
    if (status < 200)
      return;
    status = 502;
  }
  if (response && rewrite_restore_vias(response, sip_object(t->request)->sip_via) < 0) {
    log_msg(LOG_WARNING, "pbx: cannot put the browser's Via back on a %d", status);
    response = NULL;
    if (status < 200)
      return;
    status = 502;
  }
  if (t->is_register)
    register_answered(r, t, status, response);

  if (conn) {
    if (response)
      send_to_flow(r, conn, response);
    else if (status >= 200)
      reply_to_browser(r, conn, t->request, status,
                       status == 408 ? "Request Timeout" :
                       status == 502 ? "Bad Gateway" : "Service Unavailable",
                       status == 408 ? "no answer from the PBX" : "PBX unreachable");
  }
  if (status >= 200) {
    g_hash_table_remove(r->to_pbx, t);
    pbx_client_tx_free(ctx);
    pbx_tx_free(t);
  }
}

/* Sends MSG (consumed) to the PBX; T (consumed) holds what the answer needs. */
static void forward_to_pbx(router *r, ws_conn *conn, msg_t *msg, pbx_tx *t)
{
  t->r = r;
  t->flow = ws_conn_id(conn);
  t->request = msg_dup(msg);
  rewrite_strip_vias(msg);
  t->ctx = pbx_link_send_request(r->pbx, msg, on_pbx_response, t);
  if (!t->ctx) {
    log_id(ws_conn_name(conn), LOG_WARNING, "cannot send to the PBX at %s",
           pbx_link_target(r->pbx));
    if (t->is_register && t->made_binding) {
      binding *b = bindings_lookup_by_token(r->bindings, t->token);
      if (b)
        bindings_remove(r->bindings, b);
    }
    reply_to_browser(r, conn, t->request, 503, "Service Unavailable", "PBX unreachable");
    pbx_tx_free(t);
    return;
  }
  g_hash_table_add(r->to_pbx, t);
}

static void handle_register(router *r, ws_conn *conn, msg_t *msg)
{
  sip_t *sip = sip_object(msg);
  const config *c = r->cfg;
  pbx_tx *t = g_new0(pbx_tx, 1);
  g_autofree char *aor = NULL;

  t->is_register = true;
  if (!config_serves_domain(c, sip->sip_request->rq_url->url_host) ||
      !sip->sip_to->a_url->url_host || !config_serves_domain(c, sip->sip_to->a_url->url_host)) {
    log_id(ws_conn_name(conn), LOG_NOTICE, "REGISTER for %s refused: domain not served",
           sip->sip_request->rq_url->url_host);
    reply_to_browser(r, conn, msg, 403, "Forbidden", "domain not served here");
    goto done;
  }
  aor = aor_of(sip->sip_to->a_url);

  if (sip->sip_contact && sip->sip_contact->m_url->url_type == url_any) {
    t->remove_aor = g_strdup(aor);
  } else if (sip->sip_contact) {
    rewrite_target target = {
      .host = pbx_link_contact_host(r->pbx),
      .port = pbx_link_contact_port(r->pbx),
      .transport = pbx_link_contact_transport(r->pbx),
    };
    g_autofree char *contact_uri = uri_string(sip->sip_contact->m_url);
    bool created = false;
    binding *b;

    if (sip->sip_contact->m_next) {
      reply_to_browser(r, conn, msg, 400, "Bad Request", "one Contact per REGISTER");
      goto done;
    }
    b = bindings_prepare(r->bindings, aor, ws_conn_id(conn), contact_uri,
                         c->max_registrations, &created);
    if (!b) {
      log_id(ws_conn_name(conn), LOG_WARNING, "REGISTER for %s refused: %u registrations held",
             aor, bindings_count(r->bindings));
      reply_to_browser(r, conn, msg, 503, "Service Unavailable", "too many registrations");
      goto done;
    }
    t->made_binding = created;
    memcpy(t->token, b->token, sizeof t->token);
    if (rewrite_register_request(msg, &target, b->token, c->max_expires) < 0) {
      if (created)
        bindings_remove(r->bindings, b);
      reply_to_browser(r, conn, msg, 400, "Bad Request", "bad Contact");
      goto done;
    }
  }
  log_id(ws_conn_name(conn), LOG_DEBUG, "REGISTER %s to the PBX", aor);
  forward_to_pbx(r, conn, msg, t);
  return;

done:
  msg_destroy(msg);
  pbx_tx_free(t);
}

/* ---- limits on calls ---- */

static unsigned limit_value(const config *c, call_limit l)
{
  switch (l) {
  case LIMIT_MAX_CALLS: return c->max_calls;
  case LIMIT_PER_CONNECTION: return c->pending_calls_per_connection;
  case LIMIT_PER_IP: return c->pending_calls_per_ip;
  case LIMIT_PORTS: return ((unsigned)c->rtp_port_max - c->rtp_port_min + 1) / PORTS_PER_CALL;
  default: return 0;
  }
}

static void note_refusal(router *r, call_limit l, const char *who)
{
  limit_log *ll = &r->limits[l];

  if (ll->refused++ == 0) {
    ll->since = g_get_monotonic_time();
    log_msg(LOG_WARNING, "limits: %s (%u) reached by %s: new calls get 503 (Retry-After %u); "
            "further refusals are summed up every %u s", limit_names[l],
            limit_value(r->cfg, l), who, LIMIT_RETRY_AFTER, LIMIT_LOG_PERIOD);
  }
}

static void limits_tick(router *r, gint64 now)
{
  for (int l = 0; l < N_LIMITS; l++) {
    limit_log *ll = &r->limits[l];
    if (ll->refused && now - ll->since >= (gint64)LIMIT_LOG_PERIOD * G_USEC_PER_SEC) {
      if (ll->refused > 1)
        log_msg(LOG_WARNING, "limits: %u calls refused by %s (%u) in the last %u s",
                ll->refused, limit_names[l], limit_value(r->cfg, l), LIMIT_LOG_PERIOD);
      ll->refused = 0;
      ll->since = 0;
    }
  }
}

static bool flow_has_ip(router *r, uint64_t flow, const char *ip)
{
  ws_conn *conn = ws_edge_find(r->edge, flow);
  return conn && strcmp(ws_conn_ip(conn), ip) == 0;
}

/* Which limit a new call from CONN would break; N_LIMITS: none.  Echo calls
 * count as pending for their whole life (they need no account). */
static call_limit call_limit_broken(router *r, ws_conn *conn)
{
  const config *c = r->cfg;
  uint64_t flow = ws_conn_id(conn);
  const char *ip = ws_conn_ip(conn);
  unsigned on_flow = 0, on_ip = 0;

  if (r->pbx_calls->len + r->calls->len >= c->max_calls)
    return LIMIT_MAX_CALLS;
  if (r->pbx_calls->len + r->calls->len >= limit_value(c, LIMIT_PORTS))
    return LIMIT_PORTS;
  for (guint i = 0; i < r->calls->len; i++) {
    uint64_t f = echo_call_flow(r->calls->pdata[i]);
    on_flow += f == flow;
    on_ip += f == flow || flow_has_ip(r, f, ip);
  }
  for (guint i = 0; i < r->pbx_calls->len; i++) {
    call *x = r->pbx_calls->pdata[i];
    if (!call_is_pending(x))
      continue;
    uint64_t f = call_flow(x);
    on_flow += f == flow;
    on_ip += f == flow || flow_has_ip(r, f, ip);
  }
  if (on_flow >= c->pending_calls_per_connection)
    return LIMIT_PER_CONNECTION;
  /* a connection the PBX registered is not a stranger: an office behind one
   * NAT address is many of them */
  if (on_ip >= c->pending_calls_per_ip && !ws_conn_registered(conn))
    return LIMIT_PER_IP;
  return N_LIMITS;
}

/* true when the INVITE MSG from CONN may start a call; else it was answered
 * (415 for a body that is no SDP, 503 with Retry-After for a limit) and
 * consumed. */
static bool admit_browser_call(router *r, ws_conn *conn, msg_t *msg)
{
  sip_t *sip = sip_object(msg);
  call_limit l;
  char retry[16];
  msg_t *resp;

  if (sip->sip_payload && sip->sip_payload->pl_len &&
      (!sip->sip_content_type || !sip->sip_content_type->c_type ||
       g_ascii_strcasecmp(sip->sip_content_type->c_type, "application/sdp") != 0)) {
    resp = sipmsg_response(msg, 415, "Unsupported Media Type",
                           SIPTAG_ACCEPT_STR("application/sdp"), TAG_END());
    if (resp) {
      send_to_flow(r, conn, resp);
      msg_destroy(resp);
    }
    msg_destroy(msg);
    return false;
  }
  l = call_limit_broken(r, conn);
  if (l == N_LIMITS)
    return true;
  note_refusal(r, l, l == LIMIT_MAX_CALLS || l == LIMIT_PORTS ? "all callers" : ws_conn_peer(conn));
  g_snprintf(retry, sizeof retry, "%u", LIMIT_RETRY_AFTER);
  g_autofree char *w = g_strdup_printf("399 rtcsipd \"too many calls (%s)\"", limit_names[l]);
  resp = sipmsg_response(msg, 503, "Service Unavailable", SIPTAG_RETRY_AFTER_STR(retry),
                         SIPTAG_WARNING_STR(w), TAG_END());
  if (resp) {
    send_to_flow(r, conn, resp);
    msg_destroy(resp);
  }
  msg_destroy(msg);
  return false;
}

static void on_echo_ended(void *user, echo_call *ec)
{
  router *r = user;

  g_ptr_array_remove_fast(r->calls, ec);
  echo_call_free(ec);
}

static void start_echo_call(router *r, ws_conn *conn, msg_t *msg)
{
  static const echo_callbacks cb = { .on_ended = on_echo_ended };
  echo_call *ec = NULL;

  if (echo_call_new(r->cfg, r->dtls_id, r->engine, r->edge, conn, msg, &cb, r, &ec) == 0)
    g_ptr_array_add(r->calls, ec);
}

static void on_call_ended(void *user, call *c)
{
  router *r = user;

  g_ptr_array_remove_fast(r->pbx_calls, c);
  call_free(c);
}

static const call_callbacks router_call_callbacks = { .on_ended = on_call_ended };

static call *find_by_pbx_dialog(void *user, const char *call_id, const char *tag_a,
                                const char *tag_b)
{
  router *r = user;

  for (guint i = 0; i < r->pbx_calls->len; i++)
    if (call_has_pbx_dialog(r->pbx_calls->pdata[i], call_id, tag_a, tag_b))
      return r->pbx_calls->pdata[i];
  return NULL;
}

static call *find_by_browser_dialog(void *user, const char *call_id, const char *tag_a,
                                    const char *tag_b)
{
  router *r = user;

  for (guint i = 0; i < r->pbx_calls->len; i++)
    if (call_has_browser_dialog(r->pbx_calls->pdata[i], call_id, tag_a, tag_b))
      return r->pbx_calls->pdata[i];
  return NULL;
}

static call_env make_call_env(router *r)
{
  return (call_env){ .cfg = r->cfg, .id = r->dtls_id, .engine = r->engine, .edge = r->edge, .pbx = r->pbx,
                     .find_by_pbx_dialog = find_by_pbx_dialog,
                     .find_by_browser_dialog = find_by_browser_dialog, .find_user = r };
}

static void start_call(router *r, ws_conn *conn, msg_t *msg)
{
  call_env env = make_call_env(r);
  call *c = NULL;

  if (call_from_browser(&env, conn, msg, &router_call_callbacks, r, &c) == 0)
    g_ptr_array_add(r->pbx_calls, c);
}

static void handle_browser_request(router *r, ws_conn *conn, msg_t *msg)
{
  sip_t *sip = sip_object(msg);
  const url_t *ruri = sip->sip_request->rq_url;
  sip_method_t method = sip->sip_request->rq_method;

  for (guint i = 0; i < r->calls->len; i++)
    if (echo_call_matches(r->calls->pdata[i], ws_conn_id(conn), msg)) {
      echo_call_on_request(r->calls->pdata[i], msg);
      return;
    }
  for (guint i = 0; i < r->pbx_calls->len; i++)
    if (call_matches_request(r->pbx_calls->pdata[i], ws_conn_id(conn), msg)) {
      call_on_browser_request(r->pbx_calls->pdata[i], msg);
      return;
    }
  if (method == sip_method_ack) {
    msg_destroy(msg); /* an ACK of no dialog here: nothing to answer */
    return;
  }
  rewrite_strip_routes(msg);
  if (rewrite_max_forwards(msg) == -ELOOP) {
    reply_to_browser(r, conn, msg, 483, "Too Many Hops", NULL);
    goto done;
  }
  if (method == sip_method_options && !ruri->url_user && is_own_host(r, ruri->url_host)) {
    msg_t *resp = sipmsg_response(msg, 200, "OK",
                                  SIPTAG_ALLOW_STR(ALLOW_METHODS),
                                  SIPTAG_ACCEPT_STR("application/sdp"),
                                  SIPTAG_SUPPORTED_STR("path, outbound"),
                                  TAG_END());
    if (resp) {
      send_to_flow(r, conn, resp);
      msg_destroy(resp);
    }
    goto done;
  }
  if (method == sip_method_register) {
    handle_register(r, conn, msg);
    return;
  }
  if (method == sip_method_invite && echo_is_target(r->cfg, msg)) {
    if (admit_browser_call(r, conn, msg))
      start_echo_call(r, conn, msg);
    return;
  }
  if (method == sip_method_cancel) {
    reply_to_browser(r, conn, msg, 481, "Call/Transaction Does Not Exist", NULL);
    goto done;
  }
  if (method == sip_method_invite && sip->sip_to->a_tag) {
    reply_to_browser(r, conn, msg, 481, "Call/Transaction Does Not Exist", NULL);
    goto done;
  }
  if (!config_serves_domain(r->cfg, ruri->url_host) ||
      !sip->sip_from->a_url->url_host ||
      !config_serves_domain(r->cfg, sip->sip_from->a_url->url_host)) {
    log_id(ws_conn_name(conn), LOG_NOTICE, "%s to %s refused: domain not served",
           sip->sip_request->rq_method_name, ruri->url_host);
    reply_to_browser(r, conn, msg, 403, "Forbidden", "domain not served here");
    goto done;
  }
  if (method == sip_method_invite) {
    if (admit_browser_call(r, conn, msg))
      start_call(r, conn, msg);
    return;
  }
  log_id(ws_conn_name(conn), LOG_DEBUG, "%s to the PBX", sip->sip_request->rq_method_name);
  forward_to_pbx(r, conn, msg, g_new0(pbx_tx, 1));
  return;

done:
  msg_destroy(msg);
}

/* ---- PBX -> browser ---- */

static void browser_tx_free(browser_tx *t)
{
  if (t->timer)
    g_source_remove(t->timer);
  g_free(t);
}

static gboolean on_browser_timeout(gpointer user)
{
  browser_tx *t = user;

  t->timer = 0;
  log_id(t->branch, LOG_NOTICE, "ws-%" G_GUINT64_FORMAT " did not answer in time", t->flow);
  pbx_server_tx_reply(t->stx, 408, "Request Timeout");
  g_hash_table_remove(t->r->to_browser, t->branch); /* frees t */
  return G_SOURCE_REMOVE;
}

static void on_pbx_request(void *user, pbx_server_tx *stx, msg_t *msg)
{
  router *r = user;
  sip_t *sip = sip_object(msg);
  const url_t *ruri = sip->sip_request->rq_url;
  binding *b;
  ws_conn *conn = NULL;
  msg_t *copy;
  browser_tx *t;
  size_t len = 0;
  char *text;

  if (!ruri->url_user) {
    if (sip->sip_request->rq_method == sip_method_options)
      pbx_server_tx_reply(stx, 200, "OK");
    else
      pbx_server_tx_reply(stx, 404, "Not Found");
    return;
  }
  b = bindings_lookup_by_token(r->bindings, ruri->url_user);
  if (b && binding_is_active(b, g_get_monotonic_time()))
    conn = ws_edge_find(r->edge, b->flow);
  if (!conn) {
    log_msg(LOG_INFO, "pbx: %s for %s: no registered browser, 480",
            sip->sip_request->rq_method_name, ruri->url_user);
    pbx_server_tx_reply(stx, 480, "Temporarily Unavailable");
    return;
  }
  if (sip->sip_request->rq_method == sip_method_invite) {
    call_env env = make_call_env(r);
    call *c = NULL;

    if (sip->sip_to->a_tag) {
      pbx_server_tx_reply(stx, 481, "Call/Transaction Does Not Exist");
      return;
    }
    if (r->pbx_calls->len + r->calls->len >= r->cfg->max_calls ||
        r->pbx_calls->len + r->calls->len >= limit_value(r->cfg, LIMIT_PORTS)) {
      note_refusal(r, r->pbx_calls->len + r->calls->len >= r->cfg->max_calls ? LIMIT_MAX_CALLS : LIMIT_PORTS,
                   "the PBX");
      pbx_server_tx_reply_retry_after(stx, 503, "Service Unavailable", LIMIT_RETRY_AFTER);
      return;
    }
    if (call_from_pbx(&env, stx, conn, b->contact_uri, &router_call_callbacks, r, &c) == 0)
      g_ptr_array_add(r->pbx_calls, c);
    return;
  }

  t = g_new0(browser_tx, 1);
  t->r = r;
  t->flow = b->flow;
  t->stx = stx;
  sipmsg_new_branch(t->branch);

  copy = msg_dup(msg);
  if (!copy || rewrite_request_uri(copy, b->contact_uri) < 0 ||
      rewrite_push_via(copy, ws_conn_is_secure(conn) ? "WSS" : "WS",
                       r->cfg->advertised_address, t->branch) < 0) {
    if (copy)
      msg_destroy(copy);
    pbx_server_tx_reply(stx, 500, "Internal Server Error");
    g_free(t);
    return;
  }
  if (rewrite_max_forwards(copy) == -ELOOP) {
    msg_destroy(copy);
    pbx_server_tx_reply(stx, 483, "Too Many Hops");
    g_free(t);
    return;
  }
  text = sipmsg_print(copy, &len);
  msg_destroy(copy);
  if (!text || ws_conn_send(conn, text, len) < 0) {
    g_free(text);
    pbx_server_tx_reply(stx, 480, "Temporarily Unavailable");
    g_free(t);
    return;
  }
  g_free(text);
  log_id(ws_conn_name(conn), LOG_DEBUG, "%s from the PBX delivered",
         sip->sip_request->rq_method_name);
  t->timer = g_timeout_add_seconds(r->cfg->transaction_timeout, on_browser_timeout, t);
  g_hash_table_insert(r->to_browser, t->branch, t);
}

static void handle_browser_response(router *r, ws_conn *conn, msg_t *msg)
{
  sip_t *sip = sip_object(msg);
  const char *branch = sip->sip_via->v_branch;
  browser_tx *t = branch ? g_hash_table_lookup(r->to_browser, branch) : NULL;
  int status = sip->sip_status->st_status;

  for (guint i = 0; i < r->pbx_calls->len; i++)
    if (call_take_browser_response(r->pbx_calls->pdata[i], ws_conn_id(conn), msg))
      return;

  if (!t || t->flow != ws_conn_id(conn) || rewrite_pop_via(msg, branch) < 0) {
    log_id(ws_conn_name(conn), LOG_DEBUG, "response %d matches no request, dropped", status);
    msg_destroy(msg);
    return;
  }
  pbx_server_tx_relay(t->stx, msg);
  if (status >= 200)
    g_hash_table_remove(r->to_browser, t->branch);
}

/* ---- the flows ---- */

static void on_ws_open(void *user, ws_conn *conn)
{
  log_id(ws_conn_name(conn), LOG_INFO, "open from %s%s", ws_conn_peer(conn),
         ws_conn_is_secure(conn) ? " (wss)" : "");
}

static void on_ws_message(void *user, ws_conn *conn, const char *data, size_t len)
{
  router *r = user;
  msg_t *msg = NULL;
  const char *why = NULL;

  switch (sipmsg_parse(data, len, &msg, &why)) {
  case SIPMSG_BAD_MESSAGE:
    log_id(ws_conn_name(conn), LOG_NOTICE, "closing: message with %s", why);
    ws_conn_close(conn, 1002, why);
    return;
  case SIPMSG_BAD_VERSION:
    log_id(ws_conn_name(conn), LOG_NOTICE, "505 to a request of %s",
           sip_object(msg)->sip_request->rq_version);
    if (reply_to_browser(r, conn, msg, 505, "Version Not Supported", why) < 0)
      ws_conn_close(conn, 1002, why);
    msg_destroy(msg);
    return;
  case SIPMSG_BAD_REQUEST:
    log_id(ws_conn_name(conn), LOG_NOTICE, "400 to a request with %s", why);
    if (reply_to_browser(r, conn, msg, 400, "Bad Request", why) < 0)
      ws_conn_close(conn, 1002, why); /* not even a 400 could be made of it */
    msg_destroy(msg);
    return;
  case SIPMSG_OK:
    break;
  }
  if (sip_object(msg)->sip_status)
    handle_browser_response(r, conn, msg);
  else
    handle_browser_request(r, conn, msg);
}

static void on_ws_close(void *user, ws_conn *conn)
{
  router *r = user;
  uint64_t flow = ws_conn_id(conn);
  unsigned n = bindings_remove_flow(r->bindings, flow);
  GHashTableIter it;
  gpointer value;
  GPtrArray *gone = g_ptr_array_new();

  for (guint i = 0; i < r->calls->len; i++)
    if (echo_call_flow(r->calls->pdata[i]) == flow)
      echo_call_on_ws_closed(r->calls->pdata[i]);
  for (guint i = 0; i < r->pbx_calls->len; i++)
    if (call_flow(r->pbx_calls->pdata[i]) == flow)
      call_on_ws_closed(r->pbx_calls->pdata[i]);
  g_hash_table_iter_init(&it, r->to_browser);
  while (g_hash_table_iter_next(&it, NULL, &value))
    if (((browser_tx *)value)->flow == flow)
      g_ptr_array_add(gone, value);
  for (guint i = 0; i < gone->len; i++) {
    browser_tx *t = gone->pdata[i];
    pbx_server_tx_reply(t->stx, 480, "Temporarily Unavailable");
    g_hash_table_remove(r->to_browser, t->branch);
  }
  log_id(ws_conn_name(conn), LOG_INFO, "closed; %u bindings removed, %u pending requests answered 480",
         n, gone->len);
  g_ptr_array_free(gone, TRUE);
}

static void on_health(void *user, GString *out)
{
  g_autofree char *s = router_status(user);
  g_string_append_printf(out, "%s\n", s);
}

const ws_edge_callbacks router_ws_callbacks = {
  .on_open = on_ws_open,
  .on_message = on_ws_message,
  .on_close = on_ws_close,
  .on_health = on_health,
};

const pbx_callbacks router_pbx_callbacks = {
  .on_request = on_pbx_request,
};

/* ---- the router ---- */

static gboolean on_expire_tick(gpointer user)
{
  router *r = user;
  gint64 now = g_get_monotonic_time();
  unsigned n = bindings_expire(r->bindings, now);

  if (n)
    log_msg(LOG_INFO, "%u bindings expired", n);
  limits_tick(r, now);
  if (r->pbx && ++r->ticks % LIMIT_LOG_PERIOD == 0) {
    /* what the SIP port's filter dropped: strangers and STUN, summed up */
    uint64_t d = pbx_link_dropped(r->pbx);
    if (d > r->sip_dropped)
      log_msg(LOG_NOTICE, "sip: %" G_GUINT64_FORMAT " packets from untrusted senders (or STUN) "
              "dropped on the SIP port since the last report, %" G_GUINT64_FORMAT " in all",
              d - r->sip_dropped, d);
    r->sip_dropped = d;
  }
  return G_SOURCE_CONTINUE;
}

/* The process's resident memory (KiB), 0 when unknown. */
static unsigned long rss_kib(void)
{
  g_autofree char *text = NULL;
  unsigned long size, resident;

  if (!g_file_get_contents("/proc/self/statm", &text, NULL, NULL) ||
      sscanf(text, "%lu %lu", &size, &resident) != 2)
    return 0;
  return resident * (unsigned long)(sysconf(_SC_PAGESIZE) / 1024);
}

router *router_new(const config *cfg, const dtls_identity *dtls_id, struct media_engine *engine)
{
  router *r = g_new0(router, 1);

  r->cfg = cfg;
  r->dtls_id = dtls_id;
  r->engine = engine;
  r->rss_idle_kib = rss_kib();
  r->calls = g_ptr_array_new();
  r->pbx_calls = g_ptr_array_new();
  r->bindings = bindings_new();
  r->to_browser = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify)browser_tx_free);
  r->to_pbx = g_hash_table_new(g_direct_hash, g_direct_equal);
  r->expire_timer = g_timeout_add_seconds(1, on_expire_tick, r);
  return r;
}

void router_attach(router *r, ws_edge *edge, pbx_link *pbx)
{
  r->edge = edge;
  r->pbx = pbx;
}

void router_set_config(router *r, const config *cfg)
{
  r->cfg = cfg;
}

char *router_status(router *r)
{
  unsigned calls = r->pbx_calls->len + r->calls->len;
  unsigned long rss = rss_kib();
  GString *s = g_string_new(NULL);

  g_string_printf(s, "%u connections, %u registered, %u pending, %u calls, RSS %lu KiB",
                  r->edge ? ws_edge_connection_count(r->edge) : 0,
                  bindings_active_count(r->bindings, g_get_monotonic_time()),
                  g_hash_table_size(r->to_pbx) + g_hash_table_size(r->to_browser), calls, rss);
  /* the memory calls (and their connections) take: what the process has
   * grown by since it started, per call */
  if (calls && rss > r->rss_idle_kib)
    g_string_append_printf(s, " (%lu KiB per call)", (rss - r->rss_idle_kib) / calls);
  return g_string_free(s, FALSE);
}

void router_free(router *r)
{
  GHashTableIter it;
  gpointer value;

  if (!r)
    return;
  /* requests still waiting on a browser get a final answer */
  g_hash_table_iter_init(&it, r->to_browser);
  while (g_hash_table_iter_next(&it, NULL, &value)) {
    pbx_server_tx_reply(((browser_tx *)value)->stx, 503, "Service Unavailable");
    g_hash_table_iter_remove(&it);
  }
  g_hash_table_destroy(r->to_browser);
  g_hash_table_iter_init(&it, r->to_pbx);
  while (g_hash_table_iter_next(&it, &value, NULL)) {
    pbx_tx *t = value;
    pbx_client_tx_free(t->ctx);
    pbx_tx_free(t);
  }
  g_hash_table_destroy(r->to_pbx);
  for (guint i = 0; i < r->calls->len; i++) {
    echo_call_shutdown(r->calls->pdata[i]); /* BYE or 503 to the browser */
    echo_call_free(r->calls->pdata[i]);
  }
  g_ptr_array_free(r->calls, TRUE);
  /* calls through the PBX: BYE, CANCEL or 503 to both sides now */
  for (guint i = 0; i < r->pbx_calls->len; i++)
    call_shutdown(r->pbx_calls->pdata[i]);
  for (guint i = 0; i < r->pbx_calls->len; i++)
    call_free(r->pbx_calls->pdata[i]);
  g_ptr_array_free(r->pbx_calls, TRUE);
  bindings_free(r->bindings);
  g_source_remove(r->expire_timer);
  g_free(r);
}
