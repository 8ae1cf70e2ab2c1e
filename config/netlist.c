/* Networks and address tests.  See netlist.h. */
#include "config/netlist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int netlist_parse_address(const char *text, struct sockaddr_storage *ss)
{
  memset(ss, 0, sizeof *ss);
  if (!text)
    return -EINVAL;
  struct sockaddr_in *in = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    return 0;
  }
  if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    return 0;
  }
  return -EINVAL;
}

/* The address bytes of SA and their family; an IPv4-mapped IPv6 address is
 * taken as IPv4.  NULL for other families. */
static const uint8_t *address_bytes(const struct sockaddr *sa, int *family)
{
  if (!sa)
    return NULL;
  if (sa->sa_family == AF_INET) {
    *family = AF_INET;
    return (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
  }
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a)) {
      *family = AF_INET;
      return a->s6_addr + 12;
    }
    *family = AF_INET6;
    return a->s6_addr;
  }
  return NULL;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
  unsigned full = prefix / 8, rest = prefix % 8;

  if (memcmp(a, b, full) != 0)
    return false;
  if (rest) {
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
  }
  return true;
}

int netlist_parse(const char *s, config_network *out)
{
  char text[64];
  const char *slash;
  struct sockaddr_storage ss;
  const uint8_t *bytes;
  unsigned max, prefix;
  int family = 0;

  memset(out, 0, sizeof *out);
  if (!s || strlen(s) >= sizeof text)
    return -EINVAL;
  slash = strchr(s, '/');
  memcpy(text, s, slash ? (size_t)(slash - s) : strlen(s));
  text[slash ? (size_t)(slash - s) : strlen(s)] = '\0';
  if (netlist_parse_address(text, &ss) < 0)
    return -EINVAL;
  /* a mapped IPv6 literal (::ffff:10.0.0.1) is the IPv4 network it names */
  bytes = address_bytes((struct sockaddr *)&ss, &family);
  max = family == AF_INET ? 32 : 128;
  prefix = max;
  if (slash) {
    char *end = NULL;
    unsigned long n;
    if (!slash[1] || slash[1] < '0' || slash[1] > '9')
      return -EINVAL;
    n = strtoul(slash + 1, &end, 10);
    if (*end || n > max)
      return -EINVAL;
    prefix = (unsigned)n;
  }
  out->family = family;
  out->prefix = prefix;
  memcpy(out->addr, bytes, max / 8);
  /* host bits must be zero */
  for (unsigned bit = prefix; bit < max; bit++)
    if (out->addr[bit / 8] & (0x80 >> (bit % 8)))
      return -EINVAL;
  return 0;
}

const char *netlist_format(const config_network *n, char *buf, size_t size)
{
  char a[INET6_ADDRSTRLEN] = "?";

  inet_ntop(n->family, n->addr, a, sizeof a);
  snprintf(buf, size, "%s/%u", a, n->prefix);
  return buf;
}

bool netlist_contains(const config_network *n, const struct sockaddr *sa)
{
  int family = 0;
  const uint8_t *bytes = address_bytes(sa, &family);

  return bytes && family == n->family && prefix_equal(bytes, n->addr, n->prefix);
}

bool netlist_match(const config_network *list, size_t n, const struct sockaddr *sa)
{
  for (size_t i = 0; i < n; i++)
    if (netlist_contains(&list[i], sa))
      return true;
  return false;
}

bool netlist_is_loopback(const struct sockaddr *sa)
{
  int family = 0;
  const uint8_t *b = address_bytes(sa, &family);

  if (!b)
    return false;
  if (family == AF_INET)
    return b[0] == 127;
  return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)b);
}

bool netlist_is_forbidden(const struct sockaddr *sa)
{
  int family = 0;
  const uint8_t *b = address_bytes(sa, &family);

  if (!b)
    return true;
  if (family == AF_INET) {
    if (b[0] == 0)                                  /* 0.0.0.0/8, unspecified */
      return true;
    if (b[0] >= 224 && b[0] <= 239)                 /* multicast */
      return true;
    if (b[0] >= 240)                                /* reserved, and the broadcast */
      return true;
    if (b[0] == 169 && b[1] == 254)                 /* link-local */
      return true;
    return false;
  }
  const struct in6_addr *a = (const struct in6_addr *)b;
  return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_MULTICAST(a) || IN6_IS_ADDR_LINKLOCAL(a);
}
