/* webrtc/stun_responder.c: the answers a media worker gives the browser's
 * ICE checks, built and checked with libnice's STUN library as a browser's
 * agent would (the request's integrity, the response's, its mapped address). */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <glib.h>
#include <stun/stunagent.h>
#include <stun/usages/ice.h>

#include "webrtc/stun_responder.h"

#define OUR_UFRAG "gw12"
#define OUR_PWD "0123456789abcdefghijkl"

typedef struct {
  StunAgent agent;
  uint8_t req[1280];
  size_t req_len;
} browser;

static void browser_init(browser *b)
{
  stun_agent_init(&b->agent, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC5389,
                  STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
}

/* A consent check as Chromium sends it: USERNAME "ours:theirs", our password. */
static void browser_check(browser *b, const char *username, const char *pwd, bool controlling)
{
  StunMessage msg;
  b->req_len = stun_usage_ice_conncheck_create(&b->agent, &msg, b->req, sizeof b->req,
                                               (const uint8_t *)username, strlen(username),
                                               (const uint8_t *)pwd, strlen(pwd), controlling,
                                               controlling, 0x6e7f00ff, 0x1234567890abcdefULL, NULL,
                                               STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
  g_assert_cmpuint(b->req_len, >, 20);
}

static struct sockaddr_in peer_address(void)
{
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(54321) };
  inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
  return sin;
}

static void test_answers_check(void)
{
  for (int controlling = 0; controlling <= 1; controlling++) {
    stun_responder r;
    browser b;
    uint8_t out[STUN_RESPONDER_MAX_REPLY];
    size_t n = 0;
    struct sockaddr_in from = peer_address();

    g_assert_cmpint(stun_responder_init(&r, OUR_UFRAG, OUR_PWD), ==, 0);
    browser_init(&b);
    browser_check(&b, OUR_UFRAG ":br99", OUR_PWD, controlling);
    g_assert_cmpint(stun_responder_reply(&r, b.req, b.req_len, (struct sockaddr *)&from, sizeof from,
                                         out, sizeof out, &n), ==, 0);
    g_assert_cmpuint(n, >, 20);

    /* the browser's agent takes it: its transaction, our integrity, its address */
    StunMessage resp;
    StunDefaultValidaterData v[] = { { (uint8_t *)OUR_UFRAG ":br99", strlen(OUR_UFRAG ":br99"),
                                       (uint8_t *)OUR_PWD, strlen(OUR_PWD) } };
    g_assert_cmpint(stun_agent_validate(&b.agent, &resp, out, n, stun_agent_default_validater, v), ==,
                    STUN_VALIDATION_SUCCESS);
    g_assert_cmpint(stun_message_get_class(&resp), ==, STUN_RESPONSE);
    struct sockaddr_storage mapped;
    socklen_t mapped_len = sizeof mapped;
    g_assert_cmpint(stun_usage_ice_conncheck_process(&resp, &mapped, &mapped_len,
                                                     STUN_USAGE_ICE_COMPATIBILITY_RFC5245), ==,
                    STUN_USAGE_ICE_RETURN_SUCCESS);
    struct sockaddr_in *m = (struct sockaddr_in *)&mapped;
    g_assert_cmpint(m->sin_family, ==, AF_INET);
    g_assert_cmpuint(m->sin_port, ==, from.sin_port);
    g_assert_cmpuint(m->sin_addr.s_addr, ==, from.sin_addr.s_addr);
  }
}

static void test_refuses(void)
{
  stun_responder r;
  browser b;
  uint8_t out[STUN_RESPONDER_MAX_REPLY];
  size_t n = 99;
  struct sockaddr_in from = peer_address();

  g_assert_cmpint(stun_responder_init(&r, OUR_UFRAG, OUR_PWD), ==, 0);
  browser_init(&b);
  /* another ufrag (an old one, after an ICE restart), a wrong password */
  browser_check(&b, "zz99:br99", OUR_PWD, true);
  g_assert_cmpint(stun_responder_reply(&r, b.req, b.req_len, (struct sockaddr *)&from, sizeof from,
                                       out, sizeof out, &n), ==, -EBADMSG);
  g_assert_cmpuint(n, ==, 0);
  browser_check(&b, OUR_UFRAG ":br99", "not-the-password-at-all", true);
  g_assert_cmpint(stun_responder_reply(&r, b.req, b.req_len, (struct sockaddr *)&from, sizeof from,
                                       out, sizeof out, &n), ==, -EBADMSG);
  /* a good one, cut short, or with a byte changed */
  browser_check(&b, OUR_UFRAG ":br99", OUR_PWD, true);
  for (size_t len = 0; len < b.req_len; len += 3)
    g_assert_cmpint(stun_responder_reply(&r, b.req, len, (struct sockaddr *)&from, sizeof from, out,
                                         sizeof out, &n), ==, -EBADMSG);
  b.req[30] ^= 1;
  g_assert_cmpint(stun_responder_reply(&r, b.req, b.req_len, (struct sockaddr *)&from, sizeof from,
                                       out, sizeof out, &n), ==, -EBADMSG);
  /* RTP is not STUN */
  uint8_t rtp[172] = { 0x80, 0x6f };
  g_assert_cmpint(stun_responder_reply(&r, rtp, sizeof rtp, (struct sockaddr *)&from, sizeof from,
                                       out, sizeof out, &n), ==, -EBADMSG);
  /* credentials */
  g_assert_cmpint(stun_responder_init(&r, "", OUR_PWD), ==, -EINVAL);
  g_assert_cmpint(stun_responder_init(&r, OUR_UFRAG, NULL), ==, -EINVAL);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/stun_responder/answers-check", test_answers_check);
  g_test_add_func("/stun_responder/refuses", test_refuses);
  return g_test_run();
}
