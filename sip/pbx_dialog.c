/* One INVITE dialog with the PBX on nta dialog legs.  See pbx_dialog.h.
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
 *   and destroyed by nta; nta turns a 2xx for a re-INVITE into 500.
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
 * - Transaction failures come as internal responses (nta_sip_is_internal):
 *   408 (timer B), 503 (transport); they are reported with response NULL.
 * - Every request (INVITE, ACK, BYE, CANCEL) goes to the configured PBX
 *   address (pbx_link_target_url) as the next hop, like an outbound proxy;
 *   the Request-URI and Route headers come from the dialog (remote target
 *   and route set).  Only the configured PBX is ever a destination.
 *
 * Freeing from inside a callback: every entry from nta into this file
 * counts itself in d->busy; pbx_dialog_free() with busy > 0 only marks the
 * dialog, and the outermost entry destroys it on its way out.
 */
#include "sip/pbx_dialog.h"

#include <errno.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/su_wait.h>

#include "config/log.h"

enum {
  T1_MS = 500,
  T2_MS = 4000,
  T1X64_MS = 64 * T1_MS,
};

typedef struct {
  pbx_dialog *d;
  nta_leg_t *leg;
  nta_outgoing_t *bye;
  char *tag;
} fork_leg;

struct pbx_dialog {
  su_home_t home[1];
  pbx_link *link;
  pbx_dialog_callbacks cb;
  void *user;
  char *name;          /* log id */
  char *call_id;
  char *contact;       /* "<sip:user@host:port;transport=udp>" */
  bool uas;
  bool confirmed;      /* a 2xx went out or came in */
  unsigned busy;       /* nesting depth of calls from nta */
  bool freed;          /* pbx_dialog_free() came while busy */
  nta_leg_t *leg;
  uint32_t local_cseq; /* the last CSeq number rtcsipd used */

  /* UAC */
  nta_outgoing_t *invite;
  uint32_t invite_cseq;
  int invite_final;    /* final status received, 0: none yet */
  bool cancelled;      /* UAC: CANCEL sent; UAS: CANCEL received */
  bool ack_sent;       /* the owner ACKed the 2xx */
  char *rtag;          /* the To tag of the 2xx that won */
  GSList *forks;       /* fork_leg *: other branches' 2xx being BYEd */

  /* UAS */
  nta_incoming_t *irq;
  msg_t *request;
  bool unreliable;     /* the INVITE came over UDP: the 2xx is retransmitted here */
  bool acked;
  int final_status;    /* 2xx sent: status, phrase, sdp kept for retransmissions */
  char *final_phrase;
  char *final_sdp;
  su_timer_t *retx_timer;
  unsigned retx_interval, retx_elapsed;

  /* either role */
  nta_outgoing_t *bye;
};

static void dialog_destroy(pbx_dialog *d);

static void enter(pbx_dialog *d)
{
  d->busy++;
}

/* true: the dialog is gone, touch nothing */
static bool leave(pbx_dialog *d)
{
  if (--d->busy == 0 && d->freed) {
    dialog_destroy(d);
    return true;
  }
  return false;
}

static int internal_status(int status)
{
  /* no response came: 408 timeout, anything else is "cannot send" */
  return status == 408 ? 408 : 503;
}

static url_string_t *next_hop(const pbx_dialog *d)
{
  return (url_string_t *)pbx_link_target_url(d->link);
}

static void cseq_init(sip_cseq_t *cs, uint32_t seq, sip_method_t method, const char *name)
{
  sip_cseq_init(cs);
  cs->cs_seq = seq;
  cs->cs_method = method;
  cs->cs_method_name = name;
}

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
  if (d->retx_timer) {
    su_timer_destroy(d->retx_timer);
    d->retx_timer = NULL;
  }
}

static int on_leg_request(nta_leg_magic_t *magic, nta_leg_t *leg, nta_incoming_t *irq,
                          sip_t const *sip)
{
  pbx_dialog *d = (pbx_dialog *)magic;
  sip_method_t method = sip->sip_request->rq_method;
  msg_t *msg;
  int status;

  (void)leg;
  if (method == sip_method_ack) {
    nta_incoming_destroy(irq);
    if (d->uas && d->confirmed && !d->acked && !d->freed) {
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
  if (d->freed || !d->cb.on_request)
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

/* ---- UAC ---- */

static int send_ack(pbx_dialog *d, nta_leg_t *leg)
{
  sip_cseq_t cs[1];
  nta_outgoing_t *ack;

  cseq_init(cs, d->invite_cseq, sip_method_ack, "ACK");
  ack = nta_outgoing_tcreate(leg, NULL, NULL, next_hop(d), SIP_METHOD_ACK, NULL,
                             SIPTAG_CSEQ(cs), TAG_END());
  if (!ack)
    return -EIO;
  nta_outgoing_destroy(ack); /* nta keeps it as long as needed */
  return 0;
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
  }
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
      nta_leg_client_route(d->leg, sip->sip_record_route, sip->sip_contact);
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
  sip_t const *cred = p->credentials_from ? sip_object(p->credentials_from) : NULL;
  sip_cseq_t cs[1];
  pbx_dialog *d;

  if (!link || !p || !cb || !ret || !p->request_uri || !p->from || !p->from->a_tag || !p->to ||
      !p->call_id || !*p->call_id || !p->sdp)
    return -EINVAL;

  d = dialog_new(link, cb, user, p->call_id);
  d->invite_cseq = p->cseq ? p->cseq : (g_random_int() & 0x7fffffff) + 1;
  d->local_cseq = d->invite_cseq;
  d->contact = make_contact(d->home, link, p->contact_user);

  d->leg = nta_leg_tcreate(pbx_link_agent(link), on_leg_request, (nta_leg_magic_t *)d,
                           SIPTAG_CALL_ID_STR(p->call_id), SIPTAG_FROM(p->from),
                           SIPTAG_TO(p->to), TAG_END());
  if (!d->leg) {
    dialog_destroy(d);
    return -EIO;
  }
  cseq_init(cs, d->invite_cseq, sip_method_invite, "INVITE");
  d->invite = nta_outgoing_tcreate(d->leg, on_invite_response, (nta_outgoing_magic_t *)d,
                                   next_hop(d), SIP_METHOD_INVITE,
                                   URL_STRING_MAKE(p->request_uri),
                                   SIPTAG_CSEQ(cs),
                                   SIPTAG_CONTACT_STR(d->contact),
                                   TAG_IF(cred, SIPTAG_AUTHORIZATION(cred ? cred->sip_authorization : NULL)),
                                   TAG_IF(cred, SIPTAG_PROXY_AUTHORIZATION(cred ? cred->sip_proxy_authorization : NULL)),
                                   SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                                   SIPTAG_PAYLOAD_STR(p->sdp),
                                   TAG_END());
  if (!d->invite) {
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

static int uas_send(pbx_dialog *d, int status, const char *phrase, const char *sdp)
{
  bool contact = status > 100 && status < 300;

  if (!phrase)
    phrase = sip_status_phrase(status);
  return nta_incoming_treply(d->irq, status, phrase ? phrase : "",
                             TAG_IF(contact, SIPTAG_CONTACT_STR(d->contact)),
                             TAG_IF(sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                             TAG_IF(sdp, SIPTAG_PAYLOAD_STR(sdp)),
                             TAG_END());
}

static void on_retx_timer(su_root_magic_t *rm, su_timer_t *t, su_timer_arg_t *arg)
{
  pbx_dialog *d = (pbx_dialog *)arg;

  (void)rm;
  (void)t;
  if (d->acked || d->freed)
    return;
  d->retx_elapsed += d->retx_interval;
  if (d->retx_elapsed >= T1X64_MS) {
    retx_stop(d);
    log_id(d->name, LOG_INFO, "pbx dialog: no ACK for the %d in %u s", d->final_status,
           T1X64_MS / 1000);
    if (d->cb.on_ack_timeout) {
      enter(d);
      d->cb.on_ack_timeout(d->user);
      leave(d);
    }
    return;
  }
  uas_send(d, d->final_status, d->final_phrase, d->final_sdp);
  d->retx_interval = MIN(2 * d->retx_interval, (unsigned)T2_MS);
  su_timer_set_interval(d->retx_timer, on_retx_timer, (su_timer_arg_t *)d,
                        MIN(d->retx_interval, (unsigned)T1X64_MS - d->retx_elapsed));
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
  if (status >= 200 && status < 300) {
    d->confirmed = true;
    d->final_status = status;
    d->final_phrase = su_strdup(d->home, phrase);
    d->final_sdp = su_strdup(d->home, sdp);
    if (d->unreliable) {
      d->retx_timer = su_timer_create(su_root_task(pbx_link_root(d->link)), T1_MS);
      d->retx_interval = T1_MS;
      d->retx_elapsed = 0;
      if (d->retx_timer)
        su_timer_set(d->retx_timer, on_retx_timer, (su_timer_arg_t *)d);
    }
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

static void dialog_destroy(pbx_dialog *d)
{
  retx_stop(d);
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
