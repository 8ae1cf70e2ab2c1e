/* The browser's media for one call: see browser_leg.h. */
#include "webrtc/browser_leg.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

#include "config/log.h"
#include "webrtc/demux.h"

/* DTLS datagrams held while ICE has no pair to send them on: rtcsipd's
 * flights are 5 or 6 datagrams; the newest are kept. */
#define HELD_MAX 16

struct browser_leg {
  ice_agent *ice;
  dtls_session *dtls;
  dtls_role role;
  bool failed;
  bool keyed;
  browser_leg_callbacks cb;
  void *user;
  /* the per-packet half while the leg owns it; NULL once detached */
  browser_media *media;
  browser_leg_media_fn on_rtp, on_rtcp;
  void *sink_user;
  /* after the detach */
  bool detached;
  browser_leg_handoff handoff;
  void *handoff_user;
  char *log_id;
  /* DTLS that ICE could not send yet (oldest first) */
  GBytes *held[HELD_MAX];
  unsigned n_held;
};

static void held_clear(browser_leg *leg)
{
  for (unsigned i = 0; i < leg->n_held; i++)
    g_bytes_unref(leg->held[i]);
  leg->n_held = 0;
}

static void leg_fail(browser_leg *leg, const char *why)
{
  if (leg->failed)
    return;
  leg->failed = true;
  held_clear(leg);
  if (leg->media)
    browser_media_set_srtp(leg->media, NULL); /* no media after a failure */
  if (strcmp(why, DTLS_CLOSED_BY_PEER) == 0)
    log_id(leg->log_id, LOG_INFO, "the browser closed DTLS (close_notify)");
  else
    log_id(leg->log_id, LOG_NOTICE, "browser media failed: %s", why);
  if (leg->cb.on_failed)
    leg->cb.on_failed(leg->user, why); /* may free LEG: last */
}

/* ---- ICE ---- */

static void on_ice_gathered(void *user)
{
  browser_leg *leg = user;

  if (leg->cb.on_gathered)
    leg->cb.on_gathered(leg->user);
}

static void on_ice_state(void *user, ice_state state)
{
  browser_leg *leg = user;

  if (state == ICE_CONNECTED) {
    /* what DTLS said before there was a pair: the answer to the browser's
     * early ClientHello (see on_dtls_send) */
    for (unsigned i = 0; i < leg->n_held; i++) {
      gsize len;
      const uint8_t *d = g_bytes_get_data(leg->held[i], &len);
      (void)ice_agent_send(leg->ice, d, len); /* lost: DTLS retransmits */
    }
    held_clear(leg);
    if (leg->role == DTLS_ROLE_CLIENT)
      dtls_session_start(leg->dtls); /* no-op after the first time */
  } else if (state == ICE_FAILED) {
    leg_fail(leg, "ice failed");
  }
}

static void on_ice_selected(void *user)
{
  browser_leg *leg = user;

  if (leg->detached && leg->handoff.on_connected)
    leg->handoff.on_connected(leg->handoff_user);
}

/* Media hot path: no allocation, no logging. */
static void on_ice_receive(void *user, uint8_t *data, size_t len)
{
  browser_leg *leg = user;

  if (demux_classify(data, len) == DEMUX_DTLS) {
    dtls_session_feed(leg->dtls, data, len); /* may free LEG */
    return;
  }
  if (leg->media)
    browser_media_receive(leg->media, data, len, len); /* libnice's buffer: no room to grow */
  else if (leg->detached && leg->handoff.on_datagram)
    leg->handoff.on_datagram(leg->handoff_user, data, len);
}

void browser_leg_inject(browser_leg *leg, uint8_t *data, size_t len)
{
  on_ice_receive(leg, data, len);
}

void browser_leg_end_handoff(browser_leg *leg)
{
  memset(&leg->handoff, 0, sizeof leg->handoff);
  leg->handoff_user = NULL;
}

void browser_leg_feed_dtls(browser_leg *leg, const uint8_t *data, size_t len)
{
  dtls_session_feed(leg->dtls, data, len); /* may free LEG */
}

/* ---- DTLS ---- */

/* The browser sends its ClientHello as soon as ITS ICE is connected, which
 * comes before ours: the browser's check to us succeeds (libnice answers it
 * and passes on the datagrams of that source), but our agent is connected
 * only once its own check (with the nomination) has succeeded; in a call
 * from the PBX even before rtcsipd has the browser's answer.  What DTLS
 * sends before then ICE cannot send (-ENOTCONN): it is held, and sent the
 * moment ICE is connected, not one DTLS retransmission timeout later. */
static void on_dtls_send(void *user, const uint8_t *data, size_t len)
{
  browser_leg *leg = user;

  if (ice_agent_send(leg->ice, data, len) != -ENOTCONN || leg->failed)
    return; /* sent, or lost: DTLS retransmits */
  if (leg->n_held == HELD_MAX) {
    g_bytes_unref(leg->held[0]);
    memmove(leg->held, leg->held + 1, (HELD_MAX - 1) * sizeof leg->held[0]);
    leg->n_held--;
  }
  leg->held[leg->n_held++] = g_bytes_new(data, len);
}

static void on_dtls_connected(void *user, const dtls_srtp_keys *keys)
{
  browser_leg *leg = user;
  srtp_leg *srtp;
  int r;

  if (leg->failed)
    return;
  r = srtp_leg_new(keys, &srtp);
  if (r < 0) {
    leg_fail(leg, "SRTP keys refused");
    return;
  }
  leg->keyed = true;
  if (leg->media)
    browser_media_set_srtp(leg->media, srtp);
  else if (leg->handoff.on_keys)
    leg->handoff.on_keys(leg->handoff_user, srtp);
  else
    srtp_leg_free(srtp);
  log_id(leg->log_id, LOG_INFO, "browser media ready (SRTP profile %s)",
         keys->profile == DTLS_SRTP_AEAD_AES_128_GCM ? "AEAD_AES_128_GCM" : "AES_CM_128_HMAC_SHA1_80");
  if (leg->cb.on_ready)
    leg->cb.on_ready(leg->user); /* may free LEG: last */
}

static void on_dtls_failed(void *user, const char *why)
{
  leg_fail(user, why);
}

/* the media half's own sink while the leg owns it: the leg's */
static void media_rtp(void *user, uint8_t *buf, size_t len, size_t cap)
{
  browser_leg *leg = user;
  if (leg->on_rtp)
    leg->on_rtp(leg->sink_user, buf, len, cap);
}

static void media_rtcp(void *user, uint8_t *buf, size_t len, size_t cap)
{
  browser_leg *leg = user;
  if (leg->on_rtcp)
    leg->on_rtcp(leg->sink_user, buf, len, cap);
}

static const ice_callbacks ice_cb = {on_ice_gathered, on_ice_state, on_ice_receive, on_ice_selected};
static const dtls_callbacks dtls_cb = {on_dtls_send, on_dtls_connected, on_dtls_failed};

/* ---- life cycle ---- */

int browser_leg_new(const dtls_identity *id, const browser_leg_settings *settings,
                    const browser_leg_callbacks *cb, void *user, browser_leg **ret)
{
  g_return_val_if_fail(id && settings && ret, -EINVAL);
  browser_leg *leg = g_new0(browser_leg, 1);
  int r;

  leg->role = settings->role;
  if (cb)
    leg->cb = *cb;
  leg->user = user;
  leg->log_id = g_strdup(settings->ice.log_id);
  r = dtls_session_new(id, settings->role, settings->peer_fingerprint, &dtls_cb, leg, &leg->dtls);
  if (r == 0 && settings->srtp_profiles)
    r = dtls_session_set_srtp_profiles(leg->dtls, settings->srtp_profiles);
  if (r == 0)
    r = ice_agent_new(&settings->ice, &ice_cb, leg, &leg->ice);
  if (r == 0)
    r = browser_media_new(leg->ice, &leg->media);
  if (r < 0) {
    browser_leg_free(leg);
    return r;
  }
  browser_media_set_sink(leg->media, media_rtp, media_rtcp, leg);
  if (leg->role == DTLS_ROLE_SERVER)
    dtls_session_start(leg->dtls); /* arms it: waits for the ClientHello */
  *ret = leg;
  return 0;
}

void browser_leg_free(browser_leg *leg)
{
  if (!leg)
    return;
  /* both are safe from inside their own callbacks */
  g_clear_pointer(&leg->dtls, dtls_session_free);
  g_clear_pointer(&leg->media, browser_media_free); /* before the agent it borrows */
  g_clear_pointer(&leg->ice, ice_agent_free);
  held_clear(leg);
  g_free(leg->log_id);
  g_free(leg);
}

browser_media *browser_leg_detach_media(browser_leg *leg, const browser_leg_handoff *h, void *user)
{
  browser_media *m = leg->media;

  if (!m)
    return NULL;
  leg->media = NULL;
  leg->detached = true;
  leg->handoff = *h;
  leg->handoff_user = user;
  browser_media_set_sink(m, NULL, NULL, NULL);
  return m;
}

browser_media *browser_leg_media(browser_leg *leg)
{
  return leg->media;
}

void browser_leg_set_sink(browser_leg *leg, browser_leg_media_fn on_rtp,
                          browser_leg_media_fn on_rtcp, void *user)
{
  leg->on_rtp = on_rtp;
  leg->on_rtcp = on_rtcp;
  leg->sink_user = user;
}

ice_agent *browser_leg_ice(browser_leg *leg)
{
  return leg->ice;
}

int browser_leg_set_peer_fingerprint(browser_leg *leg, const char *fingerprint)
{
  return dtls_session_set_peer_fingerprint(leg->dtls, fingerprint); /* may report now */
}

bool browser_leg_ready(const browser_leg *leg)
{
  return leg->keyed && !leg->failed;
}

/* ---- media out: hot path ---- */

int browser_leg_send_rtp(browser_leg *leg, uint8_t *buf, size_t len, size_t cap)
{
  return leg->media ? browser_media_send_rtp(leg->media, buf, len, cap) : -ENOTCONN;
}

int browser_leg_send_rtcp(browser_leg *leg, uint8_t *buf, size_t len, size_t cap)
{
  return leg->media ? browser_media_send_rtcp(leg->media, buf, len, cap) : -ENOTCONN;
}

void browser_leg_get_stats(const browser_leg *leg, browser_leg_stats *out)
{
  browser_media_stats m = { 0 };

  if (leg->media)
    browser_media_get_stats(leg->media, &m);
  *out = (browser_leg_stats){
    .rtp_in = m.rtp_in, .rtp_in_bytes = m.rtp_in_bytes, .rtcp_in = m.rtcp_in, .rtcp_in_bytes = m.rtcp_in_bytes,
    .rtp_out = m.rtp_out, .rtp_out_bytes = m.rtp_out_bytes, .rtcp_out = m.rtcp_out,
    .rtcp_out_bytes = m.rtcp_out_bytes, .auth_failures = m.auth_failures, .replays = m.replays,
    .drops_in = m.not_keyed_in + m.malformed_in, .drops_out = m.not_keyed_out + m.send_failed,
  };
}
