/* DTLS-SRTP toward the browser (RFC 5763/5764): DTLS 1.2 on the ICE pair.
 *
 * One dtls_identity per process: an ECDSA P-256 key and self-signed
 * certificate whose SHA-256 fingerprint goes in every SDP (a=fingerprint).
 * One dtls_session per call: it runs the handshake over whatever transport the
 * caller gives it (datagrams out through cb->send, datagrams in through
 * dtls_session_feed), checks the peer's certificate against the fingerprint
 * from the peer's SDP before any key is derived, and hands the SRTP master
 * keys of the negotiated profile to cb->on_connected.  Retransmissions run on
 * a GLib timeout on the default main context; a session lives on that thread.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct dtls_identity dtls_identity;
typedef struct dtls_session dtls_session;

typedef enum {
  DTLS_ROLE_CLIENT, /* a=setup:active: we send the ClientHello */
  DTLS_ROLE_SERVER, /* a=setup:passive: we wait for it */
} dtls_role;

/* SRTP protection profiles, by their IANA numbers (RFC 5764, RFC 7714). */
typedef enum {
  DTLS_SRTP_AES128_CM_SHA1_80 = 0x0001,
  DTLS_SRTP_AEAD_AES_128_GCM = 0x0007,
} dtls_srtp_profile;

#define DTLS_SRTP_MAX_KEY_LEN 16
#define DTLS_SRTP_MAX_SALT_LEN 14

/* The SRTP master keys of one association.  "local" protects what we send,
 * "remote" unprotects what we receive (the client writes with the client key). */
typedef struct {
  dtls_srtp_profile profile;
  size_t key_len;  /* 16 for both profiles */
  size_t salt_len; /* 14 for AES_CM_128, 12 for AEAD_AES_128_GCM */
  uint8_t local_key[DTLS_SRTP_MAX_KEY_LEN];
  uint8_t local_salt[DTLS_SRTP_MAX_SALT_LEN];
  uint8_t remote_key[DTLS_SRTP_MAX_KEY_LEN];
  uint8_t remote_salt[DTLS_SRTP_MAX_SALT_LEN];
} dtls_srtp_keys;

/* Called on the main-loop thread.  send must not feed a datagram back into the
 * same session synchronously (queue it).  on_connected and on_failed may free
 * the session; keys are valid during the call only (copy them, e.g. into
 * srtp_leg_new) and are wiped afterwards.  After on_connected, on_failed can
 * still come once, when the peer ends the association (close_notify, alert).
 * The flight that completes the handshake goes out after on_connected
 * returns (the keys are in place before the peer can use them); freeing
 * the session in on_connected drops it.
 * WHY is "fingerprint mismatch", "handshake timed out", DTLS_CLOSED_BY_PEER,
 * "no SRTP profile negotiated", or OpenSSL's reason ("sslv3 alert bad
 * certificate", ...). */
#define DTLS_CLOSED_BY_PEER "closed by peer" /* close_notify: a hang-up, not a fault */

typedef struct {
  void (*send)(void *user, const uint8_t *data, size_t len);
  void (*on_connected)(void *user, const dtls_srtp_keys *keys);
  void (*on_failed)(void *user, const char *why);
} dtls_callbacks;

/* Makes the key and certificate (valid one year).  0 or a negative errno. */
int dtls_identity_new(dtls_identity **ret);
void dtls_identity_free(dtls_identity *id);
/* 0 when TEXT is an a=fingerprint value rtcsipd can check ("sha-256 AB:..",
 * or sha-1/sha-224/sha-384/sha-512, with the digest of that length);
 * -EINVAL otherwise (an unknown hash function: the offer gets 488). */
int dtls_fingerprint_check(const char *text);

/* "sha-256 AB:CD:...", the value of a=fingerprint. */
const char *dtls_identity_fingerprint(const dtls_identity *id);

/* PEER_FINGERPRINT is the peer's a=fingerprint value ("sha-256 AB:...", also
 * sha-1/sha-384/sha-512, hex in any case).  NULL when the peer's SDP has not
 * arrived yet: the handshake then runs, and keys are held back until
 * dtls_session_set_peer_fingerprint().  -EINVAL for an unreadable
 * fingerprint.  ID must outlive the session. */
int dtls_session_new(const dtls_identity *id, dtls_role role, const char *peer_fingerprint,
                     const dtls_callbacks *cb, void *user, dtls_session **ret);
/* Frees the session (no callback afterwards); safe from inside a callback. */
void dtls_session_free(dtls_session *s);
/* The SRTP profiles offered (client) or accepted (server), in OpenSSL's
 * syntax; the default is "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80".
 * Before dtls_session_start(); 0 or -EINVAL. */
int dtls_session_set_srtp_profiles(dtls_session *s, const char *profiles);
/* The peer's fingerprint, once its SDP arrives: when the handshake is already
 * done, this reports on_connected or on_failed before returning.  0, -EINVAL
 * for an unreadable fingerprint, -EEXIST when one is already set. */
int dtls_session_set_peer_fingerprint(dtls_session *s, const char *peer_fingerprint);
/* Client: sends the ClientHello.  Server: only arms the session. */
void dtls_session_start(dtls_session *s);
/* One received DTLS datagram (see demux.h).  Anything invalid is dropped. */
void dtls_session_feed(dtls_session *s, const uint8_t *data, size_t len);
