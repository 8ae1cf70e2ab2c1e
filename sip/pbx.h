/* PBX side: Sofia-SIP's transaction layer (nta) on UDP/TCP/TLS toward the
 * configured PBX.
 *
 * rtcsipd sends requests to the PBX (pbx_link_send_request) and takes the
 * requests the PBX sends to it (callbacks.on_request), statefully: nta does
 * retransmissions and timers.  Only the configured PBX is ever a target.
 *
 * Trust: the SIP port takes packets only from the trusted networks (the
 * addresses the PBX host resolves to, and [pbx] trusted): a socket filter in
 * the kernel (sip/sip_filter.h) drops everything else, and every STUN
 * datagram, before Sofia-SIP reads it, so nothing from a stranger is parsed
 * or answered.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/url.h>

#include "config/config.h"

typedef struct pbx_link pbx_link;
typedef struct pbx_client_tx pbx_client_tx; /* a request rtcsipd sent to the PBX */
typedef struct pbx_server_tx pbx_server_tx; /* a request the PBX sent to rtcsipd */

typedef struct {
  /* A new request from the SIP side that no dialog took.  MSG is borrowed
   * (valid during the call; take msg_ref_create() to keep it).  Answer it
   * with pbx_server_tx_reply() or pbx_server_tx_relay(), now or later. */
  void (*on_request)(void *user, pbx_server_tx *tx, msg_t *msg);
} pbx_callbacks;

typedef struct {
  const char *listen_host;     /* where to bind */
  uint16_t listen_port;
  const char *advertised_host; /* written in Via/Contact; NULL: listen_host */
  const char *pbx_host;
  uint16_t pbx_port;
  sip_transport pbx_transport;
  const char *tls_directory;   /* for tls: agent.pem, cafile.pem (Sofia layout); may be NULL */
  const config_network *trusted; /* [pbx] trusted: further trusted networks */
  size_t n_trusted;
} pbx_settings;

int pbx_link_new(su_root_t *root, const pbx_settings *settings,
                 const pbx_callbacks *callbacks, void *user, pbx_link **ret);
void pbx_link_free(pbx_link *link);
/* Points requests at another PBX address (SIGHUP).  0, -EINVAL for a bad
 * address, -EPROTONOSUPPORT for tls when the link was started without it. */
int pbx_link_set_target(pbx_link *link, const char *host, uint16_t port, sip_transport transport);
/* Sets the trusted networks anew: the addresses pbx_link_target()'s host
 * resolves to now, and EXTRA (copied).  Called by pbx_link_new() and on
 * reload after pbx_link_set_target().  0, or a negative errno when the host
 * does not resolve or the socket filter cannot be set (the old list stays). */
int pbx_link_set_trusted(pbx_link *link, const config_network *extra, size_t n_extra);
/* The trusted networks now (borrowed; valid until the next
 * pbx_link_set_trusted): whose SIP requests reach browsers, and from whom a
 * PBX-side media port latches with [media] rtp_source = latch. */
const config_network *pbx_link_trusted(const pbx_link *link, size_t *n);
/* true when SA is in pbx_link_trusted() */
bool pbx_link_is_trusted(const pbx_link *link, const struct sockaddr *sa);
/* Datagrams and connections the socket filter dropped on the SIP port so far
 * (untrusted senders and STUN; the kernel's count, with receive-buffer
 * overflows). */
uint64_t pbx_link_dropped(const pbx_link *link);

/* "sip:127.0.0.1:5060;transport=udp" */
const char *pbx_link_target(const pbx_link *link);
/* The host and port put in Contact URIs that must route back to rtcsipd,
 * and the transport parameter for them ("udp", "tcp", "tls"). */
const char *pbx_link_contact_host(const pbx_link *link);
uint16_t pbx_link_contact_port(const pbx_link *link);
const char *pbx_link_contact_transport(const pbx_link *link);

/* Called for every response to a request sent with pbx_link_send_request.
 * RESPONSE is borrowed, or NULL when the transaction failed locally (timeout:
 * STATUS 408, transport error: 503).  After a final STATUS (>= 200) no more
 * calls come; the callee then frees TX with pbx_client_tx_free(). */
typedef void pbx_response_fn(void *user, pbx_client_tx *tx, int status, msg_t *response);

/* Sends REQUEST (consumed) to the PBX, with rtcsipd's own Via on top of the
 * ones it has.  NULL on failure (REQUEST is freed then too). */
pbx_client_tx *pbx_link_send_request(pbx_link *link, msg_t *request,
                                     pbx_response_fn *callback, void *user);
/* Stops the callbacks and frees the transaction (nta finishes it quietly). */
void pbx_client_tx_free(pbx_client_tx *tx);
/* The branch of rtcsipd's Via in the request sent. */
const char *pbx_client_tx_branch(const pbx_client_tx *tx);

/* Answers with a status made here.  A final status ends the transaction and
 * frees TX. 0 or a negative errno. */
int pbx_server_tx_reply(pbx_server_tx *tx, int status, const char *phrase);
/* The same with "Retry-After: SECONDS" (a 503 when rtcsipd is full). */
int pbx_server_tx_reply_retry_after(pbx_server_tx *tx, int status, const char *phrase,
                                    unsigned seconds);
/* Answers with RESPONSE (consumed), e.g. one relayed from a browser, whose Via
 * list must be the request's.  A final status frees TX.  A response without
 * a status, Via or CSeq, or whose CSeq method is not the request's, is not
 * sent: -EIO (and a final one becomes a 500). */
int pbx_server_tx_relay(pbx_server_tx *tx, msg_t *response);
/* The request (borrowed). */
msg_t *pbx_server_tx_request(pbx_server_tx *tx);

/* For sip/pbx_dialog.c, which works on the nta objects directly. */
nta_agent_t *pbx_link_agent(const pbx_link *link);
su_root_t *pbx_link_root(const pbx_link *link);
/* The parsed pbx_link_target() (borrowed; changes with pbx_link_set_target). */
const url_t *pbx_link_target_url(const pbx_link *link);
/* Frees TX and hands its server transaction over to the caller, who then
 * answers and destroys it with nta (nta_incoming_treply/destroy). */
nta_incoming_t *pbx_server_tx_take(pbx_server_tx *tx);
