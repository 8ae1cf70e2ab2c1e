/* The load generator's arithmetic: what came back of one call's stream
 * (packets lost, reordered, duplicated, round-trip latency, jitter), and the
 * totals over many calls.  Pure functions on plain structs: no clock, no I/O
 * (tests/unit/test_loadgen_report.c feeds them synthetic input).
 *
 * Every packet the load generator sends carries its RTP sequence number and
 * the time it was sent (monotonic µs) in its payload; the echo sends it
 * back.  A received packet is classed by its extended sequence number
 * against the highest seen: newer (in order), older and not seen before
 * (reordered), or seen before (duplicate: a window of the last
 * LG_SEEN_WINDOW numbers).  Loss is what was sent and never came back. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Latency histogram: 1 µs resolution below 128 µs, then 64 steps per
 * power of two (a relative error under 1.6 %), up to about 67 s. */
#define LG_HIST_LINEAR 128
#define LG_HIST_SUB 64
#define LG_HIST_OCTAVES 20
#define LG_HIST_BUCKETS (LG_HIST_LINEAR + LG_HIST_OCTAVES * LG_HIST_SUB)

typedef struct {
  uint64_t count[LG_HIST_BUCKETS];
  uint64_t n, overflow; /* samples; beyond the last bucket (counted as max) */
  int64_t max_us;
  double sum_us;
} lg_hist;

void lg_hist_add(lg_hist *h, int64_t us);
/* The value below which FRACTION (0..1) of the samples lie, as the upper
 * bound of its bucket (µs); 0 without samples. */
int64_t lg_hist_percentile(const lg_hist *h, double fraction);
void lg_hist_merge(lg_hist *into, const lg_hist *from);

#define LG_SEEN_WINDOW 1024 /* sequence numbers remembered for duplicates */

typedef struct {
  bool started;
  uint32_t highest;   /* extended (cycles << 16 | seq) */
  uint64_t seen[LG_SEEN_WINDOW / 64]; /* bit per extended number mod window */
  uint64_t received;  /* distinct packets */
  uint64_t duplicates, reordered;
  uint64_t too_old;   /* older than the window: neither counted nor dropped twice */
  /* RFC 3550 §6.4.1 interarrival jitter, over the round trip, µs */
  double jitter_us;
  bool has_transit;
  int64_t last_transit_us;
  lg_hist latency;
} lg_stream;

void lg_stream_init(lg_stream *s);
/* A packet came back: its sequence number, when it was sent and when it
 * arrived (µs on one clock). */
void lg_stream_received(lg_stream *s, uint16_t seq, int64_t sent_us, int64_t now_us);

/* What a set of calls did, summed. */
typedef struct {
  uint64_t calls, sent, received, lost, duplicates, reordered;
  double jitter_max_us, jitter_sum_us; /* over calls */
  lg_hist latency;
} lg_totals;

/* Adds one call: SENT packets went out, S says what came back.  A call that
 * got more distinct packets than it sent (cannot happen with a true echo)
 * counts no loss. */
void lg_totals_add(lg_totals *t, uint64_t sent, const lg_stream *s);
/* Loss in % of what was sent (0 when nothing was). */
double lg_totals_loss_percent(const lg_totals *t);
