/* Unit tests: RFC 4733 telephone-events (gateway/rfc4733.c): the digit
 * table, the payload and packet formats, the end-of-event filter. */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "gateway/rfc4733.h"

static void test_digits(void)
{
  static const char digits[] = "0123456789*#ABCD";

  for (int i = 0; i < 16; i++) {
    g_assert_cmpint(rfc4733_event_from_digit(digits[i]), ==, i);
    g_assert_cmpint(rfc4733_digit_from_event((unsigned)i), ==, digits[i]);
  }
  g_assert_cmpint(rfc4733_event_from_digit('a'), ==, 12);
  g_assert_cmpint(rfc4733_event_from_digit('d'), ==, 15);
  g_assert_cmpint(rfc4733_event_from_digit('E'), ==, -EINVAL);
  g_assert_cmpint(rfc4733_event_from_digit('e'), ==, -EINVAL);
  g_assert_cmpint(rfc4733_event_from_digit(' '), ==, -EINVAL);
  g_assert_cmpint(rfc4733_event_from_digit('\0'), ==, -EINVAL);
  g_assert_cmpint(rfc4733_digit_from_event(16), ==, 0); /* flash: not DTMF */
  g_assert_cmpint(rfc4733_digit_from_event(255), ==, 0);
}

static void test_payload(void)
{
  uint8_t p[4];
  rfc4733_event ev = {.event = 11, .end = true, .volume = 10, .duration = 800}, back;

  rfc4733_encode(&ev, p);
  static const uint8_t want[4] = {11, 0x80 | 10, 0x03, 0x20};
  g_assert_cmpmem(p, 4, want, 4);
  g_assert_cmpint(rfc4733_decode(p, 4, &back), ==, 0);
  g_assert_cmpuint(back.event, ==, 11);
  g_assert_true(back.end);
  g_assert_cmpuint(back.volume, ==, 10);
  g_assert_cmpuint(back.duration, ==, 800);
  g_assert_cmpint(rfc4733_decode(p, 3, &back), ==, -EINVAL);

  /* R bit ignored, volume is 6 bits, duration 16 */
  static const uint8_t odd[4] = {5, 0x40 | 63, 0xff, 0xff};
  g_assert_cmpint(rfc4733_decode(odd, 4, &back), ==, 0);
  g_assert_false(back.end);
  g_assert_cmpuint(back.volume, ==, 63);
  g_assert_cmpuint(back.duration, ==, 0xffff);
}

static void test_packet(void)
{
  uint8_t buf[64];
  rfc4733_header h = {.pt = 101, .marker = true, .seq = 0xfffe, .timestamp = 0x12345678, .ssrc = 0xdeadbeef};
  rfc4733_event ev = {.event = 5, .end = false, .volume = 10, .duration = 160}, back;
  uint32_t ts;

  g_assert_cmpuint(rfc4733_packet_write(buf, &h, &ev), ==, RFC4733_PACKET_LEN);
  static const uint8_t want[16] = {0x80, 0x80 | 101, 0xff, 0xfe, 0x12, 0x34, 0x56, 0x78,
                                   0xde, 0xad, 0xbe, 0xef, 5, 10, 0, 160};
  g_assert_cmpmem(buf, 16, want, 16);
  g_assert_cmpint(rfc4733_packet_parse(buf, 16, &ts, &back), ==, 0);
  g_assert_cmphex(ts, ==, 0x12345678);
  g_assert_cmpuint(back.event, ==, 5);
  g_assert_cmpuint(back.duration, ==, 160);
  h.marker = false;
  rfc4733_packet_write(buf, &h, &ev);
  g_assert_cmphex(buf[1], ==, 101);

  /* as a browser sends it: one CSRC, a one-byte header extension, padding */
  uint8_t x[12 + 4 + 8 + 4 + 4] = {0xb1, 126, 0, 1, 0, 0, 0x10, 0, 1, 2, 3, 4};
  memcpy(x + 12, "\x11\x22\x33\x44", 4);                         /* CSRC */
  memcpy(x + 16, "\xbe\xde\x00\x01\x10\x55\x00\x00", 8);         /* extension, 1 word */
  memcpy(x + 24, "\x0b\x8a\x01\xe0", 4);                          /* #, E, 10, 480 */
  memcpy(x + 28, "\x00\x00\x00\x04", 4);                          /* 4 bytes of padding */
  g_assert_cmpint(rfc4733_packet_parse(x, sizeof x, &ts, &back), ==, 0);
  g_assert_cmphex(ts, ==, 0x1000);
  g_assert_cmpuint(back.event, ==, 11);
  g_assert_true(back.end);
  g_assert_cmpuint(back.duration, ==, 480);

  /* malformed: short, wrong version, extension or CSRCs past the end, bad padding */
  g_assert_cmpint(rfc4733_packet_parse(x, 11, &ts, &back), ==, -EINVAL);
  g_assert_cmpint(rfc4733_packet_parse(x, 20, &ts, &back), ==, -EINVAL);
  x[0] = 0x40;
  g_assert_cmpint(rfc4733_packet_parse(x, sizeof x, &ts, &back), ==, -EINVAL);
  x[0] = 0x8f;
  g_assert_cmpint(rfc4733_packet_parse(x, sizeof x, &ts, &back), ==, -EINVAL);
  x[0] = 0x90;
  x[15] = 0xff; /* extension length through x[12..15] */
  x[14] = 0xff;
  g_assert_cmpint(rfc4733_packet_parse(x, 16, &ts, &back), ==, -EINVAL);
  x[0] = 0xa0;
  x[sizeof x - 1] = 0;
  g_assert_cmpint(rfc4733_packet_parse(x, sizeof x, &ts, &back), ==, -EINVAL);
  x[sizeof x - 1] = 200;
  g_assert_cmpint(rfc4733_packet_parse(x, sizeof x, &ts, &back), ==, -EINVAL);
  x[sizeof x - 1] = 17; /* leaves 15 bytes: no payload */
  g_assert_cmpint(rfc4733_packet_parse(x, sizeof x, &ts, &back), ==, -EINVAL);
}

static void test_end_filter(void)
{
  rfc4733_end_filter f = {0};
  rfc4733_event ev = {.event = 1, .volume = 10, .duration = 160};

  /* an event: 3 packets, then 3 end packets: reported once */
  for (int i = 0; i < 3; i++)
    g_assert_false(rfc4733_end_filter_feed(&f, 1000, &ev));
  ev.end = true;
  g_assert_true(rfc4733_end_filter_feed(&f, 1000, &ev));
  g_assert_false(rfc4733_end_filter_feed(&f, 1000, &ev));
  g_assert_false(rfc4733_end_filter_feed(&f, 1000, &ev));
  /* the same digit again later: a new event */
  g_assert_true(rfc4733_end_filter_feed(&f, 3000, &ev));
  g_assert_false(rfc4733_end_filter_feed(&f, 3000, &ev));
  /* another digit at the same timestamp (a new stream): reported */
  ev.event = 2;
  g_assert_true(rfc4733_end_filter_feed(&f, 3000, &ev));
  /* a late end packet of the first event after another one ended: reported
   * again (the filter remembers one event) */
  ev.event = 1;
  g_assert_true(rfc4733_end_filter_feed(&f, 1000, &ev));
  /* the very first event may have timestamp 0 */
  rfc4733_end_filter z = {0};
  ev.event = 0;
  g_assert_true(rfc4733_end_filter_feed(&z, 0, &ev));
  g_assert_false(rfc4733_end_filter_feed(&z, 0, &ev));
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/rfc4733/digits", test_digits);
  g_test_add_func("/rfc4733/payload", test_payload);
  g_test_add_func("/rfc4733/packet", test_packet);
  g_test_add_func("/rfc4733/end-filter", test_end_filter);
  return g_test_run();
}
