/* ICE toward the browser: one libnice agent per call, full ICE (RFC 8445,
 * libnice's RFC 5245 mode), one stream with one UDP component (rtcp-mux and
 * BUNDLE always: all media on one 5-tuple), no trickle: candidates are
 * gathered before the SDP goes out.
 *
 * ice.c owns the agent, its sockets and its timers; it knows nothing about
 * SDP beyond the candidate lines, nor about DTLS or SRTP, which ride on top
 * through on_receive / ice_agent_send.
 *
 * Threading: everything runs on settings.context (NULL: the default
 * context); call the functions only from that context's thread.  Callbacks
 * never run from inside an ice_agent_* call, only from the main loop.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "webrtc/ice_filter.h"

typedef struct ice_agent ice_agent;

typedef enum {
  ICE_NEW,        /* created, not gathering yet */
  ICE_GATHERING,
  ICE_CHECKING,   /* remote candidates set, connectivity checks running */
  ICE_CONNECTED,  /* a pair works: media may flow */
  ICE_FAILED,     /* terminal: no pair, consent lost, or the connect timeout */
} ice_state;

typedef enum {
  ICE_TURN_NONE,
  ICE_TURN_UDP,
  ICE_TURN_TCP,
} ice_turn_transport;

typedef struct {
  bool controlling;                     /* offerer: true; answerer: false */
  const char *const *local_addresses;   /* numeric IPs; NULL: all interfaces */
  uint16_t port_min, port_max;          /* 0, 0: any port */
  /* NULL host: none.  STUN: a name or an address (libnice 0.1.21 resolves
   * names itself, asynchronously, per agent: an address saves that lookup).
   * TURN: a numeric address only (libnice takes a name without an error and
   * then never contacts the server). */
  const char *stun_host;
  uint16_t stun_port;                   /* 0: 3478 */
  const char *turn_host;
  uint16_t turn_port;                   /* 0: 3478 */
  const char *turn_username, *turn_password;
  ice_turn_transport turn_transport;
  /* ICE_FAILED if not connected this long after ice_agent_set_remote(); 0: 10 s */
  unsigned connect_timeout_ms;
  GMainContext *context;                /* NULL: the default context */
  const char *log_id;                   /* "call-7" in log lines; may be NULL */
  /* Which of the peer's candidates get checks, and which peer-reflexive
   * sources are answered (ice_filter.h); copied.  NULL: only forbidden
   * addresses are refused. */
  const ice_filter *filter;
} ice_settings;

typedef struct {
  /* Local candidates are complete; ice_agent_local_candidates() has them. */
  void (*on_gathered)(void *user);
  /* The state, when it changed since the last call (a state that lasted less
   * than a main-loop iteration may be skipped).  ICE_FAILED is final: nothing
   * follows it but an ice_agent_restart(). */
  void (*on_state)(void *user, ice_state state);
  /* Required.  Media hot path: one datagram (not STUN) from a peer address
   * that passed a connectivity check (libnice drops the others), possibly
   * before on_state(ICE_CONNECTED) has been delivered.  DATA is libnice's
   * receive buffer: valid during the call only, may be modified in place. */
  void (*on_receive)(void *user, uint8_t *data, size_t len);
  /* Optional: a pair is selected (the first, or another one: after a
   * restart, a renomination), and the agent is connected. */
  void (*on_selected)(void *user);
} ice_callbacks;

/* 0, or -EINVAL for bad settings (a local or TURN address that is not a
 * numeric IP, TURN without credentials, an inverted port range), -ENOMEM if
 * libnice refuses the stream. */
int ice_agent_new(const ice_settings *settings, const ice_callbacks *callbacks,
                  void *user, ice_agent **ret);

/* Frees AGENT, its sockets and sources; no callback comes after it returns.
 * Safe to call from inside any of AGENT's callbacks (the libnice object is
 * then released from an idle source on the context).  NULL is a no-op. */
void ice_agent_free(ice_agent *agent);

/* Starts gathering; on_gathered follows from the main loop (host candidates
 * only: at once; a STUN/TURN server that does not answer delays it by about
 * 2 s).  The agent's UDP sockets get the filter's socket filter (STUN
 * Binding requests from forbidden or denied sources dropped).  0, or -EIO
 * when no socket could be bound (the port range is used up). */
int ice_agent_gather(ice_agent *agent);

/* Borrowed; valid until ice_agent_restart() or ice_agent_free(). */
void ice_agent_local_credentials(ice_agent *agent, const char **ufrag, const char **pwd);

/* The local candidates as SDP attribute values without "a=":
 * "candidate:1 1 UDP 2015363327 127.0.0.1 40000 typ host".  NULL-terminated,
 * free with g_strfreev(); complete once on_gathered has come. */
char **ice_agent_local_candidates(ice_agent *agent);
/* The address and port of the first of CANDS (as ice_agent_local_candidates
 * gives them): c= and m= of rtcsipd's WebRTC SDP.  0, -ENOENT. */
int ice_default_candidate(char **cands, char *address, size_t size, uint16_t *port);

/* The peer's ICE credentials and its candidates ("candidate:..." values of
 * the a=candidate lines, with or without "a=").  Only those the filter
 * accepts are handed to libnice; candidates libnice cannot use (mDNS .local
 * names, TCP, component 2) are skipped too.  What was ignored, and why, is
 * one log line per call of this function.  With none left the agent still
 * learns peer-reflexive candidates from the peer's checks.  Starts the
 * checks and the connect timeout.  0, -EINVAL (missing credentials), -EIO. */
int ice_agent_set_remote(ice_agent *agent, const char *ufrag, const char *pwd,
                         const char *const *candidates);

/* ICE restart: new local credentials; set the peer's new ones with
 * ice_agent_set_remote().  Candidates stay as gathered.  CONTROLLING: our
 * role in the new session, whatever it was in the old one: the offerer of
 * the restart controls it (RFC 8445 §6.1.1; Chromium takes the controlling
 * role when it offers a restart, the controlled one when it answers one).
 * 0, -EIO. */
int ice_agent_restart(ice_agent *agent, bool controlling);

/* Media hot path: sends one datagram on the selected pair.  0; -ENOTCONN
 * before the agent is connected or after it failed; -EMSGSIZE; -EAGAIN if it
 * was not sent (socket full, or an error): drop it. */
int ice_agent_send(ice_agent *agent, const uint8_t *data, size_t len);

/* The same from any thread (a media worker): libnice serialises it with the
 * agent's own lock.  0, -EMSGSIZE, -EAGAIN (not sent: no selected pair yet,
 * socket full).  AGENT must stay alive meanwhile (the caller's business). */
int ice_agent_send_mt(ice_agent *agent, const uint8_t *data, size_t len);

/* The selected pair as a UDP socket of the caller's own, for a media worker
 * that waits on it with epoll and reads it in batches instead of libnice:
 * bound to the pair's local address and port beside libnice's socket
 * (SO_REUSEADDR on both) and connected to the browser's address, so that the
 * kernel hands every datagram from the browser to it and the rest (checks
 * from other candidates) to libnice.  The browser's STUN checks then reach
 * the caller only: it answers them (stun_responder.h) with UFRAG/PWD, our
 * credentials, copied out here.  libnice keeps sending its keepalives
 * (indications; no consent of its own, which would wait for answers that
 * never reach it).  Close the socket before an ICE restart, and open it
 * again once connected.  Non-blocking, close-on-exec; the caller owns it.
 * Returns the socket, -ENOTCONN (no selected pair), -ENOTSUP (a relayed or
 * TCP pair: libnice has to carry it), or a negative errno. */
int ice_agent_fastpath_open(ice_agent *agent, char **ufrag, char **pwd);

ice_state ice_agent_state(const ice_agent *agent);
const char *ice_state_to_string(ice_state state);
