/* Unit tests: the candidate filter (webrtc/ice_filter.c): which of a
 * browser's ICE candidates rtcsipd sends checks to, the per-call limit, the
 * reasons of the log line, and the shape of the socket filter for
 * peer-reflexive sources.  (The socket filter itself runs in the kernel:
 * tests/integration/test_ice.c and ice_filter.test.mjs.) */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "webrtc/ice_filter.h"

static struct sockaddr_storage addr(const char *text)
{
  struct sockaddr_storage ss;
  g_assert_cmpint(netlist_parse_address(text, &ss), ==, 0);
  return ss;
}

static ice_filter_reason judge(const ice_filter *f, const char *text)
{
  struct sockaddr_storage ss = addr(text);
  return ice_filter_address(f, (struct sockaddr *)&ss);
}

static config_network net(const char *text)
{
  config_network n;
  g_assert_cmpint(netlist_parse(text, &n), ==, 0);
  return n;
}

static void test_forbidden(void)
{
  static const char *const never[] = {
    "0.0.0.0", "0.1.2.3", "224.0.0.251", "239.255.255.250", "255.255.255.255", "240.0.0.1",
    "169.254.1.1", "::", "ff02::1", "fe80::1", "::ffff:224.0.0.1", "::ffff:169.254.0.9", NULL,
  };
  /* whatever the configuration: even allowed and loopback on */
  config_network any[] = { net("0.0.0.0/0"), net("::/0") };
  ice_filter open = { .loopback = true, .allow = any, .n_allow = 2 };

  for (int i = 0; never[i]; i++) {
    g_test_message("%s", never[i]);
    g_assert_cmpint(judge(&open, never[i]), ==, ICE_FILTER_FORBIDDEN);
    g_assert_cmpint(judge(NULL, never[i]), ==, ICE_FILTER_FORBIDDEN);
    struct sockaddr_storage ss = addr(never[i]);
    g_assert_false(ice_candidate_allowed(&open, (struct sockaddr *)&ss));
    g_assert_false(ice_filter_source_allowed(&open, (struct sockaddr *)&ss));
  }
  g_assert_cmpint(ice_filter_address(&open, NULL), ==, ICE_FILTER_FORBIDDEN);
  struct sockaddr unix_sa = { .sa_family = AF_UNIX };
  g_assert_cmpint(ice_filter_address(&open, &unix_sa), ==, ICE_FILTER_FORBIDDEN);

  g_assert_cmpint(judge(&open, "192.0.2.2"), ==, ICE_FILTER_ACCEPT);
  g_assert_cmpint(judge(&open, "2001:db8::2"), ==, ICE_FILTER_ACCEPT);
  g_assert_cmpint(judge(NULL, "127.0.0.1"), ==, ICE_FILTER_ACCEPT); /* no filter: forbidden only */
}

static void test_loopback(void)
{
  ice_filter off = { .loopback = false };
  ice_filter on = { .loopback = true };

  g_assert_cmpint(judge(&off, "127.0.0.1"), ==, ICE_FILTER_LOOPBACK);
  g_assert_cmpint(judge(&off, "127.255.0.9"), ==, ICE_FILTER_LOOPBACK);
  g_assert_cmpint(judge(&off, "::1"), ==, ICE_FILTER_LOOPBACK);
  g_assert_cmpint(judge(&off, "::ffff:127.0.0.1"), ==, ICE_FILTER_LOOPBACK);
  g_assert_cmpint(judge(&off, "198.51.100.1"), ==, ICE_FILTER_ACCEPT);
  g_assert_cmpint(judge(&on, "127.0.0.1"), ==, ICE_FILTER_ACCEPT);
  g_assert_cmpint(judge(&on, "::1"), ==, ICE_FILTER_ACCEPT);
  /* loopback is no peer-reflexive concern: only deny and forbidden are */
  struct sockaddr_storage ss = addr("127.0.0.1");
  g_assert_true(ice_filter_source_allowed(&off, (struct sockaddr *)&ss));
}

static void test_allow_deny(void)
{
  config_network allow[] = { net("198.51.100.0/24"), net("127.0.0.0/8"), net("2001:db8::/32") };
  config_network deny[] = { net("198.51.100.128/25"), net("127.0.0.64/26"), net("10.0.0.0/8"),
                            net("2001:db8:bad::/48") };
  ice_filter f = { .loopback = true, .allow = allow, .n_allow = 3, .deny = deny, .n_deny = 4 };
  ice_filter deny_only = { .loopback = true, .deny = deny, .n_deny = 4 };

  g_assert_cmpint(judge(&f, "198.51.100.1"), ==, ICE_FILTER_ACCEPT);
  g_assert_cmpint(judge(&f, "198.51.100.200"), ==, ICE_FILTER_DENIED); /* deny wins */
  g_assert_cmpint(judge(&f, "203.0.113.1"), ==, ICE_FILTER_NOT_ALLOWED);
  g_assert_cmpint(judge(&f, "127.0.0.1"), ==, ICE_FILTER_ACCEPT);
  g_assert_cmpint(judge(&f, "127.0.0.77"), ==, ICE_FILTER_DENIED);
  g_assert_cmpint(judge(&f, "127.0.0.128"), ==, ICE_FILTER_ACCEPT);
  g_assert_cmpint(judge(&f, "2001:db8::5"), ==, ICE_FILTER_ACCEPT);
  g_assert_cmpint(judge(&f, "2001:db8:bad::5"), ==, ICE_FILTER_DENIED);
  g_assert_cmpint(judge(&f, "2001:db9::5"), ==, ICE_FILTER_NOT_ALLOWED);
  g_assert_cmpint(judge(&f, "::ffff:10.1.2.3"), ==, ICE_FILTER_DENIED); /* mapped: the IPv4 address */
  g_assert_cmpint(judge(&deny_only, "203.0.113.1"), ==, ICE_FILTER_ACCEPT);
  g_assert_cmpint(judge(&deny_only, "10.20.30.40"), ==, ICE_FILTER_DENIED);

  /* peer-reflexive sources: deny applies, allow does not (NAT) */
  struct sockaddr_storage ss = addr("203.0.113.1");
  g_assert_true(ice_filter_source_allowed(&f, (struct sockaddr *)&ss));
  ss = addr("10.0.0.1");
  g_assert_false(ice_filter_source_allowed(&f, (struct sockaddr *)&ss));
  ss = addr("127.0.0.77");
  g_assert_false(ice_filter_source_allowed(&f, (struct sockaddr *)&ss));
  ss = addr("10.0.0.1");
  g_assert_true(ice_filter_source_allowed(NULL, (struct sockaddr *)&ss));
}

static void test_limit(void)
{
  config_network deny[] = { net("10.0.0.0/8") };
  ice_filter f = { .candidates_max = 3, .loopback = true, .deny = deny, .n_deny = 1 };
  ice_filter unlimited = { .loopback = true };
  unsigned accepted = 0;
  struct sockaddr_storage good = addr("192.0.2.2"), bad = addr("10.0.0.1"), mc = addr("224.0.0.1");

  /* refused candidates do not use up the limit */
  g_assert_cmpint(ice_filter_admit(&f, &accepted, (struct sockaddr *)&bad), ==, ICE_FILTER_DENIED);
  g_assert_cmpint(ice_filter_admit(&f, &accepted, (struct sockaddr *)&mc), ==, ICE_FILTER_FORBIDDEN);
  g_assert_cmpuint(accepted, ==, 0);
  for (int i = 0; i < 3; i++)
    g_assert_cmpint(ice_filter_admit(&f, &accepted, (struct sockaddr *)&good), ==, ICE_FILTER_ACCEPT);
  g_assert_cmpuint(accepted, ==, 3);
  g_assert_cmpint(ice_filter_admit(&f, &accepted, (struct sockaddr *)&good), ==, ICE_FILTER_OVER_LIMIT);
  /* the address rules still come first */
  g_assert_cmpint(ice_filter_admit(&f, &accepted, (struct sockaddr *)&bad), ==, ICE_FILTER_DENIED);
  g_assert_cmpuint(accepted, ==, 3);

  accepted = 0;
  for (int i = 0; i < 1000; i++)
    g_assert_cmpint(ice_filter_admit(&unlimited, &accepted, (struct sockaddr *)&good), ==, ICE_FILTER_ACCEPT);
  accepted = 0;
  for (int i = 0; i < 1000; i++)
    g_assert_cmpint(ice_filter_admit(NULL, &accepted, (struct sockaddr *)&good), ==, ICE_FILTER_ACCEPT);
}

static void test_unparsed(void)
{
  g_assert_cmpint(ice_filter_unparsed("candidate:2 1 udp 2113937151 0a1b2c3d-1111-2222-3333-444455556666.local 50000 typ host"),
                  ==, ICE_FILTER_MDNS);
  g_assert_cmpint(ice_filter_unparsed("a=candidate:2 1 UDP 2113937151 abc.LOCAL 50000 typ host\r"),
                  ==, ICE_FILTER_MDNS);
  g_assert_cmpint(ice_filter_unparsed("candidate:3 1 tcp 1518280447 abc.local 9 typ host tcptype active"),
                  ==, ICE_FILTER_MDNS);
  g_assert_cmpint(ice_filter_unparsed("candidate:3 1 TCP 1518280447 example.com 9 typ host tcptype active"),
                  ==, ICE_FILTER_TCP);
  g_assert_cmpint(ice_filter_unparsed("candidate:3 1 udp 1 example.com 9 typ host"), ==, ICE_FILTER_UNUSABLE);
  g_assert_cmpint(ice_filter_unparsed("garbage"), ==, ICE_FILTER_UNUSABLE);
  g_assert_cmpint(ice_filter_unparsed("candidate:1 1"), ==, ICE_FILTER_UNUSABLE);
  g_assert_cmpint(ice_filter_unparsed(".local"), ==, ICE_FILTER_UNUSABLE);
  g_assert_cmpint(ice_filter_unparsed(""), ==, ICE_FILTER_UNUSABLE);
  g_assert_cmpint(ice_filter_unparsed(NULL), ==, ICE_FILTER_UNUSABLE);
}

static void test_summary(void)
{
  char buf[256];
  ice_filter_tally t = { .total = 12 };

  g_assert_cmpuint(ice_filter_summary(&t, buf, sizeof buf), ==, 0);
  t.ignored[ICE_FILTER_DENIED] = 2;
  t.ignored[ICE_FILTER_OVER_LIMIT] = 1;
  g_assert_cmpuint(ice_filter_summary(&t, buf, sizeof buf), ==, 3);
  g_assert_cmpstr(buf, ==, "3 of 12 remote candidates ignored (2 denied network, 1 over the limit)");

  ice_filter_tally all = { .total = 9 };
  for (int r = ICE_FILTER_ACCEPT + 1; r < ICE_FILTER_N_REASONS; r++)
    all.ignored[r] = 1;
  g_assert_cmpuint(ice_filter_summary(&all, buf, sizeof buf), ==, 8);
  g_assert_cmpstr(buf, ==, "8 of 9 remote candidates ignored (1 forbidden address, 1 loopback, "
                           "1 outside ice_allow, 1 denied network, 1 over the limit, 1 mDNS name, "
                           "1 TCP, 1 unusable)");

  ice_filter_tally one = { .total = 1, .ignored = { [ICE_FILTER_MDNS] = 1 } };
  g_assert_cmpuint(ice_filter_summary(&one, buf, sizeof buf), ==, 1);
  g_assert_cmpstr(buf, ==, "1 of 1 remote candidate ignored (1 mDNS name)");

  /* a short buffer: truncated, terminated, never overrun */
  char small[20];
  memset(small, 'x', sizeof small);
  g_assert_cmpuint(ice_filter_summary(&all, small, 16), ==, 8);
  g_assert_cmpuint(strlen(small), ==, 15);
  g_assert_cmpint(small[16], ==, 'x');
  g_assert_cmpuint(ice_filter_summary(&all, small, 0), ==, 8);
}

static void test_program(void)
{
  struct sock_filter insns[ICE_FILTER_MAX_INSNS];
  config_network deny[ICE_FILTER_MAX_NETWORKS];
  int base, n;

  base = ice_filter_program(NULL, insns, G_N_ELEMENTS(insns));
  g_assert_cmpint(base, >, 0);
  g_assert_cmpint(ice_filter_program(NULL, insns, 4), ==, -E2BIG);
  /* first: anything shorter than a STUN header, or not a Binding request, passes at once */
  g_assert_cmpuint(insns[0].code, ==, BPF_LD | BPF_W | BPF_LEN);
  g_assert_cmpuint(insns[1].code, ==, BPF_JMP | BPF_JGE | BPF_K);
  g_assert_cmpuint(insns[1].k, ==, 28);
  g_assert_cmpuint(insns[2].code, ==, BPF_RET | BPF_K);
  g_assert_cmpuint(insns[2].k, !=, 0);
  g_assert_cmpuint(insns[3].code, ==, BPF_LD | BPF_H | BPF_ABS);
  g_assert_cmpuint(insns[3].k, ==, 8);
  g_assert_cmpuint(insns[4].code, ==, BPF_JMP | BPF_JEQ | BPF_K);
  g_assert_cmpuint(insns[4].k, ==, 0x0001);
  g_assert_cmpuint(insns[5].code, ==, BPF_RET | BPF_K);
  g_assert_cmpuint(insns[5].k, !=, 0);
  /* the last instruction returns, and no jump leaves the program */
  for (int i = 0; i < base; i++) {
    if (BPF_CLASS(insns[i].code) != BPF_JMP)
      continue;
    if (BPF_OP(insns[i].code) == BPF_JA)
      g_assert_cmpint(i + 1 + (int)insns[i].k, <, base);
    else
      g_assert_cmpint(i + 1 + MAX(insns[i].jt, insns[i].jf), <, base);
  }
  g_assert_cmpuint(BPF_CLASS(insns[base - 1].code), ==, BPF_RET);

  /* the largest deny list the configuration holds (64 IPv6 /128: 13 each) fits */
  for (int i = 0; i < ICE_FILTER_MAX_NETWORKS; i++) {
    char text[64];
    g_snprintf(text, sizeof text, "2001:db8::%x", i + 1);
    deny[i] = net(text);
  }
  ice_filter big = { .deny = deny, .n_deny = ICE_FILTER_MAX_NETWORKS };
  n = ice_filter_program(&big, insns, G_N_ELEMENTS(insns));
  g_assert_cmpint(n, ==, base + 13 * ICE_FILTER_MAX_NETWORKS);
  g_assert_cmpint(n, <=, ICE_FILTER_MAX_INSNS);
  ice_filter v4 = { .deny = (config_network[]){ net("10.0.0.0/8") }, .n_deny = 1 };
  g_assert_cmpint(ice_filter_program(&v4, insns, G_N_ELEMENTS(insns)), ==, base + 4);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/ice_filter/forbidden", test_forbidden);
  g_test_add_func("/ice_filter/loopback", test_loopback);
  g_test_add_func("/ice_filter/allow-deny", test_allow_deny);
  g_test_add_func("/ice_filter/limit", test_limit);
  g_test_add_func("/ice_filter/unparsed", test_unparsed);
  g_test_add_func("/ice_filter/summary", test_summary);
  g_test_add_func("/ice_filter/program", test_program);
  return g_test_run();
}
