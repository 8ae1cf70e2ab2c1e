/* The media of one call: see media_bridge.h. */
#include "gateway/media_bridge.h"

#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <glib.h>

#include "config/log.h"
#include "gateway/rfc4733.h"
#include "webrtc/srtp.h"

#define DTMF_TICK_MS 20
#define DTMF_END_PACKETS 3

enum { BROWSER, PBX };

typedef struct {
  char digit;
  unsigned duration_ms;
} queued_digit;

/* One side of the call, as a source (what arrives from it) and as a
 * destination (the stream the bridge sends toward it). */
typedef struct {
  media_bridge *b;
  bool is_pbx;
  /* telephone-events; the PT is the same both ways on one side */
  int dtmf_pt;                    /* -1: none, never equal to a 7-bit PT */
  unsigned rate;
  /* as a source */
  bool forward_dtmf;
  rfc4733_end_filter ends;
  /* as a destination: per-packet state, plain stores */
  uint8_t map[128];               /* PT map toward this side, identity by default */
  bool sending;
  bool have_stream;
  uint16_t seq_offset;            /* added to forwarded sequence numbers */
  uint16_t last_seq;              /* of the last packet sent (after the offset) */
  uint32_t last_ts, ssrc;         /* of the last packet forwarded */
  gint64 last_at;                 /* its arrival, monotonic µs */
  /* generated events toward this side */
  guint timer;                    /* GLib mode */
  gint64 next_tick;               /* external clock: when the next packet is due, 0: none */
  queued_digit queue[MEDIA_BRIDGE_DTMF_QUEUE];
  unsigned q_head, q_len;
  bool active;                    /* an event is being sent */
  uint8_t gen_event;
  uint32_t gen_ts, gen_ssrc;
  uint32_t gen_total, gen_seg;    /* timestamp units: the whole event, the current segment's start */
  unsigned gen_tick, gen_ends;
} side;

struct media_bridge {
  browser_media *browser;
  rtp_socket *pbx;                /* NULL: echo */
  side side[2];
  gint64 last_packet;             /* monotonic µs; a plain store per packet */
  unsigned timeout_ms;
  bool external_clock;            /* media_bridge_tick, no GLib timers */
  bool timed_out;
  guint timer;
  media_bridge_callbacks cb;
  void *user;
  char *log_id;
  media_bridge_stats stats;
};

static inline uint32_t get32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Rewrites the 7-bit payload type of RTP in BUF, keeping the marker bit. */
static inline void map_pt(const uint8_t map[128], uint8_t *buf)
{
  buf[1] = (uint8_t)((buf[1] & 0x80) | map[buf[1] & 0x7f]);
}

/* ---- the per-packet path ---- */

/* A telephone-event from FROM: reported once when it ends.  Returns whether
 * to forward it. */
G_GNUC_NO_INLINE static bool dtmf_in(media_bridge *b, side *from, const uint8_t *buf, size_t len)
{
  uint32_t ts;
  rfc4733_event ev;

  if (rfc4733_packet_parse(buf, len, &ts, &ev) == 0 && rfc4733_end_filter_feed(&from->ends, ts, &ev)) {
    char digit = rfc4733_digit_from_event(ev.event);
    if (digit && b->cb.on_dtmf)
      b->cb.on_dtmf(b->user, !from->is_pbx, digit, (unsigned)((uint64_t)ev.duration * 1000 / from->rate));
  }
  return from->forward_dtmf;
}

/* RTP of LEN >= 12 bytes from FROM toward TO (the same side in echo mode,
 * which does not map PTs): PT, sequence number, the stream's state.  False:
 * dropped on purpose (counted here). */
static inline bool rtp_toward(media_bridge *b, side *from, side *to, bool map, uint8_t *buf, size_t len, gint64 now)
{
  if (G_UNLIKELY((buf[1] & 0x7f) == from->dtmf_pt)) {
    if (!dtmf_in(b, from, buf, len)) {
      b->stats.dtmf_dropped++;
      to->seq_offset--; /* the receiver sees no gap */
      return false;
    }
    if (to->dtmf_pt >= 0)
      buf[1] = (uint8_t)((buf[1] & 0x80) | to->dtmf_pt);
    else if (map)
      map_pt(to->map, buf);
  } else if (map) {
    map_pt(to->map, buf);
  }
  if (G_UNLIKELY(!to->sending)) {
    b->stats.held++;
    return false;
  }
  uint16_t seq = (uint16_t)((buf[2] << 8 | buf[3]) + to->seq_offset);
  buf[2] = (uint8_t)(seq >> 8);
  buf[3] = (uint8_t)seq;
  to->last_seq = seq;
  to->last_ts = get32(buf + 4);
  to->ssrc = get32(buf + 8);
  to->last_at = now;
  to->have_stream = true;
  return true;
}

static void from_browser_rtp(void *user, uint8_t *buf, size_t len, size_t cap)
{
  media_bridge *b = user;
  gint64 now = g_get_monotonic_time();
  int r;

  b->last_packet = now;
  if (G_UNLIKELY(len < 12)) {
    b->stats.runts++;
    return;
  }
  if (!b->pbx) {
    if (!rtp_toward(b, &b->side[BROWSER], &b->side[BROWSER], false, buf, len, now))
      return;
    r = browser_media_send_rtp(b->browser, buf, len, cap); /* echo */
    if (G_LIKELY(r == 0))
      b->stats.rtp_to_browser++;
  } else {
    if (!rtp_toward(b, &b->side[BROWSER], &b->side[PBX], true, buf, len, now))
      return;
    r = rtp_socket_send_rtp(b->pbx, buf, len);
    if (G_LIKELY(r == 0))
      b->stats.rtp_to_pbx++;
  }
  (void)r; /* a failed send is counted by the leg or socket, with its reason */
}

static void from_browser_rtcp(void *user, uint8_t *buf, size_t len, size_t cap)
{
  media_bridge *b = user;
  int r;

  b->last_packet = g_get_monotonic_time();
  if (!b->pbx) {
    r = browser_media_send_rtcp(b->browser, buf, len, cap);
    if (G_LIKELY(r == 0))
      b->stats.rtcp_to_browser++;
  } else {
    r = rtp_socket_send_rtcp(b->pbx, buf, len);
    if (G_LIKELY(r == 0))
      b->stats.rtcp_to_pbx++;
  }
  (void)r; /* a failed send is counted by the leg or socket, with its reason */
}

static void from_pbx_rtp(void *user, uint8_t *buf, size_t len, size_t cap)
{
  media_bridge *b = user;
  gint64 now = g_get_monotonic_time();

  b->last_packet = now;
  if (G_UNLIKELY(len < 12)) {
    b->stats.runts++;
    return;
  }
  if (!rtp_toward(b, &b->side[PBX], &b->side[BROWSER], true, buf, len, now))
    return;
  if (G_LIKELY(browser_media_send_rtp(b->browser, buf, len, cap) == 0))
    b->stats.rtp_to_browser++;
}

static void from_pbx_rtcp(void *user, uint8_t *buf, size_t len, size_t cap)
{
  media_bridge *b = user;

  b->last_packet = g_get_monotonic_time();
  if (G_LIKELY(browser_media_send_rtcp(b->browser, buf, len, cap) == 0))
    b->stats.rtcp_to_browser++;
}

void media_bridge_receive(media_bridge *b, bool from_browser, bool rtcp, uint8_t *buf, size_t len,
                          size_t cap)
{
  if (from_browser)
    (rtcp ? from_browser_rtcp : from_browser_rtp)(b, buf, len, cap);
  else
    (rtcp ? from_pbx_rtcp : from_pbx_rtp)(b, buf, len, cap);
}

/* ---- generated telephone-events ---- */

/* One packet of the current event toward TO, UNITS into it, continuing the
 * stream's sequence numbers. */
static void dtmf_emit(media_bridge *b, side *to, bool end, uint32_t units)
{
  uint8_t pkt[RFC4733_PACKET_LEN + SRTP_LEG_MAX_TRAILER];
  int r;

  while (units - to->gen_seg > 0xffff) /* RFC 4733 2.5.1.5: a long event goes on in a new segment */
    to->gen_seg += 0xffff;
  if (!to->sending) {
    b->stats.held++;
    return;
  }
  rfc4733_header h = {.pt = (uint8_t)to->dtmf_pt, .marker = to->gen_tick == 0, .seq = (uint16_t)(to->last_seq + 1),
                      .timestamp = to->gen_ts + to->gen_seg, .ssrc = to->gen_ssrc};
  rfc4733_event ev = {.event = to->gen_event, .end = end, .volume = RFC4733_VOLUME,
                      .duration = (uint16_t)(units - to->gen_seg)};
  size_t len = rfc4733_packet_write(pkt, &h, &ev);
  to->last_seq++;
  to->seq_offset++; /* forwarded packets follow the generated ones */
  if (to->is_pbx)
    r = rtp_socket_send_rtp(b->pbx, pkt, len);
  else
    r = browser_media_send_rtp(b->browser, pkt, len, sizeof pkt);
  (void)r; /* a failed send is counted by the leg or socket */
}

/* Takes the next digit from TO's queue: the event starts at the stream's
 * current time. */
static void dtmf_start(side *to)
{
  queued_digit d = to->queue[to->q_head];
  gint64 since = MAX(g_get_monotonic_time() - to->last_at, 0);

  to->q_head = (to->q_head + 1) % MEDIA_BRIDGE_DTMF_QUEUE;
  to->q_len--;
  to->gen_event = (uint8_t)rfc4733_event_from_digit(d.digit);
  to->gen_ts = to->last_ts + (uint32_t)((uint64_t)since * to->rate / G_USEC_PER_SEC);
  to->gen_ssrc = to->ssrc;
  to->gen_total = (uint32_t)((uint64_t)d.duration_ms * to->rate / 1000);
  to->gen_seg = 0;
  to->gen_tick = 0;
  to->gen_ends = 0;
  to->active = true;
}

/* Every 20 ms while TO has an event or digits: the packet that is due.
 * Durations rise by 20 ms a packet until the event's length, then 3 end
 * packets; the next digit starts on the tick after. */
static void dtmf_tick(media_bridge *b, side *to)
{
  if (!to->active)
    dtmf_start(to);
  uint32_t elapsed = (uint32_t)((uint64_t)(to->gen_tick + 1) * DTMF_TICK_MS * to->rate / 1000);
  if (elapsed < to->gen_total) {
    dtmf_emit(b, to, false, elapsed);
  } else {
    dtmf_emit(b, to, true, to->gen_total);
    if (++to->gen_ends == DTMF_END_PACKETS) {
      to->active = false;
      if (to->is_pbx)
        b->stats.dtmf_to_pbx++;
      else
        b->stats.dtmf_to_browser++;
    }
  }
  to->gen_tick++;
}

static gboolean on_dtmf_timer(gpointer data)
{
  side *to = data;

  if (!to->active && to->q_len == 0) {
    to->timer = 0;
    return G_SOURCE_REMOVE;
  }
  dtmf_tick(to->b, to);
  return G_SOURCE_CONTINUE;
}

int media_bridge_send_dtmf(media_bridge *b, bool to_pbx, char digit, unsigned duration_ms)
{
  g_return_val_if_fail(b, -EINVAL);
  side *to = &b->side[to_pbx ? PBX : BROWSER];

  if (rfc4733_event_from_digit(digit) < 0 || to->dtmf_pt < 0)
    return -EINVAL;
  if ((to_pbx && !b->pbx) || !to->have_stream)
    return -ENOTCONN;
  if (to->q_len == MEDIA_BRIDGE_DTMF_QUEUE)
    return -ENOBUFS;
  if (duration_ms == 0)
    duration_ms = 100;
  duration_ms = CLAMP(duration_ms, 40u, 2000u);
  to->queue[(to->q_head + to->q_len) % MEDIA_BRIDGE_DTMF_QUEUE] = (queued_digit){digit, duration_ms};
  to->q_len++;
  if (b->external_clock) {
    if (!to->next_tick) {
      dtmf_tick(b, to); /* the first packet now */
      to->next_tick = g_get_monotonic_time() + DTMF_TICK_MS * 1000;
    }
  } else if (!to->timer) {
    dtmf_tick(b, to); /* the first packet now */
    to->timer = g_timeout_add(DTMF_TICK_MS, on_dtmf_timer, to);
  }
  return 0;
}

int media_bridge_dtmf_check(const media_bridge_dtmf_settings *s)
{
  if (!s || s->browser_pt < -1 || s->browser_pt > 127 || s->pbx_pt < -1 || s->pbx_pt > 127 ||
      (s->browser_pt >= 0 && s->browser_rate == 0) || (s->pbx_pt >= 0 && s->pbx_rate == 0))
    return -EINVAL;
  return 0;
}

int media_bridge_set_dtmf(media_bridge *b, const media_bridge_dtmf_settings *s)
{
  g_return_val_if_fail(b, -EINVAL);
  if (media_bridge_dtmf_check(s) < 0)
    return -EINVAL;
  b->side[BROWSER].dtmf_pt = s->browser_pt;
  b->side[BROWSER].rate = s->browser_pt >= 0 ? s->browser_rate : 8000;
  b->side[PBX].dtmf_pt = s->pbx_pt;
  b->side[PBX].rate = s->pbx_pt >= 0 ? s->pbx_rate : 8000;
  return 0;
}

void media_bridge_forward_dtmf(media_bridge *b, bool from_browser, bool forward)
{
  b->side[from_browser ? BROWSER : PBX].forward_dtmf = forward;
}

void media_bridge_set_sending(media_bridge *b, bool to_pbx, bool sending)
{
  b->side[to_pbx ? PBX : BROWSER].sending = sending;
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

void media_bridge_tick(media_bridge *b, gint64 now)
{
  for (int i = BROWSER; i <= PBX; i++) {
    side *to = &b->side[i];
    /* the packets that are due (a late tick sends them one after the other) */
    while (to->next_tick && now >= to->next_tick) {
      if (!to->active && to->q_len == 0) {
        to->next_tick = 0;
        break;
      }
      dtmf_tick(b, to);
      to->next_tick += DTMF_TICK_MS * 1000;
    }
  }
  if (b->timeout_ms && !b->timed_out && now - b->last_packet >= (gint64)b->timeout_ms * 1000) {
    b->timed_out = true;
    if (b->cb.on_timeout)
      b->cb.on_timeout(b->user); /* may free B: last */
  }
}

bool media_bridge_dtmf_busy(const media_bridge *b)
{
  return b->side[BROWSER].next_tick || b->side[PBX].next_tick;
}

/* ---- life cycle ---- */

static void identity_maps(media_bridge *b)
{
  for (unsigned pt = 0; pt < 128; pt++)
    b->side[PBX].map[pt] = b->side[BROWSER].map[pt] = (uint8_t)pt;
}

int media_bridge_new(browser_media *browser, rtp_socket *pbx, const media_bridge_settings *settings,
                     const media_bridge_callbacks *cb, void *user, media_bridge **ret)
{
  g_return_val_if_fail(browser && settings && ret, -EINVAL);
  media_bridge *b = g_new0(media_bridge, 1);

  b->browser = browser;
  b->pbx = pbx;
  for (int i = BROWSER; i <= PBX; i++) {
    b->side[i].b = b;
    b->side[i].is_pbx = i == PBX;
    b->side[i].dtmf_pt = -1;
    b->side[i].rate = 8000;
    b->side[i].forward_dtmf = true;
    b->side[i].sending = true;
  }
  identity_maps(b);
  if (cb)
    b->cb = *cb;
  b->user = user;
  b->log_id = g_strdup(settings->log_id);
  b->timeout_ms = settings->timeout_ms;
  b->external_clock = settings->external_clock;
  b->last_packet = g_get_monotonic_time();
  if (b->timeout_ms && !b->external_clock)
    /* checks 4 times per period: fires between 1 and 1.25 periods of silence */
    b->timer = g_timeout_add(MAX(b->timeout_ms / 4, 1u), on_timer, b);
  browser_media_set_sink(browser, from_browser_rtp, from_browser_rtcp, b);
  if (settings->on_dtls)
    browser_media_set_dtls_sink(browser, settings->on_dtls, settings->dtls_user);
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
  for (int i = BROWSER; i <= PBX; i++)
    if (b->side[i].timer)
      g_source_remove(b->side[i].timer);
  browser_media_set_sink(b->browser, NULL, NULL, NULL);
  browser_media_set_dtls_sink(b->browser, NULL, NULL);
  if (b->pbx)
    rtp_socket_set_sink(b->pbx, NULL, NULL, NULL);
  g_free(b->log_id);
  g_free(b);
}

int media_bridge_pt_map_check(const media_bridge_pt_pair *pairs, size_t n)
{
  if (n > MEDIA_BRIDGE_MAX_PT_PAIRS || (n && !pairs))
    return -EINVAL;
  for (size_t i = 0; i < n; i++)
    if (pairs[i].browser_pt > 127 || pairs[i].pbx_pt > 127)
      return -EINVAL;
  return 0;
}

int media_bridge_set_pt_map(media_bridge *b, const media_bridge_pt_pair *pairs, size_t n)
{
  if (media_bridge_pt_map_check(pairs, n) < 0)
    return -EINVAL;
  identity_maps(b);
  for (size_t i = 0; i < n; i++) {
    b->side[PBX].map[pairs[i].browser_pt] = pairs[i].pbx_pt;
    b->side[BROWSER].map[pairs[i].pbx_pt] = pairs[i].browser_pt;
  }
  return 0;
}

void media_bridge_get_stats(const media_bridge *b, media_bridge_stats *out)
{
  *out = b->stats;
}

/* " (last 192.0.2.7:4000)": where the last packet the PBX-side port did not
 * take came from ([media] rtp_source), for the operator. */
static void append_last_rejected(GString *out, const struct sockaddr_storage *ss)
{
  char text[INET6_ADDRSTRLEN];

  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text))
      g_string_append_printf(out, " (last %s:%u)", text, ntohs(in->sin_port));
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text))
      g_string_append_printf(out, " (last [%s]:%u)", text, ntohs(in6->sin6_port));
  }
}

char *media_bridge_summary(const browser_media_stats *ls, const rtp_socket_stats *rs,
                           const media_bridge_stats *bs)
{
  GString *out = g_string_new(NULL);

  g_string_append_printf(out, "browser->rtcsipd %" G_GUINT64_FORMAT " rtp/%" G_GUINT64_FORMAT
                         " bytes %" G_GUINT64_FORMAT " rtcp, rtcsipd->browser %" G_GUINT64_FORMAT
                         " rtp/%" G_GUINT64_FORMAT " bytes %" G_GUINT64_FORMAT " rtcp, ",
                         ls->rtp_in, ls->rtp_in_bytes, ls->rtcp_in, ls->rtp_out, ls->rtp_out_bytes,
                         ls->rtcp_out);
  if (rs)
    g_string_append_printf(out, "pbx->rtcsipd %" G_GUINT64_FORMAT " rtp/%" G_GUINT64_FORMAT
                           " bytes %" G_GUINT64_FORMAT " rtcp, rtcsipd->pbx %" G_GUINT64_FORMAT
                           " rtp/%" G_GUINT64_FORMAT " bytes %" G_GUINT64_FORMAT " rtcp, ",
                           rs->rtp_in, rs->rtp_in_bytes, rs->rtcp_in, rs->rtp_out, rs->rtp_out_bytes,
                           rs->rtcp_out);
  g_string_append_printf(out, "srtp auth failures %" G_GUINT64_FORMAT, ls->auth_failures);
  /* every packet not forwarded, by reason; only the reasons that happened */
  struct { const char *what; uint64_t n; } drops[] = {
    {"replayed", ls->replays},
    {"browser before keys", ls->not_keyed_in},
    {"to browser before keys", ls->not_keyed_out},
    {"malformed from browser", ls->malformed_in},
    {"send to browser failed", ls->send_failed},
    {"browser port unreachable", ls->peer_unreachable},
    {"malformed from pbx", rs ? rs->drops_in : 0},
    {"to pbx before its address", rs ? rs->no_remote : 0},
    {"send to pbx failed", rs ? rs->send_failed : 0},
    {"runts", bs->runts},
    {"held", bs->held},
    {"dtmf not forwarded", bs->dtmf_dropped},
  };
  uint64_t total = 0;
  for (size_t i = 0; i < G_N_ELEMENTS(drops); i++)
    total += drops[i].n;
  g_string_append_printf(out, ", not forwarded %" G_GUINT64_FORMAT, total);
  bool first = true;
  for (size_t i = 0; i < G_N_ELEMENTS(drops); i++) {
    if (!drops[i].n)
      continue;
    g_string_append_printf(out, "%s%s %" G_GUINT64_FORMAT, first ? " (" : ", ", drops[i].what, drops[i].n);
    first = false;
  }
  if (!first)
    g_string_append_c(out, ')');
  if (rs) {
    g_string_append_printf(out, ", rejected source %" G_GUINT64_FORMAT, rs->rejected_source);
    append_last_rejected(out, &rs->last_rejected);
  }
  return g_string_free(out, FALSE);
}
