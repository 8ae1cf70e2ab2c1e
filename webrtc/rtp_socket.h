/* The PBX's media for one call: plain RTP/RTCP over UDP.
 *
 * An even port from a range for RTP and port+1 for RTCP (or one socket with
 * rtcp-mux), watched by fd sources on the given context.  Packets go to the
 * address and ports from the PBX's SDP.  Packets are taken only from where
 * [media] rtp_source says (webrtc/rtp_source.h): with sdp, the SDP's address
 * and port of the stream; with latch, the first trusted sender of RTP (and,
 * separately, of RTCP), which packets then also go to, and no one else until
 * a new SDP address (rtp_socket_set_remote) learns anew.  Nothing is taken
 * before an SDP, or after rtp_socket_clear_remote (hold with c=0.0.0.0).
 * Packets from anyone else are dropped and counted (rejected_source), never
 * logged.  Each wakeup reads the socket with recvmmsg (64 packets at most)
 * into the reading thread's batch (udp_batch.h), whose slots have
 * SRTP_LEG_MAX_TRAILER bytes of room after the largest packet, so the
 * receiver can protect in place.  The receive and send paths do not
 * allocate, log or lock.
 *
 * Threads: watched by fd sources on settings.context until
 * rtp_socket_detach(); a media worker then waits on rtp_socket_fd() itself
 * and calls rtp_socket_drain() when one is readable.  One thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include <sys/socket.h>

#include "config/config.h"
#include "config/netlist.h"

typedef struct rtp_socket rtp_socket;

typedef struct {
  const char *local_address;  /* numeric IPv4/IPv6; NULL: 0.0.0.0 */
  uint16_t port_min, port_max; /* RTP on an even port within, RTCP on +1 */
  bool rtcp_mux;               /* one socket for both */
  GMainContext *context;       /* NULL: the default context */
  rtp_source_mode source;      /* whom packets are taken from (default: sdp) */
  const config_network *trusted; /* latch: the PBX's trusted networks (copied) */
  size_t n_trusted;
} rtp_socket_settings;

/* Media hot path: LEN bytes in BUF of capacity CAP (>= LEN + SRTP_LEG_MAX_TRAILER),
 * may be modified in place; valid during the call only.  Do not free the
 * socket from inside it. */
typedef void (*rtp_socket_media_fn)(void *user, uint8_t *buf, size_t len, size_t cap);

typedef struct {
  uint64_t rtp_in, rtp_in_bytes, rtcp_in, rtcp_in_bytes;
  uint64_t rtp_out, rtp_out_bytes, rtcp_out, rtcp_out_bytes;
  uint64_t drops_in;  /* too large, too short, not RTP, no sink */
  uint64_t no_remote; /* not sent: no SDP address in force (yet, or on hold) */
  uint64_t send_failed; /* not sent: sendto failed (socket full, ICMP error) */
  uint64_t rejected_source; /* from a sender rtp_source does not take */
  struct sockaddr_storage last_rejected; /* its source; ss_family 0: none */
} rtp_socket_stats;

/* 0, -EINVAL (bad settings), -EADDRINUSE (no free even port pair in the range). */
int rtp_socket_new(const rtp_socket_settings *settings, rtp_socket **ret);
void rtp_socket_free(rtp_socket *s); /* NULL: no-op */

/* No more fd sources: the caller waits on the sockets (rtp_socket_fd). */
void rtp_socket_detach(rtp_socket *s);
/* Socket I (0 RTP, 1 RTCP; -1: none, rtcp-mux). */
int rtp_socket_fd(const rtp_socket *s, unsigned i);
/* Media hot path: reads what socket I has and hands it to the sink; the
 * number of datagrams read. */
unsigned rtp_socket_drain(rtp_socket *s, unsigned i);

void rtp_socket_set_sink(rtp_socket *s, rtp_socket_media_fn on_rtp, rtp_socket_media_fn on_rtcp,
                         void *user);
uint16_t rtp_socket_local_port(const rtp_socket *s); /* the RTP port (even) */

/* The PBX's address from its SDP (numeric); RTCP_PORT 0: RTP_PORT + 1 (with
 * rtcp-mux: RTP_PORT).  Another address or port than before drops the
 * latched addresses (latch learns anew); the same again (a session refresh,
 * a=sendonly) keeps them.  0 or -EINVAL (nothing changed). */
int rtp_socket_set_remote(rtp_socket *s, const char *address, uint16_t rtp_port, uint16_t rtcp_port);
/* No SDP address in force (c=0.0.0.0, port 0): nothing is sent or taken
 * until the next rtp_socket_set_remote. */
void rtp_socket_clear_remote(rtp_socket *s);

/* Media hot path.  0, -ENOTCONN (no remote), -EAGAIN (not sent). */
int rtp_socket_send_rtp(rtp_socket *s, const uint8_t *buf, size_t len);
int rtp_socket_send_rtcp(rtp_socket *s, const uint8_t *buf, size_t len);

void rtp_socket_get_stats(const rtp_socket *s, rtp_socket_stats *out);
