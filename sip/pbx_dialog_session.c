/* What happens in a confirmed INVITE dialog with the PBX (the dialog
 * itself, on nta legs: pbx_dialog.c).  See pbx_dialog.h.
 *
 * Here: RFC 4028 session timers (the refresher role, the refreshes, the
 * expiry); offers in the dialog both ways: the PBX's re-INVITE or UPDATE
 * (on_offer, pbx_dialog_answer_offer with the 2xx retransmission, on_ack_sdp)
 * and rtcsipd's (pbx_dialog_send_offer, with 491 retries); other requests in
 * the dialog (pbx_dialog_send_request, on_request_response).
 *
 * What nta does here (see the top of pbx_dialog.c for the rest):
 * - A re-INVITE or UPDATE from the PBX is kept: the leg callback returns 0
 *   (nta would turn a 2xx returned from it into 500) and the irq is answered
 *   later with nta_incoming_treply().  Like the initial 2xx, the 2xx to a
 *   re-INVITE ends the transaction for nta: this file retransmits it over
 *   UDP and takes its ACK (matched by CSeq) at the leg callback.
 *
 * Session timers (RFC 4028) and offers in the dialog are this file's, not
 * nta's: one su_timer refreshes (rtcsipd the refresher: UPDATE without SDP
 * when the PBX allows UPDATE, else a re-INVITE with the last local SDP) or
 * expires the session (the PBX the refresher).
 */
#include "sip/pbx_dialog_internal.h"

#include <errno.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sdp.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/su_wait.h>

#include "config/log.h"
#include "sip/sdp_translate.h"

struct pbx_dialog_rq {
  nta_incoming_t *irq;
  sip_method_t method;
  bool has_sdp;
  session_terms terms; /* for a 2xx */
};

/* ---- SDP, session terms ---- */

static bool is_sdp(sip_t const *sip)
{
  return sip->sip_payload && sip->sip_payload->pl_len > 0 &&
    (!sip->sip_content_type || !sip->sip_content_type->c_type ||
     g_ascii_strcasecmp(sip->sip_content_type->c_type, "application/sdp") == 0);
}

/* The o= session version of the SDP in SIP, with Sofia's parser. */
static bool sdp_version(sip_t const *sip, uint64_t *version)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  sdp_parser_t *p;
  sdp_session_t *session;
  bool ok = false;

  if (!is_sdp(sip) || !sdp_text_parsable(sip->sip_payload->pl_data, sip->sip_payload->pl_len))
    return false;
  p = sdp_parse(home, sip->sip_payload->pl_data, (issize_t)sip->sip_payload->pl_len, 0);
  session = sdp_session(p);
  if (session && session->sdp_origin) {
    *version = session->sdp_origin->o_version;
    ok = true;
  }
  sdp_parser_free(p);
  su_home_deinit(home);
  return ok;
}

/* An SDP from the PBX: remember its version. */
void dialog_remote_sdp_seen(pbx_dialog *d, sip_t const *sip)
{
  uint64_t v;

  if (sdp_version(sip, &v)) {
    d->remote_version = v;
    d->have_remote_version = true;
  }
}

static void set_local_sdp(pbx_dialog *d, const char *sdp)
{
  if (!sdp || sdp == d->local_sdp)
    return;
  g_free(d->local_sdp);
  d->local_sdp = g_strdup(sdp);
}

/* The terms for a 2xx to the PBX's request SIP (INVITE, re-INVITE, UPDATE):
 * its Session-Expires, refreshed by the PBX unless it said refresher=uas or
 * does not support timer; no Session-Expires: the terms in force stay when
 * the PBX supports timer, else there is no timer. */
session_terms dialog_terms_for_request(const pbx_dialog *d, sip_t const *sip)
{
  bool supported = sip_has_feature(sip->sip_supported, "timer") ||
                   sip_has_feature(sip->sip_require, "timer");
  session_terms t = { 0 };

  if (sip->sip_session_expires && sip->sip_session_expires->x_delta > 0) {
    const char *r = sip->sip_session_expires->x_refresher;
    t.se = (unsigned)MIN(sip->sip_session_expires->x_delta, 86400UL);
    t.we_refresh = !supported || (r && g_ascii_strcasecmp(r, "uas") == 0);
    t.require = supported;
  }
  else if (supported && d->terms.se) {
    t = d->terms;
    t.require = true;
  }
  return t;
}

/* The terms in the 2xx to rtcsipd's request: refresher=uac is rtcsipd. */
session_terms dialog_terms_from_response(sip_t const *sip)
{
  session_terms t = { 0 };

  if (sip->sip_session_expires && sip->sip_session_expires->x_delta > 0) {
    const char *r = sip->sip_session_expires->x_refresher;
    t.se = (unsigned)MIN(sip->sip_session_expires->x_delta, 86400UL);
    t.we_refresh = !r || g_ascii_strcasecmp(r, "uas") != 0;
  }
  return t;
}

/* The Session-Expires value for terms T in a message of the transaction
 * role UAC (rtcsipd's request) or not (a response to the PBX); NULL: none */
const char *dialog_se_value(char *buf, size_t size, session_terms t, bool uac)
{
  if (!t.se)
    return NULL;
  g_snprintf(buf, size, "%u;refresher=%s", t.se, t.we_refresh == uac ? "uac" : "uas");
  return buf;
}

static bool unreliable(const pbx_dialog *d)
{
  return g_ascii_strcasecmp(pbx_link_contact_transport(d->link), "udp") == 0;
}

static void on_session_timer(su_root_magic_t *rm, su_timer_t *t, su_timer_arg_t *arg);

/* (Re)starts the session timer with terms T. */
void dialog_session_start(pbx_dialog *d, session_terms t)
{
  unsigned ms;

  d->terms = t;
  if (!t.se || d->bye) {
    timer_stop(&d->session_timer);
    return;
  }
  if (t.we_refresh)
    ms = t.se * 500;
  else
    ms = (t.se - MIN(32u, t.se / 3)) * 1000;
  timer_start(d, &d->session_timer, on_session_timer, MAX(ms, 100u));
  log_id(d->name, LOG_DEBUG, "pbx dialog: session timer %u s, refresher %s", t.se,
         t.we_refresh ? "rtcsipd" : "the PBX");
}

static void session_expired(pbx_dialog *d, const char *why)
{
  timer_stop(&d->session_timer);
  d->terms.se = 0;
  log_id(d->name, LOG_INFO, "pbx dialog: session expired: %s", why);
  if (d->cb.on_session_expired) {
    enter(d);
    d->cb.on_session_expired(d->user, why);
    leave(d);
  }
}

/* ---- offers from the PBX: re-INVITE, UPDATE ---- */

void dialog_reinvite_done(pbx_dialog *d)
{
  timer_stop(&d->re_retx.timer);
  if (d->re_irq) {
    nta_incoming_destroy(d->re_irq);
    d->re_irq = NULL;
  }
  g_free(d->re_sdp);
  d->re_sdp = NULL;
}

/* The 2xx to a re-INVITE again (UDP) until its ACK, or 32 s. */
static void on_re_timer(su_root_magic_t *rm, su_timer_t *t, su_timer_arg_t *arg)
{
  pbx_dialog *d = (pbx_dialog *)arg;

  (void)rm;
  (void)t;
  if (d->freed || !d->re_irq)
    return;
  if (!dialog_retx_due(d, &d->re_retx, on_re_timer, unreliable(d))) {
    dialog_reinvite_done(d);
    dialog_no_ack(d, "the 2xx to a re-INVITE");
    return;
  }
  if (unreliable(d))
    dialog_reply(d, d->re_irq, 200, NULL, d->re_sdp, &d->re_terms);
}

/* 200 with SDP to a re-INVITE (IRQ taken); kept until the ACK. */
static int reinvite_ok(pbx_dialog *d, nta_incoming_t *irq, const char *phrase, const char *sdp,
                       session_terms t)
{
  if (dialog_reply(d, irq, 200, phrase, sdp, &t) < 0) {
    nta_incoming_destroy(irq);
    return -EIO;
  }
  dialog_reinvite_done(d);
  d->re_irq = irq;
  d->re_cseq = nta_incoming_cseq(irq);
  d->re_sdp = g_strdup(sdp);
  d->re_terms = t;
  dialog_retx_start(d, &d->re_retx, on_re_timer, unreliable(d));
  return 0;
}

void dialog_reinvite_acked(pbx_dialog *d, nta_incoming_t *irq, sip_t const *sip)
{
  bool sdp = is_sdp(sip);
  msg_t *msg = sdp && d->cb.on_ack_sdp ? nta_incoming_getrequest(irq) : NULL;

  if (sdp)
    dialog_remote_sdp_seen(d, sip);
  nta_incoming_destroy(irq); /* SIP is gone with it */
  dialog_reinvite_done(d);
  log_id(d->name, LOG_DEBUG, "pbx dialog: ACK for the 2xx to a re-INVITE%s", sdp ? " (SDP)" : "");
  if (msg) {
    enter(d);
    d->cb.on_ack_sdp(d->user, msg);
    msg_destroy(msg);
    leave(d);
  }
}

static bool invite_rq_pending(const pbx_dialog *d)
{
  for (GSList *l = d->rqs; l; l = l->next)
    if (((pbx_dialog_rq *)l->data)->method == sip_method_invite)
      return true;
  return false;
}

/* A re-INVITE or UPDATE from the PBX.  0: IRQ taken; else the status nta
 * answers it with. */
int dialog_offer_request(pbx_dialog *d, nta_incoming_t *irq, sip_t const *sip)
{
  bool invite = sip->sip_request->rq_method == sip_method_invite;
  bool sdp = is_sdp(sip);
  uint64_t version;
  session_terms t;
  pbx_dialog_rq *rq;
  msg_t *msg;

  if (invite && !d->confirmed)
    return d->uas ? 500 : 491; /* the first INVITE is not done yet */
  if (invite && (d->re_irq || invite_rq_pending(d))) {
    /* RFC 3261 14.2: a re-INVITE while the previous one is not done */
    nta_incoming_treply(irq, SIP_500_INTERNAL_SERVER_ERROR, SIPTAG_RETRY_AFTER_STR("2"),
                        TAG_END());
    nta_incoming_destroy(irq);
    return 0;
  }
  t = dialog_terms_for_request(d, sip);
  if ((!invite && !sdp) ||
      (invite && sdp && d->local_sdp && d->have_remote_version && sdp_version(sip, &version) &&
       version == d->remote_version)) {
    /* a session refresh that changes nothing: answered here */
    if (invite && d->ours_active && d->ours_method == sip_method_invite)
      return 491; /* glare */
    log_id(d->name, LOG_DEBUG, "pbx dialog: %s refresh from the PBX, answered here",
           sip->sip_request->rq_method_name);
    if (invite)
      reinvite_ok(d, irq, NULL, d->local_sdp, t);
    else {
      dialog_reply(d, irq, 200, NULL, NULL, &t);
      nta_incoming_destroy(irq);
    }
    dialog_session_start(d, t);
    return 0;
  }
  if (!d->cb.on_offer)
    return dialog_request_to_owner(d, irq, sip);

  rq = g_new0(pbx_dialog_rq, 1);
  rq->irq = irq;
  rq->method = sip->sip_request->rq_method;
  rq->has_sdp = sdp;
  rq->terms = t;
  d->rqs = g_slist_append(d->rqs, rq);
  log_id(d->name, LOG_DEBUG, "pbx dialog: %s offer from the PBX%s", sip->sip_request->rq_method_name,
         sdp ? "" : " (no SDP)");
  msg = nta_incoming_getrequest(irq);
  enter(d);
  d->cb.on_offer(d->user, rq, msg);
  msg_destroy(msg);
  leave(d);
  return 0;
}

void dialog_rq_free(pbx_dialog_rq *rq)
{
  nta_incoming_treply(rq->irq, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
  nta_incoming_destroy(rq->irq);
  g_free(rq);
}

int pbx_dialog_answer_offer(pbx_dialog *d, pbx_dialog_rq *rq, int status, const char *phrase,
                            const char *sdp)
{
  bool ok = status >= 200 && status < 300;
  nta_incoming_t *irq;
  int r;

  if (!d || !rq || !g_slist_find(d->rqs, rq)) /* not RQ->d: RQ may be gone */
    return -EINVAL;
  if (status < 200 || status > 699 || (ok && !sdp))
    return -EINVAL;
  d->rqs = g_slist_remove(d->rqs, rq);
  irq = rq->irq;
  if (ok) {
    msg_t *msg = nta_incoming_getrequest(irq);
    dialog_remote_sdp_seen(d, sip_object(msg));
    msg_destroy(msg);
    set_local_sdp(d, sdp);
    if (rq->method == sip_method_invite)
      r = reinvite_ok(d, irq, phrase, sdp, rq->terms);
    else {
      r = dialog_reply(d, irq, status, phrase, sdp, &rq->terms);
      nta_incoming_destroy(irq);
    }
    dialog_session_start(d, rq->terms);
  }
  else {
    r = dialog_reply(d, irq, status, phrase, NULL, NULL);
    nta_incoming_destroy(irq);
  }
  log_id(d->name, LOG_DEBUG, "pbx dialog: answered the PBX's %s %d",
         rq->method == sip_method_invite ? "re-INVITE" : "UPDATE", status);
  g_free(rq);
  return r < 0 ? -EIO : 0;
}

/* ---- rtcsipd's requests in the dialog: offers and refreshes ---- */

static int on_ours_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip);

static int ours_send(pbx_dialog *d)
{
  bool invite = d->ours_method == sip_method_invite;
  const char *name = invite ? "INVITE" : "UPDATE";
  char buf[48];
  const char *se = dialog_se_value(buf, sizeof buf, d->terms, true);
  sip_cseq_t cs[1];

  d->ours_cseq = ++d->local_cseq;
  cseq_init(cs, d->ours_cseq, d->ours_method, name);
  d->ours = nta_outgoing_tcreate(d->leg, on_ours_response, (nta_outgoing_magic_t *)d,
                                 next_hop(d), d->ours_method, name, NULL,
                                 SIPTAG_CSEQ(cs),
                                 SIPTAG_CONTACT_STR(d->contact),
                                 SIPTAG_ALLOW_STR("INVITE, ACK, CANCEL, BYE, UPDATE"),
                                 SIPTAG_SUPPORTED_STR("timer"),
                                 TAG_IF(se, SIPTAG_SESSION_EXPIRES_STR(se)),
                                 TAG_IF(d->ours_sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                                 TAG_IF(d->ours_sdp, SIPTAG_PAYLOAD_STR(d->ours_sdp)),
                                 TAG_END());
  if (!d->ours)
    return -EIO;
  log_id(d->name, LOG_DEBUG, "pbx dialog: %s%s (CSeq %u)", name,
         d->ours_refresh ? " refresh" : " offer", d->ours_cseq);
  return 0;
}

/* rtcsipd's request ended with STATUS (RESPONSE NULL: made here). */
static void ours_failed(pbx_dialog *d, int status, msg_t *response)
{
  bool refresh = d->ours_refresh;

  d->ours_active = false;
  if (refresh) {
    char why[32];
    g_snprintf(why, sizeof why, "refresh failed: %d", status);
    session_expired(d, why);
  }
  else if (d->cb.on_offer_response) {
    enter(d);
    d->cb.on_offer_response(d->user, status, response);
    leave(d);
  }
}

static void on_retry_timer(su_root_magic_t *rm, su_timer_t *t, su_timer_arg_t *arg)
{
  pbx_dialog *d = (pbx_dialog *)arg;

  (void)rm;
  (void)t;
  if (d->freed || !d->ours_active || d->ours)
    return;
  if (d->bye || ours_send(d) < 0)
    ours_failed(d, 503, NULL);
}

static int on_ours_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip)
{
  pbx_dialog *d = (pbx_dialog *)magic;
  bool internal = !sip || !sip->sip_status || nta_sip_is_internal(sip);
  int status = internal ? internal_status(nta_outgoing_status(orq)) : sip->sip_status->st_status;
  msg_t *response;

  if (d->freed || status < 200)
    return 0;
  if (orq == d->ours_done) {
    if (!internal && status < 300)
      dialog_send_ack_cseq(d, d->leg, d->ours_done_cseq); /* the PBX did not get our ACK */
    return 0;
  }
  if (orq != d->ours)
    return 0;
  d->ours = NULL;
  log_id(d->name, LOG_DEBUG, "pbx dialog: %s answered %d%s",
         d->ours_method == sip_method_invite ? "re-INVITE" : "UPDATE", status,
         internal ? " (here)" : "");

  response = nta_outgoing_getresponse(orq); /* NULL when internal */
  if (status < 300) {
    if (d->ours_method == sip_method_invite) {
      dialog_send_ack_cseq(d, d->leg, d->ours_cseq);
      if (d->ours_done)
        nta_outgoing_destroy(d->ours_done);
      d->ours_done = orq; /* for 2xx retransmissions */
      d->ours_done_cseq = d->ours_cseq;
    }
    d->ours_active = false;
    if (sip->sip_allow)
      d->pbx_allows_update = sip_is_allowed(sip->sip_allow, sip_method_update, "UPDATE");
    dialog_remote_sdp_seen(d, sip);
    dialog_session_start(d, dialog_terms_from_response(sip));
    if (d->ours_method != sip_method_invite)
      nta_outgoing_destroy(orq);
    enter(d);
    if (!d->ours_refresh && d->cb.on_offer_response)
      d->cb.on_offer_response(d->user, status, response);
    if (response)
      msg_destroy(response);
    leave(d);
    return 0;
  }

  if (internal && response) {
    msg_destroy(response);
    response = NULL;
  }
  nta_outgoing_destroy(orq); /* nta ACKs a non-2xx itself */
  if (status == 491 && d->ours_491 < MAX_491_RETRIES && !d->bye) {
    /* RFC 3261 14.1: the owner of the Call-ID waits 2.1-4 s, the other 0-2 s */
    unsigned ms = d->uas ? g_random_int_range(0, 2001) : g_random_int_range(2100, 4001);
    d->ours_491++;
    log_id(d->name, LOG_DEBUG, "pbx dialog: 491, again in %u ms", ms);
    timer_start(d, &d->retry_timer, on_retry_timer, MAX(ms, 1u));
    if (response)
      msg_destroy(response);
    return 0;
  }
  enter(d);
  ours_failed(d, status, response);
  if (response)
    msg_destroy(response);
  leave(d);
  return 0;
}

/* The session timer: refresh now, or the PBX did not refresh in time. */
static void on_session_timer(su_root_magic_t *rm, su_timer_t *t, su_timer_arg_t *arg)
{
  pbx_dialog *d = (pbx_dialog *)arg;
  bool update;

  (void)rm;
  (void)t;
  if (d->freed || !d->terms.se || d->bye)
    return;
  if (!d->terms.we_refresh) {
    session_expired(d, "no refresh from the PBX");
    return;
  }
  if (d->ours_active) {
    dialog_session_start(d, d->terms); /* its 2xx restarts the timer; else try again */
    return;
  }
  update = d->pbx_allows_update || !d->local_sdp;
  d->ours_active = true;
  d->ours_refresh = true;
  d->ours_491 = 0;
  d->ours_method = update ? sip_method_update : sip_method_invite;
  g_free(d->ours_sdp);
  d->ours_sdp = update ? NULL : g_strdup(d->local_sdp);
  if (ours_send(d) < 0)
    ours_failed(d, 503, NULL);
}

int pbx_dialog_send_offer(pbx_dialog *d, const char *sdp)
{
  if (!d || !sdp || !d->confirmed || d->bye)
    return -EINVAL;
  if (d->ours_active)
    return -EBUSY;
  set_local_sdp(d, sdp);
  d->ours_active = true;
  d->ours_refresh = false;
  d->ours_491 = 0;
  d->ours_method = sip_method_invite;
  g_free(d->ours_sdp);
  d->ours_sdp = g_strdup(sdp);
  if (ours_send(d) < 0) {
    d->ours_active = false;
    return -EIO;
  }
  return 0;
}

/* The answer to a PRACK or to pbx_dialog_send_request(): logged only. */
int dialog_on_other_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip)
{
  pbx_dialog *d = (pbx_dialog *)magic;
  int status = nta_outgoing_status(orq);
  bool internal = !sip || !sip->sip_status || nta_sip_is_internal(sip);
  const char *method = nta_outgoing_method_name(orq);
  msg_t *response = NULL;

  if (status < 200 || d->freed)
    return 0;
  log_id(d->name, status < 300 ? LOG_DEBUG : LOG_INFO, "pbx dialog: %s answered %d", method, status);
  if (d->cb.on_request_response && g_ascii_strcasecmp(method, "PRACK") != 0) {
    if (internal)
      status = internal_status(status);
    else
      response = nta_outgoing_getresponse(orq);
    enter(d);
    d->cb.on_request_response(d->user, method, status, response);
    leave(d);
    if (response)
      msg_destroy(response);
    if (d->freed)
      return 0; /* the deferred destroy takes the list */
  }
  d->others = g_slist_remove(d->others, orq);
  nta_outgoing_destroy(orq);
  return 0;
}

int pbx_dialog_send_request(pbx_dialog *d, const char *method, const char *content_type,
                            const char *body, const char *extra)
{
  sip_method_t m = method ? sip_method_code(method) : sip_method_invalid;
  nta_outgoing_t *orq;
  sip_cseq_t cs[1];

  if (!d || !d->confirmed || d->bye || m == sip_method_invalid || m == sip_method_invite ||
      m == sip_method_ack || m == sip_method_cancel || m == sip_method_bye ||
      m == sip_method_prack || (body && !content_type))
    return -EINVAL;
  cseq_init(cs, ++d->local_cseq, m, method);
  orq = nta_outgoing_tcreate(d->leg, dialog_on_other_response, (nta_outgoing_magic_t *)d,
                             next_hop(d), m, method, NULL, SIPTAG_CSEQ(cs),
                             TAG_IF(body, SIPTAG_CONTENT_TYPE_STR(content_type)),
                             TAG_IF(body, SIPTAG_PAYLOAD_STR(body)),
                             TAG_IF(extra, SIPTAG_HEADER_STR(extra)),
                             TAG_END());
  if (!orq)
    return -EIO;
  d->others = g_slist_prepend(d->others, orq);
  return 0;
}

bool pbx_dialog_offer_pending(const pbx_dialog *d)
{
  return d->ours_active && d->ours_method == sip_method_invite;
}

void pbx_dialog_set_local_sdp(pbx_dialog *d, const char *sdp)
{
  set_local_sdp(d, sdp);
}
