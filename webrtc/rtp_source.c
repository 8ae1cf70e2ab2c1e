/* The source check of a PBX-side media port: see rtp_source.h. */
#include "webrtc/rtp_source.h"

#include <string.h>
#include <netinet/in.h>

/* SA's port, and its address bytes as IPv4 when it is IPv4 or IPv4-mapped
 * (4 bytes) or IPv6 (16); 0 bytes for other families. */
static size_t address_of(const struct sockaddr *sa, const uint8_t **bytes, in_port_t *port)
{
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    *bytes = (const uint8_t *)&in->sin_addr;
    *port = in->sin_port;
    return 4;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    *port = in6->sin6_port;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      *bytes = in6->sin6_addr.s6_addr + 12;
      return 4;
    }
    *bytes = in6->sin6_addr.s6_addr;
    return 16;
  }
  return 0;
}

bool rtp_source_same(const struct sockaddr *a, const struct sockaddr *b)
{
  const uint8_t *ba = NULL, *bb = NULL;
  in_port_t pa = 0, pb = 0;
  size_t la, lb;

  /* the usual case: both IPv4 */
  if (a->sa_family == AF_INET && b->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  la = address_of(a, &ba, &pa);
  lb = address_of(b, &bb, &pb);
  return la && la == lb && pa == pb && memcmp(ba, bb, la) == 0;
}

rtp_source_verdict rtp_source_check(const rtp_source_policy *p, const struct sockaddr *expected, bool latched,
                                    const struct sockaddr *from)
{
  if (!expected)
    return RTP_SOURCE_REJECT; /* no SDP yet, or on hold with c=0.0.0.0 */
  if (p->mode == RTP_SOURCE_LATCH && !latched)
    return netlist_match(p->trusted, p->n_trusted, from) ? RTP_SOURCE_LEARN : RTP_SOURCE_REJECT;
  return rtp_source_same(expected, from) ? RTP_SOURCE_ACCEPT : RTP_SOURCE_REJECT;
}
