/* DTLS-SRTP: OpenSSL DTLS 1.2 over a datagram transport given by callbacks.
 * See dtls.h.
 *
 * The SSL object reads and writes through a small BIO of our own: a write is
 * one datagram handed to cb->send, a read returns the one datagram being fed
 * (memory BIOs would glue a flight's records into one oversized datagram).
 * The peer's certificate is checked against the expected fingerprint twice:
 * in the certificate-verify callback, so that a mismatch aborts the handshake
 * with an alert, and again on the finished handshake before the keys are
 * exported.  No chain or expiry check: WebRTC certificates are self-signed
 * and authenticated by the fingerprint in the signalled SDP (RFC 8827). */
#include "webrtc/dtls.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <glib.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define DEFAULT_SRTP_PROFILES "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"
#define EXPORTER_LABEL "EXTRACTOR-dtls_srtp"
#define CERT_VALID_DAYS 365
/* The largest DTLS datagram we send: fits any ICE path, TURN-over-TCP included. */
#define LINK_MTU 1200
/* Retransmission: first after 250 ms, doubling up to 4 s.  OpenSSL gives up
 * after 12 timeouts (about 36 s). */
#define TIMER_INITIAL_US 250000u
#define TIMER_MAX_US 4000000u

struct dtls_identity {
  EVP_PKEY *key;
  X509 *cert;
  SSL_CTX *ctx;
  char fingerprint[sizeof "sha-256 " + 3 * 32]; /* "sha-256 " + 32 x "AB:" */
};

typedef struct {
  const EVP_MD *md;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len;
} fingerprint;

typedef enum {
  ST_NEW,
  ST_HANDSHAKE,
  ST_AWAIT_FINGERPRINT, /* handshake done, the peer's SDP not yet here */
  ST_CONNECTED,
  ST_FAILED,
} session_state;

struct dtls_session {
  SSL *ssl;
  dtls_role role;
  dtls_callbacks cb;
  void *user;
  session_state state;
  fingerprint peer;
  bool have_peer;
  bool fp_mismatch; /* the verify callback refused the peer's certificate */
  const uint8_t *in; /* the datagram being fed, for the BIO's read */
  size_t in_len;
  guint timer;
  unsigned depth; /* nesting of our entry points, for a free inside a callback */
  bool freed;
  /* During a handshake step, what OpenSSL writes is held and sent after
   * it: the flight that completes the handshake (the server's Finished)
   * then leaves only once on_connected has installed the keys, so that the
   * peer's first SRTP packet, which may follow it at once, finds them. */
  bool holding;
  GPtrArray *held; /* GBytes */
};

/* ---- fingerprints ---- */

static const struct {
  const char *name;
  const EVP_MD *(*md)(void);
} fp_algorithms[] = {
  {"sha-1", EVP_sha1}, {"sha-224", EVP_sha224}, {"sha-256", EVP_sha256},
  {"sha-384", EVP_sha384}, {"sha-512", EVP_sha512},
};

static int hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* "sha-256 AB:CD:..." (RFC 8122 section 5) */
static int fingerprint_parse(const char *text, fingerprint *fp)
{
  const char *p = text, *space;
  size_t alg_len, i;
  int hi, lo;

  memset(fp, 0, sizeof *fp);
  if (!text)
    return -EINVAL;
  while (*p == ' ' || *p == '\t')
    p++;
  space = strchr(p, ' ');
  if (!space)
    return -EINVAL;
  alg_len = (size_t)(space - p);
  for (i = 0; i < G_N_ELEMENTS(fp_algorithms); i++)
    if (strlen(fp_algorithms[i].name) == alg_len && g_ascii_strncasecmp(p, fp_algorithms[i].name, alg_len) == 0)
      fp->md = fp_algorithms[i].md();
  if (!fp->md)
    return -EINVAL;
  p = space;
  while (*p == ' ')
    p++;
  for (;;) {
    if ((hi = hex_value(p[0])) < 0 || (lo = hex_value(p[1])) < 0 || fp->len >= sizeof fp->digest)
      return -EINVAL;
    fp->digest[fp->len++] = (unsigned char)(hi << 4 | lo);
    p += 2;
    if (*p != ':')
      break;
    p++;
  }
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
    p++;
  if (*p || fp->len != (unsigned)EVP_MD_get_size(fp->md))
    return -EINVAL;
  return 0;
}

int dtls_fingerprint_check(const char *text)
{
  fingerprint fp;
  return fingerprint_parse(text, &fp);
}

static bool fingerprint_matches(const fingerprint *fp, X509 *cert)
{
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;

  if (!cert || !X509_digest(cert, fp->md, digest, &len))
    return false;
  return len == fp->len && CRYPTO_memcmp(digest, fp->digest, len) == 0;
}

/* ---- the identity ---- */

/* Accepts any certificate chain unless the session expects a fingerprint that
 * the peer's certificate does not have. */
static int verify_certificate(X509_STORE_CTX *store, void *arg)
{
  SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
  dtls_session *s = ssl ? SSL_get_app_data(ssl) : NULL;

  if (!s)
    return 0;
  if (s->have_peer && !fingerprint_matches(&s->peer, X509_STORE_CTX_get0_cert(store))) {
    s->fp_mismatch = true;
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  return 1;
}

static int make_certificate(dtls_identity *id)
{
  unsigned char serial[16], digest[32];
  unsigned len = 0;
  BIGNUM *bn = NULL;
  X509_NAME *name;
  int r = -EIO;

  id->key = EVP_EC_gen("P-256");
  id->cert = X509_new();
  if (!id->key || !id->cert || RAND_bytes(serial, sizeof serial) != 1)
    goto out;
  serial[0] &= 0x7f;
  bn = BN_bin2bn(serial, sizeof serial, NULL);
  if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(id->cert)))
    goto out;
  X509_set_version(id->cert, 2);
  X509_gmtime_adj(X509_getm_notBefore(id->cert), -24 * 3600);
  X509_gmtime_adj(X509_getm_notAfter(id->cert), (long)CERT_VALID_DAYS * 24 * 3600);
  X509_set_pubkey(id->cert, id->key);
  name = X509_get_subject_name(id->cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"rtcsipd", -1, -1, 0);
  X509_set_issuer_name(id->cert, name);
  if (!X509_sign(id->cert, id->key, EVP_sha256()))
    goto out;

  if (!X509_digest(id->cert, EVP_sha256(), digest, &len) || len != sizeof digest)
    goto out;
  strcpy(id->fingerprint, "sha-256 ");
  for (unsigned i = 0; i < len; i++)
    sprintf(id->fingerprint + 8 + 3 * i, i + 1 < len ? "%02X:" : "%02X", digest[i]);
  r = 0;
out:
  BN_free(bn);
  return r;
}

int dtls_identity_new(dtls_identity **ret)
{
  dtls_identity *id = g_new0(dtls_identity, 1);
  int r;

  if ((r = make_certificate(id)) < 0)
    goto fail;
  r = -EIO;
  id->ctx = SSL_CTX_new(DTLS_method());
  if (!id->ctx ||
      !SSL_CTX_set_min_proto_version(id->ctx, DTLS1_2_VERSION) ||
      !SSL_CTX_set_max_proto_version(id->ctx, DTLS1_2_VERSION) ||
      SSL_CTX_use_certificate(id->ctx, id->cert) != 1 ||
      SSL_CTX_use_PrivateKey(id->ctx, id->key) != 1 ||
      SSL_CTX_check_private_key(id->ctx) != 1 ||
      SSL_CTX_set_tlsext_use_srtp(id->ctx, DEFAULT_SRTP_PROFILES) != 0) /* 0 is success */
    goto fail;
  SSL_CTX_set_options(id->ctx, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  /* the record buffers (about 16 KiB each way) are freed while idle: a call
   * sends a DTLS record only in its handshake and at its end */
  SSL_CTX_set_mode(id->ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify(id->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  SSL_CTX_set_cert_verify_callback(id->ctx, verify_certificate, NULL);
  SSL_CTX_set_read_ahead(id->ctx, 1);
  *ret = id;
  return 0;
fail:
  ERR_clear_error();
  dtls_identity_free(id);
  return r;
}

void dtls_identity_free(dtls_identity *id)
{
  if (!id)
    return;
  SSL_CTX_free(id->ctx);
  X509_free(id->cert);
  EVP_PKEY_free(id->key);
  g_free(id);
}

const char *dtls_identity_fingerprint(const dtls_identity *id)
{
  return id->fingerprint;
}

/* ---- the BIO: one write = one datagram out, one read = the datagram fed ---- */

static int bio_write(BIO *b, const char *data, int len)
{
  dtls_session *s = BIO_get_data(b);

  if (len <= 0)
    return 0;
  if (s->holding) {
    if (!s->held)
      s->held = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_ptr_array_add(s->held, g_bytes_new(data, (gsize)len));
  } else if (!s->freed && s->cb.send) {
    s->cb.send(s->user, (const uint8_t *)data, (size_t)len);
  }
  return len;
}

static int bio_read(BIO *b, char *out, int size)
{
  dtls_session *s = BIO_get_data(b);
  size_t n;

  BIO_clear_retry_flags(b);
  if (!s->in || size <= 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  n = MIN(s->in_len, (size_t)size);
  memcpy(out, s->in, n);
  s->in = NULL;
  s->in_len = 0;
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
  dtls_session *s = BIO_get_data(b);

  switch (cmd) {
  case BIO_CTRL_FLUSH:
    return 1;
  case BIO_CTRL_PENDING:
    return s->in ? (long)s->in_len : 0;
  case BIO_CTRL_DGRAM_QUERY_MTU:
  case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
    return LINK_MTU;
  default:
    return 0; /* WPENDING, GET_MTU_OVERHEAD, peer addresses, timeouts: none */
  }
}

static int bio_create(BIO *b)
{
  BIO_set_init(b, 1);
  return 1;
}

static BIO_METHOD *bio_method(void)
{
  static gsize once;
  static BIO_METHOD *method;

  if (g_once_init_enter(&once)) {
    method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "rtcsipd dtls");
    if (method) {
      BIO_meth_set_write(method, bio_write);
      BIO_meth_set_read(method, bio_read);
      BIO_meth_set_ctrl(method, bio_ctrl);
      BIO_meth_set_create(method, bio_create);
    }
    g_once_init_leave(&once, 1);
  }
  return method;
}

/* ---- the session ---- */

static unsigned int next_timeout(SSL *ssl, unsigned int timer_us)
{
  return timer_us == 0 ? TIMER_INITIAL_US : MIN(timer_us * 2, TIMER_MAX_US);
}

static void timer_stop(dtls_session *s)
{
  if (s->timer) {
    g_source_remove(s->timer);
    s->timer = 0;
  }
}

static gboolean on_timer(gpointer data);

/* (Re)arms the GLib timeout to OpenSSL's retransmission timer, if it runs. */
static void timer_rearm(dtls_session *s)
{
  struct timeval tv;
  guint ms;

  timer_stop(s);
  if (s->freed || s->state == ST_FAILED || DTLSv1_get_timeout(s->ssl, &tv) != 1)
    return;
  ms = (guint)tv.tv_sec * 1000 + (guint)(tv.tv_usec + 999) / 1000;
  s->timer = g_timeout_add(ms, on_timer, s);
}

static void send_held(dtls_session *s)
{
  if (!s->held)
    return;
  for (guint i = 0; i < s->held->len; i++) {
    gsize len;
    const uint8_t *data = g_bytes_get_data(g_ptr_array_index(s->held, i), &len);
    if (!s->freed && s->cb.send)
      s->cb.send(s->user, data, len);
  }
  g_ptr_array_set_size(s->held, 0);
}

static void session_destroy(dtls_session *s)
{
  timer_stop(s);
  SSL_free(s->ssl); /* frees the BIO */
  if (s->held)
    g_ptr_array_unref(s->held);
  g_free(s);
}

static void enter(dtls_session *s)
{
  s->depth++;
}

/* False when the session was freed meanwhile (and is gone now). */
static bool leave(dtls_session *s)
{
  if (--s->depth == 0 && s->freed) {
    session_destroy(s);
    return false;
  }
  return true;
}

static void fail(dtls_session *s, const char *why)
{
  if (s->state == ST_FAILED)
    return;
  s->state = ST_FAILED;
  timer_stop(s);
  s->holding = false;
  send_held(s); /* an alert OpenSSL wrote: before on_failed may free us */
  if (SSL_is_init_finished(s->ssl) && !s->freed)
    SSL_shutdown(s->ssl); /* close_notify: the peer stops waiting for us */
  ERR_clear_error();
  if (!s->freed && s->cb.on_failed)
    s->cb.on_failed(s->user, why);
}

/* After a failed SSL call: nothing when it only wants more input. */
static void check_ssl_error(dtls_session *s, int r)
{
  int e = SSL_get_error(s->ssl, r);
  const char *why;

  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return;
  if (s->fp_mismatch)
    why = "fingerprint mismatch";
  else if (e == SSL_ERROR_ZERO_RETURN)
    why = DTLS_CLOSED_BY_PEER;
  else if (!(why = ERR_reason_error_string(ERR_peek_error())))
    why = s->state == ST_HANDSHAKE ? "handshake failed" : "DTLS error";
  fail(s, why);
}

static void export_keys(dtls_session *s)
{
  SRTP_PROTECTION_PROFILE *profile = SSL_get_selected_srtp_profile(s->ssl);
  uint8_t material[2 * (DTLS_SRTP_MAX_KEY_LEN + DTLS_SRTP_MAX_SALT_LEN)];
  dtls_srtp_keys keys = {0};
  const uint8_t *client_key, *server_key, *client_salt, *server_salt;
  size_t total;

  if (!profile) {
    fail(s, "no SRTP profile negotiated");
    return;
  }
  switch (profile->id) {
  case SRTP_AES128_CM_SHA1_80:
    keys.profile = DTLS_SRTP_AES128_CM_SHA1_80;
    keys.key_len = 16;
    keys.salt_len = 14;
    break;
  case SRTP_AEAD_AES_128_GCM:
    keys.profile = DTLS_SRTP_AEAD_AES_128_GCM;
    keys.key_len = 16;
    keys.salt_len = 12;
    break;
  default:
    fail(s, "unsupported SRTP profile");
    return;
  }
  /* RFC 5764 4.2: client key | server key | client salt | server salt */
  total = 2 * (keys.key_len + keys.salt_len);
  if (SSL_export_keying_material(s->ssl, material, total, EXPORTER_LABEL, strlen(EXPORTER_LABEL),
                                 NULL, 0, 0) != 1) {
    fail(s, "keying material export failed");
    return;
  }
  client_key = material;
  server_key = material + keys.key_len;
  client_salt = material + 2 * keys.key_len;
  server_salt = client_salt + keys.salt_len;
  memcpy(keys.local_key, s->role == DTLS_ROLE_CLIENT ? client_key : server_key, keys.key_len);
  memcpy(keys.local_salt, s->role == DTLS_ROLE_CLIENT ? client_salt : server_salt, keys.salt_len);
  memcpy(keys.remote_key, s->role == DTLS_ROLE_CLIENT ? server_key : client_key, keys.key_len);
  memcpy(keys.remote_salt, s->role == DTLS_ROLE_CLIENT ? server_salt : client_salt, keys.salt_len);
  OPENSSL_cleanse(material, sizeof material);

  s->state = ST_CONNECTED;
  if (!s->freed && s->cb.on_connected)
    s->cb.on_connected(s->user, &keys);
  OPENSSL_cleanse(&keys, sizeof keys);
}

/* The handshake is done: keys only for the certificate the SDP announced. */
static void finish(dtls_session *s)
{
  s->state = ST_AWAIT_FINGERPRINT;
  if (!s->have_peer)
    return;
  if (!fingerprint_matches(&s->peer, SSL_get0_peer_certificate(s->ssl))) {
    fail(s, "fingerprint mismatch");
    return;
  }
  export_keys(s);
}

/* Runs OpenSSL on the input at hand (s->in, or none). */
static void drive(dtls_session *s)
{
  uint8_t scratch[2048];
  int r;

  ERR_clear_error();
  if (s->state == ST_HANDSHAKE) {
    s->holding = true;
    r = SSL_do_handshake(s->ssl);
    if (r == 1)
      finish(s);
    else
      check_ssl_error(s, r);
    s->holding = false;
    send_held(s);
  } else if (s->state == ST_AWAIT_FINGERPRINT || s->state == ST_CONNECTED) {
    /* retransmitted Finished, alerts, close_notify; application data (none
     * is expected: no data channel) is read and dropped */
    while ((r = SSL_read(s->ssl, scratch, sizeof scratch)) > 0)
      ;
    check_ssl_error(s, r);
  }
  ERR_clear_error();
}

static gboolean on_timer(gpointer data)
{
  dtls_session *s = data;

  s->timer = 0;
  enter(s);
  ERR_clear_error();
  if (s->state != ST_FAILED && DTLSv1_handle_timeout(s->ssl) < 0)
    fail(s, "handshake timed out");
  if (leave(s))
    timer_rearm(s);
  return G_SOURCE_REMOVE;
}

int dtls_session_new(const dtls_identity *id, dtls_role role, const char *peer_fingerprint,
                     const dtls_callbacks *cb, void *user, dtls_session **ret)
{
  dtls_session *s;
  BIO *bio;
  BIO_METHOD *method = bio_method();

  if (!id || !cb || !ret || !method || (role != DTLS_ROLE_CLIENT && role != DTLS_ROLE_SERVER))
    return -EINVAL;
  s = g_new0(dtls_session, 1);
  s->role = role;
  s->cb = *cb;
  s->user = user;
  if (peer_fingerprint) {
    if (fingerprint_parse(peer_fingerprint, &s->peer) < 0) {
      g_free(s);
      return -EINVAL;
    }
    s->have_peer = true;
  }
  s->ssl = SSL_new(id->ctx);
  bio = BIO_new(method);
  if (!s->ssl || !bio) {
    BIO_free(bio);
    SSL_free(s->ssl);
    g_free(s);
    ERR_clear_error();
    return -ENOMEM;
  }
  BIO_set_data(bio, s);
  SSL_set_bio(s->ssl, bio, bio);
  SSL_set_app_data(s->ssl, s);
  DTLS_set_link_mtu(s->ssl, LINK_MTU);
  DTLS_set_timer_cb(s->ssl, next_timeout);
  if (role == DTLS_ROLE_CLIENT)
    SSL_set_connect_state(s->ssl);
  else
    SSL_set_accept_state(s->ssl);
  *ret = s;
  return 0;
}

void dtls_session_free(dtls_session *s)
{
  if (!s || s->freed)
    return;
  s->freed = true;
  timer_stop(s);
  if (s->depth == 0)
    session_destroy(s);
}

int dtls_session_set_srtp_profiles(dtls_session *s, const char *profiles)
{
  if (s->state != ST_NEW || !profiles || SSL_set_tlsext_use_srtp(s->ssl, profiles) != 0) {
    ERR_clear_error();
    return -EINVAL;
  }
  return 0;
}

int dtls_session_set_peer_fingerprint(dtls_session *s, const char *peer_fingerprint)
{
  fingerprint fp;

  if (s->have_peer)
    return -EEXIST;
  if (fingerprint_parse(peer_fingerprint, &fp) < 0)
    return -EINVAL;
  s->peer = fp;
  s->have_peer = true;
  if (s->state == ST_AWAIT_FINGERPRINT) {
    enter(s);
    finish(s);
    if (leave(s))
      timer_rearm(s);
  }
  return 0;
}

void dtls_session_start(dtls_session *s)
{
  if (s->state != ST_NEW)
    return;
  s->state = ST_HANDSHAKE;
  if (s->role == DTLS_ROLE_SERVER)
    return;
  enter(s);
  drive(s); /* the ClientHello */
  if (leave(s))
    timer_rearm(s);
}

void dtls_session_feed(dtls_session *s, const uint8_t *data, size_t len)
{
  if (!data || len == 0 || s->freed)
    return;
  if (s->state == ST_NEW && s->role == DTLS_ROLE_SERVER)
    s->state = ST_HANDSHAKE; /* a ClientHello before start(): fine */
  if (s->state == ST_NEW || s->state == ST_FAILED)
    return;
  enter(s);
  s->in = data;
  s->in_len = len;
  drive(s);
  s->in = NULL;
  s->in_len = 0;
  if (leave(s))
    timer_rearm(s);
}
