/* The built-in echo target: a call from a browser to sip:ECHO_USER@DOMAIN
 * ([sip] echo_user) is answered by rtcsipd itself, with no PBX, and the
 * browser's RTP and RTCP are reflected back to it (media_bridge echo mode).
 *
 * One echo_call holds the browser dialog (browser_dialog.h), the browser's
 * media leg (ICE + DTLS-SRTP, webrtc/browser_leg.h) and the bridge.  It
 * answers 100, gathers its ICE candidates, then 200 with the WebRTC answer
 * (the first supported audio codec the browser offered, plus
 * telephone-event).  It ends on a BYE or CANCEL from the browser, the
 * WebSocket closing, the media failing (ICE, DTLS: BYE to the browser) or no
 * media for [media] media_timeout (BYE to the browser); then it frees its
 * ports, agent, SRTP and timers, logs one summary line and reports
 * on_ended, from which the owner frees it.
 *
 * Log lines (id "echo-N"): "state A -> B (why)" on every change, and at the
 * end "call ended: cause C, D s, browser->rtcsipd X pkts/Y bytes,
 * rtcsipd->browser ..., srtp auth failures N".
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sofia-sip/msg.h>

#include "config/config.h"
#include "sip/ws_edge.h"
#include "webrtc/dtls.h"

typedef struct echo_call echo_call;

typedef struct {
  /* The call is over and released; free it with echo_call_free() (from
   * inside this callback is fine). */
  void (*on_ended)(void *user, echo_call *call);
} echo_callbacks;

/* True when REQUEST (an INVITE) is for the echo target of CFG. */
bool echo_is_target(const config *cfg, msg_t *request);

/* Starts an echo call for INVITE (consumed) that came on CONN.  CFG is read
 * here only (a reload may free it later); ID must outlive the call.  Always answers the INVITE one way or another;
 * returns 0 and *ret, or a negative errno when the INVITE was rejected
 * (nothing to free then). */
struct media_engine;
int echo_call_new(const config *cfg, const dtls_identity *id, struct media_engine *engine,
                  ws_edge *edge, ws_conn *conn,
                  msg_t *invite, const echo_callbacks *cb, void *user, echo_call **ret);
void echo_call_free(echo_call *call);

/* True when REQUEST on flow FLOW belongs to this call's dialog. */
bool echo_call_matches(const echo_call *call, uint64_t flow, msg_t *request);
/* An in-dialog request (consumed): ACK, BYE, CANCEL, INFO, re-INVITE ... */
void echo_call_on_request(echo_call *call, msg_t *request);
/* The browser's WebSocket is gone. */
void echo_call_on_ws_closed(echo_call *call);
/* The daemon stops: BYE to the browser if answered, then release. */
void echo_call_shutdown(echo_call *call);

uint64_t echo_call_flow(const echo_call *call);
const char *echo_call_name(const echo_call *call); /* "echo-3" */
