/* The call state machine: one table of (state, event) -> (actions, next state).
 *
 * A call joins a browser dialog and a PBX dialog.  Every input from either side
 * (a request, a response, a timeout, the WebSocket closing, ICE or DTLS failing,
 * media silence, the daemon stopping) is an event; what rtcsipd does about it
 * is the row's action set, carried out by the call object (gateway/call.c) in
 * the order the action bits are listed below.  Nothing here does I/O: the table
 * is tested as a table in tests/unit/test_call_fsm.c.
 *
 * Rules the table keeps (and the test checks): from every state, an event
 * that ends the call reaches CALL_ENDED after at most the completions it waits
 * for (the PBX's answer to a CANCEL, the answers to the BYEs), with both sides
 * told (a final response, a CANCEL or a BYE) and RELEASE done exactly once.
 * New features add rows, not branches in callbacks.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  CALL_IDLE,                /* made, nothing sent yet */
  /* a browser calls the PBX */
  CALL_TO_PBX_TRYING,       /* INVITE sent to the PBX, no answer yet */
  CALL_TO_PBX_EARLY,        /* a provisional answer (maybe early media) relayed */
  CALL_TO_PBX_CANCELLING,   /* the browser gave up: CANCEL sent to the PBX */
  /* the PBX calls a browser */
  CALL_TO_BROWSER_TRYING,   /* INVITE (WebRTC offer) sent over the WebSocket */
  CALL_TO_BROWSER_EARLY,    /* the browser rings (180 relayed) */
  CALL_TO_BROWSER_CANCELLING, /* the PBX gave up or no answer: CANCEL sent to the browser */
  /* both */
  CALL_CONFIRMED,           /* answered on both sides */
  /* in the call: a new offer (re-INVITE, UPDATE) crossing to the other side */
  CALL_REOFFER_TO_PBX,      /* the browser's offer relayed to the PBX, waiting for its answer */
  CALL_REOFFER_TO_BROWSER,  /* the PBX's offer relayed to the browser, waiting for its answer */
  CALL_ENDING,              /* BYE sent to one or both sides, waiting for the answers */
  CALL_ENDED,               /* all done; the call object is released */
  CALL_N_STATES
} call_state;

typedef enum {
  CALL_EV_BROWSER_INVITE,   /* a new call from a browser (starts the call) */
  CALL_EV_PBX_INVITE,       /* a new call from the PBX to a registered browser */
  CALL_EV_PBX_PROVISIONAL,  /* 180 (or 183 without SDP) */
  CALL_EV_PBX_EARLY_MEDIA,  /* 183 with SDP */
  CALL_EV_PBX_ANSWER,       /* 2xx to our INVITE */
  CALL_EV_PBX_REJECT,       /* 3xx-6xx to our INVITE */
  CALL_EV_PBX_TIMEOUT,      /* our INVITE got no final answer (or a transport error) */
  CALL_EV_PBX_CANCEL,       /* the PBX cancels its INVITE */
  CALL_EV_PBX_BYE,
  CALL_EV_BROWSER_PROVISIONAL,
  CALL_EV_BROWSER_ANSWER,
  CALL_EV_BROWSER_REJECT,
  CALL_EV_BROWSER_TIMEOUT,  /* the browser did not answer in time */
  CALL_EV_BROWSER_CANCEL,
  CALL_EV_BROWSER_BYE,
  CALL_EV_WS_CLOSED,        /* the browser's WebSocket is gone */
  CALL_EV_MEDIA_FAILED,     /* ICE failed, DTLS failed, or the peer's fingerprint is wrong */
  CALL_EV_MEDIA_TIMEOUT,    /* no packet from either side for the configured time */
  CALL_EV_SHUTDOWN,         /* the daemon stops */
  CALL_EV_BYES_DONE,        /* every BYE sent was answered or timed out */
  /* offers in the call (re-INVITE, UPDATE): hold, resume, refreshes, ICE restart */
  CALL_EV_BROWSER_REOFFER,  /* the browser's offer changes what the PBX gets (direction, codecs) */
  CALL_EV_BROWSER_REFRESH,  /* the browser's offer changes nothing for the PBX (refresh, ICE restart) */
  CALL_EV_PBX_REOFFER,      /* the PBX's offer changes what the browser gets (hold, resume) */
  CALL_EV_PBX_REFRESH,      /* the PBX's offer changes nothing for the browser (its address, a refresh) */
  CALL_EV_PBX_REOFFER_ANSWER,     /* 2xx to rtcsipd's offer to the PBX */
  CALL_EV_PBX_REOFFER_REJECT,     /* an error (or no answer) to it */
  CALL_EV_BROWSER_REOFFER_ANSWER, /* 2xx to rtcsipd's offer to the browser */
  CALL_EV_BROWSER_REOFFER_REJECT,
  CALL_EV_SESSION_EXPIRED,  /* the session timer with the PBX ran out, or a refresh failed */
  /* in the call, no offer: DTMF (SIP INFO or RFC 4733) and transfer (REFER, its NOTIFYs) */
  CALL_EV_BROWSER_DTMF,
  CALL_EV_PBX_DTMF,
  CALL_EV_BROWSER_TRANSFER, /* a REFER, or a NOTIFY about one, from the browser */
  CALL_EV_PBX_TRANSFER,     /* ... from the PBX */
  CALL_N_EVENTS
} call_event;

/* What to do, as bits; carried out in this order. */
enum {
  CALL_ACT_INVITE_PBX         = 1u << 0,  /* send the plain offer to the PBX */
  CALL_ACT_INVITE_BROWSER     = 1u << 1,  /* send the WebRTC offer to the browser */
  CALL_ACT_PROVISIONAL_TO_BROWSER = 1u << 2, /* relay 180/183 (with the WebRTC answer for early media) */
  CALL_ACT_PROVISIONAL_TO_PBX = 1u << 3,
  CALL_ACT_ACK_PBX            = 1u << 4,  /* ACK a 2xx from the PBX */
  CALL_ACT_ACK_BROWSER        = 1u << 5,
  CALL_ACT_ANSWER_BROWSER     = 1u << 6,  /* 200 with the WebRTC answer */
  CALL_ACT_ANSWER_PBX         = 1u << 7,  /* 200 with the plain answer */
  CALL_ACT_REJECT_BROWSER     = 1u << 8,  /* final error to the browser's INVITE (row status or relayed) */
  CALL_ACT_REJECT_PBX         = 1u << 9,  /* final error to the PBX's INVITE */
  CALL_ACT_CANCEL_PBX         = 1u << 10,
  CALL_ACT_CANCEL_BROWSER     = 1u << 11,
  CALL_ACT_BYE_PBX            = 1u << 12,
  CALL_ACT_BYE_BROWSER        = 1u << 13,
  CALL_ACT_START_MEDIA        = 1u << 14, /* the media legs run (ICE/DTLS toward the browser, RTP toward the PBX) */
  CALL_ACT_RELEASE            = 1u << 15, /* free ports, agents, SRTP sessions, timers; log the summary */
  /* offers in the call; never in a row with RELEASE */
  CALL_ACT_UPDATE_MEDIA       = 1u << 16, /* apply the new SDPs: directions (hold), addresses, payload types, ICE restart */
  CALL_ACT_REOFFER_PBX        = 1u << 17, /* send the browser's new offer, translated, to the PBX */
  CALL_ACT_REOFFER_BROWSER    = 1u << 18, /* send the PBX's new offer, translated, to the browser */
  CALL_ACT_ANSWER_REOFFER_BROWSER = 1u << 19, /* 200 with SDP to the browser's offer */
  CALL_ACT_ANSWER_REOFFER_PBX = 1u << 20, /* 200 with SDP to the PBX's offer */
  CALL_ACT_REJECT_REOFFER_BROWSER = 1u << 21, /* an error to the browser's offer (row status or relayed) */
  CALL_ACT_REJECT_REOFFER_PBX = 1u << 22, /* an error to the PBX's offer (491 in glare, or relayed) */
  CALL_ACT_DTMF_TO_PBX        = 1u << 23, /* the digit, as [media] dtmf_to_pbx says (RFC 4733 or INFO) */
  CALL_ACT_DTMF_TO_BROWSER    = 1u << 24,
  CALL_ACT_RELAY_TO_PBX       = 1u << 25, /* the browser's REFER/NOTIFY, in the PBX's dialog */
  CALL_ACT_RELAY_TO_BROWSER   = 1u << 26,
};

typedef struct {
  call_state state;
  call_event event;
  call_state next;
  uint32_t actions;
  /* the status of a final response made here (REJECT_*); 0: relay the
   * status of the event (the other side's final response) */
  uint16_t status;
} call_transition;

/* The row for EVENT in STATE.  An event the state does not expect gets a row
 * that keeps the state and does nothing (IGNORED is then true): a late or
 * stray message, answered by the SIP layer as RFC 3261 says. */
call_transition call_fsm_step(call_state state, call_event event, bool *ignored);

const char *call_state_name(call_state s);
const char *call_event_name(call_event e);
/* "ACK_PBX|ANSWER_BROWSER" into BUF; returns BUF */
const char *call_actions_format(uint32_t actions, char *buf, size_t size);

/* The whole table, for tests and documentation. */
const call_transition *call_fsm_table(unsigned *n_rows);
