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
 *   and destroyed by nta; nta turns a 2xx for an INVITE returned that way
 *   into 500 (leg_recv(): "invalid INVITE status"), because a 2xx to an
 *   INVITE needs a Contact and an SDP.  So re-INVITEs (and UPDATEs) are
 *   kept: the callback returns 0 and the irq is answered later with
 *   nta_incoming_treply().  Like the initial 2xx, the 2xx to a re-INVITE
 *   ends the transaction for nta: this file retransmits it over UDP and
 *   takes its ACK (matched by CSeq) at the leg callback.
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
 * Session timers (RFC 4028) and offers in the dialog are this file's, not
 * nta's: one su_timer refreshes (rtcsipd the refresher: UPDATE without SDP
 * when the PBX allows UPDATE, else a re-INVITE with the last local SDP) or
 * expires the session (the PBX the refresher).
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
#include <sofia-sip/sdp.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/su_wait.h>

#include "config/log.h"

enum {
  T1_MS = 500,
  T2_MS = 4000,
  T1X64_MS = 64 * T1_MS,
  MAX_422_RETRIES = 2,
  MAX_491_RETRIES = 3,
};

/* Session-Expires terms agreed for a transaction */
typedef struct {
  unsigned se;      /* seconds, 0: no session timer */
  bool we_refresh;  /* rtcsipd sends the refreshes */
  bool require;     /* the 2xx says Require: timer (the PBX supports it) */
} session_terms;

struct pbx_dialog_rq {
  nta_incoming_t *irq;
  sip_method_t method;
  bool has_sdp;
  session_terms terms; /* for a 2xx */
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

  /* UAC INVITE, kept to send it again after a 422 */
  char *request_uri;
  sip_authorization_t *auth;
  sip_proxy_authorization_t *proxy_auth;
  unsigned invite_se, invite_min_se;
  unsigned n_422;
  GSList *old_invites;   /* nta_outgoing_t *: INVITEs answered 422 */
  uint32_t last_rseq;    /* the last reliable provisional PRACKed */
  GSList *others;        /* nta_outgoing_t *: PRACKs, INFOs ... (answers only logged) */

  /* UAS: the terms for the 2xx to the PBX's INVITE */
  session_terms invite_terms;

  /* session */
  char *local_sdp;       /* g_malloc */
  bool have_remote_version;
  uint64_t remote_version; /* o= version of the PBX's last SDP */
  bool pbx_allows_update;
  session_terms terms;   /* in force */
  su_timer_t *session_timer;

  /* rtcsipd's request in the dialog: an offer (re-INVITE) or a refresh */
  bool ours_active;      /* sent, or waiting to be sent again after a 491 */
  bool ours_refresh;
  sip_method_t ours_method;
  char *ours_sdp;        /* g_malloc; NULL: UPDATE without SDP */
  unsigned ours_491;
  nta_outgoing_t *ours;
  uint32_t ours_cseq;
  nta_outgoing_t *ours_done; /* the last re-INVITE answered 2xx: its 2xx again is ACKed again */
  uint32_t ours_done_cseq;
  su_timer_t *retry_timer;

  /* the PBX's requests */
  GSList *rqs;           /* pbx_dialog_rq *: waiting for pbx_dialog_answer_offer */
  nta_incoming_t *re_irq; /* a re-INVITE answered 2xx, waiting for its ACK */
  uint32_t re_cseq;
  char *re_sdp;          /* g_malloc */
  session_terms re_terms;
  su_timer_t *re_timer;
  unsigned re_interval, re_elapsed;
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


/* ---- SDP, timers, session terms ---- */

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

  if (!is_sdp(sip))
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
static void remote_sdp_seen(pbx_dialog *d, sip_t const *sip)
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

static void timer_stop(su_timer_t **t)
{
  if (*t) {
    su_timer_destroy(*t);
    *t = NULL;
  }
}

static void timer_start(pbx_dialog *d, su_timer_t **t, su_timer_f fn, unsigned ms)
{
  if (!*t)
    *t = su_timer_create(su_root_task(pbx_link_root(d->link)), T1_MS);
  if (*t)
    su_timer_set_interval(*t, fn, (su_timer_arg_t *)d, ms);
}

/* The terms for a 2xx to the PBX's request SIP (INVITE, re-INVITE, UPDATE):
 * its Session-Expires, refreshed by the PBX unless it said refresher=uas or
 * does not support timer; no Session-Expires: the terms in force stay when
 * the PBX supports timer, else there is no timer. */
static session_terms terms_for_request(const pbx_dialog *d, sip_t const *sip)
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
static session_terms terms_from_response(sip_t const *sip)
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
static const char *se_value(char *buf, size_t size, session_terms t, bool uac)
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
static void session_start(pbx_dialog *d, session_terms t)
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

/* ---- in-dialog requests from the PBX (both roles) ---- */

static void retx_stop(pbx_dialog *d)
{
  if (d->retx_timer) {
    su_timer_destroy(d->retx_timer);
    d->retx_timer = NULL;
  }
}

static int pbx_offer_request(pbx_dialog *d, nta_incoming_t *irq, sip_t const *sip);
static void reinvite_acked(pbx_dialog *d, nta_incoming_t *irq, sip_t const *sip);

/* A request for the owner's on_request, answered with what it returns. */
static int request_to_owner(pbx_dialog *d, nta_incoming_t *irq, sip_t const *sip)
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
      reinvite_acked(d, irq, sip);
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
    return pbx_offer_request(d, irq, sip);
  return request_to_owner(d, irq, sip);
}

/* ---- UAC ---- */

static int send_ack_cseq(pbx_dialog *d, nta_leg_t *leg, uint32_t cseq)
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
  return send_ack_cseq(d, leg, d->invite_cseq);
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

/* The answer to a PRACK or to pbx_dialog_send_request(): logged only. */
static int on_other_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip)
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
  remote_sdp_seen(d, sip);
  sip_rack_init(rack);
  rack->ra_response = sip->sip_rseq->rs_response;
  rack->ra_cseq = sip->sip_cseq->cs_seq;
  rack->ra_method = sip_method_invite;
  rack->ra_method_name = "INVITE";
  cseq_init(cs, ++d->local_cseq, sip_method_prack, "PRACK");
  prack = nta_outgoing_tcreate(d->leg, on_other_response, (nta_outgoing_magic_t *)d, next_hop(d),
                               SIP_METHOD_PRACK, NULL, SIPTAG_CSEQ(cs), SIPTAG_RACK(rack),
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
      remote_sdp_seen(d, sip);
      session_start(d, terms_from_response(sip));
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
  set_local_sdp(d, p->sdp);

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
static int reply(pbx_dialog *d, nta_incoming_t *irq, int status, const char *phrase,
                 const char *sdp, const session_terms *t)
{
  bool contact = status > 100 && status < 300;
  bool ok = status >= 200 && status < 300;
  char buf[48];
  const char *se = ok && t ? se_value(buf, sizeof buf, *t, false) : NULL;

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
  return reply(d, d->irq, status, phrase, sdp, &d->invite_terms);
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
  d->invite_terms = terms_for_request(d, sip);
  d->pbx_allows_update = sip->sip_allow &&
    sip_is_allowed(sip->sip_allow, sip_method_update, "UPDATE");
  remote_sdp_seen(d, sip);
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
  set_local_sdp(d, sdp);
  if (status >= 200 && status < 300) {
    d->confirmed = true;
    session_start(d, d->invite_terms);
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

/* ---- offers from the PBX: re-INVITE, UPDATE ---- */

static void reinvite_done(pbx_dialog *d)
{
  timer_stop(&d->re_timer);
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
  d->re_elapsed += d->re_interval;
  if (d->re_elapsed >= T1X64_MS) {
    reinvite_done(d);
    log_id(d->name, LOG_INFO, "pbx dialog: no ACK for the 2xx to a re-INVITE in %u s",
           T1X64_MS / 1000);
    if (d->cb.on_ack_timeout) {
      enter(d);
      d->cb.on_ack_timeout(d->user);
      leave(d);
    }
    return;
  }
  if (unreliable(d))
    reply(d, d->re_irq, 200, NULL, d->re_sdp, &d->re_terms);
  d->re_interval = unreliable(d) ? MIN(2 * d->re_interval, (unsigned)T2_MS) : T1X64_MS;
  timer_start(d, &d->re_timer, on_re_timer, MIN(d->re_interval, (unsigned)T1X64_MS - d->re_elapsed));
}

/* 200 with SDP to a re-INVITE (IRQ taken); kept until the ACK. */
static int reinvite_ok(pbx_dialog *d, nta_incoming_t *irq, const char *phrase, const char *sdp,
                       session_terms t)
{
  if (reply(d, irq, 200, phrase, sdp, &t) < 0) {
    nta_incoming_destroy(irq);
    return -EIO;
  }
  reinvite_done(d);
  d->re_irq = irq;
  d->re_cseq = nta_incoming_cseq(irq);
  d->re_sdp = g_strdup(sdp);
  d->re_terms = t;
  d->re_elapsed = 0;
  d->re_interval = unreliable(d) ? T1_MS : T1X64_MS;
  timer_start(d, &d->re_timer, on_re_timer, d->re_interval);
  return 0;
}

static void reinvite_acked(pbx_dialog *d, nta_incoming_t *irq, sip_t const *sip)
{
  bool sdp = is_sdp(sip);
  msg_t *msg = sdp && d->cb.on_ack_sdp ? nta_incoming_getrequest(irq) : NULL;

  if (sdp)
    remote_sdp_seen(d, sip);
  nta_incoming_destroy(irq); /* SIP is gone with it */
  reinvite_done(d);
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
static int pbx_offer_request(pbx_dialog *d, nta_incoming_t *irq, sip_t const *sip)
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
  t = terms_for_request(d, sip);
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
      reply(d, irq, 200, NULL, NULL, &t);
      nta_incoming_destroy(irq);
    }
    session_start(d, t);
    return 0;
  }
  if (!d->cb.on_offer)
    return request_to_owner(d, irq, sip);

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
    remote_sdp_seen(d, sip_object(msg));
    msg_destroy(msg);
    set_local_sdp(d, sdp);
    if (rq->method == sip_method_invite)
      r = reinvite_ok(d, irq, phrase, sdp, rq->terms);
    else {
      r = reply(d, irq, status, phrase, sdp, &rq->terms);
      nta_incoming_destroy(irq);
    }
    session_start(d, rq->terms);
  }
  else {
    r = reply(d, irq, status, phrase, NULL, NULL);
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
  const char *se = se_value(buf, sizeof buf, d->terms, true);
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
      send_ack_cseq(d, d->leg, d->ours_done_cseq); /* the PBX did not get our ACK */
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
      send_ack_cseq(d, d->leg, d->ours_cseq);
      if (d->ours_done)
        nta_outgoing_destroy(d->ours_done);
      d->ours_done = orq; /* for 2xx retransmissions */
      d->ours_done_cseq = d->ours_cseq;
    }
    d->ours_active = false;
    if (sip->sip_allow)
      d->pbx_allows_update = sip_is_allowed(sip->sip_allow, sip_method_update, "UPDATE");
    remote_sdp_seen(d, sip);
    session_start(d, terms_from_response(sip));
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
    session_start(d, d->terms); /* its 2xx restarts the timer; else try again */
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
  orq = nta_outgoing_tcreate(d->leg, on_other_response, (nta_outgoing_magic_t *)d, next_hop(d),
                             m, method, NULL, SIPTAG_CSEQ(cs),
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

static void rq_free(pbx_dialog_rq *rq)
{
  nta_incoming_treply(rq->irq, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
  nta_incoming_destroy(rq->irq);
  g_free(rq);
}

static void dialog_destroy(pbx_dialog *d)
{
  retx_stop(d);
  timer_stop(&d->session_timer);
  timer_stop(&d->retry_timer);
  reinvite_done(d);
  g_slist_free_full(d->rqs, (GDestroyNotify)rq_free);
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
