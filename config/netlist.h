/* Networks: "192.0.2.0/24", "2001:db8::/32" or a single address, and the
 * tests on addresses that the trust rules need (is this sender the PBX, may
 * rtcsipd send ICE checks there).  Pure functions, no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
  int family;       /* AF_INET or AF_INET6 */
  uint8_t addr[16]; /* network bytes; 4 used for AF_INET, host bits cleared */
  unsigned prefix;  /* 0..32 or 0..128 */
} config_network;

/* Parses "ADDRESS[/PREFIX]" into *out.  0, or -EINVAL (host bits set are
 * refused: "10.0.0.1/8" is most likely a typing error). */
int netlist_parse(const char *s, config_network *out);

/* "10.0.0.0/8" into BUF (at least 64 bytes). */
const char *netlist_format(const config_network *n, char *buf, size_t size);

/* true when the address SA (AF_INET, AF_INET6, or an IPv4-mapped IPv6
 * address, which is taken as the IPv4 address) lies in N. */
bool netlist_contains(const config_network *n, const struct sockaddr *sa);
/* true when SA lies in one of the N networks of LIST */
bool netlist_match(const config_network *list, size_t n, const struct sockaddr *sa);

/* Addresses no ICE check and no media may go to, whatever the configuration:
 * unspecified (0.0.0.0, ::), multicast, 240.0.0.0/4 (reserved, with the
 * limited broadcast 255.255.255.255), 0.0.0.0/8, IPv4 and IPv6 link-local (169.254/16,
 * fe80::/10).  Loopback is reported apart: netlist_is_loopback(). */
bool netlist_is_forbidden(const struct sockaddr *sa);
bool netlist_is_loopback(const struct sockaddr *sa);

/* Parses the textual address TEXT (IPv4 or IPv6 literal, no port) into *ss.
 * 0, or -EINVAL. */
int netlist_parse_address(const char *text, struct sockaddr_storage *ss);
