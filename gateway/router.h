/* Router: the out-of-dialog signalling between browser flows and the PBX.
 *
 * From a browser (one WebSocket flow): OPTIONS to rtcsipd is answered here;
 * REGISTER goes to the PBX with its Contact rewritten (bindings.h), and the
 * PBX's answer comes back with the browser's own Contact; other requests
 * (MESSAGE, OPTIONS, ...) for a served domain go to the PBX as they are.
 * From the PBX: a request to a binding's token is delivered over that
 * binding's flow with the browser's Contact as Request-URI; a gone browser
 * gets 480 at once.  Nothing is ever sent anywhere but the PBX and the flows.
 * Calls: an INVITE to the echo target ([sip] echo_user) starts an echo
 * call (echo.h); any other INVITE from a browser, and an INVITE from the
 * PBX to a binding's token, starts a call through the PBX (call.h).  The
 * requests and responses of a call's browser dialog go to it; those of its
 * PBX dialog reach it through nta (sip/pbx_dialog.h).
 */
#pragma once

#include <glib.h>

#include "config/config.h"
#include "sip/pbx.h"
#include "sip/ws_edge.h"
#include "webrtc/dtls.h"

typedef struct router router;

struct media_engine;
/* DTLS_ID: the process's DTLS identity; ENGINE: the media workers (both
 * outlive the router). */
router *router_new(const config *cfg, const dtls_identity *dtls_id, struct media_engine *engine);
void router_free(router *r);
/* The two sides, once created (they take the router's callbacks). */
void router_attach(router *r, ws_edge *edge, pbx_link *pbx);
/* The configuration in force changed (SIGHUP); R keeps the pointer. */
void router_set_config(router *r, const config *cfg);

extern const ws_edge_callbacks router_ws_callbacks;
extern const pbx_callbacks router_pbx_callbacks;

/* "3 connections, 2 registered, 0 pending, 1 calls, RSS 9120 KiB (310 KiB per
 * call)": the GET /healthz body and the systemd STATUS= line; the memory a
 * call takes is what the process grew by since it started, per call */
char *router_status(router *r);
