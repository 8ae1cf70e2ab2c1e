/* Networks as classic BPF.  See netlist_bpf.h. */
#include "config/netlist_bpf.h"

#include <errno.h>
#include <sys/socket.h>

#define STMT(code, k) ((struct sock_filter)BPF_STMT((code), (k)))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP((code), (k), (jt), (jf)))
#define NET(off) ((uint32_t)(SKF_NET_OFF + (off)))

void netlist_bpf_init(netlist_bpf *p, struct sock_filter *out, size_t cap)
{
  *p = (netlist_bpf){ .out = out, .cap = cap };
}

void netlist_bpf_emit(netlist_bpf *p, struct sock_filter insn)
{
  if (p->len < p->cap)
    p->out[p->len] = insn;
  else
    p->overflow = true;
  p->len++;
}

void netlist_bpf_ret(netlist_bpf *p, uint32_t verdict)
{
  netlist_bpf_emit(p, STMT(BPF_RET | BPF_K, verdict));
}

static uint32_t word_of(const uint8_t *b, unsigned i)
{
  return (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 | (uint32_t)b[4 * i + 2] << 8 |
         b[4 * i + 3];
}

/* the prefix bits that fall in word I (32 bits each) */
static uint32_t mask_of(unsigned prefix, unsigned i)
{
  if (prefix >= 32 * (i + 1))
    return 0xffffffffu;
  if (prefix <= 32 * i)
    return 0;
  return 0xffffffffu << (32 - (prefix - 32 * i));
}

/* The source is at 12 of an IPv4 header, at 8 (four words) of an IPv6 one.
 * Each word the prefix covers: ld, and, jeq; a mismatch skips the words
 * left (3 instructions each) and the ret.  0.0.0.0/0 or ::/0: the ret alone. */
void netlist_bpf_source_in(netlist_bpf *p, const config_network *n, uint32_t verdict)
{
  unsigned words = n->family == AF_INET ? 1 : 4, left = 0;
  uint32_t base = n->family == AF_INET ? 12 : 8;

  for (unsigned i = 0; i < words; i++)
    if (mask_of(n->prefix, i))
      left++;
  for (unsigned i = 0; i < words; i++) {
    uint32_t m = mask_of(n->prefix, i);
    if (!m)
      continue;
    left--;
    netlist_bpf_emit(p, STMT(BPF_LD | BPF_W | BPF_ABS, NET(base + 4 * i)));
    netlist_bpf_emit(p, STMT(BPF_ALU | BPF_AND | BPF_K, m));
    netlist_bpf_emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, word_of(n->addr, i) & m, 0,
                             (uint8_t)(3 * left + 1)));
  }
  netlist_bpf_ret(p, verdict);
}

void netlist_bpf_split(netlist_bpf *p)
{
  /* the high nibble of the first byte of the IP header */
  netlist_bpf_emit(p, STMT(BPF_LD | BPF_B | BPF_ABS, NET(0)));
  netlist_bpf_emit(p, STMT(BPF_ALU | BPF_RSH | BPF_K, 4));
  netlist_bpf_emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, 4, 1, 0));
  p->split = p->len;
  netlist_bpf_emit(p, STMT(BPF_JMP | BPF_JA, 0));
}

void netlist_bpf_ipv6(netlist_bpf *p)
{
  if (p->split < p->cap)
    p->out[p->split].k = (uint32_t)(p->len - (p->split + 1));
}

int netlist_bpf_attach(const netlist_bpf *p, int fd)
{
  if (p->overflow || p->len > 0xffff)
    return -E2BIG;
  struct sock_fprog fprog = { .len = (unsigned short)p->len, .filter = p->out };
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) < 0)
    return -errno;
  return 0;
}
