/* The media of one call as the call sees it: see call_media.h. */
#include "gateway/call_media.h"

#include <errno.h>
#include <glib.h>

#include "config/log.h"

struct call_media {
  browser_leg *leg;
  browser_media *bm;
  rtp_socket *rtp;
  media_call *mc;
  media_call_callbacks cb;
  void *user;
  char *log_id;
  bool fastpath_logged;
};

/* ICE is connected: the worker reads the pair itself when it can. */
static void open_fastpath(call_media *cm)
{
  char *ufrag = NULL, *pwd = NULL;
  int fd = ice_agent_fastpath_open(browser_leg_ice(cm->leg), &ufrag, &pwd);

  if (fd < 0) {
    if (fd != -ENOTCONN && !cm->fastpath_logged) {
      cm->fastpath_logged = true;
      log_id(cm->log_id, LOG_INFO, "media: libnice carries the browser's pair (%s)",
             fd == -ENOTSUP ? "relayed" : g_strerror(-fd));
    }
    return;
  }
  media_call_set_socket(cm->mc, fd, ufrag, pwd);
  g_free(ufrag);
  g_free(pwd);
}

static void on_datagram(void *user, const uint8_t *data, size_t len)
{
  call_media *cm = user;
  media_call_datagram(cm->mc, data, len);
}

static void on_keys(void *user, srtp_leg *srtp)
{
  call_media *cm = user;
  media_call_set_srtp(cm->mc, srtp);
}

static void on_connected(void *user)
{
  open_fastpath(user);
}

static void on_dtls(void *user, const uint8_t *data, size_t len)
{
  call_media *cm = user;
  browser_leg_feed_dtls(cm->leg, data, len); /* may end the call; not free CM (an idle does) */
}

static void on_timeout(void *user)
{
  call_media *cm = user;
  if (cm->cb.on_timeout)
    cm->cb.on_timeout(cm->user);
}

static void on_browser_silent(void *user)
{
  call_media *cm = user;
  log_id(cm->log_id, LOG_NOTICE, "nothing from the browser for %u ms since its keys",
         MEDIA_BROWSER_SILENCE_MS);
  if (cm->cb.on_browser_silent)
    cm->cb.on_browser_silent(cm->user);
}

static void on_dtmf(void *user, bool from_browser, char digit, unsigned duration_ms)
{
  call_media *cm = user;
  if (cm->cb.on_dtmf)
    cm->cb.on_dtmf(cm->user, from_browser, digit, duration_ms);
}

int call_media_new(media_engine *e, browser_leg *leg, rtp_socket *rtp,
                   const media_bridge_settings *settings, const media_call_callbacks *cb,
                   void *user, call_media **ret)
{
  static const browser_leg_handoff handoff = { on_datagram, on_keys, on_connected };
  static const media_call_callbacks mcb = { on_timeout, on_dtmf, on_dtls, on_browser_silent };
  call_media *cm = g_new0(call_media, 1);
  int r;

  cm->leg = leg;
  cm->rtp = rtp;
  if (cb)
    cm->cb = *cb;
  cm->user = user;
  cm->log_id = g_strdup(settings->log_id);
  cm->bm = browser_leg_detach_media(leg, &handoff, cm);
  if (!cm->bm) {
    g_free(cm->log_id);
    g_free(cm);
    return -EINVAL;
  }
  r = media_call_new(e, cm->bm, rtp, settings, &mcb, cm, &cm->mc);
  if (r < 0) {
    browser_media_free(cm->bm);
    g_free(cm->log_id);
    g_free(cm);
    return r;
  }
  if (ice_agent_state(browser_leg_ice(leg)) == ICE_CONNECTED)
    open_fastpath(cm);
  *ret = cm;
  return 0;
}

void call_media_free(call_media *cm, char **summary)
{
  media_call_stats st;

  if (!cm)
    return;
  browser_leg_end_handoff(cm->leg);
  media_call_free(cm->mc, &st);
  if (summary)
    *summary = media_bridge_summary(&st.browser, st.has_pbx ? &st.pbx : NULL, &st.bridge);
  browser_media_free(cm->bm); /* and the worker's socket of the pair */
  g_free(cm->log_id);
  g_free(cm);
}

media_call *call_media_call(call_media *cm)
{
  return cm->mc;
}

void call_media_ice_restart(call_media *cm)
{
  media_call_set_socket(cm->mc, -1, NULL, NULL);
}

char *call_media_summary_unstarted(browser_leg *leg, rtp_socket *rtp)
{
  browser_media_stats ls = { 0 };
  rtp_socket_stats rs = { 0 };
  media_bridge_stats bs = { 0 };
  browser_media *bm = leg ? browser_leg_media(leg) : NULL;

  if (bm)
    browser_media_get_stats(bm, &ls);
  if (rtp)
    rtp_socket_get_stats(rtp, &rs);
  return media_bridge_summary(&ls, rtp ? &rs : NULL, &bs);
}
