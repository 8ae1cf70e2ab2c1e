/* Unit tests: SDP translation WebRTC <-> plain (sip/sdp_translate.c) on SDP
 * captured from Chromium (JsSIP 3.13, SIP.js 0.21 offers and answers; see
 * data/sdp/README) and plain SDP written after Asterisk, FreeSWITCH and
 * RFC 3264.  Every SDP that rtcsipd writes is parsed again with Sofia-SIP. */
#include <errno.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/sdp.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>

#include "sip/sdp_translate.h"
#include "sip/sipmsg.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sdp_webrtc, sdp_webrtc_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sdp_plain, sdp_plain_free)

static char *read_sdp(const char *name, size_t *len)
{
  g_autofree char *path = g_test_build_filename(G_TEST_DIST, "data", "sdp", name, NULL);
  char *text = NULL;
  gsize n = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_get_contents(path, &text, &n, &error));
  if (len)
    *len = n;
  return text;
}

static sdp_webrtc *webrtc_ok(const char *text)
{
  sdp_webrtc *w = NULL;
  const char *why = NULL;
  int r = sdp_webrtc_parse(text, strlen(text), &w, &why);
  if (r < 0)
    g_test_message("sdp_webrtc_parse: %d %s\n%s", r, why, text);
  g_assert_cmpint(r, ==, 0);
  g_assert_nonnull(w);
  return w;
}

static sdp_plain *plain_ok(const char *text)
{
  sdp_plain *p = NULL;
  const char *why = NULL;
  int r = sdp_plain_parse(text, strlen(text), &p, &why);
  if (r < 0)
    g_test_message("sdp_plain_parse: %d %s\n%s", r, why, text);
  g_assert_cmpint(r, ==, 0);
  g_assert_nonnull(p);
  return p;
}

static sdp_webrtc *webrtc_file(const char *name)
{
  g_autofree char *text = read_sdp(name, NULL);
  return webrtc_ok(text);
}

static sdp_plain *plain_file(const char *name)
{
  g_autofree char *text = read_sdp(name, NULL);
  return plain_ok(text);
}

static const sdp_codec *codec_by_pt(const sdp_codec *codecs, unsigned n, unsigned pt)
{
  for (unsigned i = 0; i < n; i++)
    if (codecs[i].pt == pt)
      return &codecs[i];
  return NULL;
}

/* The payload types of CODECS as "0 8 101". */
static char *pts_of(const sdp_codec *codecs, unsigned n)
{
  GString *s = g_string_new(NULL);
  for (unsigned i = 0; i < n; i++)
    g_string_append_printf(s, "%s%u", i ? " " : "", codecs[i].pt);
  return g_string_free(s, FALSE);
}

/* TEXT with every FROM replaced by TO (test data made from test data). */
static char *replace(const char *text, const char *from, const char *to)
{
  g_auto(GStrv) parts = g_strsplit(text, from, -1);
  return g_strjoinv(to, parts);
}

/* rtcsipd's own sides */
static const char *const local_candidates[] = {
  "candidate:1 1 udp 2130706431 203.0.113.5 40000 typ host",
  "a=candidate:2 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 203.0.113.5 rport 40000",
};
static const char LOCAL_FP[] = "sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:"
                               "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99";
static const sdp_webrtc_local wlocal = {
  .address = "203.0.113.5",
  .port = 40000,
  .session_id = 4242,
  .session_version = 1,
  .ice_ufrag = "rtcS",
  .ice_pwd = "abcdefghijklmnopqrstuv+/",
  .fingerprint = LOCAL_FP,
  .candidates = local_candidates,
  .n_candidates = 2,
  .end_of_candidates = true,
};
static const sdp_plain_local plocal = {
  .address = "192.0.2.50",
  .port = 30000,
  .session_id = 777,
  .session_version = 3,
};

/* ---------------------------------------------------------------------------
 * Sofia's view of what rtcsipd wrote */

typedef struct {
  su_home_t *home;
  sdp_session_t *s;
} sofia_view;

static void sofia_parse(sofia_view *v, const char *text)
{
  v->home = su_home_new(sizeof(su_home_t));
  sdp_parser_t *p = sdp_parse(v->home, text, (issize_t)strlen(text), sdp_f_strict);
  v->s = sdp_session(p);
  if (!v->s)
    g_test_message("Sofia: %s\n%s", sdp_parsing_error(p), text);
  g_assert_nonnull(v->s);
}

static void sofia_done(sofia_view *v)
{
  su_home_unref(v->home);
}

static unsigned media_count(const sdp_session_t *s)
{
  unsigned n = 0;
  for (const sdp_media_t *m = s->sdp_media; m; m = m->m_next)
    n++;
  return n;
}

/* A plain SDP as the PBX gets it: nothing of WebRTC in it. */
static void assert_no_webrtc(const sdp_session_t *s)
{
  static const char *const names[] = {
    "ice-ufrag", "ice-pwd", "ice-options", "ice-lite", "candidate", "end-of-candidates", "fingerprint",
    "setup", "ssrc", "ssrc-group", "extmap", "extmap-allow-mixed", "rtcp-fb", "rtcp-mux", "rtcp-rsize",
    "mid", "msid", "msid-semantic", "group",
  };
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    g_assert_null(sdp_attribute_find(s->sdp_attributes, names[i]));
    for (const sdp_media_t *m = s->sdp_media; m; m = m->m_next)
      g_assert_null(sdp_attribute_find(m->m_attributes, names[i]));
  }
}

/* The rtpmaps of M as "pt name/rate[/channels]" lines joined with ", ". */
static char *rtpmaps_of(const sdp_media_t *m)
{
  GString *s = g_string_new(NULL);
  for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm; rm = rm->rm_next)
    g_string_append_printf(s, "%s%u %s/%lu%s%s", s->len ? ", " : "", rm->rm_pt, rm->rm_encoding, rm->rm_rate,
                           rm->rm_params ? "/" : "", rm->rm_params ? rm->rm_params : "");
  return g_string_free(s, FALSE);
}

/* ---------------------------------------------------------------------------
 * Browser SDP as captured */

static const struct {
  const char *file;
  bool answer;
  unsigned n_media;
  const char *ufrag;
  const char *fp_start;
  const char *pts; /* audio codecs kept, in order */
  const char *bundle;
} captured[] = {
  { "chromium-jssip-audio.sdp", false, 1, "O+ii", "sha-256 DC:F8:AB:36", "111 63 9 0 8 13 110 126", "0" },
  { "chromium-jssip-audio-video.sdp", false, 2, "tO3X", "sha-256 FD:12:11:1D", "111 63 9 0 8 13 110 126", "0 1" },
  { "chromium-sipjs-audio.sdp", false, 1, "PMQK", "sha-256 74:43:35:CE", "111 63 9 0 8 13 110 126", "0" },
  { "chromium-sipjs-audio-video.sdp", false, 2, "9neI", "sha-256 60:C6:A8:A0", "111 63 9 0 8 13 110 126", "0 1" },
  { "chromium-jssip-answer-audio.sdp", true, 1, "DrHL", "sha-256 CC:BF:EB:86", "0 8 9 101", "0" },
  { "chromium-sipjs-answer-audio.sdp", true, 1, "8v68", "sha-256 3D:22:4A:2A", "0 8 9 101", "0" },
};

static void test_webrtc_parse_captured(void)
{
  for (size_t i = 0; i < G_N_ELEMENTS(captured); i++) {
    g_test_message("%s", captured[i].file);
    g_autoptr(sdp_webrtc) w = webrtc_file(captured[i].file);
    g_assert_cmpuint(w->n_media, ==, captured[i].n_media);
    g_assert_cmpuint(w->audio, ==, 0);
    g_assert_cmpint(w->media[0].kind, ==, SDP_KIND_AUDIO);
    g_assert_cmpstr(w->media[0].proto, ==, "UDP/TLS/RTP/SAVPF");
    g_assert_cmpstr(w->media[0].mid, ==, "0");
    g_assert_false(w->media[0].rejected);
    if (captured[i].n_media == 2) {
      g_assert_cmpint(w->media[1].kind, ==, SDP_KIND_VIDEO);
      g_assert_cmpstr(w->media[1].type, ==, "video");
      g_assert_cmpstr(w->media[1].mid, ==, "1");
      g_assert_cmpstr(w->media[1].format, ==, "96");
    }
    g_autofree char *pts = pts_of(w->codecs, w->n_codecs);
    g_assert_cmpstr(pts, ==, captured[i].pts);
    g_assert_cmpint(w->dir, ==, SDP_DIR_SENDRECV);
    g_assert_cmpstr(w->address, ==, "192.0.2.2");
    g_assert_cmpstr(w->ice_ufrag, ==, captured[i].ufrag);
    g_assert_cmpuint(strlen(w->ice_pwd), ==, 24);
    g_assert_false(w->ice_lite);
    g_assert_true(g_str_has_prefix(w->fingerprint, captured[i].fp_start));
    g_assert_cmpuint(strlen(w->fingerprint), ==, strlen("sha-256 ") + 32 * 3 - 1);
    g_assert_cmpint(w->setup, ==, captured[i].answer ? SDP_SETUP_ACTIVE : SDP_SETUP_ACTPASS);
    g_assert_true(w->rtcp_mux);
    g_assert_cmpuint(w->n_candidates, ==, 4);
    for (unsigned c = 0; c < w->n_candidates; c++)
      g_assert_true(g_str_has_prefix(w->candidates[c], "candidate:"));
    g_assert_nonnull(strstr(w->candidates[0], " udp 2122194687 192.0.2.2 "));
    g_assert_false(w->end_of_candidates);
    g_assert_true(w->bundle);
    g_auto(GStrv) mids = g_strsplit(captured[i].bundle, " ", -1);
    g_assert_cmpuint(w->n_bundle_mids, ==, g_strv_length(mids));
    for (unsigned b = 0; b < w->n_bundle_mids; b++)
      g_assert_cmpstr(w->bundle_mids[b], ==, mids[b]);

    if (!captured[i].answer) {
      const sdp_codec *opus = codec_by_pt(w->codecs, w->n_codecs, 111);
      g_assert_nonnull(opus);
      g_assert_cmpstr(opus->name, ==, "opus");
      g_assert_cmpuint(opus->rate, ==, 48000);
      g_assert_cmpuint(opus->channels, ==, 2);
      g_assert_cmpstr(opus->fmtp, ==, "minptime=10;useinbandfec=1");
      g_assert_true(sdp_codec_supported(opus));
      const sdp_codec *red = codec_by_pt(w->codecs, w->n_codecs, 63);
      g_assert_false(sdp_codec_supported(red));
      const sdp_codec *te8 = codec_by_pt(w->codecs, w->n_codecs, 126);
      g_assert_cmpstr(te8->name, ==, "telephone-event");
      g_assert_cmpuint(te8->rate, ==, 8000);
      g_assert_cmpuint(codec_by_pt(w->codecs, w->n_codecs, 110)->rate, ==, 48000);
      g_assert_cmpstr(codec_by_pt(w->codecs, w->n_codecs, 9)->name, ==, "G722");
      g_assert_cmpstr(codec_by_pt(w->codecs, w->n_codecs, 0)->name, ==, "PCMU");
      g_assert_cmpstr(codec_by_pt(w->codecs, w->n_codecs, 8)->name, ==, "PCMA");
      g_assert_cmpint(sdp_webrtc_answer_setup(w), ==, SDP_SETUP_PASSIVE);
    }
  }
}

/* The whole INVITE as JsSIP sent it: Sofia reads it, its body is the .sdp file. */
static void test_captured_invite(void)
{
  size_t len = 0, sdp_len = 0;
  g_autofree char *invite = read_sdp("chromium-jssip-audio-video-invite.txt", &len);
  g_autofree char *sdp = read_sdp("chromium-jssip-audio-video.sdp", &sdp_len);
  msg_t *msg = NULL;
  const char *why = NULL;
  g_assert_cmpint(sipmsg_parse(invite, len, &msg, &why), ==, SIPMSG_OK);
  sip_t *sip = sip_object(msg);
  g_assert_cmpint(sip->sip_request->rq_method, ==, sip_method_invite);
  g_assert_cmpstr(sip->sip_content_type->c_type, ==, "application/sdp");
  g_assert_nonnull(sip->sip_payload);
  g_assert_cmpuint(sip->sip_payload->pl_len, ==, sdp_len);
  g_assert_cmpmem(sip->sip_payload->pl_data, sip->sip_payload->pl_len, sdp, sdp_len);
  g_autoptr(sdp_webrtc) w = NULL;
  g_assert_cmpint(sdp_webrtc_parse(sip->sip_payload->pl_data, sip->sip_payload->pl_len, &w, &why), ==, 0);
  g_assert_cmpuint(w->n_media, ==, 2);
  msg_destroy(msg);
}


/* ---------------------------------------------------------------------------
 * Browser offer -> PBX offer */

static const char *const offers[] = {
  "chromium-jssip-audio.sdp", "chromium-jssip-audio-video.sdp",
  "chromium-sipjs-audio.sdp", "chromium-sipjs-audio-video.sdp",
};

static void test_plain_offer_from_webrtc(void)
{
  for (size_t i = 0; i < G_N_ELEMENTS(offers); i++) {
    g_test_message("%s", offers[i]);
    g_autoptr(sdp_webrtc) w = webrtc_file(offers[i]);
    g_autofree char *text = NULL;
    const char *why = NULL;
    g_assert_cmpint(sdp_plain_offer_from_webrtc(w, &plocal, &text, &why), ==, 0);
    g_test_message("%s", text);

    sofia_view v;
    sofia_parse(&v, text);
    g_assert_cmpuint(media_count(v.s), ==, 1); /* no video toward the PBX */
    const sdp_media_t *m = v.s->sdp_media;
    g_assert_cmpint(m->m_type, ==, sdp_media_audio);
    g_assert_cmpint(m->m_proto, ==, sdp_proto_rtp);
    g_assert_cmpuint(m->m_port, ==, 30000);
    g_assert_cmpint(m->m_mode, ==, sdp_sendrecv);
    const sdp_connection_t *c = sdp_media_connections(m);
    g_assert_cmpstr(c->c_address, ==, "192.0.2.50");
    g_assert_cmpuint(v.s->sdp_origin->o_id, ==, 777);
    g_assert_cmpuint(v.s->sdp_origin->o_version, ==, 3);
    g_autofree char *maps = rtpmaps_of(m);
    /* the supported codecs in the browser's order and under its payload
     * types; no red, no CN; both telephone-events (48 kHz for opus) */
    g_assert_cmpstr(maps, ==, "111 opus/48000/2, 9 G722/8000, 0 PCMU/8000, 8 PCMA/8000, "
                              "110 telephone-event/48000, 126 telephone-event/8000");
    g_assert_cmpstr(m->m_rtpmaps->rm_fmtp, ==, "minptime=10;useinbandfec=1");
    g_assert_cmpstr(sdp_attribute_find(m->m_attributes, "ptime")->a_value, ==, "20");
    assert_no_webrtc(v.s);
    g_assert_null(strstr(text, "SAVP"));
    g_assert_null(strstr(text, "a=ice"));
    sofia_done(&v);

    /* and our own parser reads it back */
    g_autoptr(sdp_plain) p = plain_ok(text);
    g_assert_cmpuint(p->port, ==, 30000);
    g_assert_cmpstr(p->address, ==, "192.0.2.50");
    g_assert_cmpuint(p->n_codecs, ==, 6);
    g_assert_cmpuint(p->ptime, ==, 20);
  }

  /* an operator's preference: PCMA first, then PCMU; no 48 kHz codec left,
   * so no 48 kHz telephone-event either */
  static const char *const pref[] = { "PCMA", "PCMU", "G729", NULL };
  sdp_plain_local l = plocal;
  l.codecs = pref;
  l.ptime = 30;
  g_autoptr(sdp_webrtc) w = webrtc_file("chromium-sipjs-audio.sdp");
  g_autofree char *text = NULL;
  g_assert_cmpint(sdp_plain_offer_from_webrtc(w, &l, &text, NULL), ==, 0);
  sofia_view v;
  sofia_parse(&v, text);
  g_autofree char *maps = rtpmaps_of(v.s->sdp_media);
  g_assert_cmpstr(maps, ==, "8 PCMA/8000, 0 PCMU/8000, 126 telephone-event/8000");
  g_assert_cmpstr(sdp_attribute_find(v.s->sdp_media->m_attributes, "ptime")->a_value, ==, "30");
  sofia_done(&v);

  /* nothing in common with the operator's list: 488 */
  static const char *const g729[] = { "G729", NULL };
  l.codecs = g729;
  const char *why = NULL;
  char *none = NULL;
  g_assert_cmpint(sdp_plain_offer_from_webrtc(w, &l, &none, &why), ==, -ENOTSUP);
  g_assert_null(none);
  g_assert_cmpstr(why, ==, "no codec in common");
}

/* ---------------------------------------------------------------------------
 * PBX answer -> browser answer */

static void check_webrtc_answer_common(const sdp_webrtc *a)
{
  g_assert_cmpint(a->media[a->audio].kind, ==, SDP_KIND_AUDIO);
  g_assert_cmpuint(a->media[a->audio].port, ==, 40000);
  g_assert_cmpstr(a->media[a->audio].proto, ==, "UDP/TLS/RTP/SAVPF");
  g_assert_cmpstr(a->address, ==, "203.0.113.5");
  g_assert_cmpstr(a->ice_ufrag, ==, "rtcS");
  g_assert_cmpstr(a->ice_pwd, ==, "abcdefghijklmnopqrstuv+/");
  g_assert_cmpstr(a->fingerprint, ==, LOCAL_FP);
  g_assert_true(a->rtcp_mux);
  g_assert_cmpuint(a->n_candidates, ==, 2);
  g_assert_cmpstr(a->candidates[0], ==, local_candidates[0]);
  g_assert_cmpstr(a->candidates[1], ==, local_candidates[1] + 2);
  g_assert_true(a->end_of_candidates);
}

static void test_webrtc_answer_from_plain(void)
{
  /* audio+video offer, FreeSWITCH answers opus */
  for (size_t i = 0; i < G_N_ELEMENTS(offers); i++) {
    g_test_message("%s + freeswitch-answer-opus.sdp", offers[i]);
    g_autoptr(sdp_webrtc) o = webrtc_file(offers[i]);
    g_autoptr(sdp_plain) pa = plain_file("freeswitch-answer-opus.sdp");
    g_assert_cmpuint(pa->rtcp_port, ==, 24601);
    g_assert_cmpuint(pa->port, ==, 24600);
    g_autofree char *text = NULL;
    const char *why = NULL;
    g_assert_cmpint(sdp_webrtc_answer_from_plain(o, pa, &wlocal, &text, &why), ==, 0);
    g_test_message("%s", text);

    g_autoptr(sdp_webrtc) a = webrtc_ok(text);
    check_webrtc_answer_common(a);
    g_assert_cmpuint(a->n_media, ==, o->n_media);
    g_assert_cmpuint(a->audio, ==, 0);
    g_assert_cmpstr(a->media[0].mid, ==, "0");
    g_autofree char *pts = pts_of(a->codecs, a->n_codecs);
    g_assert_cmpstr(pts, ==, "111 110");
    g_assert_cmpstr(a->codecs[0].fmtp, ==, "useinbandfec=1; minptime=10"); /* what the PBX receives */
    g_assert_cmpint(a->setup, ==, SDP_SETUP_PASSIVE);
    g_assert_cmpint(a->dir, ==, SDP_DIR_SENDRECV);
    /* BUNDLE only the audio mid */
    g_assert_true(a->bundle);
    g_assert_cmpuint(a->n_bundle_mids, ==, 1);
    g_assert_cmpstr(a->bundle_mids[0], ==, "0");
    if (o->n_media == 2) {
      g_assert_cmpint(a->media[1].kind, ==, SDP_KIND_VIDEO);
      g_assert_true(a->media[1].rejected);
      g_assert_cmpuint(a->media[1].port, ==, 0);
      g_assert_cmpstr(a->media[1].mid, ==, "1");
      g_assert_cmpstr(a->media[1].proto, ==, "UDP/TLS/RTP/SAVPF");
    }

    /* Sofia's view: no candidates or ICE on the rejected m-line */
    sofia_view v;
    sofia_parse(&v, text);
    g_assert_cmpstr(sdp_attribute_find(v.s->sdp_attributes, "group")->a_value, ==, "BUNDLE 0");
    if (o->n_media == 2) {
      const sdp_media_t *video = v.s->sdp_media->m_next;
      g_assert_cmpuint(video->m_port, ==, 0);
      g_assert_true(video->m_rejected);
      g_assert_null(sdp_attribute_find(video->m_attributes, "candidate"));
      g_assert_null(sdp_attribute_find(video->m_attributes, "ice-ufrag"));
    }
    sofia_done(&v);
  }

  /* audio-only offer, Asterisk answers PCMU + telephone-event 126 */
  {
    g_autoptr(sdp_webrtc) o = webrtc_file("chromium-jssip-audio.sdp");
    g_autoptr(sdp_plain) pa = plain_file("asterisk-answer-pcmu.sdp");
    g_autofree char *text = NULL;
    g_assert_cmpint(sdp_webrtc_answer_from_plain(o, pa, &wlocal, &text, NULL), ==, 0);
    g_autoptr(sdp_webrtc) a = webrtc_ok(text);
    check_webrtc_answer_common(a);
    g_autofree char *pts = pts_of(a->codecs, a->n_codecs);
    g_assert_cmpstr(pts, ==, "0 126");
    g_assert_cmpstr(a->codecs[1].fmtp, ==, "0-16");
  }

  /* a PBX that answers opus under another payload type (and without the
   * /2): the browser gets its own (111), opus/48000/2; the PBX's stays in the
   * plain answer for the media path */
  {
    g_autoptr(sdp_webrtc) o = webrtc_file("chromium-sipjs-audio.sdp");
    const char *text = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
                       "m=audio 5000 RTP/AVP 107 101\r\na=rtpmap:107 opus/48000\r\n" /* no /2 */
                       "a=rtpmap:101 telephone-event/8000\r\n";
    g_autoptr(sdp_plain) pa = plain_ok(text);
    g_autofree char *out = NULL;
    g_assert_cmpint(sdp_webrtc_answer_from_plain(o, pa, &wlocal, &out, NULL), ==, 0);
    g_autoptr(sdp_webrtc) a = webrtc_ok(out);
    g_autofree char *pts = pts_of(a->codecs, a->n_codecs);
    g_assert_cmpstr(pts, ==, "111 126");
    g_assert_cmpuint(a->codecs[0].channels, ==, 2);
  }

  /* a PBX that answers a codec the browser never offered: 488 */
  {
    g_autoptr(sdp_webrtc) o = webrtc_file("chromium-sipjs-audio.sdp");
    g_autoptr(sdp_plain) pa = plain_file("asterisk-offer-g729-only.sdp");
    char *out = NULL;
    const char *why = NULL;
    g_assert_cmpint(sdp_webrtc_answer_from_plain(o, pa, &wlocal, &out, &why), ==, -ENOTSUP);
    g_assert_null(out);
  }
}

/* ---------------------------------------------------------------------------
 * PBX offer -> browser offer; browser answer -> PBX answer */

static void test_reverse(void)
{
  /* Asterisk offers PCMU, PCMA, telephone-event */
  {
    g_autoptr(sdp_plain) po = plain_file("asterisk-offer-pcmu-pcma-te.sdp");
    g_assert_cmpstr(po->address, ==, "203.0.113.10");
    g_assert_cmpuint(po->port, ==, 17010);
    g_assert_cmpuint(po->rtcp_port, ==, 0);
    g_assert_false(po->rtcp_mux);
    g_assert_false(po->hold_address);
    g_autofree char *pts0 = pts_of(po->codecs, po->n_codecs);
    g_assert_cmpstr(pts0, ==, "0 8 101");

    g_autofree char *text = NULL;
    const char *why = NULL;
    g_assert_cmpint(sdp_webrtc_offer_from_plain(po, &wlocal, NULL, &text, &why), ==, 0);
    g_test_message("%s", text);
    g_autoptr(sdp_webrtc) wo = webrtc_ok(text);
    check_webrtc_answer_common(wo);
    g_assert_cmpuint(wo->n_media, ==, 1);
    g_assert_cmpstr(wo->media[0].mid, ==, "0");
    g_assert_true(wo->bundle);
    g_assert_cmpuint(wo->n_bundle_mids, ==, 1);
    g_assert_cmpstr(wo->bundle_mids[0], ==, "0");
    g_assert_cmpint(wo->setup, ==, SDP_SETUP_ACTPASS);
    g_assert_cmpint(wo->dir, ==, SDP_DIR_SENDRECV);
    g_autofree char *pts = pts_of(wo->codecs, wo->n_codecs);
    g_assert_cmpstr(pts, ==, "0 8 101");
    g_assert_cmpstr(wo->codecs[2].fmtp, ==, "0-16");

    /* Chromium's answer (captured, to an offer of 0 8 9 101): G722 was not
     * in the PBX's offer and stays out */
    static const char *const answers[] = { "chromium-jssip-answer-audio.sdp", "chromium-sipjs-answer-audio.sdp" };
    for (size_t i = 0; i < G_N_ELEMENTS(answers); i++) {
      g_autoptr(sdp_webrtc) wa = webrtc_file(answers[i]);
      g_autofree char *pa = NULL;
      g_assert_cmpint(sdp_plain_answer_from_webrtc(po, wa, &plocal, &pa, &why), ==, 0);
      g_test_message("%s", pa);
      sofia_view v;
      sofia_parse(&v, pa);
      g_assert_cmpuint(media_count(v.s), ==, 1);
      const sdp_media_t *m = v.s->sdp_media;
      g_assert_cmpint(m->m_proto, ==, sdp_proto_rtp);
      g_assert_cmpuint(m->m_port, ==, 30000);
      g_assert_cmpint(m->m_mode, ==, sdp_sendrecv);
      g_assert_cmpstr(sdp_media_connections(m)->c_address, ==, "192.0.2.50");
      g_autofree char *maps = rtpmaps_of(m);
      g_assert_cmpstr(maps, ==, "0 PCMU/8000, 8 PCMA/8000, 101 telephone-event/8000");
      assert_no_webrtc(v.s);
      sofia_done(&v);
    }
  }

  /* FreeSWITCH offers audio and video: the browser is offered audio only;
   * the PBX's video is answered with port 0 */
  {
    g_autoptr(sdp_plain) po = plain_file("freeswitch-offer-audio-video.sdp");
    g_assert_cmpuint(po->n_media, ==, 2);
    g_assert_cmpuint(po->rtcp_port, ==, 24601);
    static const char *const pref[] = { "PCMU", "G722", NULL };
    g_autofree char *text = NULL;
    g_assert_cmpint(sdp_webrtc_offer_from_plain(po, &wlocal, pref, &text, NULL), ==, 0);
    g_autoptr(sdp_webrtc) wo = webrtc_ok(text);
    g_assert_cmpuint(wo->n_media, ==, 1);
    g_autofree char *pts = pts_of(wo->codecs, wo->n_codecs);
    g_assert_cmpstr(pts, ==, "0 9 101");
    {
      sofia_view v0; /* the PBX's ptime goes along */
      sofia_parse(&v0, text);
      g_assert_cmpstr(sdp_attribute_find(v0.s->sdp_media->m_attributes, "ptime")->a_value, ==, "20");
      sofia_done(&v0);
    }

    g_autoptr(sdp_webrtc) wa = webrtc_file("chromium-sipjs-answer-audio.sdp");
    g_autofree char *pa = NULL;
    g_assert_cmpint(sdp_plain_answer_from_webrtc(po, wa, &plocal, &pa, NULL), ==, 0);
    sofia_view v;
    sofia_parse(&v, pa);
    g_assert_cmpuint(media_count(v.s), ==, 2);
    g_autofree char *maps = rtpmaps_of(v.s->sdp_media);
    g_assert_cmpstr(maps, ==, "0 PCMU/8000, 8 PCMA/8000, 9 G722/8000, 101 telephone-event/8000");
    const sdp_media_t *video = v.s->sdp_media->m_next;
    g_assert_cmpint(video->m_type, ==, sdp_media_video);
    g_assert_cmpuint(video->m_port, ==, 0);
    g_assert_cmpint(video->m_proto, ==, sdp_proto_rtp);
    assert_no_webrtc(v.s);
    sofia_done(&v);
  }

  /* SDES (RTP/SAVP) from the PBX is not carried yet: 488 */
  {
    g_autofree char *text = read_sdp("asterisk-offer-pcmu-pcma-te.sdp", NULL);
    g_autofree char *savp = replace(text, "RTP/AVP", "RTP/SAVP");
    g_autoptr(sdp_plain) po = plain_ok(savp);
    g_autoptr(sdp_webrtc) wa = webrtc_file("chromium-jssip-answer-audio.sdp");
    char *out = NULL;
    const char *why = NULL;
    g_assert_cmpint(sdp_webrtc_offer_from_plain(po, &wlocal, NULL, &out, &why), ==, -ENOTSUP);
    g_assert_cmpint(sdp_plain_answer_from_webrtc(po, wa, &plocal, &out, &why), ==, -ENOTSUP);
    g_assert_null(out);
  }

  /* G.729 only: nothing to offer the browser, 488 */
  {
    g_autoptr(sdp_plain) po = plain_file("asterisk-offer-g729-only.sdp");
    char *text = NULL;
    const char *why = NULL;
    g_assert_cmpint(sdp_webrtc_offer_from_plain(po, &wlocal, NULL, &text, &why), ==, -ENOTSUP);
    g_assert_null(text);
    g_assert_cmpstr(why, ==, "no codec in common");
  }
}

/* ---------------------------------------------------------------------------
 * Directions */

static char *plain_sdp(const char *address, const char *dir)
{
  return g_strdup_printf("v=0\r\no=- 5 5 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
                         "m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                         "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n%s%s%s",
                         address, dir ? "a=" : "", dir ? dir : "", dir ? "\r\n" : "");
}

static void test_directions(void)
{
  static const sdp_dir dirs[] = { SDP_DIR_SENDRECV, SDP_DIR_SENDONLY, SDP_DIR_RECVONLY, SDP_DIR_INACTIVE };
  g_autofree char *browser_offer = read_sdp("chromium-jssip-audio.sdp", NULL);
  g_autofree char *browser_answer = read_sdp("chromium-jssip-answer-audio.sdp", NULL);
  g_autoptr(sdp_webrtc) sendrecv_offer = webrtc_ok(browser_offer);

  for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
    sdp_dir d = dirs[i];
    g_autofree char *line = g_strdup_printf("a=%s\r\n", sdp_dir_name(d));
    g_test_message("direction %s", sdp_dir_name(d));

    /* browser offer -> PBX offer */
    g_autofree char *bo = replace(browser_offer, "a=sendrecv\r\n", line);
    g_autoptr(sdp_webrtc) wo = webrtc_ok(bo);
    g_assert_cmpint(wo->dir, ==, d);
    g_autofree char *po_text = NULL;
    g_assert_cmpint(sdp_plain_offer_from_webrtc(wo, &plocal, &po_text, NULL), ==, 0);
    sofia_view v;
    sofia_parse(&v, po_text);
    g_assert_cmpint(v.s->sdp_media->m_mode, ==, (int)d);
    sofia_done(&v);

    /* PBX answer -> browser answer */
    g_autofree char *pa_text = plain_sdp("198.51.100.1", sdp_dir_name(d));
    g_autoptr(sdp_plain) pa = plain_ok(pa_text);
    g_assert_cmpint(pa->dir, ==, d);
    g_autofree char *wa_text = NULL;
    g_assert_cmpint(sdp_webrtc_answer_from_plain(sendrecv_offer, pa, &wlocal, &wa_text, NULL), ==, 0);
    g_autoptr(sdp_webrtc) wa = webrtc_ok(wa_text);
    g_assert_cmpint(wa->dir, ==, d);

    /* PBX offer -> browser offer */
    g_autofree char *wo2_text = NULL;
    g_assert_cmpint(sdp_webrtc_offer_from_plain(pa, &wlocal, NULL, &wo2_text, NULL), ==, 0);
    g_autoptr(sdp_webrtc) wo2 = webrtc_ok(wo2_text);
    g_assert_cmpint(wo2->dir, ==, d);

    /* browser answer -> PBX answer */
    g_autofree char *ba = replace(browser_answer, "a=sendrecv\r\n", line);
    g_autoptr(sdp_webrtc) wba = webrtc_ok(ba);
    g_autofree char *pa2_text = NULL;
    g_assert_cmpint(sdp_plain_answer_from_webrtc(pa, wba, &plocal, &pa2_text, NULL), ==, 0);
    sofia_parse(&v, pa2_text);
    g_assert_cmpint(v.s->sdp_media->m_mode, ==, (int)d);
    sofia_done(&v);
  }

  /* c=0.0.0.0 (RFC 2543 hold): the PBX does not receive */
  static const struct {
    const char *written;
    sdp_dir effective;
  } hold[] = {
    { NULL, SDP_DIR_SENDONLY },
    { "sendrecv", SDP_DIR_SENDONLY },
    { "sendonly", SDP_DIR_SENDONLY },
    { "recvonly", SDP_DIR_INACTIVE },
    { "inactive", SDP_DIR_INACTIVE },
  };
  for (size_t i = 0; i < G_N_ELEMENTS(hold); i++) {
    g_autofree char *text = plain_sdp("0.0.0.0", hold[i].written);
    g_autoptr(sdp_plain) p = plain_ok(text);
    g_assert_true(p->hold_address);
    g_assert_cmpint(p->dir, ==, hold[i].effective);
    g_autofree char *wo_text = NULL;
    g_assert_cmpint(sdp_webrtc_offer_from_plain(p, &wlocal, NULL, &wo_text, NULL), ==, 0);
    g_autoptr(sdp_webrtc) wo = webrtc_ok(wo_text);
    g_assert_cmpint(wo->dir, ==, hold[i].effective);
    g_assert_cmpstr(wo->address, ==, "203.0.113.5"); /* never 0.0.0.0 toward the browser */
    g_autofree char *wa_text = NULL;
    g_assert_cmpint(sdp_webrtc_answer_from_plain(sendrecv_offer, p, &wlocal, &wa_text, NULL), ==, 0);
    g_autoptr(sdp_webrtc) wa = webrtc_ok(wa_text);
    g_assert_cmpint(wa->dir, ==, hold[i].effective);
  }

  /* the same from the files */
  static const struct {
    const char *file;
    sdp_dir dir;
    bool hold_address;
  } files[] = {
    { "freeswitch-offer-hold-c0.sdp", SDP_DIR_SENDONLY, true },
    { "asterisk-offer-hold-sendonly.sdp", SDP_DIR_SENDONLY, false },
    { "asterisk-offer-pcmu-pcma-te.sdp", SDP_DIR_SENDRECV, false },
    { "rfc3264-answer-inactive.sdp", SDP_DIR_INACTIVE, false },
    { "rfc3264-answer-recvonly.sdp", SDP_DIR_RECVONLY, false },
  };
  for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autoptr(sdp_plain) p = plain_file(files[i].file);
    g_assert_cmpint(p->dir, ==, files[i].dir);
    g_assert_cmpint(p->hold_address, ==, files[i].hold_address);
  }
}

/* ---------------------------------------------------------------------------
 * Bad input */

static void test_errors(void)
{
  sdp_webrtc *w = NULL;
  sdp_plain *p = NULL;
  const char *why = NULL;

  g_assert_cmpint(sdp_webrtc_parse("", 0, &w, &why), ==, -EINVAL);
  g_assert_cmpint(sdp_plain_parse("hello world", 11, &p, &why), ==, -EINVAL);
  g_assert_null(p);
  g_assert_cmpstr(why, ==, "malformed SDP");
  {
    g_autofree char *big = g_malloc(SDP_MAX_TEXT + 2);
    memset(big, 'a', SDP_MAX_TEXT + 1);
    big[SDP_MAX_TEXT + 1] = '\0';
    g_assert_cmpint(sdp_plain_parse(big, SDP_MAX_TEXT + 1, &p, &why), ==, -E2BIG);
  }

  /* a plain SDP is no WebRTC SDP */
  {
    g_autofree char *text = read_sdp("asterisk-offer-pcmu-pcma-te.sdp", NULL);
    g_assert_cmpint(sdp_webrtc_parse(text, strlen(text), &w, &why), ==, -ENOTSUP);
    g_assert_cmpstr(why, ==, "no ICE credentials");
    g_assert_null(w);
  }
  /* the PBX rejected audio */
  {
    g_autofree char *text = read_sdp("plain-answer-audio-rejected.sdp", NULL);
    g_assert_cmpint(sdp_plain_parse(text, strlen(text), &p, &why), ==, -ENOMEDIUM);
  }
  /* video only */
  {
    const char *text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
                       "m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
    g_assert_cmpint(sdp_plain_parse(text, strlen(text), &p, &why), ==, -ENOMEDIUM);
  }
  /* no c= line */
  {
    const char *text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
    g_assert_cmpint(sdp_plain_parse(text, strlen(text), &p, &why), ==, -EINVAL);
    g_assert_cmpstr(why, ==, "no c= line");
  }
  /* absurd m-line counts */
  {
    GString *s = g_string_new("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n");
    for (int i = 0; i < SDP_MAX_MEDIA + 1; i++)
      g_string_append_printf(s, "m=audio %d RTP/AVP 0\r\n", 5000 + 2 * i);
    g_assert_cmpint(sdp_plain_parse(s->str, s->len, &p, &why), ==, -EINVAL);
    g_assert_cmpstr(why, ==, "too many m-lines");
    g_string_free(s, TRUE);
  }
  /* many codecs: the first SDP_MAX_CODECS kept */
  {
    GString *s = g_string_new("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
                              "m=audio 5000 RTP/AVP");
    for (int pt = 0; pt < 128; pt++)
      if (pt < 64 || pt >= 96)
        g_string_append_printf(s, " %d", pt);
    g_string_append(s, "\r\n");
    for (int pt = 96; pt < 128; pt++)
      g_string_append_printf(s, "a=rtpmap:%d opus/48000/2\r\n", pt);
    g_autoptr(sdp_plain) many = plain_ok(s->str);
    g_assert_cmpuint(many->n_codecs, <=, SDP_MAX_CODECS);
    g_string_free(s, TRUE);
  }

  g_autofree char *offer = read_sdp("chromium-sipjs-audio.sdp", NULL);
  /* malformed ICE credentials */
  {
    g_autofree char *bad = replace(offer, "a=ice-ufrag:PMQK", "a=ice-ufrag:P;");
    g_assert_cmpint(sdp_webrtc_parse(bad, strlen(bad), &w, &why), ==, -EINVAL);
    g_autofree char *nofp = replace(offer, "a=fingerprint:", "a=x-fingerprint:");
    g_assert_cmpint(sdp_webrtc_parse(nofp, strlen(nofp), &w, &why), ==, -ENOTSUP);
    g_assert_cmpstr(why, ==, "no DTLS fingerprint");
  }
  /* no rtcp-mux offered: rtcsipd always muxes */
  {
    g_autofree char *nomux = replace(offer, "a=rtcp-mux\r\n", "");
    g_autoptr(sdp_webrtc) o = webrtc_ok(nomux);
    g_assert_false(o->rtcp_mux);
    g_autoptr(sdp_plain) pa = plain_file("asterisk-answer-pcmu.sdp");
    char *out = NULL;
    g_assert_cmpint(sdp_webrtc_answer_from_plain(o, pa, &wlocal, &out, &why), ==, -ENOTSUP);
    g_assert_null(out);
  }
  /* DTLS roles */
  {
    static const struct {
      const char *setup;
      sdp_setup answer;
    } roles[] = {
      { "actpass", SDP_SETUP_PASSIVE }, /* rtcsipd the server: its SRTP profile order (GCM first) */
      { "passive", SDP_SETUP_ACTIVE },
      { "active", SDP_SETUP_PASSIVE },
      { "holdconn", SDP_SETUP_NONE },
    };
    g_autoptr(sdp_plain) pa = plain_file("asterisk-answer-pcmu.sdp");
    for (size_t i = 0; i < G_N_ELEMENTS(roles); i++) {
      g_autofree char *line = g_strdup_printf("a=setup:%s\r\n", roles[i].setup);
      g_autofree char *text = replace(offer, "a=setup:actpass\r\n", line);
      g_autoptr(sdp_webrtc) o = webrtc_ok(text);
      g_assert_cmpint(sdp_webrtc_answer_setup(o), ==, roles[i].answer);
      g_autofree char *out = NULL;
      int r = sdp_webrtc_answer_from_plain(o, pa, &wlocal, &out, &why);
      if (roles[i].answer == SDP_SETUP_NONE) {
        g_assert_cmpint(r, ==, -ENOTSUP);
        continue;
      }
      g_assert_cmpint(r, ==, 0);
      g_autoptr(sdp_webrtc) a = webrtc_ok(out);
      g_assert_cmpint(a->setup, ==, roles[i].answer);
    }
  }
  /* rtcsipd's own parameters missing */
  {
    g_autoptr(sdp_webrtc) o = webrtc_ok(offer);
    g_autoptr(sdp_plain) pa = plain_file("asterisk-answer-pcmu.sdp");
    sdp_webrtc_local l = wlocal;
    l.fingerprint = NULL;
    char *out = NULL;
    g_assert_cmpint(sdp_webrtc_answer_from_plain(o, pa, &l, &out, &why), ==, -EINVAL);
    l = wlocal;
    l.ice_pwd = "short";
    g_assert_cmpint(sdp_webrtc_answer_from_plain(o, pa, &l, &out, &why), ==, -EINVAL);
    sdp_plain_local pl = plocal;
    pl.address = NULL;
    g_assert_cmpint(sdp_plain_offer_from_webrtc(o, &pl, &out, &why), ==, -EINVAL);
    g_assert_null(out);
  }
}

/* Every prefix of a captured offer and of a plain offer: an error or a
 * description, never a crash (valgrind: nothing read out of bounds). */
static void test_truncated(void)
{
  static const char *const files[] = { "chromium-jssip-audio.sdp", "freeswitch-offer-audio-video.sdp" };
  for (size_t f = 0; f < G_N_ELEMENTS(files); f++) {
    size_t len = 0;
    g_autofree char *text = read_sdp(files[f], &len);
    unsigned ok = 0;
    for (size_t n = 1; n <= len; n++) {
      char *copy = g_memdup2(text, n); /* exactly N bytes, no terminator */
      sdp_webrtc *w = NULL;
      sdp_plain *p = NULL;
      if (sdp_webrtc_parse(copy, n, &w, NULL) == 0) {
        char *out = NULL;
        if (sdp_plain_offer_from_webrtc(w, &plocal, &out, NULL) == 0)
          ok++;
        g_free(out);
        sdp_webrtc_free(w);
      }
      if (sdp_plain_parse(copy, n, &p, NULL) == 0) {
        char *out = NULL;
        if (sdp_webrtc_offer_from_plain(p, &wlocal, NULL, &out, NULL) == 0)
          ok++;
        g_free(out);
        sdp_plain_free(p);
      }
      g_free(copy);
    }
    g_assert_cmpuint(ok, >, 0);
  }
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/sdp-translate/webrtc-parse-captured", test_webrtc_parse_captured);
  g_test_add_func("/sdp-translate/captured-invite", test_captured_invite);
  g_test_add_func("/sdp-translate/plain-offer-from-webrtc", test_plain_offer_from_webrtc);
  g_test_add_func("/sdp-translate/webrtc-answer-from-plain", test_webrtc_answer_from_plain);
  g_test_add_func("/sdp-translate/reverse", test_reverse);
  g_test_add_func("/sdp-translate/directions", test_directions);
  g_test_add_func("/sdp-translate/errors", test_errors);
  g_test_add_func("/sdp-translate/truncated", test_truncated);
  return g_test_run();
}
