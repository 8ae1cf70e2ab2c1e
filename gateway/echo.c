/* The built-in echo target.  See echo.h.
 *
 * States (call_fsm.h's names; the echo call is a browser->"PBX" call whose
 * far end answers at once): IDLE -> TO_PBX_TRYING (100 sent, gathering) ->
 * CONFIRMED (200 sent, media reflected) -> ENDED.  Ending sends what the
 * browser must be told at once (487 or an error to the INVITE, or a BYE) and
 * releases everything from an idle source, so that no object is freed from
 * inside its own callback.
 */
#include "gateway/echo.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/sip_protos.h>

#include "config/log.h"
#include "gateway/browser_dialog.h"
#include "gateway/call_fsm.h"
#include "gateway/ice_config.h"
#include "gateway/call_media.h"
#include "gateway/media_bridge.h"
#include "sip/sdp_translate.h"
#include "webrtc/browser_leg.h"

struct echo_call {
  const dtls_identity *id;
  media_engine *engine;
  char name[32];
  browser_dialog *dialog;
  sdp_webrtc *offer;
  sdp_codec codec;          /* the one chosen */
  browser_leg *leg;
  call_media *media;
  call_state state;
  unsigned media_timeout_ms; /* [media] media_timeout */
  gint64 started_at, answered_at, ended_at; /* monotonic, us */
  const char *end_cause;
  guint release_idle;
  guint close_grace;        /* the browser closed DTLS: its BYE is awaited */
  echo_callbacks cb;
  void *user;
};

static unsigned next_echo_id;

static void set_state(echo_call *c, call_state next, const char *why)
{
  log_id(c->name, LOG_INFO, "state %s -> %s (%s)", call_state_name(c->state),
         call_state_name(next), why);
  c->state = next;
}

bool echo_is_target(const config *cfg, msg_t *request)
{
  sip_t *sip = sip_object(request);
  const url_t *ruri;

  if (!cfg->echo_user || !cfg->echo_user[0] || !sip || !sip->sip_request)
    return false;
  ruri = sip->sip_request->rq_url;
  return ruri->url_user && strcmp(ruri->url_user, cfg->echo_user) == 0 &&
         config_serves_domain(cfg, ruri->url_host);
}

/* ---- the end ---- */

static gboolean on_release(gpointer user)
{
  echo_call *c = user;
  gint64 from = c->answered_at ? c->answered_at : c->started_at;
  g_autofree char *media = NULL;

  c->release_idle = 0;
  if (c->media) {
    call_media_free(c->media, &media);
    c->media = NULL;
  } else {
    media = call_media_summary_unstarted(c->leg, NULL);
  }
  g_clear_pointer(&c->leg, browser_leg_free);
  log_id(c->name, LOG_NOTICE, "call ended: cause %s, %.1f s%s, %s", c->end_cause,
         (double)(c->ended_at - from) / G_USEC_PER_SEC, c->answered_at ? "" : " (not answered)",
         media);
  if (c->cb.on_ended)
    c->cb.on_ended(c->user, c); /* may free C */
  return G_SOURCE_REMOVE;
}

/* Ends the call: STATUS (when not answered yet) or a BYE (SEND_BYE, when
 * answered) to the browser now, everything else from an idle source. */
static void end_call(echo_call *c, const char *cause, int status, const char *phrase,
                     bool send_bye)
{
  if (c->state == CALL_ENDED)
    return;
  if (!browser_dialog_answered(c->dialog) && status)
    browser_dialog_respond(c->dialog, status, phrase, NULL);
  else if (send_bye && browser_dialog_confirmed(c->dialog) &&
           browser_dialog_send_bye(c->dialog) == 0)
    log_id(c->name, LOG_DEBUG, "BYE sent to the browser");
  if (c->close_grace) {
    g_source_remove(c->close_grace);
    c->close_grace = 0;
  }
  c->end_cause = cause;
  c->ended_at = g_get_monotonic_time();
  set_state(c, CALL_ENDED, cause);
  c->release_idle = g_idle_add(on_release, c);
}

/* ---- media ---- */

static gboolean on_close_grace(gpointer user)
{
  echo_call *c = user;

  c->close_grace = 0;
  end_call(c, "browser closed its media (DTLS close_notify) without a BYE", 0, NULL, true);
  return G_SOURCE_REMOVE;
}

static void on_leg_failed(void *user, const char *why)
{
  echo_call *c = user;

  if (strcmp(why, DTLS_CLOSED_BY_PEER) == 0) {
    /* a hang-up: the BYE is on its way (2 s, as gateway/call.c) */
    if (!c->close_grace)
      c->close_grace = g_timeout_add(2000, on_close_grace, c);
    return;
  }
  log_id(c->name, LOG_NOTICE, "media failed: %s", why);
  end_call(c, "media failed", 500, "Internal Server Error", true);
}

static void on_leg_ready(void *user)
{
  echo_call *c = user;
  log_id(c->name, LOG_INFO, "media ready: DTLS-SRTP keyed, reflecting %s/%u pt %u",
         c->codec.name, c->codec.rate, c->codec.pt);
}

static void on_media_timeout(void *user)
{
  echo_call *c = user;

  log_id(c->name, LOG_NOTICE, "no media for %u ms", c->media_timeout_ms);
  end_call(c, "media timeout", 408, "Request Timeout", true);
}

static void on_browser_silent(void *user)
{
  end_call(user, "browser's media gone (ICE consent lost)", 500, "Internal Server Error", true);
}

/* The answer: the chosen codec and the offer's telephone-event at its rate,
 * payload types kept, sendrecv. */
static int make_answer(echo_call *c, char **out, const char **why)
{
  ice_agent *ice = browser_leg_ice(c->leg);
  g_auto(GStrv) cands = ice_agent_local_candidates(ice);
  g_autofree sdp_plain *plain = g_new0(sdp_plain, 1);
  const char *ufrag = NULL, *pwd = NULL;
  char address[64];
  uint16_t port = 0;
  int r;

  if (ice_default_candidate(cands, address, sizeof address, &port) < 0) {
    *why = "no local ICE candidate";
    return -EADDRNOTAVAIL;
  }
  ice_agent_local_credentials(ice, &ufrag, &pwd);
  plain->n_media = 1;
  plain->audio = 0;
  plain->media[0].kind = SDP_KIND_AUDIO;
  g_strlcpy(plain->media[0].type, "audio", sizeof plain->media[0].type);
  g_strlcpy(plain->media[0].proto, "RTP/AVP", sizeof plain->media[0].proto);
  plain->media[0].port = 9;
  plain->codecs[plain->n_codecs++] = c->codec;
  for (unsigned i = 0; i < c->offer->n_codecs && plain->n_codecs < SDP_MAX_CODECS; i++) {
    const sdp_codec *k = &c->offer->codecs[i];
    if (g_ascii_strcasecmp(k->name, "telephone-event") == 0 && k->rate == c->codec.rate)
      plain->codecs[plain->n_codecs++] = *k;
  }
  plain->dir = SDP_DIR_SENDRECV;
  g_strlcpy(plain->address, address, sizeof plain->address);
  plain->port = 9;

  sdp_webrtc_local local = {
    .address = address,
    .port = port,
    .session_id = (uint64_t)g_get_real_time(),
    .session_version = 1,
    .ice_ufrag = ufrag,
    .ice_pwd = pwd,
    .fingerprint = dtls_identity_fingerprint(c->id),
    .candidates = (const char *const *)cands,
    .n_candidates = g_strv_length(cands),
    .end_of_candidates = true,
  };
  r = sdp_webrtc_answer_from_plain(c->offer, plain, &local, out, why);
  return r;
}

static void on_leg_gathered(void *user)
{
  echo_call *c = user;
  media_bridge_settings bs = { .timeout_ms = c->media_timeout_ms, .log_id = c->name };
  static const media_call_callbacks mcb = { .on_timeout = on_media_timeout,
                                            .on_browser_silent = on_browser_silent };
  const char *cands[SDP_MAX_CANDIDATES + 1] = { 0 };
  g_autofree char *answer = NULL;
  const char *why = "?";
  int r;

  if (c->state != CALL_TO_PBX_TRYING)
    return;
  for (unsigned i = 0; i < c->offer->n_candidates; i++)
    cands[i] = c->offer->candidates[i];
  r = ice_agent_set_remote(browser_leg_ice(c->leg), c->offer->ice_ufrag, c->offer->ice_pwd, cands);
  if (r < 0) {
    log_id(c->name, LOG_WARNING, "cannot set the browser's ICE candidates: %s", g_strerror(-r));
    end_call(c, "ICE setup failed", 500, "Internal Server Error", false);
    return;
  }
  r = make_answer(c, &answer, &why);
  if (r < 0) {
    log_id(c->name, LOG_WARNING, "cannot make the SDP answer: %s", why);
    end_call(c, "no answer", r == -ENOTSUP ? 488 : 500,
             r == -ENOTSUP ? "Not Acceptable Here" : "Internal Server Error", false);
    return;
  }
  r = call_media_new(c->engine, c->leg, NULL, &bs, &mcb, c, &c->media);
  if (r < 0) {
    log_id(c->name, LOG_WARNING, "cannot make the echo bridge: %s", g_strerror(-r));
    end_call(c, "bridge failed", 500, "Internal Server Error", false);
    return;
  }
  r = browser_dialog_respond(c->dialog, 200, "OK", answer);
  if (r < 0) {
    log_id(c->name, LOG_NOTICE, "cannot send the 200: %s", g_strerror(-r));
    end_call(c, "browser gone", 0, NULL, false);
    return;
  }
  c->answered_at = g_get_monotonic_time();
  set_state(c, CALL_CONFIRMED, "answered");
}

/* ---- the call ---- */

static const sdp_codec *choose_codec(const sdp_webrtc *offer)
{
  for (unsigned i = 0; i < offer->n_codecs; i++) {
    const sdp_codec *k = &offer->codecs[i];
    if (g_ascii_strcasecmp(k->name, "telephone-event") != 0 && sdp_codec_supported(k))
      return k;
  }
  return NULL;
}

static int reject(browser_dialog *d, const char *name, int status, const char *phrase,
                  const char *why, int err)
{
  log_id(name, LOG_NOTICE, "rejected with %d: %s", status, why);
  browser_dialog_respond(d, status, phrase, NULL);
  browser_dialog_free(d);
  return err;
}

int echo_call_new(const config *cfg, const dtls_identity *id, media_engine *engine, ws_edge *edge,
                  ws_conn *conn, msg_t *invite, const echo_callbacks *cb, void *user, echo_call **ret)
{
  char name[32];
  browser_dialog *d;
  sip_t *sip;
  sdp_webrtc *offer = NULL;
  const sdp_codec *codec;
  const char *why = "?";
  sdp_setup setup;
  echo_call *c;
  ice_config ic;
  int r;

  *ret = NULL;
  g_snprintf(name, sizeof name, "echo-%u", ++next_echo_id);
  d = browser_dialog_new(edge, conn, invite, cfg->advertised_address);
  if (!d) {
    log_id(name, LOG_NOTICE, "INVITE refused: not a new dialog (To tag, or no From tag)");
    return -EINVAL;
  }
  sip = sip_object(browser_dialog_invite(d));
  log_id(name, LOG_INFO, "INVITE %s from %s on %s, Call-ID %s", cfg->echo_user,
         sip->sip_from->a_url->url_user ? sip->sip_from->a_url->url_user : "?",
         ws_conn_name(conn), browser_dialog_call_id(d));
  browser_dialog_respond(d, 100, "Trying", NULL);
  if (!sip->sip_payload || !sip->sip_payload->pl_len)
    return reject(d, name, 488, "Not Acceptable Here", "no SDP offer", -EPROTO);
  if (!sip->sip_contact)
    return reject(d, name, 400, "Bad Request", "no Contact", -EPROTO);
  r = sdp_webrtc_parse(sip->sip_payload->pl_data, sip->sip_payload->pl_len, &offer, &why);
  if (r < 0)
    return reject(d, name, 488, "Not Acceptable Here", why, r);
  if (dtls_fingerprint_check(offer->fingerprint) < 0) {
    sdp_webrtc_free(offer);
    return reject(d, name, 488, "Not Acceptable Here", "unusable a=fingerprint (hash function)",
                  -ENOTSUP);
  }
  codec = choose_codec(offer);
  setup = sdp_webrtc_answer_setup(offer);
  if (!codec || setup == SDP_SETUP_NONE || !offer->rtcp_mux) {
    sdp_webrtc_free(offer);
    return reject(d, name, 488, "Not Acceptable Here",
                  !codec ? "no supported audio codec" :
                  setup == SDP_SETUP_NONE ? "no DTLS role" : "no rtcp-mux", -ENOTSUP);
  }

  c = g_new0(echo_call, 1);
  c->id = id;
  c->engine = engine;
  memcpy(c->name, name, sizeof name);
  c->dialog = d;
  c->offer = offer;
  c->codec = *codec;
  c->state = CALL_IDLE;
  c->started_at = g_get_monotonic_time();
  if (cb)
    c->cb = *cb;
  c->user = user;

  static const browser_leg_callbacks lcb = {
    .on_gathered = on_leg_gathered,
    .on_ready = on_leg_ready,
    .on_failed = on_leg_failed,
  };
  c->media_timeout_ms = cfg->media_timeout * 1000u;
  browser_leg_settings ls = {
    .role = setup == SDP_SETUP_ACTIVE ? DTLS_ROLE_CLIENT : DTLS_ROLE_SERVER,
    .peer_fingerprint = offer->fingerprint,
    .ice = { .controlling = false, .log_id = c->name },
  };
  ice_config_init(&ic, cfg);
  ice_config_apply(&ic, &ls.ice);
  r = browser_leg_new(id, &ls, &lcb, c, &c->leg);
  ice_config_clear(&ic);
  if (r == 0)
    r = ice_agent_gather(browser_leg_ice(c->leg));
  if (r < 0) {
    log_id(c->name, LOG_WARNING, "cannot start the browser's media: %s", g_strerror(-r));
    browser_leg_free(c->leg);
    c->leg = NULL;
    c->dialog = NULL;
    sdp_webrtc_free(offer);
    g_free(c);
    return reject(d, name, 503, "Service Unavailable", "no media ports", r);
  }
  {
    g_autofree char *why_state = g_strdup_printf("gathering; %s/%u pt %u, DTLS %s", codec->name,
                                                 codec->rate, codec->pt,
                                                 setup == SDP_SETUP_ACTIVE ? "client" : "server");
    set_state(c, CALL_TO_PBX_TRYING, why_state);
  }
  *ret = c;
  return 0;
}

void echo_call_free(echo_call *c)
{
  if (!c)
    return;
  if (c->release_idle)
    g_source_remove(c->release_idle);
  if (c->close_grace)
    g_source_remove(c->close_grace);
  call_media_free(c->media, NULL);
  browser_leg_free(c->leg);
  sdp_webrtc_free(c->offer);
  browser_dialog_free(c->dialog);
  g_free(c);
}

bool echo_call_matches(const echo_call *c, uint64_t flow, msg_t *request)
{
  return browser_dialog_matches(c->dialog, flow, request);
}

void echo_call_on_request(echo_call *c, msg_t *request)
{
  sip_t *sip = sip_object(request);
  sip_method_t method = sip->sip_request->rq_method;

  switch (method) {
  case sip_method_ack:
    if (c->state == CALL_CONFIRMED)
      log_id(c->name, LOG_DEBUG, "ACK");
    break;
  case sip_method_bye:
    browser_dialog_reply(c->dialog, request, 200, "OK");
    end_call(c, "BYE from the browser", 0, NULL, false);
    break;
  case sip_method_cancel:
    browser_dialog_reply(c->dialog, request, 200, "OK");
    if (!browser_dialog_answered(c->dialog))
      end_call(c, "CANCEL from the browser", 487, "Request Terminated", false);
    break;
  case sip_method_info:
    browser_dialog_reply(c->dialog, request, 200, "OK");
    break;
  case sip_method_invite:
    browser_dialog_reply(c->dialog, request, 488, "Not Acceptable Here");
    break;
  default:
    browser_dialog_reply(c->dialog, request, 405, "Method Not Allowed");
    break;
  }
  msg_destroy(request);
}

void echo_call_on_ws_closed(echo_call *c)
{
  end_call(c, "WebSocket closed", 0, NULL, false);
}

void echo_call_shutdown(echo_call *c)
{
  end_call(c, "shutdown", 503, "Service Unavailable", true);
}

uint64_t echo_call_flow(const echo_call *c) { return browser_dialog_flow(c->dialog); }
const char *echo_call_name(const echo_call *c) { return c->name; }
