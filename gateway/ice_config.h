/* The ICE settings of rtcsipd's browser-side agents, from the configuration:
 * host addresses ([media] ice_addresses), the port range, the first STUN
 * server and the first TURN server (numeric host only: libnice does not
 * resolve TURN names), and which remote candidates get checks
 * ([media] ice_candidates_max, ice_loopback, ice_allow, ice_deny).  A copy,
 * so that a reload (SIGHUP) may free the configuration while calls made
 * before it go on.
 */
#pragma once

#include <stdint.h>

#include "config/config.h"
#include "webrtc/ice.h"

typedef struct {
  char **addresses;          /* NULL: all interfaces */
  uint16_t port_min, port_max;
  char *stun_host;           /* NULL: none */
  uint16_t stun_port;
  char *turn_host;           /* NULL: none */
  uint16_t turn_port;
  char *turn_username, *turn_password;
  ice_turn_transport turn_transport;
  ice_filter filter;         /* its networks owned here */
} ice_config;

void ice_config_init(ice_config *ic, const config *cfg);
void ice_config_clear(ice_config *ic);
/* Fills the address, port, STUN, TURN and filter fields of S with pointers
 * into IC (which must outlive the agent's creation). */
void ice_config_apply(const ice_config *ic, ice_settings *s);
