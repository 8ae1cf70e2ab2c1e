/* Unit tests: SIP parsing (sip/sipmsg.c) and the edge proxy's rewriting
 * (sip/rewrite.c) on messages as JsSIP and Kamailio send them. */
#include <errno.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>

#include "sip/rewrite.h"
#include "sip/sipmsg.h"

static char *read_data(const char *name)
{
  g_autofree char *path = g_test_build_filename(G_TEST_DIST, "data", "sip", name, NULL);
  char *text = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_get_contents(path, &text, NULL, &error));
  return text;
}

static msg_t *parse_ok(const char *text)
{
  msg_t *msg = NULL;
  const char *why = NULL;
  g_assert_cmpint(sipmsg_parse(text, strlen(text), &msg, &why), ==, SIPMSG_OK);
  g_assert_nonnull(msg);
  return msg;
}

/* Prints MSG and parses the text again, as the peer would. */
static msg_t *reparse(msg_t *msg)
{
  size_t len = 0;
  g_autofree char *text = sipmsg_print(msg, &len);
  g_assert_nonnull(text);
  g_assert_cmpuint(len, ==, strlen(text));
  return parse_ok(text);
}

static const rewrite_target target = { "127.0.0.1", 5070, "udp" };

static void test_parse_results(void)
{
  msg_t *msg = NULL;
  const char *why = NULL;
  g_autofree char *reg = read_data("jssip-register.txt");

  msg = parse_ok(reg);
  g_assert_cmpstr(sip_object(msg)->sip_via->v_protocol, ==, "SIP/2.0/WSS");
  msg_destroy(msg);

  /* garbage: nothing to answer */
  g_assert_cmpint(sipmsg_parse("hello world", 11, &msg, &why), ==, SIPMSG_BAD_MESSAGE);
  g_assert_null(msg);
  g_assert_nonnull(why);

  /* a request with no Via is still answered (over the flow it came on) */
  const char *novia = "OPTIONS sip:example.com SIP/2.0\r\nFrom: <sip:a@example.com>;tag=1\r\n"
                      "To: <sip:example.com>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
  g_assert_cmpint(sipmsg_parse(novia, strlen(novia), &msg, &why), ==, SIPMSG_BAD_REQUEST);
  g_assert_cmpstr(why, ==, "missing Via header");
  {
    msg_t *r400 = sipmsg_response(msg, 400, "Bad Request", TAG_END());
    g_autofree char *text = sipmsg_print(r400, NULL);
    g_assert_nonnull(text);
    g_assert_true(g_str_has_prefix(text, "SIP/2.0 400 Bad Request\r\n"));
    g_assert_nonnull(strstr(text, "Call-ID: x\r\n"));
    msg_destroy(r400);
  }
  msg_destroy(msg);

  /* another SIP version: 505 material */
  const char *v3 = "OPTIONS sip:example.com SIP/3.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK9\r\n"
                   "From: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: x\r\n"
                   "CSeq: 1 OPTIONS\r\n\r\n";
  g_assert_cmpint(sipmsg_parse(v3, strlen(v3), &msg, &why), ==, SIPMSG_BAD_VERSION);
  msg_destroy(msg);

  /* a broken CSeq: the request line and the Via still carry a 400 back,
   * matched by its branch */
  const char *badcseq = "OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK7\r\n"
                        "From: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: x\r\n"
                        "CSeq: banana\r\n\r\n";
  g_assert_cmpint(sipmsg_parse(badcseq, strlen(badcseq), &msg, &why), ==, SIPMSG_BAD_REQUEST);
  g_assert_cmpstr(why, ==, "missing or malformed CSeq header");
  {
    msg_t *r400 = sipmsg_response(msg, 400, "Bad Request", TAG_END());
    g_assert_nonnull(r400);
    msg_t *again = reparse(r400);
    g_assert_cmpint(sip_object(again)->sip_status->st_status, ==, 400);
    g_assert_cmpstr(sip_object(again)->sip_via->v_branch, ==, "z9hG4bK7");
    msg_destroy(again);
    msg_destroy(r400);
  }
  msg_destroy(msg);

  /* a request line, a Via and the transaction headers, but a broken header: 400 material */
  const char *badexp = "OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK1\r\n"
                       "From: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: x\r\n"
                       "CSeq: 1 OPTIONS\r\nExpires: tomorrow\r\nContact: <<<\r\n\r\n";
  g_assert_cmpint(sipmsg_parse(badexp, strlen(badexp), &msg, &why), ==, SIPMSG_BAD_REQUEST);
  g_assert_nonnull(msg);
  msg_t *resp = sipmsg_response(msg, 400, "Bad Request", TAG_END());
  g_assert_nonnull(resp);
  msg_t *back = reparse(resp);
  sip_t *sip = sip_object(back);
  g_assert_cmpint(sip->sip_status->st_status, ==, 400);
  g_assert_cmpstr(sip->sip_via->v_branch, ==, "z9hG4bK1");
  g_assert_cmpstr(sip->sip_call_id->i_id, ==, "x");
  g_assert_nonnull(sip->sip_to->a_tag);
  msg_destroy(back);
  msg_destroy(resp);
  msg_destroy(msg);

  /* only a request line and a Via: the 400 says what is missing, with the
   * Via the sender matches it by */
  const char *bare = "MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK3\r\n\r\n";
  g_assert_cmpint(sipmsg_parse(bare, strlen(bare), &msg, &why), ==, SIPMSG_BAD_REQUEST);
  g_assert_cmpstr(why, ==, "missing or malformed From header");
  {
    msg_t *r400 = sipmsg_response(msg, 400, "Bad Request", TAG_END());
    g_autofree char *text = r400 ? sipmsg_print(r400, NULL) : NULL;
    g_assert_nonnull(text);
    g_assert_nonnull(strstr(text, "branch=z9hG4bK3"));
    g_assert_nonnull(strstr(text, "CSeq: 0 MESSAGE\r\n"));
    if (r400)
      msg_destroy(r400);
  }
  msg_destroy(msg);

  /* CSeq method that is not the request's */
  const char *mismatch = "MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK2\r\n"
                         "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: y\r\n"
                         "CSeq: 1 INVITE\r\n\r\n";
  g_assert_cmpint(sipmsg_parse(mismatch, strlen(mismatch), &msg, &why), ==, SIPMSG_BAD_REQUEST);
  msg_destroy(msg);
}

static void test_register_request(void)
{
  g_autofree char *reg = read_data("jssip-register.txt");
  msg_t *msg = parse_ok(reg);

  g_assert_cmpint(rewrite_register_request(msg, &target, "tok123", 300), ==, 1);
  msg_t *out = reparse(msg);
  sip_t *sip = sip_object(out);
  sip_contact_t *m = sip->sip_contact;

  g_assert_nonnull(m);
  g_assert_null(m->m_next);
  g_assert_cmpstr(m->m_url->url_user, ==, "tok123");
  g_assert_cmpstr(m->m_url->url_host, ==, "127.0.0.1");
  g_assert_cmpstr(m->m_url->url_port, ==, "5070");
  g_assert_cmpstr(m->m_url->url_params, ==, "transport=udp");
  /* the flow's reg-id is gone, the instance id stays, the expiry is capped */
  g_assert_false(msg_params_find(m->m_params, "reg-id"));
  g_assert_nonnull(msg_params_find(m->m_params, "+sip.instance"));
  g_assert_cmpstr(m->m_expires, ==, "300");
  g_assert_cmpuint(sip->sip_expires->ex_delta, ==, 300);
  /* everything the PBX needs for digest auth is untouched */
  g_assert_cmpstr(sip->sip_request->rq_url->url_host, ==, "example.com");
  g_assert_cmpstr(sip->sip_from->a_tag, ==, "tv1bf3k9hi");
  msg_destroy(out);
  msg_destroy(msg);
}

static void test_register_request_shapes(void)
{
  const char *star = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK3\r\n"
                     "From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: z\r\n"
                     "CSeq: 3 REGISTER\r\nContact: *\r\nExpires: 0\r\n\r\n";
  const char *two = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK4\r\n"
                    "From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: z\r\n"
                    "CSeq: 4 REGISTER\r\nContact: <sip:x@h.invalid;transport=ws>, <sip:y@h.invalid;transport=ws>\r\n\r\n";
  msg_t *msg = parse_ok(star);
  g_assert_cmpint(rewrite_register_request(msg, &target, "t", 3600), ==, 0);
  msg_destroy(msg);
  msg = parse_ok(two);
  g_assert_cmpint(rewrite_register_request(msg, &target, "t", 3600), ==, -E2BIG);
  msg_destroy(msg);

  /* no expiry asked: the registrar's default must not pass max_expires */
  const char *none = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK5\r\n"
                     "From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: z\r\n"
                     "CSeq: 5 REGISTER\r\nContact: <sip:x@h.invalid;transport=ws>\r\n\r\n";
  msg = parse_ok(none);
  g_assert_cmpint(rewrite_register_request(msg, &target, "t", 120), ==, 1);
  {
    msg_t *out = reparse(msg);
    sip_t *sip = sip_object(out);
    g_assert_null(sip->sip_contact->m_expires);
    g_assert_nonnull(sip->sip_expires);
    g_assert_cmpuint(sip->sip_expires->ex_delta, ==, 120);
    msg_destroy(out);
  }
  msg_destroy(msg);
}

static void test_register_response(void)
{
  g_autofree char *text = read_data("kamailio-register-200.txt");
  msg_t *msg = parse_ok(text);
  unsigned expires = 0;

  {
    /* not bound: nothing of the other bindings is left either */
    msg_t *m2 = parse_ok(text);
    g_assert_cmpint(rewrite_register_response(m2, "nosuchtoken", "sip:x@y.invalid", &expires),
                    ==, -ENOENT);
    msg_t *o2 = reparse(m2);
    g_assert_null(sip_object(o2)->sip_contact);
    msg_destroy(o2);
    msg_destroy(m2);
  }
  g_assert_cmpint(rewrite_register_response(msg, "TOKEN", "sip:i7ip2q7b@5ql8ha0ae2vd.invalid;transport=ws",
                                            &expires), ==, 0);
  g_assert_cmpuint(expires, ==, 590);
  g_assert_cmpint(rewrite_pop_via(msg, "z9hG4bKabc"), ==, 0);

  msg_t *out = reparse(msg);
  sip_t *sip = sip_object(out);
  /* the browser finds its own Contact, as JsSIP looks for it: by user part;
   * another device's binding (othertoken00000) is not shown to it */
  sip_contact_t *mine = sip->sip_contact;
  g_assert_null(mine->m_next);
  g_assert_cmpstr(mine->m_url->url_user, ==, "i7ip2q7b");
  g_assert_cmpstr(mine->m_url->url_host, ==, "5ql8ha0ae2vd.invalid");
  g_assert_cmpstr(mine->m_url->url_params, ==, "transport=ws");
  g_assert_cmpstr(mine->m_expires, ==, "590");
  /* only the browser's own Via is left */
  g_assert_cmpstr(sip->sip_via->v_host, ==, "5ql8ha0ae2vd.invalid");
  g_assert_null(sip->sip_via->v_next);
  msg_destroy(out);
  msg_destroy(msg);
}

static void test_via_uri_maxforwards(void)
{
  g_autofree char *reg = read_data("jssip-register.txt");
  msg_t *msg = parse_ok(reg);

  g_assert_cmpint(rewrite_pop_via(msg, "z9hG4bKnotthis"), ==, -ENOENT);
  g_assert_cmpint(rewrite_push_via(msg, "WSS", "192.0.2.1", "z9hG4bKmine"), ==, 0);
  g_assert_cmpint(rewrite_request_uri(msg, "sip:i7ip2q7b@5ql8ha0ae2vd.invalid;transport=ws"), ==, 0);
  g_assert_cmpint(rewrite_max_forwards(msg), ==, 0);

  msg_t *out = reparse(msg);
  sip_t *sip = sip_object(out);
  g_assert_cmpstr(sip->sip_via->v_protocol, ==, "SIP/2.0/WSS");
  g_assert_cmpstr(sip->sip_via->v_host, ==, "192.0.2.1");
  g_assert_cmpstr(sip->sip_via->v_branch, ==, "z9hG4bKmine");
  g_assert_cmpstr(sip->sip_via->v_next->v_branch, ==, "z9hG4bK2207117");
  g_assert_cmpstr(sip->sip_request->rq_url->url_user, ==, "i7ip2q7b");
  g_assert_cmpint(sip->sip_request->rq_method, ==, sip_method_register);
  g_assert_cmpuint(sip->sip_max_forwards->mf_count, ==, 68);
  g_assert_cmpint(rewrite_pop_via(out, "z9hG4bKmine"), ==, 0);
  g_assert_cmpstr(sip->sip_via->v_branch, ==, "z9hG4bK2207117");
  msg_destroy(out);
  msg_destroy(msg);

  const char *zero = "MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK5\r\n"
                     "Max-Forwards: 0\r\nRoute: <sip:rtcsipd.example.com;transport=ws;lr>\r\n"
                     "Route: <sip:pbx.example.com;lr>\r\n"
                     "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: w\r\n"
                     "CSeq: 1 MESSAGE\r\n\r\n";
  msg = parse_ok(zero);
  g_assert_cmpint(rewrite_max_forwards(msg), ==, -ELOOP);
  msg_destroy(msg);

  /* the browser's routes never reach the PBX: a preloaded route to rtcsipd,
   * and one injected toward another host, and a Record-Route */
  const char *routed = "MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK6\r\n"
                       "Route: <sip:rtcsipd.example.com;transport=ws;lr>\r\n"
                       "Route: <sip:evil.example.net:5099;lr>, <sip:pbx.example.com;lr>\r\n"
                       "Record-Route: <sip:evil.example.net;lr>\r\nPath: <sip:evil.example.net;lr>\r\n"
                       "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: v\r\n"
                       "CSeq: 1 MESSAGE\r\n\r\n";
  msg = parse_ok(routed);
  rewrite_strip_routes(msg);
  {
    msg_t *stripped = reparse(msg);
    g_assert_null(sip_object(stripped)->sip_route);
    g_assert_null(sip_object(stripped)->sip_record_route);
    g_assert_null(sip_object(stripped)->sip_path);
    msg_destroy(stripped);
  }
  msg_destroy(msg);
}

/* The browser's Vias do not reach the PBX, and come back on the response. */
static void test_via_hiding(void)
{
  g_autofree char *reg = read_data("jssip-register.txt");
  msg_t *browser = parse_ok(reg);
  msg_t *toward_pbx = msg_dup(browser);
  sip_t *sip;

  rewrite_strip_vias(toward_pbx);
  g_assert_null(sip_object(toward_pbx)->sip_via);
  g_assert_cmpint(rewrite_push_via(toward_pbx, "UDP", "127.0.0.1:5070", "z9hG4bKours"), ==, 0);
  {
    g_autofree char *text = sipmsg_print(toward_pbx, NULL);
    /* (the Contact still names the browser: REGISTER rewriting is tested above) */
    g_assert_null(strstr(text, "SIP/2.0/WS"));
    g_assert_nonnull(strstr(text, "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKours\r\n"));
  }

  /* the PBX answers to rtcsipd's Via alone */
  msg_t *resp = sipmsg_response(toward_pbx, 200, "OK", TAG_END());
  g_assert_cmpint(rewrite_pop_via(resp, "z9hG4bKours"), ==, 0);
  g_assert_cmpint(rewrite_restore_vias(resp, sip_object(browser)->sip_via), ==, 0);
  msg_t *back = reparse(resp);
  sip = sip_object(back);
  g_assert_nonnull(sip->sip_via);
  g_assert_null(sip->sip_via->v_next);
  g_assert_cmpstr(sip->sip_via->v_protocol, ==, "SIP/2.0/WSS");
  g_assert_cmpstr(sip->sip_via->v_branch, ==, sip_object(browser)->sip_via->v_branch);
  g_assert_cmpstr(sip->sip_via->v_host, ==, sip_object(browser)->sip_via->v_host);
  msg_destroy(back);
  msg_destroy(resp);
  msg_destroy(toward_pbx);
  msg_destroy(browser);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/sipmsg/parse-results", test_parse_results);
  g_test_add_func("/rewrite/register-request", test_register_request);
  g_test_add_func("/rewrite/register-request-shapes", test_register_request_shapes);
  g_test_add_func("/rewrite/register-response", test_register_response);
  g_test_add_func("/rewrite/via-uri-max-forwards", test_via_uri_maxforwards);
  g_test_add_func("/rewrite/via-hiding", test_via_hiding);
  return g_test_run();
}
