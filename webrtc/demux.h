/* Which protocol a datagram on the browser's media socket belongs to, by its
 * first byte (RFC 7983 section 7): STUN, DTLS, or RTP/RTCP (SRTP/SRTCP once
 * keyed).  Pure and allocation-free: the media path calls it per packet. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef enum {
  DEMUX_UNKNOWN = 0, /* anything else (ZRTP, TURN channel data, ...): drop */
  DEMUX_STUN,        /* 0..3 */
  DEMUX_DTLS,        /* 20..63 */
  DEMUX_RTP,         /* 128..191: RTP or RTCP */
} demux_kind;

static inline demux_kind demux_classify(const uint8_t *data, size_t len)
{
  if (!data || len == 0)
    return DEMUX_UNKNOWN;
  if (data[0] <= 3)
    return DEMUX_STUN;
  if (data[0] >= 20 && data[0] <= 63)
    return DEMUX_DTLS;
  if (data[0] >= 128 && data[0] <= 191)
    return DEMUX_RTP;
  return DEMUX_UNKNOWN;
}

/* With rtcp-mux (RFC 5761 section 4): an RTP/RTCP packet whose second byte
 * (marker bit and payload type) is 192..223 is RTCP (types 200..206 SR, RR,
 * SDES, BYE, APP, RTPFB, PSFB are all in that range). */
static inline int demux_is_rtcp(const uint8_t *data, size_t len)
{
  return len >= 2 && data[1] >= 192 && data[1] <= 223;
}
