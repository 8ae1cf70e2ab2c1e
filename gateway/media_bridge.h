/* The media of one call: joins the browser's leg (webrtc/browser_leg.h) and
 * the PBX's socket (webrtc/rtp_socket.h).  RTP both ways with its payload
 * type rewritten by a small fixed table (from the SDP answer), RTCP both ways
 * unchanged, and a media timeout: no packet from either side for the set time
 * -> on_timeout.  Without a PBX socket ("echo" mode) browser RTP and RTCP are
 * reflected to the browser.
 *
 * The bridge takes over both objects' media sinks; it does not own them.
 * The per-packet path does not allocate, log or lock: the last-packet time is
 * a plain store.  Runs on the default main context's thread.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "webrtc/browser_leg.h"
#include "webrtc/rtp_socket.h"

typedef struct media_bridge media_bridge;

#define MEDIA_BRIDGE_MAX_PT_PAIRS 16

typedef struct {
  uint8_t browser_pt, pbx_pt; /* 0..127 */
} media_bridge_pt_pair;

typedef struct {
  unsigned timeout_ms;   /* 0: no media timeout */
  const char *log_id;
} media_bridge_settings;

typedef struct {
  /* No packet from either side for timeout_ms.  Comes once; the bridge may
   * be freed from inside it. */
  void (*on_timeout)(void *user);
} media_bridge_callbacks;

typedef struct {
  uint64_t rtp_to_pbx, rtcp_to_pbx, rtp_to_browser, rtcp_to_browser; /* sent */
  uint64_t drops;   /* a send failed, or a PT outside 0..127 mapping */
} media_bridge_stats;

/* PBX NULL: echo mode.  0 or -EINVAL. */
int media_bridge_new(browser_leg *browser, rtp_socket *pbx, const media_bridge_settings *settings,
                     const media_bridge_callbacks *cb, void *user, media_bridge **ret);
/* Detaches from both legs' sinks; NULL: no-op. */
void media_bridge_free(media_bridge *b);

/* Replaces the PT table: N <= MEDIA_BRIDGE_MAX_PT_PAIRS pairs, PTs < 128.  A
 * PT not in the table passes unchanged.  0 or -EINVAL. */
int media_bridge_set_pt_map(media_bridge *b, const media_bridge_pt_pair *pairs, size_t n);

void media_bridge_get_stats(const media_bridge *b, media_bridge_stats *out);
