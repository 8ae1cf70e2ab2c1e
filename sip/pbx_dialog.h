/* One INVITE dialog with the PBX, on Sofia-SIP's nta dialog legs (the agent
 * of sip/pbx.h; what nta does and does not do there: top of pbx_dialog.c).  rtcsipd is the UAC (a browser calls the PBX:
 * pbx_dialog_invite) or the UAS (the PBX calls a browser: pbx_dialog_accept).
 * nta does retransmissions, timers, the ACK of a non-2xx final response and
 * the matching of in-dialog requests (by Call-ID and tags) to the dialog.
 * Nothing here knows about browsers, SDP contents or call states: the owner
 * (gateway/call.c) decides, this module sends.
 *
 * Callbacks never free the dialog themselves; the owner may call
 * pbx_dialog_free() from inside any of them.
 *
 * Order of callbacks.  UAC: on_invite_response for each 1xx except 100, then
 * once for the final (a 2xx only once: its retransmissions are ACKed here
 * again once pbx_dialog_ack() was called, 2xx from other forks are ACKed and
 * BYEd here, neither is reported); on_request for in-dialog requests (BYE)
 * after the 2xx.  UAS: on_cancel (at most once, before a final), on_ack
 * (once, after a 2xx), on_ack_timeout (instead of on_ack, 32 s after the
 * 2xx), on_request (BYE, re-INVITE ...).  Either: on_bye_response once per
 * pbx_dialog_bye().  Mid-call (issue 4): on_offer, on_ack_sdp,
 * on_offer_response, on_session_expired at any time after the 2xx.
 * Every request (also in-dialog ones) is sent to the
 * configured PBX address as next hop; Request-URI and Route come from the
 * dialog.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/sip.h>

#include "sip/pbx.h"

typedef struct pbx_dialog pbx_dialog;
typedef struct pbx_dialog_rq pbx_dialog_rq; /* an offer from the PBX, answered later */

typedef struct {
  /* UAC: a response to rtcsipd's INVITE.  RESPONSE is borrowed; NULL when
   * the transaction failed here (STATUS 408: no answer in time, 503: cannot
   * send).  After a final STATUS no more calls come.  A non-2xx final was
   * ACKed by nta already; a 2xx waits for pbx_dialog_ack(). */
  void (*on_invite_response)(void *user, int status, msg_t *response);
  /* UAS: the PBX sent CANCEL for its INVITE (nta answered the CANCEL with
   * 200).  The INVITE still needs its final response (487) from the owner:
   * answer it from inside this callback (pbx_dialog_respond(d, 487, ...));
   * otherwise nta answers 487 itself as soon as on_cancel returns, and a
   * later pbx_dialog_respond(487) returns 0 without sending. */
  void (*on_cancel)(void *user);
  /* An in-dialog request from the PBX other than ACK and CANCEL (BYE, INFO,
   * re-INVITE, UPDATE, ...).  REQUEST is borrowed.  Returns the status the
   * dialog answers it with (200 for BYE, 405, 488 ...).  A 2xx returned
   * for a re-INVITE becomes 500 (nta: a 2xx to an INVITE needs Contact and
   * SDP): re-INVITEs and UPDATEs with SDP go to on_offer instead when it is
   * set, and session refreshes never come here (see on_offer). */
  int (*on_request)(void *user, msg_t *request);
  /* UAS: the ACK for rtcsipd's 2xx arrived. */
  void (*on_ack)(void *user);
  /* The final answer to rtcsipd's BYE (408/503 made here when none came). */
  void (*on_bye_response)(void *user, int status);
  /* UAS, optional (may be NULL): no ACK came for rtcsipd's 2xx within 32 s
   * (RFC 3261 13.3.1.4: the owner should send BYE). */
  void (*on_ack_timeout)(void *user);

  /* Issue 4, all optional (NULL: the feature is refused as before).
   * A re-INVITE (with or without SDP) in a confirmed dialog, or an UPDATE
   * with SDP (also in an early dialog) from the PBX.  A re-INVITE while
   * pbx_dialog_offer_pending() is glare: answer it 491.  REQUEST borrowed; answer RQ with
   * pbx_dialog_answer_offer() now or later (RQ stays valid until then or
   * until pbx_dialog_free()).  Session refreshes that change nothing (UPDATE
   * without SDP; a re-INVITE whose SDP has the same o= session version as
   * the PBX's last one) are answered here (200 with the last local SDP) and
   * do not come here.  Without on_offer these requests go to on_request. */
  void (*on_offer)(void *user, pbx_dialog_rq *rq, msg_t *request);
  /* The final answer to pbx_dialog_send_offer(): 2xx (ACKed already) or an
   * error; a 491 was retried first (RFC 3261 14.1: after 2.1-4 s if rtcsipd
   * owns the Call-ID, else 0-2 s; up to 3 times).  RESPONSE borrowed, NULL
   * when the status was made here (408, 503). */
  void (*on_offer_response)(void *user, int status, msg_t *response);
  /* The session timer ran out, or a refresh rtcsipd sent failed (not 491):
   * the owner ends the call (BYE both sides).  WHY: "no refresh from the
   * PBX", "refresh failed: 408" ... */
  void (*on_session_expired)(void *user, const char *why);
  /* The SDP answer carried by an ACK (after a re-INVITE without SDP that
   * rtcsipd answered with its offer).  ACK borrowed. */
  void (*on_ack_sdp)(void *user, msg_t *ack);
  /* Optional: the final answer to a request of pbx_dialog_send_request()
   * (METHOD names it); RESPONSE borrowed, NULL when made here (408, 503). */
  void (*on_request_response)(void *user, const char *method, int status, msg_t *response);
} pbx_dialog_callbacks;

typedef struct {
  const char *request_uri;    /* "sip:1000@example.com" */
  const sip_from_t *from;     /* rtcsipd's From toward the PBX, with its tag (copied) */
  const sip_to_t *to;         /* no tag (copied) */
  const char *call_id;
  uint32_t cseq;              /* the INVITE's CSeq number; 0: a random one */
  const char *contact_user;   /* user part of rtcsipd's Contact; NULL: none */
  const char *sdp;            /* the offer (application/sdp), required */
  /* Authorization and Proxy-Authorization headers of this message (the
   * browser's INVITE) are copied unchanged into the INVITE; NULL: none. */
  msg_t *credentials_from;
  /* RFC 4028.  The INVITE always has Supported: timer, 100rel.  A 422 with
   * Min-SE is answered here (the INVITE again with the larger interval, at
   * most twice) and not reported. */
  unsigned session_expires;   /* 0: no Session-Expires in the INVITE; else its value */
  unsigned min_se;            /* Min-SE of the INVITE; 0: none */
} pbx_invite_params;

/* UAC: sends an INVITE to the PBX.  0 and *ret, or a negative errno
 * (-EINVAL bad parameters, -EIO nta refused it). */
int pbx_dialog_invite(pbx_link *link, const pbx_invite_params *params,
                      const pbx_dialog_callbacks *cb, void *user, pbx_dialog **ret);

/* UAS: takes over TX, an INVITE from the PBX that no dialog took (from the
 * pbx_callbacks.on_request of sip/pbx.h, now or later), as a new dialog with
 * a local tag.  0 and *ret; on failure TX was answered 500 (481 when its To
 * had a tag already) and freed. */
int pbx_dialog_accept(pbx_link *link, pbx_server_tx *tx, const pbx_dialog_callbacks *cb,
                      void *user, pbx_dialog **ret);
/* UAS: the PBX's INVITE (borrowed). */
msg_t *pbx_dialog_invite_request(const pbx_dialog *d);
/* UAS: a response to the PBX's INVITE: 1xx (SDP optional), 2xx (SDP
 * required; with rtcsipd's Contact) or 3xx-6xx.  -EALREADY after a final.
 * PHRASE NULL: the standard one.  Over UDP the 2xx is retransmitted until
 * the ACK (or 32 s, on_ack_timeout, or pbx_dialog_bye()). */
int pbx_dialog_respond(pbx_dialog *d, int status, const char *phrase, const char *sdp);

/* UAC: ACK for the 2xx (route set and remote target from the 2xx). */
int pbx_dialog_ack(pbx_dialog *d);
/* UAC: CANCEL the INVITE while it has no final response.  The INVITE's final
 * response (487, or a 2xx that crossed the CANCEL) still comes through
 * on_invite_response. */
int pbx_dialog_cancel(pbx_dialog *d);
/* Either role, after a 2xx: BYE; its answer comes through on_bye_response. */
int pbx_dialog_bye(pbx_dialog *d);

bool pbx_dialog_confirmed(const pbx_dialog *d); /* a 2xx went out or came in */
/* rtcsipd's tag and the PBX's (NULL while unknown). */
void pbx_dialog_tags(const pbx_dialog *d, const char **local, const char **remote);

/* The answer to an offer from on_offer: a 2xx (SDP required for a
 * re-INVITE; for a re-INVITE without SDP it is rtcsipd's offer and the ACK
 * brings the answer through on_ack_sdp; UPDATE: SDP required) or an error
 * (491 in glare, 488 ...).  Frees RQ (also on failure).  0, -EINVAL, -EIO. */
int pbx_dialog_answer_offer(pbx_dialog *d, pbx_dialog_rq *rq, int status, const char *phrase,
                            const char *sdp);
/* rtcsipd's offer in the confirmed dialog: a re-INVITE with SDP.  -EBUSY
 * while another offer of rtcsipd's (or a refresh re-INVITE) is pending; the
 * answer comes through on_offer_response. */
int pbx_dialog_send_offer(pbx_dialog *d, const char *sdp);
/* Another request in the confirmed dialog (INFO, REFER, NOTIFY, ...; not
 * INVITE, ACK, CANCEL, BYE, PRACK), BODY (may be NULL) of CONTENT_TYPE, more
 * headers in EXTRA ("Name: value" lines, parsed by Sofia; may be NULL).  Its
 * final answer goes to on_request_response.  0, -EINVAL, -EIO. */
int pbx_dialog_send_request(pbx_dialog *d, const char *method, const char *content_type,
                            const char *body, const char *extra);
/* true while rtcsipd's re-INVITE has no final answer: a re-INVITE from the
 * PBX now is glare (answer it 491). */
bool pbx_dialog_offer_pending(const pbx_dialog *d);
/* The SDP rtcsipd sent last toward the PBX (its offer or answer), repeated
 * by refreshes.  pbx_dialog_invite/respond/answer_offer/send_offer record
 * it themselves; this sets it explicitly (copied). */
void pbx_dialog_set_local_sdp(pbx_dialog *d, const char *sdp);
const char *pbx_dialog_call_id(const pbx_dialog *d);

/* Stops the callbacks, destroys the legs and transactions (nta finishes what
 * must be finished quietly).  NULL: no-op.  UAS: an INVITE without a final
 * response is answered 500 (487 after a CANCEL).  UAC: an INVITE without a
 * final response is CANCELled; a 2xx arriving after the free is not ACKed
 * (the PBX gives up on its own, RFC 3261 13.3.1.4). */
void pbx_dialog_free(pbx_dialog *d);
