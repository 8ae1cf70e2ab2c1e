/* Networks as classic BPF: the pieces of a socket filter (SO_ATTACH_FILTER)
 * that test a packet's IP source address against networks, shared by the
 * SIP port's filter (sip/sip_filter.c) and the ICE sockets' filter
 * (webrtc/ice_filter.c), which each add their own policy around them.
 *
 * The IP header is read through SKF_NET_OFF, so a program works on IPv4
 * and IPv6 sockets alike (a dual-stack IPv6 socket taking IPv4 still sees an
 * IPv4 header).  Jumps inside a network's block are short; the one jump
 * from the IPv4 part to the IPv6 part is a BPF_JA (32-bit offset), so any
 * number of networks fits. */
#pragma once

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/netlist.h"

/* The most instructions one network takes (an IPv6 network: 4 words x 3, + 1). */
#define NETLIST_BPF_PER_NETWORK 13

typedef struct {
  struct sock_filter *out;
  size_t cap, len;
  bool overflow; /* more than CAP instructions were emitted */
  size_t split;  /* the BPF_JA of netlist_bpf_split(), patched by netlist_bpf_ipv6() */
} netlist_bpf;

/* A program written into OUT (CAP instructions). */
void netlist_bpf_init(netlist_bpf *p, struct sock_filter *out, size_t cap);
void netlist_bpf_emit(netlist_bpf *p, struct sock_filter insn);
/* "return VERDICT" (0: drop; otherwise the bytes kept) */
void netlist_bpf_ret(netlist_bpf *p, uint32_t verdict);
/* When the packet's IP source is in N: return VERDICT; else go on after the block. */
void netlist_bpf_source_in(netlist_bpf *p, const config_network *n, uint32_t verdict);
/* The IP version test: what follows is the IPv4 part, until netlist_bpf_ipv6()
 * marks where IPv6 packets go on. */
void netlist_bpf_split(netlist_bpf *p);
void netlist_bpf_ipv6(netlist_bpf *p);

/* Attaches (or replaces) the program on socket FD.  0, -E2BIG (it overflowed) or -errno. */
int netlist_bpf_attach(const netlist_bpf *p, int fd);
