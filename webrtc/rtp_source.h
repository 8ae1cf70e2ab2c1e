/* Whom a PBX-side media port takes a packet from ([media] rtp_source): the
 * check behind rtp_socket's receive path, as a pure function.
 *
 *   sdp:   only the address and port the PBX's SDP names for the stream
 *          (RTP, or RTCP).
 *   latch: before the stream has latched, the first packet from a trusted
 *          address (the PBX host's addresses, [pbx] trusted) is taken and
 *          its address and port are learnt; from then on only that one.
 * In both modes nothing is taken while no SDP is in force (none yet, or a
 * hold with c=0.0.0.0).  The model: Asterisk's strict RTP and rtpengine's
 * strict-source (learn, then hold).  No I/O, no allocation.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config/config.h"
#include "config/netlist.h"

typedef struct {
  rtp_source_mode mode;
  const config_network *trusted; /* latch: whom a stream may latch to */
  size_t n_trusted;
} rtp_source_policy;

typedef enum {
  RTP_SOURCE_REJECT, /* drop it and count it */
  RTP_SOURCE_ACCEPT,
  RTP_SOURCE_LEARN,  /* accept it, and hold its source from now on */
} rtp_source_verdict;

/* The packet from FROM on a stream of policy P.  EXPECTED: with sdp, the
 * SDP's address and port; with latch, the latched address once LATCHED
 * (before: only whether an SDP is in force matters).  EXPECTED NULL: no
 * SDP in force, nothing is taken. */
rtp_source_verdict rtp_source_check(const rtp_source_policy *p, const struct sockaddr *expected, bool latched,
                                    const struct sockaddr *from);

/* true when A and B are the same address and port (an IPv4-mapped IPv6
 * address equals its IPv4 address). */
bool rtp_source_same(const struct sockaddr *a, const struct sockaddr *b);
