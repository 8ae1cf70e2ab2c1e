/* The load generator's arithmetic (lg_report.h). */
#include "lg_report.h"

#include <math.h>
#include <string.h>

static unsigned hist_index(int64_t us)
{
  if (us < 0)
    us = 0;
  if (us < LG_HIST_LINEAR)
    return (unsigned)us;
  /* us >= 128 = 2^7: octave o >= 0 covers [2^(7+o), 2^(8+o)) in LG_HIST_SUB steps */
  unsigned bits = 63 - (unsigned)__builtin_clzll((unsigned long long)us); /* >= 7 */
  unsigned octave = bits - 7;
  if (octave >= LG_HIST_OCTAVES)
    return LG_HIST_BUCKETS; /* overflow */
  unsigned sub = (unsigned)((us >> (bits - 6)) & (LG_HIST_SUB - 1));
  return LG_HIST_LINEAR + octave * LG_HIST_SUB + sub;
}

/* The largest value that falls in bucket I. */
static int64_t bucket_upper(unsigned i)
{
  if (i < LG_HIST_LINEAR)
    return i;
  unsigned octave = (i - LG_HIST_LINEAR) / LG_HIST_SUB, sub = (i - LG_HIST_LINEAR) % LG_HIST_SUB;
  unsigned bits = octave + 7;
  int64_t step = (int64_t)1 << (bits - 6);
  return ((int64_t)1 << bits) + (int64_t)(sub + 1) * step - 1;
}

void lg_hist_add(lg_hist *h, int64_t us)
{
  unsigned i = hist_index(us);

  if (us > h->max_us)
    h->max_us = us;
  h->n++;
  h->sum_us += (double)(us < 0 ? 0 : us);
  if (i >= LG_HIST_BUCKETS)
    h->overflow++;
  else
    h->count[i]++;
}

int64_t lg_hist_percentile(const lg_hist *h, double fraction)
{
  if (!h->n)
    return 0;
  if (fraction < 0)
    fraction = 0;
  if (fraction > 1)
    fraction = 1;
  /* the rank of the sample: ceil(fraction * n), at least the first */
  uint64_t rank = (uint64_t)ceil(fraction * (double)h->n);
  if (rank < 1)
    rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
    seen += h->count[i];
    if (seen >= rank) {
      int64_t upper = bucket_upper(i);
      return upper < h->max_us ? upper : h->max_us;
    }
  }
  return h->max_us; /* in the overflow */
}

void lg_hist_merge(lg_hist *into, const lg_hist *from)
{
  for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
    into->count[i] += from->count[i];
  into->n += from->n;
  into->overflow += from->overflow;
  into->sum_us += from->sum_us;
  if (from->max_us > into->max_us)
    into->max_us = from->max_us;
}

void lg_stream_init(lg_stream *s)
{
  memset(s, 0, sizeof(*s));
}

static bool seen_test_set(lg_stream *s, uint32_t ext)
{
  unsigned bit = ext % LG_SEEN_WINDOW;
  uint64_t mask = (uint64_t)1 << (bit % 64);
  bool was = s->seen[bit / 64] & mask;
  s->seen[bit / 64] |= mask;
  return was;
}

static void seen_clear(lg_stream *s, uint32_t ext)
{
  unsigned bit = ext % LG_SEEN_WINDOW;
  s->seen[bit / 64] &= ~((uint64_t)1 << (bit % 64));
}

void lg_stream_received(lg_stream *s, uint16_t seq, int64_t sent_us, int64_t now_us)
{
  uint32_t ext;

  if (!s->started) {
    s->started = true;
    ext = (uint32_t)1 << 16 | seq; /* one cycle of room below the first */
    s->highest = ext;
    seen_test_set(s, ext);
  } else {
    /* the extended number nearest to the highest one seen */
    int16_t delta = (int16_t)(uint16_t)(seq - (uint16_t)s->highest);
    ext = (uint32_t)((int64_t)s->highest + delta);
    if (delta > 0) {
      /* forget what the window no longer covers */
      uint32_t from = s->highest + 1;
      if (ext - s->highest >= LG_SEEN_WINDOW)
        from = ext - LG_SEEN_WINDOW + 1;
      for (uint32_t e = from; e != ext; e++)
        seen_clear(s, e);
      seen_clear(s, ext);
      seen_test_set(s, ext);
      s->highest = ext;
    } else if ((uint32_t)(s->highest - ext) >= LG_SEEN_WINDOW) {
      s->too_old++;
      return;
    } else if (seen_test_set(s, ext)) {
      s->duplicates++;
      return;
    } else {
      s->reordered++;
    }
  }
  s->received++;

  int64_t rtt = now_us - sent_us;
  lg_hist_add(&s->latency, rtt);
  /* the transit is the round trip itself: both times on our clock */
  if (s->has_transit) {
    double d = fabs((double)(rtt - s->last_transit_us));
    s->jitter_us += (d - s->jitter_us) / 16.0;
  }
  s->has_transit = true;
  s->last_transit_us = rtt;
}

void lg_totals_add(lg_totals *t, uint64_t sent, const lg_stream *s)
{
  t->calls++;
  t->sent += sent;
  t->received += s->received;
  t->lost += s->received < sent ? sent - s->received : 0;
  t->duplicates += s->duplicates;
  t->reordered += s->reordered;
  t->jitter_sum_us += s->jitter_us;
  if (s->jitter_us > t->jitter_max_us)
    t->jitter_max_us = s->jitter_us;
  lg_hist_merge(&t->latency, &s->latency);
}

double lg_totals_loss_percent(const lg_totals *t)
{
  return t->sent ? 100.0 * (double)t->lost / (double)t->sent : 0.0;
}
