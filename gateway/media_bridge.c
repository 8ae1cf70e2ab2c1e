/* The media of one call: see media_bridge.h. */
#include "gateway/media_bridge.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

#include "config/log.h"

struct media_bridge {
  browser_leg *browser;
  rtp_socket *pbx;                /* NULL: echo */
  uint8_t to_pbx[128], to_browser[128]; /* PT maps, identity by default */
  gint64 last_packet;             /* monotonic µs; a plain store per packet */
  unsigned timeout_ms;
  guint timer;
  media_bridge_callbacks cb;
  void *user;
  char *log_id;
  media_bridge_stats stats;
};

/* Rewrites the 7-bit payload type of RTP in BUF, keeping the marker bit. */
static inline void map_pt(const uint8_t map[128], uint8_t *buf)
{
  buf[1] = (uint8_t)((buf[1] & 0x80) | map[buf[1] & 0x7f]);
}

/* ---- the per-packet path ---- */

static void from_browser_rtp(void *user, uint8_t *buf, size_t len, size_t cap)
{
  media_bridge *b = user;
  int r;

  b->last_packet = g_get_monotonic_time();
  if (G_UNLIKELY(len < 12)) {
    b->stats.drops++;
    return;
  }
  if (!b->pbx) {
    r = browser_leg_send_rtp(b->browser, buf, len, cap); /* echo */
    if (G_LIKELY(r == 0))
      b->stats.rtp_to_browser++;
  } else {
    map_pt(b->to_pbx, buf);
    r = rtp_socket_send_rtp(b->pbx, buf, len);
    if (G_LIKELY(r == 0))
      b->stats.rtp_to_pbx++;
  }
  if (G_UNLIKELY(r < 0))
    b->stats.drops++;
}

static void from_browser_rtcp(void *user, uint8_t *buf, size_t len, size_t cap)
{
  media_bridge *b = user;
  int r;

  b->last_packet = g_get_monotonic_time();
  if (!b->pbx) {
    r = browser_leg_send_rtcp(b->browser, buf, len, cap);
    if (G_LIKELY(r == 0))
      b->stats.rtcp_to_browser++;
  } else {
    r = rtp_socket_send_rtcp(b->pbx, buf, len);
    if (G_LIKELY(r == 0))
      b->stats.rtcp_to_pbx++;
  }
  if (G_UNLIKELY(r < 0))
    b->stats.drops++;
}

static void from_pbx_rtp(void *user, uint8_t *buf, size_t len, size_t cap)
{
  media_bridge *b = user;

  b->last_packet = g_get_monotonic_time();
  if (G_UNLIKELY(len < 12)) {
    b->stats.drops++;
    return;
  }
  map_pt(b->to_browser, buf);
  if (G_LIKELY(browser_leg_send_rtp(b->browser, buf, len, cap) == 0))
    b->stats.rtp_to_browser++;
  else
    b->stats.drops++;
}

static void from_pbx_rtcp(void *user, uint8_t *buf, size_t len, size_t cap)
{
  media_bridge *b = user;

  b->last_packet = g_get_monotonic_time();
  if (G_LIKELY(browser_leg_send_rtcp(b->browser, buf, len, cap) == 0))
    b->stats.rtcp_to_browser++;
  else
    b->stats.drops++;
}

/* ---- timeout ---- */

static gboolean on_timer(gpointer data)
{
  media_bridge *b = data;

  if (g_get_monotonic_time() - b->last_packet < (gint64)b->timeout_ms * 1000)
    return G_SOURCE_CONTINUE;
  b->timer = 0;
  log_id(b->log_id, LOG_NOTICE, "no media for %u ms", b->timeout_ms);
  if (b->cb.on_timeout)
    b->cb.on_timeout(b->user); /* may free B: last */
  return G_SOURCE_REMOVE;
}

/* ---- life cycle ---- */

int media_bridge_new(browser_leg *browser, rtp_socket *pbx, const media_bridge_settings *settings,
                     const media_bridge_callbacks *cb, void *user, media_bridge **ret)
{
  g_return_val_if_fail(browser && settings && ret, -EINVAL);
  media_bridge *b = g_new0(media_bridge, 1);

  b->browser = browser;
  b->pbx = pbx;
  for (unsigned pt = 0; pt < 128; pt++)
    b->to_pbx[pt] = b->to_browser[pt] = (uint8_t)pt;
  if (cb)
    b->cb = *cb;
  b->user = user;
  b->log_id = g_strdup(settings->log_id);
  b->timeout_ms = settings->timeout_ms;
  b->last_packet = g_get_monotonic_time();
  if (b->timeout_ms)
    /* checks 4 times per period: fires between 1 and 1.25 periods of silence */
    b->timer = g_timeout_add(MAX(b->timeout_ms / 4, 1u), on_timer, b);
  browser_leg_set_sink(browser, from_browser_rtp, from_browser_rtcp, b);
  if (pbx)
    rtp_socket_set_sink(pbx, from_pbx_rtp, from_pbx_rtcp, b);
  *ret = b;
  return 0;
}

void media_bridge_free(media_bridge *b)
{
  if (!b)
    return;
  if (b->timer)
    g_source_remove(b->timer);
  browser_leg_set_sink(b->browser, NULL, NULL, NULL);
  if (b->pbx)
    rtp_socket_set_sink(b->pbx, NULL, NULL, NULL);
  g_free(b->log_id);
  g_free(b);
}

int media_bridge_set_pt_map(media_bridge *b, const media_bridge_pt_pair *pairs, size_t n)
{
  if (n > MEDIA_BRIDGE_MAX_PT_PAIRS || (n && !pairs))
    return -EINVAL;
  for (size_t i = 0; i < n; i++)
    if (pairs[i].browser_pt > 127 || pairs[i].pbx_pt > 127)
      return -EINVAL;
  for (unsigned pt = 0; pt < 128; pt++)
    b->to_pbx[pt] = b->to_browser[pt] = (uint8_t)pt;
  for (size_t i = 0; i < n; i++) {
    b->to_pbx[pairs[i].browser_pt] = pairs[i].pbx_pt;
    b->to_browser[pairs[i].pbx_pt] = pairs[i].browser_pt;
  }
  return 0;
}

void media_bridge_get_stats(const media_bridge *b, media_bridge_stats *out)
{
  *out = b->stats;
}
