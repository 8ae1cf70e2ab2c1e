/* The browser's media for one call: one ICE agent (ice.h), one DTLS-SRTP
 * session on its selected pair (dtls.h) and, once DTLS is done, one SRTP leg
 * (srtp.h) in its per-packet half (browser_media.h).  Datagrams from ICE are
 * demultiplexed (demux.h): DTLS goes to the session, SRTP/SRTCP is
 * unprotected in place and handed to the media sink as plaintext; STUN is
 * libnice's.  Always rtcp-mux: RTCP rides the same pair.  What DTLS sends
 * before ICE has a selected pair (the answer to a browser's ClientHello that
 * came first) is held and sent as soon as ICE is connected.
 *
 * Events go up through browser_leg_callbacks (the call); media goes to the
 * sink set with browser_leg_set_sink() (the bridge).  The leg runs on the
 * default main context's thread.  Its per-packet half can be handed to a
 * media worker (browser_leg_detach_media): the leg then keeps ICE and DTLS
 * only, and passes on what reaches it.  The media functions (receive path,
 * send) do not allocate, log or lock.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "webrtc/browser_media.h"
#include "webrtc/dtls.h"
#include "webrtc/ice.h"
#include "webrtc/srtp.h"

typedef struct browser_leg browser_leg;

typedef struct {
  dtls_role role;               /* CLIENT: a=setup:active; SERVER: a=setup:passive */
  const char *peer_fingerprint; /* a=fingerprint of the browser; NULL: set later */
  const char *srtp_profiles;    /* NULL: dtls.c's default */
  ice_settings ice;             /* passed to ice_agent_new() */
} browser_leg_settings;

typedef struct {
  void (*on_gathered)(void *user);             /* local candidates complete */
  void (*on_ready)(void *user);                /* DTLS connected, SRTP keyed */
  /* ICE failed, DTLS failed (fingerprint mismatch, timeout, closed by peer).
   * Comes at most once; the leg may be freed from inside it. */
  void (*on_failed)(void *user, const char *why);
} browser_leg_callbacks;

/* Media hot path: one plaintext RTP (or RTCP) packet of LEN bytes in BUF,
 * which may be modified in place and has room for CAP >= LEN bytes (CAP is
 * the SRTP length: enough to protect the packet again with this leg).  Valid
 * during the call only.  Do not free the leg from inside it. */
typedef void (*browser_leg_media_fn)(void *user, uint8_t *buf, size_t len, size_t cap);

typedef struct {
  uint64_t rtp_in, rtp_in_bytes, rtcp_in, rtcp_in_bytes;     /* plaintext delivered */
  uint64_t rtp_out, rtp_out_bytes, rtcp_out, rtcp_out_bytes; /* SRTP sent */
  uint64_t auth_failures;  /* unprotect: bad tag */
  uint64_t replays;        /* unprotect: replayed or too old */
  uint64_t drops_in;       /* not keyed yet, malformed, unknown protocol */
  uint64_t drops_out;      /* not keyed yet, no room, ICE send failed */
} browser_leg_stats;

/* ID must outlive the leg.  0, -EINVAL (bad settings or fingerprint), -ENOMEM. */
int browser_leg_new(const dtls_identity *id, const browser_leg_settings *settings,
                    const browser_leg_callbacks *cb, void *user, browser_leg **ret);
/* No callback after it returns; safe from inside on_failed/on_ready.  NULL: no-op. */
void browser_leg_free(browser_leg *leg);

/* Where plaintext media goes; NULL functions drop it (counted in drops_in). */
void browser_leg_set_sink(browser_leg *leg, browser_leg_media_fn on_rtp,
                          browser_leg_media_fn on_rtcp, void *user);

/* The ICE agent, for ice_agent_gather(), _local_credentials(),
 * _local_candidates(), _set_remote() (SDP work).  Borrowed. */
ice_agent *browser_leg_ice(browser_leg *leg);
/* The browser's fingerprint once its SDP arrives (see dtls_session_set_peer_fingerprint). */
int browser_leg_set_peer_fingerprint(browser_leg *leg, const char *fingerprint);
bool browser_leg_ready(const browser_leg *leg);

/* Media hot path: plaintext RTP (RTCP) of LEN bytes in BUF of capacity CAP
 * -> SRTP (SRTCP) in place -> ICE.  CAP >= LEN + SRTP_LEG_MAX_TRAILER always
 * suffices.  0, -ENOTCONN (not keyed), -ENOSPC, -EINVAL, -EAGAIN (not sent). */
int browser_leg_send_rtp(browser_leg *leg, uint8_t *buf, size_t len, size_t cap);
int browser_leg_send_rtcp(browser_leg *leg, uint8_t *buf, size_t len, size_t cap);

/* One datagram as if ICE had delivered it (tests, benchmarks). */
void browser_leg_inject(browser_leg *leg, uint8_t *data, size_t len);

/* Before browser_leg_detach_media only (zeros after). */
void browser_leg_get_stats(const browser_leg *leg, browser_leg_stats *out);

/* ---- the per-packet half on another thread ---- */

typedef struct {
  /* A datagram libnice read that is not DTLS (SRTP, SRTCP, anything else):
   * for the media's new owner (browser_media_receive there).  Valid during
   * the call only.  Media path: called per packet when libnice carries it. */
  void (*on_datagram)(void *user, const uint8_t *data, size_t len);
  /* DTLS is done: the SRTP leg, whose ownership moves to the callee
   * (browser_media_set_srtp there).  Comes before browser_leg_callbacks'
   * on_ready. */
  void (*on_keys)(void *user, srtp_leg *srtp);
  /* ICE is connected on a newly selected pair (the first one, or another
   * after a restart): it may be read with ice_agent_fastpath_open() now. */
  void (*on_connected)(void *user);
} browser_leg_handoff;

/* The per-packet half leaves the leg: returned to the caller, who owns it
 * from now on (free it with browser_media_free after the leg, or before
 * it).  It holds the SRTP leg when DTLS is done already; otherwise on_keys
 * brings it.  The sink and send functions above no longer apply.  Once per
 * leg; NULL the second time. */
browser_media *browser_leg_detach_media(browser_leg *leg, const browser_leg_handoff *h, void *user);
/* The handoff's callbacks are not called any more (its owner is gone). */
void browser_leg_end_handoff(browser_leg *leg);
/* The per-packet half while the leg owns it; NULL after the detach. */
browser_media *browser_leg_media(browser_leg *leg);
/* A DTLS datagram the media's owner read (browser_media's on_dtls). */
void browser_leg_feed_dtls(browser_leg *leg, const uint8_t *data, size_t len);
