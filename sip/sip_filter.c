/* The SIP port's socket filter.  See sip_filter.h.
 *
 * For a UDP socket the program sees the packet from the UDP header on (the
 * payload at offset 8); for TCP from the TCP header.  The IP header is read
 * through SKF_NET_OFF, whichever the socket's family: an IPv6 socket that
 * takes IPv4 (mapped) packets still sees an IPv4 header.
 */
#include "sip/sip_filter.h"

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
#define NET(off) ((uint32_t)(SKF_NET_OFF + (off)))

typedef struct {
  struct sock_filter *out;
  size_t cap, len;
  int overflow;
} prog;

static void emit(prog *p, struct sock_filter insn)
{
  if (p->len < p->cap)
    p->out[p->len] = insn;
  else
    p->overflow = 1;
  p->len++;
}

static uint32_t word_of(const uint8_t *b, unsigned i)
{
  return (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 | (uint32_t)b[4 * i + 2] << 8 |
         b[4 * i + 3];
}

/* mask of the prefix bits that fall in word I (32 bits each) */
static uint32_t mask_of(unsigned prefix, unsigned i)
{
  if (prefix >= 32 * (i + 1))
    return 0xffffffffu;
  if (prefix <= 32 * i)
    return 0;
  return 0xffffffffu << (32 - (prefix - 32 * i));
}

/* One network: when the source address is in it, return ACCEPT; otherwise
 * fall through to the instruction after this block.  The source of IPv4
 * is at 12 of the IP header, of IPv6 at 8 (four words). */
static void emit_network(prog *p, const config_network *n)
{
  unsigned words = n->family == AF_INET ? 1 : 4, used = 0;
  uint32_t base = n->family == AF_INET ? 12 : 8;

  for (unsigned i = 0; i < words; i++)
    if (mask_of(n->prefix, i))
      used++;
  if (used == 0) { /* 0.0.0.0/0 or ::/0 */
    emit(p, STMT(BPF_RET | BPF_K, ACCEPT));
    return;
  }
  /* each compared word: ld, and, jeq (3); then ret (1).  A mismatch jumps
   * over the rest of the block. */
  unsigned left = used;
  for (unsigned i = 0; i < words; i++) {
    uint32_t m = mask_of(n->prefix, i);
    if (!m)
      continue;
    left--;
    emit(p, STMT(BPF_LD | BPF_W | BPF_ABS, NET(base + 4 * i)));
    emit(p, STMT(BPF_ALU | BPF_AND | BPF_K, m));
    /* on mismatch skip: the remaining words (3 each) and the ret */
    emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, word_of(n->addr, i) & m, 0, (uint8_t)(3 * left + 1)));
  }
  emit(p, STMT(BPF_RET | BPF_K, ACCEPT));
}

int sip_filter_program(const config_network *nets, size_t n, int dgram, struct sock_filter *out,
                       size_t cap)
{
  prog p = { .out = out, .cap = cap };
  size_t v4_at, v6_at, jump_at;

  if (dgram) {
    /* first byte of the UDP payload: 0..3 is STUN (RFC 7983) */
    emit(&p, STMT(BPF_LD | BPF_B | BPF_ABS, 8));
    emit(&p, JUMP(BPF_JMP | BPF_JGE | BPF_K, 4, 1, 0));
    emit(&p, STMT(BPF_RET | BPF_K, 0));
  }
  /* IP version: the high nibble of the first byte of the IP header */
  emit(&p, STMT(BPF_LD | BPF_B | BPF_ABS, NET(0)));
  emit(&p, STMT(BPF_ALU | BPF_RSH | BPF_K, 4));
  emit(&p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, 4, 1, 0));
  jump_at = p.len;
  emit(&p, STMT(BPF_JMP | BPF_JA, 0)); /* k patched: to the IPv6 part */
  v4_at = p.len;
  for (size_t i = 0; i < n; i++)
    if (nets[i].family == AF_INET)
      emit_network(&p, &nets[i]);
  emit(&p, STMT(BPF_RET | BPF_K, 0));
  v6_at = p.len;
  for (size_t i = 0; i < n; i++)
    if (nets[i].family == AF_INET6)
      emit_network(&p, &nets[i]);
  emit(&p, STMT(BPF_RET | BPF_K, 0));

  if (p.overflow)
    return -E2BIG;
  out[jump_at].k = (uint32_t)(v6_at - v4_at);
  return (int)p.len;
}

int sip_filter_attach(int fd, const config_network *nets, size_t n)
{
  struct sock_filter insns[SIP_FILTER_MAX_INSNS];
  int type = 0;
  socklen_t len = sizeof type;
  int count;

  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
    return -errno;
  count = sip_filter_program(nets, n, type == SOCK_DGRAM, insns, sizeof insns / sizeof insns[0]);
  if (count < 0)
    return count;
  struct sock_fprog fprog = { .len = (unsigned short)count, .filter = insns };
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) < 0)
    return -errno;
  return 0;
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
