/* Inside the pbx_dialog module (not for other modules: pbx_dialog.h is the
 * API).  The dialog struct, shared by pbx_dialog.c (the INVITE dialog on nta
 * legs: INVITE, PRACK, ACK, CANCEL, 2xx retransmission, BYE, the dispatch of
 * in-dialog requests, free from inside a callback) and pbx_dialog_session.c
 * (the confirmed dialog: session timers, offers both ways, other requests);
 * the small helpers both use; and what each file calls of the other.
 */
#pragma once

#include "sip/pbx_dialog.h"

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/su_wait.h>

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

/* A 2xx to an INVITE sent again until its ACK (RFC 3261 13.3.1.4) */
typedef struct {
  su_timer_t *timer;
  unsigned interval, elapsed; /* ms */
} ok_retx;

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
  ok_retx retx;

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
  ok_retx re_retx;
};

/* ---- pbx_dialog.c ---- */

void dialog_destroy(pbx_dialog *d);
int dialog_reply(pbx_dialog *d, nta_incoming_t *irq, int status, const char *phrase,
                 const char *sdp, const session_terms *t);
int dialog_send_ack_cseq(pbx_dialog *d, nta_leg_t *leg, uint32_t cseq);
int dialog_request_to_owner(pbx_dialog *d, nta_incoming_t *irq, sip_t const *sip);
void dialog_retx_start(pbx_dialog *d, ok_retx *r, su_timer_f fn, bool unreliable);
bool dialog_retx_due(pbx_dialog *d, ok_retx *r, su_timer_f fn, bool unreliable);
void dialog_no_ack(pbx_dialog *d, const char *what);

/* ---- pbx_dialog_session.c ---- */

void dialog_remote_sdp_seen(pbx_dialog *d, sip_t const *sip);
session_terms dialog_terms_for_request(const pbx_dialog *d, sip_t const *sip);
session_terms dialog_terms_from_response(sip_t const *sip);
const char *dialog_se_value(char *buf, size_t size, session_terms t, bool uac);
void dialog_session_start(pbx_dialog *d, session_terms t);
int dialog_offer_request(pbx_dialog *d, nta_incoming_t *irq, sip_t const *sip);
void dialog_reinvite_acked(pbx_dialog *d, nta_incoming_t *irq, sip_t const *sip);
void dialog_reinvite_done(pbx_dialog *d);
void dialog_rq_free(pbx_dialog_rq *rq);
int dialog_on_other_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip);

/* ---- helpers for both ---- */

static inline void enter(pbx_dialog *d)
{
  d->busy++;
}

/* true: the dialog is gone, touch nothing */
static inline bool leave(pbx_dialog *d)
{
  if (--d->busy == 0 && d->freed) {
    dialog_destroy(d);
    return true;
  }
  return false;
}

static inline int internal_status(int status)
{
  /* no response came: 408 timeout, anything else is "cannot send" */
  return status == 408 ? 408 : 503;
}

static inline url_string_t *next_hop(const pbx_dialog *d)
{
  return (url_string_t *)pbx_link_target_url(d->link);
}

static inline void cseq_init(sip_cseq_t *cs, uint32_t seq, sip_method_t method, const char *name)
{
  sip_cseq_init(cs);
  cs->cs_seq = seq;
  cs->cs_method = method;
  cs->cs_method_name = name;
}

static inline void timer_stop(su_timer_t **t)
{
  if (*t) {
    su_timer_destroy(*t);
    *t = NULL;
  }
}

static inline void timer_start(pbx_dialog *d, su_timer_t **t, su_timer_f fn, unsigned ms)
{
  if (!*t)
    *t = su_timer_create(su_root_task(pbx_link_root(d->link)), T1_MS);
  if (*t)
    su_timer_set_interval(*t, fn, (su_timer_arg_t *)d, ms);
}
