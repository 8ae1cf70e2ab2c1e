/* The SIP port's socket filter: classic BPF attached to the sockets Sofia-SIP
 * listens on (UDP, and the TCP/TLS listeners, whose accepted connections
 * inherit it), so that the kernel drops, before anything in rtcsipd or
 * Sofia-SIP reads it:
 *   - every packet whose source address is not in the trusted networks (a
 *     SYN from a stranger gets no connection, a datagram no answer: no 4xx
 *     reflected to a Via or maddr of the sender's choosing);
 *   - on UDP, every datagram whose first byte is 0..3 (STUN, RFC 7983): the
 *     SIP port is not a STUN server, and Sofia's own STUN handling leaks.
 * The drops are counted by the kernel (SO_MEMINFO).
 */
#pragma once

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

#include "config/netlist.h"
#include "config/netlist_bpf.h"

/* The largest program: 9 + 13 per network (the configuration holds at most 64). */
#define SIP_FILTER_MAX_INSNS (16 + NETLIST_BPF_PER_NETWORK * 64)

/* Writes the program accepting packets from NETS (and, with DGRAM, no STUN)
 * into OUT (CAP instructions).  Returns the number of instructions, or
 * -E2BIG.  An empty NETS accepts nobody. */
int sip_filter_program(const config_network *nets, size_t n, int dgram, struct sock_filter *out,
                       size_t cap);

/* Attaches (or replaces) the program for NETS on socket FD.  0 or -errno. */
int sip_filter_attach(int fd, const config_network *nets, size_t n);

/* The sockets of this process that listen on local port PORT (UDP sockets,
 * and TCP sockets in listen state), into FDS (CAP entries).  Returns how many. */
size_t sip_filter_find_listeners(uint16_t port, int *fds, size_t cap);

/* Packets the kernel dropped on FD so far (filter and receive-buffer overflows). */
uint64_t sip_filter_drops(int fd);
