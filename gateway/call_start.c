/* Starting a call through the PBX: a browser's INVITE or the PBX's, checked
 * and made into a call (call.h) with its media: the RTP socket toward the
 * PBX at once; the browser's leg (ICE + DTLS-SRTP) at once for a call from
 * the PBX, and for a call from the browser only once the PBX has taken it
 * (call_make_browser_side_leg(), from call.c), so that an INVITE the PBX
 * challenges or refuses holds no ICE port.  What follows is call.c's. */
#include "gateway/call.h"

#include <errno.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/sip_header.h>

#include "config/log.h"
#include "gateway/call_internal.h"

static unsigned next_call_id;

static call *call_alloc(const call_env *env, const call_callbacks *cb, void *user)
{
  const config *cfg = env->cfg;
  call *c = g_new0(call, 1);

  g_snprintf(c->name, sizeof c->name, "call-%u", ++next_call_id);
  c->edge = env->edge;
  c->pbx = env->pbx;
  c->id = env->id;
  c->engine = env->engine;
  if (cb)
    c->cb = *cb;
  c->user = user;
  c->advertised = g_strdup(cfg->advertised_address);
  c->find_by_browser_dialog = env->find_by_browser_dialog;
  c->find_user = env->find_user;
  if (cfg->sip.host && g_hostname_is_ip_address(cfg->sip.host) &&
      strcmp(cfg->sip.host, "0.0.0.0") != 0 && strcmp(cfg->sip.host, "::") != 0)
    c->rtp_address = g_strdup(cfg->sip.host);
  ice_config_init(&c->ice, cfg);
  c->media_timeout_ms = cfg->media_timeout * 1000u;
  c->ring_timeout_s = cfg->ring_timeout;
  c->transaction_timeout_s = cfg->transaction_timeout;
  c->session_expires = cfg->session_expires;
  c->min_se = cfg->min_se;
  c->dtmf_to_pbx = cfg->dtmf_to_pbx;
  c->dtmf_to_browser = cfg->dtmf_to_browser;
  c->rtp_source = cfg->rtp_source;
  c->state = CALL_IDLE;
  c->started_at = g_get_monotonic_time();
  c->sdp_session_id = (uint64_t)g_get_real_time();
  c->plain_version = c->webrtc_version = 1;
  return c;
}

/* The RTP socket toward the PBX. */
static int make_rtp(call *c)
{
  rtp_socket_settings rs = {
    .local_address = c->rtp_address,
    .port_min = c->ice.port_min,
    .port_max = c->ice.port_max,
    .source = c->rtp_source,
  };
  int r;

  if (c->pbx)
    rs.trusted = pbx_link_trusted(c->pbx, &rs.n_trusted);
  r = rtp_socket_new(&rs, &c->rtp);

  if (r < 0)
    log_id(c->name, LOG_WARNING, "cannot make the call's RTP socket: %s", g_strerror(-r));
  return r;
}

/* The browser's leg (gathering started). */
static int make_leg(call *c, bool controlling, dtls_role role, const char *fingerprint)
{
  browser_leg_settings ls = {
    .role = role,
    .peer_fingerprint = fingerprint,
    .ice = { .controlling = controlling, .log_id = c->name },
  };
  int r;

  ice_config_apply(&c->ice, &ls.ice);
  r = browser_leg_new(c->id, &ls, &call_leg_callbacks, c, &c->leg);
  if (r == 0)
    r = ice_agent_gather(browser_leg_ice(c->leg));
  if (r < 0) {
    log_id(c->name, LOG_WARNING, "cannot make the call's browser leg: %s", g_strerror(-r));
    g_clear_pointer(&c->leg, browser_leg_free);
  }
  return r;
}

/* A call from the browser opens its ICE port only once the PBX has taken
 * the call (its first response beyond 100, or its answer): an INVITE that
 * the PBX challenges or refuses never holds more than its RTP port. */
int call_make_browser_side_leg(call *c)
{
  sdp_setup setup = sdp_webrtc_answer_setup(c->browser_sdp);

  return make_leg(c, false, setup == SDP_SETUP_ACTIVE ? DTLS_ROLE_CLIENT : DTLS_ROLE_SERVER,
                  c->browser_sdp->fingerprint);
}

static const sdp_codec *first_codec(const sdp_webrtc *offer)
{
  for (unsigned i = 0; i < offer->n_codecs; i++) {
    const sdp_codec *k = &offer->codecs[i];
    if (g_ascii_strcasecmp(k->name, "telephone-event") != 0 && sdp_codec_supported(k))
      return k;
  }
  return NULL;
}

int call_from_browser(const call_env *env, ws_conn *conn, msg_t *invite,
                      const call_callbacks *cb, void *user, call **ret)
{
  call *c = call_alloc(env, cb, user);
  sip_t *sip = sip_object(invite);
  sdp_plain_local local;
  const char *why = "?", *text;
  size_t len;
  sdp_setup setup;
  int status = 0, r;

  *ret = NULL;
  c->from_browser = true;
  c->flow = ws_conn_id(conn);
  c->bd = browser_dialog_new(env->edge, conn, invite, c->advertised);
  if (!c->bd) {
    log_id(c->name, LOG_NOTICE, "INVITE refused: not a new dialog (To tag, or no From tag)");
    call_free(c);
    return -EINVAL;
  }
  sip = sip_object(browser_dialog_invite(c->bd));
  log_id(c->name, LOG_INFO, "INVITE %s%s%s from %s on %s, Call-ID %s",
         sip->sip_request->rq_url->url_user ? sip->sip_request->rq_url->url_user : "",
         sip->sip_request->rq_url->url_user ? "@" : "", sip->sip_request->rq_url->url_host,
         sip->sip_from->a_url->url_user ? sip->sip_from->a_url->url_user : "?",
         ws_conn_name(conn), browser_dialog_call_id(c->bd));
  call_browser_respond(c, 100, "Trying", NULL);

  if (!call_has_sdp(browser_dialog_invite(c->bd), &text, &len)) {
    status = 488, why = "no SDP offer";
  } else if (!sip->sip_contact) {
    status = 400, why = "no Contact";
  } else if ((r = sdp_webrtc_parse(text, len, &c->browser_sdp, &why)) < 0) {
    status = 488;
  } else if (dtls_fingerprint_check(c->browser_sdp->fingerprint) < 0) {
    status = 488, why = "unusable a=fingerprint (hash function)";
  } else if (!first_codec(c->browser_sdp)) {
    status = 488, why = "no supported audio codec";
  } else if ((setup = sdp_webrtc_answer_setup(c->browser_sdp)) == SDP_SETUP_NONE) {
    status = 488, why = "no DTLS role";
  } else if (!c->browser_sdp->rtcp_mux) {
    status = 488, why = "no rtcp-mux";
  } else if (make_rtp(c) < 0) {
    status = 503, why = "no media ports";
  } else {
    local = call_plain_local(c);
    if (sdp_plain_offer_from_webrtc(c->browser_sdp, &local, &c->plain_offer, &why) < 0)
      status = 488;
  }
  if (status) {
    log_id(c->name, LOG_NOTICE, "rejected with %d: %s", status, why);
    call_browser_respond(c, status, status == 400 ? "Bad Request" : call_phrase_for(status), NULL);
    call_free(c);
    return -EPROTO;
  }
  call_dispatch(c, CALL_EV_BROWSER_INVITE, 0, NULL);
  *ret = c;
  return 0;
}

int call_from_pbx(const call_env *env, pbx_server_tx *tx, ws_conn *conn, const char *contact_uri,
                  const call_callbacks *cb, void *user, call **ret)
{
  call *c = call_alloc(env, cb, user);
  msg_t *invite = pbx_server_tx_request(tx);
  sip_t *sip = sip_object(invite);
  const char *why = "?", *text;
  size_t len;
  int status = 0, r;

  *ret = NULL;
  c->flow = ws_conn_id(conn);
  c->contact_uri = g_strdup(contact_uri);
  log_id(c->name, LOG_INFO, "INVITE from the PBX for %s on %s, Call-ID %s",
         sip->sip_to->a_url->url_user ? sip->sip_to->a_url->url_user : "?", ws_conn_name(conn),
         sip->sip_call_id->i_id);
  if (sip->sip_replaces) {
    /* the replaced call as the browser knows it: its browser dialog, the
     * to-tag the browser's own (RFC 3891: the recipient's local tag) */
    call *old = env->find_by_pbx_dialog
      ? env->find_by_pbx_dialog(env->find_user, sip->sip_replaces->rp_call_id,
                                sip->sip_replaces->rp_to_tag, sip->sip_replaces->rp_from_tag)
      : NULL;
    const char *ours = NULL, *theirs = NULL;

    if (old && old->bd)
      browser_dialog_tags(old->bd, &ours, &theirs);
    if (!old || !theirs || old->flow != c->flow) {
      log_id(c->name, LOG_NOTICE, "INVITE with Replaces: no such call with this browser, 481");
      pbx_server_tx_reply(tx, 481, "Call/Transaction Does Not Exist");
      call_free(c);
      return -ENOENT;
    }
    c->replaces = g_strdup_printf("Replaces: %s;to-tag=%s;from-tag=%s",
                                  browser_dialog_call_id(old->bd), theirs, ours);
    log_id(c->name, LOG_INFO, "replaces %s", old->name);
  }
  if (!call_has_sdp(invite, &text, &len))
    status = 488, why = "no SDP offer (an offer in the ACK is not supported)";
  else if ((r = sdp_plain_parse(text, len, &c->pbx_sdp, &why)) < 0)
    status = 488;
  if (status) {
    log_id(c->name, LOG_NOTICE, "rejected with %d: %s", status, why);
    pbx_server_tx_reply(tx, status, call_phrase_for(status));
    call_free(c);
    return -EPROTO;
  }
  r = pbx_dialog_accept(env->pbx, tx, &call_pbx_callbacks, c, &c->pd);
  if (r < 0) {
    log_id(c->name, LOG_WARNING, "cannot take the PBX's INVITE: %s", g_strerror(-r));
    call_free(c);
    return r;
  }
  pbx_dialog_respond(c->pd, 100, "Trying", NULL);
  if (make_rtp(c) < 0 || make_leg(c, true, DTLS_ROLE_SERVER, NULL) < 0) {
    pbx_dialog_respond(c->pd, 503, "Service Unavailable", NULL);
    call_free(c);
    return -EADDRINUSE;
  }
  call_apply_pbx_address(c);
  call_dispatch(c, CALL_EV_PBX_INVITE, 0, NULL);
  *ret = c;
  return 0;
}
