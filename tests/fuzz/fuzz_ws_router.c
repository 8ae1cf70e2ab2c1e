/* Fuzz target: SIP over WebSocket through the router (gateway/router.c) --
 * parse (sip/sipmsg.c), rewrite (sip/rewrite.c), answer -- and what follows
 * from it: registrations (gateway/bindings.c), echo calls (gateway/echo.c),
 * calls through the PBX (gateway/call.c, call_fsm.c, browser_dialog.c,
 * sip/pbx_dialog*.c, sip/sdp_translate.c).
 *
 * The router runs as in the daemon, with a real configuration (config_load
 * of a file written at start) and a real pbx_link (Sofia nta on 127.0.0.1);
 * only the WebSocket edge is a stand-in (fake_ws_edge.c) that records what
 * rtcsipd sends to the browser.  The PBX is a UDP socket of this process on
 * 127.0.0.1 that answers only what the input says.
 *
 * Input: parts separated by one 0xff byte (fuzz_common.h).  A part is
 *   - a WebSocket message from the browser (the SIP text JsSIP or SIP.js
 *     would send), on the current connection;
 *   - 0x01 + a SIP message from the PBX to rtcsipd's SIP port.  A response
 *     without a Via gets the Via, Call-ID, CSeq and From (and To, when it has
 *     none) of the last request the PBX received: it answers that request.
 *     A request gets the PBX socket's Via instead of its own;
 *   - 0x02: a further WebSocket connection from the same address becomes the
 *     current one;  0x03: the current connection closes (the next browser
 *     message opens a new one);  0x04: the main loop runs a while longer.
 * In both kinds of message these strings are replaced (so that an input can
 * follow a dialog whose tags and branches rtcsipd makes up at random):
 *   @@B  the top Via branch, @@C the Call-ID, @@F the From tag, @@T the To tag,
 *   @@N  the CSeq number of the last message rtcsipd sent to that side (the
 *        browser for a browser message, the PBX for a PBX message);
 *   @@K  the binding token in the Contact of the last REGISTER sent to the PBX.
 *
 * Each input gets a new router, a new pbx_link (nta agent, on the same
 * port) and new connections; at its end the connections close (calls end,
 * bindings go), the router and the pbx_link are freed and the main loop runs
 * until idle, so that no call, transaction, agent or socket outlives the
 * input.  Sofia's timers are shortened (T1 25 ms) so that a request the PBX
 * leaves unanswered can time out within an input that runs the loop (0x04).
 *
 * Checks besides crashes and leaks: every message rtcsipd sends, to the
 * browser or to the PBX, is SIP that Sofia-SIP parses back with a request or
 * status line and a Via (a refusal of a request without a readable one may
 * have none); a request to the PBX, as long as the PBX has sent nothing,
 * parses without error.
 *
 * RTCSIPD_FUZZ_LOG=debug (or info, ...) sets the log level (default error). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_glib.h>

#include "config/config.h"
#include "config/log.h"
#include "gateway/media_engine.h"
#include "gateway/router.h"
#include "sip/pbx.h"
#include "sip/ws_edge.h"
#include "webrtc/dtls.h"
#include "tests/fuzz/fake_ws_edge.h"
#include "tests/fuzz/fuzz_common.h"

#define BROWSER_IP "192.0.2.1"
#define MAX_CONNS 4

enum { PART_PBX = 1, PART_NEW_CONN = 2, PART_CLOSE_CONN = 3, PART_RUN = 4 };

/* What rtcsipd last sent toward one side, for the @@ placeholders. */
typedef struct {
  char branch[128], call_id[256], from_tag[128], to_tag[128], cseq[16];
} last_sent;

static struct {
  bool ready;
  su_root_t *root;
  config *cfg;
  dtls_identity *id;
  media_engine *engine;
  pbx_link *pbx;
  ws_edge *edge;
  router *r;               /* the current input's */
  int pbx_fd;              /* the PBX */
  uint16_t pbx_port, sip_port;
  struct sockaddr_in to_sip;
  char *dir, *conf_path;
  last_sent to_browser, to_pbx;
  msg_t *last_pbx_request; /* the last request the PBX received */
  char token[64];
  bool pbx_spoke;          /* the input sent something from the PBX */
  ws_conn *conns[MAX_CONNS];
  unsigned n_conns;
} g;

static const char config_text[] =
  "[general]\n"
  "log_level = error\n"
  "[websocket]\n"
  "ws = 127.0.0.1:8080\n"
  "wss = 127.0.0.1:8443\n"
  "static_dir =\n"
  "[sip]\n"
  "listen = 127.0.0.1:%u\n"
  "advertised_address = 127.0.0.1\n"
  "domains = localhost, example.com\n"
  "echo_user = echo\n"
  "session_expires = 1800\n"
  "min_se = 90\n"
  "[pbx]\n"
  "host = 127.0.0.1\n"
  "port = %u\n"
  "transport = udp\n"
  "[media]\n"
  "rtp_port_min = 44000\n"
  "rtp_port_max = 45999\n"
  "ice_addresses = 127.0.0.1\n"
  "media_timeout = 30\n"
  "dtmf_to_pbx = rfc4733\n"
  "dtmf_to_browser = info\n"
  "ice_candidates_max = 8\n"
  "ice_allow = 127.0.0.0/8, ::1/128\n"
  "[limits]\n"
  "connections_per_ip = 8\n"
  "max_message_size = 65536\n"
  "max_registrations = 16\n"
  "max_expires = 3600\n"
  "transaction_timeout = 32\n"
  "ring_timeout = 60\n"
  "max_calls = 8\n"
  "pending_calls_per_connection = 3\n"
  "pending_calls_per_ip = 4\n";

/* ---- the main loop ---- */

static void pbx_receive(void);

/* Runs what is ready, at most N dispatches; the PBX reads what came. */
static void run_loop(unsigned n)
{
  for (unsigned i = 0; i < n; i++) {
    bool busy = g_main_context_iteration(NULL, FALSE);
    pbx_receive();
    if (!busy)
      break;
  }
}

/* ---- what rtcsipd sends ---- */

static void copy_field(char *dst, size_t size, const char *src)
{
  g_strlcpy(dst, src ? src : "", size);
}

static void remember(last_sent *l, const sip_t *sip)
{
  copy_field(l->branch, sizeof l->branch, sip->sip_via ? sip->sip_via->v_branch : NULL);
  copy_field(l->call_id, sizeof l->call_id, sip->sip_call_id ? sip->sip_call_id->i_id : NULL);
  copy_field(l->from_tag, sizeof l->from_tag, sip->sip_from ? sip->sip_from->a_tag : NULL);
  copy_field(l->to_tag, sizeof l->to_tag, sip->sip_to ? sip->sip_to->a_tag : NULL);
  if (sip->sip_cseq)
    g_snprintf(l->cseq, sizeof l->cseq, "%u", sip->sip_cseq->cs_seq);
  else
    l->cseq[0] = '\0';
}

/* TEXT as Sofia-SIP reads it: a request or a response, with a Via (but a
 * refusal -- 400, 505 -- of a request that had none or a broken one, which
 * sipmsg.c answers all the same); STRICT: no header in error either. */
static msg_t *check_sip(const char *text, size_t len, bool strict, const char *where)
{
  msg_t *msg = msg_make(sip_default_mclass(), 0, text, (isize_t)len);
  sip_t *sip = msg ? sip_object(msg) : NULL;
  bool ok = sip && (sip->sip_request || sip->sip_status) &&
            (sip->sip_via || (sip->sip_status && sip->sip_status->st_status >= 400)) &&
            (!strict || (!msg_has_error(msg) && !sip->sip_error));

  if (!ok) {
    fprintf(stderr, "fuzz_ws_router: rtcsipd sent %s what Sofia-SIP cannot read back (%zu bytes):\n", where, len);
    fwrite(text, 1, len, stderr);
    fputc('\n', stderr);
  }
  FUZZ_CHECK(ok);
  return msg;
}

static void on_sent(void *user, ws_conn *conn, const char *data, size_t len)
{
  if (len == 2 && memcmp(data, "\r\n", 2) == 0)
    return; /* the keepalive's pong */
  msg_t *msg = check_sip(data, len, false, "the browser");
  remember(&g.to_browser, sip_object(msg));
  msg_destroy(msg);
}

/* Reads what rtcsipd sent the PBX. */
static void pbx_receive(void)
{
  char buf[65536];
  ssize_t n;

  while ((n = recv(g.pbx_fd, buf, sizeof buf, 0)) > 0) {
    if (n == 4 && memcmp(buf, "\r\n\r\n", 4) == 0)
      continue;
    /* Checked while the PBX has said nothing, strictly for requests: what a
     * browser sends must not reach the PBX broken.  Once the PBX has spoken,
     * what it sent may come back (a response echoes the headers of its
     * request; an in-dialog request has its Contact as Request-URI, even one
     * that is no SIP URI: open, see tests/fuzz/corpus/ws_router/found-*). */
    msg_t *msg = msg_make(sip_default_mclass(), 0, buf, (isize_t)n);
    bool request = msg && sip_object(msg) && sip_object(msg)->sip_request;
    if (!g.pbx_spoke) {
      if (msg)
        msg_destroy(msg);
      msg = check_sip(buf, (size_t)n, request, "the PBX");
    }
    sip_t *sip = msg ? sip_object(msg) : NULL;
    if (!sip || (!sip->sip_request && !sip->sip_status)) {
      if (msg)
        msg_destroy(msg);
      continue;
    }
    remember(&g.to_pbx, sip);
    if (sip->sip_request) {
      if (sip->sip_request->rq_method == sip_method_register && sip->sip_contact &&
          sip->sip_contact->m_url->url_user)
        copy_field(g.token, sizeof g.token, sip->sip_contact->m_url->url_user);
      if (g.last_pbx_request)
        msg_destroy(g.last_pbx_request);
      g.last_pbx_request = msg;
    } else {
      msg_destroy(msg);
    }
  }
}

/* ---- the input's messages ---- */

/* PART with the @@ placeholders replaced from L. */
static GString *substitute(const uint8_t *part, size_t len, const last_sent *l)
{
  GString *s = g_string_sized_new(len + 64);

  for (size_t i = 0; i < len; i++) {
    if (i + 2 < len && part[i] == '@' && part[i + 1] == '@') {
      const char *v = NULL;
      switch (part[i + 2]) {
      case 'B': v = l->branch; break;
      case 'C': v = l->call_id; break;
      case 'F': v = l->from_tag; break;
      case 'T': v = l->to_tag; break;
      case 'N': v = l->cseq; break;
      case 'K': v = g.token; break;
      }
      if (v) {
        g_string_append(s, v);
        i += 2;
        continue;
      }
    }
    g_string_append_c(s, (char)part[i]);
  }
  return s;
}

/* A response without a Via answers the PBX's last request: its Via, Call-ID,
 * CSeq, From (and To when it has none) are put in. */
static GString *complete_response(GString *text)
{
  msg_t *msg = msg_make(sip_default_mclass(), 0, text->str, (isize_t)text->len);
  sip_t *sip = msg ? sip_object(msg) : NULL;
  sip_t *rq = g.last_pbx_request ? sip_object(g.last_pbx_request) : NULL;

  if (!sip || !sip->sip_status || sip->sip_via || !rq) {
    if (msg)
      msg_destroy(msg);
    return text;
  }
  msg_header_remove_all(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_call_id);
  msg_header_remove_all(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_cseq);
  msg_header_remove_all(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_from);
  if (sip_add_tl(msg, sip, SIPTAG_VIA(rq->sip_via), SIPTAG_CALL_ID(rq->sip_call_id),
                 SIPTAG_CSEQ(rq->sip_cseq), SIPTAG_FROM(rq->sip_from),
                 TAG_IF(!sip->sip_to, SIPTAG_TO(rq->sip_to)), TAG_END()) == 0 &&
      msg_serialize(msg, (msg_pub_t *)sip) == 0) {
    su_home_t home[1] = {SU_HOME_INIT(home)};
    size_t n = 0;
    char *s = msg_as_string(home, msg, (msg_pub_t *)sip, 0, &n);
    if (s) {
      g_string_assign(text, "");
      g_string_append_len(text, s, (gssize)n);
    }
    su_home_deinit(home);
  }
  msg_destroy(msg);
  return text;
}

/* A request from the PBX gets one Via, the PBX socket's (with the branch of
 * its first Via, if any): rtcsipd's answers come back here, and no Via of
 * the input ever sends them anywhere else. */
static GString *own_via(GString *text)
{
  msg_t *msg = msg_make(sip_default_mclass(), 0, text->str, (isize_t)text->len);
  sip_t *sip = msg ? sip_object(msg) : NULL;

  if (!sip || !sip->sip_request) {
    if (msg)
      msg_destroy(msg);
    return text;
  }
  g_autofree char *via = g_strdup_printf("SIP/2.0/UDP 127.0.0.1:%u;rport;branch=%s", g.pbx_port,
                                         sip->sip_via && sip->sip_via->v_branch ? sip->sip_via->v_branch
                                                                                 : "z9hG4bKfuzzpbx");
  if (sip->sip_via)
    msg_header_remove_all(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_via);
  if (sip_add_tl(msg, sip, SIPTAG_VIA_STR(via), TAG_END()) == 0 &&
      msg_serialize(msg, (msg_pub_t *)sip) == 0) {
    su_home_t home[1] = {SU_HOME_INIT(home)};
    size_t n = 0;
    char *s = msg_as_string(home, msg, (msg_pub_t *)sip, 0, &n);
    if (s) {
      g_string_assign(text, "");
      g_string_append_len(text, s, (gssize)n);
    }
    su_home_deinit(home);
  }
  msg_destroy(msg);
  return text;
}

static void from_pbx(const uint8_t *part, size_t len)
{
  g.pbx_spoke = true;
  GString *text = own_via(complete_response(substitute(part, len, &g.to_pbx)));

  (void)sendto(g.pbx_fd, text->str, text->len, 0, (const struct sockaddr *)&g.to_sip, sizeof g.to_sip);
  g_string_free(text, TRUE);
  run_loop(20);
}

/* A new connection (every second one on wss://) becomes the current one. */
static void open_conn(void)
{
  if (g.n_conns == MAX_CONNS)
    return;
  ws_conn *conn = fake_ws_edge_open(g.edge, BROWSER_IP, g.n_conns % 2);
  g.conns[g.n_conns++] = conn;
}

static void close_current(void)
{
  if (g.n_conns && g.conns[g.n_conns - 1]) {
    fake_ws_edge_close(g.edge, g.conns[g.n_conns - 1]);
    g.conns[g.n_conns - 1] = NULL;
    run_loop(20);
  }
}

/* The current connection; a new one when there is none, or when rtcsipd
 * closed it (ws_edge.c reports the close at once: on_close). */
static ws_conn *current_conn(void)
{
  if (g.n_conns && g.conns[g.n_conns - 1] && fake_ws_conn_closing(g.conns[g.n_conns - 1], NULL))
    close_current();
  if (g.n_conns == 0 || !g.conns[g.n_conns - 1])
    open_conn();
  return g.n_conns ? g.conns[g.n_conns - 1] : NULL;
}

static void from_browser(const uint8_t *part, size_t len)
{
  ws_conn *conn = current_conn();

  if (!conn)
    return;
  GString *text = substitute(part, len, &g.to_browser);
  fake_ws_edge_receive(g.edge, conn, text->str, text->len);
  g_string_free(text, TRUE);
  run_loop(20);
}

/* ---- the process ---- */

static int free_port(int type)
{
  struct sockaddr_in sin = {.sin_family = AF_INET};
  socklen_t len = sizeof sin;
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  int port = -1;

  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
      getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
    port = ntohs(sin.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

/* The SIP side for one input: a new nta agent, so that no transaction of an
 * input outlives it (nta keeps them for up to 64*T1 after they end, which
 * would also make every input look like a leak to libFuzzer). */
static int pbx_new_link(router *r)
{
  pbx_settings ps = {
    .listen_host = g.cfg->sip.host, .listen_port = g.cfg->sip.port,
    .advertised_host = g.cfg->advertised_address,
    .pbx_host = g.cfg->pbx_host, .pbx_port = g.cfg->pbx_port, .pbx_transport = g.cfg->pbx_transport,
  };
  int ret = pbx_link_new(g.root, &ps, &router_pbx_callbacks, r, &g.pbx);

  if (ret < 0)
    return ret;
  /* what the PBX leaves unanswered fails within the input, as a timeout */
  nta_agent_set_params(pbx_link_agent(g.pbx), NTATAG_SIP_T1(25), NTATAG_SIP_T1X64(1600),
                       NTATAG_SIP_T2(100), NTATAG_SIP_T4(200), NTATAG_TIMER_C(2000), TAG_END());
  return 0;
}

static void cleanup(void)
{
  if (g.conf_path)
    g_unlink(g.conf_path);
  if (g.dir)
    g_rmdir(g.dir);
}

static void init(void)
{
  const char *level = g_getenv("RTCSIPD_FUZZ_LOG");
  g_autoptr(GError) error = NULL;
  char *cerr = NULL;
  struct sockaddr_in sin = {.sin_family = AF_INET};
  socklen_t slen = sizeof sin;

  g_setenv("SOFIA_DEBUG", "0", FALSE);
  g_setenv("SU_DEBUG", "0", FALSE);
  signal(SIGPIPE, SIG_IGN);
  su_init();
  g.root = su_glib_root_create(NULL);
  FUZZ_CHECK(g.root);
  g_source_attach(su_glib_root_gsource(g.root), NULL);

  /* the PBX */
  g.pbx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(g.pbx_fd >= 0);
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  FUZZ_CHECK(bind(g.pbx_fd, (struct sockaddr *)&sin, sizeof sin) == 0);
  FUZZ_CHECK(getsockname(g.pbx_fd, (struct sockaddr *)&sin, &slen) == 0);
  g.pbx_port = ntohs(sin.sin_port);

  g.dir = g_dir_make_tmp("rtcsipd-fuzz-router-XXXXXX", &error);
  FUZZ_CHECK(g.dir);
  g.conf_path = g_build_filename(g.dir, "rtcsipd.conf", NULL);
  atexit(cleanup);
  FUZZ_CHECK(dtls_identity_new(&g.id) == 0);

  /* rtcsipd's SIP side on a free port (UDP and TCP): a pbx_link is made on
   * it for every input (pbx_new_link) */
  for (int attempt = 0; attempt < 20 && !g.sip_port; attempt++) {
    int port = free_port(SOCK_STREAM);
    if (port <= 0)
      continue;
    g_autofree char *text = g_strdup_printf(config_text, (unsigned)port, g.pbx_port);
    FUZZ_CHECK(g_file_set_contents(g.conf_path, text, -1, &error));
    if (g.cfg)
      config_free(g.cfg);
    g.cfg = NULL;
    if (config_load(g.conf_path, &g.cfg, &cerr) < 0) {
      fprintf(stderr, "fuzz_ws_router: %s\n", cerr);
      FUZZ_CHECK(!"the built-in configuration loads");
    }
    log_set_level(LOG_ERR);
    if (pbx_new_link(NULL) == 0) {
      g.sip_port = (uint16_t)port;
      pbx_link_free(g.pbx);
      g.pbx = NULL;
    }
  }
  FUZZ_CHECK(g.sip_port);
  g.to_sip = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(g.sip_port)};
  inet_pton(AF_INET, "127.0.0.1", &g.to_sip.sin_addr);

  g.edge = fake_ws_edge_new(NULL, NULL);
  fake_ws_edge_set_sent_hook(g.edge, on_sent, NULL);
  log_set_level(level ? log_level_from_string(level) : LOG_ERR);
  g.ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const uint8_t *p = data, *end = data + size, *part;
  size_t len;

  if (!g.ready)
    init();
  memset(&g.to_browser, 0, sizeof g.to_browser);
  memset(&g.to_pbx, 0, sizeof g.to_pbx);
  g.token[0] = '\0';
  g.pbx_spoke = false;
  FUZZ_CHECK(media_engine_new(1, &g.engine) == 0);
  g.r = router_new(g.cfg, g.id, g.engine);
  for (int attempt = 0; pbx_new_link(g.r) < 0; attempt++) {
    FUZZ_CHECK(attempt < 100); /* the port is ours: only a moment's delay */
    g_usleep(10000);
  }
  router_attach(g.r, g.edge, g.pbx);
  fake_ws_edge_set_callbacks(g.edge, &router_ws_callbacks, g.r);

  while (fuzz_next_part(&p, end, &part, &len)) {
    if (len > 0 && part[0] == PART_PBX) {
      from_pbx(part + 1, len - 1);
    } else if (len == 1 && part[0] == PART_NEW_CONN) {
      open_conn();
    } else if (len == 1 && part[0] == PART_CLOSE_CONN) {
      close_current();
    } else if (len == 1 && part[0] == PART_RUN) {
      run_loop(200);
    } else {
      from_browser(part, len);
    }
  }

  /* the end of the input: every connection closes, then the router goes */
  for (unsigned i = 0; i < g.n_conns; i++)
    if (g.conns[i])
      fake_ws_edge_close(g.edge, g.conns[i]);
  memset(g.conns, 0, sizeof g.conns);
  g.n_conns = 0;
  run_loop(50);
  router_free(g.r);
  media_engine_free(g.engine);
  g.r = NULL;
  run_loop(100);
  pbx_link_free(g.pbx);
  g.pbx = NULL;
  run_loop(20);
  if (g.last_pbx_request) {
    msg_destroy(g.last_pbx_request);
    g.last_pbx_request = NULL;
  }
  return 0;
}
