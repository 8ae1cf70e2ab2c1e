/* The browser's media for one call: see browser_leg.h. */
#include "webrtc/browser_leg.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

#include "config/log.h"
#include "webrtc/demux.h"
#include "webrtc/srtp.h"

struct browser_leg {
  ice_agent *ice;
  dtls_session *dtls;
  srtp_leg *srtp;          /* NULL until DTLS is connected */
  dtls_role role;
  bool failed;
  browser_leg_callbacks cb;
  void *user;
  browser_leg_media_fn on_rtp, on_rtcp;
  void *sink_user;
  char *log_id;
  browser_leg_stats stats;
};

static void leg_fail(browser_leg *leg, const char *why)
{
  if (leg->failed)
    return;
  leg->failed = true;
  g_clear_pointer(&leg->srtp, srtp_leg_free); /* no media after a failure */
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

  if (state == ICE_CONNECTED && leg->role == DTLS_ROLE_CLIENT)
    dtls_session_start(leg->dtls); /* no-op after the first time */
  else if (state == ICE_FAILED)
    leg_fail(leg, "ice failed");
}

/* Media hot path: no allocation, no logging. */
static void on_ice_receive(void *user, uint8_t *data, size_t len)
{
  browser_leg *leg = user;
  size_t cap = len;
  int r;

  switch (demux_classify(data, len)) {
  case DEMUX_DTLS:
    dtls_session_feed(leg->dtls, data, len); /* may free LEG */
    return;
  case DEMUX_RTP:
    break;
  default: /* STUN never reaches us; anything else is dropped */
    leg->stats.drops_in++;
    return;
  }
  if (G_UNLIKELY(!leg->srtp)) {
    leg->stats.drops_in++;
    return;
  }
  if (demux_is_rtcp(data, len)) {
    r = srtp_leg_unprotect_rtcp(leg->srtp, data, &len);
    if (G_LIKELY(r == 0 && leg->on_rtcp)) {
      leg->stats.rtcp_in++;
      leg->stats.rtcp_in_bytes += len;
      leg->on_rtcp(leg->sink_user, data, len, cap);
      return;
    }
  } else {
    r = srtp_leg_unprotect(leg->srtp, data, &len);
    if (G_LIKELY(r == 0 && leg->on_rtp)) {
      leg->stats.rtp_in++;
      leg->stats.rtp_in_bytes += len;
      leg->on_rtp(leg->sink_user, data, len, cap);
      return;
    }
  }
  if (r == -EBADMSG)
    leg->stats.auth_failures++;
  else if (r == -EALREADY)
    leg->stats.replays++;
  else
    leg->stats.drops_in++;
}

void browser_leg_inject(browser_leg *leg, uint8_t *data, size_t len)
{
  on_ice_receive(leg, data, len);
}

/* ---- DTLS ---- */

static void on_dtls_send(void *user, const uint8_t *data, size_t len)
{
  browser_leg *leg = user;

  (void)ice_agent_send(leg->ice, data, len); /* lost: DTLS retransmits */
}

static void on_dtls_connected(void *user, const dtls_srtp_keys *keys)
{
  browser_leg *leg = user;
  int r;

  if (leg->failed)
    return;
  r = srtp_leg_new(keys, &leg->srtp);
  if (r < 0) {
    leg_fail(leg, "SRTP keys refused");
    return;
  }
  log_id(leg->log_id, LOG_INFO, "browser media ready (SRTP profile 0x%04x)", keys->profile);
  if (leg->cb.on_ready)
    leg->cb.on_ready(leg->user); /* may free LEG: last */
}

static void on_dtls_failed(void *user, const char *why)
{
  leg_fail(user, why);
}

static const ice_callbacks ice_cb = {on_ice_gathered, on_ice_state, on_ice_receive};
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
  if (r < 0) {
    browser_leg_free(leg);
    return r;
  }
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
  g_clear_pointer(&leg->ice, ice_agent_free);
  g_clear_pointer(&leg->srtp, srtp_leg_free);
  g_free(leg->log_id);
  g_free(leg);
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
  return leg->srtp != NULL;
}

/* ---- media out: hot path ---- */

static int send_protected(browser_leg *leg, uint8_t *buf, size_t len, size_t cap, bool rtcp)
{
  int r;

  if (G_UNLIKELY(!leg->srtp)) {
    leg->stats.drops_out++;
    return -ENOTCONN;
  }
  r = rtcp ? srtp_leg_protect_rtcp(leg->srtp, buf, &len, cap) : srtp_leg_protect(leg->srtp, buf, &len, cap);
  if (G_LIKELY(r == 0))
    r = ice_agent_send(leg->ice, buf, len);
  if (G_UNLIKELY(r < 0)) {
    leg->stats.drops_out++;
    return r;
  }
  if (rtcp) {
    leg->stats.rtcp_out++;
    leg->stats.rtcp_out_bytes += len;
  } else {
    leg->stats.rtp_out++;
    leg->stats.rtp_out_bytes += len;
  }
  return 0;
}

int browser_leg_send_rtp(browser_leg *leg, uint8_t *buf, size_t len, size_t cap)
{
  return send_protected(leg, buf, len, cap, false);
}

int browser_leg_send_rtcp(browser_leg *leg, uint8_t *buf, size_t len, size_t cap)
{
  return send_protected(leg, buf, len, cap, true);
}

void browser_leg_get_stats(const browser_leg *leg, browser_leg_stats *out)
{
  *out = leg->stats;
}
