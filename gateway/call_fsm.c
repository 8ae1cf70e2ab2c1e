/* The call state machine table.  See call_fsm.h. */
#include "gateway/call_fsm.h"

#include <stdio.h>
#include <string.h>

#define A(x) CALL_ACT_##x
#define ROW(s, e, n, acts, st) { CALL_##s, CALL_EV_##e, CALL_##n, (acts), (st) }

/* Status codes rtcsipd makes itself */
#define SC_REQUEST_TIMEOUT 408
#define SC_TEMPORARILY_UNAVAILABLE 480
#define SC_REQUEST_TERMINATED 487
#define SC_NOT_ACCEPTABLE_HERE 488
#define SC_SERVICE_UNAVAILABLE 503

static const call_transition table[] = {
  /* ---- start ---- */
  ROW(IDLE, BROWSER_INVITE, TO_PBX_TRYING, A(INVITE_PBX), 0),
  ROW(IDLE, PBX_INVITE, TO_BROWSER_TRYING, A(INVITE_BROWSER), 0),
  ROW(IDLE, SHUTDOWN, ENDED, A(RELEASE), 0),

  /* ---- a browser calls the PBX: waiting for the PBX ---- */
  ROW(TO_PBX_TRYING, PBX_PROVISIONAL, TO_PBX_EARLY, A(PROVISIONAL_TO_BROWSER), 0),
  ROW(TO_PBX_TRYING, PBX_EARLY_MEDIA, TO_PBX_EARLY, A(PROVISIONAL_TO_BROWSER) | A(START_MEDIA), 0),
  ROW(TO_PBX_TRYING, PBX_ANSWER, CONFIRMED, A(ACK_PBX) | A(ANSWER_BROWSER) | A(START_MEDIA), 0),
  ROW(TO_PBX_TRYING, PBX_REJECT, ENDED, A(REJECT_BROWSER) | A(RELEASE), 0),
  ROW(TO_PBX_TRYING, PBX_TIMEOUT, ENDED, A(REJECT_BROWSER) | A(RELEASE), SC_REQUEST_TIMEOUT),
  ROW(TO_PBX_TRYING, BROWSER_CANCEL, TO_PBX_CANCELLING, A(REJECT_BROWSER) | A(CANCEL_PBX), SC_REQUEST_TERMINATED),
  ROW(TO_PBX_TRYING, WS_CLOSED, TO_PBX_CANCELLING, A(CANCEL_PBX), 0),
  ROW(TO_PBX_TRYING, MEDIA_FAILED, TO_PBX_CANCELLING, A(REJECT_BROWSER) | A(CANCEL_PBX), SC_NOT_ACCEPTABLE_HERE),
  ROW(TO_PBX_TRYING, SHUTDOWN, TO_PBX_CANCELLING, A(REJECT_BROWSER) | A(CANCEL_PBX), SC_SERVICE_UNAVAILABLE),

  ROW(TO_PBX_EARLY, PBX_PROVISIONAL, TO_PBX_EARLY, A(PROVISIONAL_TO_BROWSER), 0),
  ROW(TO_PBX_EARLY, PBX_EARLY_MEDIA, TO_PBX_EARLY, A(PROVISIONAL_TO_BROWSER) | A(START_MEDIA), 0),
  ROW(TO_PBX_EARLY, PBX_ANSWER, CONFIRMED, A(ACK_PBX) | A(ANSWER_BROWSER) | A(START_MEDIA), 0),
  ROW(TO_PBX_EARLY, PBX_REJECT, ENDED, A(REJECT_BROWSER) | A(RELEASE), 0),
  ROW(TO_PBX_EARLY, PBX_TIMEOUT, ENDED, A(REJECT_BROWSER) | A(RELEASE), SC_REQUEST_TIMEOUT),
  ROW(TO_PBX_EARLY, BROWSER_CANCEL, TO_PBX_CANCELLING, A(REJECT_BROWSER) | A(CANCEL_PBX), SC_REQUEST_TERMINATED),
  ROW(TO_PBX_EARLY, WS_CLOSED, TO_PBX_CANCELLING, A(CANCEL_PBX), 0),
  ROW(TO_PBX_EARLY, MEDIA_FAILED, TO_PBX_CANCELLING, A(REJECT_BROWSER) | A(CANCEL_PBX), SC_NOT_ACCEPTABLE_HERE),
  ROW(TO_PBX_EARLY, MEDIA_TIMEOUT, TO_PBX_CANCELLING, A(REJECT_BROWSER) | A(CANCEL_PBX), SC_REQUEST_TIMEOUT),
  ROW(TO_PBX_EARLY, SHUTDOWN, TO_PBX_CANCELLING, A(REJECT_BROWSER) | A(CANCEL_PBX), SC_SERVICE_UNAVAILABLE),

  /* the browser has its final answer; the PBX's INVITE is being cancelled.
   * The CANCEL/200 race: a 2xx that crossed the CANCEL is ACKed and ended. */
  ROW(TO_PBX_CANCELLING, PBX_ANSWER, ENDING, A(ACK_PBX) | A(BYE_PBX), 0),
  ROW(TO_PBX_CANCELLING, PBX_REJECT, ENDED, A(RELEASE), 0),
  ROW(TO_PBX_CANCELLING, PBX_TIMEOUT, ENDED, A(RELEASE), 0),

  /* ---- the PBX calls a browser: waiting for the browser ---- */
  ROW(TO_BROWSER_TRYING, BROWSER_PROVISIONAL, TO_BROWSER_EARLY, A(PROVISIONAL_TO_PBX), 0),
  ROW(TO_BROWSER_TRYING, BROWSER_ANSWER, CONFIRMED, A(ACK_BROWSER) | A(ANSWER_PBX) | A(START_MEDIA), 0),
  ROW(TO_BROWSER_TRYING, BROWSER_REJECT, ENDED, A(REJECT_PBX) | A(RELEASE), 0),
  ROW(TO_BROWSER_TRYING, BROWSER_TIMEOUT, TO_BROWSER_CANCELLING, A(REJECT_PBX) | A(CANCEL_BROWSER), SC_TEMPORARILY_UNAVAILABLE),
  ROW(TO_BROWSER_TRYING, PBX_CANCEL, TO_BROWSER_CANCELLING, A(REJECT_PBX) | A(CANCEL_BROWSER), SC_REQUEST_TERMINATED),
  ROW(TO_BROWSER_TRYING, WS_CLOSED, ENDED, A(REJECT_PBX) | A(RELEASE), SC_TEMPORARILY_UNAVAILABLE),
  ROW(TO_BROWSER_TRYING, MEDIA_FAILED, TO_BROWSER_CANCELLING, A(REJECT_PBX) | A(CANCEL_BROWSER), SC_NOT_ACCEPTABLE_HERE),
  ROW(TO_BROWSER_TRYING, SHUTDOWN, TO_BROWSER_CANCELLING, A(REJECT_PBX) | A(CANCEL_BROWSER), SC_SERVICE_UNAVAILABLE),

  ROW(TO_BROWSER_EARLY, BROWSER_PROVISIONAL, TO_BROWSER_EARLY, A(PROVISIONAL_TO_PBX), 0),
  ROW(TO_BROWSER_EARLY, BROWSER_ANSWER, CONFIRMED, A(ACK_BROWSER) | A(ANSWER_PBX) | A(START_MEDIA), 0),
  ROW(TO_BROWSER_EARLY, BROWSER_REJECT, ENDED, A(REJECT_PBX) | A(RELEASE), 0),
  ROW(TO_BROWSER_EARLY, BROWSER_TIMEOUT, TO_BROWSER_CANCELLING, A(REJECT_PBX) | A(CANCEL_BROWSER), SC_TEMPORARILY_UNAVAILABLE),
  ROW(TO_BROWSER_EARLY, PBX_CANCEL, TO_BROWSER_CANCELLING, A(REJECT_PBX) | A(CANCEL_BROWSER), SC_REQUEST_TERMINATED),
  ROW(TO_BROWSER_EARLY, WS_CLOSED, ENDED, A(REJECT_PBX) | A(RELEASE), SC_TEMPORARILY_UNAVAILABLE),
  ROW(TO_BROWSER_EARLY, MEDIA_FAILED, TO_BROWSER_CANCELLING, A(REJECT_PBX) | A(CANCEL_BROWSER), SC_NOT_ACCEPTABLE_HERE),
  ROW(TO_BROWSER_EARLY, SHUTDOWN, TO_BROWSER_CANCELLING, A(REJECT_PBX) | A(CANCEL_BROWSER), SC_SERVICE_UNAVAILABLE),

  /* the PBX has its final answer; the browser's INVITE is being cancelled */
  ROW(TO_BROWSER_CANCELLING, BROWSER_ANSWER, ENDING, A(ACK_BROWSER) | A(BYE_BROWSER), 0),
  ROW(TO_BROWSER_CANCELLING, BROWSER_REJECT, ENDED, A(RELEASE), 0),
  ROW(TO_BROWSER_CANCELLING, BROWSER_TIMEOUT, ENDED, A(RELEASE), 0),
  ROW(TO_BROWSER_CANCELLING, WS_CLOSED, ENDED, A(RELEASE), 0),

  /* ---- answered ---- */
  ROW(CONFIRMED, BROWSER_BYE, ENDING, A(BYE_PBX), 0),
  ROW(CONFIRMED, PBX_BYE, ENDING, A(BYE_BROWSER), 0),
  ROW(CONFIRMED, WS_CLOSED, ENDING, A(BYE_PBX), 0),
  ROW(CONFIRMED, MEDIA_FAILED, ENDING, A(BYE_PBX) | A(BYE_BROWSER), 0),
  ROW(CONFIRMED, MEDIA_TIMEOUT, ENDING, A(BYE_PBX) | A(BYE_BROWSER), 0),
  ROW(CONFIRMED, SHUTDOWN, ENDING, A(BYE_PBX) | A(BYE_BROWSER), 0),

  /* ---- ending ---- */
  ROW(ENDING, BYES_DONE, ENDED, A(RELEASE), 0),
};

call_transition call_fsm_step(call_state state, call_event event, bool *ignored)
{
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (table[i].state == state && table[i].event == event) {
      if (ignored)
        *ignored = false;
      return table[i];
    }
  if (ignored)
    *ignored = true;
  return (call_transition){ state, event, state, 0, 0 };
}

const call_transition *call_fsm_table(unsigned *n_rows)
{
  *n_rows = sizeof table / sizeof table[0];
  return table;
}

const char *call_state_name(call_state s)
{
  static const char *const names[CALL_N_STATES] = {
    [CALL_IDLE] = "idle",
    [CALL_TO_PBX_TRYING] = "to-pbx-trying",
    [CALL_TO_PBX_EARLY] = "to-pbx-early",
    [CALL_TO_PBX_CANCELLING] = "to-pbx-cancelling",
    [CALL_TO_BROWSER_TRYING] = "to-browser-trying",
    [CALL_TO_BROWSER_EARLY] = "to-browser-early",
    [CALL_TO_BROWSER_CANCELLING] = "to-browser-cancelling",
    [CALL_CONFIRMED] = "confirmed",
    [CALL_ENDING] = "ending",
    [CALL_ENDED] = "ended",
  };
  return s < CALL_N_STATES ? names[s] : "?";
}

const char *call_event_name(call_event e)
{
  static const char *const names[CALL_N_EVENTS] = {
    [CALL_EV_BROWSER_INVITE] = "browser-invite",
    [CALL_EV_PBX_INVITE] = "pbx-invite",
    [CALL_EV_PBX_PROVISIONAL] = "pbx-provisional",
    [CALL_EV_PBX_EARLY_MEDIA] = "pbx-early-media",
    [CALL_EV_PBX_ANSWER] = "pbx-answer",
    [CALL_EV_PBX_REJECT] = "pbx-reject",
    [CALL_EV_PBX_TIMEOUT] = "pbx-timeout",
    [CALL_EV_PBX_CANCEL] = "pbx-cancel",
    [CALL_EV_PBX_BYE] = "pbx-bye",
    [CALL_EV_BROWSER_PROVISIONAL] = "browser-provisional",
    [CALL_EV_BROWSER_ANSWER] = "browser-answer",
    [CALL_EV_BROWSER_REJECT] = "browser-reject",
    [CALL_EV_BROWSER_TIMEOUT] = "browser-timeout",
    [CALL_EV_BROWSER_CANCEL] = "browser-cancel",
    [CALL_EV_BROWSER_BYE] = "browser-bye",
    [CALL_EV_WS_CLOSED] = "ws-closed",
    [CALL_EV_MEDIA_FAILED] = "media-failed",
    [CALL_EV_MEDIA_TIMEOUT] = "media-timeout",
    [CALL_EV_SHUTDOWN] = "shutdown",
    [CALL_EV_BYES_DONE] = "byes-done",
  };
  return e < CALL_N_EVENTS ? names[e] : "?";
}

const char *call_actions_format(uint32_t actions, char *buf, size_t size)
{
  static const char *const names[] = {
    "INVITE_PBX", "INVITE_BROWSER", "PROVISIONAL_TO_BROWSER", "PROVISIONAL_TO_PBX",
    "ACK_PBX", "ACK_BROWSER", "ANSWER_BROWSER", "ANSWER_PBX", "REJECT_BROWSER",
    "REJECT_PBX", "CANCEL_PBX", "CANCEL_BROWSER", "BYE_PBX", "BYE_BROWSER",
    "START_MEDIA", "RELEASE",
  };
  size_t used = 0;

  if (size == 0)
    return buf;
  buf[0] = '\0';
  for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!(actions & (1u << i)))
      continue;
    int n = snprintf(buf + used, size - used, "%s%s", used ? "|" : "", names[i]);
    if (n < 0 || (size_t)n >= size - used)
      break;
    used += (size_t)n;
  }
  return buf;
}
