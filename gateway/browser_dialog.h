/* The browser's side of one INVITE dialog that rtcsipd answers itself (UAS),
 * over the browser's WebSocket flow.  Built on sip/sipmsg.h (Sofia-SIP):
 * keeps the INVITE, sends its provisional and final responses (a 2xx with
 * rtcsipd's To tag, Contact and the SDP answer), tells which later requests
 * belong to the dialog (Call-ID and tags), answers them, and sends the BYE
 * when rtcsipd ends the call.  No media, no call state: see gateway/echo.c.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sofia-sip/msg.h>

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
/* The INVITE as the browser sent it (borrowed). */
msg_t *browser_dialog_invite(const browser_dialog *d);
/* A final response to the INVITE went out. */
bool browser_dialog_answered(const browser_dialog *d);
/* The final response that went out was a 2xx. */
bool browser_dialog_confirmed(const browser_dialog *d);

/* True when REQUEST, which came on flow FLOW, belongs to this dialog: same
 * flow, Call-ID and From tag, and (but for CANCEL and an ACK to a non-2xx)
 * rtcsipd's To tag. */
bool browser_dialog_matches(const browser_dialog *d, uint64_t flow, msg_t *request);

/* A response to the INVITE: 1xx, 2xx (with SDP, required) or 3xx-6xx.
 * 0, -EALREADY after a final response, -ENOTCONN (flow gone), -EINVAL. */
int browser_dialog_respond(browser_dialog *d, int status, const char *phrase, const char *sdp);
/* A response to an in-dialog REQUEST (not consumed), with rtcsipd's To tag. */
int browser_dialog_reply(browser_dialog *d, msg_t *request, int status, const char *phrase);
/* BYE to the browser (after a 2xx): Request-URI its Contact, Route from the
 * INVITE's Record-Route, a new branch.  Its answer is not waited for. */
int browser_dialog_send_bye(browser_dialog *d);
