/* One browser-like client of the load generator (lg_client.h). */
#include "lg_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sofia-sip/auth_client.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/su_tagarg.h>
#include <sofia-sip/url.h>

#include "sip/sipmsg.h"
#include "webrtc/demux.h"
#include "webrtc/ice.h"
#include "webrtc/srtp.h"

#define MAX_AUTH_TRIES 2

struct lg_client {
  const lg_env *env;
  const lg_client_config *cfg;
  unsigned index;
  char id[24];
  struct lws *wsi;
  GQueue out;      /* GBytes with LWS_PRE bytes of room in front */
  GString *rx;     /* a fragmented WebSocket message */
  lg_client_result r;

  su_home_t home[1];
  char *user, *aor, *contact, *via_host;
  /* the dialog */
  char *call_id, *local_tag;
  char *remote;            /* the peer's name-addr with its tag (our To, or From) */
  url_t *remote_target;    /* its Contact */
  sip_route_t *route;
  uint32_t cseq;
  bool incoming;
  msg_t *invite_in;        /* an incoming INVITE, until answered */
  char *branch;            /* our INVITE's (for the ACK of a non-2xx) */
  auth_client_t *auc;
  unsigned auth_tries;

  ice_agent *ice;
  dtls_session *dtls;
  lg_sdp_remote peer;
  bool peer_set, closing;
  lg_call_media *cm;
  int64_t t_request, t_answer;
  guint timer;             /* setup timeout, hold, drain */
};

static void fail(lg_client *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void hang_up(lg_client *c);
static void send_invite(lg_client *c, bool with_auth_of, const sip_t *challenge);

const char *lg_client_state_name(lg_client_state s)
{
  static const char *const names[] = {
    "connecting", "registering", "waiting", "inviting", "connecting media", "up", "draining",
    "hanging up", "done", "failed",
  };
  return s < G_N_ELEMENTS(names) ? names[s] : "?";
}

static void set_state(lg_client *c, lg_client_state s)
{
  c->r.state = s;
  if ((s == LG_CLIENT_DONE || s == LG_CLIENT_FAILED || s == LG_CLIENT_WAITING) && c->env->on_state)
    c->env->on_state(c->env->user, c->index, s);
}

static void clear_timer(lg_client *c)
{
  if (c->timer)
    g_source_remove(c->timer);
  c->timer = 0;
}

/* ---- media ---- */

/* Takes the call's media off its worker and keeps what it counted. */
static void media_end(lg_client *c)
{
  if (c->cm) {
    lg_media_remove(c->env->media, c->cm);
    c->r.sent = lg_call_media_sent(c->cm);
    c->r.send_failed = lg_call_media_send_failed(c->cm);
    c->r.stream = *lg_call_media_stream(c->cm);
    lg_call_media_bm_stats(c->cm, &c->r.bm);
    lg_call_media_free(c->cm);
    c->cm = NULL;
  }
  if (c->dtls)
    dtls_session_free(c->dtls);
  c->dtls = NULL;
  if (c->ice)
    ice_agent_free(c->ice);
  c->ice = NULL;
}

/* Closes the WebSocket once what is queued has been written. */
static void close_ws(lg_client *c)
{
  c->closing = true;
  if (c->wsi)
    lws_callback_on_writable(c->wsi);
}

static void fail(lg_client *c, const char *fmt, ...)
{
  va_list ap;

  if (c->r.state == LG_CLIENT_DONE || c->r.state == LG_CLIENT_FAILED)
    return;
  va_start(ap, fmt);
  g_free(c->r.failure);
  c->r.failure = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  clear_timer(c);
  bool dialog = c->r.established && c->r.state < LG_CLIENT_HANGING_UP;
  media_end(c);
  if (dialog && c->wsi) {
    /* a BYE all the same, so that nothing stays up on the far side */
    hang_up(c);
    c->r.state = LG_CLIENT_FAILED;
  }
  close_ws(c);
  set_state(c, LG_CLIENT_FAILED);
}

/* ---- WebSocket ---- */

static void ws_send_text(lg_client *c, const char *text, size_t len)
{
  uint8_t *buf = g_malloc(LWS_PRE + len);

  memcpy(buf + LWS_PRE, text, len);
  g_queue_push_tail(&c->out, g_bytes_new_take(buf, LWS_PRE + len));
  if (c->wsi)
    lws_callback_on_writable(c->wsi);
}

static void send_msg(lg_client *c, msg_t *m)
{
  size_t len = 0;
  g_autofree char *text = sipmsg_print(m, &len);

  if (text)
    ws_send_text(c, text, len);
  else
    fail(c, "could not print a SIP message");
}

/* -1: close the connection now */
static int ws_write_one(lg_client *c)
{
  GBytes *b = g_queue_pop_head(&c->out);
  gsize size;
  uint8_t *data;

  if (!b)
    return c->closing ? -1 : 0;
  data = (uint8_t *)g_bytes_get_data(b, &size);
  if (lws_write(c->wsi, data + LWS_PRE, size - LWS_PRE, LWS_WRITE_TEXT) < (int)(size - LWS_PRE)) {
    g_bytes_unref(b);
    fail(c, "WebSocket write failed");
    return -1;
  }
  g_bytes_unref(b);
  if (c->wsi && (!g_queue_is_empty(&c->out) || c->closing))
    lws_callback_on_writable(c->wsi);
  return 0;
}

/* ---- SIP: requests we send ---- */

static msg_t *new_request(lg_client *c, sip_method_t method, const char *name, const url_t *ruri,
                          uint32_t cseq, char branch_out[32], tag_type_t tag, tag_value_t value, ...)
{
  msg_t *m = msg_create(sip_default_mclass(), 0);
  sip_t *sip = sip_object(m);
  su_home_t *h = msg_home(m);
  char branch[32];
  ta_list ta;

  sipmsg_new_branch(branch);
  if (branch_out)
    memcpy(branch_out, branch, sizeof(branch));
  ta_start(ta, tag, value);
  if (sip_add_tl(m, sip,
                 SIPTAG_REQUEST(sip_request_create(h, method, name, (url_string_t const *)ruri, NULL)),
                 SIPTAG_VIA_STR(su_sprintf(h, "SIP/2.0/WS %s;branch=%s", c->via_host, branch)),
                 SIPTAG_MAX_FORWARDS_STR("69"),
                 SIPTAG_CALL_ID_STR(c->call_id),
                 SIPTAG_CSEQ(sip_cseq_create(h, cseq, method, name)),
                 SIPTAG_USER_AGENT_STR("rtcsipd-loadgen"),
                 ta_tags(ta)) < 0) {
    msg_destroy(m);
    m = NULL;
  }
  (void)ta_end(ta);
  return m;
}

static void send_register(lg_client *c, const sip_t *challenge)
{
  su_home_t *h = c->home;
  url_t *ruri = url_hdup(h, (url_t *)url_make(h, su_sprintf(h, "sip:%s", c->cfg->domain)));
  msg_t *m = new_request(c, sip_method_register, "REGISTER", ruri, ++c->cseq, NULL,
                         SIPTAG_FROM_STR(su_sprintf(h, "<%s>;tag=%s", c->aor, c->local_tag)),
                         SIPTAG_TO_STR(su_sprintf(h, "<%s>", c->aor)),
                         SIPTAG_CONTACT_STR(su_sprintf(h, "<%s>;+sip.ice;reg-id=1;+sip.instance=\"<urn:uuid:%s>\";expires=600",
                                                       c->contact, c->id)),
                         SIPTAG_EXPIRES_STR("600"),
                         SIPTAG_ALLOW_STR("INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY"),
                         SIPTAG_SUPPORTED_STR("path,gruu,outbound"),
                         TAG_END());
  if (!m) {
    fail(c, "could not make the REGISTER");
    return;
  }
  if (challenge && auc_authorization(&c->auc, m, (msg_pub_t *)sip_object(m), "REGISTER", ruri, NULL) < 0) {
    msg_destroy(m);
    fail(c, "no credentials for the REGISTER's challenge");
    return;
  }
  set_state(c, LG_CLIENT_REGISTERING);
  c->t_request = g_get_monotonic_time();
  send_msg(c, m);
  msg_destroy(m);
}

static char *local_sdp(lg_client *c)
{
  const char *ufrag, *pwd;
  g_auto(GStrv) cands = ice_agent_local_candidates(c->ice);
  lg_sdp_local l = {
    .fingerprint = dtls_identity_fingerprint(c->env->dtls_id),
    .candidates = cands,
    .codec = c->cfg->codec,
    .setup = c->incoming ? "active" : "actpass",
    .session_id = g_random_int() | (uint64_t)g_random_int() << 31,
  };

  ice_agent_local_credentials(c->ice, &ufrag, &pwd);
  l.ufrag = ufrag, l.pwd = pwd;
  return lg_sdp_build(&l);
}

static void send_invite(lg_client *c, bool with_auth, const sip_t *challenge)
{
  su_home_t *h = c->home;
  g_autofree char *sdp = local_sdp(c);
  url_t *ruri = url_hdup(h, (url_t *)url_make(h, c->cfg->target));
  char branch[32];
  msg_t *m = new_request(c, sip_method_invite, "INVITE", ruri, ++c->cseq, branch,
                         SIPTAG_FROM_STR(su_sprintf(h, "<%s>;tag=%s", c->aor, c->local_tag)),
                         SIPTAG_TO_STR(su_sprintf(h, "<%s>", c->cfg->target)),
                         SIPTAG_CONTACT_STR(su_sprintf(h, "<%s>", c->contact)),
                         SIPTAG_ALLOW_STR("INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY"),
                         SIPTAG_SUPPORTED_STR("ice,replaces,outbound"),
                         SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                         SIPTAG_PAYLOAD_STR(sdp),
                         TAG_END());
  if (!m) {
    fail(c, "could not make the INVITE");
    return;
  }
  g_free(c->branch);
  c->branch = g_strdup(branch);
  if (with_auth) {
    sip_t *sip = sip_object(m);
    if (auc_authorization(&c->auc, m, (msg_pub_t *)sip, "INVITE", ruri, sip->sip_payload) < 0) {
      msg_destroy(m);
      fail(c, "no credentials for the INVITE's challenge");
      return;
    }
  }
  set_state(c, LG_CLIENT_INVITING);
  if (!challenge)
    c->t_request = g_get_monotonic_time();
  send_msg(c, m);
  msg_destroy(m);
}

/* ACK for a non-2xx final response: the INVITE's branch and the response's To. */
static void send_error_ack(lg_client *c, const sip_t *resp)
{
  su_home_t *h = c->home;
  url_t *ruri = url_hdup(h, (url_t *)url_make(h, c->cfg->target));
  msg_t *m = msg_create(sip_default_mclass(), 0);
  sip_t *sip = sip_object(m);

  sip_add_tl(m, sip,
             SIPTAG_REQUEST(sip_request_create(msg_home(m), sip_method_ack, "ACK", (url_string_t *)ruri, NULL)),
             SIPTAG_VIA_STR(su_sprintf(msg_home(m), "SIP/2.0/WS %s;branch=%s", c->via_host, c->branch)),
             SIPTAG_MAX_FORWARDS_STR("69"),
             SIPTAG_FROM(resp->sip_from), SIPTAG_TO(resp->sip_to),
             SIPTAG_CALL_ID(resp->sip_call_id),
             SIPTAG_CSEQ(sip_cseq_create(msg_home(m), resp->sip_cseq->cs_seq, sip_method_ack, "ACK")),
             TAG_END());
  send_msg(c, m);
  msg_destroy(m);
}

/* A request inside the dialog (ACK, BYE): Request-URI the peer's Contact,
 * our route set. */
static void send_in_dialog(lg_client *c, sip_method_t method, const char *name, uint32_t cseq)
{
  su_home_t *h = c->home;
  const char *from = su_sprintf(h, "<%s>;tag=%s", c->aor, c->local_tag);
  msg_t *m = new_request(c, method, name, c->remote_target, cseq, NULL,
                         SIPTAG_FROM_STR(from), SIPTAG_TO_STR(c->remote),
                         SIPTAG_ROUTE(c->route),
                         TAG_END());
  if (m) {
    send_msg(c, m);
    msg_destroy(m);
  }
}

static void hang_up(lg_client *c)
{
  clear_timer(c);
  set_state(c, LG_CLIENT_HANGING_UP);
  c->t_request = g_get_monotonic_time();
  send_in_dialog(c, sip_method_bye, "BYE", ++c->cseq);
}

/* ---- SIP: the call's timers ---- */

static gboolean on_setup_timeout(gpointer data)
{
  lg_client *c = data;
  c->timer = 0;
  fail(c, "setup timed out in state %s", lg_client_state_name(c->r.state));
  return G_SOURCE_REMOVE;
}

static gboolean on_drained(gpointer data)
{
  lg_client *c = data;
  c->timer = 0;
  media_end(c);
  hang_up(c);
  return G_SOURCE_REMOVE;
}

static void start_draining(lg_client *c)
{
  clear_timer(c);
  if (c->cm)
    lg_media_stop_sending(c->cm);
  set_state(c, LG_CLIENT_DRAINING);
  c->timer = g_timeout_add(c->cfg->drain_ms, on_drained, c);
}

static gboolean on_hold_over(gpointer data)
{
  lg_client *c = data;
  c->timer = 0;
  start_draining(c);
  return G_SOURCE_REMOVE;
}

void lg_client_abort(lg_client *c, const char *reason)
{
  switch (c->r.state) {
  case LG_CLIENT_UP:
    start_draining(c);
    break;
  case LG_CLIENT_DRAINING:
  case LG_CLIENT_HANGING_UP:
  case LG_CLIENT_DONE:
  case LG_CLIENT_FAILED:
    break;
  case LG_CLIENT_WAITING:
    clear_timer(c);
    close_ws(c);
    set_state(c, LG_CLIENT_DONE);
    break;
  default:
    fail(c, "%s", reason);
  }
}

/* ---- ICE and DTLS ---- */

static void dtls_send(void *user, const uint8_t *data, size_t len)
{
  lg_client *c = user;
  if (c->ice)
    (void)ice_agent_send(c->ice, data, len);
}

static void dtls_connected(void *user, const dtls_srtp_keys *keys)
{
  lg_client *c = user;
  srtp_leg *srtp = NULL;
  browser_media *bm = NULL;
  g_autofree char *ufrag = NULL, *pwd = NULL;
  int fd;

  if (srtp_leg_new(keys, &srtp) < 0) {
    fail(c, "SRTP keys refused");
    return;
  }
  fd = ice_agent_fastpath_open(c->ice, &ufrag, &pwd);
  if (fd < 0 || browser_media_new(c->ice, &bm) < 0) {
    srtp_leg_free(srtp);
    if (fd >= 0)
      close(fd);
    fail(c, "no socket of its own for the ICE pair (%s)", g_strerror(-fd));
    return;
  }
  browser_media_set_socket(bm, fd, ufrag, pwd);
  browser_media_set_srtp(bm, srtp);
  c->cm = lg_call_media_new(bm, c->peer.codec, c->peer.pt, g_random_int());
  c->r.codec = c->peer.codec;
  c->r.media_ready = true;
  c->r.media_us = g_get_monotonic_time() - c->t_answer;
  clear_timer(c);
  set_state(c, LG_CLIENT_UP);
  lg_media_add(c->env->media, c->cm);
  c->timer = g_timeout_add(c->cfg->hold_ms, on_hold_over, c);
}

static void dtls_failed(void *user, const char *why)
{
  lg_client *c = user;
  if (c->r.state == LG_CLIENT_CONNECTING_MEDIA || c->r.state == LG_CLIENT_INVITING)
    fail(c, "DTLS: %s", why);
  /* later (a close_notify next to the far end's BYE): the BYE decides */
}

static const dtls_callbacks dtls_cb = { dtls_send, dtls_connected, dtls_failed };

static void on_gathered(void *user)
{
  lg_client *c = user;

  if (!c->incoming) {
    send_invite(c, false, NULL);
    return;
  }
  if (!c->invite_in)
    return;
  /* the answer to the PBX's INVITE */
  g_autofree char *sdp = local_sdp(c);
  sip_t *req = sip_object(c->invite_in);
  msg_t *resp = sipmsg_response(c->invite_in, 200, "OK",
                                SIPTAG_CONTACT_STR(su_sprintf(c->home, "<%s>", c->contact)),
                                SIPTAG_RECORD_ROUTE(req->sip_record_route),
                                SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                                SIPTAG_PAYLOAD_STR(sdp), TAG_END());
  sip_t *rs = resp ? sip_object(resp) : NULL;
  if (!rs || !rs->sip_to || !rs->sip_to->a_tag) {
    if (resp)
      msg_destroy(resp);
    fail(c, "could not answer the INVITE");
    return;
  }
  g_free(c->local_tag);
  c->local_tag = g_strdup(rs->sip_to->a_tag);
  send_msg(c, resp);
  msg_destroy(resp);
  msg_destroy(c->invite_in);
  c->invite_in = NULL;
  c->r.established = true;
  c->t_answer = g_get_monotonic_time();
  c->r.setup_us = c->t_answer - c->t_request;
  set_state(c, LG_CLIENT_CONNECTING_MEDIA);
  if (ice_agent_set_remote(c->ice, c->peer.ufrag, c->peer.pwd,
                           (const char *const *)c->peer.candidates->pdata) < 0)
    fail(c, "ICE refused the offer's candidates");
}

static void on_ice_state(void *user, ice_state state)
{
  lg_client *c = user;

  if (state == ICE_CONNECTED && c->dtls)
    dtls_session_start(c->dtls);
  else if (state == ICE_FAILED && c->r.state < LG_CLIENT_UP)
    fail(c, "ICE failed");
}

static void on_ice_receive(void *user, uint8_t *data, size_t len)
{
  lg_client *c = user;
  /* before the hand-off only DTLS matters; later everything reaches the
   * call's own socket */
  if (demux_classify(data, len) == DEMUX_DTLS && c->dtls)
    dtls_session_feed(c->dtls, data, len);
}

static const ice_callbacks ice_cb = { on_gathered, on_ice_state, on_ice_receive, NULL };

static int start_ice(lg_client *c, bool controlling)
{
  const char *addrs[] = { c->cfg->ice_address, NULL };
  ice_settings s = {
    .controlling = controlling,
    .local_addresses = addrs,
    .port_min = c->cfg->ice_port_min,
    .port_max = c->cfg->ice_port_max,
    .connect_timeout_ms = c->cfg->setup_timeout_ms,
    .log_id = c->id,
  };
  int rc = ice_agent_new(&s, &ice_cb, c, &c->ice);
  if (rc == 0)
    rc = ice_agent_gather(c->ice);
  return rc;
}

/* ---- SIP: what arrives ---- */

static bool take_answer(lg_client *c, const sip_t *sip)
{
  const char *why = NULL;

  if (!sip->sip_payload || lg_sdp_parse(sip->sip_payload->pl_data, sip->sip_payload->pl_len,
                                        c->cfg->codec, &c->peer, &why) < 0) {
    if (g_getenv("LOADGEN_DEBUG") && sip->sip_payload)
      fprintf(stderr, "%s: unusable answer:\n%.*s\n", c->id, (int)sip->sip_payload->pl_len,
              sip->sip_payload->pl_data);
    fail(c, "the answer cannot be used: %s", why ? why : "no SDP");
    return false;
  }
  c->peer_set = true;
  return true;
}

static int make_dtls(lg_client *c, dtls_role role)
{
  return dtls_session_new(c->env->dtls_id, role, c->peer.fingerprint, &dtls_cb, c, &c->dtls);
}

/* A 401/407 we answer (a password, and not answered too often already). */
static bool is_challenge(const lg_client *c, int status)
{
  return (status == 401 || status == 407) && c->cfg->password && c->auth_tries < MAX_AUTH_TRIES;
}

/* The challenge of response SIP to METHOD into our credentials (Sofia-SIP's
 * auth_client); false (and the client failed) when it cannot be answered. */
static bool take_challenge(lg_client *c, const sip_t *sip, const char *method)
{
  int status = sip->sip_status->st_status;

  c->auth_tries++;
  if (auc_challenge(&c->auc, c->home,
                    status == 401 ? (msg_auth_t *)sip->sip_www_authenticate : (msg_auth_t *)sip->sip_proxy_authenticate,
                    status == 401 ? sip_authorization_class : sip_proxy_authorization_class) < 0 ||
      auc_all_credentials(&c->auc, "Digest", NULL, c->user, c->cfg->password) <= 0) {
    fail(c, "%s: %d, and no usable challenge", method, status);
    return false;
  }
  return true;
}

static void on_invite_response(lg_client *c, const sip_t *sip)
{
  int status = sip->sip_status->st_status;

  if (status < 200)
    return;
  if (is_challenge(c, status)) {
    send_error_ack(c, sip);
    if (take_challenge(c, sip, "INVITE"))
      send_invite(c, true, sip);
    return;
  }
  if (status >= 300) {
    send_error_ack(c, sip);
    fail(c, "INVITE: %d %s", status, sip->sip_status->st_phrase);
    return;
  }
  if (c->r.established) { /* a retransmitted 200: ACK it again */
    send_in_dialog(c, sip_method_ack, "ACK", sip->sip_cseq->cs_seq);
    return;
  }
  c->r.established = true;
  c->t_answer = g_get_monotonic_time();
  c->r.setup_us = c->t_answer - c->t_request;
  c->remote = sip_header_as_string(c->home, (sip_header_t const *)sip->sip_to);
  if (sip->sip_contact)
    c->remote_target = url_hdup(c->home, sip->sip_contact->m_url);
  else
    c->remote_target = url_hdup(c->home, (url_t *)url_make(c->home, c->cfg->target));
  c->route = sip->sip_record_route ? sip_route_reverse(c->home, sip->sip_record_route) : NULL;
  send_in_dialog(c, sip_method_ack, "ACK", sip->sip_cseq->cs_seq);
  if (!take_answer(c, sip))
    return;
  /* our offer said actpass: the answer's setup decides */
  dtls_role role = c->peer.setup && !strcmp(c->peer.setup, "active") ? DTLS_ROLE_SERVER : DTLS_ROLE_CLIENT;
  if (make_dtls(c, role) < 0) {
    fail(c, "the answer's fingerprint cannot be used");
    return;
  }
  set_state(c, LG_CLIENT_CONNECTING_MEDIA);
  if (role == DTLS_ROLE_SERVER)
    dtls_session_start(c->dtls);
  if (ice_agent_set_remote(c->ice, c->peer.ufrag, c->peer.pwd,
                           (const char *const *)c->peer.candidates->pdata) < 0)
    fail(c, "ICE refused the answer's candidates");
  else if (ice_agent_state(c->ice) == ICE_CONNECTED && role == DTLS_ROLE_CLIENT)
    dtls_session_start(c->dtls);
}

static void on_register_response(lg_client *c, const sip_t *sip)
{
  int status = sip->sip_status->st_status;

  if (status < 200)
    return;
  if (is_challenge(c, status)) {
    if (take_challenge(c, sip, "REGISTER"))
      send_register(c, sip);
    return;
  }
  if (status >= 300) {
    fail(c, "REGISTER: %d %s", status, sip->sip_status->st_phrase);
    return;
  }
  c->auth_tries = 0;
  clear_timer(c);
  if (c->cfg->target) {
    /* a new Call-ID for the call */
    g_free(c->call_id);
    char tok[17];
    sipmsg_random_token(tok);
    c->call_id = g_strdup(tok);
    c->cseq = 0;
    if (start_ice(c, true) < 0)
      fail(c, "ICE could not start");
    else
      c->timer = g_timeout_add(c->cfg->setup_timeout_ms, on_setup_timeout, c);
  } else {
    set_state(c, LG_CLIENT_WAITING);
  }
}

static void respond(lg_client *c, msg_t *req, int status, const char *phrase)
{
  msg_t *resp = sipmsg_response(req, status, phrase, TAG_END());
  if (resp) {
    send_msg(c, resp);
    msg_destroy(resp);
  }
}

static void on_incoming_invite(lg_client *c, msg_t *m, const sip_t *sip)
{
  const char *why = NULL;

  if (c->r.state != LG_CLIENT_WAITING) {
    /* a re-INVITE (or a second call): not something the generator does */
    respond(c, m, 488, "Not Acceptable Here");
    return;
  }
  if (!sip->sip_payload || lg_sdp_parse(sip->sip_payload->pl_data, sip->sip_payload->pl_len,
                                        c->cfg->codec, &c->peer, &why) < 0) {
    respond(c, m, 488, "Not Acceptable Here");
    fail(c, "the offer cannot be used: %s", why ? why : "no SDP");
    return;
  }
  c->peer_set = true;
  c->incoming = true;
  c->t_request = g_get_monotonic_time();
  g_free(c->call_id);
  c->call_id = g_strdup(sip->sip_call_id->i_id);
  c->remote = sip_header_as_string(c->home, (sip_header_t const *)sip->sip_from);
  c->remote_target = sip->sip_contact ? url_hdup(c->home, sip->sip_contact->m_url) : NULL;
  c->route = sip->sip_record_route ? sip_route_fixdup(c->home, sip->sip_record_route) : NULL;
  c->cseq = 0;
  c->invite_in = msg_ref_create(m);
  set_state(c, LG_CLIENT_INVITING);
  /* we answer a=setup:active: the DTLS client once ICE is up */
  if (make_dtls(c, DTLS_ROLE_CLIENT) < 0 || start_ice(c, false) < 0) {
    respond(c, m, 500, "Server Internal Error");
    msg_destroy(c->invite_in);
    c->invite_in = NULL;
    fail(c, "could not answer (DTLS, ICE)");
    return;
  }
  c->timer = g_timeout_add(c->cfg->setup_timeout_ms, on_setup_timeout, c);
}

static void on_request(lg_client *c, msg_t *m, const sip_t *sip)
{
  switch (sip->sip_request->rq_method) {
  case sip_method_invite:
    on_incoming_invite(c, m, sip);
    break;
  case sip_method_ack:
    break;
  case sip_method_bye:
    respond(c, m, 200, "OK");
    if (c->r.state == LG_CLIENT_UP || c->r.state == LG_CLIENT_DRAINING) {
      clear_timer(c);
      media_end(c);
      close_ws(c);
      set_state(c, LG_CLIENT_DONE);
    } else if (c->r.state < LG_CLIENT_UP) {
      fail(c, "BYE from the far end before media was up");
    }
    break;
  case sip_method_options:
    respond(c, m, 200, "OK");
    break;
  case sip_method_cancel:
    respond(c, m, 200, "OK");
    if (c->invite_in)
      respond(c, c->invite_in, 487, "Request Terminated");
    fail(c, "CANCEL from the far end");
    break;
  default:
    respond(c, m, 405, "Method Not Allowed");
  }
}

static void on_message(lg_client *c, const char *text, size_t len)
{
  msg_t *m = NULL;
  const char *why = NULL;

  if (sipmsg_parse(text, len, &m, &why) != SIPMSG_OK) {
    if (m)
      msg_destroy(m);
    fail(c, "unreadable SIP from the gateway: %s", why ? why : "?");
    return;
  }
  sip_t *sip = sip_object(m);
  if (sip->sip_request) {
    on_request(c, m, sip);
  } else if (sip->sip_cseq) {
    switch (sip->sip_cseq->cs_method) {
    case sip_method_register:
      if (c->r.state == LG_CLIENT_REGISTERING)
        on_register_response(c, sip);
      break;
    case sip_method_invite:
      if (!c->incoming && sip->sip_call_id && !strcmp(sip->sip_call_id->i_id, c->call_id))
        on_invite_response(c, sip);
      break;
    case sip_method_bye:
      if (c->r.state == LG_CLIENT_HANGING_UP && sip->sip_status->st_status >= 200) {
        close_ws(c);
        if (sip->sip_status->st_status >= 300)
          fail(c, "BYE: %d", sip->sip_status->st_status);
        else
          set_state(c, LG_CLIENT_DONE);
      }
      break;
    default:
      break;
    }
  }
  msg_destroy(m);
}

static void on_established(lg_client *c)
{
  clear_timer(c); /* the connect timeout */
  if (c->cfg->do_register) {
    send_register(c, NULL);
    c->timer = g_timeout_add(c->cfg->setup_timeout_ms, on_setup_timeout, c);
  } else if (c->cfg->target) {
    if (start_ice(c, true) < 0)
      fail(c, "ICE could not start");
    else
      c->timer = g_timeout_add(c->cfg->setup_timeout_ms, on_setup_timeout, c);
  } else {
    set_state(c, LG_CLIENT_WAITING);
  }
}

int lg_client_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
  lg_client *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;

  switch (reason) {
  case LWS_CALLBACK_CLIENT_ESTABLISHED:
    if (c)
      on_established(c);
    break;
  case LWS_CALLBACK_CLIENT_RECEIVE:
    if (!c)
      break;
    g_string_append_len(c->rx, in, (gssize)len);
    if (lws_is_final_fragment(wsi)) {
      g_autofree char *text = g_strndup(c->rx->str, c->rx->len);
      size_t n = c->rx->len;
      g_string_truncate(c->rx, 0);
      on_message(c, text, n);
    }
    break;
  case LWS_CALLBACK_CLIENT_WRITEABLE:
    if (!c)
      return -1; /* freed */
    return ws_write_one(c);
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    if (c) {
      c->wsi = NULL;
      fail(c, "WebSocket: %s", in ? (const char *)in : "connection failed");
    }
    break;
  case LWS_CALLBACK_CLIENT_CLOSED:
    if (c) {
      c->wsi = NULL;
      if (c->closing)
        break;
      if (c->r.state == LG_CLIENT_WAITING)
        set_state(c, LG_CLIENT_DONE);
      else
        fail(c, "WebSocket closed by the gateway in state %s", lg_client_state_name(c->r.state));
    }
    break;
  default:
    break;
  }
  return 0;
}

lg_client *lg_client_new(const lg_env *env, unsigned index)
{
  lg_client *c = g_new0(lg_client, 1);
  char tok[17];
  struct lws_client_connect_info ci = { 0 };

  su_home_init(c->home);
  c->env = env;
  c->cfg = env->cfg;
  c->index = index;
  g_snprintf(c->id, sizeof(c->id), "lg-%u", index);
  c->rx = g_string_new(NULL);
  g_queue_init(&c->out);
  c->user = g_strdup_printf("%s%u", c->cfg->user_prefix, index);
  c->aor = g_strdup_printf("sip:%s@%s", c->user, c->cfg->domain);
  sipmsg_random_token(tok);
  c->via_host = g_strdup_printf("%s.invalid", tok);
  sipmsg_random_token(tok);
  c->contact = g_strdup_printf("sip:%s@%s;transport=ws;ob", tok, c->via_host);
  sipmsg_random_token(tok);
  c->call_id = g_strdup(tok);
  sipmsg_random_token(tok);
  c->local_tag = g_strdup(tok);
  c->r.state = LG_CLIENT_CONNECTING;
  lg_stream_init(&c->r.stream);

  ci.context = env->lws;
  ci.address = c->cfg->ws_host;
  ci.port = c->cfg->ws_port;
  ci.path = c->cfg->ws_path;
  ci.host = c->cfg->ws_host;
  ci.origin = c->cfg->ws_host;
  ci.protocol = "sip";
  ci.opaque_user_data = c;
  ci.pwsi = &c->wsi;
  c->t_request = g_get_monotonic_time();
  c->timer = g_timeout_add(c->cfg->setup_timeout_ms, on_setup_timeout, c);
  if (!lws_client_connect_via_info(&ci)) {
    c->wsi = NULL;
    fail(c, "WebSocket connect failed at once");
  }
  return c;
}

void lg_client_free(lg_client *c)
{
  if (!c)
    return;
  clear_timer(c);
  media_end(c);
  if (c->wsi) {
    lws_set_opaque_user_data(c->wsi, NULL);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
  }
  g_queue_clear_full(&c->out, (GDestroyNotify)g_bytes_unref);
  g_string_free(c->rx, TRUE);
  if (c->invite_in)
    msg_destroy(c->invite_in);
  lg_sdp_remote_clear(&c->peer);
  g_free(c->r.failure);
  g_free(c->user);
  g_free(c->aor);
  g_free(c->contact);
  g_free(c->via_host);
  g_free(c->call_id);
  g_free(c->local_tag);
  g_free(c->branch);
  su_home_deinit(c->home);
  g_free(c);
}

const lg_client_result *lg_client_get_result(const lg_client *c)
{
  return &c->r;
}
