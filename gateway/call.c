/* A call through the PBX.  See call.h.  How it starts (the INVITE checked,
 * the call made, its media sockets) is in call_start.c; the middle of a call
 * in call_midcall.c.
 *
 * Everything that happens becomes an event for call_dispatch(), which looks the
 * row up in the table (call_fsm.c), logs the change and carries out the
 * row's actions in the table's order.  An action may raise a further event
 * (an answer that cannot be translated, a request that cannot be sent): it
 * is queued and handled when the current row is done, never nested.
 *
 * Two actions need rtcsipd's ICE candidates, which gathering delivers a
 * little after the call starts: the WebRTC answer (ANSWER_BROWSER, and a
 * 183 with early media) and the WebRTC offer (INVITE_BROWSER).  When the
 * row comes first they wait, and run on on_gathered if the call is still in
 * the state that asked for them.
 *
 * Release (the ENDED row) happens from an idle source, so that no object is
 * freed from inside its own callback.
 */
#include "gateway/call.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include <gio/gio.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "config/log.h"
#include "gateway/call_internal.h"


/* ---- helpers ---- */

const char *call_phrase_for(int status)
{
  switch (status) {
  case 408: return "Request Timeout";
  case 480: return "Temporarily Unavailable";
  case 487: return "Request Terminated";
  case 488: return "Not Acceptable Here";
  case 491: return "Request Pending";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Error";
  }
}

bool call_has_sdp(msg_t *msg, const char **text, size_t *len)
{
  sip_t *sip = sip_object(msg);

  if (!sip || !sip->sip_payload || !sip->sip_payload->pl_len)
    return false;
  if (sip->sip_content_type && sip->sip_content_type->c_type &&
      g_ascii_strcasecmp(sip->sip_content_type->c_type, "application/sdp") != 0)
    return false;
  *text = sip->sip_payload->pl_data;
  *len = sip->sip_payload->pl_len;
  return true;
}

static void stop_timer(call *c)
{
  if (c->timer) {
    g_source_remove(c->timer);
    c->timer = 0;
  }
}

static gboolean on_timer(gpointer user)
{
  call *c = user;

  c->timer = 0;
  call_dispatch(c, c->timer_event, 0, NULL);
  return G_SOURCE_REMOVE;
}

static void start_timer(call *c, unsigned seconds, call_event ev)
{
  stop_timer(c);
  c->timer_event = ev;
  c->timer = g_timeout_add_seconds(seconds, on_timer, c);
}

/* rtcsipd's side toward the browser, for an offer or an answer.  CANDS must
 * outlive LOCAL. */
int call_webrtc_local(call *c, char **cands, char *address, size_t size, sdp_webrtc_local *local)
{
  ice_agent *ice = browser_leg_ice(c->leg);
  const char *ufrag = NULL, *pwd = NULL;
  uint16_t port = 0;

  if (ice_default_candidate(cands, address, size, &port) < 0)
    return -EADDRNOTAVAIL;
  ice_agent_local_credentials(ice, &ufrag, &pwd);
  *local = (sdp_webrtc_local){
    .address = address,
    .port = port,
    .session_id = c->sdp_session_id,
    .session_version = c->webrtc_version,
    .ice_ufrag = ufrag,
    .ice_pwd = pwd,
    .fingerprint = dtls_identity_fingerprint(c->id),
    .candidates = (const char *const *)cands,
    .n_candidates = g_strv_length(cands),
    .end_of_candidates = true,
  };
  return 0;
}

sdp_plain_local call_plain_local(call *c)
{
  return (sdp_plain_local){
    .address = c->advertised,
    .port = rtp_socket_local_port(c->rtp),
    .session_id = c->sdp_session_id,
    .session_version = c->plain_version,
  };
}

/* ---- media ---- */

/* The browser's ICE candidates, once it has (or is about to get) rtcsipd's
 * SDP: connectivity checks and the connect timeout start here. */
int call_set_remote_ice(call *c)
{
  const char *cands[SDP_MAX_CANDIDATES + 1] = { 0 };
  int r;

  if (c->remote_ice_set)
    return 0;
  for (unsigned i = 0; i < c->browser_sdp->n_candidates; i++)
    cands[i] = c->browser_sdp->candidates[i];
  r = ice_agent_set_remote(browser_leg_ice(c->leg), c->browser_sdp->ice_ufrag,
                           c->browser_sdp->ice_pwd, cands);
  if (r == 0)
    c->remote_ice_set = true;
  return r;
}

/* The payload types each side uses for the same codec, where they differ. */
static size_t pt_pairs(const sdp_webrtc *w, const sdp_plain *p, media_bridge_pt_pair *out)
{
  size_t n = 0;

  for (unsigned i = 0; i < w->n_codecs && n < MEDIA_BRIDGE_MAX_PT_PAIRS; i++)
    for (unsigned j = 0; j < p->n_codecs; j++)
      if (sdp_codec_same(&w->codecs[i], &p->codecs[j])) {
        if (w->codecs[i].pt != p->codecs[j].pt && w->codecs[i].pt < 128 && p->codecs[j].pt < 128)
          out[n++] = (media_bridge_pt_pair){ w->codecs[i].pt, p->codecs[j].pt };
        break;
      }
  return n;
}

static void on_browser_silent(void *user)
{
  call_media_failed(user, "browser's media gone (ICE consent lost)");
}

static void on_media_timeout(void *user)
{
  call *c = user;

  log_id(c->name, LOG_NOTICE, "no media for %u ms", c->media_timeout_ms);
  call_dispatch(c, CALL_EV_MEDIA_TIMEOUT, 0, NULL);
}

void call_media_failed(call *c, const char *why)
{
  g_strlcpy(c->media_why, why, sizeof c->media_why);
  call_dispatch(c, CALL_EV_MEDIA_FAILED, 0, NULL);
}

/* A browser hanging up closes its peer connection as it sends its BYE: the
 * DTLS close_notify may come first.  Its BYE gets this long to say that the
 * call ended as calls do. */
#define DTLS_CLOSE_GRACE_MS 2000

static gboolean on_close_grace(gpointer user)
{
  call *c = user;

  c->close_grace = 0;
  log_id(c->name, LOG_NOTICE, "media ended: the browser closed DTLS and sent no BYE in %u ms",
         DTLS_CLOSE_GRACE_MS);
  call_media_failed(c, "browser closed its media (DTLS close_notify) without a BYE");
  return G_SOURCE_REMOVE;
}

static void on_leg_failed(void *user, const char *why)
{
  call *c = user;

  if (strcmp(why, DTLS_CLOSED_BY_PEER) == 0) {
    log_id(c->name, LOG_INFO, "the browser closed DTLS: waiting %u ms for its BYE", DTLS_CLOSE_GRACE_MS);
    if (!c->close_grace)
      c->close_grace = g_timeout_add(DTLS_CLOSE_GRACE_MS, on_close_grace, c);
    return;
  }
  log_id(c->name, LOG_NOTICE, "media failed: %s", why);
  call_media_failed(c, why);
}

static void on_leg_ready(void *user)
{
  call *c = user;
  log_id(c->name, LOG_INFO, "media ready: DTLS-SRTP keyed");
}

static void run_deferred(call *c);

static void on_leg_gathered(void *user)
{
  call *c = user;

  c->gathered = true;
  run_deferred(c);
}

const browser_leg_callbacks call_leg_callbacks = {
  .on_gathered = on_leg_gathered,
  .on_ready = on_leg_ready,
  .on_failed = on_leg_failed,
};

/* ---- actions ---- */

int call_browser_respond(call *c, int status, const char *phrase, const char *sdp)
{
  int r = browser_dialog_respond(c->bd, status, phrase, sdp);

  if (r < 0 && r != -EALREADY)
    log_id(c->name, LOG_NOTICE, "cannot send %d to the browser: %s", status, g_strerror(-r));
  return r;
}

/* The WebRTC answer to the browser's offer, from the PBX's SDP. */
static int make_browser_answer(call *c, char **out, const char **why)
{
  g_auto(GStrv) cands = ice_agent_local_candidates(browser_leg_ice(c->leg));
  sdp_webrtc_local local;
  char address[64];

  if (!c->pbx_sdp) {
    *why = "the PBX sent no SDP";
    return -EINVAL;
  }
  if (call_webrtc_local(c, cands, address, sizeof address, &local) < 0) {
    *why = "no local ICE candidate";
    return -EADDRNOTAVAIL;
  }
  return sdp_webrtc_answer_from_plain(c->browser_sdp, c->pbx_sdp, &local, out, why);
}

static void act_answer_browser(call *c)
{
  g_autofree char *answer = NULL;
  const char *why = "?";
  int r;

  if (!c->gathered) {
    c->deferred |= CALL_ACT_ANSWER_BROWSER;
    return;
  }
  r = make_browser_answer(c, &answer, &why);
  if (r < 0) {
    log_id(c->name, LOG_WARNING, "cannot answer the browser: %s", why);
    call_browser_respond(c, 488, "Not Acceptable Here", NULL);
    call_media_failed(c, why);
    return;
  }
  if (call_set_remote_ice(c) < 0) {
    call_browser_respond(c, 500, "Internal Server Error", NULL);
    call_media_failed(c, "cannot set the browser's ICE candidates");
    return;
  }
  if (call_browser_respond(c, 200, "OK", answer) == 0)
    c->answered_at = g_get_monotonic_time();
}

static void act_provisional_to_browser(call *c, int status, const char *phrase, bool early_media)
{
  g_autofree char *answer = NULL;
  const char *why = "?";

  if (early_media) {
    if (!c->gathered) {
      c->deferred |= CALL_ACT_PROVISIONAL_TO_BROWSER;
      c->early_status = status;
      g_strlcpy(c->early_phrase, phrase, sizeof c->early_phrase);
      return;
    }
    if (make_browser_answer(c, &answer, &why) < 0 || call_set_remote_ice(c) < 0) {
      log_id(c->name, LOG_NOTICE, "early media not passed on: %s", why);
      g_clear_pointer(&answer, g_free);
    }
  }
  call_browser_respond(c, status, phrase, answer);
}

static void act_invite_pbx(call *c)
{
  msg_t *invite = browser_dialog_invite(c->bd);
  sip_t *sip = sip_object(invite);
  su_home_t home[1] = { SU_HOME_INIT(home) };
  const char *ruri = url_as_string(home, sip->sip_request->rq_url);
  pbx_invite_params p = {
    .request_uri = ruri,
    .from = sip->sip_from,
    .to = sip->sip_to,
    .call_id = sip->sip_call_id->i_id,
    .cseq = sip->sip_cseq->cs_seq,
    .contact_user = c->name,
    .sdp = c->plain_offer,
    .credentials_from = invite,
    .session_expires = c->session_expires,
    .min_se = c->session_expires ? c->min_se : 0,
  };
  int r = ruri ? pbx_dialog_invite(c->pbx, &p, &call_pbx_callbacks, c, &c->pd) : -EINVAL;

  su_home_deinit(home);
  if (r < 0) {
    log_id(c->name, LOG_WARNING, "cannot send the INVITE to the PBX at %s: %s",
           pbx_link_target(c->pbx), g_strerror(-r));
    call_dispatch(c, CALL_EV_PBX_REJECT, 503, "Service Unavailable");
    return;
  }
  log_id(c->name, LOG_DEBUG, "INVITE sent to the PBX at %s", pbx_link_target(c->pbx));
  start_timer(c, c->transaction_timeout_s, CALL_EV_PBX_TIMEOUT);
}

static void act_invite_browser(call *c)
{
  g_auto(GStrv) cands = NULL;
  g_autofree char *offer = NULL;
  sdp_webrtc_local local;
  char address[64];
  const char *why = "?";
  ws_conn *conn;
  msg_t *invite;
  sip_t *sip;
  int r;

  if (!c->gathered) {
    c->deferred |= CALL_ACT_INVITE_BROWSER;
    return;
  }
  cands = ice_agent_local_candidates(browser_leg_ice(c->leg));
  if (call_webrtc_local(c, cands, address, sizeof address, &local) < 0) {
    log_id(c->name, LOG_WARNING, "no local ICE candidate for the browser");
    call_dispatch(c, CALL_EV_BROWSER_REJECT, 503, "Service Unavailable");
    return;
  }
  r = sdp_webrtc_offer_from_plain(c->pbx_sdp, &local, NULL, &offer, &why);
  if (r < 0) {
    log_id(c->name, LOG_NOTICE, "cannot make an offer for the browser: %s", why);
    call_dispatch(c, CALL_EV_BROWSER_REJECT, 488, "Not Acceptable Here");
    return;
  }
  conn = ws_edge_find(c->edge, c->flow);
  invite = pbx_dialog_invite_request(c->pd);
  sip = sip_object(invite);
  browser_invite_params p = {
    .request_uri = c->contact_uri,
    .from = sip->sip_from,
    .to = sip->sip_to,
    .call_id = sip->sip_call_id->i_id,
    .sdp = offer,
    .extra = c->replaces,
  };
  r = conn ? browser_dialog_new_uac(c->edge, conn, &p, c->advertised, &c->bd) : -ENOTCONN;
  if (r < 0) {
    log_id(c->name, LOG_NOTICE, "cannot send the INVITE to the browser: %s", g_strerror(-r));
    call_dispatch(c, CALL_EV_BROWSER_REJECT, 480, "Temporarily Unavailable");
    return;
  }
  log_id(c->name, LOG_DEBUG, "INVITE sent to the browser on ws-%" G_GUINT64_FORMAT, c->flow);
  start_timer(c, c->ring_timeout_s, CALL_EV_BROWSER_TIMEOUT);
}

static void act_answer_pbx(call *c)
{
  g_autofree char *answer = NULL;
  sdp_plain_local local = call_plain_local(c);
  const char *why = "?";
  int r;

  if (!c->browser_sdp) {
    pbx_dialog_respond(c->pd, 488, "Not Acceptable Here", NULL);
    call_media_failed(c, "the browser's answer is not usable");
    return;
  }
  r = sdp_plain_answer_from_webrtc(c->pbx_sdp, c->browser_sdp, &local, &answer, &why);
  if (r < 0) {
    log_id(c->name, LOG_WARNING, "cannot answer the PBX: %s", why);
    pbx_dialog_respond(c->pd, 488, "Not Acceptable Here", NULL);
    call_media_failed(c, why);
    return;
  }
  r = pbx_dialog_respond(c->pd, 200, "OK", answer);
  if (r < 0) {
    log_id(c->name, LOG_WARNING, "cannot send the 200 to the PBX: %s", g_strerror(-r));
    call_media_failed(c, "cannot answer the PBX");
    return;
  }
  c->answered_at = g_get_monotonic_time();
}

/* The payload-type table of the bridge from the two current SDPs. */
void call_apply_pt_map(call *c)
{
  media_bridge_pt_pair pairs[MEDIA_BRIDGE_MAX_PT_PAIRS];
  size_t n;

  if (!c->media || !c->pbx_sdp || !c->browser_sdp)
    return;
  n = pt_pairs(c->browser_sdp, c->pbx_sdp, pairs);
  media_call_set_pt_map(call_media_call(c->media), pairs, n);
  log_id(c->name, LOG_INFO, "media: PBX at %s:%u, %zu payload types rewritten (the others pass as "
         "they are)", c->pbx_sdp->address, c->pbx_sdp->port, n);
}

void call_apply_pbx_address(call *c)
{
  if (!c->rtp || !c->pbx_sdp || !c->media)
    return;
  media_call *mc = call_media_call(c->media);
  if (!c->pbx_sdp->port || c->pbx_sdp->hold_address) {
    media_call_clear_pbx_remote(mc);
    return;
  }
  if (media_call_set_pbx_remote(mc, c->pbx_sdp->address, c->pbx_sdp->port, c->pbx_sdp->rtcp_port) < 0)
    log_id(c->name, LOG_WARNING, "the PBX's media address %s:%u is not usable",
           c->pbx_sdp->address, c->pbx_sdp->port);
}

/* The bridge between the legs, the PBX's address and the payload types. */
static void act_start_media(call *c)
{
  int r;

  if (!c->leg) {
    /* a call from the browser whose leg comes right after this row */
    c->media_wanted = true;
    return;
  }
  c->media_wanted = false;
  if (!c->media) {
    static const media_call_callbacks mcb = {
      .on_timeout = on_media_timeout,
      .on_dtmf = call_midcall_on_dtmf,
      .on_browser_silent = on_browser_silent,
    };
    media_bridge_settings bs = { .timeout_ms = c->media_timeout_ms, .log_id = c->name };

    r = call_media_new(c->engine, c->leg, c->rtp, &bs, &mcb, c, &c->media);
    if (r < 0) {
      call_media_failed(c, "cannot make the media bridge");
      return;
    }
  }
  if (!c->pbx_sdp || !c->browser_sdp)
    return;
  call_apply_pbx_address(c);
  call_apply_pt_map(c);
  call_midcall_media_started(c);
  if (!c->from_browser && !c->remote_ice_set) {
    /* the browser answered: its DTLS fingerprint and candidates */
    if (c->browser_sdp->setup == SDP_SETUP_PASSIVE) {
      call_media_failed(c, "the browser answered a=setup:passive; rtcsipd offered to be DTLS server");
      return;
    }
    if (browser_leg_set_peer_fingerprint(c->leg, c->browser_sdp->fingerprint) < 0 ||
        call_set_remote_ice(c) < 0) {
      call_media_failed(c, "the browser's fingerprint or candidates are not usable");
      return;
    }
  }
}

static void act_reject_pbx(call *c, int status)
{
  const char *phrase = status ? call_phrase_for(status) : c->ev_phrase;

  if (!status)
    status = c->ev_status >= 300 ? c->ev_status : 500;
  if (pbx_dialog_respond(c->pd, status, phrase, NULL) < 0)
    log_id(c->name, LOG_DEBUG, "the PBX's INVITE was answered already");
}

static void act_reject_browser(call *c, int status)
{
  if (status) {
    call_browser_respond(c, status, call_phrase_for(status), NULL);
  } else if (c->ev_msg) {
    int r = browser_dialog_respond_relay(c->bd, c->ev_msg);
    if (r < 0 && r != -EALREADY)
      log_id(c->name, LOG_NOTICE, "cannot relay %d to the browser: %s", c->ev_status,
             g_strerror(-r));
  } else {
    call_browser_respond(c, c->ev_status >= 300 ? c->ev_status : 500,
                    c->ev_status >= 300 ? c->ev_phrase : call_phrase_for(500), NULL);
  }
}

static void act_cancel_browser(call *c)
{
  if (!c->bd) {
    /* the INVITE never went out: as if the browser had answered 487 */
    c->deferred &= ~CALL_ACT_INVITE_BROWSER;
    call_dispatch(c, CALL_EV_BROWSER_REJECT, 487, "Request Terminated");
    return;
  }
  if (browser_dialog_cancel(c->bd) < 0)
    log_id(c->name, LOG_DEBUG, "CANCEL to the browser not sent");
  start_timer(c, c->transaction_timeout_s, CALL_EV_BROWSER_TIMEOUT);
}

static void act_bye_pbx(call *c)
{
  if (c->pd && pbx_dialog_confirmed(c->pd) && pbx_dialog_bye(c->pd) == 0)
    c->byes_pending++;
}

static void act_bye_browser(call *c)
{
  int r = c->bd && browser_dialog_confirmed(c->bd) ? browser_dialog_send_bye(c->bd) : -EINVAL;

  if (r == 0)
    log_id(c->name, LOG_DEBUG, "BYE sent to the browser");
}

static gboolean on_release(gpointer user);

static void act_release(call *c)
{
  stop_timer(c);
  if (c->close_grace) {
    g_source_remove(c->close_grace);
    c->close_grace = 0;
  }
  c->deferred = 0;
  c->ended_at = g_get_monotonic_time();
  if (!c->release_idle)
    c->release_idle = g_idle_add(on_release, c);
}

static void run_actions(call *c, uint32_t a, uint16_t status, call_event ev)
{
  if (a & CALL_ACT_INVITE_PBX)
    act_invite_pbx(c);
  if (a & CALL_ACT_INVITE_BROWSER)
    act_invite_browser(c);
  if (a & CALL_ACT_PROVISIONAL_TO_BROWSER)
    act_provisional_to_browser(c, c->ev_status, c->ev_phrase, ev == CALL_EV_PBX_EARLY_MEDIA);
  if (a & CALL_ACT_PROVISIONAL_TO_PBX)
    pbx_dialog_respond(c->pd, c->ev_status, c->ev_phrase, NULL);
  if ((a & CALL_ACT_ACK_PBX) && c->pd)
    pbx_dialog_ack(c->pd);
  if ((a & CALL_ACT_ACK_BROWSER) && c->bd)
    browser_dialog_ack(c->bd);
  if (a & CALL_ACT_ANSWER_BROWSER)
    act_answer_browser(c);
  if (a & CALL_ACT_ANSWER_PBX)
    act_answer_pbx(c);
  if (a & CALL_ACT_REJECT_BROWSER)
    act_reject_browser(c, status);
  if (a & CALL_ACT_REJECT_PBX)
    act_reject_pbx(c, status);
  if ((a & CALL_ACT_CANCEL_PBX) && c->pd)
    pbx_dialog_cancel(c->pd);
  if (a & CALL_ACT_CANCEL_BROWSER)
    act_cancel_browser(c);
  if (a & CALL_ACT_BYE_PBX)
    act_bye_pbx(c);
  if (a & CALL_ACT_BYE_BROWSER)
    act_bye_browser(c);
  if (a & CALL_ACT_START_MEDIA)
    act_start_media(c);
  if (a & CALL_ACT_RELEASE)
    act_release(c);
  if (a & ~(CALL_ACT_UPDATE_MEDIA - 1))
    call_midcall_actions(c, a, status);
}

static void run_deferred(call *c)
{
  uint32_t d = c->deferred;

  c->deferred = 0;
  if ((d & CALL_ACT_INVITE_BROWSER) && c->state == CALL_TO_BROWSER_TRYING)
    act_invite_browser(c);
  if ((d & CALL_ACT_PROVISIONAL_TO_BROWSER) &&
      (c->state == CALL_TO_PBX_EARLY || c->state == CALL_TO_PBX_TRYING))
    act_provisional_to_browser(c, c->early_status, c->early_phrase, true);
  if ((d & CALL_ACT_ANSWER_BROWSER) && c->state == CALL_CONFIRMED)
    act_answer_browser(c);
}

/* ---- the state machine ---- */

static char *cause_of(call *c, call_event ev)
{
  switch (ev) {
  case CALL_EV_BROWSER_BYE: return g_strdup("BYE from the browser");
  case CALL_EV_PBX_BYE: return g_strdup("BYE from the PBX");
  case CALL_EV_BROWSER_CANCEL: return g_strdup("CANCEL from the browser");
  case CALL_EV_PBX_CANCEL: return g_strdup("CANCEL from the PBX");
  case CALL_EV_PBX_REJECT: return g_strdup_printf("PBX answered %d", c->ev_status);
  case CALL_EV_BROWSER_REJECT: return g_strdup_printf("browser answered %d", c->ev_status);
  case CALL_EV_PBX_TIMEOUT: return g_strdup("no answer from the PBX");
  case CALL_EV_BROWSER_TIMEOUT: return g_strdup("no answer from the browser");
  case CALL_EV_WS_CLOSED: return g_strdup("WebSocket closed");
  case CALL_EV_MEDIA_FAILED: return g_strdup_printf("media failed: %s", c->media_why);
  case CALL_EV_MEDIA_TIMEOUT: return g_strdup("media timeout");
  case CALL_EV_SHUTDOWN: return g_strdup("shutdown");
  case CALL_EV_SESSION_EXPIRED: return g_strdup_printf("session timer: %s", c->media_why);
  default: return g_strdup(call_event_name(ev));
  }
}

static bool is_ending(call_state s)
{
  return s == CALL_TO_PBX_CANCELLING || s == CALL_TO_BROWSER_CANCELLING || s == CALL_ENDING ||
         s == CALL_ENDED;
}

static void step(call *c, call_event ev)
{
  bool ignored;
  call_transition t = call_fsm_step(c->state, ev, &ignored);
  char acts[256];

  if (ignored) {
    log_id(c->name, LOG_DEBUG, "%s ignored in state %s", call_event_name(ev),
           call_state_name(c->state));
    return;
  }
  if (!c->cause && is_ending(t.next))
    c->cause = cause_of(c, ev);
  log_id(c->name, LOG_INFO, "state %s -> %s (%s; %s)", call_state_name(c->state),
         call_state_name(t.next), call_event_name(ev),
         t.actions ? call_actions_format(t.actions, acts, sizeof acts) : "nothing to do");
  c->state = t.next;
  if (is_ending(t.next))
    stop_timer(c);
  run_actions(c, t.actions, t.status, ev);
  if (c->state == CALL_ENDING && c->byes_pending == 0 && !(t.actions & CALL_ACT_RELEASE) &&
      ev != CALL_EV_BYES_DONE)
    call_dispatch(c, CALL_EV_BYES_DONE, 0, NULL);
}

/* Handles EV now, or after the event being handled when called from an
 * action.  STATUS and PHRASE: the final response the event carries (to be
 * relayed), 0 when none. */
void call_dispatch(call *c, call_event ev, int status, const char *phrase)
{
  if (c->dispatching) {
    if (c->n_queued == MAX_QUEUED) {
      log_id(c->name, LOG_ERR, "event queue full, %s lost", call_event_name(ev));
      return;
    }
    queued_event *q = &c->queue[c->n_queued++];
    q->event = ev;
    q->status = status;
    g_strlcpy(q->phrase, phrase ? phrase : "", sizeof q->phrase);
    return;
  }
  c->dispatching = true;
  if (status) {
    c->ev_status = status;
    g_strlcpy(c->ev_phrase, phrase ? phrase : "", sizeof c->ev_phrase);
  }
  step(c, ev);
  c->ev_msg = NULL;
  while (c->n_queued) {
    queued_event q = c->queue[0];

    memmove(c->queue, c->queue + 1, --c->n_queued * sizeof c->queue[0]);
    if (q.status) {
      c->ev_status = q.status;
      g_strlcpy(c->ev_phrase, q.phrase, sizeof c->ev_phrase);
    }
    step(c, q.event);
  }
  c->dispatching = false;
}

/* Like call_dispatch(), with MSG (borrowed) the response whose status is relayed. */
void call_dispatch_response(call *c, call_event ev, int status, msg_t *msg)
{
  sip_t *sip = msg ? sip_object(msg) : NULL;
  const char *phrase = sip && sip->sip_status ? sip->sip_status->st_phrase : call_phrase_for(status);

  c->ev_msg = msg;
  call_dispatch(c, ev, status, phrase);
  c->ev_msg = NULL;
}

/* ---- the PBX's side ---- */

/* The browser's leg of a call from the browser, once the PBX has taken the
 * call: from an idle source, so that the loop handles what is already
 * waiting (the PBX's 200 right after its 180, to be ACKed at once) before
 * the leg's setup. */
static gboolean on_leg_idle(gpointer user)
{
  call *c = user;

  c->leg_idle = 0;
  if (c->leg || !(c->state == CALL_TO_PBX_EARLY || c->state == CALL_CONFIRMED ||
                  c->state == CALL_REOFFER_TO_PBX || c->state == CALL_REOFFER_TO_BROWSER))
    return G_SOURCE_REMOVE;
  if (call_make_browser_side_leg(c) < 0) {
    call_media_failed(c, "no media ports"); /* no ICE port left */
    return G_SOURCE_REMOVE;
  }
  if (c->media_wanted)
    act_start_media(c); /* what a row asked for before there was a leg */
  return G_SOURCE_REMOVE;
}

static void on_pbx_invite_response(void *user, int status, msg_t *response)
{
  call *c = user;
  const char *text;
  size_t len;

  if (c->timer && c->timer_event == CALL_EV_PBX_TIMEOUT)
    stop_timer(c); /* any response: the PBX is there; its own timers run now */
  if (status == 100)
    return;
  /* the PBX takes the call: now the browser's leg (after the response is
   * handled, see on_leg_idle) */
  bool needs_leg = status < 300 && !c->leg && c->from_browser;

  if (response && (status < 300) && call_has_sdp(response, &text, &len)) {
    sdp_plain *p = NULL;
    const char *why = "?";

    if (sdp_plain_parse(text, len, &p, &why) == 0) {
      sdp_plain_free(c->pbx_sdp);
      c->pbx_sdp = p;
    } else {
      log_id(c->name, LOG_NOTICE, "the PBX's SDP in its %d is not usable: %s", status, why);
      if (status >= 200 && !c->pbx_sdp)
        g_strlcpy(c->media_why, why, sizeof c->media_why);
    }
  }
  if (status < 200)
    call_dispatch_response(c, response && call_has_sdp(response, &text, &len) && c->pbx_sdp
                           ? CALL_EV_PBX_EARLY_MEDIA : CALL_EV_PBX_PROVISIONAL,
                      status, response);
  else if (status < 300)
    call_dispatch_response(c, CALL_EV_PBX_ANSWER, status, response);
  else if (!response && status == 408)
    call_dispatch_response(c, CALL_EV_PBX_TIMEOUT, status, NULL);
  else
    call_dispatch_response(c, CALL_EV_PBX_REJECT, status, response);

  if (needs_leg && !c->leg && !c->leg_idle)
    c->leg_idle = g_idle_add(on_leg_idle, c);
}

static void on_pbx_cancel(void *user)
{
  call_dispatch(user, CALL_EV_PBX_CANCEL, 0, NULL);
}

static int on_pbx_request(void *user, msg_t *request)
{
  call *c = user;
  sip_t *sip = sip_object(request);

  switch (sip->sip_request->rq_method) {
  case sip_method_bye:
    call_dispatch(c, CALL_EV_PBX_BYE, 0, NULL);
    return 200;
  case sip_method_info:
  case sip_method_refer:
  case sip_method_notify:
    return call_midcall_pbx_request(c, request);
  case sip_method_options:
    return 200;
  case sip_method_invite:
  case sip_method_update:
    return 488; /* re-INVITE, UPDATE: not yet */
  default:
    return 405;
  }
}

static void on_pbx_ack(void *user)
{
  call *c = user;
  log_id(c->name, LOG_DEBUG, "ACK from the PBX");
}

static void on_pbx_ack_timeout(void *user)
{
  call *c = user;

  log_id(c->name, LOG_NOTICE, "no ACK from the PBX for rtcsipd's 200");
  call_media_failed(c, "no ACK from the PBX");
}

static void on_pbx_bye_response(void *user, int status)
{
  call *c = user;

  log_id(c->name, LOG_DEBUG, "the PBX answered the BYE with %d", status);
  if (c->byes_pending && --c->byes_pending == 0 && c->state == CALL_ENDING)
    call_dispatch(c, CALL_EV_BYES_DONE, 0, NULL);
}

const pbx_dialog_callbacks call_pbx_callbacks = {
  .on_invite_response = on_pbx_invite_response,
  .on_cancel = on_pbx_cancel,
  .on_request = on_pbx_request,
  .on_ack = on_pbx_ack,
  .on_bye_response = on_pbx_bye_response,
  .on_ack_timeout = on_pbx_ack_timeout,
  .on_offer = call_midcall_on_offer,
  .on_offer_response = call_midcall_on_offer_response,
  .on_session_expired = call_midcall_on_session_expired,
  .on_ack_sdp = call_midcall_on_ack_sdp,
  .on_request_response = call_midcall_on_request_response,
};

/* ---- the browser's side ---- */

bool call_matches_request(const call *c, uint64_t flow, msg_t *request)
{
  return c->bd && browser_dialog_matches(c->bd, flow, request);
}

void call_on_browser_request(call *c, msg_t *request)
{
  sip_t *sip = sip_object(request);

  switch (sip->sip_request->rq_method) {
  case sip_method_ack:
    break;
  case sip_method_bye:
    browser_dialog_reply(c->bd, request, 200, "OK");
    call_dispatch(c, CALL_EV_BROWSER_BYE, 0, NULL);
    break;
  case sip_method_cancel:
    browser_dialog_reply(c->bd, request, 200, "OK");
    if (c->from_browser && !browser_dialog_answered(c->bd))
      call_dispatch(c, CALL_EV_BROWSER_CANCEL, 0, NULL);
    break;
  case sip_method_info:
  case sip_method_invite:
  case sip_method_update:
  case sip_method_refer:
  case sip_method_notify:
    if (call_midcall_browser_request(c, request))
      return;
    browser_dialog_reply(c->bd, request, 488, "Not Acceptable Here");
    break;
  case sip_method_options:
    browser_dialog_reply(c->bd, request, 200, "OK");
    break;
  default:
    browser_dialog_reply(c->bd, request, 405, "Method Not Allowed");
    break;
  }
  msg_destroy(request);
}

bool call_take_browser_response(call *c, uint64_t flow, msg_t *response)
{
  browser_txn which;
  int status;
  const char *text;
  size_t len;

  if (!c->bd || !browser_dialog_take_response(c->bd, flow, response, &which, &status))
    return false;
  if (which == BROWSER_TXN_REINVITE) {
    if (status >= 200)
      call_midcall_browser_response(c, status, response);
  } else if (which == BROWSER_TXN_INVITE && status > 100) {
    if (status >= 200 && status < 300 && c->state == CALL_CONFIRMED) {
      browser_dialog_ack(c->bd); /* a repeated 2xx */
    } else if (status >= 200 && status < 300) {
      const char *why = "no SDP";
      sdp_webrtc *w = NULL;

      if (!call_has_sdp(response, &text, &len) || sdp_webrtc_parse(text, len, &w, &why) < 0)
        log_id(c->name, LOG_NOTICE, "the browser's answer is not usable: %s", why);
      sdp_webrtc_free(c->browser_sdp);
      c->browser_sdp = w;
      call_dispatch_response(c, CALL_EV_BROWSER_ANSWER, status, response);
    } else {
      call_dispatch_response(c, status < 200 ? CALL_EV_BROWSER_PROVISIONAL : CALL_EV_BROWSER_REJECT,
                        status, response);
    }
  }
  msg_destroy(response);
  return true;
}

void call_on_ws_closed(call *c)
{
  call_dispatch(c, CALL_EV_WS_CLOSED, 0, NULL);
}

void call_shutdown(call *c)
{
  call_dispatch(c, CALL_EV_SHUTDOWN, 0, NULL);
}

/* ---- release ---- */

static gboolean on_release(gpointer user)
{
  call *c = user;
  gint64 from = c->answered_at ? c->answered_at : c->started_at;
  g_autofree char *media = NULL;

  c->release_idle = 0;
  if (c->media) {
    call_media_free(c->media, &media);
    c->media = NULL;
  } else {
    media = call_media_summary_unstarted(c->leg, c->rtp);
  }
  g_clear_pointer(&c->leg, browser_leg_free);
  g_clear_pointer(&c->rtp, rtp_socket_free);
  log_id(c->name, LOG_NOTICE, "call ended: cause %s, %.1f s%s, %s", c->cause ? c->cause : "?",
         (double)(c->ended_at - from) / G_USEC_PER_SEC, c->answered_at ? "" : " (not answered)",
         media);
  if (c->cb.on_ended)
    c->cb.on_ended(c->user, c); /* may free C */
  return G_SOURCE_REMOVE;
}

void call_free(call *c)
{
  if (!c)
    return;
  stop_timer(c);
  if (c->close_grace)
    g_source_remove(c->close_grace);
  if (c->release_idle)
    g_source_remove(c->release_idle);
  if (c->leg_idle)
    g_source_remove(c->leg_idle);
  call_media_free(c->media, NULL);
  browser_leg_free(c->leg);
  rtp_socket_free(c->rtp);
  pbx_dialog_free(c->pd);
  browser_dialog_free(c->bd);
  call_midcall_clear(c);
  sdp_webrtc_free(c->browser_sdp);
  sdp_plain_free(c->pbx_sdp);
  g_free(c->plain_offer);
  g_free(c->contact_uri);
  g_free(c->replaces);
  g_free(c->advertised);
  g_free(c->rtp_address);
  g_free(c->cause);
  ice_config_clear(&c->ice);
  g_free(c);
}

static bool tags_match(const char *local, const char *remote, const char *a, const char *b)
{
  return local && remote && a && b &&
         ((strcmp(local, a) == 0 && strcmp(remote, b) == 0) ||
          (strcmp(local, b) == 0 && strcmp(remote, a) == 0));
}

bool call_has_pbx_dialog(const call *c, const char *call_id, const char *tag_a, const char *tag_b)
{
  const char *local = NULL, *remote = NULL;

  if (!c->pd || !call_id || !tag_a || !tag_b || strcmp(pbx_dialog_call_id(c->pd), call_id) != 0)
    return false;
  pbx_dialog_tags(c->pd, &local, &remote);
  return tags_match(local, remote, tag_a, tag_b);
}

bool call_has_browser_dialog(const call *c, const char *call_id, const char *tag_a,
                             const char *tag_b)
{
  const char *local = NULL, *remote = NULL;

  if (!c->bd || !call_id || strcmp(browser_dialog_call_id(c->bd), call_id) != 0)
    return false;
  browser_dialog_tags(c->bd, &local, &remote);
  return tags_match(local, remote, tag_a, tag_b);
}

bool call_pbx_dialog_ids(const call *c, const char **call_id, const char **local,
                         const char **remote)
{
  if (!c->pd || !pbx_dialog_confirmed(c->pd))
    return false;
  *call_id = pbx_dialog_call_id(c->pd);
  pbx_dialog_tags(c->pd, local, remote);
  return *local && *remote;
}

uint64_t call_flow(const call *c) { return c->flow; }

bool call_is_pending(const call *c)
{
  return c->from_browser && c->answered_at == 0;
}
const char *call_name(const call *c) { return c->name; }
