/* The load generator's SDP (lg_sdp.h). */
#include "lg_sdp.h"

#include <errno.h>
#include <string.h>

#include "sip/sdp_translate.h"

char *lg_sdp_build(const lg_sdp_local *l)
{
  GString *s = g_string_new(NULL);
  const char *pts = l->codec == LG_CODEC_OPUS ? "111 0 126" : "0 126";

  g_string_append_printf(s,
    "v=0\r\n"
    "o=- %" G_GUINT64_FORMAT " 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS loadgen\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF %s\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n", l->session_id, pts);
  for (char *const *c = l->candidates; c && *c; c++)
    g_string_append_printf(s, "a=%s\r\n", *c);
  g_string_append_printf(s,
    "a=ice-ufrag:%s\r\n"
    "a=ice-pwd:%s\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:%s\r\n"
    "a=setup:%s\r\n"
    "a=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=sendrecv\r\n"
    "a=msid:loadgen loadgen-audio\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n", l->ufrag, l->pwd, l->fingerprint, l->setup);
  if (l->codec == LG_CODEC_OPUS)
    g_string_append(s,
      "a=rtpmap:111 opus/48000/2\r\n"
      "a=rtcp-fb:111 transport-cc\r\n"
      "a=fmtp:111 minptime=10;useinbandfec=1\r\n");
  g_string_append(s,
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\n");
  return g_string_free(s, FALSE);
}

void lg_sdp_remote_clear(lg_sdp_remote *r)
{
  g_free(r->ufrag);
  g_free(r->pwd);
  g_free(r->fingerprint);
  g_free(r->setup);
  if (r->candidates)
    g_ptr_array_unref(r->candidates);
  memset(r, 0, sizeof(*r));
}

int lg_sdp_parse(const char *text, size_t len, lg_codec codec, lg_sdp_remote *out, const char **why)
{
  sdp_webrtc *w = NULL;
  int rc;

  memset(out, 0, sizeof(*out));
  out->pt = -1;
  /* rtcsipd's own reader of a browser's SDP: the other side's is read the
   * same way (Sofia-SIP's parser; its rtpmaps under UDP/TLS/RTP/SAVPF) */
  rc = sdp_webrtc_parse(text, len, &w, why);
  if (rc < 0)
    return -EINVAL;
  /* the codec asked for, else PCMU (the offer always has it as fallback) */
  for (int pass = 0; pass < 2 && out->pt < 0; pass++) {
    lg_codec want = pass == 0 ? codec : LG_CODEC_PCMU;
    const char *name = want == LG_CODEC_OPUS ? "opus" : "PCMU";
    for (unsigned i = 0; i < w->n_codecs && out->pt < 0; i++)
      if (!g_ascii_strcasecmp(w->codecs[i].name, name))
        out->pt = w->codecs[i].pt, out->codec = want;
  }
  if (out->pt < 0 || !w->n_candidates) {
    *why = out->pt < 0 ? "neither the codec nor PCMU is in the SDP" : "no ICE candidate";
    sdp_webrtc_free(w);
    out->pt = -1;
    return -EINVAL;
  }
  out->ufrag = g_strdup(w->ice_ufrag);
  out->pwd = g_strdup(w->ice_pwd);
  out->fingerprint = g_strdup(w->fingerprint);
  out->setup = w->setup == SDP_SETUP_NONE ? NULL : g_strdup(sdp_setup_name(w->setup));
  out->ice_lite = w->ice_lite;
  out->candidates = g_ptr_array_new_null_terminated(w->n_candidates, g_free, TRUE);
  for (unsigned i = 0; i < w->n_candidates; i++)
    g_ptr_array_add(out->candidates, g_strdup(w->candidates[i]));
  sdp_webrtc_free(w);
  return 0;
}
