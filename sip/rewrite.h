/* SIP rewriting for the edge proxy: what rtcsipd changes in a message on its
 * way between a browser's WebSocket flow and the PBX.  Pure functions on Sofia
 * messages, tested in tests/unit/test_rewrite.c.
 *
 * A REGISTER's Contact is made to point at rtcsipd's SIP side with a token
 * naming the binding (sip:TOKEN@host:port;transport=udp), so that the PBX's
 * requests to the browser come to rtcsipd, which finds the flow by the token.
 * The PBX need not support Path (RFC 3327).
 */
#pragma once

#include <stdint.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/sip.h>

/* Where Contact URIs written by rtcsipd point: its SIP side. */
typedef struct {
  const char *host;      /* as in a URI: IPv6 in brackets */
  uint16_t port;
  const char *transport; /* "udp", "tcp", "tls" */
} rewrite_target;

/* The URI rtcsipd writes for TOKEN (g_malloc'd). */
char *rewrite_contact_uri(const rewrite_target *target, const char *token);

/* REGISTER toward the PBX: the one Contact (not "*") gets the URI of
 * rewrite_contact_uri(), loses the flow parameters that only make sense
 * between browser and rtcsipd (reg-id, ;ob), and an expiry above MAX_EXPIRES
 * (contact param or Expires header) is lowered to it; a REGISTER that names
 * no expiry gets "Expires: MAX_EXPIRES", so that the registrar's default
 * cannot pass it.  Returns 1 when a
 * Contact was rewritten, 0 when there is none or it is "*" (fetch or remove
 * all), -E2BIG when there is more than one, -EINVAL on failure. */
int rewrite_register_request(msg_t *msg, const rewrite_target *target, const char *token,
                             unsigned max_expires);

/* In a 2xx to such a REGISTER: finds the Contact with user TOKEN, puts
 * ORIGINAL_URI back in its place, and returns its expiry in seconds in
 * *expires (its expires param, else the Expires header, else 3600).  Every
 * other Contact is removed: the browser learns its own binding only (not
 * the tokens of the user's other devices).  TOKEN NULL: all are removed.
 * Returns 0, or -ENOENT when the PBX lists no such Contact (not bound). */
int rewrite_register_response(msg_t *msg, const char *token, const char *original_uri,
                              unsigned *expires);

/* Puts "Via: SIP/2.0/PROTOCOL HOST;branch=BRANCH" on top. */
int rewrite_push_via(msg_t *msg, const char *protocol, const char *host, const char *branch);
/* Removes the top Via when its branch is BRANCH; -ENOENT otherwise. */
int rewrite_pop_via(msg_t *msg, const char *branch);

/* Toward the PBX: the browser's Vias (SIP/2.0/WSS xxx.invalid) are taken off,
 * so that nothing of the WebSocket side reaches it; rtcsipd's own Via then
 * stands alone.  On the way back they are put under the response's Vias
 * again, from VIAS (the request as the browser sent it). */
void rewrite_strip_vias(msg_t *msg);
int rewrite_restore_vias(msg_t *msg, const sip_via_t *vias);

/* Replaces the Request-URI. */
int rewrite_request_uri(msg_t *msg, const char *uri);

/* Decrements Max-Forwards (adds "70" when absent).  -ELOOP when it was 0:
 * the caller answers 483 Too Many Hops. */
int rewrite_max_forwards(msg_t *msg);

/* Removes every Route, Record-Route and Path header of a browser's request
 * on its way to the PBX: requests rtcsipd sends carry only the routes
 * rtcsipd itself learned (a dialog's route set, the configured PBX as next
 * hop), so that a browser cannot have a proxy in front of the PBX relay them
 * to a host of its choosing, nor put a host of its choosing in the PBX's
 * route set or in the path of its registration (RFC 3327). */
void rewrite_strip_routes(msg_t *msg);
