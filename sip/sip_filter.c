/* The SIP port's socket filter.  See sip_filter.h.
 *
 * For a UDP socket the program sees the packet from the UDP header on (the
 * payload at offset 8); for TCP from the TCP header.  The IP header is read
 * through SKF_NET_OFF, whichever the socket's family: an IPv6 socket that
 * takes IPv4 (mapped) packets still sees an IPv4 header.
 */
#include "sip/sip_filter.h"

#include "config/netlist_bpf.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/sock_diag.h>

#define ACCEPT 0x40000u /* up to 256 KB of the packet */

#define STMT(code, k) ((struct sock_filter)BPF_STMT((code), (k)))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP((code), (k), (jt), (jf)))

static void build(netlist_bpf *p, const config_network *nets, size_t n, int dgram)
{
  if (dgram) {
    /* first byte of the UDP payload: 0..3 is STUN (RFC 7983) */
    netlist_bpf_emit(p, STMT(BPF_LD | BPF_B | BPF_ABS, 8));
    netlist_bpf_emit(p, JUMP(BPF_JMP | BPF_JGE | BPF_K, 4, 1, 0));
    netlist_bpf_ret(p, 0);
  }
  netlist_bpf_split(p);
  for (size_t i = 0; i < n; i++)
    if (nets[i].family == AF_INET)
      netlist_bpf_source_in(p, &nets[i], ACCEPT);
  netlist_bpf_ret(p, 0);
  netlist_bpf_ipv6(p);
  for (size_t i = 0; i < n; i++)
    if (nets[i].family == AF_INET6)
      netlist_bpf_source_in(p, &nets[i], ACCEPT);
  netlist_bpf_ret(p, 0);
}

int sip_filter_program(const config_network *nets, size_t n, int dgram, struct sock_filter *out,
                       size_t cap)
{
  netlist_bpf p;

  netlist_bpf_init(&p, out, cap);
  build(&p, nets, n, dgram);
  return p.overflow ? -E2BIG : (int)p.len;
}

int sip_filter_attach(int fd, const config_network *nets, size_t n)
{
  struct sock_filter insns[SIP_FILTER_MAX_INSNS];
  netlist_bpf p;
  int type = 0;
  socklen_t len = sizeof type;

  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
    return -errno;
  netlist_bpf_init(&p, insns, sizeof insns / sizeof insns[0]);
  build(&p, nets, n, type == SOCK_DGRAM);
  return netlist_bpf_attach(&p, fd);
}

static uint16_t local_port(int fd)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;

  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
    return 0;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return 0;
}

size_t sip_filter_find_listeners(uint16_t port, int *fds, size_t cap)
{
  DIR *dir = opendir("/proc/self/fd");
  struct dirent *e;
  size_t n = 0;

  if (!dir)
    return 0;
  while ((e = readdir(dir)) && n < cap) {
    char *end = NULL;
    long fd = strtol(e->d_name, &end, 10);
    int type = 0, listening = 0, domain = 0;
    socklen_t len = sizeof type;

    if (*end || fd < 0 || fd == dirfd(dir))
      continue;
    if (getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
      continue; /* not a socket */
    len = sizeof domain;
    if (getsockopt((int)fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
        (domain != AF_INET && domain != AF_INET6))
      continue;
    len = sizeof listening;
    if (type == SOCK_STREAM &&
        (getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening))
      continue;
    if (type != SOCK_DGRAM && type != SOCK_STREAM)
      continue;
    if (local_port((int)fd) == port)
      fds[n++] = (int)fd;
  }
  closedir(dir);
  return n;
}

uint64_t sip_filter_drops(int fd)
{
  uint32_t info[SK_MEMINFO_VARS] = { 0 };
  socklen_t len = sizeof info;

  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &len) < 0 || len < sizeof info)
    return 0;
  return info[SK_MEMINFO_DROPS];
}
