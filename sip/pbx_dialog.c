/* One INVITE dialog with the PBX on nta dialog legs.  See pbx_dialog.h.
 *
 * Here: the dialog itself: the UAC INVITE (422 retry, PRACK, ACK, CANCEL,
 * forked 2xx), the UAS accept and response with its 2xx retransmission,
 * BYE, the dispatch of in-dialog requests from the PBX, and freeing from
 * inside a callback.  What happens in the confirmed dialog (session timers,
 * offers both ways, other requests) is in pbx_dialog_session.c; the struct
 * and what the two files call of each other, in pbx_dialog_internal.h.
 *
 * What nta does here, with the agent of sip/pbx.c (NTATAG_UA(0), the
 * default; read from nta.c of Sofia-SIP 1.12.11):
 *
 * UAS (pbx_dialog_accept)
 * - A 2xx to an INVITE ends the server transaction at once ("terminated"):
 *   nta does NOT retransmit it (timer G runs for 2xx only with UA(1)).  So
 *   this file retransmits the 2xx itself over UDP (T1, doubling up to T2)
 *   until the ACK comes or 64*T1 = 32 s pass (RFC 3261 13.3.1.4), by
 *   calling nta_incoming_treply() again with the same response (nta allows
 *   any number of 2xx on an INVITE transaction); on_ack_timeout reports the
 *   32 s.  A retransmitted INVITE still matches the transaction, and nta
 *   answers it with the last response.
 * - The ACK for a 2xx is not the transaction's business with UA(0)
 *   (incoming_ack() returns it to the dialog layer): it arrives at the
 *   dialog leg's callback as a new request with its own nta_incoming_t,
 *   which must be destroyed (nta keeps it otherwise).  The ACK for a non-2xx
 *   final is absorbed by the transaction (timer G/H do run for non-2xx).
 * - CANCEL: nta answers the CANCEL with 200 itself, calls the callback bound
 *   with nta_incoming_bind() (sip = the CANCEL), and then, if the INVITE has
 *   no final response yet, answers it 487 itself (NTATAG_CANCEL_487, on by
 *   default).  So the owner answers 487 from inside on_cancel or nta does
 *   it right after; pbx_dialog_respond(487) after that returns 0.
 * - A request returned from a leg callback with a status >= 200 is answered
 *   and destroyed by nta; nta turns a 2xx for an INVITE returned that way
 *   into 500 (leg_recv(): "invalid INVITE status"), because a 2xx to an
 *   INVITE needs a Contact and an SDP.  So re-INVITEs (and UPDATEs) are
 *   kept: the callback returns 0 and the irq is answered later with
 *   nta_incoming_treply() (pbx_dialog_session.c).
 *
 * UAC (pbx_dialog_invite)
 * - nta ACKs a non-2xx final response itself.  After a 2xx the client
 *   transaction waits 32 s (timer D) and, with UA(0), hands every further
 *   2xx (retransmissions, and 2xx from other forks) to the callback again:
 *   a retransmission is ACKed again here, a 2xx with another To tag (a fork)
 *   is ACKed and then BYEd on a leg of its own, quietly.
 * - nta_outgoing_tcancel() before any provisional response waits for one
 *   (RFC 3261 9.1); a final response meanwhile answers the CANCEL 481
 *   locally.  A 2xx that crosses the CANCEL is delivered as any 2xx.
 * - 100rel: nta hands every reliable provisional (Require: 100rel, RSeq)
 *   to the INVITE's callback, retransmissions too (its RSeq check only
 *   works on a tagged transaction).  nta_outgoing_prack() refuses to PRACK
 *   it: it wants the INVITE transaction's To tag to be the response's,
 *   which only a nta_outgoing_tagged() copy has, and without a route set
 *   it puts the Contact in a Route header.  So the PRACK is made here like
 *   a BYE: on the leg (remote tag, target and route set from the
 *   provisional), with RAck; retransmissions (RSeq not above the last)
 *   are dropped here.
 * - A 422 to the INVITE is ACKed by nta; the INVITE goes again from here.
 * - Transaction failures come as internal responses (nta_sip_is_internal):
 *   408 (timer B), 503 (transport); they are reported with response NULL.
 * - Every request (INVITE, ACK, BYE, CANCEL) goes to the configured PBX
 *   address (pbx_link_target_url) as the next hop, like an outbound proxy;
 *   the Request-URI and Route headers come from the dialog (remote target
 *   and route set).  Only the configured PBX is ever a destination.
 *
 * Freeing from inside a callback: every entry from nta into this file or
 * pbx_dialog_session.c counts itself in d->busy; pbx_dialog_free() with
 * busy > 0 only marks the dialog, and the outermost entry destroys it on
 * its way out.
 */
#include "sip/pbx_dialog_internal.h"

#include <errno.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/su_wait.h>

#include "config/log.h"

typedef struct {
  pbx_dialog *d;
  nta_leg_t *leg;
  nta_outgoing_t *bye;
  char *tag;
} fork_leg;

static char *make_contact(su_home_t *home, const pbx_link *link, const char *user)
{
  return su_sprintf(home, "<sip:%s%s%s:%u;transport=%s>", user ? user : "", user ? "@" : "",
                    pbx_link_contact_host(link), pbx_link_contact_port(link),
                    pbx_link_contact_transport(link));
}

static pbx_dialog *dialog_new(pbx_link *link, const pbx_dialog_callbacks *cb, void *user,
                              const char *call_id)
{
  pbx_dialog *d = g_new0(pbx_dialog, 1);

  su_home_init(d->home);
  d->link = link;
  d->cb = *cb;
  d->user = user;
  d->call_id = su_strdup(d->home, call_id);
  d->name = su_sprintf(d->home, "pbx-%.12s", call_id);
  return d;
}


/* ---- in-dialog requests from the PBX (both roles) ---- */

static void retx_stop(pbx_dialog *d)
{
  timer_stop(&d->retx.timer);
}

/* A request for the owner's on_request, answered with what it returns. */
int dialog_request_to_owner(pbx_dialog *d, nta_incoming_t *irq, sip_t const *sip)
{
  msg_t *msg;
  int status;

  if (!d->cb.on_request)
    return 481;
  msg = nta_incoming_getrequest(irq);
  enter(d);
  status = d->cb.on_request(d->user, msg);
  msg_destroy(msg);
  log_id(d->name, LOG_DEBUG, "pbx dialog: %s from the PBX, answered %d",
         sip->sip_request->rq_method_name, status);
  leave(d);
  if (status < 200 || status > 699)
    status = 500;
  return status; /* nta answers and destroys IRQ */
}

static int on_leg_request(nta_leg_magic_t *magic, nta_leg_t *leg, nta_incoming_t *irq,
                          sip_t const *sip)
{
  pbx_dialog *d = (pbx_dialog *)magic;
  sip_method_t method = sip->sip_request->rq_method;
  uint32_t cseq = sip->sip_cseq ? sip->sip_cseq->cs_seq : 0;

  (void)leg;
  if (method == sip_method_ack) {
    if (d->re_irq && cseq == d->re_cseq && !d->freed) {
      dialog_reinvite_acked(d, irq, sip);
      return 0;
    }
    nta_incoming_destroy(irq);
    if (d->uas && d->confirmed && !d->acked && !d->freed &&
        cseq == sip_object(d->request)->sip_cseq->cs_seq) {
      d->acked = true;
      retx_stop(d);
      log_id(d->name, LOG_DEBUG, "pbx dialog: ACK for %d", d->final_status);
      if (d->cb.on_ack) {
        enter(d);
        d->cb.on_ack(d->user);
        leave(d);
      }
    }
    return 0;
  }
  if (method == sip_method_cancel)
    return 481; /* it matched no INVITE transaction */
  if (d->freed)
    return 481;
  if (method == sip_method_invite || method == sip_method_update)
    return dialog_offer_request(d, irq, sip);
  return dialog_request_to_owner(d, irq, sip);
}

/* ---- UAC ---- */

int dialog_send_ack_cseq(pbx_dialog *d, nta_leg_t *leg, uint32_t cseq)
{
  sip_cseq_t cs[1];
  nta_outgoing_t *ack;

  cseq_init(cs, cseq, sip_method_ack, "ACK");
  ack = nta_outgoing_tcreate(leg, NULL, NULL, next_hop(d), SIP_METHOD_ACK, NULL,
                             SIPTAG_CSEQ(cs), TAG_END());
  if (!ack)
    return -EIO;
  nta_outgoing_destroy(ack); /* nta keeps it as long as needed */
  return 0;
}

/* ACK for the INVITE's 2xx */
static int send_ack(pbx_dialog *d, nta_leg_t *leg)
{
  return dialog_send_ack_cseq(d, leg, d->invite_cseq);
}

static void fork_free(fork_leg *f)
{
  if (f->bye)
    nta_outgoing_destroy(f->bye);
  nta_leg_destroy(f->leg);
  g_free(f->tag);
  g_free(f);
}

static int on_fork_bye_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq,
                                sip_t const *sip)
{
  fork_leg *f = (fork_leg *)magic;
  pbx_dialog *d = f->d;

  (void)sip;
  if (nta_outgoing_status(orq) < 200)
    return 0;
  d->forks = g_slist_remove(d->forks, f);
  fork_free(f);
  return 0;
}

/* A 2xx with another To tag than the one that won: ACK it and BYE it on a
 * leg of its own. */
static void fork_2xx(pbx_dialog *d, sip_t const *sip)
{
  const char *tag = sip->sip_to->a_tag;
  sip_cseq_t cs[1];
  fork_leg *f;

  for (GSList *l = d->forks; l; l = l->next) {
    f = l->data;
    if (g_strcmp0(f->tag, tag) == 0) {
      send_ack(d, f->leg); /* a retransmission of it */
      return;
    }
  }
  log_id(d->name, LOG_INFO, "pbx dialog: a 2xx from another fork (tag %s): ACK and BYE",
         tag ? tag : "-");
  f = g_new0(fork_leg, 1);
  f->d = d;
  f->tag = g_strdup(tag);
  f->leg = nta_leg_tcreate(pbx_link_agent(d->link), NULL, NULL,
                           SIPTAG_CALL_ID(sip->sip_call_id), SIPTAG_FROM(sip->sip_from),
                           SIPTAG_TO(sip->sip_to), TAG_END());
  if (!f->leg) {
    g_free(f->tag);
    g_free(f);
    return;
  }
  nta_leg_client_route(f->leg, sip->sip_record_route, sip->sip_contact);
  send_ack(d, f->leg);
  cseq_init(cs, d->invite_cseq + 1, sip_method_bye, "BYE");
  f->bye = nta_outgoing_tcreate(f->leg, on_fork_bye_response, (nta_outgoing_magic_t *)f,
                                next_hop(d), SIP_METHOD_BYE, NULL, SIPTAG_CSEQ(cs), TAG_END());
  if (!f->bye) {
    fork_free(f);
    return;
  }
  d->forks = g_slist_prepend(d->forks, f);
}

static int on_invite_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq,
                              sip_t const *sip);

static int on_ignored_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq,
                               sip_t const *sip)
{
  (void)magic;
  (void)orq;
  (void)sip;
  return 0;
}

/* The INVITE (again, after a 422) with CSeq d->invite_cseq. */
static int invite_send(pbx_dialog *d)
{
  char se[16], min_se[16];
  sip_cseq_t cs[1];

  g_snprintf(se, sizeof se, "%u", d->invite_se);
  g_snprintf(min_se, sizeof min_se, "%u", d->invite_min_se);
  cseq_init(cs, d->invite_cseq, sip_method_invite, "INVITE");
  d->invite = nta_outgoing_tcreate(d->leg, on_invite_response, (nta_outgoing_magic_t *)d,
                                   next_hop(d), SIP_METHOD_INVITE,
                                   URL_STRING_MAKE(d->request_uri),
                                   SIPTAG_CSEQ(cs),
                                   SIPTAG_CONTACT_STR(d->contact),
                                   TAG_IF(d->auth, SIPTAG_AUTHORIZATION(d->auth)),
                                   TAG_IF(d->proxy_auth, SIPTAG_PROXY_AUTHORIZATION(d->proxy_auth)),
                                   SIPTAG_ALLOW_STR("INVITE, ACK, CANCEL, BYE, UPDATE"),
                                   SIPTAG_SUPPORTED_STR("timer, 100rel"),
                                   TAG_IF(d->invite_se, SIPTAG_SESSION_EXPIRES_STR(se)),
                                   TAG_IF(d->invite_min_se, SIPTAG_MIN_SE_STR(min_se)),
                                   SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                                   SIPTAG_PAYLOAD_STR(d->local_sdp),
                                   TAG_END());
  return d->invite ? 0 : -EIO;
}

/* 422 Session Interval Too Small (nta ACKed it): the INVITE again with the
 * PBX's Min-SE, at most MAX_422_RETRIES times.  false: report the 422. */
static bool retry_after_422(pbx_dialog *d, nta_outgoing_t *orq, sip_t const *sip)
{
  unsigned min;

  if (!sip->sip_min_se || d->n_422 >= MAX_422_RETRIES || d->cancelled || orq != d->invite)
    return false;
  min = (unsigned)MIN(sip->sip_min_se->min_delta, 86400UL);
  d->n_422++;
  d->invite_se = MAX(d->invite_se, min);
  d->invite_min_se = min;
  d->invite_cseq = ++d->local_cseq;
  nta_outgoing_bind(orq, on_ignored_response, NULL);
  if (invite_send(d) < 0) {
    nta_outgoing_bind(orq, on_invite_response, (nta_outgoing_magic_t *)d);
    d->invite = orq;
    return false;
  }
  d->old_invites = g_slist_prepend(d->old_invites, orq);
  log_id(d->name, LOG_DEBUG, "pbx dialog: 422, INVITE again with Session-Expires %u (CSeq %u)",
         d->invite_se, d->invite_cseq);
  return true;
}

/* PRACK for a reliable provisional (RFC 3262) on the early dialog: made
 * here like a BYE (see the top of this file for why not with
 * nta_outgoing_prack()). */
static void send_prack(pbx_dialog *d, sip_t const *sip)
{
  nta_outgoing_t *prack;
  sip_rack_t rack[1];
  sip_cseq_t cs[1];

  if (sip->sip_to->a_tag && !nta_leg_get_rtag(d->leg))
    nta_leg_rtag(d->leg, sip->sip_to->a_tag);
  nta_leg_client_reroute(d->leg, sip->sip_record_route, sip->sip_contact, 1);
  dialog_remote_sdp_seen(d, sip);
  sip_rack_init(rack);
  rack->ra_response = sip->sip_rseq->rs_response;
  rack->ra_cseq = sip->sip_cseq->cs_seq;
  rack->ra_method = sip_method_invite;
  rack->ra_method_name = "INVITE";
  cseq_init(cs, ++d->local_cseq, sip_method_prack, "PRACK");
  prack = nta_outgoing_tcreate(d->leg, dialog_on_other_response, (nta_outgoing_magic_t *)d,
                               next_hop(d), SIP_METHOD_PRACK, NULL, SIPTAG_CSEQ(cs),
                               SIPTAG_RACK(rack),
                               TAG_END());
  if (!prack) {
    log_id(d->name, LOG_WARNING, "pbx dialog: nta refused the PRACK");
    return;
  }
  d->others = g_slist_prepend(d->others, prack);
  log_id(d->name, LOG_DEBUG, "pbx dialog: PRACK for RSeq %u", (unsigned)rack->ra_response);
}

static int on_invite_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq,
                              sip_t const *sip)
{
  pbx_dialog *d = (pbx_dialog *)magic;
  bool internal = !sip || !sip->sip_status || nta_sip_is_internal(sip);
  int status = internal ? internal_status(nta_outgoing_status(orq)) : sip->sip_status->st_status;
  msg_t *response = NULL;

  if (d->freed)
    return 0;
  if (status < 200) {
    if (status == 100 || d->invite_final)
      return 0;
    if (!internal && sip->sip_rseq && sip_has_feature(sip->sip_require, "100rel")) {
      if (sip->sip_rseq->rs_response <= d->last_rseq)
        return 0; /* a retransmission, PRACKed already */
      d->last_rseq = sip->sip_rseq->rs_response;
      send_prack(d, sip);
    }
  }
  else if (!d->invite_final && !internal && status == 422 && retry_after_422(d, orq, sip))
    return 0;
  else if (d->invite_final) {
    /* after the final: only 2xx come here (nta absorbs the rest) */
    if (internal || status >= 300 || d->invite_final >= 300)
      return 0;
    if (g_strcmp0(sip->sip_to->a_tag, d->rtag) == 0) {
      if (d->ack_sent)
        send_ack(d, d->leg); /* the PBX did not get our ACK */
    }
    else
      fork_2xx(d, sip);
    return 0;
  }
  else {
    d->invite_final = status;
    if (status < 300) {
      d->confirmed = true;
      d->rtag = su_strdup(d->home, sip->sip_to->a_tag);
      nta_leg_rtag(d->leg, d->rtag);
      nta_leg_client_reroute(d->leg, sip->sip_record_route, sip->sip_contact, 1);
      if (sip->sip_allow)
        d->pbx_allows_update = sip_is_allowed(sip->sip_allow, sip_method_update, "UPDATE");
      dialog_remote_sdp_seen(d, sip);
      dialog_session_start(d, dialog_terms_from_response(sip));
    }
    log_id(d->name, LOG_DEBUG, "pbx dialog: INVITE answered %d%s", status,
           internal ? " (here)" : "");
  }

  if (!internal)
    response = nta_outgoing_getresponse(orq);
  if (d->cb.on_invite_response) {
    enter(d);
    d->cb.on_invite_response(d->user, status, response);
    if (response)
      msg_destroy(response);
    leave(d);
  }
  else if (response)
    msg_destroy(response);
  return 0;
}

int pbx_dialog_invite(pbx_link *link, const pbx_invite_params *p,
                      const pbx_dialog_callbacks *cb, void *user, pbx_dialog **ret)
{
  sip_t const *cred = p && p->credentials_from ? sip_object(p->credentials_from) : NULL;
  pbx_dialog *d;

  if (!link || !p || !cb || !ret || !p->request_uri || !p->from || !p->from->a_tag || !p->to ||
      !p->call_id || !*p->call_id || !p->sdp)
    return -EINVAL;

  d = dialog_new(link, cb, user, p->call_id);
  d->invite_cseq = p->cseq ? p->cseq : (g_random_int() & 0x7fffffff) + 1;
  d->local_cseq = d->invite_cseq;
  d->contact = make_contact(d->home, link, p->contact_user);
  d->request_uri = su_strdup(d->home, p->request_uri);
  if (cred && cred->sip_authorization)
    d->auth = sip_authorization_dup(d->home, cred->sip_authorization);
  if (cred && cred->sip_proxy_authorization)
    d->proxy_auth = sip_proxy_authorization_dup(d->home, cred->sip_proxy_authorization);
  d->invite_se = p->session_expires;
  d->invite_min_se = p->min_se;
  pbx_dialog_set_local_sdp(d, p->sdp);

  d->leg = nta_leg_tcreate(pbx_link_agent(link), on_leg_request, (nta_leg_magic_t *)d,
                           SIPTAG_CALL_ID_STR(p->call_id), SIPTAG_FROM(p->from),
                           SIPTAG_TO(p->to), TAG_END());
  if (!d->leg || invite_send(d) < 0) {
    log_id(d->name, LOG_WARNING, "pbx dialog: nta refused the INVITE to %s", p->request_uri);
    dialog_destroy(d);
    return -EIO;
  }
  log_id(d->name, LOG_DEBUG, "pbx dialog: INVITE %s (CSeq %u)", p->request_uri, d->invite_cseq);
  *ret = d;
  return 0;
}

int pbx_dialog_ack(pbx_dialog *d)
{
  if (d->uas || !d->confirmed)
    return -EINVAL;
  d->ack_sent = true;
  return send_ack(d, d->leg);
}

int pbx_dialog_cancel(pbx_dialog *d)
{
  if (d->uas || !d->invite)
    return -EINVAL;
  if (d->invite_final || d->cancelled)
    return -EALREADY;
  if (!nta_outgoing_tcancel(d->invite, NULL, NULL, TAG_END()))
    return -EIO;
  d->cancelled = true;
  return 0;
}

/* ---- UAS ---- */

/* A response on IRQ; a 2xx with Contact, Session-Expires for terms T
 * (NULL: none) and the SDP. */
int dialog_reply(pbx_dialog *d, nta_incoming_t *irq, int status, const char *phrase,
                 const char *sdp, const session_terms *t)
{
  bool contact = status > 100 && status < 300;
  bool ok = status >= 200 && status < 300;
  char buf[48];
  const char *se = ok && t ? dialog_se_value(buf, sizeof buf, *t, false) : NULL;

  if (!phrase)
    phrase = sip_status_phrase(status);
  return nta_incoming_treply(irq, status, phrase ? phrase : "",
                             TAG_IF(contact, SIPTAG_CONTACT_STR(d->contact)),
                             TAG_IF(ok, SIPTAG_ALLOW_STR("INVITE, ACK, CANCEL, BYE, UPDATE")),
                             TAG_IF(ok, SIPTAG_SUPPORTED_STR("timer")),
                             TAG_IF(se, SIPTAG_SESSION_EXPIRES_STR(se)),
                             TAG_IF(se && t->require, SIPTAG_REQUIRE_STR("timer")),
                             TAG_IF(sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                             TAG_IF(sdp, SIPTAG_PAYLOAD_STR(sdp)),
                             TAG_END());
}

static int uas_send(pbx_dialog *d, int status, const char *phrase, const char *sdp)
{
  return dialog_reply(d, d->irq, status, phrase, sdp, &d->invite_terms);
}

/* Arms R for a 2xx to an INVITE just sent: over UDP it goes again after T1;
 * otherwise only the wait of 64*T1 for the ACK runs. */
void dialog_retx_start(pbx_dialog *d, ok_retx *r, su_timer_f fn, bool unreliable)
{
  r->elapsed = 0;
  r->interval = unreliable ? T1_MS : T1X64_MS;
  timer_start(d, &r->timer, fn, r->interval);
}

/* On R's timer FN.  false: 64*T1 passed without the ACK (the caller stops R
 * and calls dialog_no_ack); true: R is armed again (T1 doubling up to T2) and
 * the caller sends the 2xx again (over UDP). */
bool dialog_retx_due(pbx_dialog *d, ok_retx *r, su_timer_f fn, bool unreliable)
{
  r->elapsed += r->interval;
  if (r->elapsed >= T1X64_MS)
    return false;
  r->interval = unreliable ? MIN(2 * r->interval, (unsigned)T2_MS) : T1X64_MS;
  timer_start(d, &r->timer, fn, MIN(r->interval, (unsigned)T1X64_MS - r->elapsed));
  return true;
}

/* Reports the 2xx WHAT ("the 200") never ACKed: on_ack_timeout. */
void dialog_no_ack(pbx_dialog *d, const char *what)
{
  log_id(d->name, LOG_INFO, "pbx dialog: no ACK for %s in %u s", what, T1X64_MS / 1000);
  if (d->cb.on_ack_timeout) {
    enter(d);
    d->cb.on_ack_timeout(d->user);
    leave(d);
  }
}

static void on_retx_timer(su_root_magic_t *rm, su_timer_t *t, su_timer_arg_t *arg)
{
  pbx_dialog *d = (pbx_dialog *)arg;
  char what[16];

  (void)rm;
  (void)t;
  if (d->acked || d->freed)
    return;
  if (!dialog_retx_due(d, &d->retx, on_retx_timer, true)) {
    retx_stop(d);
    g_snprintf(what, sizeof what, "the %d", d->final_status);
    dialog_no_ack(d, what);
    return;
  }
  uas_send(d, d->final_status, d->final_phrase, d->final_sdp);
}

static int on_irq_event(nta_incoming_magic_t *magic, nta_incoming_t *irq, sip_t const *sip)
{
  pbx_dialog *d = (pbx_dialog *)magic;

  (void)irq;
  if (!sip || !sip->sip_request || sip->sip_request->rq_method != sip_method_cancel)
    return 0; /* timeout, or the ACK of a non-2xx final */
  if (d->freed || d->cancelled)
    return 0;
  d->cancelled = true;
  log_id(d->name, LOG_DEBUG, "pbx dialog: CANCEL from the PBX");
  if (d->cb.on_cancel) {
    enter(d);
    d->cb.on_cancel(d->user);
    leave(d);
  }
  return 0; /* nta answers the INVITE 487 now if nobody did */
}

int pbx_dialog_accept(pbx_link *link, pbx_server_tx *tx, const pbx_dialog_callbacks *cb,
                      void *user, pbx_dialog **ret)
{
  nta_incoming_t *irq = pbx_server_tx_take(tx);
  msg_t *msg = nta_incoming_getrequest(irq);
  sip_t const *sip = sip_object(msg);
  pbx_dialog *d = NULL;
  const char *tag;
  int fail = 500;

  if (!sip || !sip->sip_request || sip->sip_request->rq_method != sip_method_invite ||
      !sip->sip_call_id || !sip->sip_from || !sip->sip_to || !sip->sip_cseq || !sip->sip_via)
    goto fail;
  if (sip->sip_to->a_tag) {
    fail = 481; /* an in-dialog INVITE of no dialog here */
    goto fail;
  }
  d = dialog_new(link, cb, user, sip->sip_call_id->i_id);
  d->uas = true;
  d->request = msg;
  d->local_cseq = (g_random_int() & 0x7fffffff) + 1;
  d->contact = make_contact(d->home, link, sip->sip_request->rq_url->url_user);
  d->unreliable = sip->sip_via->v_protocol &&
    g_ascii_strcasecmp(sip->sip_via->v_protocol, "SIP/2.0/UDP") == 0;
  d->leg = nta_leg_tcreate(pbx_link_agent(link), on_leg_request, (nta_leg_magic_t *)d,
                           SIPTAG_CALL_ID(sip->sip_call_id), SIPTAG_FROM(sip->sip_to),
                           SIPTAG_TO(sip->sip_from), NTATAG_REMOTE_CSEQ(sip->sip_cseq->cs_seq),
                           TAG_END());
  if (!d->leg || !(tag = nta_incoming_tag(irq, NULL)) || !nta_leg_tag(d->leg, tag) ||
      nta_leg_server_route(d->leg, sip->sip_record_route, sip->sip_contact) < 0)
    goto fail;
  d->invite_terms = dialog_terms_for_request(d, sip);
  d->pbx_allows_update = sip->sip_allow &&
    sip_is_allowed(sip->sip_allow, sip_method_update, "UPDATE");
  dialog_remote_sdp_seen(d, sip);
  d->irq = irq;
  nta_incoming_bind(irq, on_irq_event, (nta_incoming_magic_t *)d);
  log_id(d->name, LOG_DEBUG, "pbx dialog: INVITE from the PBX accepted (tag %s)", tag);
  *ret = d;
  return 0;

fail:
  nta_incoming_treply(irq, fail, sip_status_phrase(fail), TAG_END());
  nta_incoming_destroy(irq);
  if (d) {
    d->irq = NULL;
    dialog_destroy(d); /* destroys msg */
  }
  else
    msg_destroy(msg);
  return fail == 481 ? -EINVAL : -EIO;
}

msg_t *pbx_dialog_invite_request(const pbx_dialog *d)
{
  return d->request;
}

int pbx_dialog_respond(pbx_dialog *d, int status, const char *phrase, const char *sdp)
{
  int current;

  if (!d->uas || !d->irq || status < 100 || status > 699)
    return -EINVAL;
  current = nta_incoming_status(d->irq);
  if (current >= 200)
    return status == 487 && current == 487 && d->cancelled ? 0 : -EALREADY;
  if (status >= 200 && status < 300 && !sdp)
    return -EINVAL;
  if (uas_send(d, status, phrase, sdp) < 0)
    return -EIO;
  pbx_dialog_set_local_sdp(d, sdp);
  if (status >= 200 && status < 300) {
    d->confirmed = true;
    dialog_session_start(d, d->invite_terms);
    d->final_status = status;
    d->final_phrase = su_strdup(d->home, phrase);
    d->final_sdp = su_strdup(d->home, sdp);
    if (d->unreliable)
      dialog_retx_start(d, &d->retx, on_retx_timer, true);
  }
  log_id(d->name, LOG_DEBUG, "pbx dialog: answered the PBX's INVITE %d", status);
  return 0;
}

/* ---- either role ---- */

static int on_bye_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip)
{
  pbx_dialog *d = (pbx_dialog *)magic;
  bool internal = !sip || !sip->sip_status || nta_sip_is_internal(sip);
  int status = internal ? internal_status(nta_outgoing_status(orq)) : sip->sip_status->st_status;

  if (status < 200 || d->freed)
    return 0;
  log_id(d->name, LOG_DEBUG, "pbx dialog: BYE answered %d%s", status, internal ? " (here)" : "");
  if (d->cb.on_bye_response) {
    enter(d);
    d->cb.on_bye_response(d->user, status);
    leave(d);
  }
  return 0;
}

int pbx_dialog_bye(pbx_dialog *d)
{
  sip_cseq_t cs[1];

  if (!d->confirmed)
    return -EINVAL;
  if (d->bye)
    return -EALREADY;
  retx_stop(d); /* UAS: no more 2xx once the BYE went */
  timer_stop(&d->session_timer);
  timer_stop(&d->retry_timer);
  cseq_init(cs, ++d->local_cseq, sip_method_bye, "BYE");
  d->bye = nta_outgoing_tcreate(d->leg, on_bye_response, (nta_outgoing_magic_t *)d, next_hop(d),
                                SIP_METHOD_BYE, NULL, SIPTAG_CSEQ(cs), TAG_END());
  return d->bye ? 0 : -EIO;
}

bool pbx_dialog_confirmed(const pbx_dialog *d)
{
  return d->confirmed;
}

const char *pbx_dialog_call_id(const pbx_dialog *d)
{
  return d->call_id;
}

void pbx_dialog_tags(const pbx_dialog *d, const char **local, const char **remote)
{
  *local = d->leg ? nta_leg_get_tag(d->leg) : NULL;
  *remote = d->leg ? nta_leg_get_rtag(d->leg) : NULL;
}

void dialog_destroy(pbx_dialog *d)
{
  retx_stop(d);
  timer_stop(&d->session_timer);
  timer_stop(&d->retry_timer);
  dialog_reinvite_done(d);
  g_slist_free_full(d->rqs, (GDestroyNotify)dialog_rq_free);
  d->rqs = NULL;
  if (d->ours)
    nta_outgoing_destroy(d->ours);
  if (d->ours_done)
    nta_outgoing_destroy(d->ours_done);
  g_slist_free_full(d->others, (GDestroyNotify)nta_outgoing_destroy);
  g_slist_free_full(d->old_invites, (GDestroyNotify)nta_outgoing_destroy);
  g_free(d->ours_sdp);
  g_free(d->local_sdp);
  g_slist_free_full(d->forks, (GDestroyNotify)fork_free);
  d->forks = NULL;
  if (d->bye)
    nta_outgoing_destroy(d->bye);
  if (d->invite) {
    if (!d->invite_final && !d->cancelled)
      nta_outgoing_tcancel(d->invite, NULL, NULL, TAG_END());
    nta_outgoing_destroy(d->invite);
  }
  if (d->irq) {
    if (nta_incoming_status(d->irq) < 200) {
      if (d->cancelled)
        nta_incoming_treply(d->irq, SIP_487_REQUEST_CANCELLED, TAG_END());
      else
        nta_incoming_treply(d->irq, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
    }
    nta_incoming_destroy(d->irq);
  }
  if (d->leg)
    nta_leg_destroy(d->leg);
  if (d->request)
    msg_destroy(d->request);
  su_home_deinit(d->home);
  g_free(d);
}

void pbx_dialog_free(pbx_dialog *d)
{
  if (!d)
    return;
  if (d->busy) {
    d->freed = true;
    return;
  }
  dialog_destroy(d);
}
