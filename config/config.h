/* Configuration: the INI file (GKeyFile), read strictly.
 *
 * Every key the daemon knows is listed in the schema in config.c and
 * documented in config/rtcsipd.conf.  An unknown group or key, a bad value or
 * a missing file is refused with "FILE:LINE: key: what is wrong"; the caller
 * prints it and exits with EX_CONFIG (78).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/netlist.h"

#define CONFIG_DEFAULT_PATH "/etc/rtcsipd/rtcsipd.conf"
#define CONFIG_EX_CONFIG 78

typedef enum {
  SIP_TRANSPORT_UDP,
  SIP_TRANSPORT_TCP,
  SIP_TRANSPORT_TLS,
} sip_transport;

const char *sip_transport_name(sip_transport t); /* "udp", "tcp", "tls" */

typedef struct {
  char *host;    /* literal address or name; "" when the listener is disabled */
  uint16_t port; /* 0 when disabled */
} config_listen;

/* How DTMF reaches one side: RFC 4733 telephone-events in the RTP stream, or
 * SIP INFO (application/dtmf-relay). */
typedef enum {
  DTMF_RFC4733,
  DTMF_INFO,
} dtmf_mode;

const char *dtmf_mode_name(dtmf_mode m);

/* Where a PBX-side media port takes RTP/RTCP from. */
typedef enum {
  RTP_SOURCE_SDP,   /* only the address and port the PBX's SDP names */
  RTP_SOURCE_LATCH, /* the first packet from a trusted address ([pbx] host
                     * and trusted), then only that address and port */
} rtp_source_mode;

const char *rtp_source_mode_name(rtp_source_mode m);

typedef struct {
  char *url;      /* "turn:host:port?transport=udp" or "stun:host:port" */
  char *username; /* TURN only; NULL for STUN */
  char *password;
} config_ice_server;

typedef struct config {
  char *path; /* the file this was read from */

  /* [general] */
  int log_level;  /* LOG_ERR..LOG_DEBUG */

  /* [websocket] */
  config_listen ws;          /* plain ws:// (tests, behind a TLS proxy) */
  config_listen wss;         /* wss:// */
  char *tls_certificate;     /* PEM file; NULL: self-signed for development */
  char *tls_private_key;     /* PEM file; NULL with the above */
  char *static_dir;          /* files served over HTTP(S) on the listeners; NULL: none */

  /* [sip] */
  config_listen sip;         /* where rtcsipd's SIP side binds, toward the PBX */
  char *advertised_address;  /* the address put in SIP (Via, Contact) and SDP */
  char **domains;            /* NULL-terminated; the SIP domains served */
  char *echo_user;           /* sip:ECHO_USER@domain is answered by rtcsipd itself
                              * (media reflected); "" disables it */
  unsigned session_expires;  /* RFC 4028 Session-Expires of INVITEs to the PBX; 0: none */
  unsigned min_se;           /* their Min-SE */

  /* [pbx] */
  char *pbx_host;
  uint16_t pbx_port;
  sip_transport pbx_transport;
  char *pbx_tls_directory;   /* Sofia-SIP TLS directory (agent.pem, cafile.pem); NULL: none */
  config_network *pbx_trusted; /* further networks whose requests reach browsers
                                * (a PBX cluster), besides pbx_host's addresses */
  size_t n_pbx_trusted;

  /* [media] */
  uint16_t rtp_port_min;
  uint16_t rtp_port_max;
  config_ice_server *stun_servers; /* n_stun_servers entries */
  size_t n_stun_servers;
  config_ice_server *turn_servers;
  size_t n_turn_servers;
  char **ice_addresses;      /* NULL-terminated IP literals for host candidates;
                              * NULL: all interfaces */
  unsigned media_workers;    /* media worker threads; 0: one per core (at start only) */
  unsigned media_timeout;    /* seconds without a packet from either side that end
                              * a call; 0: never */
  dtmf_mode dtmf_to_pbx;     /* how the browser's DTMF reaches the PBX */
  dtmf_mode dtmf_to_browser; /* how the PBX's DTMF reaches the browser */
  rtp_source_mode rtp_source; /* where PBX-side media is taken from */
  /* The browser's remote ICE candidates rtcsipd sends checks to: never
   * forbidden addresses (netlist_is_forbidden), loopback only with
   * ice_loopback, at most ice_candidates_max per call, and of the rest only
   * those in ice_allow (when set) and not in ice_deny. */
  unsigned ice_candidates_max;
  bool ice_loopback;          /* default: true when ice_addresses are all loopback */
  config_network *ice_allow;  /* n_ice_allow == 0: any */
  size_t n_ice_allow;
  config_network *ice_deny;
  size_t n_ice_deny;

  /* [limits] */
  unsigned connections_per_ip;   /* WebSocket connections from one address */
  size_t max_message_size;       /* bytes, one WebSocket message (default 65536) */
  unsigned max_registrations;    /* bindings held at once */
  unsigned max_expires;          /* seconds; longer REGISTER expiries are lowered */
  unsigned transaction_timeout;  /* seconds a request may go unanswered (to a browser,
                                  * or an INVITE to the PBX with no response at all) */
  unsigned ring_timeout;         /* seconds a call to a browser may ring unanswered */
  unsigned max_calls;            /* calls of every kind at once (then 503 + Retry-After) */
  unsigned pending_calls_per_connection; /* calls from one WebSocket not yet answered
                                          * (echo calls: for their whole life) */
  unsigned pending_calls_per_ip; /* the same, over all WebSockets of one address */
} config;

/* Reads and checks PATH.  On success returns 0 and *ret owns the result.
 * On failure returns a negative errno and *error is a g_malloc'd
 * "FILE:LINE: key: what is wrong" (LINE is 0 when the file could not be read). */
int config_load(const char *path, config **ret, char **error);
void config_free(config *c);

/* true when DOMAIN (case-insensitive) is one of c->domains */
bool config_serves_domain(const config *c, const char *domain);
