/* One browser-like client of the load generator: its own SIP-over-WebSocket
 * connection (RFC 7118, as JsSIP speaks it), optionally a REGISTER with
 * digest authentication (401/407 answered with Sofia-SIP's auth client), an
 * INVITE with a Chromium-like offer (or the answer to an INVITE from the
 * PBX), full ICE (libnice, webrtc/ice.h), DTLS-SRTP (webrtc/dtls.h), then
 * its media handed to the media threads (lg_media.h), and a BYE after the
 * hold time.  Everything here runs on the GLib main loop.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "lg_media.h"
#include "lg_report.h"
#include "lg_sdp.h"
#include "webrtc/dtls.h"

#include <libwebsockets.h>

typedef struct {
  const char *ws_host, *ws_path;
  int ws_port;
  const char *domain;
  const char *target;        /* outgoing calls: the Request-URI; NULL: wait for calls */
  const char *user_prefix;   /* client i is "<prefix><i>" (from 1) */
  const char *password;      /* digest auth; NULL: none */
  bool do_register;
  unsigned hold_ms;          /* from media ready to BYE */
  unsigned drain_ms;         /* between the last packet sent and the BYE */
  lg_codec codec;
  const char *ice_address;
  uint16_t ice_port_min, ice_port_max;
  unsigned setup_timeout_ms; /* INVITE to media ready (or REGISTER to 200) */
} lg_client_config;

typedef enum {
  LG_CLIENT_CONNECTING,
  LG_CLIENT_REGISTERING,
  LG_CLIENT_WAITING,     /* registered, waiting for an incoming call */
  LG_CLIENT_INVITING,    /* INVITE out, or an incoming one being answered */
  LG_CLIENT_CONNECTING_MEDIA, /* answered: ICE, DTLS */
  LG_CLIENT_UP,          /* media flowing */
  LG_CLIENT_DRAINING,    /* not sending, waiting for the last echoes */
  LG_CLIENT_HANGING_UP,  /* BYE sent */
  LG_CLIENT_DONE,
  LG_CLIENT_FAILED,
} lg_client_state;

/* Shared by every client. */
typedef struct {
  const lg_client_config *cfg;
  struct lws_context *lws;
  dtls_identity *dtls_id;
  lg_media *media;
  /* called on the main loop when a client reaches DONE or FAILED, or
   * becomes WAITING */
  void (*on_state)(void *user, unsigned index, lg_client_state state);
  void *user;
} lg_env;

typedef struct lg_client lg_client;

typedef struct {
  lg_client_state state;
  bool established;        /* a 200 OK came (or was sent) */
  bool media_ready;        /* SRTP keyed */
  lg_codec codec;          /* what the media is (PCMU when the far end took no Opus) */
  char *failure;           /* why it failed, when it did (g_free'd with the client) */
  int64_t setup_us;        /* INVITE sent (received) to 200 OK received (sent) */
  int64_t media_us;        /* 200 OK to SRTP keyed */
  uint64_t sent, send_failed;
  lg_stream stream;        /* what came back (valid once DONE) */
  browser_media_stats bm;  /* the media half's counters (valid once DONE) */
} lg_client_result;

/* A client with index INDEX (>= 1); it connects at once.  The callbacks of
 * ENV come from the main loop. */
lg_client *lg_client_new(const lg_env *env, unsigned index);
void lg_client_free(lg_client *c);
/* Ends the client now (the overall time is up): the call, if any, gets its
 * BYE; a call still setting up is counted as failed with REASON. */
void lg_client_abort(lg_client *c, const char *reason);
/* The client's lws protocol handler (lws_protocols.callback). */
int lg_client_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len);
const lg_client_result *lg_client_get_result(const lg_client *c);
const char *lg_client_state_name(lg_client_state s);
