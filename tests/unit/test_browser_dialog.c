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

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/browser_dialog/uac/invite", test_uac_invite);
  g_test_add_func("/browser_dialog/uac/bad_params", test_uac_bad_params);
  g_test_add_func("/browser_dialog/uac/answered", test_uac_answered);
  g_test_add_func("/browser_dialog/uac/matches", test_uac_matches);
  g_test_add_func("/browser_dialog/uac/rejected", test_uac_rejected);
  g_test_add_func("/browser_dialog/uas", test_uas);
  return g_test_run();
}
