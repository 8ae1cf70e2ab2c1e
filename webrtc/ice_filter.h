/* Which addresses rtcsipd's ICE agent sends connectivity checks to.  Anyone
 * who can place a call (the echo target needs no account) chooses the
 * browser's candidates, so each one is judged before libnice sees it:
 *   - never a forbidden address (netlist_is_forbidden: unspecified,
 *     multicast, broadcast and reserved, 0.0.0.0/8, link-local);
 *   - loopback only with loopback set;
 *   - with an allow list, only its networks; never a deny list network;
 *   - at most candidates_max accepted candidates over the agent's life
 *     (ICE restarts included; beyond, only peer-reflexive candidates).
 * Peer-reflexive candidates, which libnice learns from the browser's own
 * checks, have no hook in libnice: a socket filter (classic BPF) on the
 * agent's UDP sockets drops STUN Binding requests from forbidden and denied
 * sources before libnice reads them (no answer, no triggered check, nothing
 * learned).  The allow list and the loopback rule do not apply there: a
 * browser behind a NAT checks from an address nobody can list.
 *
 * Pure functions but ice_filter_attach(); the agent (ice.c) applies them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <linux/filter.h>
#include <sys/socket.h>

#include "config/netlist.h"

typedef struct {
  unsigned candidates_max;      /* 0: no limit */
  bool loopback;                /* loopback candidates allowed */
  const config_network *allow;  /* n_allow == 0: any network */
  size_t n_allow;
  const config_network *deny;
  size_t n_deny;
} ice_filter;

typedef enum {
  ICE_FILTER_ACCEPT = 0,
  ICE_FILTER_FORBIDDEN,   /* netlist_is_forbidden() */
  ICE_FILTER_LOOPBACK,    /* loopback, not allowed */
  ICE_FILTER_NOT_ALLOWED, /* outside the allow list */
  ICE_FILTER_DENIED,      /* in the deny list */
  ICE_FILTER_OVER_LIMIT,  /* candidates_max reached */
  ICE_FILTER_MDNS,        /* a .local name: rtcsipd does not resolve mDNS */
  ICE_FILTER_TCP,         /* rtcsipd does ICE over UDP only */
  ICE_FILTER_UNUSABLE,    /* unparsable, or of another component (RTCP without rtcp-mux) */
  ICE_FILTER_N_REASONS
} ice_filter_reason;

/* "denied network", "over the limit", ...: the words of the log line */
const char *ice_filter_reason_name(ice_filter_reason r);

/* The address rules alone (no limit).  F NULL: only forbidden addresses are
 * refused. */
ice_filter_reason ice_filter_address(const ice_filter *f, const struct sockaddr *a);
static inline bool ice_candidate_allowed(const ice_filter *f, const struct sockaddr *a)
{
  return ice_filter_address(f, a) == ICE_FILTER_ACCEPT;
}

/* The address rules, then the limit: *ACCEPTED counts the candidates
 * accepted so far for this agent, and is incremented when A is accepted. */
ice_filter_reason ice_filter_admit(const ice_filter *f, unsigned *accepted, const struct sockaddr *a);

/* Why a candidate line ("candidate:F C TRANSPORT PRIO ADDRESS PORT typ ...",
 * with or without "a=") that libnice could not parse is not used: its
 * address is an mDNS name, its transport TCP, or anything else. */
ice_filter_reason ice_filter_unparsed(const char *line);

/* A peer-reflexive source (the address a check came from): false when
 * forbidden or denied. */
bool ice_filter_source_allowed(const ice_filter *f, const struct sockaddr *a);

/* What one ice_agent_set_remote() made of the browser's candidates. */
typedef struct {
  unsigned total;
  unsigned ignored[ICE_FILTER_N_REASONS]; /* [ICE_FILTER_ACCEPT]: unused */
} ice_filter_tally;

/* "3 of 12 remote candidates ignored (2 denied network, 1 over the limit)"
 * into BUF.  Returns the number of candidates ignored (nothing written when 0). */
unsigned ice_filter_summary(const ice_filter_tally *t, char *buf, size_t size);

/* The largest program: 55 instructions + at most 13 per deny network (the
 * configuration holds at most 64). */
#define ICE_FILTER_MAX_NETWORKS 64
#define ICE_FILTER_MAX_INSNS (64 + 13 * ICE_FILTER_MAX_NETWORKS)

/* The socket filter of the agent's UDP sockets: drops STUN Binding requests
 * whose IP source is forbidden or in F's deny list, passes every other
 * packet.  Writes it into OUT (CAP instructions); returns its length or
 * -E2BIG. */
int ice_filter_program(const ice_filter *f, struct sock_filter *out, size_t cap);

/* Attaches that program to the UDP socket FD.  0 or -errno. */
int ice_filter_attach(const ice_filter *f, int fd);
