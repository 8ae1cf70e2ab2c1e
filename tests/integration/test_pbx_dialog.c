/* sip/pbx_dialog.c: real INVITE dialogs between a pbx_link on 127.0.0.1 and
 * SIPp (tests/integration/sipp/pbx_dialog_*.xml), rtcsipd as UAC and as UAS.
 * SIPp exits 0 only when its scenario completed, so each SIPp scenario checks
 * what rtcsipd sent (ACKs, BYEs, headers); the test checks the callbacks.
 *
 * RTCSIPD_VALGRIND=1 (`meson test --setup valgrind`): the program runs itself
 * again under valgrind's memcheck (leaks and invalid accesses fail it). */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_glib.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_protos.h>

#include "sip/pbx.h"
#include "sip/pbx_dialog.h"

#define VALGRIND_EXIT_CODE 99

static su_root_t *root;
static pbx_link *link_;
static uint16_t link_port;
static char *sipp_path;
static char *sipp_dir;  /* the scenarios */
static char *work_dir;  /* filled-in scenarios and SIPp's logs */
static unsigned slowdown = 1;

/* ---- waiting on the GLib main loop, always bounded ---- */

static gboolean wake(gpointer p)
{
  (void)p;
  return G_SOURCE_CONTINUE;
}

#define WAIT_FOR(cond, ms)                                                        \
  ({                                                                              \
    gint64 end_ = g_get_monotonic_time() + (gint64)(ms) * 1000 * slowdown;        \
    guint tick_ = g_timeout_add(20, wake, NULL);                                  \
    while (!(cond) && g_get_monotonic_time() < end_)                              \
      g_main_context_iteration(NULL, TRUE);                                       \
    g_source_remove(tick_);                                                       \
    (bool)(cond);                                                                 \
  })

static void spin(unsigned ms)
{
  gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
  guint tick = g_timeout_add(20, wake, NULL);
  while (g_get_monotonic_time() < end)
    g_main_context_iteration(NULL, TRUE);
  g_source_remove(tick);
}

/* ---- ports ---- */

static uint16_t free_udp_port(void)
{
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof a;

  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof a), ==, 0);
  g_assert_cmpint(getsockname(fd, (struct sockaddr *)&a, &len), ==, 0);
  close(fd);
  return ntohs(a.sin_port);
}

static bool udp_port_bound(uint16_t port)
{
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  bool bound = bind(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno == EADDRINUSE;
  close(fd);
  return bound;
}

/* ---- SIPp ---- */

typedef struct {
  GSubprocess *proc;
  bool exited;
  int status;
  uint16_t port;
  char *name;
  char *message_file;
} sipp_run;

static void on_sipp_exit(GObject *src, GAsyncResult *res, gpointer p)
{
  sipp_run *s = p;
  g_subprocess_wait_finish(G_SUBPROCESS(src), res, NULL);
  s->status = g_subprocess_get_if_exited(G_SUBPROCESS(src))
    ? g_subprocess_get_exit_status(G_SUBPROCESS(src)) : 128;
  s->exited = true;
}

/* Starts SIPp on a free port with SCENARIO, whose @KEY@ placeholders VARS
 * (NULL-terminated key, value pairs) fill in.  REMOTE_PORT: SIPp is a UAC
 * calling 127.0.0.1:REMOTE_PORT; 0: a UAS. */
static sipp_run *sipp_start(const char *scenario, const char *const *vars, uint16_t remote_port)
{
  sipp_run *s = g_new0(sipp_run, 1);
  g_autofree char *src = g_build_filename(sipp_dir, scenario, NULL);
  g_autofree char *xml = NULL;
  g_autoptr(GError) err = NULL;
  g_autoptr(GSubprocessLauncher) l = NULL;
  g_autofree char *file = NULL, *err_file = NULL, *out_file = NULL, *port = NULL;
  g_autofree char *remote = NULL;
  GString *text;

  g_assert_true(g_file_get_contents(src, &xml, NULL, &err));
  text = g_string_new(xml);
  for (const char *const *v = vars; v && v[0]; v += 2) {
    g_autofree char *key = g_strdup_printf("@%s@", v[0]);
    g_string_replace(text, key, v[1], 0);
  }
  g_assert_null(strstr(text->str, "@CONTACT_PORT@")); /* every placeholder given */

  s->port = free_udp_port();
  s->name = g_strdup_printf("%.*s-%u", (int)(strlen(scenario) - 4), scenario, s->port);
  file = g_strdup_printf("%s/%s.xml", work_dir, s->name);
  g_assert_true(g_file_set_contents(file, text->str, -1, NULL));
  g_string_free(text, TRUE);
  s->message_file = g_strdup_printf("%s/%s.messages.log", work_dir, s->name);
  err_file = g_strdup_printf("%s/%s.errors.log", work_dir, s->name);
  out_file = g_strdup_printf("%s/%s.out", work_dir, s->name);
  port = g_strdup_printf("%u", s->port);
  remote = g_strdup_printf("127.0.0.1:%u", remote_port);

  l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_INHERIT);
  g_subprocess_launcher_set_cwd(l, work_dir);
  g_subprocess_launcher_set_stdout_file_path(l, out_file);
  g_subprocess_launcher_set_stderr_file_path(l, out_file);
  s->proc = g_subprocess_launcher_spawn(l, &err, sipp_path, "-sf", file, "-i", "127.0.0.1",
                                        "-p", port, "-t", "u1", "-m", "1", "-nostdin",
                                        "-trace_msg", "-message_file", s->message_file,
                                        "-trace_err", "-error_file", err_file,
                                        "-timeout", "20s", "-timeout_error",
                                        remote_port ? remote : NULL, NULL);
  g_assert_no_error(err);
  g_subprocess_wait_async(s->proc, NULL, on_sipp_exit, s);
  g_assert_true(WAIT_FOR(udp_port_bound(s->port) || s->exited, 5000));
  return s;
}

/* Waits for SIPp to end (it must complete its scenario: exit 0). */
static void sipp_finish(sipp_run *s)
{
  if (!WAIT_FOR(s->exited, 25000)) {
    g_subprocess_force_exit(s->proc);
    WAIT_FOR(s->exited, 2000);
    g_test_message("%s: SIPp did not end", s->name);
  }
  if (s->status != 0) {
    g_autofree char *out_file = g_strdup_printf("%s/%s.out", work_dir, s->name);
    g_autofree char *out = NULL;
    g_file_get_contents(out_file, &out, NULL, NULL);
    g_test_message("%s: SIPp exit %d; logs in %s\n%s", s->name, s->status, work_dir,
                   out ? out : "");
  }
  g_assert_cmpint(s->status, ==, 0);
}

static void sipp_free(sipp_run *s)
{
  g_object_unref(s->proc);
  g_free(s->name);
  g_free(s->message_file);
  g_free(s);
}

/* ---- the dialog's owner ---- */

typedef struct {
  pbx_dialog *d;
  int statuses[8];
  unsigned n_statuses;
  bool response_missing; /* a final came with response NULL */
  unsigned cancels, acks, requests, ack_timeouts;
  sip_method_t last_method;
  int bye_status;
  bool respond_487_in_cancel;
  bool ack_in_response;  /* pbx_dialog_ack() from inside on_invite_response (2xx) */
  bool free_in_request, free_in_bye_response;
  pbx_server_tx *tx;     /* from pbx_callbacks.on_request */
  /* issue 4 */
  unsigned offers, offer_responses, expirations, ack_sdps;
  pbx_dialog_rq *rq;     /* the PBX's offer, to answer */
  char *offer_sdp;       /* its body */
  int offer_status;      /* from on_offer_response */
  bool offer_response_missing;
  char why[64];          /* from on_session_expired */
  bool bye_on_expiry;
  bool glare_491;        /* on_offer answers 491 while our offer is pending */
  unsigned glares;
} owner;

static owner *current; /* where pbx_link's on_request puts new INVITEs */

static void on_invite_response(void *user, int status, msg_t *response)
{
  owner *o = user;
  if (o->n_statuses < G_N_ELEMENTS(o->statuses))
    o->statuses[o->n_statuses++] = status;
  if (status >= 200 && !response)
    o->response_missing = true;
  if (o->ack_in_response && status >= 200 && status < 300)
    g_assert_cmpint(pbx_dialog_ack(o->d), ==, 0);
}

static void on_cancel(void *user)
{
  owner *o = user;
  o->cancels++;
  if (o->respond_487_in_cancel)
    g_assert_cmpint(pbx_dialog_respond(o->d, 487, NULL, NULL), ==, 0);
}

static int on_request(void *user, msg_t *request)
{
  owner *o = user;
  sip_t *sip = sip_object(request);
  o->requests++;
  o->last_method = sip->sip_request->rq_method;
  if (o->free_in_request) {
    pbx_dialog_free(o->d);
    o->d = NULL;
  }
  return o->last_method == sip_method_bye ? 200 : 405;
}

static void on_ack(void *user)
{
  ((owner *)user)->acks++;
}

static void on_bye_response(void *user, int status)
{
  owner *o = user;
  o->bye_status = status;
  if (o->free_in_bye_response) {
    pbx_dialog_free(o->d);
    o->d = NULL;
  }
}

static void on_ack_timeout(void *user)
{
  ((owner *)user)->ack_timeouts++;
}

static void on_offer(void *user, pbx_dialog_rq *rq, msg_t *request)
{
  owner *o = user;
  sip_t *sip = sip_object(request);

  o->offers++;
  if (o->glare_491 && pbx_dialog_offer_pending(o->d)) {
    o->glares++;
    g_assert_cmpint(pbx_dialog_answer_offer(o->d, rq, 491, NULL, NULL), ==, 0);
    return;
  }
  o->rq = rq; /* answered later by the test */
  g_free(o->offer_sdp);
  o->offer_sdp = sip->sip_payload ? g_strndup(sip->sip_payload->pl_data, sip->sip_payload->pl_len)
                                  : NULL;
}

static void on_offer_response(void *user, int status, msg_t *response)
{
  owner *o = user;

  o->offer_responses++;
  o->offer_status = status;
  o->offer_response_missing = !response;
}

static void on_session_expired(void *user, const char *why)
{
  owner *o = user;

  o->expirations++;
  g_strlcpy(o->why, why, sizeof o->why);
  if (o->bye_on_expiry)
    g_assert_cmpint(pbx_dialog_bye(o->d), ==, 0);
}

static void on_ack_sdp(void *user, msg_t *ack)
{
  (void)ack;
  ((owner *)user)->ack_sdps++;
}

static const pbx_dialog_callbacks dialog_cb = {
  .on_offer = on_offer,
  .on_offer_response = on_offer_response,
  .on_session_expired = on_session_expired,
  .on_ack_sdp = on_ack_sdp,
  .on_invite_response = on_invite_response,
  .on_cancel = on_cancel,
  .on_request = on_request,
  .on_ack = on_ack,
  .on_bye_response = on_bye_response,
  .on_ack_timeout = on_ack_timeout,
};

static void on_link_request(void *user, pbx_server_tx *tx, msg_t *msg)
{
  (void)user;
  (void)msg;
  if (!current || current->tx) {
    pbx_server_tx_reply(tx, 486, NULL);
    return;
  }
  current->tx = tx;
}

/* ---- UAC cases ---- */

static const char offer[] = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                            "t=0 0\r\nm=audio 7000 RTP/AVP 0\r\n";

typedef struct {
  su_home_t home[1];
  sip_from_t *from;
  sip_to_t *to;
  msg_t *credentials;
  char call_id[64];
  pbx_invite_params p;
} invite_setup;

static void invite_setup_init(invite_setup *s, uint32_t cseq)
{
  static const char browser_invite[] =
    "INVITE sip:1000@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bK776asdhds\r\n"
    "From: <sip:alice@example.com>;tag=browser1\r\n"
    "To: <sip:1000@example.com>\r\n"
    "Call-ID: browser-call-1\r\n"
    "CSeq: 2 INVITE\r\n"
    "Proxy-Authorization: Digest username=\"alice\", realm=\"pbx\", nonce=\"n0nce\", "
    "uri=\"sip:1000@example.com\", response=\"0123456789abcdef0123456789abcdef\"\r\n"
    "Content-Length: 0\r\n\r\n";

  su_home_init(s->home);
  s->from = sip_from_make(s->home, "<sip:alice@example.com>;tag=rtcFromTag42");
  s->to = sip_to_make(s->home, "<sip:1000@example.com>");
  s->credentials = msg_make(sip_default_mclass(), 0, browser_invite, sizeof browser_invite - 1);
  g_assert_nonnull(s->credentials);
  g_assert_false(msg_has_error(s->credentials));
  g_snprintf(s->call_id, sizeof s->call_id, "pbxdlg-%08x@rtcsipd", g_random_int());
  s->p = (pbx_invite_params){
    .request_uri = "sip:1000@example.com",
    .from = s->from,
    .to = s->to,
    .call_id = s->call_id,
    .cseq = cseq,
    .contact_user = "alice",
    .sdp = offer,
    .credentials_from = s->credentials,
  };
}

static void invite_setup_deinit(invite_setup *s)
{
  msg_destroy(s->credentials);
  su_home_deinit(s->home);
}

static sipp_run *start_uas_sipp(const char *scenario, invite_setup *s)
{
  g_autofree char *cseq = g_strdup_printf("%u", s->p.cseq);
  g_autofree char *bye_cseq = g_strdup_printf("%u", s->p.cseq + 1);
  g_autofree char *cseq3 = g_strdup_printf("%u", s->p.cseq + 2);
  g_autofree char *contact_port = g_strdup_printf("%u", link_port);
  g_autofree char *call_id = g_regex_escape_string(s->call_id, -1);
  const char *vars[] = { "CSEQ", cseq, "BYE_CSEQ", bye_cseq, "CSEQ2", bye_cseq, "CSEQ3", cseq3,
                         "CALL_ID", call_id,
                         "FROM_TAG", "rtcFromTag42", "CONTACT_PORT", contact_port, NULL };
  sipp_run *run = sipp_start(scenario, vars, 0);

  g_assert_cmpint(pbx_link_set_target(link_, "127.0.0.1", run->port, SIP_TRANSPORT_UDP), ==, 0);
  return run;
}

/* 1: INVITE, 100/180/200, ACK, BYE from rtcsipd */
static void test_uac_answer_bye(void)
{
  owner o = { 0 };
  invite_setup s;
  sipp_run *run;

  invite_setup_init(&s, 4711);
  run = start_uas_sipp("pbx_dialog_uac_answer.xml", &s);
  g_assert_cmpint(pbx_dialog_invite(link_, &s.p, &dialog_cb, &o, &o.d), ==, 0);
  g_assert_cmpstr(pbx_dialog_call_id(o.d), ==, s.call_id);
  g_assert_false(pbx_dialog_confirmed(o.d));
  g_assert_true(WAIT_FOR(o.n_statuses >= 2, 5000));
  g_assert_cmpint(o.statuses[0], ==, 180);
  g_assert_cmpint(o.statuses[1], ==, 200);
  g_assert_false(o.response_missing);
  g_assert_true(pbx_dialog_confirmed(o.d));
  g_assert_cmpint(pbx_dialog_cancel(o.d), ==, -EALREADY);
  g_assert_cmpint(pbx_dialog_ack(o.d), ==, 0);
  g_assert_cmpint(pbx_dialog_bye(o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.bye_status != 0, 5000));
  g_assert_cmpint(o.bye_status, ==, 200);
  sipp_finish(run);
  g_assert_cmpint(o.n_statuses, ==, 2); /* SIPp's retransmitted 200s are not reported */
  pbx_dialog_free(o.d);
  sipp_free(run);
  invite_setup_deinit(&s);
}

/* 2: 486, ACKed by nta */
static void test_uac_busy(void)
{
  owner o = { 0 };
  invite_setup s;
  sipp_run *run;

  invite_setup_init(&s, 0);
  run = start_uas_sipp("pbx_dialog_uac_busy.xml", &s);
  g_assert_cmpint(pbx_dialog_invite(link_, &s.p, &dialog_cb, &o, &o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.n_statuses >= 1, 5000));
  g_assert_cmpint(o.statuses[0], ==, 486);
  g_assert_false(o.response_missing);
  g_assert_false(pbx_dialog_confirmed(o.d));
  g_assert_cmpint(pbx_dialog_ack(o.d), ==, -EINVAL);
  g_assert_cmpint(pbx_dialog_bye(o.d), ==, -EINVAL);
  sipp_finish(run);
  g_assert_cmpint(o.n_statuses, ==, 1);
  pbx_dialog_free(o.d);
  sipp_free(run);
  invite_setup_deinit(&s);
}

/* 3: 180, CANCEL from rtcsipd, 487 */
static void test_uac_cancel(void)
{
  owner o = { 0 };
  invite_setup s;
  sipp_run *run;

  invite_setup_init(&s, 100);
  run = start_uas_sipp("pbx_dialog_uac_cancel.xml", &s);
  g_assert_cmpint(pbx_dialog_invite(link_, &s.p, &dialog_cb, &o, &o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.n_statuses >= 1, 5000));
  g_assert_cmpint(o.statuses[0], ==, 180);
  g_assert_cmpint(pbx_dialog_cancel(o.d), ==, 0);
  g_assert_cmpint(pbx_dialog_cancel(o.d), ==, -EALREADY);
  g_assert_true(WAIT_FOR(o.n_statuses >= 2, 5000));
  g_assert_cmpint(o.statuses[1], ==, 487);
  sipp_finish(run);
  pbx_dialog_free(o.d);
  sipp_free(run);
  invite_setup_deinit(&s);
}

/* 4: 200, ACK, BYE from the PBX; the owner frees the dialog inside on_request */
static void test_uac_bye_from_pbx(void)
{
  owner o = { .free_in_request = true };
  invite_setup s;
  sipp_run *run;

  invite_setup_init(&s, 7);
  run = start_uas_sipp("pbx_dialog_uac_sipp_bye.xml", &s);
  g_assert_cmpint(pbx_dialog_invite(link_, &s.p, &dialog_cb, &o, &o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.n_statuses >= 1, 5000));
  g_assert_cmpint(o.statuses[0], ==, 200);
  g_assert_cmpint(pbx_dialog_ack(o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.requests >= 1, 5000));
  g_assert_cmpint(o.last_method, ==, sip_method_bye);
  g_assert_null(o.d); /* freed inside on_request, the 200 still went */
  sipp_finish(run);
  sipp_free(run);
  invite_setup_deinit(&s);
}

/* the 200 again (our ACK lost): ACKed again; a 200 from another fork: ACKed
 * and BYEd quietly; neither is reported */
static void test_uac_retransmission_and_fork(void)
{
  owner o = { .ack_in_response = true };
  invite_setup s;
  sipp_run *run;

  invite_setup_init(&s, 300);
  run = start_uas_sipp("pbx_dialog_uac_fork.xml", &s);
  g_assert_cmpint(pbx_dialog_invite(link_, &s.p, &dialog_cb, &o, &o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.n_statuses >= 1, 5000));
  g_assert_cmpint(o.statuses[0], ==, 200);
  sipp_finish(run);
  g_assert_cmpint(o.n_statuses, ==, 1);
  g_assert_cmpint(o.requests, ==, 0);
  pbx_dialog_free(o.d);
  sipp_free(run);
  invite_setup_deinit(&s);
}

/* 408 made here: nobody answers (a port nobody listens on, which over UDP on
 * loopback gives ICMP unreachable: 503, or silence: 408) */
static void test_uac_no_answer(void)
{
  owner o = { 0 };
  invite_setup s;

  invite_setup_init(&s, 1);
  g_assert_cmpint(pbx_link_set_target(link_, "127.0.0.1", free_udp_port(), SIP_TRANSPORT_UDP), ==, 0);
  g_assert_cmpint(pbx_dialog_invite(link_, &s.p, &dialog_cb, &o, &o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.n_statuses >= 1, 40000));
  g_assert_true(o.statuses[0] == 503 || o.statuses[0] == 408);
  g_assert_true(o.response_missing);
  pbx_dialog_free(o.d);
  invite_setup_deinit(&s);
}

/* ---- UAS cases ---- */

static sipp_run *start_uac_sipp(const char *scenario, owner *o)
{
  g_autofree char *contact_port = g_strdup_printf("%u", link_port);
  const char *vars[] = { "CONTACT_PORT", contact_port, NULL };
  sipp_run *run = sipp_start(scenario, vars, link_port);

  /* in-dialog requests go to the configured PBX, which SIPp plays */
  g_assert_cmpint(pbx_link_set_target(link_, "127.0.0.1", run->port, SIP_TRANSPORT_UDP), ==, 0);
  current = o;
  g_assert_true(WAIT_FOR(o->tx != NULL, 5000));
  current = NULL;
  g_assert_cmpint(pbx_dialog_accept(link_, o->tx, &dialog_cb, o, &o->d), ==, 0);
  o->tx = NULL;
  g_assert_nonnull(pbx_dialog_invite_request(o->d));
  g_assert_nonnull(sip_object(pbx_dialog_invite_request(o->d))->sip_payload);
  return run;
}

/* 5: 180, 200, ACK, BYE from the PBX */
static void test_uas_answer(void)
{
  owner o = { 0 };
  sipp_run *run = start_uac_sipp("pbx_dialog_uas_answer.xml", &o);

  g_assert_cmpint(pbx_dialog_bye(o.d), ==, -EINVAL);
  g_assert_cmpint(pbx_dialog_respond(o.d, 200, NULL, NULL), ==, -EINVAL); /* no SDP */
  g_assert_cmpint(pbx_dialog_respond(o.d, 180, NULL, NULL), ==, 0);
  g_assert_cmpint(pbx_dialog_respond(o.d, 200, NULL, offer), ==, 0);
  g_assert_true(pbx_dialog_confirmed(o.d));
  g_assert_cmpint(pbx_dialog_respond(o.d, 486, NULL, NULL), ==, -EALREADY);
  g_assert_true(WAIT_FOR(o.acks >= 1, 5000));
  g_assert_true(WAIT_FOR(o.requests >= 1, 5000));
  g_assert_cmpint(o.last_method, ==, sip_method_bye);
  sipp_finish(run);
  g_assert_cmpint(o.acks, ==, 1);
  g_assert_cmpint(o.cancels, ==, 0);
  pbx_dialog_free(o.d);
  sipp_free(run);
}

/* 6: 180, CANCEL from the PBX, 487 from inside on_cancel */
static void test_uas_cancel(void)
{
  owner o = { .respond_487_in_cancel = true };
  sipp_run *run = start_uac_sipp("pbx_dialog_uas_cancel.xml", &o);

  g_assert_cmpint(pbx_dialog_respond(o.d, 180, "Ringing", NULL), ==, 0);
  g_assert_true(WAIT_FOR(o.cancels >= 1, 5000));
  g_assert_cmpint(pbx_dialog_respond(o.d, 487, NULL, NULL), ==, 0); /* again: harmless */
  g_assert_cmpint(pbx_dialog_respond(o.d, 200, NULL, offer), ==, -EALREADY);
  sipp_finish(run);
  g_assert_false(pbx_dialog_confirmed(o.d));
  g_assert_cmpint(o.acks, ==, 0); /* the ACK of the 487 is nta's */
  pbx_dialog_free(o.d);
  sipp_free(run);
}

/* 6b: CANCEL, the owner does not answer: nta answers 487 */
static void test_uas_cancel_nta_487(void)
{
  owner o = { 0 };
  sipp_run *run = start_uac_sipp("pbx_dialog_uas_cancel.xml", &o);

  g_assert_cmpint(pbx_dialog_respond(o.d, 180, NULL, NULL), ==, 0);
  g_assert_true(WAIT_FOR(o.cancels >= 1, 5000));
  g_assert_cmpint(pbx_dialog_respond(o.d, 487, NULL, NULL), ==, 0);
  sipp_finish(run);
  pbx_dialog_free(o.d);
  sipp_free(run);
}

/* 7: 200, ACK, BYE from rtcsipd; the owner frees inside on_bye_response */
static void test_uas_bye_from_rtcsipd(void)
{
  owner o = { .free_in_bye_response = true };
  sipp_run *run = start_uac_sipp("pbx_dialog_uas_rtcsipd_bye.xml", &o);

  g_assert_cmpint(pbx_dialog_respond(o.d, 180, NULL, NULL), ==, 0);
  g_assert_cmpint(pbx_dialog_respond(o.d, 200, "OK", offer), ==, 0);
  g_assert_true(WAIT_FOR(o.acks >= 1, 5000));
  g_assert_cmpint(pbx_dialog_bye(o.d), ==, 0);
  g_assert_cmpint(pbx_dialog_bye(o.d), ==, -EALREADY);
  g_assert_true(WAIT_FOR(o.bye_status != 0, 5000));
  g_assert_cmpint(o.bye_status, ==, 200);
  g_assert_null(o.d);
  sipp_finish(run);
  sipp_free(run);
}

/* the 200 responses to the INVITE that SIPp received, retransmissions included */
static unsigned count_received_200(const char *message_file)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) blocks = NULL;
  unsigned n = 0;

  g_assert_true(g_file_get_contents(message_file, &text, NULL, NULL));
  blocks = g_strsplit(text, "-----------------------------------------------", -1);
  for (char **b = blocks; *b; b++)
    if (strstr(*b, "message received") && strstr(*b, "SIP/2.0 200 OK") &&
        strstr(*b, "CSeq: 1 INVITE"))
      n++;
  return n;
}

/* 8: SIPp does not ACK the first 200: rtcsipd retransmits it until the ACK */
static void test_uas_2xx_retransmission(void)
{
  owner o = { 0 };
  sipp_run *run = start_uac_sipp("pbx_dialog_uas_retransmit.xml", &o);
  gint64 answered;
  unsigned received;

  g_assert_cmpint(pbx_dialog_respond(o.d, 200, NULL, offer), ==, 0);
  answered = g_get_monotonic_time();
  g_assert_true(WAIT_FOR(o.acks >= 1, 5000));
  g_assert_cmpint(g_get_monotonic_time() - answered, >=, 1500 * 1000);
  g_assert_true(WAIT_FOR(o.requests >= 1, 5000));
  sipp_finish(run);
  received = count_received_200(run->message_file);
  g_test_message("SIPp received the 200 %u times before its ACK (1.8 s)", received);
  g_assert_cmpuint(received, >=, 3); /* at 0, 0.5, 1.5 s */
  g_assert_cmpuint(received, <=, 4);
  g_assert_cmpint(o.ack_timeouts, ==, 0);
  pbx_dialog_free(o.d);
  sipp_free(run);
}

/* ---- issue 4: session timers, offers in the dialog, 100rel ---- */

static const char hold_answer[] = "v=0\r\no=- 2 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                                  "t=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=recvonly\r\n";
static const char hold_offer[] = "v=0\r\no=- 2 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                                 "t=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=sendonly\r\n";

/* 422 Min-SE: 120 absorbed (the INVITE again with Session-Expires 120),
 * then 200 with Session-Expires: 4;refresher=uac: rtcsipd refreshes with
 * UPDATE at 2 s and 4 s */
static void test_uac_422_and_refresh(void)
{
  owner o = { 0 };
  invite_setup s;
  sipp_run *run;
  gint64 answered;

  invite_setup_init(&s, 500);
  s.p.session_expires = 90;
  s.p.min_se = 90;
  run = start_uas_sipp("pbx_dialog_uac_timer.xml", &s);
  g_assert_cmpint(pbx_dialog_invite(link_, &s.p, &dialog_cb, &o, &o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.n_statuses >= 1, 5000));
  g_assert_cmpint(o.statuses[0], ==, 200); /* never the 422 */
  answered = g_get_monotonic_time();
  g_assert_cmpint(pbx_dialog_ack(o.d), ==, 0);
  spin(4700); /* refreshes at 2 s and 4 s */
  g_assert_cmpint(o.expirations, ==, 0);
  g_assert_cmpint(pbx_dialog_bye(o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.bye_status != 0, 5000));
  sipp_finish(run);
  g_test_message("two refreshes within %.1f s", (g_get_monotonic_time() - answered) / 1e6);
  g_assert_cmpint(o.n_statuses, ==, 1);
  pbx_dialog_free(o.d);
  sipp_free(run);
  invite_setup_deinit(&s);
}

/* Session-Expires: 4;refresher=uas and no refresh from SIPp: expired after
 * 3 s; the owner sends BYE from inside on_session_expired */
static void test_uac_session_expires(void)
{
  owner o = { .bye_on_expiry = true };
  invite_setup s;
  sipp_run *run;
  gint64 answered;
  double took;

  invite_setup_init(&s, 600);
  s.p.session_expires = 90;
  run = start_uas_sipp("pbx_dialog_uac_timer_expire.xml", &s);
  g_assert_cmpint(pbx_dialog_invite(link_, &s.p, &dialog_cb, &o, &o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.n_statuses >= 1, 5000));
  g_assert_cmpint(o.statuses[0], ==, 200);
  answered = g_get_monotonic_time();
  g_assert_cmpint(pbx_dialog_ack(o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.expirations >= 1, 6000));
  took = (g_get_monotonic_time() - answered) / 1e6;
  g_test_message("expired after %.1f s: %s", took, o.why);
  g_assert_cmpfloat(took, >=, 2.5);
  g_assert_cmpfloat(took, <=, 4.0 * slowdown);
  g_assert_cmpstr(o.why, ==, "no refresh from the PBX");
  g_assert_true(WAIT_FOR(o.bye_status != 0, 5000));
  sipp_finish(run);
  g_assert_cmpint(o.expirations, ==, 1);
  pbx_dialog_free(o.d);
  sipp_free(run);
  invite_setup_deinit(&s);
}

/* hold from the PBX: re-INVITE a=sendonly (new o= version) to the owner,
 * answered later; then a re-INVITE with the same version answered here */
static void test_uac_reinvite_from_pbx(void)
{
  owner o = { 0 };
  invite_setup s;
  sipp_run *run;

  invite_setup_init(&s, 700);
  run = start_uas_sipp("pbx_dialog_uac_reinvite.xml", &s);
  g_assert_cmpint(pbx_dialog_invite(link_, &s.p, &dialog_cb, &o, &o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.n_statuses >= 1, 5000));
  g_assert_cmpint(pbx_dialog_ack(o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.offers >= 1, 5000));
  g_assert_nonnull(o.offer_sdp);
  g_assert_nonnull(strstr(o.offer_sdp, "a=sendonly"));
  g_assert_false(pbx_dialog_offer_pending(o.d));
  spin(100); /* answered later, not from inside on_offer */
  g_assert_cmpint(pbx_dialog_answer_offer(o.d, o.rq, 200, NULL, NULL), ==, -EINVAL); /* no SDP */
  g_assert_cmpint(pbx_dialog_answer_offer(o.d, o.rq, 200, NULL, hold_answer), ==, 0);
  g_assert_cmpint(pbx_dialog_answer_offer(o.d, o.rq, 200, NULL, hold_answer), ==, -EINVAL); /* gone */
  o.rq = NULL;
  g_assert_true(WAIT_FOR(o.requests >= 1, 8000)); /* the BYE */
  g_assert_cmpint(o.last_method, ==, sip_method_bye);
  sipp_finish(run);
  g_assert_cmpint(o.offers, ==, 1); /* the refresh was not the owner's */
  g_assert_cmpint(o.ack_sdps, ==, 0);
  g_free(o.offer_sdp);
  pbx_dialog_free(o.d);
  sipp_free(run);
  invite_setup_deinit(&s);
}

/* rtcsipd's offer: 491, again after 2.1-4 s, 200, ACK */
static void test_uac_offer_491(void)
{
  owner o = { 0 };
  invite_setup s;
  sipp_run *run;
  gint64 sent;

  invite_setup_init(&s, 800);
  run = start_uas_sipp("pbx_dialog_uac_offer491.xml", &s);
  g_assert_cmpint(pbx_dialog_invite(link_, &s.p, &dialog_cb, &o, &o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.n_statuses >= 1, 5000));
  g_assert_cmpint(pbx_dialog_ack(o.d), ==, 0);
  g_assert_cmpint(pbx_dialog_send_offer(o.d, hold_offer), ==, 0);
  sent = g_get_monotonic_time();
  g_assert_true(pbx_dialog_offer_pending(o.d));
  g_assert_cmpint(pbx_dialog_send_offer(o.d, hold_offer), ==, -EBUSY);
  g_assert_true(WAIT_FOR(o.offer_responses >= 1, 8000));
  g_test_message("answered after %.1f s", (g_get_monotonic_time() - sent) / 1e6);
  g_assert_cmpint(g_get_monotonic_time() - sent, >=, 2000 * 1000);
  g_assert_cmpint(o.offer_status, ==, 200);
  g_assert_false(o.offer_response_missing);
  g_assert_false(pbx_dialog_offer_pending(o.d));
  g_assert_cmpint(pbx_dialog_bye(o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.bye_status != 0, 5000));
  sipp_finish(run);
  g_assert_cmpint(o.offer_responses, ==, 1);
  pbx_dialog_free(o.d);
  sipp_free(run);
  invite_setup_deinit(&s);
}

/* 183 with Require: 100rel, RSeq: 1 and SDP (twice): one PRACK, one report;
 * then an INFO from rtcsipd (pbx_dialog_send_request) */
static void test_uac_prack(void)
{
  owner o = { .ack_in_response = true };
  invite_setup s;
  sipp_run *run;

  invite_setup_init(&s, 900);
  run = start_uas_sipp("pbx_dialog_uac_prack.xml", &s);
  g_assert_cmpint(pbx_dialog_invite(link_, &s.p, &dialog_cb, &o, &o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.n_statuses >= 2, 5000));
  g_assert_cmpint(o.statuses[0], ==, 183);
  g_assert_cmpint(o.statuses[1], ==, 200);
  g_assert_cmpint(pbx_dialog_send_request(o.d, "INVITE", NULL, NULL, NULL), ==, -EINVAL);
  g_assert_cmpint(pbx_dialog_send_request(o.d, "INFO", "application/dtmf-relay",
                                          "Signal=5\r\nDuration=100\r\n", NULL), ==, 0);
  spin(200);
  g_assert_cmpint(pbx_dialog_bye(o.d), ==, 0);
  g_assert_true(WAIT_FOR(o.bye_status != 0, 5000));
  sipp_finish(run);
  g_assert_cmpint(o.n_statuses, ==, 2); /* the 183 once */
  pbx_dialog_free(o.d);
  sipp_free(run);
  invite_setup_deinit(&s);
}

/* UAS: the PBX's INVITE has Session-Expires: 90: the 200 says
 * 90;refresher=uac and Require: timer; its UPDATE refresh is answered here */
static void test_uas_session_timer(void)
{
  owner o = { 0 };
  sipp_run *run = start_uac_sipp("pbx_dialog_uas_timer.xml", &o);

  g_assert_cmpint(pbx_dialog_respond(o.d, 200, NULL, offer), ==, 0);
  g_assert_true(WAIT_FOR(o.acks >= 1, 5000));
  g_assert_true(WAIT_FOR(o.requests >= 1, 5000)); /* the BYE */
  g_assert_cmpint(o.last_method, ==, sip_method_bye);
  sipp_finish(run);
  g_assert_cmpint(o.offers, ==, 0);
  g_assert_cmpint(o.expirations, ==, 0);
  pbx_dialog_free(o.d);
  sipp_free(run);
}

/* UAS: a re-INVITE without SDP: rtcsipd's offer in the 200, the answer in
 * the ACK (on_ack_sdp); then glare: rtcsipd's re-INVITE is pending when
 * the PBX's comes, answered 491 from inside on_offer */
static void test_uas_reinvite_glare(void)
{
  static const char resume_offer[] = "v=0\r\no=- 2 4 IN IP4 127.0.0.1\r\ns=-\r\n"
                                     "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"
                                     "a=sendrecv\r\n";
  owner o = { .glare_491 = true };
  sipp_run *run = start_uac_sipp("pbx_dialog_uas_reinvite.xml", &o);

  g_assert_cmpint(pbx_dialog_respond(o.d, 200, NULL, offer), ==, 0);
  g_assert_true(WAIT_FOR(o.acks >= 1, 5000));
  g_assert_true(WAIT_FOR(o.offers >= 1, 5000));
  g_assert_null(o.offer_sdp); /* a re-INVITE without SDP */
  g_assert_cmpint(pbx_dialog_answer_offer(o.d, o.rq, 200, NULL, resume_offer), ==, 0);
  o.rq = NULL;
  g_assert_true(WAIT_FOR(o.ack_sdps >= 1, 5000));
  g_assert_cmpint(pbx_dialog_send_offer(o.d, hold_offer), ==, 0);
  g_assert_true(WAIT_FOR(o.offer_responses >= 1, 5000));
  g_assert_cmpint(o.offer_status, ==, 200);
  g_assert_cmpint(o.glares, ==, 1);
  g_assert_true(WAIT_FOR(o.requests >= 1, 5000)); /* the BYE */
  g_assert_cmpint(o.last_method, ==, sip_method_bye);
  sipp_finish(run);
  g_assert_cmpint(o.offers, ==, 2);
  g_assert_cmpint(o.ack_sdps, ==, 1);
  g_free(o.offer_sdp);
  pbx_dialog_free(o.d);
  sipp_free(run);
}

/* ---- setup ---- */

static int run_under_valgrind(int argc, char **argv)
{
  g_autofree char *supp = g_build_filename(sipp_dir, "..", "..", "valgrind.supp", NULL);
  g_autoptr(GPtrArray) args = g_ptr_array_new();
  const char *valgrind = g_getenv("VALGRIND") ? g_getenv("VALGRIND") : "valgrind";
  g_autoptr(GError) err = NULL;
  int status = 1;

  g_ptr_array_add(args, (char *)valgrind);
  g_ptr_array_add(args, g_strdup_printf("--error-exitcode=%d", VALGRIND_EXIT_CODE));
  g_ptr_array_add(args, "--leak-check=full");
  g_ptr_array_add(args, "--show-leak-kinds=definite,indirect");
  g_ptr_array_add(args, "--errors-for-leak-kinds=definite,indirect");
  g_ptr_array_add(args, "--num-callers=40");
  g_ptr_array_add(args, "--log-fd=2");
  g_ptr_array_add(args, g_strdup_printf("--suppressions=%s", supp));
  for (int i = 0; i < argc; i++)
    g_ptr_array_add(args, argv[i]);
  g_ptr_array_add(args, NULL);
  g_setenv("PBX_DIALOG_UNDER_VALGRIND", "1", TRUE);
  g_setenv("G_SLICE", "always-malloc", TRUE);
  if (!g_spawn_sync(NULL, (char **)args->pdata, NULL,
                    G_SPAWN_SEARCH_PATH | G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, NULL, NULL,
                    &status, &err)) {
    printf("Bail out! cannot run valgrind: %s\n", err->message);
    return 1;
  }
  return g_spawn_check_wait_status(status, NULL) ? 0 : (WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

static char *find_sipp_dir(void)
{
  g_autofree char *dir = g_path_get_dirname(__FILE__);
  g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
  g_autofree char *exe_dir = exe ? g_path_get_dirname(exe) : g_get_current_dir();
  g_autofree char *build_root = g_build_filename(exe_dir, "..", "..", NULL);
  char *found = g_path_is_absolute(dir) ? g_build_filename(dir, "sipp", NULL)
                                        : g_build_filename(build_root, dir, "sipp", NULL);
  return found;
}

int main(int argc, char **argv)
{
  pbx_settings settings = {
    .listen_host = "127.0.0.1",
    .pbx_host = "127.0.0.1",
    .pbx_port = 9, /* set per case */
    .pbx_transport = SIP_TRANSPORT_UDP,
  };
  const pbx_callbacks link_cb = { on_link_request };
  int r;

  sipp_dir = find_sipp_dir();
  if (g_strcmp0(g_getenv("RTCSIPD_VALGRIND"), "1") == 0 && !g_getenv("PBX_DIALOG_UNDER_VALGRIND")) {
    r = run_under_valgrind(argc, argv);
    g_free(sipp_dir);
    return r;
  }
  if (g_getenv("PBX_DIALOG_UNDER_VALGRIND"))
    slowdown = 4;

  g_test_init(&argc, &argv, NULL);
  sipp_path = g_strdup(g_getenv("SIPP"));
  if (!sipp_path)
    sipp_path = g_find_program_in_path("sipp");
  if (!sipp_path) {
    /* not a skip: "all passed" must mean the dialogs ran */
    printf("Bail out! sipp not found (set SIPP or install sip-tester)\n");
    return 1;
  }
  work_dir = g_dir_make_tmp("test_pbx_dialog-XXXXXX", NULL);
  g_assert_nonnull(work_dir);

  g_setenv("SU_DEBUG", "0", FALSE);
  su_init();
  root = su_glib_root_create(NULL);
  g_assert_nonnull(root);
  g_source_attach(su_glib_root_gsource(root), NULL);

  link_port = free_udp_port();
  settings.listen_port = link_port;
  g_assert_cmpint(pbx_link_new(root, &settings, &link_cb, NULL, &link_), ==, 0);

  g_test_add_func("/pbx_dialog/uac/answer-ack-bye", test_uac_answer_bye);
  g_test_add_func("/pbx_dialog/uac/busy", test_uac_busy);
  g_test_add_func("/pbx_dialog/uac/cancel", test_uac_cancel);
  g_test_add_func("/pbx_dialog/uac/bye-from-pbx", test_uac_bye_from_pbx);
  g_test_add_func("/pbx_dialog/uac/2xx-retransmission-and-fork", test_uac_retransmission_and_fork);
  g_test_add_func("/pbx_dialog/uac/no-answer", test_uac_no_answer);
  g_test_add_func("/pbx_dialog/uas/answer-bye-from-pbx", test_uas_answer);
  g_test_add_func("/pbx_dialog/uas/cancel", test_uas_cancel);
  g_test_add_func("/pbx_dialog/uas/cancel-nta-487", test_uas_cancel_nta_487);
  g_test_add_func("/pbx_dialog/uas/bye-from-rtcsipd", test_uas_bye_from_rtcsipd);
  g_test_add_func("/pbx_dialog/uas/2xx-retransmission", test_uas_2xx_retransmission);
  g_test_add_func("/pbx_dialog/uac/422-and-refresh", test_uac_422_and_refresh);
  g_test_add_func("/pbx_dialog/uac/session-expires", test_uac_session_expires);
  g_test_add_func("/pbx_dialog/uac/reinvite-from-pbx", test_uac_reinvite_from_pbx);
  g_test_add_func("/pbx_dialog/uac/offer-491", test_uac_offer_491);
  g_test_add_func("/pbx_dialog/uac/prack", test_uac_prack);
  g_test_add_func("/pbx_dialog/uas/session-timer", test_uas_session_timer);
  g_test_add_func("/pbx_dialog/uas/reinvite-glare", test_uas_reinvite_glare);
  r = g_test_run();

  pbx_link_free(link_);
  spin(50);
  su_root_destroy(root);
  su_deinit();
  if (r == 0) {
    /* keep SIPp's logs only when something failed */
    g_autoptr(GDir) dir = g_dir_open(work_dir, 0, NULL);
    const char *name;
    while (dir && (name = g_dir_read_name(dir))) {
      g_autofree char *path = g_build_filename(work_dir, name, NULL);
      g_unlink(path);
    }
    g_rmdir(work_dir);
  }
  g_free(work_dir);
  g_free(sipp_path);
  g_free(sipp_dir);
  return r;
}
