/* Fuzz target: the SDP translation WebRTC <-> plain (sip/sdp_translate.c),
 * both ways.
 *
 * The input is two SDPs, A and B, separated by one 0xff byte (see
 * fuzz_common.h; without one, B is empty).  Every input is tried both ways:
 *
 *   a browser calls:  A = the browser's offer  -> plain offer to the PBX;
 *                     B = the PBX's answer     -> WebRTC answer to the browser
 *   the PBX calls:    A = the PBX's offer      -> WebRTC offer to the browser;
 *                     B = the browser's answer -> plain answer to the PBX
 *
 * Besides crashes and leaks it checks what sdp_translate.h promises: a
 * failure gives a reason; everything rtcsipd writes is SDP that Sofia-SIP
 * parses strictly and that rtcsipd's own parser takes back, and the plain
 * side never sees ICE, DTLS or other WebRTC attributes. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/sdp.h>
#include <sofia-sip/su_alloc.h>

#include "sip/sdp_translate.h"
#include "tests/fuzz/fuzz_common.h"

static const char *const local_candidates[] = {
  "candidate:1 1 udp 2130706431 203.0.113.5 40000 typ host",
  "candidate:2 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 203.0.113.5 rport 40000",
};
static const sdp_webrtc_local wlocal = {
  .address = "203.0.113.5",
  .port = 40000,
  .session_id = 4242,
  .session_version = 1,
  .ice_ufrag = "rtcS",
  .ice_pwd = "abcdefghijklmnopqrstuv+/",
  .fingerprint = "sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:"
                 "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
  .candidates = local_candidates,
  .n_candidates = 2,
  .end_of_candidates = true,
};
static const char *const codec_preference[] = {"PCMA", "opus", "G722", "PCMU", NULL};
static const sdp_plain_local plocal = {
  .address = "192.0.2.50",
  .port = 30000,
  .session_id = 777,
  .session_version = 3,
};
static const sdp_plain_local plocal_pref = {
  .address = "2001:db8::50",
  .port = 30002,
  .session_id = 778,
  .session_version = 1,
  .codecs = codec_preference,
  .ptime = 30,
};

/* What rtcsipd wrote: strict SDP to Sofia-SIP; PLAIN: nothing of WebRTC
 * (but, in an ANSWER, the a=mid of an m-line the offer named so: RFC 5888). */
static void check_written(const char *text, bool plain, bool answer)
{
  su_home_t *home = su_home_new(sizeof(su_home_t));
  sdp_parser_t *p = sdp_parse(home, text, (issize_t)strlen(text), sdp_f_strict);
  sdp_session_t *s = sdp_session(p);

  if (!s)
    fprintf(stderr, "fuzz_sdp: Sofia: %s\n%s\n", sdp_parsing_error(p), text);
  FUZZ_CHECK(s);
  if (plain) {
    static const char *const names[] = {
      "ice-ufrag", "ice-pwd", "ice-options", "ice-lite", "candidate", "end-of-candidates",
      "fingerprint", "setup", "ssrc", "ssrc-group", "extmap", "extmap-allow-mixed", "rtcp-fb",
      "rtcp-mux", "rtcp-rsize", "mid", "msid", "msid-semantic", "group",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
      if (answer && strcmp(names[i], "mid") == 0)
        continue;
      bool found = sdp_attribute_find(s->sdp_attributes, names[i]) != NULL;
      for (const sdp_media_t *m = s->sdp_media; m; m = m->m_next)
        found |= sdp_attribute_find(m->m_attributes, names[i]) != NULL;
      if (found)
        fprintf(stderr, "fuzz_sdp: a=%s in a plain SDP:\n%s\n", names[i], text);
      FUZZ_CHECK(!found);
    }
  }
  su_home_unref(home);
}

static void check_plain_out(const char *text, bool answer)
{
  sdp_plain *p = NULL;
  const char *why = NULL;

  check_written(text, true, answer);
  int r = sdp_plain_parse(text, strlen(text), &p, &why);
  if (r < 0)
    fprintf(stderr, "fuzz_sdp: own plain SDP refused: %d %s\n%s\n", r, why, text);
  FUZZ_CHECK(r == 0);
  sdp_plain_free(p);
}

static void check_webrtc_out(const char *text)
{
  sdp_webrtc *w = NULL;
  const char *why = NULL;

  check_written(text, false, true);
  int r = sdp_webrtc_parse(text, strlen(text), &w, &why);
  if (r < 0)
    fprintf(stderr, "fuzz_sdp: own WebRTC SDP refused: %d %s\n%s\n", r, why, text);
  FUZZ_CHECK(r == 0);
  sdp_webrtc_free(w);
}

/* R from a function of sdp_translate.h: 0, or a negative errno with a reason. */
static bool result_ok(int r, const char *why)
{
  FUZZ_CHECK(r <= 0);
  if (r < 0)
    FUZZ_CHECK(why && why[0]);
  return r == 0;
}

/* CALL (which sets WHY) returned 0; a failure must say why */
#define OK(call) ({ why = NULL; int r_ = (call); result_ok(r_, why); })

static void browser_calls(const char *a, size_t a_len, const char *b, size_t b_len, bool pref)
{
  sdp_webrtc *offer = NULL;
  sdp_plain *answer = NULL;
  char *out = NULL;
  const char *why = NULL;

  if (!OK(sdp_webrtc_parse(a, a_len, &offer, &why)))
    return;
  FUZZ_CHECK(offer->n_media <= SDP_MAX_MEDIA && offer->audio < offer->n_media);
  FUZZ_CHECK(offer->n_codecs <= SDP_MAX_CODECS && offer->n_candidates <= SDP_MAX_CANDIDATES);
  (void)sdp_setup_name(sdp_webrtc_answer_setup(offer));
  (void)sdp_dir_name(offer->dir);
  if (OK(sdp_plain_offer_from_webrtc(offer, pref ? &plocal_pref : &plocal, &out, &why))) {
    check_plain_out(out, false);
    g_free(out);
    out = NULL;
  }
  if (b && OK(sdp_plain_parse(b, b_len, &answer, &why))) {
    if (OK(sdp_webrtc_answer_from_plain(offer, answer, &wlocal, &out, &why))) {
      check_webrtc_out(out);
      g_free(out);
    }
    sdp_plain_free(answer);
  }
  sdp_webrtc_free(offer);
}

static void pbx_calls(const char *a, size_t a_len, const char *b, size_t b_len, bool pref)
{
  sdp_plain *offer = NULL;
  sdp_webrtc *answer = NULL;
  char *out = NULL;
  const char *why = NULL;

  if (!OK(sdp_plain_parse(a, a_len, &offer, &why)))
    return;
  FUZZ_CHECK(offer->n_media <= SDP_MAX_MEDIA && offer->audio < offer->n_media);
  FUZZ_CHECK(offer->n_codecs <= SDP_MAX_CODECS);
  if (OK(sdp_webrtc_offer_from_plain(offer, &wlocal, pref ? codec_preference : NULL, &out, &why))) {
    check_webrtc_out(out);
    g_free(out);
    out = NULL;
  }
  if (b && OK(sdp_webrtc_parse(b, b_len, &answer, &why))) {
    if (OK(sdp_plain_answer_from_webrtc(offer, answer, pref ? &plocal_pref : &plocal, &out, &why))) {
      check_plain_out(out, true);
      g_free(out);
    }
    sdp_webrtc_free(answer);
  }
  sdp_plain_free(offer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const uint8_t *p = data, *end = data + size, *a = NULL, *b = NULL;
  size_t a_len = 0, b_len = 0;
  /* the functions read exactly LEN bytes: copies without a terminating NUL
   * let ASan see any read past them */
  if (!fuzz_next_part(&p, end, &a, &a_len))
    return 0;
  if (!fuzz_next_part(&p, end, &b, &b_len))
    b = NULL;
  char *ca = g_memdup2(a, a_len ? a_len : 1), *cb = b ? g_memdup2(b, b_len ? b_len : 1) : NULL;
  /* the local side's codec preference and address family: from the input's length */
  bool pref = size & 1;

  browser_calls(ca, a_len, cb, b_len, pref);
  pbx_calls(ca, a_len, cb, b_len, pref);
  g_free(ca);
  g_free(cb);
  return 0;
}
