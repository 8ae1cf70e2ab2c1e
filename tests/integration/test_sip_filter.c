/* sip/sip_filter.c: the SIP port's kernel socket filter on real loopback
 * sockets.  Senders from other loopback addresses (the whole 127/8 is local)
 * stand for strangers; the filter must let the trusted networks through,
 * drop everyone else and every STUN datagram, on UDP (IPv4, and a
 * dual-stack IPv6 socket that gets IPv4 as mapped addresses) and on a TCP
 * listener, whose SYNs from strangers never become connections. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib.h>

#include "sip/sip_filter.h"

static config_network net(const char *text)
{
  config_network n;
  g_assert_cmpint(netlist_parse(text, &n), ==, 0);
  return n;
}

static socklen_t sockaddr_of(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
  g_assert_cmpint(netlist_parse_address(ip, ss), ==, 0);
  if (ss->ss_family == AF_INET) {
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
    return sizeof(struct sockaddr_in);
  }
  ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
  return sizeof(struct sockaddr_in6);
}

static uint16_t port_of(int fd)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  g_assert_cmpint(getsockname(fd, (struct sockaddr *)&ss, &len), ==, 0);
  return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* A socket of TYPE bound to IP:0 (for the server: "::" dual-stack). */
static int bound(int type, const char *ip)
{
  struct sockaddr_storage ss;
  socklen_t len = sockaddr_of(ip, 0, &ss);
  int fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
  int zero = 0;

  g_assert_cmpint(fd, >=, 0);
  if (ss.ss_family == AF_INET6)
    g_assert_cmpint(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero), ==, 0);
  g_assert_cmpint(bind(fd, (struct sockaddr *)&ss, len), ==, 0);
  return fd;
}

/* true when the datagram TEXT sent from FROM to the server socket SRV
 * (listening at TO) arrives within 200 ms */
static bool arrives(int srv, const char *to, const char *from, const void *data, size_t len)
{
  int c = bound(SOCK_DGRAM, from);
  struct sockaddr_storage dst;
  socklen_t dlen = sockaddr_of(to, port_of(srv), &dst);
  struct pollfd p = { .fd = srv, .events = POLLIN };
  char buf[2048];
  bool got;

  g_assert_cmpint(sendto(c, data, len, 0, (struct sockaddr *)&dst, dlen), ==, (ssize_t)len);
  got = poll(&p, 1, 200) == 1;
  if (got)
    g_assert_cmpint(recv(srv, buf, sizeof buf, 0), ==, (ssize_t)len);
  close(c);
  return got;
}

static const char sip_text[] = "OPTIONS sip:x SIP/2.0\r\n\r\n";
static const uint8_t stun_binding[20] = { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3 };
static const uint8_t dtls_like[20] = { 0x16, 0xfe, 0xfd };
static const uint8_t keepalive[] = "\r\n\r\n";

static bool sip_arrives(int srv, const char *to, const char *from)
{
  return arrives(srv, to, from, sip_text, sizeof sip_text - 1);
}

static void test_udp4(void)
{
  int srv = bound(SOCK_DGRAM, "127.0.0.1");
  config_network trusted[] = { net("127.0.0.1"), net("127.0.0.64/26") };

  g_assert_true(sip_arrives(srv, "127.0.0.1", "127.0.0.5")); /* no filter yet */
  g_assert_cmpint(sip_filter_attach(srv, trusted, G_N_ELEMENTS(trusted)), ==, 0);
  g_assert_true(sip_arrives(srv, "127.0.0.1", "127.0.0.1"));
  g_assert_true(sip_arrives(srv, "127.0.0.1", "127.0.0.64"));
  g_assert_true(sip_arrives(srv, "127.0.0.1", "127.0.0.127"));
  g_assert_false(sip_arrives(srv, "127.0.0.1", "127.0.0.5"));
  g_assert_false(sip_arrives(srv, "127.0.0.1", "127.0.0.128"));
  g_assert_false(sip_arrives(srv, "127.0.0.1", "127.0.0.63"));
  /* payload: STUN (first byte 0..3) never, SIP and CRLF keepalives yes */
  g_assert_false(arrives(srv, "127.0.0.1", "127.0.0.1", stun_binding, sizeof stun_binding));
  g_assert_true(arrives(srv, "127.0.0.1", "127.0.0.1", keepalive, sizeof keepalive - 1));
  g_assert_true(arrives(srv, "127.0.0.1", "127.0.0.1", dtls_like, sizeof dtls_like));
  /* the kernel counted the drops (4 strangers, 1 STUN) */
  g_assert_cmpuint(sip_filter_drops(srv), ==, 4);

  /* replaced on reload: the new list holds at once */
  config_network other[] = { net("127.0.0.5") };
  g_assert_cmpint(sip_filter_attach(srv, other, 1), ==, 0);
  g_assert_true(sip_arrives(srv, "127.0.0.1", "127.0.0.5"));
  g_assert_false(sip_arrives(srv, "127.0.0.1", "127.0.0.1"));
  /* nobody trusted: nothing arrives */
  g_assert_cmpint(sip_filter_attach(srv, NULL, 0), ==, 0);
  g_assert_false(sip_arrives(srv, "127.0.0.1", "127.0.0.5"));
  /* 0.0.0.0/0: every IPv4 sender */
  config_network any[] = { net("0.0.0.0/0") };
  g_assert_cmpint(sip_filter_attach(srv, any, 1), ==, 0);
  g_assert_true(sip_arrives(srv, "127.0.0.1", "127.0.0.200"));
  close(srv);
}

static void test_udp6_dual_stack(void)
{
  int srv = bound(SOCK_DGRAM, "::");
  config_network v4[] = { net("127.0.0.0/30") };
  config_network v6[] = { net("::1") };
  config_network v6net[] = { net("::/127") }; /* :: and ::1 */

  g_assert_cmpint(sip_filter_attach(srv, v4, 1), ==, 0);
  g_assert_true(sip_arrives(srv, "127.0.0.1", "127.0.0.2"));   /* mapped IPv4 */
  g_assert_false(sip_arrives(srv, "127.0.0.1", "127.0.0.5"));
  g_assert_false(sip_arrives(srv, "::1", "::1"));               /* no IPv6 network trusted */
  g_assert_cmpint(sip_filter_attach(srv, v6, 1), ==, 0);
  g_assert_true(sip_arrives(srv, "::1", "::1"));
  g_assert_false(sip_arrives(srv, "127.0.0.1", "127.0.0.1"));
  g_assert_false(arrives(srv, "::1", "::1", stun_binding, sizeof stun_binding));
  g_assert_cmpint(sip_filter_attach(srv, v6net, 1), ==, 0);
  g_assert_true(sip_arrives(srv, "::1", "::1"));
  close(srv);
}

/* true when a TCP connection from FROM to the listener SRV is accepted
 * within 300 ms */
static bool connects(int srv, const char *from)
{
  int c = bound(SOCK_STREAM, from);
  struct sockaddr_storage dst;
  socklen_t dlen = sockaddr_of("127.0.0.1", port_of(srv), &dst);
  struct pollfd p = { .fd = srv, .events = POLLIN };
  bool ok;

  g_assert_cmpint(fcntl(c, F_SETFL, O_NONBLOCK), ==, 0);
  (void)connect(c, (struct sockaddr *)&dst, dlen); /* EINPROGRESS */
  ok = poll(&p, 1, 300) == 1;
  if (ok) {
    int a = accept(srv, NULL, NULL);
    g_assert_cmpint(a, >=, 0);
    close(a);
  }
  close(c);
  return ok;
}

static void test_tcp_listener(void)
{
  int srv = bound(SOCK_STREAM, "127.0.0.1");
  config_network trusted[] = { net("127.0.0.1") };
  int fds[4];

  g_assert_cmpint(listen(srv, 8), ==, 0);
  /* found among this process's sockets by its port */
  g_assert_cmpuint(sip_filter_find_listeners(port_of(srv), fds, G_N_ELEMENTS(fds)), ==, 1);
  g_assert_cmpint(fds[0], ==, srv);
  g_assert_cmpint(sip_filter_attach(srv, trusted, 1), ==, 0);
  g_assert_true(connects(srv, "127.0.0.1"));
  g_assert_false(connects(srv, "127.0.0.5"));
  g_assert_true(connects(srv, "127.0.0.1"));
  close(srv);
}

static void test_largest_program(void)
{
  config_network nets[64];
  struct sock_filter prog[SIP_FILTER_MAX_INSNS];
  int srv = bound(SOCK_DGRAM, "127.0.0.1");

  for (int i = 0; i < 64; i++) {
    char text[64];
    if (i % 2)
      g_snprintf(text, sizeof text, "2001:db8:%x::/48", i);
    else
      g_snprintf(text, sizeof text, "127.0.%d.0/24", i + 1);
    nets[i] = net(text);
  }
  g_assert_cmpint(sip_filter_program(nets, 64, 1, prog, G_N_ELEMENTS(prog)), >, 0);
  g_assert_cmpint(sip_filter_program(nets, 64, 1, prog, 10), ==, -E2BIG);
  /* the kernel takes the largest program, and it still matches the last IPv4 network */
  g_assert_cmpint(sip_filter_attach(srv, nets, 64), ==, 0);
  g_assert_true(sip_arrives(srv, "127.0.0.1", "127.0.63.9"));
  g_assert_false(sip_arrives(srv, "127.0.0.1", "127.0.0.1"));
  close(srv);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/sip_filter/udp4", test_udp4);
  g_test_add_func("/sip_filter/udp6-dual-stack", test_udp6_dual_stack);
  g_test_add_func("/sip_filter/tcp-listener", test_tcp_listener);
  g_test_add_func("/sip_filter/largest-program", test_largest_program);
  return g_test_run();
}
