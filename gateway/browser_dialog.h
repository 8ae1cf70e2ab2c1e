/* The browser's side of one INVITE dialog, over the browser's WebSocket
 * flow.  Built on sip/sipmsg.h (Sofia-SIP).
 *
 * UAS (the browser calls: browser_dialog_new): keeps the INVITE, sends its
 * provisional and final responses (a 2xx with rtcsipd's To tag, Contact and
 * the SDP answer).
 * UAC (rtcsipd calls the browser: browser_dialog_new_uac): sends the INVITE
 * with rtcsipd's offer, takes its responses (browser_dialog_take_response),
 * ACKs them, CANCELs it.  The WebSocket is reliable: nothing is
 * retransmitted; the call times out what goes unanswered.
 * Both: tells which later requests belong to the dialog (Call-ID and tags),
 * answers them (with SDP and headers: re-INVITE, UPDATE, INFO, REFER ...),
 * sends rtcsipd's own in-dialog requests and matches their answers (one
 * re-INVITE/UPDATE at a time, a few others), ACKs the answers to its
 * re-INVITEs, and sends the BYE when rtcsipd ends the call.  No media, no
 * call state: see gateway/call.c and gateway/echo.c.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/sip.h>

#include "sip/ws_edge.h"

typedef struct browser_dialog browser_dialog;

/* INVITE (consumed) arrived on CONN; ADVERTISED is rtcsipd's address for
 * Contact and Via.  EDGE finds the flow again later.  NULL on failure (the
 * INVITE is then freed). */
browser_dialog *browser_dialog_new(ws_edge *edge, ws_conn *conn, msg_t *invite,
                                   const char *advertised);
void browser_dialog_free(browser_dialog *d);

uint64_t browser_dialog_flow(const browser_dialog *d);
const char *browser_dialog_call_id(const browser_dialog *d);
/* UAS: the INVITE as the browser sent it (borrowed); UAC: NULL. */
msg_t *browser_dialog_invite(const browser_dialog *d);
/* A final response to the INVITE went out (UAS) or came (UAC). */
bool browser_dialog_answered(const browser_dialog *d);
/* That final response was a 2xx. */
bool browser_dialog_confirmed(const browser_dialog *d);

/* True when REQUEST, which came on flow FLOW, belongs to this dialog: same
 * flow and Call-ID, the browser's tag in From, and (but for CANCEL and an
 * ACK to a non-2xx of a UAS dialog) rtcsipd's tag in To. */
bool browser_dialog_matches(const browser_dialog *d, uint64_t flow, msg_t *request);

/* UAS: a response to the INVITE: 1xx, 2xx (with SDP, required) or 3xx-6xx;
 * 101-299 carry rtcsipd's Contact.
 * 0, -EALREADY after a final response, -ENOTCONN (flow gone), -EINVAL. */
int browser_dialog_respond(browser_dialog *d, int status, const char *phrase, const char *sdp);
/* UAS: the PBX's final RESPONSE (3xx-6xx, borrowed) relayed as the answer
 * to the browser's INVITE: its status, phrase, Reason, Warning,
 * Retry-After, Unsupported, Allow and the challenges of a 401/407
 * (WWW-Authenticate, Proxy-Authenticate), which the browser answers in its
 * retried INVITE.  0, -EALREADY, -ENOTCONN (flow gone; the INVITE counts as
 * answered), -EINVAL (not a 3xx-6xx, or a UAC dialog). */
int browser_dialog_respond_relay(browser_dialog *d, msg_t *response);
/* A response to an in-dialog REQUEST (not consumed), with rtcsipd's To tag. */
int browser_dialog_reply(browser_dialog *d, msg_t *request, int status, const char *phrase);
/* A response to an in-dialog REQUEST of the browser (not consumed) with
 * SDP (may be NULL), extra headers (as for browser_dialog_send_request, may
 * be NULL) and, for 2xx to INVITE/UPDATE, rtcsipd's Contact; such a 2xx
 * takes the request's Contact as the remote target (RFC 3261 12.2.2).  For
 * a re-INVITE the browser's ACK later comes as an in-dialog ACK request
 * (browser_dialog_matches).  0, -ENOTCONN, -EINVAL (not a request, an ACK,
 * a bad status or EXTRA). */
int browser_dialog_reply_full(browser_dialog *d, msg_t *request, int status, const char *phrase,
                              const char *sdp, const char *extra);
/* BYE to the browser (after a 2xx): Request-URI its Contact, the route set
 * of the dialog, a new branch.  Its answer is not waited for (it is taken
 * by browser_dialog_take_response as BROWSER_TXN_BYE). */
int browser_dialog_send_bye(browser_dialog *d);

/* A request from rtcsipd to the browser inside the dialog (either role,
 * after the dialog is confirmed; UPDATE also early): METHOD "INVITE" (a
 * re-INVITE), "UPDATE", "INFO", "NOTIFY", "REFER", "OPTIONS" ... (upper-case
 * letters; not ACK, CANCEL, PRACK, REGISTER; "BYE" is browser_dialog_send_bye
 * with a body or headers); CONTENT_TYPE and BODY may be NULL (both or
 * neither); EXTRA: more headers as one string of "Name: value\r\n" lines
 * parsed with Sofia, or NULL (not Via, Route, Max-Forwards, From, To,
 * Call-ID, CSeq, Contact, Content-Type, Content-Length: the dialog sets
 * those).  Request-URI the remote target, the route set, rtcsipd's From/To
 * with tags, CSeq+1, a new branch; INVITE, UPDATE, NOTIFY, REFER and
 * SUBSCRIBE carry rtcsipd's Contact, INVITE and UPDATE an Allow.  0 and
 * *cseq (may be NULL) the CSeq number used, or -EBUSY for a re-INVITE/UPDATE
 * while another offer of ours is pending, -ENOTCONN (flow gone), -EINVAL
 * (bad arguments, no dialog yet, or a BYE went).  Its answers come through
 * browser_dialog_take_response: BROWSER_TXN_REINVITE for a re-INVITE,
 * BROWSER_TXN_BYE for a BYE, BROWSER_TXN_OTHER for the rest (an UPDATE's
 * too); at most 8 other requests are followed at once (a 9th forgets the
 * oldest, whose answer is then not reported). */
int browser_dialog_send_request(browser_dialog *d, const char *method, const char *content_type,
                                const char *body, const char *extra, uint32_t *cseq);
/* A re-INVITE or UPDATE of rtcsipd awaits its final response (a re-INVITE
 * of the browser now gets 491, RFC 3261 14.2). */
bool browser_dialog_offer_pending(const browser_dialog *d);
/* The CSeq number of the response take_response reported last (to tell
 * BROWSER_TXN_OTHER answers apart). */
uint32_t browser_dialog_last_cseq(const browser_dialog *d);
/* rtcsipd's tag and the browser's (NULL before the browser's is known). */
void browser_dialog_tags(const browser_dialog *d, const char **local, const char **remote);

/* ---- UAC ---- */

typedef struct {
  const char *request_uri;  /* the browser's Contact URI (its binding) */
  const sip_from_t *from;   /* the caller as the PBX named it; rtcsipd puts its own tag */
  const sip_to_t *to;       /* the callee as the PBX named it (a tag is dropped) */
  const char *call_id;
  const char *sdp;          /* rtcsipd's WebRTC offer, required */
  const char *extra;        /* more headers ("Name: value" lines, e.g. Replaces), or NULL */
} browser_invite_params;

/* Sends an INVITE over CONN: Via SIP/2.0/WS(S) ADVERTISED with a new branch,
 * Max-Forwards 70, From with a new tag, To, Call-ID, CSeq 1, Contact
 * <sip:rtcsipd@ADVERTISED;transport=ws(s)>, the SDP.  0 and *ret, or a
 * negative errno (-EINVAL, -ENOTCONN). */
int browser_dialog_new_uac(ws_edge *edge, ws_conn *conn, const browser_invite_params *params,
                           const char *advertised, browser_dialog **ret);

typedef enum {
  BROWSER_TXN_INVITE,
  BROWSER_TXN_CANCEL,
  BROWSER_TXN_BYE,
  BROWSER_TXN_REINVITE, /* the answer to our re-INVITE; a 2xx is ACKed here (ACK CSeq
                         * number = the re-INVITE's) */
  BROWSER_TXN_OTHER,    /* the answer to another request sent with
                         * browser_dialog_send_request */
} browser_txn;

/* A response that came on FLOW: when it answers a request of this dialog
 * (Via branch, Call-ID, CSeq number and method), returns true with *which
 * and *status set; a 2xx to the INVITE takes the To tag, the Contact
 * (remote target) and the route set (Record-Route, reversed); a 3xx-6xx to
 * the INVITE is ACKed here.  A 2xx to a re-INVITE or UPDATE takes its
 * Contact as the remote target; any final response to a re-INVITE is ACKed
 * here.  A repeated final response to a re-INVITE is ACKed again and not
 * reported (false), nor is a 1xx after a final response.  Both roles.
 * RESPONSE is borrowed. */
bool browser_dialog_take_response(browser_dialog *d, uint64_t flow, msg_t *response,
                                  browser_txn *which, int *status);
/* UAC: ACK for the 2xx. */
int browser_dialog_ack(browser_dialog *d);
/* UAC: CANCEL the INVITE (before its final response): same branch and CSeq
 * number.  -EALREADY after a final response. */
int browser_dialog_cancel(browser_dialog *d);
/* UAC: the browser's 2xx to the INVITE (borrowed), NULL before it came. */
msg_t *browser_dialog_answer(const browser_dialog *d);
