/* The middle of a call: new offers from either side (re-INVITE, UPDATE:
 * hold and resume, session refreshes, ICE restart) and DTMF.
 *
 * An offer that changes what the other side gets (a direction: hold,
 * resume) crosses to it (BROWSER_REOFFER, PBX_REOFFER) and is answered when
 * the other side answers; one that changes nothing there (a refresh, an ICE
 * restart, a new PBX media address) is answered here (BROWSER_REFRESH,
 * PBX_REFRESH).  Which row runs is the table's (call_fsm.c); this file
 * classifies what came in and carries the mid-call actions out.  Each side
 * has one offer pending at a time; UPDATE_MEDIA makes the pending offer and
 * the answer to it the current SDPs and applies them to the media: which
 * way media may go (a side that does not receive gets nothing), the PBX's
 * address, the payload types, the browser's new ICE credentials.
 *
 * DTMF: SIP INFO (application/dtmf-relay, application/dtmf) and RFC 4733
 * events are turned into each other as [media] dtmf_to_pbx and
 * dtmf_to_browser say.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "config/log.h"
#include "gateway/call_internal.h"

/* ---- directions ---- */

static bool sends(sdp_dir d) { return d & SDP_DIR_SENDONLY; }
static bool receives(sdp_dir d) { return d & SDP_DIR_RECVONLY; }

/* Media goes to a side only when the other sends and it receives, each as
 * its own current SDP says (c=0.0.0.0 counts as not receiving). */
static void apply_directions(call *c)
{
  bool to_pbx, to_browser;

  if (!c->media || !c->browser_sdp || !c->pbx_sdp)
    return;
  to_pbx = sends(c->browser_sdp->dir) && receives(c->pbx_sdp->dir);
  to_browser = sends(c->pbx_sdp->dir) && receives(c->browser_sdp->dir);
  media_call_set_sending(call_media_call(c->media), true, to_pbx);
  media_call_set_sending(call_media_call(c->media), false, to_browser);
  log_id(c->name, LOG_INFO, "media: browser %s, PBX %s: to the PBX %s, to the browser %s",
         sdp_dir_name(c->browser_sdp->dir), sdp_dir_name(c->pbx_sdp->dir),
         to_pbx ? "flows" : "held", to_browser ? "flows" : "held");
}

/* ---- DTMF ---- */

static bool is_te(const sdp_codec *k)
{
  return g_ascii_strcasecmp(k->name, "telephone-event") == 0;
}

/* The clock rate of the audio codec in use: the first of the PBX's SDP
 * (the browser's answer lists the PBX's codecs in the PBX's order). */
static unsigned audio_rate(const sdp_plain *p)
{
  for (unsigned i = 0; i < p->n_codecs; i++)
    if (!is_te(&p->codecs[i]))
      return p->codecs[i].rate;
  return 8000;
}

/* The telephone-event among CODECS at RATE (else the first one): its
 * payload type and rate, -1 when none. */
static int telephone_event(const sdp_codec *codecs, unsigned n, unsigned want, unsigned *rate)
{
  int pt = -1;

  for (unsigned i = 0; i < n; i++)
    if (is_te(&codecs[i]) && (pt < 0 || codecs[i].rate == want)) {
      pt = codecs[i].pt;
      *rate = codecs[i].rate;
      if (codecs[i].rate == want)
        break;
    }
  return pt;
}

static void apply_dtmf(call *c)
{
  media_bridge_dtmf_settings s = { .browser_pt = -1, .pbx_pt = -1 };

  if (!c->media || !c->browser_sdp || !c->pbx_sdp)
    return;
  unsigned rate = audio_rate(c->pbx_sdp);

  s.browser_pt = telephone_event(c->browser_sdp->codecs, c->browser_sdp->n_codecs, rate,
                                 &s.browser_rate);
  s.pbx_pt = telephone_event(c->pbx_sdp->codecs, c->pbx_sdp->n_codecs, rate, &s.pbx_rate);
  media_call_set_dtmf(call_media_call(c->media), &s);
  /* events become INFO on the way to a side that wants INFO */
  media_call_forward_dtmf(call_media_call(c->media), true, c->dtmf_to_pbx == DTMF_RFC4733);
  media_call_forward_dtmf(call_media_call(c->media), false, c->dtmf_to_browser == DTMF_RFC4733);
}

void call_midcall_media_started(call *c)
{
  apply_dtmf(c);
  apply_directions(c);
}

/* "Signal=5\r\nDuration=160" (application/dtmf-relay) or "5"
 * (application/dtmf): the digit and its duration in ms (0: not given). */
static bool dtmf_of_info(msg_t *msg, char *digit, unsigned *duration)
{
  sip_t *sip = sip_object(msg);
  g_autofree char *body = NULL;
  const char *type;

  if (!sip->sip_payload || !sip->sip_content_type || !sip->sip_content_type->c_type)
    return false;
  type = sip->sip_content_type->c_type;
  body = g_strndup(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
  *digit = 0;
  *duration = 0;
  if (g_ascii_strcasecmp(type, "application/dtmf") == 0) {
    g_strstrip(body);
    *digit = body[0];
  } else if (g_ascii_strcasecmp(type, "application/dtmf-relay") == 0) {
    g_auto(GStrv) lines = g_strsplit_set(body, "\r\n", -1);
    for (char **l = lines; *l; l++) {
      g_auto(GStrv) kv = g_strsplit(*l, "=", 2);
      if (!kv[0] || !kv[1])
        continue;
      g_strstrip(kv[0]);
      g_strstrip(kv[1]);
      if (g_ascii_strcasecmp(kv[0], "Signal") == 0)
        *digit = kv[1][0];
      else if (g_ascii_strcasecmp(kv[0], "Duration") == 0)
        *duration = (unsigned)g_ascii_strtoull(kv[1], NULL, 10);
    }
  } else {
    return false;
  }
  *digit = g_ascii_toupper(*digit);
  return (*digit >= '0' && *digit <= '9') || *digit == '*' || *digit == '#' ||
         (*digit >= 'A' && *digit <= 'D');
}

static char *dtmf_relay_body(char digit, unsigned duration)
{
  return g_strdup_printf("Signal=%c\r\nDuration=%u\r\n", digit, duration ? duration : 100);
}

/* A digit for the PBX, as it wants it. */
static int dtmf_to_pbx(call *c, char digit, unsigned duration)
{
  if (c->dtmf_to_pbx == DTMF_RFC4733)
    return c->media ? media_call_send_dtmf(call_media_call(c->media), true, digit, duration) : -ENOTCONN;
  g_autofree char *body = dtmf_relay_body(digit, duration);
  return pbx_dialog_send_request(c->pd, "INFO", "application/dtmf-relay", body, NULL);
}

/* A digit for the browser, as it wants it. */
static int dtmf_to_browser(call *c, char digit, unsigned duration)
{
  uint32_t cseq;

  if (c->dtmf_to_browser == DTMF_RFC4733)
    return c->media ? media_call_send_dtmf(call_media_call(c->media), false, digit, duration) : -ENOTCONN;
  g_autofree char *body = dtmf_relay_body(digit, duration);
  return browser_dialog_send_request(c->bd, "INFO", "application/dtmf-relay", body, NULL, &cseq);
}

static void dtmf_event(call *c, call_event ev, char digit, unsigned duration)
{
  c->dtmf_digit = digit;
  c->dtmf_duration = duration;
  call_dispatch(c, ev, 0, NULL);
}

/* From the bridge: a telephone-event ended.  Those forwarded as they are
 * need nothing more; the others are to become INFO. */
void call_midcall_on_dtmf(void *user, bool from_browser, char digit, unsigned duration_ms)
{
  call *c = user;

  if (from_browser && c->dtmf_to_pbx == DTMF_INFO)
    dtmf_event(c, CALL_EV_BROWSER_DTMF, digit, duration_ms);
  else if (!from_browser && c->dtmf_to_browser == DTMF_INFO)
    dtmf_event(c, CALL_EV_PBX_DTMF, digit, duration_ms);
}

static void act_dtmf(call *c, bool to_pbx)
{
  int r = to_pbx ? dtmf_to_pbx(c, c->dtmf_digit, c->dtmf_duration)
                 : dtmf_to_browser(c, c->dtmf_digit, c->dtmf_duration);

  log_id(c->name, LOG_INFO, "DTMF %c to the %s as %s%s", c->dtmf_digit, to_pbx ? "PBX" : "browser",
         dtmf_mode_name(to_pbx ? c->dtmf_to_pbx : c->dtmf_to_browser),
         r < 0 ? " (not sent)" : "");
}

static void browser_info(call *c, msg_t *request)
{
  char digit;
  unsigned duration;

  if (dtmf_of_info(request, &digit, &duration))
    dtmf_event(c, CALL_EV_BROWSER_DTMF, digit, duration);
  browser_dialog_reply(c->bd, request, 200, "OK");
}

/* ---- transfer: REFER and its NOTIFYs cross as they are ---- */

/* "Name: value\r\n" for each of the headers of MSG that a REFER or NOTIFY
 * carries across (Sofia prints each value), but for the one named BUT. */
static char *transfer_headers_but(msg_t *msg, const char *but)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  sip_t *sip = sip_object(msg);
  GString *out = g_string_new(NULL);
  const struct { const char *name; const sip_header_t *h; } hs[] = {
    { "Refer-To", (const sip_header_t *)sip->sip_refer_to },
    { "Referred-By", (const sip_header_t *)sip->sip_referred_by },
    { "Event", (const sip_header_t *)sip->sip_event },
    { "Subscription-State", (const sip_header_t *)sip->sip_subscription_state },
  };

  for (size_t i = 0; i < G_N_ELEMENTS(hs); i++) {
    char *v = hs[i].h && g_strcmp0(hs[i].name, but) != 0 ? sip_header_as_string(home, hs[i].h)
                                                          : NULL;
    if (v)
      g_string_append_printf(out, "%s: %s\r\n", hs[i].name, v);
  }
  su_home_deinit(home);
  return g_string_free(out, out->len == 0);
}

static char *transfer_headers(msg_t *msg)
{
  return transfer_headers_but(msg, NULL);
}

/* A REFER's Refer-To whose URI carries ?Replaces= naming another call's
 * browser dialog (attended transfer): the same URI with that call's PBX
 * dialog in the Replaces instead (to-tag: the PBX's, which is the local tag
 * of whoever receives the Replaces, RFC 3891), as a Refer-To value.  NULL:
 * no Replaces, keep the Refer-To as it is.  *unknown: it names no call of
 * this browser's. */
static char *refer_to_for_pbx(call *c, msg_t *rq, bool *unknown)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  sip_t *sip = sip_object(rq);
  msg_t *tmp = NULL;
  const sip_replaces_t *rp;
  const char *cid, *local, *remote;
  char *hdrs, *esc, *out = NULL;
  g_autofree char *value = NULL;
  call *other;
  url_t *u;

  *unknown = false;
  if (!sip->sip_refer_to || !sip->sip_refer_to->r_url->url_headers)
    return NULL;
  /* the URI's headers, parsed as headers by Sofia */
  hdrs = url_query_as_header_string(home, sip->sip_refer_to->r_url->url_headers);
  tmp = msg_create(sip_default_mclass(), 0);
  if (!hdrs || !tmp || sip_add_tl(tmp, sip_object(tmp), SIPTAG_HEADER_STR(hdrs), TAG_END()) < 0 ||
      !(rp = sip_object(tmp)->sip_replaces))
    goto done;
  other = c->find_by_browser_dialog
    ? c->find_by_browser_dialog(c->find_user, rp->rp_call_id, rp->rp_to_tag, rp->rp_from_tag)
    : NULL;
  /* only a call of the same browser (WebSocket), never someone else's */
  if (!other || other->flow != c->flow || !call_pbx_dialog_ids(other, &cid, &local, &remote)) {
    *unknown = true;
    goto done;
  }
  value = g_strdup_printf("%s;to-tag=%s;from-tag=%s", cid, remote, local);
  esc = su_alloc(home, url_esclen(value, ";=?&@%") + 1);
  u = url_hdup(home, sip->sip_refer_to->r_url);
  if (!esc || !u)
    goto done;
  url_escape(esc, value, ";=?&@%");
  u->url_headers = su_sprintf(home, "Replaces=%s", esc);
  out = g_strdup_printf("<%s>", url_as_string(home, u));
  log_id(c->name, LOG_INFO, "REFER with Replaces: %s as the PBX knows it", call_name(other));
done:
  if (tmp)
    msg_destroy(tmp);
  su_home_deinit(home);
  return out;
}

static bool body_of(msg_t *msg, char **type, char **body)
{
  sip_t *sip = sip_object(msg);

  *type = *body = NULL;
  if (!sip->sip_payload || !sip->sip_payload->pl_len || !sip->sip_content_type)
    return false;
  /* the whole value: message/sipfrag;version=2.0 keeps its parameter */
  {
    su_home_t home[1] = { SU_HOME_INIT(home) };
    char *v = sip_header_as_string(home, (const sip_header_t *)sip->sip_content_type);
    *type = g_strdup(v ? v : sip->sip_content_type->c_type);
    su_home_deinit(home);
  }
  *body = g_strndup(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
  return true;
}

static void act_relay_to_pbx(call *c)
{
  msg_t *rq = c->ev_transfer;
  sip_t *sip = rq ? sip_object(rq) : NULL;
  g_autofree char *extra = NULL, *type = NULL, *body = NULL;
  bool refer;
  int r;

  if (!rq)
    return;
  refer = sip->sip_request->rq_method == sip_method_refer;
  c->ev_transfer_taken = true;
  if (refer && c->browser_refer_rq) {
    browser_dialog_reply_full(c->bd, rq, 491, "Request Pending", NULL, NULL);
    return;
  }
  extra = transfer_headers(rq);
  if (refer) {
    bool unknown;
    g_autofree char *refer_to = refer_to_for_pbx(c, rq, &unknown);
    if (unknown) {
      browser_dialog_reply_full(c->bd, rq, 400, "Bad Request", NULL,
                                "Warning: 399 rtcsipd \"Replaces names no call here\"\r\n");
      return;
    }
    if (refer_to) {
      /* the other headers as they were, the Refer-To rewritten */
      g_autofree char *rest = transfer_headers_but(rq, "Refer-To");
      g_free(extra);
      extra = g_strdup_printf("Refer-To: %s\r\n%s", refer_to, rest ? rest : "");
    }
  }
  body_of(rq, &type, &body);
  r = pbx_dialog_send_request(c->pd, sip->sip_request->rq_method_name, type, body, extra);
  log_id(c->name, LOG_INFO, "%s from the browser relayed to the PBX%s",
         sip->sip_request->rq_method_name, r < 0 ? ": not sent" : "");
  if (r < 0)
    browser_dialog_reply_full(c->bd, rq, 500, "Server Internal Error", NULL, NULL);
  else if (refer)
    c->browser_refer_rq = msg_ref_create(rq); /* answered with the PBX's answer */
  else
    browser_dialog_reply_full(c->bd, rq, 200, "OK", NULL, NULL);
}

static void act_relay_to_browser(call *c)
{
  msg_t *rq = c->ev_transfer;
  sip_t *sip = rq ? sip_object(rq) : NULL;
  g_autofree char *extra = NULL, *type = NULL, *body = NULL;
  uint32_t cseq;
  int r;

  if (!rq)
    return;
  extra = transfer_headers(rq);
  body_of(rq, &type, &body);
  r = browser_dialog_send_request(c->bd, sip->sip_request->rq_method_name, type, body, extra, &cseq);
  log_id(c->name, LOG_INFO, "%s from the PBX relayed to the browser%s",
         sip->sip_request->rq_method_name, r < 0 ? ": not sent" : "");
  c->ev_transfer_taken = r == 0;
}

void call_midcall_on_request_response(void *user, const char *method, int status, msg_t *response)
{
  call *c = user;
  sip_t *sip = response ? sip_object(response) : NULL;

  if (g_ascii_strcasecmp(method, "REFER") != 0 || !c->browser_refer_rq)
    return;
  browser_dialog_reply_full(c->bd, c->browser_refer_rq, status,
                            sip && sip->sip_status ? sip->sip_status->st_phrase
                                                   : call_phrase_for(status), NULL, NULL);
  g_clear_pointer(&c->browser_refer_rq, msg_destroy);
}

static void browser_transfer(call *c, msg_t *request)
{
  c->ev_transfer = request;
  c->ev_transfer_taken = false;
  call_dispatch(c, CALL_EV_BROWSER_TRANSFER, 0, NULL);
  if (!c->ev_transfer_taken)
    browser_dialog_reply_full(c->bd, request, 403, "Forbidden", NULL, NULL);
  c->ev_transfer = NULL;
}

int call_midcall_pbx_request(call *c, msg_t *request)
{
  sip_t *sip = sip_object(request);
  char digit;
  unsigned duration;

  if (sip->sip_request->rq_method == sip_method_info) {
    if (dtmf_of_info(request, &digit, &duration))
      dtmf_event(c, CALL_EV_PBX_DTMF, digit, duration);
    return 200;
  }
  c->ev_transfer = request;
  c->ev_transfer_taken = false;
  call_dispatch(c, CALL_EV_PBX_TRANSFER, 0, NULL);
  c->ev_transfer = NULL;
  if (!c->ev_transfer_taken)
    return 403;
  return sip->sip_request->rq_method == sip_method_refer ? 202 : 200;
}

/* ---- the SDPs each side gets ---- */

/* rtcsipd's WebRTC answer to the browser's current offer. */
static int browser_answer(call *c, char **out, const char **why)
{
  g_auto(GStrv) cands = ice_agent_local_candidates(browser_leg_ice(c->leg));
  sdp_webrtc_local local;
  char address[64];

  c->webrtc_version++;
  if (call_webrtc_local(c, cands, address, sizeof address, &local) < 0) {
    *why = "no local ICE candidate";
    return -EADDRNOTAVAIL;
  }
  return sdp_webrtc_answer_from_plain(c->browser_sdp, c->pbx_sdp, &local, out, why);
}

/* ---- actions ---- */

static void drop_browser_offer(call *c)
{
  g_clear_pointer(&c->browser_offer_rq, msg_destroy);
  g_clear_pointer(&c->browser_offer_sdp, sdp_webrtc_free);
  c->ice_restart = false;
}

static void drop_pbx_offer(call *c)
{
  c->pbx_offer_rq = NULL;
  g_clear_pointer(&c->pbx_offer_sdp, sdp_plain_free);
}

/* The pending offer and its answer become the current SDPs; the media
 * follows them. */
static void act_update_media(call *c)
{
  if (c->pbx_answer_sdp && c->browser_offer_sdp) { /* the browser's offer, answered by the PBX */
    sdp_webrtc_free(c->browser_sdp);
    c->browser_sdp = g_steal_pointer(&c->browser_offer_sdp);
    sdp_plain_free(c->pbx_sdp);
    c->pbx_sdp = g_steal_pointer(&c->pbx_answer_sdp);
  } else if (c->browser_answer_sdp && c->pbx_offer_sdp) { /* the PBX's, answered by the browser */
    sdp_plain_free(c->pbx_sdp);
    c->pbx_sdp = g_steal_pointer(&c->pbx_offer_sdp);
    sdp_webrtc_free(c->browser_sdp);
    c->browser_sdp = g_steal_pointer(&c->browser_answer_sdp);
  } else if (c->browser_offer_sdp) { /* answered here */
    sdp_webrtc_free(c->browser_sdp);
    c->browser_sdp = g_steal_pointer(&c->browser_offer_sdp);
  } else if (c->pbx_offer_sdp) {
    sdp_plain_free(c->pbx_sdp);
    c->pbx_sdp = g_steal_pointer(&c->pbx_offer_sdp);
  }
  if (c->ice_restart) {
    /* new credentials both ways; DTLS and SRTP go on over the new pair */
    c->ice_restart = false;
    c->remote_ice_set = false;
    if (c->media)
      call_media_ice_restart(c->media); /* libnice carries the pair until it is connected again */
    /* the browser offered the restart: it controls the new ICE session,
     * also in a call the PBX placed (where rtcsipd controlled the first) */
    if (ice_agent_restart(browser_leg_ice(c->leg), false) < 0 || call_set_remote_ice(c) < 0)
      log_id(c->name, LOG_WARNING, "ICE restart failed");
    else
      log_id(c->name, LOG_INFO, "ICE restart: new credentials both ways");
  }
  call_apply_pbx_address(c);
  call_apply_pt_map(c);
  apply_dtmf(c);
  apply_directions(c);
}

static void act_reoffer_pbx(call *c)
{
  g_autofree char *offer = NULL;
  sdp_plain_local local;
  const char *why = "?";
  int r;

  c->plain_version++;
  local = call_plain_local(c);
  r = sdp_plain_offer_from_webrtc(c->browser_offer_sdp, &local, &offer, &why);
  if (r < 0) {
    log_id(c->name, LOG_NOTICE, "the browser's new offer cannot go to the PBX: %s", why);
    call_dispatch(c, CALL_EV_PBX_REOFFER_REJECT, 488, "Not Acceptable Here");
    return;
  }
  r = pbx_dialog_send_offer(c->pd, offer);
  if (r < 0) {
    call_dispatch(c, CALL_EV_PBX_REOFFER_REJECT, r == -EBUSY ? 491 : 500,
                  r == -EBUSY ? "Request Pending" : "Server Internal Error");
    return;
  }
  log_id(c->name, LOG_INFO, "the browser's new offer (%s) sent to the PBX",
         sdp_dir_name(c->browser_offer_sdp->dir));
}

static void act_reoffer_browser(call *c)
{
  g_auto(GStrv) cands = ice_agent_local_candidates(browser_leg_ice(c->leg));
  g_autofree char *offer = NULL;
  sdp_webrtc_local local;
  char address[64];
  const char *why = "?";
  uint32_t cseq;
  int r;

  c->webrtc_version++;
  if (call_webrtc_local(c, cands, address, sizeof address, &local) < 0 ||
      sdp_webrtc_offer_from_plain(c->pbx_offer_sdp, &local, NULL, &offer, &why) < 0) {
    log_id(c->name, LOG_NOTICE, "the PBX's new offer cannot go to the browser: %s", why);
    call_dispatch(c, CALL_EV_BROWSER_REOFFER_REJECT, 488, "Not Acceptable Here");
    return;
  }
  r = browser_dialog_send_request(c->bd, "INVITE", "application/sdp", offer, NULL, &cseq);
  if (r < 0) {
    call_dispatch(c, CALL_EV_BROWSER_REOFFER_REJECT, r == -EBUSY ? 491 : 500,
                  r == -EBUSY ? "Request Pending" : "Server Internal Error");
    return;
  }
  log_id(c->name, LOG_INFO, "the PBX's new offer (%s) sent to the browser",
         sdp_dir_name(c->pbx_offer_sdp->dir));
}

static void act_answer_reoffer_browser(call *c)
{
  g_autofree char *answer = NULL;
  const char *why = "?";

  if (!c->browser_offer_rq)
    return;
  if (browser_answer(c, &answer, &why) < 0) {
    log_id(c->name, LOG_WARNING, "cannot answer the browser's new offer: %s", why);
    browser_dialog_reply_full(c->bd, c->browser_offer_rq, 488, "Not Acceptable Here", NULL, NULL);
  } else {
    browser_dialog_reply_full(c->bd, c->browser_offer_rq, 200, "OK", answer, NULL);
  }
  drop_browser_offer(c);
}

static void act_answer_reoffer_pbx(call *c)
{
  g_autofree char *answer = NULL;
  sdp_plain_local local;
  const char *why = "?";

  if (!c->pbx_offer_rq)
    return;
  c->plain_version++;
  local = call_plain_local(c);
  if (sdp_plain_answer_from_webrtc(c->pbx_sdp, c->browser_sdp, &local, &answer, &why) < 0) {
    log_id(c->name, LOG_WARNING, "cannot answer the PBX's new offer: %s", why);
    pbx_dialog_answer_offer(c->pd, c->pbx_offer_rq, 488, "Not Acceptable Here", NULL);
  } else {
    pbx_dialog_answer_offer(c->pd, c->pbx_offer_rq, 200, "OK", answer);
  }
  drop_pbx_offer(c);
}

static void act_reject_reoffer_browser(call *c, uint16_t status)
{
  if (c->browser_offer_rq)
    browser_dialog_reply_full(c->bd, c->browser_offer_rq, status ? status : c->ev_status,
                              status ? call_phrase_for(status) : c->ev_phrase, NULL, NULL);
  drop_browser_offer(c);
  g_clear_pointer(&c->pbx_answer_sdp, sdp_plain_free);
}

static void act_reject_reoffer_pbx(call *c, uint16_t status)
{
  if (c->pbx_offer_rq)
    pbx_dialog_answer_offer(c->pd, c->pbx_offer_rq, status ? status : c->ev_status,
                            status ? call_phrase_for(status) : c->ev_phrase, NULL);
  drop_pbx_offer(c);
  g_clear_pointer(&c->browser_answer_sdp, sdp_webrtc_free);
}

void call_midcall_actions(call *c, uint32_t a, uint16_t status)
{
  if (a & CALL_ACT_UPDATE_MEDIA)
    act_update_media(c);
  if (a & CALL_ACT_REOFFER_PBX)
    act_reoffer_pbx(c);
  if (a & CALL_ACT_REOFFER_BROWSER)
    act_reoffer_browser(c);
  if (a & CALL_ACT_ANSWER_REOFFER_BROWSER)
    act_answer_reoffer_browser(c);
  if (a & CALL_ACT_ANSWER_REOFFER_PBX)
    act_answer_reoffer_pbx(c);
  if (a & CALL_ACT_REJECT_REOFFER_BROWSER)
    act_reject_reoffer_browser(c, status);
  if (a & CALL_ACT_REJECT_REOFFER_PBX)
    act_reject_reoffer_pbx(c, status);
  if (a & CALL_ACT_DTMF_TO_PBX)
    act_dtmf(c, true);
  if (a & CALL_ACT_DTMF_TO_BROWSER)
    act_dtmf(c, false);
  if (a & CALL_ACT_RELAY_TO_PBX)
    act_relay_to_pbx(c);
  if (a & CALL_ACT_RELAY_TO_BROWSER)
    act_relay_to_browser(c);
}

/* ---- what comes in ---- */

static bool in_call(const call *c)
{
  return c->state == CALL_CONFIRMED || c->state == CALL_REOFFER_TO_PBX ||
         c->state == CALL_REOFFER_TO_BROWSER;
}

/* A re-INVITE or UPDATE from the browser. */
static void browser_offer(call *c, msg_t *request)
{
  sip_t *sip = sip_object(request);
  bool is_invite = sip->sip_request->rq_method == sip_method_invite;
  sdp_webrtc *w = NULL;
  const char *text, *why = "?";
  size_t len;

  if (!in_call(c) || !c->browser_sdp) {
    browser_dialog_reply_full(c->bd, request, is_invite ? 491 : 488,
                              is_invite ? "Request Pending" : "Not Acceptable Here", NULL, NULL);
    msg_destroy(request);
    return;
  }
  if (c->browser_offer_rq) { /* one at a time */
    browser_dialog_reply_full(c->bd, request, 491, "Request Pending", NULL, NULL);
    msg_destroy(request);
    return;
  }
  if (!call_has_sdp(request, &text, &len)) {
    /* a refresh without SDP: UPDATE gets 200; a re-INVITE gets rtcsipd's
     * current SDP as an offer, and the browser's answer in the ACK changes
     * nothing here */
    g_autofree char *sdp = NULL;
    if (is_invite && browser_answer(c, &sdp, &why) < 0)
      browser_dialog_reply_full(c->bd, request, 500, "Server Internal Error", NULL, NULL);
    else
      browser_dialog_reply_full(c->bd, request, 200, "OK", sdp, NULL);
    msg_destroy(request);
    return;
  }
  if (sdp_webrtc_parse(text, len, &w, &why) < 0) {
    log_id(c->name, LOG_NOTICE, "the browser's new offer is not usable: %s", why);
    browser_dialog_reply_full(c->bd, request, 488, "Not Acceptable Here", NULL, NULL);
    msg_destroy(request);
    return;
  }
  c->browser_offer_rq = request;
  c->browser_offer_sdp = w;
  c->ice_restart = strcmp(w->ice_ufrag, c->browser_sdp->ice_ufrag) != 0 ||
                   strcmp(w->ice_pwd, c->browser_sdp->ice_pwd) != 0;
  /* what the PBX gets changes with the direction; ICE is the browser's side only */
  call_dispatch(c, w->dir != c->browser_sdp->dir ? CALL_EV_BROWSER_REOFFER
                                                 : CALL_EV_BROWSER_REFRESH, 0, NULL);
  if (c->browser_offer_rq == request && c->state != CALL_REOFFER_TO_PBX) {
    /* the table took no action on it */
    browser_dialog_reply_full(c->bd, request, 491, "Request Pending", NULL, NULL);
    drop_browser_offer(c);
  }
}

bool call_midcall_browser_request(call *c, msg_t *request)
{
  sip_t *sip = sip_object(request);

  switch (sip->sip_request->rq_method) {
  case sip_method_info:
    browser_info(c, request);
    msg_destroy(request);
    return true;
  case sip_method_invite:
  case sip_method_update:
    browser_offer(c, request);
    return true;
  case sip_method_refer:
  case sip_method_notify:
    browser_transfer(c, request);
    msg_destroy(request);
    return true;
  default:
    return false;
  }
}

void call_midcall_browser_response(call *c, int status, msg_t *response)
{
  const char *text, *why = "no SDP";
  size_t len;
  sdp_webrtc *w = NULL;

  if (status >= 200 && status < 300) {
    if (!call_has_sdp(response, &text, &len) || sdp_webrtc_parse(text, len, &w, &why) < 0) {
      log_id(c->name, LOG_NOTICE, "the browser's answer to the new offer is not usable: %s", why);
      call_dispatch(c, CALL_EV_BROWSER_REOFFER_REJECT, 488, "Not Acceptable Here");
      return;
    }
    sdp_webrtc_free(c->browser_answer_sdp);
    c->browser_answer_sdp = w;
    call_dispatch_response(c, CALL_EV_BROWSER_REOFFER_ANSWER, status, response);
  } else {
    call_dispatch_response(c, CALL_EV_BROWSER_REOFFER_REJECT, status, response);
  }
}

/* ---- the PBX's side ---- */

void call_midcall_on_offer(void *user, pbx_dialog_rq *rq, msg_t *request)
{
  call *c = user;
  sdp_plain *p = NULL;
  const char *text, *why = "?";
  size_t len;
  bool changes_browser;

  if ((!in_call(c) && c->state != CALL_TO_PBX_EARLY) || c->pbx_offer_rq) {
    pbx_dialog_answer_offer(c->pd, rq, 491, "Request Pending", NULL);
    return;
  }
  if (!call_has_sdp(request, &text, &len)) {
    /* no SDP: rtcsipd offers its current SDP in the 200, the answer comes in
     * the ACK (on_ack_sdp) */
    if (!c->pbx_sdp || !c->browser_sdp) {
      pbx_dialog_answer_offer(c->pd, rq, 488, "Not Acceptable Here", NULL);
      return;
    }
    g_autofree char *offer = NULL;
    sdp_plain_local local = call_plain_local(c);
    if (sdp_plain_answer_from_webrtc(c->pbx_sdp, c->browser_sdp, &local, &offer, &why) < 0)
      pbx_dialog_answer_offer(c->pd, rq, 488, "Not Acceptable Here", NULL);
    else
      pbx_dialog_answer_offer(c->pd, rq, 200, "OK", offer);
    return;
  }
  if (sdp_plain_parse(text, len, &p, &why) < 0) {
    log_id(c->name, LOG_NOTICE, "the PBX's new offer is not usable: %s", why);
    pbx_dialog_answer_offer(c->pd, rq, 488, "Not Acceptable Here", NULL);
    return;
  }
  changes_browser = c->pbx_sdp && p->dir != c->pbx_sdp->dir;
  c->pbx_offer_rq = rq;
  c->pbx_offer_sdp = p;
  call_dispatch(c, changes_browser ? CALL_EV_PBX_REOFFER : CALL_EV_PBX_REFRESH, 0, NULL);
  if (c->pbx_offer_rq == rq && c->state != CALL_REOFFER_TO_BROWSER) {
    pbx_dialog_answer_offer(c->pd, rq, 491, "Request Pending", NULL);
    drop_pbx_offer(c);
  }
}

void call_midcall_on_offer_response(void *user, int status, msg_t *response)
{
  call *c = user;
  const char *text, *why = "no SDP";
  size_t len;
  sdp_plain *p = NULL;

  if (status >= 200 && status < 300) {
    if (!response || !call_has_sdp(response, &text, &len) || sdp_plain_parse(text, len, &p, &why) < 0) {
      log_id(c->name, LOG_NOTICE, "the PBX's answer to the new offer is not usable: %s", why);
      call_dispatch(c, CALL_EV_PBX_REOFFER_REJECT, 488, "Not Acceptable Here");
      return;
    }
    sdp_plain_free(c->pbx_answer_sdp);
    c->pbx_answer_sdp = p;
    call_dispatch_response(c, CALL_EV_PBX_REOFFER_ANSWER, status, response);
  } else {
    call_dispatch_response(c, CALL_EV_PBX_REOFFER_REJECT, status, response);
  }
}

void call_midcall_on_session_expired(void *user, const char *why)
{
  call *c = user;

  log_id(c->name, LOG_NOTICE, "session timer with the PBX: %s", why);
  g_strlcpy(c->media_why, why, sizeof c->media_why);
  call_dispatch(c, CALL_EV_SESSION_EXPIRED, 0, NULL);
}

void call_midcall_on_ack_sdp(void *user, msg_t *ack)
{
  call *c = user;
  const char *text, *why = "?";
  size_t len;
  sdp_plain *p = NULL;

  /* the answer to the offer rtcsipd put in its 200 to a re-INVITE without SDP */
  if (!call_has_sdp(ack, &text, &len) || sdp_plain_parse(text, len, &p, &why) < 0)
    return;
  sdp_plain_free(c->pbx_sdp);
  c->pbx_sdp = p;
  call_apply_pbx_address(c);
  call_apply_pt_map(c);
  apply_directions(c);
}

void call_midcall_clear(call *c)
{
  g_clear_pointer(&c->browser_refer_rq, msg_destroy);
  drop_browser_offer(c);
  drop_pbx_offer(c);
  g_clear_pointer(&c->browser_answer_sdp, sdp_webrtc_free);
  g_clear_pointer(&c->pbx_answer_sdp, sdp_plain_free);
}
