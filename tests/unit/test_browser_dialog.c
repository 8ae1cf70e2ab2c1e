/* Unit tests: the requests gateway/browser_dialog.c builds for a dialog with
 * a browser, UAC (rtcsipd calls) and UAS (the browser calls), checked with
 * Sofia-SIP's parser as the browser would read them; no network (the
 * dialogs have no ws_edge, so nothing is sent). */
#include <errno.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/su_tagarg.h>
#include <sofia-sip/url.h>

#include "gateway/browser_dialog.h"
#include "gateway/browser_dialog_internal.h"
#include "sip/sipmsg.h"

#define FLOW 7
#define SDP "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
#define BROWSER_URI "sip:k3mv8f2q@df7jal23ls0d.invalid;transport=ws"
#define BROWSER_TAG "br0ws3rtag"

static msg_t *parse_ok(const char *text)
{
  msg_t *msg = NULL;
  const char *why = NULL;
  g_assert_cmpint(sipmsg_parse(text, strlen(text), &msg, &why), ==, SIPMSG_OK);
  g_assert_nonnull(msg);
  return msg;
}

/* Prints MSG (consumed unless BORROWED) and parses the text again, as the
 * browser would. */
static msg_t *wire(msg_t *msg, bool borrowed)
{
  size_t len = 0;
  g_autofree char *text = NULL;

  g_assert_nonnull(msg);
  text = sipmsg_print(msg, &len);
  g_assert_nonnull(text);
  if (!borrowed)
    msg_destroy(msg);
  return parse_ok(text);
}

static char *url_text(su_home_t *home, const url_t *url)
{
  return url_as_string(home, url);
}

/* The parts every request of rtcsipd has: Via WS(S) with BRANCH (NULL: any
 * new one), Max-Forwards 70, Call-ID, CSeq SEQ METHOD, a Content-Length. */
static void check_request(su_home_t *home, sip_t *sip, const char *method, const char *ruri,
                          uint32_t seq, const char *protocol)
{
  g_assert_nonnull(sip->sip_request);
  g_assert_cmpstr(sip->sip_request->rq_method_name, ==, method);
  g_assert_cmpstr(url_text(home, sip->sip_request->rq_url), ==, ruri);
  g_assert_nonnull(sip->sip_via);
  g_assert_null(sip->sip_via->v_next);
  g_assert_cmpstr(sip->sip_via->v_protocol, ==, protocol);
  g_assert_cmpstr(sip->sip_via->v_host, ==, "gw.example.org");
  g_assert_cmpstr(sip->sip_via->v_port, ==, "8443");
  g_assert_true(g_str_has_prefix(sip->sip_via->v_branch, "z9hG4bK"));
  g_assert_nonnull(sip->sip_via->v_rport);
  g_assert_nonnull(sip->sip_max_forwards);
  g_assert_cmpuint(sip->sip_max_forwards->mf_count, ==, 70);
  g_assert_cmpstr(sip->sip_call_id->i_id, ==, "c4ll-1d@pbx");
  g_assert_cmpuint(sip->sip_cseq->cs_seq, ==, seq);
  g_assert_cmpstr(sip->sip_cseq->cs_method_name, ==, method);
  g_assert_nonnull(sip->sip_content_length);
}

/* Route (or Record-Route) entries as text, "a|b" (in HOME). */
static char *routes(su_home_t *home, const sip_route_t *r)
{
  g_autoptr(GString) s = g_string_new(NULL);
  for (; r; r = r->r_next)
    g_string_append_printf(s, "%s%s", s->len ? "|" : "", url_text(home, r->r_url));
  return su_strdup(home, s->str);
}

static browser_dialog *new_uac(su_home_t *home, bool secure)
{
  browser_invite_params p = {
    .request_uri = BROWSER_URI,
    .from = sip_from_make(home, "\"Alice\" <sip:alice@pbx.example.org>;tag=pbxtag1"),
    .to = sip_to_make(home, "<sip:bob@example.org>;tag=stray"),
    .call_id = "c4ll-1d@pbx",
    .sdp = SDP,
  };
  browser_dialog *d = NULL;

  g_assert_cmpint(browser_dialog_new_uac_on(NULL, FLOW, secure, &p, "gw.example.org:8443", &d),
                  ==, 0);
  g_assert_nonnull(d);
  return d;
}

/* The browser's response to REQUEST (as it read it): STATUS, its To tag
 * (when not a 100), and further headers. */
static msg_t *browser_response(su_home_t *home, msg_t *request, int status, const char *phrase,
                               tag_type_t tag, tag_value_t value, ...)
{
  sip_t *rq = sip_object(request);
  sip_to_t *to = sip_to_dup(home, rq->sip_to);
  msg_t *resp;
  ta_list ta;

  if (status > 100 && !to->a_tag)
    g_assert_cmpint(sip_to_tag(home, to, BROWSER_TAG), ==, 0);
  ta_start(ta, tag, value);
  resp = sipmsg_response(request, status, phrase, SIPTAG_TO(to), ta_tags(ta));
  (void)ta_end(ta);
  return wire(resp, false);
}

static void test_uac_invite(void)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  browser_dialog *d = new_uac(home, true);
  msg_t *inv = wire(browser_dialog_sent_invite(d), true);
  sip_t *sip = sip_object(inv);

  check_request(home, sip, "INVITE", BROWSER_URI, 1, "SIP/2.0/WSS");
  g_assert_cmpstr(sip->sip_from->a_display, ==, "\"Alice\"");
  g_assert_cmpstr(url_text(home, sip->sip_from->a_url), ==, "sip:alice@pbx.example.org");
  g_assert_nonnull(sip->sip_from->a_tag);
  g_assert_cmpstr(sip->sip_from->a_tag, !=, "pbxtag1");
  g_assert_cmpstr(url_text(home, sip->sip_to->a_url), ==, "sip:bob@example.org");
  g_assert_null(sip->sip_to->a_tag);
  g_assert_nonnull(sip->sip_contact);
  g_assert_cmpstr(url_text(home, sip->sip_contact->m_url), ==,
                  "sip:rtcsipd@gw.example.org:8443;transport=wss");
  g_assert_null(sip->sip_route);
  g_assert_cmpstr(sip->sip_content_type->c_type, ==, "application/sdp");
  g_assert_cmpmem(sip->sip_payload->pl_data, sip->sip_payload->pl_len, SDP, strlen(SDP));
  g_assert_cmpuint(sip->sip_content_length->l_length, ==, strlen(SDP));

  g_assert_null(browser_dialog_invite(d));
  g_assert_null(browser_dialog_answer(d));
  g_assert_false(browser_dialog_answered(d));
  g_assert_cmpstr(browser_dialog_call_id(d), ==, "c4ll-1d@pbx");
  g_assert_cmpint(browser_dialog_ack(d), ==, -EINVAL);
  g_assert_null(browser_dialog_make_bye(d));
  g_assert_cmpint(browser_dialog_respond(d, 200, "OK", SDP), ==, -EINVAL);
  msg_destroy(inv);
  browser_dialog_free(d);

  /* ws:// */
  d = new_uac(home, false);
  inv = wire(browser_dialog_sent_invite(d), true);
  g_assert_cmpstr(sip_object(inv)->sip_via->v_protocol, ==, "SIP/2.0/WS");
  g_assert_cmpstr(url_text(home, sip_object(inv)->sip_contact->m_url), ==,
                  "sip:rtcsipd@gw.example.org:8443;transport=ws");
  msg_destroy(inv);
  browser_dialog_free(d);
  su_home_deinit(home);
}

static void test_uac_bad_params(void)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  browser_invite_params p = {
    .request_uri = "http://example.org/",
    .from = sip_from_make(home, "<sip:alice@pbx.example.org>;tag=1"),
    .to = sip_to_make(home, "<sip:bob@example.org>"),
    .call_id = "x",
    .sdp = SDP,
  };
  browser_dialog *d = (browser_dialog *)&p;

  g_assert_cmpint(browser_dialog_new_uac_on(NULL, FLOW, false, &p, "gw", &d), ==, -EINVAL);
  g_assert_null(d);
  p.request_uri = BROWSER_URI;
  p.sdp = NULL;
  g_assert_cmpint(browser_dialog_new_uac_on(NULL, FLOW, false, &p, "gw", &d), ==, -EINVAL);
  p.sdp = SDP;
  p.call_id = "";
  g_assert_cmpint(browser_dialog_new_uac_on(NULL, FLOW, false, &p, "gw", &d), ==, -EINVAL);
  su_home_deinit(home);
}

static void test_uac_answered(void)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  browser_dialog *d = new_uac(home, true);
  msg_t *inv = wire(browser_dialog_sent_invite(d), true);
  sip_t *in = sip_object(inv);
  msg_t *resp, *msg;
  sip_t *sip;
  browser_txn which = BROWSER_TXN_BYE;
  int status = 0;

  /* 100, 180 */
  resp = browser_response(home, inv, 100, "Trying", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_INVITE);
  g_assert_cmpint(status, ==, 100);
  g_assert_false(browser_dialog_take_response(d, FLOW + 1, resp, &which, &status));
  msg_destroy(resp);
  resp = browser_response(home, inv, 180, "Ringing", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(status, ==, 180);
  g_assert_false(browser_dialog_answered(d));
  msg_destroy(resp);

  /* the CANCEL it could send now */
  msg = wire(browser_dialog_make_cancel(d), false);
  sip = sip_object(msg);
  check_request(home, sip, "CANCEL", BROWSER_URI, 1, "SIP/2.0/WSS");
  g_assert_cmpstr(sip->sip_via->v_branch, ==, in->sip_via->v_branch);
  g_assert_cmpstr(sip->sip_from->a_tag, ==, in->sip_from->a_tag);
  g_assert_null(sip->sip_to->a_tag);
  g_assert_null(sip->sip_route);
  /* the browser's 200 to that CANCEL */
  resp = browser_response(home, msg, 200, "OK", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_CANCEL);
  g_assert_cmpint(status, ==, 200);
  g_assert_false(browser_dialog_answered(d));
  msg_destroy(resp);
  msg_destroy(msg);

  /* 200 with Contact and two proxies */
  resp = browser_response(home, inv, 200, "OK",
                          SIPTAG_CONTACT_STR("<sip:k3mv8f2q@192.0.2.9:5060;transport=ws>"),
                          /* one header field: the order is kept */
                          SIPTAG_RECORD_ROUTE_STR("<sip:p1.example.org;lr>, "
                                                  "<sip:p2.example.org;transport=ws;lr>"),
                          SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                          SIPTAG_PAYLOAD_STR(SDP),
                          TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_INVITE);
  g_assert_cmpint(status, ==, 200);
  g_assert_true(browser_dialog_answered(d));
  g_assert_true(browser_dialog_confirmed(d));
  g_assert_true(browser_dialog_answer(d) == resp);
  g_assert_cmpstr(routes(home, (sip_route_t *)sip_object(resp)->sip_record_route), ==,
                  "sip:p1.example.org;lr|sip:p2.example.org;transport=ws;lr");
  g_assert_cmpint(browser_dialog_cancel(d), ==, -EALREADY);
  g_assert_null(browser_dialog_make_cancel(d));
  /* a repeated 200 is reported again, and changes nothing */
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(status, ==, 200);
  msg_destroy(resp); /* the dialog keeps its reference */
  g_assert_nonnull(sip_object(browser_dialog_answer(d))->sip_payload);

  /* ACK: new branch, to the Contact through the route set, reversed */
  msg = wire(browser_dialog_make_ack(d), false);
  sip = sip_object(msg);
  check_request(home, sip, "ACK", "sip:k3mv8f2q@192.0.2.9:5060;transport=ws", 1, "SIP/2.0/WSS");
  g_assert_cmpstr(sip->sip_via->v_branch, !=, in->sip_via->v_branch);
  g_assert_cmpstr(sip->sip_from->a_tag, ==, in->sip_from->a_tag);
  g_assert_cmpstr(sip->sip_to->a_tag, ==, BROWSER_TAG);
  g_assert_cmpstr(routes(home, sip->sip_route), ==,
                  "sip:p2.example.org;transport=ws;lr|sip:p1.example.org;lr");
  msg_destroy(msg);

  /* BYE: the next CSeq; its 200 is taken */
  msg = wire(browser_dialog_make_bye(d), false);
  sip = sip_object(msg);
  check_request(home, sip, "BYE", "sip:k3mv8f2q@192.0.2.9:5060;transport=ws", 2, "SIP/2.0/WSS");
  g_assert_cmpstr(sip->sip_from->a_tag, ==, in->sip_from->a_tag);
  g_assert_cmpstr(sip->sip_to->a_tag, ==, BROWSER_TAG);
  g_assert_cmpstr(routes(home, sip->sip_route), ==,
                  "sip:p2.example.org;transport=ws;lr|sip:p1.example.org;lr");
  resp = browser_response(home, msg, 200, "OK", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_BYE);
  msg_destroy(resp);
  msg_destroy(msg);

  /* a response to someone else's request */
  resp = browser_response(home, inv, 200, "OK", TAG_END());
  sip_object(resp)->sip_via->v_branch = "z9hG4bKother";
  g_assert_false(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  msg_destroy(resp);

  msg_destroy(inv);
  browser_dialog_free(d);
  su_home_deinit(home);
}

/* A request from the browser, in the dialog when the tags are right. */
static msg_t *browser_request(const char *method, const char *from_tag, const char *to_tag)
{
  g_autofree char *text = g_strdup_printf(
      "%s sip:rtcsipd@gw.example.org:8443;transport=wss SIP/2.0\r\n"
      "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK5550\r\n"
      "Max-Forwards: 69\r\n"
      "From: <sip:bob@example.org>;tag=%s\r\n"
      "To: \"Alice\" <sip:alice@pbx.example.org>;tag=%s\r\n"
      "Call-ID: c4ll-1d@pbx\r\n"
      "CSeq: 4711 %s\r\n"
      "Content-Length: 0\r\n\r\n",
      method, from_tag, to_tag, method);
  return parse_ok(text);
}

static void test_uac_matches(void)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  browser_dialog *d = new_uac(home, true);
  msg_t *inv = wire(browser_dialog_sent_invite(d), true);
  const char *ours = sip_object(inv)->sip_from->a_tag;
  msg_t *resp = browser_response(
      home, inv, 200, "OK",
      SIPTAG_CONTACT_STR("<sip:k3mv8f2q@df7jal23ls0d.invalid;transport=ws>"), TAG_END());
  msg_t *rq;

  rq = browser_request("BYE", BROWSER_TAG, ours);
  g_assert_false(browser_dialog_matches(d, FLOW, rq)); /* no 2xx yet: the browser's tag unknown */
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, NULL, NULL));
  g_assert_true(browser_dialog_matches(d, FLOW, rq));
  g_assert_false(browser_dialog_matches(d, FLOW + 1, rq));
  msg_destroy(rq);
  rq = browser_request("BYE", "other", ours);
  g_assert_false(browser_dialog_matches(d, FLOW, rq));
  msg_destroy(rq);
  rq = browser_request("BYE", BROWSER_TAG, "other");
  g_assert_false(browser_dialog_matches(d, FLOW, rq));
  msg_destroy(rq);
  /* a request of ours looped back does not match (From tag is ours) */
  rq = browser_request("INFO", ours, BROWSER_TAG);
  g_assert_false(browser_dialog_matches(d, FLOW, rq));
  msg_destroy(rq);

  msg_destroy(resp);
  msg_destroy(inv);
  browser_dialog_free(d);
  su_home_deinit(home);
}

static void test_uac_rejected(void)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  browser_dialog *d = new_uac(home, false);
  msg_t *inv = wire(browser_dialog_sent_invite(d), true);
  sip_t *in = sip_object(inv);
  msg_t *resp = browser_response(home, inv, 486, "Busy Here", TAG_END());
  browser_txn which = BROWSER_TXN_BYE;
  int status = 0;
  msg_t *msg;
  sip_t *sip;

  /* the ACK is sent here (no connection in this test: nothing goes out) */
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_INVITE);
  g_assert_cmpint(status, ==, 486);
  g_assert_true(browser_dialog_answered(d));
  g_assert_false(browser_dialog_confirmed(d));
  g_assert_null(browser_dialog_answer(d));
  g_assert_cmpint(browser_dialog_cancel(d), ==, -EALREADY);
  g_assert_cmpint(browser_dialog_ack(d), ==, -EINVAL);
  g_assert_cmpint(browser_dialog_send_bye(d), ==, -ENOTCONN);
  g_assert_null(browser_dialog_make_bye(d));

  /* that ACK: the INVITE's Request-URI, branch and CSeq, the 486's To */
  msg = wire(browser_dialog_make_ack_non2xx(d, resp), false);
  sip = sip_object(msg);
  check_request(home, sip, "ACK", BROWSER_URI, 1, "SIP/2.0/WS");
  g_assert_cmpstr(sip->sip_via->v_branch, ==, in->sip_via->v_branch);
  g_assert_cmpstr(sip->sip_from->a_tag, ==, in->sip_from->a_tag);
  g_assert_cmpstr(sip->sip_to->a_tag, ==, BROWSER_TAG);
  g_assert_null(sip->sip_route);
  msg_destroy(msg);

  msg_destroy(resp);
  msg_destroy(inv);
  browser_dialog_free(d);
  su_home_deinit(home);
}

/* An INVITE as JsSIP sends it, through two proxies. */
static const char uas_invite[] =
    "INVITE sip:echo@gw.example.org SIP/2.0\r\n"
    "Record-Route: <sip:p1.example.org;lr>\r\n"
    "Record-Route: <sip:p2.example.org;lr>\r\n"
    "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK9174370\r\n"
    "Max-Forwards: 69\r\n"
    "To: <sip:echo@gw.example.org>\r\n"
    "From: \"Bob\" <sip:bob@example.org>;tag=jssiptag1\r\n"
    "Call-ID: c4ll-1d@pbx\r\n"
    "CSeq: 8245 INVITE\r\n"
    "Contact: <sip:k3mv8f2q@df7jal23ls0d.invalid;transport=ws;ob>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 41\r\n"
    "\r\n" SDP;

static void test_uas(void)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  browser_dialog *d = browser_dialog_new_on(NULL, FLOW, true, parse_ok(uas_invite),
                                            "gw.example.org:8443");
  msg_t *msg, *rq, *resp;
  sip_t *sip;
  browser_txn which = BROWSER_TXN_INVITE;
  int status = 0;
  const char *ours;

  g_assert_nonnull(d);
  g_assert_nonnull(browser_dialog_invite(d));
  g_assert_null(browser_dialog_sent_invite(d));
  g_assert_null(browser_dialog_make_bye(d));
  g_assert_cmpint(browser_dialog_cancel(d), ==, -EINVAL);
  /* not sent (no connection), but the 200 is the final response */
  g_assert_cmpint(browser_dialog_respond(d, 200, "OK", SDP), ==, -ENOTCONN);
  g_assert_true(browser_dialog_confirmed(d));
  g_assert_cmpint(browser_dialog_respond(d, 486, "Busy Here", NULL), ==, -EALREADY);

  msg = wire(browser_dialog_make_bye(d), false);
  sip = sip_object(msg);
  check_request(home, sip, "BYE", "sip:k3mv8f2q@df7jal23ls0d.invalid;transport=ws;ob",
                sip->sip_cseq->cs_seq, "SIP/2.0/WSS");
  ours = su_strdup(home, sip->sip_from->a_tag);
  g_assert_cmpstr(url_text(home, sip->sip_from->a_url), ==, "sip:echo@gw.example.org");
  g_assert_cmpuint(strlen(ours), ==, 16);
  g_assert_cmpstr(url_text(home, sip->sip_to->a_url), ==, "sip:bob@example.org");
  g_assert_cmpstr(sip->sip_to->a_tag, ==, "jssiptag1");
  g_assert_cmpstr(routes(home, sip->sip_route), ==, "sip:p1.example.org;lr|sip:p2.example.org;lr");
  resp = browser_response(home, msg, 200, "OK", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_BYE);
  g_assert_cmpint(status, ==, 200);
  msg_destroy(resp);
  msg_destroy(msg);

  /* the browser's BYE; the ACK and CANCEL of its INVITE's transaction */
  {
    g_autofree char *bye = g_strdup_printf(
        "BYE sip:rtcsipd@gw.example.org:8443;transport=wss SIP/2.0\r\n"
        "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK777\r\n"
        "From: \"Bob\" <sip:bob@example.org>;tag=jssiptag1\r\n"
        "To: <sip:echo@gw.example.org>;tag=%s\r\n"
        "Call-ID: c4ll-1d@pbx\r\nCSeq: 8246 BYE\r\nContent-Length: 0\r\n\r\n", ours);
    rq = parse_ok(bye);
    g_assert_true(browser_dialog_matches(d, FLOW, rq));
    g_assert_false(browser_dialog_matches(d, FLOW + 1, rq));
    msg_destroy(rq);
  }
  rq = parse_ok("CANCEL sip:echo@gw.example.org SIP/2.0\r\n"
                "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK9174370\r\n"
                "From: \"Bob\" <sip:bob@example.org>;tag=jssiptag1\r\n"
                "To: <sip:echo@gw.example.org>\r\n"
                "Call-ID: c4ll-1d@pbx\r\nCSeq: 8245 CANCEL\r\nContent-Length: 0\r\n\r\n");
  g_assert_true(browser_dialog_matches(d, FLOW, rq));
  msg_destroy(rq);
  browser_dialog_free(d);

  /* the PBX's refusal relayed (not sent: no connection) */
  d = browser_dialog_new_on(NULL, FLOW, false, parse_ok(uas_invite), "gw.example.org:8443");
  g_assert_nonnull(d);
  rq = parse_ok(uas_invite);
  resp = sipmsg_response(rq, 486, "Busy Here", SIPTAG_REASON_STR("Q.850;cause=17"), TAG_END());
  g_assert_cmpint(browser_dialog_respond_relay(d, rq), ==, -EINVAL); /* not a response */
  g_assert_cmpint(browser_dialog_respond_relay(d, resp), ==, -ENOTCONN);
  g_assert_true(browser_dialog_answered(d));
  g_assert_false(browser_dialog_confirmed(d));
  g_assert_cmpint(browser_dialog_respond_relay(d, resp), ==, -EALREADY);
  msg_destroy(resp);
  msg_destroy(rq);
  browser_dialog_free(d);
  su_home_deinit(home);
}

/* ---- in-dialog requests both ways ---- */

#define BROWSER_TARGET "sip:k3mv8f2q@192.0.2.9:5060;transport=ws"
#define NEW_TARGET "sip:k3mv8f2q@192.0.2.77:5070;transport=ws"

/* A UAC dialog the browser answered with 200 (Contact BROWSER_TARGET, two
 * proxies); *inv the INVITE as the browser read it. */
static browser_dialog *confirmed_uac(su_home_t *home, msg_t **inv)
{
  browser_dialog *d = new_uac(home, true);
  msg_t *resp;

  *inv = wire(browser_dialog_sent_invite(d), true);
  resp = browser_response(home, *inv, 200, "OK",
                          SIPTAG_CONTACT_STR("<" BROWSER_TARGET ">"),
                          SIPTAG_RECORD_ROUTE_STR("<sip:p1.example.org;lr>, "
                                                  "<sip:p2.example.org;transport=ws;lr>"),
                          SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                          SIPTAG_PAYLOAD_STR(SDP), TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, NULL, NULL));
  g_assert_true(browser_dialog_confirmed(d));
  msg_destroy(resp);
  return d;
}

/* rtcsipd's request, as the browser reads it. */
static msg_t *request_of(browser_dialog *d, const char *method, const char *ctype,
                         const char *body, const char *extra, uint32_t *cseq)
{
  msg_t *msg = NULL;

  g_assert_cmpint(browser_dialog_make_request(d, method, ctype, body, extra, cseq, &msg), ==, 0);
  return wire(msg, false);
}

/* The headers every in-dialog request of rtcsipd has, here towards RURI. */
static void check_in_dialog(su_home_t *home, sip_t *sip, const char *method, const char *ruri,
                            uint32_t seq, const char *protocol, const char *from_tag,
                            const char *to_tag)
{
  check_request(home, sip, method, ruri, seq, protocol);
  g_assert_cmpstr(sip->sip_from->a_tag, ==, from_tag);
  g_assert_cmpstr(sip->sip_to->a_tag, ==, to_tag);
}

static void test_uac_reinvite(void)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  msg_t *inv, *msg, *resp, *ack, *other = NULL;
  browser_dialog *d = confirmed_uac(home, &inv);
  const char *ours = su_strdup(home, sip_object(inv)->sip_from->a_tag);
  const char *rbranch;
  browser_txn which = BROWSER_TXN_INVITE;
  int status = 0;
  uint32_t seq = 0;
  sip_t *sip;

  /* the re-INVITE: CSeq 2 (the INVITE had 1), tags, Contact, Allow, SDP,
   * the route set reversed, to the browser's Contact */
  g_assert_false(browser_dialog_offer_pending(d));
  msg = request_of(d, "INVITE", "application/sdp", SDP, NULL, &seq);
  g_assert_cmpuint(seq, ==, 2);
  sip = sip_object(msg);
  check_in_dialog(home, sip, "INVITE", BROWSER_TARGET, 2, "SIP/2.0/WSS", ours, BROWSER_TAG);
  g_assert_cmpstr(sip->sip_via->v_branch, !=, sip_object(inv)->sip_via->v_branch);
  g_assert_cmpstr(routes(home, sip->sip_route), ==,
                  "sip:p2.example.org;transport=ws;lr|sip:p1.example.org;lr");
  g_assert_nonnull(sip->sip_contact);
  g_assert_cmpstr(url_text(home, sip->sip_contact->m_url), ==,
                  "sip:rtcsipd@gw.example.org:8443;transport=wss");
  g_assert_nonnull(sip->sip_allow);
  g_assert_true(sip_is_allowed(sip->sip_allow, sip_method_update, "UPDATE"));
  g_assert_cmpstr(sip->sip_content_type->c_type, ==, "application/sdp");
  g_assert_cmpmem(sip->sip_payload->pl_data, sip->sip_payload->pl_len, SDP, strlen(SDP));
  rbranch = su_strdup(home, sip->sip_via->v_branch);
  g_assert_true(browser_dialog_offer_pending(d));

  /* one offer at a time; other requests meanwhile */
  g_assert_cmpint(browser_dialog_make_request(d, "INVITE", NULL, NULL, NULL, NULL, &other), ==,
                  -EBUSY);
  g_assert_cmpint(browser_dialog_make_request(d, "UPDATE", NULL, NULL, NULL, NULL, &other), ==,
                  -EBUSY);
  g_assert_null(other);
  g_assert_null(browser_dialog_make_reinvite_ack(d)); /* no final response yet */

  /* 100, then 200 with a new Contact (a target refresh): ACKed here */
  resp = browser_response(home, msg, 100, "Trying", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_REINVITE);
  g_assert_cmpint(status, ==, 100);
  g_assert_cmpuint(browser_dialog_last_cseq(d), ==, 2);
  msg_destroy(resp);
  resp = browser_response(home, msg, 200, "OK", SIPTAG_CONTACT_STR("<" NEW_TARGET ">"),
                          SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                          SIPTAG_PAYLOAD_STR(SDP), TAG_END());
  g_assert_false(browser_dialog_take_response(d, FLOW + 1, resp, &which, &status));
  which = BROWSER_TXN_INVITE;
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_REINVITE);
  g_assert_cmpint(status, ==, 200);
  g_assert_cmpuint(browser_dialog_last_cseq(d), ==, 2);
  g_assert_false(browser_dialog_offer_pending(d));
  /* a repeated 200 is ACKed again, not reported */
  g_assert_false(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  msg_destroy(resp);

  /* that ACK: a new branch, the re-INVITE's CSeq number, the new target */
  ack = wire(browser_dialog_make_reinvite_ack(d), false);
  sip = sip_object(ack);
  check_in_dialog(home, sip, "ACK", NEW_TARGET, 2, "SIP/2.0/WSS", ours, BROWSER_TAG);
  g_assert_cmpstr(sip->sip_via->v_branch, !=, rbranch);
  g_assert_cmpstr(routes(home, sip->sip_route), ==,
                  "sip:p2.example.org;transport=ws;lr|sip:p1.example.org;lr");
  g_assert_null(sip->sip_payload);
  msg_destroy(ack);
  msg_destroy(msg);

  /* a re-INVITE without SDP, refused (491): reported, no longer pending */
  msg = request_of(d, "INVITE", NULL, NULL, NULL, &seq);
  g_assert_cmpuint(seq, ==, 3);
  sip = sip_object(msg);
  check_in_dialog(home, sip, "INVITE", NEW_TARGET, 3, "SIP/2.0/WSS", ours, BROWSER_TAG);
  g_assert_null(sip->sip_content_type);
  g_assert_true(sip->sip_payload == NULL || sip->sip_payload->pl_len == 0);
  g_assert_cmpuint(sip->sip_content_length->l_length, ==, 0);
  resp = browser_response(home, msg, 491, "Request Pending", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_REINVITE);
  g_assert_cmpint(status, ==, 491);
  g_assert_false(browser_dialog_offer_pending(d));
  msg_destroy(resp);
  msg_destroy(msg);

  /* an UPDATE: Contact, answered as BROWSER_TXN_OTHER */
  msg = request_of(d, "UPDATE", "application/sdp", SDP, NULL, &seq);
  g_assert_cmpuint(seq, ==, 4);
  sip = sip_object(msg);
  check_in_dialog(home, sip, "UPDATE", NEW_TARGET, 4, "SIP/2.0/WSS", ours, BROWSER_TAG);
  g_assert_nonnull(sip->sip_contact);
  g_assert_true(browser_dialog_offer_pending(d));
  resp = browser_response(home, msg, 200, "OK", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_OTHER);
  g_assert_cmpuint(browser_dialog_last_cseq(d), ==, 4);
  g_assert_false(browser_dialog_offer_pending(d));
  g_assert_false(browser_dialog_take_response(d, FLOW, resp, &which, &status)); /* forgotten */
  msg_destroy(resp);
  msg_destroy(msg);

  msg_destroy(inv);
  browser_dialog_free(d);
  su_home_deinit(home);
}

static void test_uac_info_notify(void)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  msg_t *inv, *info, *notify, *refer, *resp, *msg = NULL;
  browser_dialog *d = confirmed_uac(home, &inv);
  const char *ours = sip_object(inv)->sip_from->a_tag;
  browser_txn which = BROWSER_TXN_INVITE;
  int status = 0;
  uint32_t seq = 0;
  sip_t *sip;

  /* INFO with a DTMF body and a header of its own; no Contact */
  info = request_of(d, "INFO", "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n",
                    "X-Gateway: rtcsipd\r\n", &seq);
  g_assert_cmpuint(seq, ==, 2);
  sip = sip_object(info);
  check_in_dialog(home, sip, "INFO", BROWSER_TARGET, 2, "SIP/2.0/WSS", ours, BROWSER_TAG);
  g_assert_null(sip->sip_contact);
  g_assert_cmpstr(sip->sip_content_type->c_type, ==, "application/dtmf-relay");
  g_assert_cmpmem(sip->sip_payload->pl_data, sip->sip_payload->pl_len,
                  "Signal=5\r\nDuration=160\r\n", 24);
  g_assert_nonnull(sip->sip_unknown);
  g_assert_cmpstr(sip->sip_unknown->un_name, ==, "X-Gateway");
  g_assert_cmpstr(sip->sip_unknown->un_value, ==, "rtcsipd");

  /* NOTIFY of a transfer's progress: Event, Subscription-State, sipfrag */
  notify = request_of(d, "NOTIFY", "message/sipfrag;version=2.0", "SIP/2.0 200 OK\r\n",
                      "Event: refer\r\nSubscription-State: terminated;reason=noresource\r\n",
                      &seq);
  g_assert_cmpuint(seq, ==, 3);
  sip = sip_object(notify);
  check_in_dialog(home, sip, "NOTIFY", BROWSER_TARGET, 3, "SIP/2.0/WSS", ours, BROWSER_TAG);
  g_assert_nonnull(sip->sip_contact);
  g_assert_cmpstr(sip->sip_event->o_type, ==, "refer");
  g_assert_cmpstr(sip->sip_subscription_state->ss_substate, ==, "terminated");
  g_assert_cmpstr(sip->sip_content_type->c_type, ==, "message/sipfrag");
  g_assert_cmpmem(sip->sip_payload->pl_data, sip->sip_payload->pl_len, "SIP/2.0 200 OK\r\n", 16);

  /* REFER */
  refer = request_of(d, "REFER", NULL, NULL, "Refer-To: <sip:carol@example.org>\r\n", &seq);
  g_assert_cmpuint(seq, ==, 4);
  sip = sip_object(refer);
  check_in_dialog(home, sip, "REFER", BROWSER_TARGET, 4, "SIP/2.0/WSS", ours, BROWSER_TAG);
  g_assert_nonnull(sip->sip_contact);
  g_assert_cmpstr(url_text(home, sip->sip_refer_to->r_url), ==, "sip:carol@example.org");

  /* their answers in any order, told apart by CSeq */
  resp = browser_response(home, notify, 200, "OK", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_OTHER);
  g_assert_cmpint(status, ==, 200);
  g_assert_cmpuint(browser_dialog_last_cseq(d), ==, 3);
  g_assert_false(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  msg_destroy(resp);
  resp = browser_response(home, refer, 202, "Accepted", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_OTHER);
  g_assert_cmpint(status, ==, 202);
  g_assert_cmpuint(browser_dialog_last_cseq(d), ==, 4);
  msg_destroy(resp);
  resp = browser_response(home, info, 200, "OK", TAG_END());
  /* the same branch with another CSeq or method is someone else's */
  sip_object(resp)->sip_cseq->cs_seq = 3;
  g_assert_false(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  msg_destroy(resp);
  resp = browser_response(home, info, 200, "OK", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpuint(browser_dialog_last_cseq(d), ==, 2);
  msg_destroy(resp);
  msg_destroy(info);
  msg_destroy(notify);
  msg_destroy(refer);

  /* more than 8 pending: the oldest is forgotten */
  {
    msg_t *sent[9];
    for (int i = 0; i < 9; i++)
      sent[i] = request_of(d, "OPTIONS", NULL, NULL, NULL, NULL);
    resp = browser_response(home, sent[0], 200, "OK", TAG_END());
    g_assert_false(browser_dialog_take_response(d, FLOW, resp, &which, &status));
    msg_destroy(resp);
    for (int i = 1; i < 9; i++) {
      resp = browser_response(home, sent[i], 200, "OK", TAG_END());
      g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
      g_assert_cmpuint(browser_dialog_last_cseq(d), ==, 5 + i);
      msg_destroy(resp);
    }
    for (int i = 0; i < 9; i++)
      msg_destroy(sent[i]);
  }

  /* what is refused */
  g_assert_cmpint(browser_dialog_make_request(d, "INFO", NULL, NULL, "CSeq: 9 INFO\r\n", NULL,
                                              &msg), ==, -EINVAL);
  g_assert_cmpint(browser_dialog_make_request(d, "INFO", NULL, NULL, "no header here\r\n", NULL,
                                              &msg), ==, -EINVAL);
  g_assert_cmpint(browser_dialog_make_request(d, "INFO", NULL, NULL, "Contact: <sip:x@y>\r\n",
                                              NULL, &msg), ==, -EINVAL);
  g_assert_cmpint(browser_dialog_make_request(d, "INFO", NULL, "Signal=1", NULL, NULL, &msg), ==,
                  -EINVAL); /* a body without its type */
  g_assert_cmpint(browser_dialog_make_request(d, "ACK", NULL, NULL, NULL, NULL, &msg), ==,
                  -EINVAL);
  g_assert_cmpint(browser_dialog_make_request(d, "CANCEL", NULL, NULL, NULL, NULL, &msg), ==,
                  -EINVAL);
  g_assert_cmpint(browser_dialog_make_request(d, "info", NULL, NULL, NULL, NULL, &msg), ==,
                  -EINVAL);
  g_assert_cmpint(browser_dialog_make_request(d, "", NULL, NULL, NULL, NULL, &msg), ==, -EINVAL);
  g_assert_null(msg);
  g_assert_cmpint(browser_dialog_send_request(d, "INFO", NULL, NULL, NULL, &seq), ==, -ENOTCONN);
  /* nothing was taken: the next CSeq follows the last sent */
  msg = request_of(d, "OPTIONS", NULL, NULL, NULL, &seq);
  g_assert_cmpuint(seq, ==, 14);
  msg_destroy(msg);

  /* a BYE with a Reason ends what can be sent */
  msg = request_of(d, "BYE", NULL, NULL, "Reason: SIP;cause=200;text=\"Call completed\"\r\n",
                   &seq);
  g_assert_cmpuint(seq, ==, 15);
  g_assert_nonnull(sip_object(msg)->sip_reason);
  resp = browser_response(home, msg, 200, "OK", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_BYE);
  msg_destroy(resp);
  msg_destroy(msg);
  msg = NULL;
  g_assert_cmpint(browser_dialog_make_request(d, "INFO", NULL, NULL, NULL, NULL, &msg), ==,
                  -EINVAL);

  msg_destroy(inv);
  browser_dialog_free(d);
  su_home_deinit(home);
}

/* Before the 2xx only an UPDATE goes, once the browser's 1xx made an
 * early dialog. */
static void test_uac_early(void)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  browser_dialog *d = new_uac(home, false);
  msg_t *inv = wire(browser_dialog_sent_invite(d), true);
  msg_t *resp, *msg = NULL;

  g_assert_cmpint(browser_dialog_make_request(d, "UPDATE", NULL, NULL, NULL, NULL, &msg), ==,
                  -EINVAL);
  resp = browser_response(home, inv, 180, "Ringing", SIPTAG_CONTACT_STR("<" BROWSER_TARGET ">"),
                          TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, NULL, NULL));
  msg_destroy(resp);
  g_assert_cmpint(browser_dialog_make_request(d, "INFO", NULL, NULL, NULL, NULL, &msg), ==,
                  -EINVAL);
  g_assert_cmpint(browser_dialog_make_request(d, "INVITE", NULL, NULL, NULL, NULL, &msg), ==,
                  -EINVAL);
  msg = request_of(d, "UPDATE", "application/sdp", SDP, NULL, NULL);
  check_in_dialog(home, sip_object(msg), "UPDATE", BROWSER_TARGET, 2, "SIP/2.0/WS",
                  sip_object(inv)->sip_from->a_tag, BROWSER_TAG);
  msg_destroy(msg);
  msg_destroy(inv);
  browser_dialog_free(d);
  su_home_deinit(home);
}

/* A request of the browser in the dialog: FROM_TAG and TO_TAG, CSeq SEQ,
 * a Contact and SDP when CONTACT is not NULL. */
static msg_t *browser_in_dialog(const char *method, const char *from, const char *to,
                                uint32_t seq, const char *contact)
{
  g_autofree char *text = g_strdup_printf(
      "%s sip:rtcsipd@gw.example.org:8443;transport=wss SIP/2.0\r\n"
      "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK%u\r\n"
      "Max-Forwards: 69\r\n"
      "From: %s\r\n"
      "To: %s\r\n"
      "Call-ID: c4ll-1d@pbx\r\n"
      "CSeq: %u %s\r\n"
      "%s%s%s"
      "Content-Length: %zu\r\n\r\n%s",
      method, seq, from, to, seq, method, contact ? "Contact: <" : "", contact ? contact : "",
      contact ? ">\r\nContent-Type: application/sdp\r\n" : "", contact ? strlen(SDP) : 0,
      contact ? SDP : "");
  return parse_ok(text);
}

static void test_uas_reinvite(void)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  browser_dialog *d = browser_dialog_new_on(NULL, FLOW, true, parse_ok(uas_invite),
                                            "gw.example.org:8443");
  const char *target = "sip:k3mv8f2q@df7jal23ls0d.invalid;transport=ws;ob";
  msg_t *msg = NULL, *resp, *rq, *early = NULL;
  g_autofree char *from = NULL, *to = NULL;
  browser_txn which = BROWSER_TXN_INVITE;
  const char *ours;
  uint32_t seq = 0, seq2 = 0;
  int status = 0;
  sip_t *sip;

  g_assert_nonnull(d);
  g_assert_cmpint(browser_dialog_make_request(d, "INVITE", NULL, NULL, NULL, NULL, &early), ==,
                  -EINVAL);
  g_assert_cmpint(browser_dialog_make_request(d, "UPDATE", NULL, NULL, NULL, NULL, &early), ==,
                  -EINVAL); /* no 1xx went: no early dialog */
  g_assert_cmpint(browser_dialog_respond(d, 180, "Ringing", NULL), ==, -ENOTCONN);
  early = request_of(d, "UPDATE", "application/sdp", SDP, NULL, &seq);
  check_in_dialog(home, sip_object(early), "UPDATE", target, seq, "SIP/2.0/WSS",
                  sip_object(early)->sip_from->a_tag, "jssiptag1");
  g_assert_nonnull(sip_object(early)->sip_contact);
  g_assert_cmpint(browser_dialog_make_request(d, "INFO", NULL, NULL, NULL, NULL, &msg), ==,
                  -EINVAL);
  /* the INVITE's 200 while the UPDATE is pending: no re-INVITE yet */
  g_assert_cmpint(browser_dialog_respond(d, 200, "OK", SDP), ==, -ENOTCONN);
  g_assert_true(browser_dialog_offer_pending(d));
  g_assert_cmpint(browser_dialog_make_request(d, "INVITE", "application/sdp", SDP, NULL, NULL,
                                              &msg), ==, -EBUSY);
  /* a response with another branch is not the UPDATE's */
  resp = browser_response(home, early, 200, "OK", TAG_END());
  sip_object(resp)->sip_via->v_branch = "z9hG4bKnot";
  g_assert_false(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  msg_destroy(resp);
  resp = browser_response(home, early, 200, "OK", TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_OTHER);
  g_assert_cmpuint(browser_dialog_last_cseq(d), ==, seq);
  g_assert_false(browser_dialog_offer_pending(d));
  msg_destroy(resp);
  msg_destroy(early);
  msg = request_of(d, "INVITE", NULL, NULL, NULL, &seq2);
  g_assert_cmpuint(seq2, ==, seq + 1);
  msg_destroy(msg);
  browser_dialog_free(d);

  /* a confirmed dialog */
  d = browser_dialog_new_on(NULL, FLOW, true, parse_ok(uas_invite), "gw.example.org:8443");
  g_assert_cmpint(browser_dialog_respond(d, 200, "OK", SDP), ==, -ENOTCONN);
  msg = request_of(d, "INVITE", "application/sdp", SDP, NULL, &seq);
  sip = sip_object(msg);
  ours = su_strdup(home, sip->sip_from->a_tag);
  check_in_dialog(home, sip, "INVITE", target, seq, "SIP/2.0/WSS", ours, "jssiptag1");
  g_assert_cmpuint(strlen(ours), ==, 16);
  g_assert_cmpstr(url_text(home, sip->sip_from->a_url), ==, "sip:echo@gw.example.org");
  g_assert_cmpstr(url_text(home, sip->sip_to->a_url), ==, "sip:bob@example.org");
  g_assert_cmpstr(routes(home, sip->sip_route), ==, "sip:p1.example.org;lr|sip:p2.example.org;lr");
  g_assert_cmpstr(url_text(home, sip->sip_contact->m_url), ==,
                  "sip:rtcsipd@gw.example.org:8443;transport=wss");
  g_assert_nonnull(sip->sip_payload);
  resp = browser_response(home, msg, 200, "OK", SIPTAG_CONTACT_STR("<" NEW_TARGET ">"),
                          SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(SDP),
                          TAG_END());
  g_assert_true(browser_dialog_take_response(d, FLOW, resp, &which, &status));
  g_assert_cmpint(which, ==, BROWSER_TXN_REINVITE);
  g_assert_cmpuint(browser_dialog_last_cseq(d), ==, seq);
  msg_destroy(resp);
  resp = wire(browser_dialog_make_reinvite_ack(d), false);
  check_in_dialog(home, sip_object(resp), "ACK", NEW_TARGET, seq, "SIP/2.0/WSS", ours,
                  "jssiptag1");
  g_assert_cmpstr(routes(home, sip_object(resp)->sip_route), ==,
                  "sip:p1.example.org;lr|sip:p2.example.org;lr");
  msg_destroy(resp);
  msg_destroy(msg);
  /* INFO: the next CSeq */
  msg = request_of(d, "INFO", NULL, NULL, NULL, &seq2);
  g_assert_cmpuint(seq2, ==, seq + 1);
  msg_destroy(msg);

  /* the browser's re-INVITE (a new Contact), matched and answered */
  from = g_strdup("\"Bob\" <sip:bob@example.org>;tag=jssiptag1");
  to = g_strdup_printf("<sip:echo@gw.example.org>;tag=%s", ours);
  rq = browser_in_dialog("INVITE", from, to, 8246, "sip:k3mv8f2q@192.0.2.99;transport=ws");
  g_assert_true(browser_dialog_matches(d, FLOW, rq));
  resp = wire(browser_dialog_make_reply(d, rq, 200, "OK", SDP, "Supported: timer\r\n"), false);
  sip = sip_object(resp);
  g_assert_cmpint(sip->sip_status->st_status, ==, 200);
  g_assert_cmpuint(sip->sip_cseq->cs_seq, ==, 8246);
  g_assert_cmpstr(sip->sip_cseq->cs_method_name, ==, "INVITE");
  g_assert_cmpstr(sip->sip_from->a_tag, ==, "jssiptag1");
  g_assert_cmpstr(sip->sip_to->a_tag, ==, ours);
  g_assert_cmpstr(url_text(home, sip->sip_contact->m_url), ==,
                  "sip:rtcsipd@gw.example.org:8443;transport=wss");
  g_assert_cmpstr(sip->sip_content_type->c_type, ==, "application/sdp");
  g_assert_cmpmem(sip->sip_payload->pl_data, sip->sip_payload->pl_len, SDP, strlen(SDP));
  g_assert_nonnull(sip->sip_supported);
  msg_destroy(resp);
  g_assert_cmpint(browser_dialog_reply_full(d, rq, 200, "OK", SDP, NULL), ==, -ENOTCONN);
  msg_destroy(rq);
  /* its ACK, then the browser's other requests (increasing CSeq) */
  rq = browser_in_dialog("ACK", from, to, 8246, NULL);
  g_assert_true(browser_dialog_matches(d, FLOW, rq));
  g_assert_null(browser_dialog_make_reply(d, rq, 200, "OK", NULL, NULL));
  g_assert_cmpint(browser_dialog_reply_full(d, rq, 200, "OK", NULL, NULL), ==, -EINVAL);
  msg_destroy(rq);
  {
    const char *methods[] = { "UPDATE", "INFO", "REFER", "NOTIFY", "OPTIONS" };
    for (unsigned i = 0; i < G_N_ELEMENTS(methods); i++) {
      rq = browser_in_dialog(methods[i], from, to, 8247 + i, NULL);
      g_assert_true(browser_dialog_matches(d, FLOW, rq));
      resp = wire(browser_dialog_make_reply(d, rq, 200, "OK", NULL, NULL), false);
      g_assert_cmpstr(sip_object(resp)->sip_to->a_tag, ==, ours);
      /* Contact only on a 2xx to INVITE/UPDATE */
      g_assert_true((sip_object(resp)->sip_contact != NULL) == (i == 0));
      msg_destroy(resp);
      msg_destroy(rq);
    }
  }
  /* an old CSeq still matches (call.c decides) */
  rq = browser_in_dialog("INFO", from, to, 17, NULL);
  g_assert_true(browser_dialog_matches(d, FLOW, rq));
  msg_destroy(rq);

  /* the re-INVITE's Contact is the new remote target */
  msg = request_of(d, "INFO", NULL, NULL, NULL, &seq2);
  g_assert_cmpstr(url_text(home, sip_object(msg)->sip_request->rq_url), ==,
                  "sip:k3mv8f2q@192.0.2.99;transport=ws");
  msg_destroy(msg);
  browser_dialog_free(d);
  su_home_deinit(home);
}

/* The browser's re-INVITE when rtcsipd called it. */
static void test_uac_browser_reinvite(void)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  msg_t *inv, *rq, *resp;
  browser_dialog *d = confirmed_uac(home, &inv);
  const char *ours = sip_object(inv)->sip_from->a_tag;
  g_autofree char *from = g_strdup_printf("<sip:bob@example.org>;tag=%s", BROWSER_TAG);
  g_autofree char *to = g_strdup_printf("\"Alice\" <sip:alice@pbx.example.org>;tag=%s", ours);
  sip_t *sip;

  rq = browser_in_dialog("INVITE", from, to, 9001, BROWSER_TARGET);
  g_assert_true(browser_dialog_matches(d, FLOW, rq));
  resp = wire(browser_dialog_make_reply(d, rq, 200, "OK", SDP, NULL), false);
  sip = sip_object(resp);
  g_assert_cmpstr(sip->sip_from->a_tag, ==, BROWSER_TAG);
  g_assert_cmpstr(sip->sip_to->a_tag, ==, ours);
  g_assert_cmpstr(url_text(home, sip->sip_contact->m_url), ==,
                  "sip:rtcsipd@gw.example.org:8443;transport=wss");
  g_assert_nonnull(sip->sip_payload);
  msg_destroy(resp);
  /* a 491 carries neither */
  resp = wire(browser_dialog_make_reply(d, rq, 491, "Request Pending", NULL, NULL), false);
  g_assert_null(sip_object(resp)->sip_contact);
  g_assert_cmpstr(sip_object(resp)->sip_to->a_tag, ==, ours);
  msg_destroy(resp);
  g_assert_null(browser_dialog_make_reply(d, rq, 200, "OK", NULL, "garbage\r\n"));
  msg_destroy(rq);
  rq = browser_in_dialog("ACK", from, to, 9001, NULL);
  g_assert_true(browser_dialog_matches(d, FLOW, rq));
  msg_destroy(rq);

  msg_destroy(inv);
  browser_dialog_free(d);
  su_home_deinit(home);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/browser_dialog/uac/invite", test_uac_invite);
  g_test_add_func("/browser_dialog/uac/bad_params", test_uac_bad_params);
  g_test_add_func("/browser_dialog/uac/answered", test_uac_answered);
  g_test_add_func("/browser_dialog/uac/matches", test_uac_matches);
  g_test_add_func("/browser_dialog/uac/rejected", test_uac_rejected);
  g_test_add_func("/browser_dialog/uas", test_uas);
  g_test_add_func("/browser_dialog/uac/reinvite", test_uac_reinvite);
  g_test_add_func("/browser_dialog/uac/info_notify", test_uac_info_notify);
  g_test_add_func("/browser_dialog/uac/early", test_uac_early);
  g_test_add_func("/browser_dialog/uac/browser_reinvite", test_uac_browser_reinvite);
  g_test_add_func("/browser_dialog/uas/reinvite", test_uas_reinvite);
  return g_test_run();
}
