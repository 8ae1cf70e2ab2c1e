/* Unit tests: the source check of a PBX-side media port
 * (webrtc/rtp_source.c, [media] rtp_source): with sdp only the SDP's
 * address and port, with latch the first trusted sender and then only it;
 * nothing without an SDP in force. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <glib.h>

#include "webrtc/rtp_source.h"

/* "ADDRESS" and PORT as a sockaddr (IPv4 or IPv6) */
static struct sockaddr_storage sa(const char *text, uint16_t port)
{
  struct sockaddr_storage ss;

  g_assert_cmpint(netlist_parse_address(text, &ss), ==, 0);
  if (ss.ss_family == AF_INET)
    ((struct sockaddr_in *)&ss)->sin_port = htons(port);
  else
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
  return ss;
}

#define SA(s) ((const struct sockaddr *)&(s))

static rtp_source_verdict check(const rtp_source_policy *p, const char *expected, uint16_t eport, bool latched,
                                const char *from, uint16_t fport)
{
  struct sockaddr_storage e, f = sa(from, fport);

  if (expected)
    e = sa(expected, eport);
  return rtp_source_check(p, expected ? SA(e) : NULL, latched, SA(f));
}

static void test_same(void)
{
  struct sockaddr_storage a = sa("192.0.2.7", 4000), b = sa("192.0.2.7", 4000);
  struct sockaddr_storage other_port = sa("192.0.2.7", 4002), other_addr = sa("192.0.2.8", 4000);
  struct sockaddr_storage mapped = sa("::ffff:192.0.2.7", 4000), v6 = sa("2001:db8::7", 4000);
  struct sockaddr_storage v6b = sa("2001:db8::7", 4000), v6_other = sa("2001:db8::8", 4000);
  struct sockaddr_storage none;

  g_assert_true(rtp_source_same(SA(a), SA(b)));
  g_assert_false(rtp_source_same(SA(a), SA(other_port)));
  g_assert_false(rtp_source_same(SA(a), SA(other_addr)));
  g_assert_true(rtp_source_same(SA(a), SA(mapped))); /* a dual-stack socket's view of the same sender */
  g_assert_true(rtp_source_same(SA(mapped), SA(a)));
  g_assert_true(rtp_source_same(SA(v6), SA(v6b)));
  g_assert_false(rtp_source_same(SA(v6), SA(v6_other)));
  g_assert_false(rtp_source_same(SA(a), SA(v6)));
  /* the padding of what recvfrom wrote does not matter */
  memset(((struct sockaddr_in *)&b)->sin_zero, 0xee, sizeof ((struct sockaddr_in *)&b)->sin_zero);
  g_assert_true(rtp_source_same(SA(a), SA(b)));
  /* a family that is neither */
  memset(&none, 0, sizeof none);
  none.ss_family = AF_UNIX;
  g_assert_false(rtp_source_same(SA(none), SA(none)));
  g_assert_false(rtp_source_same(SA(a), SA(none)));
}

static void test_sdp(void)
{
  config_network trusted;
  g_assert_cmpint(netlist_parse("192.0.2.0/24", &trusted), ==, 0);
  rtp_source_policy p = {.mode = RTP_SOURCE_SDP, .trusted = &trusted, .n_trusted = 1};

  /* the SDP's address and port only, latched or not */
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, false, "192.0.2.7", 4000), ==, RTP_SOURCE_ACCEPT);
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, true, "192.0.2.7", 4000), ==, RTP_SOURCE_ACCEPT);
  /* the PBX's address from another port, a trusted neighbour, a stranger */
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, false, "192.0.2.7", 4002), ==, RTP_SOURCE_REJECT);
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, false, "192.0.2.8", 4000), ==, RTP_SOURCE_REJECT);
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, false, "203.0.113.66", 4000), ==, RTP_SOURCE_REJECT);
  /* never learns */
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, false, "192.0.2.7", 4001), !=, RTP_SOURCE_LEARN);
  /* IPv6, and the PBX's IPv4 address seen by a dual-stack socket */
  g_assert_cmpint(check(&p, "2001:db8::7", 4000, false, "2001:db8::7", 4000), ==, RTP_SOURCE_ACCEPT);
  g_assert_cmpint(check(&p, "2001:db8::7", 4000, false, "2001:db8::7", 4001), ==, RTP_SOURCE_REJECT);
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, false, "::ffff:192.0.2.7", 4000), ==, RTP_SOURCE_ACCEPT);
  /* no SDP in force (none yet, or c=0.0.0.0): nobody, not even the PBX */
  g_assert_cmpint(check(&p, NULL, 0, false, "192.0.2.7", 4000), ==, RTP_SOURCE_REJECT);
}

static void test_latch(void)
{
  config_network trusted[2];
  g_assert_cmpint(netlist_parse("192.0.2.7", &trusted[0]), ==, 0);
  g_assert_cmpint(netlist_parse("2001:db8::/32", &trusted[1]), ==, 0);
  rtp_source_policy p = {.mode = RTP_SOURCE_LATCH, .trusted = trusted, .n_trusted = 2};

  /* before the latch: any port of a trusted address is learnt, nobody else */
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, false, "192.0.2.7", 4000), ==, RTP_SOURCE_LEARN);
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, false, "192.0.2.7", 31337), ==, RTP_SOURCE_LEARN);
  g_assert_cmpint(check(&p, "10.0.0.5", 4000, false, "192.0.2.7", 5000), ==, RTP_SOURCE_LEARN); /* SDP behind NAT */
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, false, "2001:db8:1::9", 6000), ==, RTP_SOURCE_LEARN);
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, false, "::ffff:192.0.2.7", 6000), ==, RTP_SOURCE_LEARN);
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, false, "192.0.2.8", 4000), ==, RTP_SOURCE_REJECT);
  g_assert_cmpint(check(&p, "192.0.2.7", 4000, false, "203.0.113.66", 4000), ==, RTP_SOURCE_REJECT);
  /* an untrusted SDP address is not learnt from either: only the trusted networks */
  g_assert_cmpint(check(&p, "198.51.100.1", 4000, false, "198.51.100.1", 4000), ==, RTP_SOURCE_REJECT);
  /* latched: only that address and port; another trusted port does not move it */
  g_assert_cmpint(check(&p, "192.0.2.7", 5000, true, "192.0.2.7", 5000), ==, RTP_SOURCE_ACCEPT);
  g_assert_cmpint(check(&p, "192.0.2.7", 5000, true, "192.0.2.7", 5002), ==, RTP_SOURCE_REJECT);
  g_assert_cmpint(check(&p, "192.0.2.7", 5000, true, "2001:db8::1", 5000), ==, RTP_SOURCE_REJECT);
  g_assert_cmpint(check(&p, "192.0.2.7", 5000, true, "203.0.113.66", 5000), ==, RTP_SOURCE_REJECT);
  /* no SDP in force: nothing is learnt */
  g_assert_cmpint(check(&p, NULL, 0, false, "192.0.2.7", 4000), ==, RTP_SOURCE_REJECT);
  /* no trusted networks: never latches */
  rtp_source_policy none = {.mode = RTP_SOURCE_LATCH};
  g_assert_cmpint(check(&none, "192.0.2.7", 4000, false, "192.0.2.7", 4000), ==, RTP_SOURCE_REJECT);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/rtp-source/same", test_same);
  g_test_add_func("/rtp-source/sdp", test_sdp);
  g_test_add_func("/rtp-source/latch", test_latch);
  return g_test_run();
}
