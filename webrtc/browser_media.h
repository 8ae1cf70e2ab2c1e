/* The per-packet half of the browser's media for one call: what arrives on
 * the call's ICE pair (demultiplexed, demux.h) and what is sent on it.
 * SRTP/SRTCP is unprotected in place and handed to the sink as plaintext;
 * the browser's STUN checks on the pair are answered here (stun_responder.h);
 * DTLS datagrams are handed up (on_dtls: the handshake and its alerts are the
 * control half's, browser_leg.h, on the main loop).  Plaintext from the sink's
 * owner is protected in place and sent.
 *
 * Threads: the object belongs to one thread at a time, the call's media
 * worker once the call is handed over (gateway/media_engine.h).  It reads
 * the pair from a connected socket of its own (ice_agent_fastpath_open) or
 * is fed datagrams that libnice read (browser_media_receive: a relayed pair,
 * an ICE restart).  Without a socket it sends through libnice
 * (ice_agent_send_mt, safe from any thread).  Nothing here allocates, logs
 * or takes a lock per packet, except libnice's agent lock on that fallback.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "webrtc/ice.h"
#include "webrtc/srtp.h"
#include "webrtc/stun_responder.h"

typedef struct browser_media browser_media;

/* Plaintext RTP (or RTCP) of LEN bytes in BUF of capacity CAP >= LEN +
 * SRTP_LEG_MAX_TRAILER (room to protect it again), modified in place. */
typedef void (*browser_media_fn)(void *user, uint8_t *buf, size_t len, size_t cap);
/* A DTLS datagram (alert, close_notify, a retransmitted flight): for the
 * control half; valid during the call only. */
typedef void (*browser_media_dtls_fn)(void *user, const uint8_t *data, size_t len);

typedef struct {
  uint64_t rtp_in, rtp_in_bytes, rtcp_in, rtcp_in_bytes;     /* plaintext delivered */
  uint64_t rtp_out, rtp_out_bytes, rtcp_out, rtcp_out_bytes; /* SRTP sent */
  uint64_t auth_failures;  /* unprotect: bad tag */
  uint64_t replays;        /* unprotect: replayed or too old */
  uint64_t stun_in, stun_replies; /* checks on the pair read here, and answered */
  /* drops, by reason */
  uint64_t not_keyed_in;   /* SRTP before the keys */
  uint64_t malformed_in;   /* not STUN/DTLS/RTP, a runt, refused by libsrtp2 */
  uint64_t not_keyed_out;  /* media toward the browser before the keys */
  uint64_t send_failed;    /* protect failed, or the socket/libnice did not take it */
  uint64_t peer_unreachable; /* the browser's port answered ICMP unreachable */
} browser_media_stats;

/* ICE is borrowed (libnice's send when there is no socket); it must outlive
 * the object.  0 or -ENOMEM. */
int browser_media_new(ice_agent *ice, browser_media **ret);
/* Closes the socket and frees the SRTP leg.  NULL: no-op. */
void browser_media_free(browser_media *m);

void browser_media_set_sink(browser_media *m, browser_media_fn on_rtp, browser_media_fn on_rtcp,
                            void *user);
/* Where DTLS datagrams go (NULL: dropped). */
void browser_media_set_dtls_sink(browser_media *m, browser_media_dtls_fn on_dtls, void *user);

/* The keys are in: SRTP takes over (its ownership moves here). */
void browser_media_set_srtp(browser_media *m, srtp_leg *srtp);
/* The pair as a connected socket (ownership moves here; -1: none, libnice
 * carries the packets) and our ICE credentials for the browser's checks on
 * it.  A socket set before is closed.  0 or -EINVAL (credentials). */
int browser_media_set_socket(browser_media *m, int fd, const char *ufrag, const char *pwd);
int browser_media_socket(const browser_media *m); /* -1: none */

/* Media path: reads what the socket has (recvmmsg, up to 32 datagrams) and
 * handles each.  Returns the number read, 0 when none (EAGAIN). */
unsigned browser_media_drain(browser_media *m);
/* Media path: one datagram read elsewhere (libnice), handled as if read here
 * (STUN is libnice's there and never comes). */
void browser_media_receive(browser_media *m, uint8_t *data, size_t len, size_t cap);

/* Media path: plaintext RTP (RTCP) of LEN bytes in BUF of capacity CAP ->
 * SRTP (SRTCP) in place -> the pair.  CAP >= LEN + SRTP_LEG_MAX_TRAILER
 * always suffices.  0, -ENOTCONN (not keyed), -ENOSPC, -EINVAL, -EAGAIN (not
 * sent). */
int browser_media_send_rtp(browser_media *m, uint8_t *buf, size_t len, size_t cap);
int browser_media_send_rtcp(browser_media *m, uint8_t *buf, size_t len, size_t cap);

bool browser_media_keyed(const browser_media *m);
/* When the last datagram of any kind came from the browser (monotonic µs;
 * the keys' arrival counts as one): consent (RFC 7675) as seen here. */
gint64 browser_media_last_rx(const browser_media *m);
/* A copy of the counters. */
void browser_media_get_stats(const browser_media *m, browser_media_stats *out);
