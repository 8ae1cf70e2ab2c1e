/* SDP translation between the browser's WebRTC SDP and the PBX's plain SDP.
 * Pure functions: no network, no main loop.  Sofia-SIP's SDP parser and
 * printer (<sofia-sip/sdp.h>) read and write every description; this module
 * only decides what goes from one side to the other.
 *
 *   browser offer (UDP/TLS/RTP/SAVPF, ICE, DTLS)  --sdp_plain_offer_from_webrtc-->  PBX offer (RTP/AVP)
 *   browser answer                <--sdp_webrtc_answer_from_plain--                 PBX answer
 *   browser offer (to the browser) <--sdp_webrtc_offer_from_plain--                 PBX offer
 *   browser answer                 --sdp_plain_answer_from_webrtc-->                PBX answer
 *
 * rtcsipd carries one audio stream: the first audio m-line with a port.  Video
 * and other m-lines are answered with port 0 and never offered to the other
 * side.  Codecs cross only when both can use them (the supported set: opus,
 * G722, PCMU, PCMA, plus telephone-event), with their payload types kept.
 * Directions cross unchanged; a plain peer's c=0.0.0.0 (RFC 2543 hold)
 * counts as "does not receive".  The PBX side is RTP/AVP only for now: an
 * RTP/SAVP (SDES) offer from the PBX gets -ENOTSUP.
 *
 * Errors (negative errno; *why, when given, gets a static reason):
 *   -EINVAL     the SDP is malformed or not what the side must send
 *   -ENOMEDIUM  no usable audio m-line (none, or rejected with port 0)
 *   -ENOTSUP    no codec in common, or a required feature missing
 *               (rtcp-mux, ICE credentials, fingerprint): answer 488
 *   -E2BIG      the text is larger than SDP_MAX_TEXT
 * Tested in tests/unit/test_sdp_translate.c with SDP captured from Chromium
 * (JsSIP, SIP.js) and written after Asterisk and FreeSWITCH.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SDP_MAX_TEXT (64 * 1024)
#define SDP_MAX_MEDIA 16       /* m-lines; more is -EINVAL */
#define SDP_MAX_CODECS 32      /* payload types kept per m-line; the rest ignored */
#define SDP_MAX_CANDIDATES 32  /* candidates kept; the rest ignored */

/* The same bits as Sofia's sdp_mode_t: bit 0 = sends, bit 1 = receives,
 * from the point of view of the SDP's author. */
typedef enum {
  SDP_DIR_INACTIVE = 0,
  SDP_DIR_SENDONLY = 1,
  SDP_DIR_RECVONLY = 2,
  SDP_DIR_SENDRECV = 3,
} sdp_dir;

typedef enum {
  SDP_SETUP_NONE = 0, /* no a=setup */
  SDP_SETUP_ACTPASS,
  SDP_SETUP_ACTIVE,
  SDP_SETUP_PASSIVE,
  SDP_SETUP_HOLDCONN,
} sdp_setup;

typedef enum {
  SDP_KIND_AUDIO,
  SDP_KIND_VIDEO,
  SDP_KIND_OTHER,
} sdp_kind;

typedef struct {
  uint8_t pt;
  char name[32];   /* encoding name as written, e.g. "opus", "PCMU" */
  uint32_t rate;   /* RTP clock rate */
  uint8_t channels; /* 1 when not given */
  char fmtp[256];  /* "" when none */
} sdp_codec;

/* One m-line, as much as is needed to answer or reject it. */
typedef struct {
  sdp_kind kind;
  char type[16];   /* "audio", "video", "application", ... */
  char proto[32];  /* "UDP/TLS/RTP/SAVPF", "RTP/AVP", "UDP/DTLS/SCTP", ... */
  char format[32]; /* its first format: what a rejecting answer repeats */
  uint16_t port;
  bool rejected;   /* port 0 */
  char mid[32];    /* "" when none */
} sdp_mline;

/* A browser's offer or answer (JSEP). */
typedef struct {
  sdp_mline media[SDP_MAX_MEDIA];
  unsigned n_media;
  unsigned audio;  /* index in media[] of the audio m-line rtcsipd takes */

  /* of that audio m-line: */
  sdp_codec codecs[SDP_MAX_CODECS]; /* in the order offered, all of them */
  unsigned n_codecs;
  sdp_dir dir;
  char address[64]; /* c= */
  char ice_ufrag[257];
  char ice_pwd[257];
  bool ice_lite;
  char fingerprint[256]; /* "sha-256 AB:CD:..." as written */
  sdp_setup setup;
  bool rtcp_mux;
  char candidates[SDP_MAX_CANDIDATES][256]; /* "candidate:..." */
  unsigned n_candidates;
  bool end_of_candidates;

  /* a=group:BUNDLE: the mids listed ("" entries unused) */
  bool bundle;
  char bundle_mids[SDP_MAX_MEDIA][32];
  unsigned n_bundle_mids;
} sdp_webrtc;

/* A plain (RTP/AVP) offer or answer from the PBX. */
typedef struct {
  sdp_mline media[SDP_MAX_MEDIA];
  unsigned n_media;
  unsigned audio;   /* index in media[] of the first audio m-line */

  sdp_codec codecs[SDP_MAX_CODECS]; /* of the audio m-line, in order */
  unsigned n_codecs;
  sdp_dir dir;      /* as written; with c=0.0.0.0 the receive bit taken off */
  bool hold_address; /* c=0.0.0.0 */
  char address[64];  /* c= (media level, else session level) */
  bool ipv6;
  uint16_t port;
  uint16_t rtcp_port; /* a=rtcp, 0 when not given (then port + 1) */
  bool rtcp_mux;
  unsigned ptime;     /* 0 when not given */
} sdp_plain;

/* rtcsipd's own side toward the PBX. */
typedef struct {
  const char *address;      /* its public address, for c= and o= */
  uint16_t port;            /* its RTP port toward the PBX */
  uint64_t session_id, session_version;
  /* Codec names in order of preference, NULL-terminated; only names of the
   * supported set count.  NULL: the supported set, in the other side's order. */
  const char *const *codecs;
  unsigned ptime;           /* 0: 20 */
} sdp_plain_local;

/* rtcsipd's own side toward the browser. */
typedef struct {
  const char *address;      /* c= and o=: the default candidate's address */
  uint16_t port;            /* m=: the default candidate's port */
  uint64_t session_id, session_version;
  const char *ice_ufrag;
  const char *ice_pwd;
  const char *fingerprint;  /* "sha-256 AB:CD:..." */
  const char *const *candidates; /* "candidate:..." each, n_candidates of them */
  unsigned n_candidates;
  bool end_of_candidates;   /* gathering is complete */
} sdp_webrtc_local;

const char *sdp_dir_name(sdp_dir dir);       /* "sendrecv", ... */
const char *sdp_setup_name(sdp_setup setup); /* "actpass", ..., "" for none */

/* True when A and B name the same codec (name without case, rate, channels;
 * opus/48000 matches whatever its channels). */
bool sdp_codec_same(const sdp_codec *a, const sdp_codec *b);
/* True when rtcsipd can carry CODEC (opus/48000/2, G722/8000, PCMU/8000,
 * PCMA/8000, telephone-event at any rate). */
bool sdp_codec_supported(const sdp_codec *codec);

/* False when Sofia-SIP 1.12.11's sdp_parse() would never return on TEXT (LEN
 * bytes): an m= line whose format list has, where a format starts, a
 * character that is not a token character ("m=audio 9 X:/Y 0", or a tab at
 * the end) on a transport Sofia does not take for RTP makes it allocate list
 * items until memory runs out (found by tests/fuzz: one INVITE from any
 * browser did it).  Such a line is not SDP anyway (RFC 4566: fmt is a
 * token).  Every SDP from the network is checked with this before
 * sdp_parse(). */
bool sdp_text_parsable(const char *text, size_t len);

/* Parses a browser's SDP (offer or answer).  *ret gets a new description,
 * freed with sdp_webrtc_free().  The audio m-line must carry ICE credentials
 * and a fingerprint (-ENOTSUP otherwise). */
int sdp_webrtc_parse(const char *text, size_t len, sdp_webrtc **ret, const char **why);
void sdp_webrtc_free(sdp_webrtc *w);

/* Parses a PBX's SDP (offer or answer); freed with sdp_plain_free(). */
int sdp_plain_parse(const char *text, size_t len, sdp_plain **ret, const char **why);
void sdp_plain_free(sdp_plain *p);

/* The DTLS role rtcsipd takes when it answers OFFER: active (DTLS client)
 * unless the browser wants to be active itself.  SDP_SETUP_NONE when the
 * offer's a=setup leaves no role (holdconn). */
sdp_setup sdp_webrtc_answer_setup(const sdp_webrtc *offer);

/* Browser offer -> rtcsipd's offer to the PBX (g_malloc'd text in *out):
 * one m=audio RTP/AVP on LOCAL's address and port with the codecs both can
 * use (payload types kept), telephone-event, ptime, the offer's direction.
 * No ICE, DTLS, rtcp-mux, ssrc, extmap or rtcp-fb. */
int sdp_plain_offer_from_webrtc(const sdp_webrtc *offer, const sdp_plain_local *local,
                                char **out, const char **why);

/* PBX answer -> rtcsipd's answer to the browser's OFFER: every m-line of the
 * offer in order, its audio m-line accepted with the PBX's codecs (under the
 * browser's payload types), the others with port 0 and their mid; BUNDLE of
 * the audio mid when the offer bundled; rtcp-mux, LOCAL's ICE credentials,
 * fingerprint and candidates, a=setup from sdp_webrtc_answer_setup(). */
int sdp_webrtc_answer_from_plain(const sdp_webrtc *offer, const sdp_plain *answer,
                                 const sdp_webrtc_local *local, char **out, const char **why);

/* PBX offer -> rtcsipd's offer to the browser: one m=audio
 * UDP/TLS/RTP/SAVPF, mid 0, BUNDLE group "0", a=setup:actpass, rtcp-mux,
 * LOCAL's ICE credentials, fingerprint and candidates, the codecs both can use
 * (the PBX's payload types), the PBX's direction.  LOCAL_CODECS: preference as
 * in sdp_plain_local.codecs (NULL: the PBX's order). */
int sdp_webrtc_offer_from_plain(const sdp_plain *offer, const sdp_webrtc_local *local,
                                const char *const *local_codecs, char **out, const char **why);

/* Browser answer -> rtcsipd's answer to the PBX's OFFER: every m-line of the
 * offer in order, the audio one on LOCAL's address and port with the
 * browser's codecs that the PBX offered, the others with port 0; the
 * browser's direction. */
int sdp_plain_answer_from_webrtc(const sdp_plain *offer, const sdp_webrtc *answer,
                                 const sdp_plain_local *local, char **out, const char **why);
