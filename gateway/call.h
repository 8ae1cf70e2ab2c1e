/* A call through the PBX: one object joining the browser's dialog
 * (gateway/browser_dialog.h, over its WebSocket), the PBX's dialog
 * (sip/pbx_dialog.h, nta) and the two media legs (webrtc/browser_leg.h:
 * ICE + DTLS-SRTP; webrtc/rtp_socket.h: plain RTP) joined by a
 * gateway/media_bridge.h.
 *
 * Every input -- a request or response from either side, ICE or DTLS
 * failing, media silence, the WebSocket closing, a timer, the daemon
 * stopping -- becomes an event of gateway/call_fsm.h, whose table says what
 * to do; this file only carries the actions out.  SDP crosses through
 * sip/sdp_translate.h.
 *
 *   browser -> PBX: call_from_browser(); the PBX's INVITE has the browser's
 *     Request-URI, Call-ID, From, To, CSeq and credentials, and a plain offer.
 *   PBX -> browser: call_from_pbx(); the browser's INVITE has the PBX's From,
 *     To and Call-ID, and a WebRTC offer with the candidates gathered.  An
 *     INVITE with Replaces naming another call's PBX dialog reaches the
 *     browser with a Replaces naming that call's browser dialog (attended
 *     transfer, call pickup); the browser then ends the old call.
 *
 * Log lines (id "call-N"): "state A -> B (event)" on every change and, when
 * released, "call ended: cause C, D s, browser->rtcsipd ..., srtp auth
 * failures N, ..." (one line).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sofia-sip/msg.h>

#include "config/config.h"
#include "sip/pbx.h"
#include "sip/ws_edge.h"
#include "webrtc/dtls.h"

typedef struct call call;
struct media_engine;

typedef struct {
  /* The call is over and released (ports, agents, SRTP, timers freed, the
   * summary logged); free it with call_free(), from inside is fine. */
  void (*on_ended)(void *user, call *c);
} call_callbacks;

/* What a call needs of the daemon.  CFG is read at creation only (a reload
 * may free it later); the others must outlive the call. */
typedef struct {
  const config *cfg;
  const dtls_identity *id;
  struct media_engine *engine;
  ws_edge *edge;
  pbx_link *pbx;
  /* The call whose PBX dialog is CALL_ID with tags TAG_A and TAG_B (in
   * either order), for an INVITE with Replaces; NULL: none. */
  call *(*find_by_pbx_dialog)(void *user, const char *call_id, const char *tag_a,
                              const char *tag_b);
  /* The same by the browser dialog, for a REFER with Replaces (attended transfer). */
  call *(*find_by_browser_dialog)(void *user, const char *call_id, const char *tag_a,
                                  const char *tag_b);
  void *find_user;
} call_env;

/* A browser's INVITE (consumed) that came on CONN, for the PBX.  Always
 * answers it one way or another; 0 and *ret, or a negative errno when it
 * was rejected at once (nothing to free then). */
int call_from_browser(const call_env *env, ws_conn *conn, msg_t *invite,
                      const call_callbacks *cb, void *user, call **ret);

/* The PBX's INVITE in TX, for the browser on CONN whose binding has
 * CONTACT_URI.  Always answers TX one way or another; 0 and *ret, or a
 * negative errno when it was rejected at once. */
int call_from_pbx(const call_env *env, pbx_server_tx *tx, ws_conn *conn, const char *contact_uri,
                  const call_callbacks *cb, void *user, call **ret);

void call_free(call *c);

/* True when REQUEST on flow FLOW belongs to the call's browser dialog. */
bool call_matches_request(const call *c, uint64_t flow, msg_t *request);
/* An in-dialog request from the browser (consumed). */
void call_on_browser_request(call *c, msg_t *request);
/* A response from the browser on FLOW: true when the call took it
 * (RESPONSE then consumed), false when it is not the call's. */
bool call_take_browser_response(call *c, uint64_t flow, msg_t *response);
/* The browser's WebSocket is gone. */
void call_on_ws_closed(call *c);
/* The daemon stops: what the table says (BYE, CANCEL, 503) goes out now. */
void call_shutdown(call *c);

/* True when the call's PBX dialog is CALL_ID with tags TAG_A and TAG_B,
 * in either order. */
bool call_has_pbx_dialog(const call *c, const char *call_id, const char *tag_a, const char *tag_b);

/* ... its browser dialog. */
bool call_has_browser_dialog(const call *c, const char *call_id, const char *tag_a,
                             const char *tag_b);
/* Its PBX dialog: Call-ID, rtcsipd's tag, the PBX's tag; false when not up. */
bool call_pbx_dialog_ids(const call *c, const char **call_id, const char **local,
                         const char **remote);

uint64_t call_flow(const call *c);
/* A call from a browser that is not answered yet (what [limits]
 * pending_calls_per_connection/_per_ip bound). */
bool call_is_pending(const call *c);
const char *call_name(const call *c); /* "call-3" */
