/* SRTP/SRTCP with libsrtp2.  See srtp.h. */
#include "webrtc/srtp.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <glib.h>
#include <srtp2/srtp.h>
#include <nss.h>

#define REPLAY_WINDOW 1024
#define RTP_HEADER_MIN 12
#define RTCP_HEADER_MIN 8
#define SRTCP_INDEX_LEN 4

G_STATIC_ASSERT(SRTP_LEG_MAX_TRAILER >= SRTP_MAX_TAG_LEN + SRTCP_INDEX_LEN);

struct srtp_leg {
  srtp_t out, in;
  size_t tag_len;
  srtp_leg_stats stats;
};

/* Debian builds libsrtp2 on NSS, which libsrtp2 initialises itself, when
 * nobody has, with NSS_NoDB_Init(): "optimize space", that is a softoken
 * whose session and key tables have 32 buckets behind one lock for the
 * whole process.  Every packet looks its key up there (PK11_Encrypt), so
 * the cost per packet grew with the calls up (measured with libsrtp2 alone,
 * AES-GCM, 112-byte packets: 1.3 µs with 10 sessions, 4.5 µs with 1,000,
 * 19 µs with 4,000) and both media threads queued on that lock.  NSS set up
 * here first, the same way but for speed (1,024 buckets, a lock each),
 * gives 1.4, 3.0 and 5.6 µs; libsrtp2 then finds it initialised. */
static NSSInitContext *nss_context; /* for the life of the process */

static int nss_init(void)
{
  if (NSS_IsInitialized())
    return 0;
  nss_context = NSS_InitContext("", "", "", "", NULL,
                                NSS_INIT_READONLY | NSS_INIT_NOCERTDB | NSS_INIT_NOMODDB |
                                NSS_INIT_FORCEOPEN | NSS_INIT_NOROOTINIT);
  return nss_context ? 0 : -EIO;
}

static int library_init(void)
{
  static gsize once;
  static int result;

  if (g_once_init_enter(&once)) {
    result = nss_init();
    if (result == 0)
      result = srtp_init() == srtp_err_status_ok ? 0 : -EIO;
    g_once_init_leave(&once, 1);
  }
  return result;
}

/* MASTER (key || salt) must stay alive until srtp_create() returns. */
static int make_policy(srtp_policy_t *p, const dtls_srtp_keys *k, const uint8_t *key,
                       const uint8_t *salt, uint8_t *master, srtp_ssrc_type_t type)
{
  memset(p, 0, sizeof *p);
  switch (k->profile) {
  case DTLS_SRTP_AES128_CM_SHA1_80:
    if (k->key_len != 16 || k->salt_len != 14)
      return -EINVAL;
    /* what srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 (a macro) expands to */
    srtp_crypto_policy_set_rtp_default(&p->rtp);
    srtp_crypto_policy_set_rtcp_default(&p->rtcp);
    break;
  case DTLS_SRTP_AEAD_AES_128_GCM:
    if (k->key_len != 16 || k->salt_len != 12)
      return -EINVAL;
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtcp);
    break;
  default:
    return -EINVAL;
  }
  memcpy(master, key, k->key_len);
  memcpy(master + k->key_len, salt, k->salt_len);
  p->key = master;
  p->ssrc.type = type;
  p->window_size = REPLAY_WINDOW;
  p->allow_repeat_tx = 1;
  return 0;
}

int srtp_leg_new(const dtls_srtp_keys *keys, srtp_leg **ret)
{
  uint8_t master[DTLS_SRTP_MAX_KEY_LEN + DTLS_SRTP_MAX_SALT_LEN];
  srtp_policy_t policy;
  srtp_leg *leg;
  int r;

  if (!keys || !ret)
    return -EINVAL;
  if ((r = library_init()) < 0)
    return r;
  leg = g_new0(srtp_leg, 1);
  leg->tag_len = keys->profile == DTLS_SRTP_AEAD_AES_128_GCM ? 16 : 10;

  r = make_policy(&policy, keys, keys->local_key, keys->local_salt, master, ssrc_any_outbound);
  if (r == 0 && srtp_create(&leg->out, &policy) != srtp_err_status_ok)
    r = -EIO;
  if (r == 0)
    r = make_policy(&policy, keys, keys->remote_key, keys->remote_salt, master, ssrc_any_inbound);
  if (r == 0 && srtp_create(&leg->in, &policy) != srtp_err_status_ok)
    r = -EIO;
  memset(master, 0, sizeof master);
  if (r < 0) {
    srtp_leg_free(leg);
    return r;
  }
  *ret = leg;
  return 0;
}

void srtp_leg_free(srtp_leg *leg)
{
  if (!leg)
    return;
  if (leg->out)
    srtp_dealloc(leg->out);
  if (leg->in)
    srtp_dealloc(leg->in);
  g_free(leg);
}

static int unprotect_result(srtp_leg *leg, srtp_err_status_t e, uint64_t *ok_counter)
{
  switch (e) {
  case srtp_err_status_ok:
    (*ok_counter)++;
    return 0;
  case srtp_err_status_auth_fail:
    leg->stats.auth_failures++;
    return -EBADMSG;
  case srtp_err_status_replay_fail:
  case srtp_err_status_replay_old:
    leg->stats.replays++;
    return -EALREADY;
  default:
    leg->stats.malformed++;
    return -EINVAL;
  }
}

int srtp_leg_protect(srtp_leg *leg, uint8_t *buf, size_t *len, size_t cap)
{
  int n = (int)*len;

  if (*len < RTP_HEADER_MIN || *len > INT_MAX / 2)
    return -EINVAL;
  if (cap < *len || cap - *len < leg->tag_len)
    return -ENOSPC;
  if (srtp_protect(leg->out, buf, &n) != srtp_err_status_ok)
    return -EINVAL;
  *len = (size_t)n;
  leg->stats.rtp_protected++;
  return 0;
}

int srtp_leg_protect_rtcp(srtp_leg *leg, uint8_t *buf, size_t *len, size_t cap)
{
  int n = (int)*len;

  if (*len < RTCP_HEADER_MIN || *len > INT_MAX / 2)
    return -EINVAL;
  if (cap < *len || cap - *len < leg->tag_len + SRTCP_INDEX_LEN)
    return -ENOSPC;
  if (srtp_protect_rtcp(leg->out, buf, &n) != srtp_err_status_ok)
    return -EINVAL;
  *len = (size_t)n;
  leg->stats.rtcp_protected++;
  return 0;
}

int srtp_leg_unprotect(srtp_leg *leg, uint8_t *buf, size_t *len)
{
  int n = (int)*len, r;

  if (*len < RTP_HEADER_MIN || *len > INT_MAX / 2) {
    leg->stats.malformed++;
    return -EINVAL;
  }
  r = unprotect_result(leg, srtp_unprotect(leg->in, buf, &n), &leg->stats.rtp_unprotected);
  if (r == 0)
    *len = (size_t)n;
  return r;
}

int srtp_leg_unprotect_rtcp(srtp_leg *leg, uint8_t *buf, size_t *len)
{
  int n = (int)*len, r;

  if (*len < RTCP_HEADER_MIN || *len > INT_MAX / 2) {
    leg->stats.malformed++;
    return -EINVAL;
  }
  r = unprotect_result(leg, srtp_unprotect_rtcp(leg->in, buf, &n), &leg->stats.rtcp_unprotected);
  if (r == 0)
    *len = (size_t)n;
  return r;
}

void srtp_leg_get_stats(const srtp_leg *leg, srtp_leg_stats *out)
{
  *out = leg->stats;
}
