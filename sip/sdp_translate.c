/* SDP translation WebRTC <-> plain: see sdp_translate.h.
 *
 * Reading: Sofia-SIP's parser (sdp_parse).  It reads a=rtpmap and a=fmtp into
 * sdp_rtpmap_t only on m-lines whose transport it knows as RTP (RTP/AVP,
 * RTP/SAVP); for the browser's UDP/TLS/RTP/SAVPF it leaves them as plain
 * attributes.  So an audio m-line with another RTP transport is relabelled
 * RTP/AVP, the session printed with Sofia's printer and parsed once more:
 * the second parse gives the rtpmaps.  Every other value comes from Sofia's
 * structures (m_mode, m_port, connections, attributes by name).
 *
 * Writing: sdp_session_t and friends built in a su_home and printed with
 * sdp_print().  Sofia's printer writes a=rtpmap/a=fmtp from m_rtpmaps under
 * any transport name, so UDP/TLS/RTP/SAVPF is printed the same way.
 */
#include "sip/sdp_translate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/sdp.h>

#define FAIL(code, reason) \
  do { \
    if (why) \
      *why = (reason); \
    return (code); \
  } while (0)

const char *sdp_dir_name(sdp_dir dir)
{
  switch (dir) {
  case SDP_DIR_INACTIVE: return "inactive";
  case SDP_DIR_SENDONLY: return "sendonly";
  case SDP_DIR_RECVONLY: return "recvonly";
  case SDP_DIR_SENDRECV: return "sendrecv";
  }
  return "?";
}

const char *sdp_setup_name(sdp_setup setup)
{
  switch (setup) {
  case SDP_SETUP_NONE: return "";
  case SDP_SETUP_ACTPASS: return "actpass";
  case SDP_SETUP_ACTIVE: return "active";
  case SDP_SETUP_PASSIVE: return "passive";
  case SDP_SETUP_HOLDCONN: return "holdconn";
  }
  return "";
}

/* Copies SRC (NULL: "") into DST; false when it does not fit. */
static bool copy_text(char *dst, size_t size, const char *src)
{
  if (!src)
    src = "";
  size_t n = strlen(src);
  if (n >= size)
    return false;
  memcpy(dst, src, n + 1);
  return true;
}

/* ---------------------------------------------------------------------------
 * Codecs */

static bool is_telephone_event(const sdp_codec *c)
{
  return g_ascii_strcasecmp(c->name, "telephone-event") == 0;
}

static bool is_opus(const sdp_codec *c)
{
  return g_ascii_strcasecmp(c->name, "opus") == 0 && c->rate == 48000;
}

/* Opus is always opus/48000/2 (RFC 7587), but some peers leave the /2 out. */
bool sdp_codec_same(const sdp_codec *a, const sdp_codec *b)
{
  if (is_opus(a) && is_opus(b))
    return true;
  return g_ascii_strcasecmp(a->name, b->name) == 0 && a->rate == b->rate && a->channels == b->channels;
}

static const struct {
  const char *name;
  uint32_t rate;
  uint8_t channels;
} supported_codecs[] = {
  { "opus", 48000, 2 },
  { "G722", 8000, 1 },
  { "PCMU", 8000, 1 },
  { "PCMA", 8000, 1 },
};

bool sdp_codec_supported(const sdp_codec *c)
{
  if (is_telephone_event(c))
    return c->channels == 1 && c->rate > 0;
  if (is_opus(c))
    return true;
  for (size_t i = 0; i < G_N_ELEMENTS(supported_codecs); i++)
    if (g_ascii_strcasecmp(c->name, supported_codecs[i].name) == 0 && c->rate == supported_codecs[i].rate &&
        c->channels == supported_codecs[i].channels)
      return true;
  return false;
}

/* The codecs of IN (one side's offer) that rtcsipd offers to the other side:
 * the supported ones, in the order of PREF (names; NULL: IN's order), then
 * each telephone-event whose clock rate one of them has.  Returns how many
 * went into OUT (pointers into IN); 0 when no audio codec is in common. */
static unsigned select_codecs(const sdp_codec *in, unsigned n_in, const char *const *pref,
                              const sdp_codec **out)
{
  unsigned n = 0;
  if (pref) {
    for (const char *const *name = pref; *name; name++)
      for (unsigned i = 0; i < n_in; i++) {
        if (is_telephone_event(&in[i]) || !sdp_codec_supported(&in[i]) ||
            g_ascii_strcasecmp(in[i].name, *name) != 0)
          continue;
        bool dup = false;
        for (unsigned j = 0; j < n; j++)
          dup = dup || out[j] == &in[i];
        if (!dup)
          out[n++] = &in[i];
      }
  } else {
    for (unsigned i = 0; i < n_in; i++)
      if (!is_telephone_event(&in[i]) && sdp_codec_supported(&in[i]))
        out[n++] = &in[i];
  }
  if (n == 0)
    return 0;
  unsigned n_audio = n;
  for (unsigned i = 0; i < n_in; i++) {
    if (!is_telephone_event(&in[i]) || !sdp_codec_supported(&in[i]))
      continue;
    for (unsigned j = 0; j < n_audio; j++)
      if (out[j]->rate == in[i].rate) {
        out[n++] = &in[i];
        break;
      }
  }
  return n;
}

/* The codec of OFFERED that ANSWERED (from the other side's answer) names:
 * the same payload type when it is the same codec, else the first same codec. */
static const sdp_codec *find_offered(const sdp_codec *offered, unsigned n_offered, const sdp_codec *answered)
{
  for (unsigned i = 0; i < n_offered; i++)
    if (offered[i].pt == answered->pt && sdp_codec_same(&offered[i], answered))
      return &offered[i];
  for (unsigned i = 0; i < n_offered; i++)
    if (sdp_codec_same(&offered[i], answered))
      return &offered[i];
  return NULL;
}

/* The codecs of an answer (ANSWER) mapped onto those of the offer they answer
 * (OFFERED): CHOSEN[i] the offered codec, ANSWERED[i] the answer's.  Codecs
 * that were not offered or that rtcsipd cannot carry are left out.  Returns
 * how many; 0 when no audio codec (other than telephone-event) is left. */
static unsigned map_answer(const sdp_codec *offered, unsigned n_offered, const sdp_codec *answer,
                           unsigned n_answer, const sdp_codec **chosen, const sdp_codec **answered)
{
  unsigned n = 0, n_audio = 0;
  for (unsigned i = 0; i < n_answer; i++) {
    const sdp_codec *c = find_offered(offered, n_offered, &answer[i]);
    if (!c || !sdp_codec_supported(c))
      continue;
    bool dup = false;
    for (unsigned j = 0; j < n; j++)
      dup = dup || chosen[j] == c;
    if (dup)
      continue;
    chosen[n] = c;
    answered[n++] = &answer[i];
    n_audio += !is_telephone_event(c);
  }
  return n_audio ? n : 0;
}

/* ---------------------------------------------------------------------------
 * Reading */

/* Transports that carry RTP but that Sofia's parser does not know as such. */
static bool rtp_transport_unknown_to_sofia(const sdp_media_t *m)
{
  static const char *const names[] = {
    "UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP", "TCP/TLS/RTP/SAVPF", "RTP/SAVPF", "RTP/AVPF",
  };
  if (m->m_proto == sdp_proto_rtp || m->m_proto == sdp_proto_srtp || !m->m_proto_name)
    return false;
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
    if (g_ascii_strcasecmp(m->m_proto_name, names[i]) == 0)
      return true;
  return false;
}

/* Parses TEXT in HOME.  *first: the session as written (transport names as
 * they are); *rtp: the same session where the audio m-lines carry their
 * rtpmaps (the same as *first when nothing needed relabelling).  Media of the
 * two are in the same order. */
/* Sofia-SIP's token(): at *R, after STRIP, a run of LEGAL characters, then
 * one more character (any) and the SEP characters after it are consumed.
 * False (and *R unchanged) when the run is empty. */
static bool sofia_token(char **r, const char *sep, const char *legal, const char *strip)
{
  char *t = *r + (strip ? strspn(*r, strip) : 0);
  size_t n = strspn(t, legal);

  if (n == 0)
    return false;
  if (t[n])
    n++, n += strspn(t + n, sep);
  *r = t + n;
  return true;
}

/* Whether Sofia's parse_media() returns on the m= line M (NUL-terminated,
 * after "m=" and leading blanks): it is followed step by step up to its
 * format list, whose loop makes no progress on a format that does not start
 * with a token character.  Conservative: RTP transports, whose formats Sofia
 * reads another way, are held to the same rule (they are digits anyway). */
static bool sofia_mline_ends(char *r)
{
  static const char token[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                              "-!#$%&'*+.^_`{|}~";
  static const char token_slash[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                    "-!#$%&'*+.^_`{|}~/";
  char *end;

  if (!sofia_token(&r, " ", token, NULL)) /* media */
    return true; /* an error: Sofia stops */
  for (int i = 0; i < 2; i++) { /* port ["/" number] */
    char *ul = r + strspn(r, " \t");
    (void)strtoul(ul, &end, 10);
    if (end == ul)
      return true;
    r = end + strspn(end, " \t");
    if (i == 1 || *r != '/')
      break;
    r++;
  }
  if (!sofia_token(&r, " ", token_slash, " ")) /* proto */
    return true;
  while (*r)
    if (!sofia_token(&r, " \t", token, " \t"))
      return false; /* Sofia would loop here for ever */
  return true;
}

bool sdp_text_parsable(const char *text, size_t len)
{
  /* as Sofia reads it: up to a NUL, lines split at CR and LF, leading blanks skipped */
  const char *end = memchr(text, '\0', len);
  const char *p = text;

  if (!end)
    end = text + len;
  while (p < end) {
    const char *line = p, *line_end = p;
    while (line_end < end && *line_end != '\r' && *line_end != '\n')
      line_end++;
    while (line < line_end && (*line == ' ' || *line == '\t'))
      line++;
    if (line_end - line >= 2 && line[0] == 'm' && line[1] == '=') {
      const char *m = line + 2;
      while (m < line_end && (*m == ' ' || *m == '\t'))
        m++;
      g_autofree char *copy = g_strndup(m, (gsize)(line_end - m));
      if (!sofia_mline_ends(copy))
        return false;
    }
    p = line_end + 1;
  }
  return true;
}

static int parse_text(su_home_t *home, const char *text, size_t len, sdp_session_t **first,
                      sdp_session_t **rtp, const char **why)
{
  if (!text || len == 0)
    FAIL(-EINVAL, "empty SDP");
  if (len > SDP_MAX_TEXT)
    FAIL(-E2BIG, "SDP too large");
  if (!sdp_text_parsable(text, len))
    FAIL(-EINVAL, "malformed m= line");
  sdp_session_t *s = sdp_session(sdp_parse(home, text, (issize_t)len, sdp_f_c_missing));
  if (!s)
    FAIL(-EINVAL, "malformed SDP");
  unsigned n = 0;
  for (sdp_media_t *m = s->sdp_media; m; m = m->m_next)
    n++;
  if (n > SDP_MAX_MEDIA)
    FAIL(-EINVAL, "too many m-lines");
  *first = *rtp = s;

  /* a copy with the audio m-lines relabelled RTP/AVP, printed and parsed again */
  sdp_session_t *copy = sdp_session_dup(home, s);
  if (!copy)
    return -ENOMEM;
  bool relabelled = false;
  for (sdp_media_t *m = copy->sdp_media; m; m = m->m_next)
    if (m->m_type == sdp_media_audio && rtp_transport_unknown_to_sofia(m)) {
      sdp_media_transport(m, "RTP/AVP");
      relabelled = true;
    }
  if (!relabelled)
    return 0;
  sdp_printer_t *printer = sdp_print(home, copy, NULL, 0, 0);
  const char *again = printer ? sdp_message(printer) : NULL;
  sdp_session_t *s2 = again ? sdp_session(sdp_parse(home, again, (issize_t)strlen(again), sdp_f_c_missing)) : NULL;
  if (!s2)
    FAIL(-EINVAL, "malformed rtpmap or fmtp");
  *rtp = s2;
  return 0;
}

static const sdp_attribute_t *find_attr(const sdp_media_t *m, const char *name)
{
  return sdp_attribute_find2(m->m_attributes, m->m_session ? m->m_session->sdp_attributes : NULL, name);
}

static const char *attr_value(const sdp_media_t *m, const char *name)
{
  const sdp_attribute_t *a = find_attr(m, name);
  return a ? (a->a_value ? a->a_value : "") : NULL;
}

/* The m-lines of S into MEDIA; *audio gets the index of the first audio
 * m-line with a port. */
static int read_mlines(const sdp_session_t *s, sdp_mline *media, unsigned *n_media, unsigned *audio,
                       const char **why)
{
  unsigned n = 0;
  bool found = false;
  for (const sdp_media_t *m = s->sdp_media; m && n < SDP_MAX_MEDIA; m = m->m_next, n++) {
    sdp_mline *ml = &media[n];
    ml->kind = m->m_type == sdp_media_audio ? SDP_KIND_AUDIO
             : m->m_type == sdp_media_video ? SDP_KIND_VIDEO
                                            : SDP_KIND_OTHER;
    if (m->m_port > 65535)
      FAIL(-EINVAL, "port out of range");
    ml->port = (uint16_t)m->m_port;
    ml->rejected = m->m_port == 0;
    if (!copy_text(ml->type, sizeof ml->type, m->m_type_name) ||
        !copy_text(ml->proto, sizeof ml->proto, m->m_proto_name) ||
        !copy_text(ml->mid, sizeof ml->mid, attr_value(m, "mid")))
      FAIL(-EINVAL, "m-line field too long");
    const char *format = m->m_format ? m->m_format->l_text : NULL;
    char pt[8];
    if (!format && m->m_rtpmaps) {
      g_snprintf(pt, sizeof pt, "%u", m->m_rtpmaps->rm_pt);
      format = pt;
    }
    if (!copy_text(ml->format, sizeof ml->format, format ? format : "0"))
      FAIL(-EINVAL, "m-line format too long");
    if (!found && ml->kind == SDP_KIND_AUDIO && !ml->rejected) {
      *audio = n;
      found = true;
    }
  }
  *n_media = n;
  if (!found)
    FAIL(-ENOMEDIUM, "no audio m-line with a port");
  return 0;
}

static const sdp_media_t *nth_media(const sdp_session_t *s, unsigned index)
{
  const sdp_media_t *m = s->sdp_media;
  for (unsigned i = 0; m && i < index; i++)
    m = m->m_next;
  return m;
}

/* The rtpmaps of M (already parsed by Sofia) into CODECS. */
static int read_codecs(const sdp_media_t *m, sdp_codec *codecs, unsigned *n_codecs, const char **why)
{
  unsigned n = 0;
  for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm && n < SDP_MAX_CODECS; rm = rm->rm_next) {
    sdp_codec *c = &codecs[n];
    if (!rm->rm_encoding || !rm->rm_encoding[0] || rm->rm_rate == 0 || rm->rm_rate > 1000000)
      continue; /* a dynamic payload type without a=rtpmap: nothing to carry */
    unsigned long channels = 1;
    if (rm->rm_params && rm->rm_params[0]) {
      char *end = NULL;
      channels = strtoul(rm->rm_params, &end, 10);
      if (*end || channels < 1 || channels > 8)
        continue;
    }
    c->pt = (uint8_t)rm->rm_pt;
    c->rate = (uint32_t)rm->rm_rate;
    c->channels = (uint8_t)channels;
    if (!copy_text(c->name, sizeof c->name, rm->rm_encoding) || !copy_text(c->fmtp, sizeof c->fmtp, rm->rm_fmtp))
      continue;
    n++;
  }
  *n_codecs = n;
  if (n == 0)
    FAIL(-ENOTSUP, "no codec on the audio m-line");
  return 0;
}

/* ICE characters (RFC 8839): ALPHA / DIGIT / "+" / "/". */
static bool ice_chars(const char *s, size_t min, size_t max)
{
  size_t n = strlen(s);
  if (n < min || n > max)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!g_ascii_isalnum(s[i]) && s[i] != '+' && s[i] != '/')
      return false;
  return true;
}

static sdp_setup setup_from_text(const char *v)
{
  if (!v)
    return SDP_SETUP_NONE;
  if (strcmp(v, "actpass") == 0)
    return SDP_SETUP_ACTPASS;
  if (strcmp(v, "active") == 0)
    return SDP_SETUP_ACTIVE;
  if (strcmp(v, "passive") == 0)
    return SDP_SETUP_PASSIVE;
  if (strcmp(v, "holdconn") == 0)
    return SDP_SETUP_HOLDCONN;
  return SDP_SETUP_NONE;
}

/* a=group:BUNDLE mid mid ... (session level) */
static void read_bundle(const sdp_session_t *s, sdp_webrtc *w)
{
  for (const sdp_attribute_t *a = s->sdp_attributes; a; a = a->a_next) {
    if (strcmp(a->a_name, "group") != 0 || !a->a_value)
      continue;
    g_auto(GStrv) tokens = g_strsplit(a->a_value, " ", -1);
    if (!tokens[0] || strcmp(tokens[0], "BUNDLE") != 0)
      continue;
    w->bundle = true;
    for (unsigned i = 1; tokens[i] && w->n_bundle_mids < SDP_MAX_MEDIA; i++)
      if (tokens[i][0] && copy_text(w->bundle_mids[w->n_bundle_mids], sizeof w->bundle_mids[0], tokens[i]))
        w->n_bundle_mids++;
    return;
  }
}

static int webrtc_read(su_home_t *home, const char *text, size_t len, sdp_webrtc *w, const char **why)
{
  sdp_session_t *s = NULL, *rtp = NULL;
  int r = parse_text(home, text, len, &s, &rtp, why);
  if (r < 0)
    return r;
  if ((r = read_mlines(s, w->media, &w->n_media, &w->audio, why)) < 0)
    return r;
  const sdp_media_t *m = nth_media(s, w->audio);
  if ((r = read_codecs(nth_media(rtp, w->audio), w->codecs, &w->n_codecs, why)) < 0)
    return r;
  w->dir = (sdp_dir)m->m_mode;
  const sdp_connection_t *c = sdp_media_connections(m);
  if (c && !copy_text(w->address, sizeof w->address, c->c_address))
    FAIL(-EINVAL, "address too long");

  const char *ufrag = attr_value(m, "ice-ufrag"), *pwd = attr_value(m, "ice-pwd");
  if (!ufrag || !pwd)
    FAIL(-ENOTSUP, "no ICE credentials");
  if (!ice_chars(ufrag, 4, 256) || !ice_chars(pwd, 22, 256))
    FAIL(-EINVAL, "malformed ICE credentials");
  copy_text(w->ice_ufrag, sizeof w->ice_ufrag, ufrag);
  copy_text(w->ice_pwd, sizeof w->ice_pwd, pwd);
  w->ice_lite = sdp_attribute_find(s->sdp_attributes, "ice-lite") != NULL;

  const char *fp = attr_value(m, "fingerprint");
  if (!fp)
    FAIL(-ENOTSUP, "no DTLS fingerprint");
  if (strlen(fp) < 10 || !copy_text(w->fingerprint, sizeof w->fingerprint, fp))
    FAIL(-EINVAL, "malformed DTLS fingerprint");
  w->setup = setup_from_text(attr_value(m, "setup"));
  w->rtcp_mux = sdp_attribute_find(m->m_attributes, "rtcp-mux") != NULL;
  w->end_of_candidates = find_attr(m, "end-of-candidates") != NULL;
  for (const sdp_attribute_t *a = m->m_attributes; a && w->n_candidates < SDP_MAX_CANDIDATES; a = a->a_next) {
    if (strcmp(a->a_name, "candidate") != 0 || !a->a_value)
      continue;
    int n = g_snprintf(w->candidates[w->n_candidates], sizeof w->candidates[0], "candidate:%s", a->a_value);
    if (n > 0 && (size_t)n < sizeof w->candidates[0])
      w->n_candidates++;
  }
  read_bundle(s, w);
  return 0;
}

int sdp_webrtc_parse(const char *text, size_t len, sdp_webrtc **ret, const char **why)
{
  *ret = NULL;
  su_home_t *home = su_home_new(sizeof(su_home_t));
  if (!home)
    return -ENOMEM;
  sdp_webrtc *w = g_new0(sdp_webrtc, 1);
  int r = webrtc_read(home, text, len, w, why);
  su_home_unref(home);
  if (r < 0) {
    g_free(w);
    return r;
  }
  *ret = w;
  return 0;
}

void sdp_webrtc_free(sdp_webrtc *w)
{
  g_free(w);
}

static int plain_read(su_home_t *home, const char *text, size_t len, sdp_plain *p, const char **why)
{
  sdp_session_t *s = NULL, *rtp = NULL;
  int r = parse_text(home, text, len, &s, &rtp, why);
  if (r < 0)
    return r;
  if ((r = read_mlines(s, p->media, &p->n_media, &p->audio, why)) < 0)
    return r;
  const sdp_media_t *m = nth_media(s, p->audio);
  if ((r = read_codecs(nth_media(rtp, p->audio), p->codecs, &p->n_codecs, why)) < 0)
    return r;
  const sdp_connection_t *c = sdp_media_connections(m);
  if (!c || !c->c_address)
    FAIL(-EINVAL, "no c= line");
  if (!copy_text(p->address, sizeof p->address, c->c_address))
    FAIL(-EINVAL, "address too long");
  p->ipv6 = c->c_addrtype == sdp_addr_ip6;
  p->port = p->media[p->audio].port;
  p->dir = (sdp_dir)m->m_mode;
  /* RFC 2543 hold: "do not send to me" */
  p->hold_address = strcmp(c->c_address, "0.0.0.0") == 0 || strcmp(c->c_address, "::") == 0;
  if (p->hold_address)
    p->dir &= ~SDP_DIR_RECVONLY;
  p->rtcp_mux = sdp_attribute_find(m->m_attributes, "rtcp-mux") != NULL;
  const char *rtcp = attr_value(m, "rtcp");
  if (rtcp) {
    char *end = NULL;
    guint64 port = g_ascii_strtoull(rtcp, &end, 10);
    if (end != rtcp && (*end == '\0' || *end == ' ') && port > 0 && port <= 65535)
      p->rtcp_port = (uint16_t)port;
  }
  const char *ptime = attr_value(m, "ptime");
  if (ptime) {
    char *end = NULL;
    guint64 ms = g_ascii_strtoull(ptime, &end, 10);
    if (end != ptime && *end == '\0' && ms > 0 && ms <= 1000)
      p->ptime = (unsigned)ms;
  }
  return 0;
}

int sdp_plain_parse(const char *text, size_t len, sdp_plain **ret, const char **why)
{
  *ret = NULL;
  su_home_t *home = su_home_new(sizeof(su_home_t));
  if (!home)
    return -ENOMEM;
  sdp_plain *p = g_new0(sdp_plain, 1);
  int r = plain_read(home, text, len, p, why);
  su_home_unref(home);
  if (r < 0) {
    g_free(p);
    return r;
  }
  *ret = p;
  return 0;
}

void sdp_plain_free(sdp_plain *p)
{
  g_free(p);
}

sdp_setup sdp_webrtc_answer_setup(const sdp_webrtc *offer)
{
  switch (offer->setup) {
  case SDP_SETUP_ACTPASS:
    /* rtcsipd is the DTLS server when it may choose: the server picks the
     * SRTP profile from the client's list by its own order (OpenSSL), and
     * rtcsipd's puts AEAD_AES_128_GCM first, about 3x cheaper per packet in
     * libsrtp2 than AES_CM_128_HMAC_SHA1_80, which Chromium as the server
     * would pick.  No latency is lost: the browser's ICE cannot connect
     * before it has this answer anyway (RFC 5763 section 5 allows either). */
    return SDP_SETUP_PASSIVE;
  case SDP_SETUP_PASSIVE:
    return SDP_SETUP_ACTIVE;
  case SDP_SETUP_ACTIVE:
  case SDP_SETUP_NONE: /* RFC 4145: absent means active */
    return SDP_SETUP_PASSIVE;
  case SDP_SETUP_HOLDCONN:
    break;
  }
  return SDP_SETUP_NONE;
}

/* ---------------------------------------------------------------------------
 * Writing: Sofia structures in a su_home, printed by sdp_print(). */

static const char WEBRTC_PROTO[] = "UDP/TLS/RTP/SAVPF";
static const char MSID_STREAM[] = "rtcsipd";
static const char MSID_TRACK[] = "rtcsipd-audio";

static sdp_connection_t *new_connection(su_home_t *home, const char *address)
{
  sdp_connection_t *c = su_zalloc(home, sizeof *c);
  c->c_size = sizeof *c;
  c->c_nettype = sdp_net_in;
  c->c_addrtype = strchr(address, ':') ? sdp_addr_ip6 : sdp_addr_ip4;
  c->c_address = su_strdup(home, address);
  return c;
}

static sdp_session_t *new_session(su_home_t *home, const char *address, uint64_t id, uint64_t version)
{
  sdp_session_t *s = su_zalloc(home, sizeof *s);
  sdp_origin_t *o = su_zalloc(home, sizeof *o);
  sdp_time_t *t = su_zalloc(home, sizeof *t);
  s->sdp_size = sizeof *s;
  o->o_size = sizeof *o;
  o->o_username = "-";
  o->o_id = id;
  o->o_version = version;
  o->o_address = new_connection(home, address);
  t->t_size = sizeof *t;
  s->sdp_origin = o;
  s->sdp_subject = "rtcsipd";
  s->sdp_connection = new_connection(home, address);
  s->sdp_time = t;
  return s;
}

static void add_attr(su_home_t *home, sdp_attribute_t **list, const char *name, const char *value)
{
  sdp_attribute_t *a = su_zalloc(home, sizeof *a);
  a->a_size = sizeof *a;
  a->a_name = su_strdup(home, name);
  a->a_value = value ? su_strdup(home, value) : NULL;
  while (*list)
    list = &(*list)->a_next;
  *list = a;
}

static sdp_media_t *add_media(su_home_t *home, sdp_session_t *s, const char *type, unsigned port,
                              const char *proto, sdp_dir dir)
{
  sdp_media_t *m = su_zalloc(home, sizeof *m);
  m->m_size = sizeof *m;
  m->m_session = s;
  sdp_media_type(m, type);
  sdp_media_transport(m, proto);
  m->m_type_name = su_strdup(home, type);
  m->m_proto_name = su_strdup(home, proto);
  m->m_port = port;
  m->m_mode = dir;
  sdp_media_t **tail = &s->sdp_media;
  while (*tail)
    tail = &(*tail)->m_next;
  *tail = m;
  return m;
}

/* An m-line of an answer that rejects ML: port 0, its first format, its mid. */
static void add_rejected(su_home_t *home, sdp_session_t *s, const sdp_mline *ml)
{
  sdp_media_t *m = add_media(home, s, ml->type[0] ? ml->type : "audio", 0, ml->proto[0] ? ml->proto : "RTP/AVP",
                             SDP_DIR_INACTIVE);
  sdp_list_t *l = su_zalloc(home, sizeof *l);
  l->l_size = sizeof *l;
  l->l_text = su_strdup(home, ml->format);
  m->m_format = l;
  m->m_rejected = 1;
  if (ml->mid[0])
    add_attr(home, &m->m_attributes, "mid", ml->mid);
}

/* A rtpmap for codec C under payload type PT; FMTP overrides C's when not NULL. */
static void add_rtpmap(su_home_t *home, sdp_media_t *m, const sdp_codec *c, uint8_t pt, const char *fmtp)
{
  sdp_rtpmap_t *rm = su_zalloc(home, sizeof *rm);
  rm->rm_size = sizeof *rm;
  rm->rm_pt = pt & 0x7f;
  rm->rm_encoding = su_strdup(home, c->name);
  rm->rm_rate = c->rate;
  unsigned channels = is_opus(c) ? 2 : c->channels; /* always opus/48000/2 (RFC 7587) */
  rm->rm_params = channels > 1 ? su_sprintf(home, "%u", channels) : NULL;
  if (!fmtp)
    fmtp = c->fmtp;
  rm->rm_fmtp = fmtp[0] ? su_strdup(home, fmtp) : NULL;
  sdp_rtpmap_t **tail = &m->m_rtpmaps;
  while (*tail)
    tail = &(*tail)->rm_next;
  *tail = rm;
}

static int print_session(su_home_t *home, const sdp_session_t *s, char **out, const char **why)
{
  sdp_printer_t *printer = sdp_print(home, s, NULL, 0, sdp_f_mode_always);
  const char *text = printer ? sdp_message(printer) : NULL;
  if (!text)
    FAIL(-EINVAL, "the SDP could not be printed");
  *out = g_strdup(text);
  return 0;
}

static void add_ptime(su_home_t *home, sdp_media_t *m, unsigned ptime)
{
  char v[16];
  g_snprintf(v, sizeof v, "%u", ptime ? ptime : 20);
  add_attr(home, &m->m_attributes, "ptime", v);
}

/* The PBX side is plain RTP/AVP; SDES (RTP/SAVP) is not carried yet. */
static bool plain_rtp_avp(const sdp_plain *p)
{
  return g_ascii_strcasecmp(p->media[p->audio].proto, "RTP/AVP") == 0;
}

static int check_webrtc_local(const sdp_webrtc_local *l, const char **why)
{
  if (!l || !l->address || !l->address[0] || l->port == 0)
    FAIL(-EINVAL, "no local address");
  if (!l->ice_ufrag || !l->ice_pwd || !ice_chars(l->ice_ufrag, 4, 256) || !ice_chars(l->ice_pwd, 22, 256))
    FAIL(-EINVAL, "bad local ICE credentials");
  if (!l->fingerprint || !l->fingerprint[0])
    FAIL(-EINVAL, "no local fingerprint");
  if (l->n_candidates > 0 && !l->candidates)
    FAIL(-EINVAL, "no local candidates");
  return 0;
}

/* ICE, DTLS and rtcp-mux attributes of rtcsipd's WebRTC audio m-line. */
static void add_webrtc_transport(su_home_t *home, sdp_media_t *m, const char *mid, const sdp_webrtc_local *l,
                                 sdp_setup setup)
{
  sdp_attribute_t **list = &m->m_attributes;
  if (mid && mid[0])
    add_attr(home, list, "mid", mid);
  add_attr(home, list, "ice-ufrag", l->ice_ufrag);
  add_attr(home, list, "ice-pwd", l->ice_pwd);
  add_attr(home, list, "fingerprint", l->fingerprint);
  add_attr(home, list, "setup", sdp_setup_name(setup));
  add_attr(home, list, "rtcp-mux", NULL);
  add_attr(home, list, "msid", su_sprintf(home, "%s %s", MSID_STREAM, MSID_TRACK));
  for (unsigned i = 0; i < l->n_candidates; i++) {
    const char *c = l->candidates[i];
    if (!c)
      continue;
    if (g_str_has_prefix(c, "a="))
      c += 2;
    if (g_str_has_prefix(c, "candidate:"))
      c += strlen("candidate:");
    add_attr(home, list, "candidate", c);
  }
  if (l->end_of_candidates)
    add_attr(home, list, "end-of-candidates", NULL);
}

static int plain_offer_build(su_home_t *home, const sdp_webrtc *o, const sdp_plain_local *l, char **out,
                             const char **why)
{
  if (!l || !l->address || !l->address[0] || l->port == 0)
    FAIL(-EINVAL, "no local address");
  const sdp_codec *codecs[SDP_MAX_CODECS];
  unsigned n = select_codecs(o->codecs, o->n_codecs, l->codecs, codecs);
  if (n == 0)
    FAIL(-ENOTSUP, "no codec in common");
  sdp_session_t *s = new_session(home, l->address, l->session_id, l->session_version);
  sdp_media_t *m = add_media(home, s, "audio", l->port, "RTP/AVP", o->dir);
  for (unsigned i = 0; i < n; i++)
    add_rtpmap(home, m, codecs[i], codecs[i]->pt, NULL);
  add_ptime(home, m, l->ptime);
  return print_session(home, s, out, why);
}

int sdp_plain_offer_from_webrtc(const sdp_webrtc *offer, const sdp_plain_local *local, char **out,
                                const char **why)
{
  *out = NULL;
  su_home_t *home = su_home_new(sizeof(su_home_t));
  if (!home)
    return -ENOMEM;
  int r = plain_offer_build(home, offer, local, out, why);
  su_home_unref(home);
  return r;
}

static bool in_bundle(const sdp_webrtc *w, const char *mid)
{
  for (unsigned i = 0; i < w->n_bundle_mids; i++)
    if (strcmp(w->bundle_mids[i], mid) == 0)
      return true;
  return false;
}

static int webrtc_answer_build(su_home_t *home, const sdp_webrtc *o, const sdp_plain *a,
                               const sdp_webrtc_local *l, char **out, const char **why)
{
  int r = check_webrtc_local(l, why);
  if (r < 0)
    return r;
  if (!o->rtcp_mux)
    FAIL(-ENOTSUP, "the browser did not offer rtcp-mux");
  sdp_setup setup = sdp_webrtc_answer_setup(o);
  if (setup == SDP_SETUP_NONE)
    FAIL(-ENOTSUP, "no DTLS role left by a=setup");
  if (a->media[a->audio].rejected)
    FAIL(-ENOMEDIUM, "the PBX rejected the audio m-line");
  if (!plain_rtp_avp(a))
    FAIL(-EINVAL, "the PBX answered with another transport than RTP/AVP");

  /* the PBX's codecs under the browser's payload types */
  const sdp_codec *chosen[SDP_MAX_CODECS], *answered[SDP_MAX_CODECS];
  unsigned n = map_answer(o->codecs, o->n_codecs, a->codecs, a->n_codecs, chosen, answered);
  if (n == 0)
    FAIL(-ENOTSUP, "no codec in common");

  sdp_session_t *s = new_session(home, l->address, l->session_id, l->session_version);
  const sdp_mline *audio = &o->media[o->audio];
  if (o->bundle && audio->mid[0] && in_bundle(o, audio->mid))
    add_attr(home, &s->sdp_attributes, "group", su_sprintf(home, "BUNDLE %s", audio->mid));
  add_attr(home, &s->sdp_attributes, "msid-semantic", su_sprintf(home, " WMS %s", MSID_STREAM));
  for (unsigned i = 0; i < o->n_media; i++) {
    if (i != o->audio) {
      add_rejected(home, s, &o->media[i]);
      continue;
    }
    sdp_media_t *m = add_media(home, s, "audio", l->port, audio->proto[0] ? audio->proto : WEBRTC_PROTO, a->dir);
    for (unsigned j = 0; j < n; j++)
      add_rtpmap(home, m, chosen[j], chosen[j]->pt, answered[j]->fmtp);
    add_webrtc_transport(home, m, audio->mid, l, setup);
  }
  return print_session(home, s, out, why);
}

int sdp_webrtc_answer_from_plain(const sdp_webrtc *offer, const sdp_plain *answer,
                                 const sdp_webrtc_local *local, char **out, const char **why)
{
  *out = NULL;
  su_home_t *home = su_home_new(sizeof(su_home_t));
  if (!home)
    return -ENOMEM;
  int r = webrtc_answer_build(home, offer, answer, local, out, why);
  su_home_unref(home);
  return r;
}

static int webrtc_offer_build(su_home_t *home, const sdp_plain *o, const sdp_webrtc_local *l,
                              const char *const *pref, char **out, const char **why)
{
  int r = check_webrtc_local(l, why);
  if (r < 0)
    return r;
  if (!plain_rtp_avp(o))
    FAIL(-ENOTSUP, "the PBX offered another transport than RTP/AVP");
  const sdp_codec *codecs[SDP_MAX_CODECS];
  unsigned n = select_codecs(o->codecs, o->n_codecs, pref, codecs);
  if (n == 0)
    FAIL(-ENOTSUP, "no codec in common");
  sdp_session_t *s = new_session(home, l->address, l->session_id, l->session_version);
  add_attr(home, &s->sdp_attributes, "group", "BUNDLE 0");
  add_attr(home, &s->sdp_attributes, "msid-semantic", su_sprintf(home, " WMS %s", MSID_STREAM));
  sdp_media_t *m = add_media(home, s, "audio", l->port, WEBRTC_PROTO, o->dir);
  for (unsigned i = 0; i < n; i++)
    add_rtpmap(home, m, codecs[i], codecs[i]->pt, NULL);
  add_webrtc_transport(home, m, "0", l, SDP_SETUP_ACTPASS);
  if (o->ptime)
    add_ptime(home, m, o->ptime);
  return print_session(home, s, out, why);
}

int sdp_webrtc_offer_from_plain(const sdp_plain *offer, const sdp_webrtc_local *local,
                                const char *const *local_codecs, char **out, const char **why)
{
  *out = NULL;
  su_home_t *home = su_home_new(sizeof(su_home_t));
  if (!home)
    return -ENOMEM;
  int r = webrtc_offer_build(home, offer, local, local_codecs, out, why);
  su_home_unref(home);
  return r;
}

static int plain_answer_build(su_home_t *home, const sdp_plain *o, const sdp_webrtc *a,
                              const sdp_plain_local *l, char **out, const char **why)
{
  if (!l || !l->address || !l->address[0] || l->port == 0)
    FAIL(-EINVAL, "no local address");
  if (a->media[a->audio].rejected)
    FAIL(-ENOMEDIUM, "the browser rejected the audio m-line");
  if (!plain_rtp_avp(o))
    FAIL(-ENOTSUP, "the PBX offered another transport than RTP/AVP");
  /* the browser's codecs under the PBX's payload types */
  const sdp_codec *chosen[SDP_MAX_CODECS], *answered[SDP_MAX_CODECS];
  unsigned n = map_answer(o->codecs, o->n_codecs, a->codecs, a->n_codecs, chosen, answered);
  if (n == 0)
    FAIL(-ENOTSUP, "no codec in common");

  sdp_session_t *s = new_session(home, l->address, l->session_id, l->session_version);
  for (unsigned i = 0; i < o->n_media; i++) {
    if (i != o->audio) {
      add_rejected(home, s, &o->media[i]);
      continue;
    }
    sdp_media_t *m = add_media(home, s, "audio", l->port, "RTP/AVP", a->dir);
    for (unsigned j = 0; j < n; j++)
      add_rtpmap(home, m, chosen[j], chosen[j]->pt, answered[j]->fmtp[0] ? answered[j]->fmtp : chosen[j]->fmtp);
    add_ptime(home, m, l->ptime ? l->ptime : o->ptime);
  }
  return print_session(home, s, out, why);
}

int sdp_plain_answer_from_webrtc(const sdp_plain *offer, const sdp_webrtc *answer,
                                 const sdp_plain_local *local, char **out, const char **why)
{
  *out = NULL;
  su_home_t *home = su_home_new(sizeof(su_home_t));
  if (!home)
    return -ENOMEM;
  int r = plain_answer_build(home, offer, answer, local, out, why);
  su_home_unref(home);
  return r;
}
