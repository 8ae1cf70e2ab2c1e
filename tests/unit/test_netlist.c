/* Unit tests: networks and the address tests of the trust rules
 * (config/netlist.c): which senders are trusted, which ICE candidates are
 * never checked. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "config/netlist.h"

static struct sockaddr_storage addr(const char *text)
{
  struct sockaddr_storage ss;
  g_assert_cmpint(netlist_parse_address(text, &ss), ==, 0);
  return ss;
}

static bool in(const char *net, const char *a)
{
  config_network n;
  struct sockaddr_storage ss = addr(a);
  g_assert_cmpint(netlist_parse(net, &n), ==, 0);
  return netlist_contains(&n, (struct sockaddr *)&ss);
}

static void test_parse(void)
{
  config_network n;
  char buf[64];
  static const char *const bad[] = {
    "", "/8", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/33", "10.0.0.1/8", "fe80::1/10",
    "::/129", "example.com", "10.0.0.0/8/8", "10.0.0.0 /8", "1.2.3", NULL,
  };

  g_assert_cmpint(netlist_parse("10.0.0.0/8", &n), ==, 0);
  g_assert_cmpint(n.family, ==, AF_INET);
  g_assert_cmpuint(n.prefix, ==, 8);
  g_assert_cmpstr(netlist_format(&n, buf, sizeof buf), ==, "10.0.0.0/8");
  g_assert_cmpint(netlist_parse("192.0.2.7", &n), ==, 0);
  g_assert_cmpuint(n.prefix, ==, 32);
  g_assert_cmpint(netlist_parse("2001:db8::/32", &n), ==, 0);
  g_assert_cmpint(n.family, ==, AF_INET6);
  g_assert_cmpstr(netlist_format(&n, buf, sizeof buf), ==, "2001:db8::/32");
  g_assert_cmpint(netlist_parse("::ffff:10.1.2.3", &n), ==, 0); /* the IPv4 address */
  g_assert_cmpint(n.family, ==, AF_INET);
  g_assert_cmpint(netlist_parse("0.0.0.0/0", &n), ==, 0);
  for (int i = 0; bad[i]; i++) {
    g_test_message("bad network '%s'", bad[i]);
    g_assert_cmpint(netlist_parse(bad[i], &n), ==, -EINVAL);
  }
}

static void test_contains(void)
{
  g_assert_true(in("10.0.0.0/8", "10.255.1.2"));
  g_assert_false(in("10.0.0.0/8", "11.0.0.1"));
  g_assert_true(in("192.168.4.0/22", "192.168.7.255"));
  g_assert_false(in("192.168.4.0/22", "192.168.8.0"));
  g_assert_true(in("127.0.0.1", "127.0.0.1"));
  g_assert_false(in("127.0.0.1", "127.0.0.2"));
  g_assert_true(in("0.0.0.0/0", "203.0.113.9"));
  g_assert_false(in("0.0.0.0/0", "2001:db8::1")); /* families apart */
  g_assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
  g_assert_false(in("2001:db8::/33", "2001:db8:ffff::1"));
  g_assert_true(in("10.0.0.0/8", "::ffff:10.0.0.9")); /* a dual-stack socket's sender */
  g_assert_false(in("::/0", "::ffff:10.0.0.9"));
}

static void test_match_list(void)
{
  config_network list[2];
  struct sockaddr_storage a = addr("172.16.5.5"), b = addr("8.8.8.8");

  g_assert_cmpint(netlist_parse("192.168.0.0/16", &list[0]), ==, 0);
  g_assert_cmpint(netlist_parse("172.16.0.0/12", &list[1]), ==, 0);
  g_assert_true(netlist_match(list, 2, (struct sockaddr *)&a));
  g_assert_false(netlist_match(list, 2, (struct sockaddr *)&b));
  g_assert_false(netlist_match(list, 0, (struct sockaddr *)&a));
}

static void test_forbidden(void)
{
  static const char *const forbidden[] = {
    "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1",
    "169.254.10.10", "::", "ff02::1", "ff05::1:3", "fe80::1", "::ffff:224.0.0.251", NULL,
  };
  static const char *const allowed[] = {
    "127.0.0.1", "10.0.0.1", "192.0.2.1", "203.0.113.200", "::1", "2001:db8::1", "fd00::1",
    "223.255.255.255", NULL,
  };

  for (int i = 0; forbidden[i]; i++) {
    struct sockaddr_storage ss = addr(forbidden[i]);
    g_test_message("forbidden %s", forbidden[i]);
    g_assert_true(netlist_is_forbidden((struct sockaddr *)&ss));
  }
  for (int i = 0; allowed[i]; i++) {
    struct sockaddr_storage ss = addr(allowed[i]);
    g_test_message("not forbidden %s", allowed[i]);
    g_assert_false(netlist_is_forbidden((struct sockaddr *)&ss));
  }
  {
    struct sockaddr_storage l4 = addr("127.3.4.5"), l6 = addr("::1"), m = addr("::ffff:127.0.0.1"),
                            o = addr("128.0.0.1");
    g_assert_true(netlist_is_loopback((struct sockaddr *)&l4));
    g_assert_true(netlist_is_loopback((struct sockaddr *)&l6));
    g_assert_true(netlist_is_loopback((struct sockaddr *)&m));
    g_assert_false(netlist_is_loopback((struct sockaddr *)&o));
  }
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/netlist/parse", test_parse);
  g_test_add_func("/netlist/contains", test_contains);
  g_test_add_func("/netlist/match-list", test_match_list);
  g_test_add_func("/netlist/forbidden", test_forbidden);
  return g_test_run();
}
