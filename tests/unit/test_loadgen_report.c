/* Unit tests: the load generator's arithmetic (tests/bench/loadgen/lg_report.c)
 * on synthetic streams: loss, reordering, duplicates, sequence wrap, latency
 * percentiles, jitter, and the totals over calls. */
#include <math.h>
#include <string.h>
#include <glib.h>

#include "lg_report.h"

static lg_stream *stream_new(void)
{
  lg_stream *s = g_new(lg_stream, 1);
  lg_stream_init(s);
  return s;
}

/* Packets SEQS (relative to BASE), each sent at 20 ms * its number and
 * back RTT µs later. */
static void feed(lg_stream *s, uint16_t base, const int *seqs, size_t n, int64_t rtt)
{
  for (size_t i = 0; i < n; i++) {
    int64_t sent = (int64_t)seqs[i] * 20000;
    lg_stream_received(s, (uint16_t)(base + seqs[i]), sent, sent + rtt);
  }
}

static void test_in_order_no_loss(void)
{
  g_autofree lg_stream *s = stream_new();
  lg_totals t = { 0 };

  for (int i = 0; i < 500; i++)
    lg_stream_received(s, (uint16_t)(1000 + i), i * 20000, i * 20000 + 300);
  g_assert_cmpuint(s->received, ==, 500);
  g_assert_cmpuint(s->duplicates, ==, 0);
  g_assert_cmpuint(s->reordered, ==, 0);
  lg_totals_add(&t, 500, s);
  g_assert_cmpuint(t.lost, ==, 0);
  g_assert_cmpfloat(lg_totals_loss_percent(&t), ==, 0.0);
  /* a constant round trip: no jitter, p50 = p99 = max = 300 */
  g_assert_cmpint(lg_hist_percentile(&s->latency, 0.5), ==, 300);
  g_assert_cmpint(lg_hist_percentile(&s->latency, 0.99), ==, 300);
  g_assert_cmpint(s->latency.max_us, ==, 300);
  g_assert_cmpfloat(s->jitter_us, ==, 0.0);
}

static void test_loss(void)
{
  g_autofree lg_stream *s = stream_new();
  lg_totals t = { 0 };
  int seqs[100];
  size_t n = 0;

  /* 100 sent, 7 lost: 3 in the middle, 4 at the end (never a higher one) */
  for (int i = 0; i < 100; i++)
    if (i != 10 && i != 11 && i != 50 && i < 96)
      seqs[n++] = i;
  feed(s, 7, seqs, n, 500);
  g_assert_cmpuint(s->received, ==, 93);
  lg_totals_add(&t, 100, s);
  g_assert_cmpuint(t.lost, ==, 7);
  g_assert_cmpfloat(fabs(lg_totals_loss_percent(&t) - 7.0), <, 1e-9);
  g_assert_cmpuint(s->reordered, ==, 0);
}

static void test_reorder_and_duplicates(void)
{
  g_autofree lg_stream *s = stream_new();
  /* 0 1 3 2 4 4 5 1 6: 2 came late (reordered), 4 twice and 1 again (duplicates) */
  static const int seqs[] = { 0, 1, 3, 2, 4, 4, 5, 1, 6 };
  lg_totals t = { 0 };

  feed(s, 100, seqs, G_N_ELEMENTS(seqs), 1000);
  g_assert_cmpuint(s->received, ==, 7);
  g_assert_cmpuint(s->reordered, ==, 1);
  g_assert_cmpuint(s->duplicates, ==, 2);
  lg_totals_add(&t, 7, s);
  g_assert_cmpuint(t.lost, ==, 0);
  g_assert_cmpuint(t.duplicates, ==, 2);
  g_assert_cmpuint(t.reordered, ==, 1);
}

static void test_wrap(void)
{
  g_autofree lg_stream *s = stream_new();

  /* across 65535 -> 0, with a late packet from before the wrap */
  static const int seqs[] = { 0, 1, 2, 4, 5, 3, 6, 7, 8, 9 };
  feed(s, 65530, seqs, G_N_ELEMENTS(seqs), 200);
  g_assert_cmpuint(s->received, ==, 10);
  g_assert_cmpuint(s->reordered, ==, 1);
  g_assert_cmpuint(s->duplicates, ==, 0);
  /* 65530 + 9 = 3 after the wrap: the highest is one cycle up */
  g_assert_cmpuint(s->highest & 0xffff, ==, 3);
  g_assert_cmpuint(s->highest >> 16, ==, 2);
  /* a duplicate from before the wrap is still known */
  lg_stream_received(s, 65531, 0, 200);
  g_assert_cmpuint(s->duplicates, ==, 1);
}

static void test_window(void)
{
  g_autofree lg_stream *s = stream_new();

  /* a jump of more than the window: what is older is neither a duplicate
   * nor counted again */
  lg_stream_received(s, 10, 0, 100);
  lg_stream_received(s, 10 + LG_SEEN_WINDOW + 5, 0, 100);
  lg_stream_received(s, 10, 0, 100);
  g_assert_cmpuint(s->received, ==, 2);
  g_assert_cmpuint(s->too_old, ==, 1);
  g_assert_cmpuint(s->duplicates, ==, 0);
  /* a number inside the window after the jump is new (reordered), once */
  lg_stream_received(s, 10 + LG_SEEN_WINDOW, 0, 100);
  lg_stream_received(s, 10 + LG_SEEN_WINDOW, 0, 100);
  g_assert_cmpuint(s->reordered, ==, 1);
  g_assert_cmpuint(s->duplicates, ==, 1);
}

static void test_percentiles(void)
{
  lg_hist h;

  memset(&h, 0, sizeof(h));
  g_assert_cmpint(lg_hist_percentile(&h, 0.5), ==, 0);
  /* 1..1000 µs: p50 ~ 500, p99 ~ 990, within the bucket width (1/64) */
  for (int i = 1; i <= 1000; i++)
    lg_hist_add(&h, i);
  int64_t p50 = lg_hist_percentile(&h, 0.5), p99 = lg_hist_percentile(&h, 0.99);
  g_assert_cmpint(p50, >=, 500);
  g_assert_cmpint(p50, <=, 500 + 500 / 64 + 1);
  g_assert_cmpint(p99, >=, 990);
  g_assert_cmpint(p99, <=, 1000);
  g_assert_cmpint(lg_hist_percentile(&h, 1.0), ==, 1000);
  g_assert_cmpint(h.max_us, ==, 1000);
  g_assert_cmpfloat(fabs(h.sum_us / (double)h.n - 500.5), <, 1e-9);
  /* exact below 128 µs */
  memset(&h, 0, sizeof(h));
  for (int i = 0; i < 99; i++)
    lg_hist_add(&h, 40);
  lg_hist_add(&h, 5000000); /* one 5 s outlier */
  g_assert_cmpint(lg_hist_percentile(&h, 0.5), ==, 40);
  g_assert_cmpint(lg_hist_percentile(&h, 0.99), ==, 40);
  g_assert_cmpint(lg_hist_percentile(&h, 1.0), ==, 5000000);
  /* merging adds the counts */
  lg_hist other;
  memset(&other, 0, sizeof(other));
  for (int i = 0; i < 100; i++)
    lg_hist_add(&other, 100);
  lg_hist_merge(&h, &other);
  g_assert_cmpuint(h.n, ==, 200);
  g_assert_cmpint(lg_hist_percentile(&h, 0.75), ==, 100);
  g_assert_cmpint(h.max_us, ==, 5000000);
}

static void test_jitter(void)
{
  g_autofree lg_stream *s = stream_new();

  /* round trips alternate 1000 and 3000 µs: |D| = 2000 each time, and the
   * RFC 3550 estimate J += (|D| - J) / 16 converges on 2000 */
  for (int i = 0; i < 400; i++)
    lg_stream_received(s, (uint16_t)i, i * 20000, i * 20000 + (i % 2 ? 3000 : 1000));
  g_assert_cmpfloat(fabs(s->jitter_us - 2000.0), <, 1.0);
  /* the first steps follow the formula exactly */
  g_autofree lg_stream *t = stream_new();
  lg_stream_received(t, 1, 0, 1000);
  g_assert_cmpfloat(t->jitter_us, ==, 0.0);
  lg_stream_received(t, 2, 20000, 23000);
  g_assert_cmpfloat(t->jitter_us, ==, 2000.0 / 16.0);
}

static void test_totals(void)
{
  g_autofree lg_stream *a = stream_new();
  g_autofree lg_stream *b = stream_new();
  lg_totals t = { 0 };

  for (int i = 0; i < 50; i++)
    lg_stream_received(a, (uint16_t)i, 0, 100);
  for (int i = 0; i < 40; i++)
    lg_stream_received(b, (uint16_t)i, 0, 300);
  lg_totals_add(&t, 50, a);
  lg_totals_add(&t, 50, b); /* 10 lost */
  g_assert_cmpuint(t.calls, ==, 2);
  g_assert_cmpuint(t.sent, ==, 100);
  g_assert_cmpuint(t.received, ==, 90);
  g_assert_cmpuint(t.lost, ==, 10);
  g_assert_cmpfloat(fabs(lg_totals_loss_percent(&t) - 10.0), <, 1e-9);
  g_assert_cmpuint(t.latency.n, ==, 90);
  g_assert_cmpint(lg_hist_percentile(&t.latency, 0.5), ==, 100);
  g_assert_cmpint(lg_hist_percentile(&t.latency, 0.99), >=, 300);
  /* more back than sent (a broken echo) is not negative loss */
  lg_totals u = { 0 };
  lg_totals_add(&u, 10, a);
  g_assert_cmpuint(u.lost, ==, 0);
  lg_totals z = { 0 };
  g_assert_cmpfloat(lg_totals_loss_percent(&z), ==, 0.0);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/loadgen/in-order", test_in_order_no_loss);
  g_test_add_func("/loadgen/loss", test_loss);
  g_test_add_func("/loadgen/reorder-duplicates", test_reorder_and_duplicates);
  g_test_add_func("/loadgen/wrap", test_wrap);
  g_test_add_func("/loadgen/window", test_window);
  g_test_add_func("/loadgen/percentiles", test_percentiles);
  g_test_add_func("/loadgen/jitter", test_jitter);
  g_test_add_func("/loadgen/totals", test_totals);
  return g_test_run();
}
