/* The load generator's SDP: a Chromium-like WebRTC offer or answer for one
 * audio stream (BUNDLE group with mid 0, rtcp-mux, full ICE, DTLS-SRTP
 * fingerprint and setup role, the codec first), and what it needs from the
 * other side's SDP, read with rtcsipd's reader of browser SDP
 * (sip/sdp_translate.h, on Sofia-SIP's SDP parser). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef enum { LG_CODEC_OPUS, LG_CODEC_PCMU } lg_codec;

typedef struct {
  const char *ufrag, *pwd, *fingerprint;
  char *const *candidates; /* "candidate:..." values, NULL-terminated */
  lg_codec codec;
  const char *setup;       /* "actpass" (offer), "active" (answer) */
  uint64_t session_id;
} lg_sdp_local;

typedef struct {
  char *ufrag, *pwd, *fingerprint, *setup; /* setup: NULL when absent */
  GPtrArray *candidates;   /* "candidate:..." (char *, owned), NULL-terminated */
  int pt;                  /* the codec's payload type, -1: not in the SDP */
  lg_codec codec;          /* the one asked for, or PCMU when only that is there */
  bool ice_lite;
} lg_sdp_remote;

/* The SDP text (g_free). */
char *lg_sdp_build(const lg_sdp_local *l);
/* Reads TEXT: 0, or -EINVAL with *WHY (static) when it cannot be used
 * (unparsable, no audio, no ICE credentials or fingerprint, no candidate,
 * neither the codec nor PCMU in it). */
int lg_sdp_parse(const char *text, size_t len, lg_codec codec, lg_sdp_remote *out, const char **why);
void lg_sdp_remote_clear(lg_sdp_remote *r);
