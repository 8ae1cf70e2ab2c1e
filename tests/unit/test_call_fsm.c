/* Unit tests: the call state machine table (gateway/call_fsm.c), walked as a
 * table.
 *
 * 1. The table itself: one row per (state, event), RELEASE exactly on the way
 *    into ENDED, a status wherever rtcsipd makes a final response itself.
 * 2. Scenarios users see, each a row of events with the actions expected.
 * 3. Nothing left half-open: a small model of the two sides (which INVITE
 *    waits for a final answer, which dialog is up) is driven through every
 *    reachable configuration with every event; whenever the call reaches
 *    ENDED, both sides have been told and RELEASE was done once, and from
 *    every configuration an ending event leads to ENDED.
 */
#include <string.h>
#include <glib.h>

#include "gateway/call_fsm.h"

#define A(x) CALL_ACT_##x

/* ---- 1. the table ---- */

static void test_table_shape(void)
{
  unsigned n = 0;
  const call_transition *t = call_fsm_table(&n);

  g_assert_cmpuint(n, >, 20);
  for (unsigned i = 0; i < n; i++) {
    char acts[256];
    g_test_message("%-22s + %-20s -> %-22s %s %u", call_state_name(t[i].state),
                   call_event_name(t[i].event), call_state_name(t[i].next),
                   call_actions_format(t[i].actions, acts, sizeof acts), t[i].status);
    g_assert_cmpint(t[i].state, <, CALL_N_STATES);
    g_assert_cmpint(t[i].next, <, CALL_N_STATES);
    g_assert_cmpint(t[i].event, <, CALL_N_EVENTS);
    g_assert_cmpint(t[i].state, !=, CALL_ENDED);
    for (unsigned j = i + 1; j < n; j++)
      g_assert_false(t[i].state == t[j].state && t[i].event == t[j].event);
    /* RELEASE exactly when the call ends */
    g_assert_cmpint(!!(t[i].actions & A(RELEASE)), ==, t[i].next == CALL_ENDED);
    /* a final response made here needs a status; one relayed needs a final
     * response from the other side as its event */
    if ((t[i].actions & A(REJECT_BROWSER)) && t[i].event != CALL_EV_PBX_REJECT)
      g_assert_cmpuint(t[i].status, >=, 400);
    if ((t[i].actions & A(REJECT_PBX)) && t[i].event != CALL_EV_BROWSER_REJECT)
      g_assert_cmpuint(t[i].status, >=, 400);
    if ((t[i].actions & A(REJECT_REOFFER_BROWSER)) && t[i].event != CALL_EV_PBX_REOFFER_REJECT)
      g_assert_cmpuint(t[i].status, >=, 400);
    if ((t[i].actions & A(REJECT_REOFFER_PBX)) && t[i].event != CALL_EV_BROWSER_REOFFER_REJECT)
      g_assert_cmpuint(t[i].status, >=, 400);
    if (!(t[i].actions & (A(REJECT_BROWSER) | A(REJECT_PBX) | A(REJECT_REOFFER_BROWSER) |
                          A(REJECT_REOFFER_PBX))))
      g_assert_cmpuint(t[i].status, ==, 0);
    /* an offer in the call never comes with the end */
    if (t[i].actions & (A(UPDATE_MEDIA) | A(REOFFER_PBX) | A(REOFFER_BROWSER) |
                        A(ANSWER_REOFFER_BROWSER) | A(ANSWER_REOFFER_PBX)))
      g_assert_false(t[i].actions & A(RELEASE));
  }
}

static void test_stray_events_ignored(void)
{
  bool ignored = false;
  call_transition t = call_fsm_step(CALL_ENDED, CALL_EV_PBX_BYE, &ignored);

  g_assert_true(ignored);
  g_assert_cmpint(t.next, ==, CALL_ENDED);
  g_assert_cmpuint(t.actions, ==, 0);
  /* a BYE while still ringing is not a dialog's BYE: the SIP layer answers 481 */
  t = call_fsm_step(CALL_TO_PBX_TRYING, CALL_EV_PBX_BYE, &ignored);
  g_assert_true(ignored);
  g_assert_cmpint(t.next, ==, CALL_TO_PBX_TRYING);
  t = call_fsm_step(CALL_CONFIRMED, CALL_EV_PBX_ANSWER, &ignored); /* a 2xx retransmission */
  g_assert_true(ignored);
  g_assert_cmpuint(t.actions, ==, 0);
}

/* ---- 2. scenarios ---- */

typedef struct {
  call_event event;
  call_state next;
  uint32_t actions;
  uint16_t status;
} step;

typedef struct {
  const char *name;
  step steps[8];
} scenario;

#define END { CALL_N_EVENTS, 0, 0, 0 }

static const scenario scenarios[] = {
  { "browser calls, PBX rings and answers, browser hangs up", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_PROVISIONAL, CALL_TO_PBX_EARLY, A(PROVISIONAL_TO_BROWSER), 0 },
    { CALL_EV_PBX_ANSWER, CALL_CONFIRMED, A(ACK_PBX) | A(ANSWER_BROWSER) | A(START_MEDIA), 0 },
    { CALL_EV_BROWSER_BYE, CALL_ENDING, A(BYE_PBX), 0 },
    { CALL_EV_BYES_DONE, CALL_ENDED, A(RELEASE), 0 },
    END } },
  { "browser calls, the far end hangs up", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_ANSWER, CALL_CONFIRMED, A(ACK_PBX) | A(ANSWER_BROWSER) | A(START_MEDIA), 0 },
    { CALL_EV_PBX_BYE, CALL_ENDING, A(BYE_BROWSER), 0 },
    { CALL_EV_BYES_DONE, CALL_ENDED, A(RELEASE), 0 },
    END } },
  { "early media: 183 with SDP starts media before the answer", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_EARLY_MEDIA, CALL_TO_PBX_EARLY, A(PROVISIONAL_TO_BROWSER) | A(START_MEDIA), 0 },
    { CALL_EV_PBX_PROVISIONAL, CALL_TO_PBX_EARLY, A(PROVISIONAL_TO_BROWSER), 0 },
    { CALL_EV_PBX_ANSWER, CALL_CONFIRMED, A(ACK_PBX) | A(ANSWER_BROWSER) | A(START_MEDIA), 0 },
    END } },
  { "busy far end: the 486 is relayed", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_REJECT, CALL_ENDED, A(REJECT_BROWSER) | A(RELEASE), 0 },
    END } },
  { "the PBX never answers: 408 to the browser", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_TIMEOUT, CALL_ENDED, A(REJECT_BROWSER) | A(RELEASE), 408 },
    END } },
  { "CANCEL before the answer", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_PROVISIONAL, CALL_TO_PBX_EARLY, A(PROVISIONAL_TO_BROWSER), 0 },
    { CALL_EV_BROWSER_CANCEL, CALL_TO_PBX_CANCELLING, A(REJECT_BROWSER) | A(CANCEL_PBX), 487 },
    { CALL_EV_PBX_REJECT, CALL_ENDED, A(RELEASE), 0 },
    END } },
  { "CANCEL/200 race: the crossing 2xx is ACKed and ended with a BYE", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_BROWSER_CANCEL, CALL_TO_PBX_CANCELLING, A(REJECT_BROWSER) | A(CANCEL_PBX), 487 },
    { CALL_EV_PBX_ANSWER, CALL_ENDING, A(ACK_PBX) | A(BYE_PBX), 0 },
    { CALL_EV_BYES_DONE, CALL_ENDED, A(RELEASE), 0 },
    END } },
  { "the page closes while ringing: CANCEL to the PBX", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_WS_CLOSED, CALL_TO_PBX_CANCELLING, A(CANCEL_PBX), 0 },
    { CALL_EV_PBX_REJECT, CALL_ENDED, A(RELEASE), 0 },
    END } },
  { "the page closes mid-call: BYE to the PBX", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_ANSWER, CALL_CONFIRMED, A(ACK_PBX) | A(ANSWER_BROWSER) | A(START_MEDIA), 0 },
    { CALL_EV_WS_CLOSED, CALL_ENDING, A(BYE_PBX), 0 },
    { CALL_EV_BYES_DONE, CALL_ENDED, A(RELEASE), 0 },
    END } },
  { "DTLS fingerprint mismatch after the answer: both sides get a BYE", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_ANSWER, CALL_CONFIRMED, A(ACK_PBX) | A(ANSWER_BROWSER) | A(START_MEDIA), 0 },
    { CALL_EV_MEDIA_FAILED, CALL_ENDING, A(BYE_PBX) | A(BYE_BROWSER), 0 },
    { CALL_EV_BYES_DONE, CALL_ENDED, A(RELEASE), 0 },
    END } },
  { "silence past the media timeout", {
    { CALL_EV_PBX_INVITE, CALL_TO_BROWSER_TRYING, A(INVITE_BROWSER), 0 },
    { CALL_EV_BROWSER_ANSWER, CALL_CONFIRMED, A(ACK_BROWSER) | A(ANSWER_PBX) | A(START_MEDIA), 0 },
    { CALL_EV_MEDIA_TIMEOUT, CALL_ENDING, A(BYE_PBX) | A(BYE_BROWSER), 0 },
    { CALL_EV_BYES_DONE, CALL_ENDED, A(RELEASE), 0 },
    END } },
  { "incoming call answered in the page", {
    { CALL_EV_PBX_INVITE, CALL_TO_BROWSER_TRYING, A(INVITE_BROWSER), 0 },
    { CALL_EV_BROWSER_PROVISIONAL, CALL_TO_BROWSER_EARLY, A(PROVISIONAL_TO_PBX), 0 },
    { CALL_EV_BROWSER_ANSWER, CALL_CONFIRMED, A(ACK_BROWSER) | A(ANSWER_PBX) | A(START_MEDIA), 0 },
    { CALL_EV_PBX_BYE, CALL_ENDING, A(BYE_BROWSER), 0 },
    { CALL_EV_BYES_DONE, CALL_ENDED, A(RELEASE), 0 },
    END } },
  { "incoming call not answered in time: 480 to the PBX, CANCEL to the browser", {
    { CALL_EV_PBX_INVITE, CALL_TO_BROWSER_TRYING, A(INVITE_BROWSER), 0 },
    { CALL_EV_BROWSER_PROVISIONAL, CALL_TO_BROWSER_EARLY, A(PROVISIONAL_TO_PBX), 0 },
    { CALL_EV_BROWSER_TIMEOUT, CALL_TO_BROWSER_CANCELLING, A(REJECT_PBX) | A(CANCEL_BROWSER), 480 },
    { CALL_EV_BROWSER_REJECT, CALL_ENDED, A(RELEASE), 0 },
    END } },
  { "the PBX cancels while the browser rings", {
    { CALL_EV_PBX_INVITE, CALL_TO_BROWSER_TRYING, A(INVITE_BROWSER), 0 },
    { CALL_EV_PBX_CANCEL, CALL_TO_BROWSER_CANCELLING, A(REJECT_PBX) | A(CANCEL_BROWSER), 487 },
    { CALL_EV_BROWSER_ANSWER, CALL_ENDING, A(ACK_BROWSER) | A(BYE_BROWSER), 0 },
    { CALL_EV_BYES_DONE, CALL_ENDED, A(RELEASE), 0 },
    END } },
  { "the browser's WebSocket is gone before it answers: 480 to the PBX", {
    { CALL_EV_PBX_INVITE, CALL_TO_BROWSER_TRYING, A(INVITE_BROWSER), 0 },
    { CALL_EV_WS_CLOSED, CALL_ENDED, A(REJECT_PBX) | A(RELEASE), 480 },
    END } },
  { "hold from the browser: its sendonly offer goes to the PBX, the answer comes back", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_ANSWER, CALL_CONFIRMED, A(ACK_PBX) | A(ANSWER_BROWSER) | A(START_MEDIA), 0 },
    { CALL_EV_BROWSER_REOFFER, CALL_REOFFER_TO_PBX, A(REOFFER_PBX), 0 },
    { CALL_EV_PBX_REOFFER_ANSWER, CALL_CONFIRMED, A(UPDATE_MEDIA) | A(ANSWER_REOFFER_BROWSER), 0 },
    { CALL_EV_BROWSER_REOFFER, CALL_REOFFER_TO_PBX, A(REOFFER_PBX), 0 },
    { CALL_EV_PBX_REOFFER_REJECT, CALL_CONFIRMED, A(REJECT_REOFFER_BROWSER), 0 },
    END } },
  { "hold from the PBX, and glare with the browser's own offer", {
    { CALL_EV_PBX_INVITE, CALL_TO_BROWSER_TRYING, A(INVITE_BROWSER), 0 },
    { CALL_EV_BROWSER_ANSWER, CALL_CONFIRMED, A(ACK_BROWSER) | A(ANSWER_PBX) | A(START_MEDIA), 0 },
    { CALL_EV_PBX_REOFFER, CALL_REOFFER_TO_BROWSER, A(REOFFER_BROWSER), 0 },
    { CALL_EV_BROWSER_REOFFER, CALL_REOFFER_TO_BROWSER, A(REJECT_REOFFER_BROWSER), 491 },
    { CALL_EV_BROWSER_REOFFER_ANSWER, CALL_CONFIRMED, A(UPDATE_MEDIA) | A(ANSWER_REOFFER_PBX), 0 },
    END } },
  { "refreshes and ICE restart are answered here; a failed session timer ends the call", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_ANSWER, CALL_CONFIRMED, A(ACK_PBX) | A(ANSWER_BROWSER) | A(START_MEDIA), 0 },
    { CALL_EV_BROWSER_REFRESH, CALL_CONFIRMED, A(UPDATE_MEDIA) | A(ANSWER_REOFFER_BROWSER), 0 },
    { CALL_EV_PBX_REFRESH, CALL_CONFIRMED, A(UPDATE_MEDIA) | A(ANSWER_REOFFER_PBX), 0 },
    { CALL_EV_SESSION_EXPIRED, CALL_ENDING, A(BYE_PBX) | A(BYE_BROWSER), 0 },
    { CALL_EV_BYES_DONE, CALL_ENDED, A(RELEASE), 0 },
    END } },
  { "DTMF and a transfer cross both ways while an offer is pending", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_ANSWER, CALL_CONFIRMED, A(ACK_PBX) | A(ANSWER_BROWSER) | A(START_MEDIA), 0 },
    { CALL_EV_BROWSER_DTMF, CALL_CONFIRMED, A(DTMF_TO_PBX), 0 },
    { CALL_EV_BROWSER_REOFFER, CALL_REOFFER_TO_PBX, A(REOFFER_PBX), 0 },
    { CALL_EV_PBX_DTMF, CALL_REOFFER_TO_PBX, A(DTMF_TO_BROWSER), 0 },
    { CALL_EV_BROWSER_TRANSFER, CALL_REOFFER_TO_PBX, A(RELAY_TO_PBX), 0 },
    { CALL_EV_PBX_TRANSFER, CALL_REOFFER_TO_PBX, A(RELAY_TO_BROWSER), 0 },
    END } },
  { "an UPDATE from the PBX while it rings is answered here", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_EARLY_MEDIA, CALL_TO_PBX_EARLY, A(PROVISIONAL_TO_BROWSER) | A(START_MEDIA), 0 },
    { CALL_EV_PBX_REOFFER, CALL_TO_PBX_EARLY, A(UPDATE_MEDIA) | A(ANSWER_REOFFER_PBX), 0 },
    { CALL_EV_PBX_ANSWER, CALL_CONFIRMED, A(ACK_PBX) | A(ANSWER_BROWSER) | A(START_MEDIA), 0 },
    END } },
  { "the daemon stops mid-call", {
    { CALL_EV_BROWSER_INVITE, CALL_TO_PBX_TRYING, A(INVITE_PBX), 0 },
    { CALL_EV_PBX_ANSWER, CALL_CONFIRMED, A(ACK_PBX) | A(ANSWER_BROWSER) | A(START_MEDIA), 0 },
    { CALL_EV_SHUTDOWN, CALL_ENDING, A(BYE_PBX) | A(BYE_BROWSER), 0 },
    { CALL_EV_BYES_DONE, CALL_ENDED, A(RELEASE), 0 },
    END } },
};

static void test_scenarios(void)
{
  for (size_t i = 0; i < G_N_ELEMENTS(scenarios); i++) {
    call_state s = CALL_IDLE;

    g_test_message("scenario: %s", scenarios[i].name);
    for (const step *st = scenarios[i].steps; st->event != CALL_N_EVENTS; st++) {
      bool ignored = true;
      call_transition t = call_fsm_step(s, st->event, &ignored);
      char got[256], want[256];

      g_assert_false(ignored);
      g_assert_cmpstr(call_state_name(t.next), ==, call_state_name(st->next));
      g_assert_cmpstr(call_actions_format(t.actions, got, sizeof got), ==,
                      call_actions_format(st->actions, want, sizeof want));
      g_assert_cmpuint(t.status, ==, st->status);
      s = t.next;
    }
  }
}

/* ---- 3. nothing left half-open ---- */

/* What is open on each side. */
enum {
  OPEN_BROWSER_INVITE_IN = 1 << 0,  /* the browser's INVITE waits for our final answer */
  OPEN_BROWSER_INVITE_OUT = 1 << 1, /* our INVITE to the browser waits for its final answer */
  OPEN_BROWSER_DIALOG = 1 << 2,
  OPEN_PBX_INVITE_IN = 1 << 3,
  OPEN_PBX_INVITE_OUT = 1 << 4,
  OPEN_PBX_DIALOG = 1 << 5,
  /* offers in the call (re-INVITE, UPDATE) waiting for an answer */
  OPEN_BROWSER_OFFER_IN = 1 << 6,
  OPEN_BROWSER_OFFER_OUT = 1 << 7,
  OPEN_PBX_OFFER_IN = 1 << 8,
  OPEN_PBX_OFFER_OUT = 1 << 9,
  OPEN_ALL = (1 << 10) - 1,
  OPEN_BROWSER_ALL = OPEN_BROWSER_INVITE_IN | OPEN_BROWSER_INVITE_OUT | OPEN_BROWSER_DIALOG |
                     OPEN_BROWSER_OFFER_IN | OPEN_BROWSER_OFFER_OUT,
  OPEN_PBX_USAGES = OPEN_PBX_DIALOG | OPEN_PBX_OFFER_IN | OPEN_PBX_OFFER_OUT,
  OPEN_BROWSER_USAGES = OPEN_BROWSER_DIALOG | OPEN_BROWSER_OFFER_IN | OPEN_BROWSER_OFFER_OUT,
};

typedef struct {
  call_state state;
  unsigned open;
  unsigned releases;
} model;

/* What an event says about the sides by itself, in STATE. */
static unsigned after_event(call_state state, unsigned open, call_event e)
{
  switch (e) {
  case CALL_EV_BROWSER_INVITE: return open | OPEN_BROWSER_INVITE_IN;
  case CALL_EV_PBX_INVITE: return open | OPEN_PBX_INVITE_IN;
  case CALL_EV_PBX_ANSWER: return (open & ~OPEN_PBX_INVITE_OUT) | OPEN_PBX_DIALOG;
  case CALL_EV_PBX_REJECT:
  case CALL_EV_PBX_TIMEOUT: return open & ~OPEN_PBX_INVITE_OUT;
  case CALL_EV_BROWSER_ANSWER: return (open & ~OPEN_BROWSER_INVITE_OUT) | OPEN_BROWSER_DIALOG;
  case CALL_EV_BROWSER_REJECT: return open & ~OPEN_BROWSER_INVITE_OUT;
  case CALL_EV_BROWSER_TIMEOUT:
    /* rtcsipd's own timer: the first one leads to a CANCEL (the INVITE stays
     * open until the browser answers it); the one after the CANCEL gives up */
    return state == CALL_TO_BROWSER_CANCELLING ? open & ~OPEN_BROWSER_INVITE_OUT : open;
  /* a BYE ends the dialog and every offer pending in it */
  case CALL_EV_PBX_BYE: return open & ~OPEN_PBX_USAGES;
  case CALL_EV_BROWSER_BYE: return open & ~OPEN_BROWSER_USAGES;
  case CALL_EV_WS_CLOSED: return open & ~OPEN_BROWSER_ALL;
  case CALL_EV_BROWSER_REOFFER:
  case CALL_EV_BROWSER_REFRESH: return open | OPEN_BROWSER_OFFER_IN;
  case CALL_EV_PBX_REOFFER:
  case CALL_EV_PBX_REFRESH: return open | OPEN_PBX_OFFER_IN;
  case CALL_EV_PBX_REOFFER_ANSWER:
  case CALL_EV_PBX_REOFFER_REJECT: return open & ~OPEN_PBX_OFFER_OUT;
  case CALL_EV_BROWSER_REOFFER_ANSWER:
  case CALL_EV_BROWSER_REOFFER_REJECT: return open & ~OPEN_BROWSER_OFFER_OUT;
  default: return open;
  }
}

/* What the actions do to the sides. */
static unsigned after_actions(unsigned open, uint32_t a)
{
  if (a & A(INVITE_PBX)) open |= OPEN_PBX_INVITE_OUT;
  if (a & A(INVITE_BROWSER)) open |= OPEN_BROWSER_INVITE_OUT;
  if (a & A(ANSWER_BROWSER)) open = (open & ~OPEN_BROWSER_INVITE_IN) | OPEN_BROWSER_DIALOG;
  if (a & A(REJECT_BROWSER)) open &= ~OPEN_BROWSER_INVITE_IN;
  if (a & A(ANSWER_PBX)) open = (open & ~OPEN_PBX_INVITE_IN) | OPEN_PBX_DIALOG;
  if (a & A(REJECT_PBX)) open &= ~OPEN_PBX_INVITE_IN;
  if (a & A(BYE_PBX)) open &= ~OPEN_PBX_USAGES;
  if (a & A(BYE_BROWSER)) open &= ~OPEN_BROWSER_USAGES;
  if (a & A(REOFFER_PBX)) open |= OPEN_PBX_OFFER_OUT;
  if (a & A(REOFFER_BROWSER)) open |= OPEN_BROWSER_OFFER_OUT;
  if (a & (A(ANSWER_REOFFER_BROWSER) | A(REJECT_REOFFER_BROWSER))) open &= ~OPEN_BROWSER_OFFER_IN;
  if (a & (A(ANSWER_REOFFER_PBX) | A(REJECT_REOFFER_PBX))) open &= ~OPEN_PBX_OFFER_IN;
  /* a CANCEL leaves the INVITE open until its final answer comes (an event) */
  return open;
}

/* The other side's view changes with what it sent even when the table
 * ignores it: a 2xx nobody handles leaves a dialog up at the PBX. */
static model apply(model m, call_event e, bool *ignored)
{
  call_transition t = call_fsm_step(m.state, e, ignored);

  if (*ignored) {
    m.open = after_event(m.state, m.open, e);
    return m;
  }
  m.open = after_actions(after_event(m.state, m.open, e), t.actions);
  m.state = t.next;
  m.releases += !!(t.actions & A(RELEASE));
  return m;
}

/* Events a side may still send in this configuration: answers only come to
 * open INVITEs, BYEs only in dialogs, CANCELs only to INVITEs still open. */
static bool event_possible(const model *m, call_event e)
{
  switch (e) {
  case CALL_EV_BROWSER_INVITE:
  case CALL_EV_PBX_INVITE: return m->state == CALL_IDLE;
  case CALL_EV_PBX_PROVISIONAL:
  case CALL_EV_PBX_EARLY_MEDIA:
  case CALL_EV_PBX_ANSWER:
  case CALL_EV_PBX_REJECT:
  case CALL_EV_PBX_TIMEOUT: return m->open & OPEN_PBX_INVITE_OUT;
  case CALL_EV_BROWSER_PROVISIONAL:
  case CALL_EV_BROWSER_ANSWER:
  case CALL_EV_BROWSER_REJECT:
  case CALL_EV_BROWSER_TIMEOUT: return m->open & OPEN_BROWSER_INVITE_OUT;
  case CALL_EV_PBX_CANCEL: return m->open & OPEN_PBX_INVITE_IN;
  case CALL_EV_BROWSER_CANCEL: return m->open & OPEN_BROWSER_INVITE_IN;
  case CALL_EV_PBX_BYE: return m->open & OPEN_PBX_DIALOG;
  case CALL_EV_BROWSER_BYE: return m->open & OPEN_BROWSER_DIALOG;
  case CALL_EV_BYES_DONE: return m->state == CALL_ENDING;
  /* a peer has one offer of its own pending at a time */
  case CALL_EV_BROWSER_REOFFER:
  case CALL_EV_BROWSER_REFRESH:
    return (m->open & OPEN_BROWSER_DIALOG) && !(m->open & OPEN_BROWSER_OFFER_IN);
  case CALL_EV_PBX_REOFFER:
  case CALL_EV_PBX_REFRESH: /* UPDATE: also in the early dialog of our INVITE */
    return ((m->open & OPEN_PBX_DIALOG) || m->state == CALL_TO_PBX_EARLY) &&
           !(m->open & OPEN_PBX_OFFER_IN);
  case CALL_EV_PBX_REOFFER_ANSWER:
  case CALL_EV_PBX_REOFFER_REJECT: return m->open & OPEN_PBX_OFFER_OUT;
  case CALL_EV_BROWSER_REOFFER_ANSWER:
  case CALL_EV_BROWSER_REOFFER_REJECT: return m->open & OPEN_BROWSER_OFFER_OUT;
  case CALL_EV_SESSION_EXPIRED: return m->open & OPEN_PBX_DIALOG;
  case CALL_EV_BROWSER_DTMF:
  case CALL_EV_BROWSER_TRANSFER: return m->open & OPEN_BROWSER_DIALOG;
  case CALL_EV_PBX_DTMF:
  case CALL_EV_PBX_TRANSFER: return m->open & OPEN_PBX_DIALOG;
  default: return m->state != CALL_ENDED;
  }
}

#define MAX_CONFIGS (CALL_N_STATES * (OPEN_ALL + 1) * 2)

static bool seen_before(GArray *seen, const model *m)
{
  for (guint i = 0; i < seen->len; i++) {
    const model *o = &g_array_index(seen, model, i);
    if (o->state == m->state && o->open == m->open && o->releases == m->releases)
      return true;
  }
  return false;
}

static bool is_timer_event(call_event e)
{
  return e == CALL_EV_PBX_TIMEOUT || e == CALL_EV_BROWSER_TIMEOUT ||
         e == CALL_EV_MEDIA_TIMEOUT || e == CALL_EV_BYES_DONE || e == CALL_EV_SESSION_EXPIRED;
}

/* Can M reach ENDED by the events the other sides and timers will produce
 * (ONLY_TIMERS: by timers alone, as when both peers fall silent)? */
static bool reaches_end(model m, unsigned depth, bool only_timers)
{
  if (m.state == CALL_ENDED)
    return m.open == 0 && m.releases == 1;
  if (depth == 0)
    return false;
  for (call_event e = 0; e < CALL_N_EVENTS; e++) {
    bool ignored;
    if (!event_possible(&m, e) || (only_timers && !is_timer_event(e)))
      continue;
    model n = apply(m, e, &ignored);
    if (!ignored && n.state != m.state && reaches_end(n, depth - 1, only_timers))
      return true;
  }
  return false;
}

static void test_nothing_half_open(void)
{
  GArray *seen = g_array_new(FALSE, FALSE, sizeof(model));
  GArray *todo = g_array_new(FALSE, FALSE, sizeof(model));
  model start = { CALL_IDLE, 0, 0 };
  unsigned ended = 0;
  static const call_event enders[] = {
    CALL_EV_WS_CLOSED, CALL_EV_MEDIA_FAILED, CALL_EV_MEDIA_TIMEOUT, CALL_EV_SHUTDOWN,
  };

  g_array_append_val(todo, start);
  while (todo->len) {
    model m = g_array_index(todo, model, todo->len - 1);
    g_array_remove_index(todo, todo->len - 1);
    if (seen_before(seen, &m))
      continue;
    g_array_append_val(seen, m);
    g_assert_cmpuint(seen->len, <, MAX_CONFIGS);

    if (m.state == CALL_ENDED) {
      /* both sides told, resources released once */
      if (m.open != 0 || m.releases != 1)
        g_error("ended with open=%#x releases=%u", m.open, m.releases);
      ended++;
      continue;
    }
    g_assert_cmpuint(m.releases, ==, 0);
    /* every live configuration can still end, and ends when the browser
     * goes away, media fails or the daemon stops */
    if (!reaches_end(m, 6, false))
      g_error("%s open=%#x cannot reach the end", call_state_name(m.state), m.open);
    if (m.state != CALL_IDLE && !reaches_end(m, 6, true))
      g_error("%s open=%#x does not end when both peers fall silent", call_state_name(m.state),
              m.open);
    for (size_t i = 0; i < G_N_ELEMENTS(enders) && m.state != CALL_IDLE; i++) {
      bool ignored;
      model n = apply(m, enders[i], &ignored);
      /* while a call is being set up or is up, each of them acts at once
       * (media silence only counts once media runs) */
      bool in_call = m.state == CALL_CONFIRMED || m.state == CALL_REOFFER_TO_PBX ||
                     m.state == CALL_REOFFER_TO_BROWSER;
      bool live = m.state == CALL_TO_PBX_TRYING || m.state == CALL_TO_PBX_EARLY ||
                  m.state == CALL_TO_BROWSER_TRYING || m.state == CALL_TO_BROWSER_EARLY || in_call;
      bool media_runs = m.state == CALL_TO_PBX_EARLY || in_call;
      if (live && ignored && (enders[i] != CALL_EV_MEDIA_TIMEOUT || media_runs))
        g_error("%s ignores %s", call_state_name(m.state), call_event_name(enders[i]));
      if (!reaches_end(n, 6, false))
        g_error("%s open=%#x + %s does not end the call", call_state_name(m.state), m.open,
                call_event_name(enders[i]));
    }
    for (call_event e = 0; e < CALL_N_EVENTS; e++) {
      bool ignored;
      if (!event_possible(&m, e))
        continue;
      model n = apply(m, e, &ignored);
      g_array_append_val(todo, n);
    }
  }
  g_test_message("%u configurations walked, %u of them ended", seen->len, ended);
  g_assert_cmpuint(ended, >, 0);
  /* every state of the table was reached */
  for (call_state s = 0; s < CALL_N_STATES; s++) {
    bool found = false;
    for (guint i = 0; i < seen->len && !found; i++)
      found = g_array_index(seen, model, i).state == s;
    if (!found)
      g_error("state %s is never reached", call_state_name(s));
  }
  g_array_free(seen, TRUE);
  g_array_free(todo, TRUE);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/call-fsm/table-shape", test_table_shape);
  g_test_add_func("/call-fsm/stray-events-ignored", test_stray_events_ignored);
  g_test_add_func("/call-fsm/scenarios", test_scenarios);
  g_test_add_func("/call-fsm/nothing-half-open", test_nothing_half_open);
  return g_test_run();
}
