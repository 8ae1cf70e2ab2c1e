/* The inside of a call, shared by gateway/call.c (setting a call up,
 * ending it, the state machine's driver) and gateway/call_midcall.c (what
 * happens in the middle of it: offers both ways, refreshes, DTMF).  Nothing
 * else includes this.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <sofia-sip/msg.h>

#include "gateway/browser_dialog.h"
#include "gateway/call.h"
#include "gateway/call_fsm.h"
#include "gateway/ice_config.h"
#include "gateway/call_media.h"
#include "gateway/media_bridge.h"
#include "gateway/media_engine.h"
#include "sip/pbx_dialog.h"
#include "sip/sdp_translate.h"
#include "webrtc/browser_leg.h"
#include "webrtc/rtp_socket.h"

#define MAX_QUEUED 8

typedef struct {
  call_event event;
  int status;
  char phrase[64];
} queued_event;

struct call {
  char name[32];
  ws_edge *edge;
  pbx_link *pbx;
  const dtls_identity *id;
  media_engine *engine;
  call_callbacks cb;
  void *user;

  /* from the configuration, at creation */
  char *advertised;
  char *rtp_address;          /* where the RTP socket binds; NULL: any */
  ice_config ice;
  unsigned media_timeout_ms, ring_timeout_s, transaction_timeout_s;
  unsigned session_expires, min_se; /* toward the PBX */
  dtmf_mode dtmf_to_pbx, dtmf_to_browser;
  rtp_source_mode rtp_source; /* whom the RTP socket takes packets from */

  bool from_browser;          /* who called */
  call_state state;
  browser_dialog *bd;
  pbx_dialog *pd;
  uint64_t flow;              /* the browser's WebSocket */
  char *contact_uri;          /* from_pbx: the browser's binding */
  char *replaces;             /* from_pbx: "Replaces: ..." for the browser's INVITE, or NULL */
  call *(*find_by_browser_dialog)(void *user, const char *call_id, const char *tag_a,
                                  const char *tag_b);
  void *find_user;

  sdp_webrtc *browser_sdp;    /* the browser's offer (from_browser) or answer */
  sdp_plain *pbx_sdp;         /* the PBX's answer / early SDP, or its offer */
  char *plain_offer;          /* from_browser: rtcsipd's offer to the PBX */
  uint64_t sdp_session_id;

  browser_leg *leg;
  rtp_socket *rtp;
  call_media *media;          /* the bridge on its media worker, once media started */
  bool gathered;
  bool media_wanted;          /* START_MEDIA ran before the browser's leg existed */
  guint leg_idle;             /* the browser's leg is made from here (on_leg_idle) */
  bool remote_ice_set;
  uint32_t deferred;          /* actions waiting for the candidates */
  int early_status;           /* the 183 that waits with them */
  char early_phrase[64];

  /* the event being handled: a status (and phrase) to relay, and the
   * message it came in (borrowed, NULL when queued or made here) */
  int ev_status;
  char ev_phrase[64];
  msg_t *ev_msg;
  char media_why[96];

  queued_event queue[MAX_QUEUED];
  unsigned n_queued;
  bool dispatching;

  /* offers in the call (call_midcall.c): the one each side has pending
   * and the answers that come back, until UPDATE_MEDIA makes them current */
  msg_t *browser_offer_rq;      /* the browser's re-INVITE/UPDATE waiting for our answer */
  sdp_webrtc *browser_offer_sdp; /* its SDP */
  sdp_webrtc *browser_answer_sdp; /* the browser's answer to rtcsipd's re-INVITE */
  pbx_dialog_rq *pbx_offer_rq;  /* the PBX's offer waiting for our answer */
  sdp_plain *pbx_offer_sdp;     /* its SDP */
  sdp_plain *pbx_answer_sdp;    /* the PBX's answer to rtcsipd's offer */
  bool ice_restart;             /* the browser's pending offer restarts ICE */
  char dtmf_digit;              /* of a DTMF event */
  unsigned dtmf_duration;       /* ms, 0: not given */
  msg_t *ev_transfer;           /* the REFER/NOTIFY of a transfer event (borrowed) */
  bool ev_transfer_taken;       /* ... which an action answered or kept */
  msg_t *browser_refer_rq;      /* the browser's REFER, waiting for the PBX's answer */
  uint64_t plain_version;       /* o= version of rtcsipd's SDP toward the PBX */
  uint64_t webrtc_version;      /* ... toward the browser */

  unsigned byes_pending;
  guint timer;                /* no response from the PBX / ring / cancel guard */
  call_event timer_event;
  guint release_idle;
  guint close_grace;          /* the browser's DTLS close came: its BYE is awaited */
  char *cause;
  gint64 started_at, answered_at, ended_at; /* monotonic, us */
};


/* call.c */
/* Handles EV now, or after the event being handled (see call.c). */
void call_dispatch(call *c, call_event ev, int status, const char *phrase);
/* Like call_dispatch(), with MSG (borrowed) the response whose status is relayed. */
void call_dispatch_response(call *c, call_event ev, int status, msg_t *msg);
void call_media_failed(call *c, const char *why);
const char *call_phrase_for(int status);
bool call_has_sdp(msg_t *msg, const char **text, size_t *len);
int call_browser_respond(call *c, int status, const char *phrase, const char *sdp);
/* rtcsipd's side toward the browser; CANDS must outlive LOCAL. */
int call_webrtc_local(call *c, char **cands, char *address, size_t size, sdp_webrtc_local *local);
sdp_plain_local call_plain_local(call *c);
int call_set_remote_ice(call *c);
void call_apply_pt_map(call *c);
/* The RTP socket toward the address and ports of the PBX's current SDP, or
 * toward none (c=0.0.0.0, port 0): then nothing is sent or taken. */
void call_apply_pbx_address(call *c);

/* The callbacks of every call's browser leg and PBX dialog (call.c). */
extern const browser_leg_callbacks call_leg_callbacks;
extern const pbx_dialog_callbacks call_pbx_callbacks;

/* call_start.c */
/* The browser's leg of a call from the browser (its offer's DTLS role and
 * fingerprint), gathering started; once the PBX has taken the call.  0 or
 * a negative errno (no ICE port). */
int call_make_browser_side_leg(call *c);

/* call_midcall.c */
/* Carries out the mid-call actions of a row (the CALL_ACT_ bits from UPDATE_MEDIA on). */
void call_midcall_actions(call *c, uint32_t actions, uint16_t status);
/* An in-dialog request of the browser that is about media or DTMF (re-INVITE,
 * UPDATE, INFO): true when taken (REQUEST then belongs to the callee). */
bool call_midcall_browser_request(call *c, msg_t *request);
/* The browser's answer to rtcsipd's re-INVITE (borrowed). */
void call_midcall_browser_response(call *c, int status, msg_t *response);
/* For the PBX dialog's callbacks (sip/pbx_dialog.h). */
void call_midcall_on_offer(void *user, pbx_dialog_rq *rq, msg_t *request);
void call_midcall_on_offer_response(void *user, int status, msg_t *response);
void call_midcall_on_session_expired(void *user, const char *why);
void call_midcall_on_ack_sdp(void *user, msg_t *ack);
/* An INFO, REFER or NOTIFY from the PBX: the status to answer it with. */
int call_midcall_pbx_request(call *c, msg_t *request);
void call_midcall_on_request_response(void *user, const char *method, int status, msg_t *response);
/* For the bridge's callbacks (gateway/media_bridge.h). */
void call_midcall_on_dtmf(void *user, bool from_browser, char digit, unsigned duration_ms);
/* Media is up: DTMF settings of the bridge from the SDPs. */
void call_midcall_media_started(call *c);
/* Frees what the mid-call part holds. */
void call_midcall_clear(call *c);
