/* Which addresses the ICE agent checks.  See ice_filter.h.
 *
 * The socket filter sees a UDP datagram from its UDP header on (the payload
 * at offset 8) and the IP header through SKF_NET_OFF, whichever the socket's
 * family (an IPv6 socket that takes IPv4 packets sees an IPv4 header).  A
 * STUN Binding request starts with the type 0x0001 (RFC 8489: the two top
 * bits zero, method 1, class request); every other packet passes untouched,
 * so responses and TURN traffic from a denied STUN/TURN server still arrive,
 * and media costs two instructions.
 */
#include "webrtc/ice_filter.h"

#include "config/netlist_bpf.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <glib.h>

const char *ice_filter_reason_name(ice_filter_reason r)
{
  switch (r) {
  case ICE_FILTER_ACCEPT: return "accepted";
  case ICE_FILTER_FORBIDDEN: return "forbidden address";
  case ICE_FILTER_LOOPBACK: return "loopback";
  case ICE_FILTER_NOT_ALLOWED: return "outside ice_allow";
  case ICE_FILTER_DENIED: return "denied network";
  case ICE_FILTER_OVER_LIMIT: return "over the limit";
  case ICE_FILTER_MDNS: return "mDNS name";
  case ICE_FILTER_TCP: return "TCP";
  case ICE_FILTER_UNUSABLE: return "unusable";
  case ICE_FILTER_N_REASONS: break;
  }
  return "?";
}

ice_filter_reason ice_filter_address(const ice_filter *f, const struct sockaddr *a)
{
  if (netlist_is_forbidden(a)) /* also: no address, another family */
    return ICE_FILTER_FORBIDDEN;
  if (!f)
    return ICE_FILTER_ACCEPT;
  if (!f->loopback && netlist_is_loopback(a))
    return ICE_FILTER_LOOPBACK;
  if (netlist_match(f->deny, f->n_deny, a))
    return ICE_FILTER_DENIED;
  if (f->n_allow && !netlist_match(f->allow, f->n_allow, a))
    return ICE_FILTER_NOT_ALLOWED;
  return ICE_FILTER_ACCEPT;
}

ice_filter_reason ice_filter_admit(const ice_filter *f, unsigned *accepted, const struct sockaddr *a)
{
  ice_filter_reason r = ice_filter_address(f, a);

  if (r != ICE_FILTER_ACCEPT)
    return r;
  if (f && f->candidates_max && *accepted >= f->candidates_max)
    return ICE_FILTER_OVER_LIMIT;
  (*accepted)++;
  return ICE_FILTER_ACCEPT;
}

ice_filter_reason ice_filter_unparsed(const char *line)
{
  char transport[16], address[256];
  size_t n;

  if (!line)
    return ICE_FILTER_UNUSABLE;
  if (strncmp(line, "a=", 2) == 0)
    line += 2;
  /* candidate:FOUNDATION COMPONENT TRANSPORT PRIORITY ADDRESS PORT typ ... */
  if (sscanf(line, "candidate:%*s %*s %15s %*s %255s", transport, address) != 2)
    return ICE_FILTER_UNUSABLE;
  n = strlen(address);
  if (n > 6 && strcasecmp(address + n - 6, ".local") == 0)
    return ICE_FILTER_MDNS;
  if (strcasecmp(transport, "tcp") == 0)
    return ICE_FILTER_TCP;
  return ICE_FILTER_UNUSABLE;
}

bool ice_filter_source_allowed(const ice_filter *f, const struct sockaddr *a)
{
  if (netlist_is_forbidden(a))
    return false;
  return !f || !netlist_match(f->deny, f->n_deny, a);
}

unsigned ice_filter_summary(const ice_filter_tally *t, char *buf, size_t size)
{
  unsigned ignored = 0;
  size_t len;

  for (int r = ICE_FILTER_ACCEPT + 1; r < ICE_FILTER_N_REASONS; r++)
    ignored += t->ignored[r];
  if (!ignored || !size)
    return ignored;
  len = (size_t)snprintf(buf, size, "%u of %u remote candidate%s ignored (", ignored, t->total,
                         t->total == 1 ? "" : "s");
  for (int r = ICE_FILTER_ACCEPT + 1; r < ICE_FILTER_N_REASONS && len < size; r++) {
    if (!t->ignored[r])
      continue;
    len += (size_t)snprintf(buf + len, size - len, "%s%u %s", buf[len - 1] == '(' ? "" : ", ",
                            t->ignored[r], ice_filter_reason_name((ice_filter_reason)r));
  }
  if (len < size)
    snprintf(buf + len, size - len, ")");
  return ignored;
}

/* ---- the socket filter ---- */

#define ACCEPT 0xffffffffu /* the whole datagram */
#define STUN_BINDING_REQUEST 0x0001

#define STMT(code, k) ((struct sock_filter)BPF_STMT((code), (k)))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP((code), (k), (jt), (jf)))

static void drop_text(netlist_bpf *p, const char *text)
{
  config_network n;

  if (netlist_parse(text, &n) == 0)
    netlist_bpf_source_in(p, &n, 0);
}

static void build(const ice_filter *f, netlist_bpf *p)
{
  /* what netlist_is_forbidden() refuses, as networks; and an IPv4-mapped
   * source in an IPv6 header, which no real sender uses */
  static const char *const forbidden_v4[] = { "0.0.0.0/8", "224.0.0.0/3", "169.254.0.0/16" };
  static const char *const forbidden_v6[] = { "::/128", "ff00::/8", "fe80::/10" };
  static const config_network mapped = {
    .family = AF_INET6, .addr = { [10] = 0xff, [11] = 0xff }, .prefix = 96,
  };

  /* shorter than a UDP header and a STUN header: passes (and the loads
   * below stay inside the datagram) */
  netlist_bpf_emit(p, STMT(BPF_LD | BPF_W | BPF_LEN, 0));
  netlist_bpf_emit(p, JUMP(BPF_JMP | BPF_JGE | BPF_K, 8 + 20, 1, 0));
  netlist_bpf_ret(p, ACCEPT);
  /* the first 16 bits of the UDP payload: anything but a Binding request passes */
  netlist_bpf_emit(p, STMT(BPF_LD | BPF_H | BPF_ABS, 8));
  netlist_bpf_emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, STUN_BINDING_REQUEST, 1, 0));
  netlist_bpf_ret(p, ACCEPT);
  netlist_bpf_split(p);
  for (size_t i = 0; i < G_N_ELEMENTS(forbidden_v4); i++)
    drop_text(p, forbidden_v4[i]);
  for (size_t i = 0; f && i < f->n_deny; i++)
    if (f->deny[i].family == AF_INET)
      netlist_bpf_source_in(p, &f->deny[i], 0);
  netlist_bpf_ret(p, ACCEPT);
  netlist_bpf_ipv6(p);
  for (size_t i = 0; i < G_N_ELEMENTS(forbidden_v6); i++)
    drop_text(p, forbidden_v6[i]);
  netlist_bpf_source_in(p, &mapped, 0);
  for (size_t i = 0; f && i < f->n_deny; i++)
    if (f->deny[i].family == AF_INET6)
      netlist_bpf_source_in(p, &f->deny[i], 0);
  netlist_bpf_ret(p, ACCEPT);
}

int ice_filter_program(const ice_filter *f, struct sock_filter *out, size_t cap)
{
  netlist_bpf p;

  netlist_bpf_init(&p, out, cap);
  build(f, &p);
  return p.overflow ? -E2BIG : (int)p.len;
}

int ice_filter_attach(const ice_filter *f, int fd)
{
  struct sock_filter insns[ICE_FILTER_MAX_INSNS];
  netlist_bpf p;

  netlist_bpf_init(&p, insns, sizeof insns / sizeof insns[0]);
  build(f, &p);
  return netlist_bpf_attach(&p, fd);
}
