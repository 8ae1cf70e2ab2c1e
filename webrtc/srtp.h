/* SRTP/SRTCP for one browser media leg (RFC 3711, RFC 7714), keyed by DTLS-SRTP.
 *
 * A leg holds two libsrtp2 sessions: outbound (our local key, any SSRC we
 * send) and inbound (the peer's key, any SSRC it sends), with a replay
 * window of 1024 packets.  Protect and unprotect work in place and do not log
 * or take locks; libsrtp2 allocates only once per new SSRC.  A leg is used by
 * one thread at a time (its call's media worker).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "webrtc/dtls.h"

typedef struct srtp_leg srtp_leg;

/* The room srtp_leg_protect()/_protect_rtcp() need after the packet, at most:
 * a 16-byte tag (GCM; 10 for AES_CM_80) plus the 4-byte SRTCP index. */
#define SRTP_LEG_MAX_TRAILER 20

typedef struct {
  uint64_t rtp_protected, rtp_unprotected;
  uint64_t rtcp_protected, rtcp_unprotected;
  uint64_t auth_failures; /* unprotect: bad tag (tampered, wrong key) */
  uint64_t replays;       /* unprotect: seen already, or older than the window */
  uint64_t malformed;     /* too short, or refused by libsrtp2 otherwise */
} srtp_leg_stats;

/* 0, -EINVAL (unknown profile or lengths) or -EIO (libsrtp2 refused). */
int srtp_leg_new(const dtls_srtp_keys *keys, srtp_leg **ret);
void srtp_leg_free(srtp_leg *leg);

/* RTP/RTCP packet of *LEN bytes in BUF (capacity CAP) -> SRTP/SRTCP, in place;
 * *LEN grows by the trailer.  0, -ENOSPC (CAP too small), -EINVAL. */
int srtp_leg_protect(srtp_leg *leg, uint8_t *buf, size_t *len, size_t cap);
int srtp_leg_protect_rtcp(srtp_leg *leg, uint8_t *buf, size_t *len, size_t cap);
/* SRTP/SRTCP -> RTP/RTCP, in place; *LEN shrinks.  0, -EBADMSG (authentication
 * failed), -EALREADY (replayed or too old), -EINVAL (malformed).  Failures are
 * counted in the stats. */
int srtp_leg_unprotect(srtp_leg *leg, uint8_t *buf, size_t *len);
int srtp_leg_unprotect_rtcp(srtp_leg *leg, uint8_t *buf, size_t *len);

/* A copy of the counters, for the call summary. */
void srtp_leg_get_stats(const srtp_leg *leg, srtp_leg_stats *out);
