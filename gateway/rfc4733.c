/* RFC 4733 telephone-events: see rfc4733.h. */
#include "gateway/rfc4733.h"

#include <errno.h>

int rfc4733_event_from_digit(char digit)
{
  if (digit >= '0' && digit <= '9')
    return digit - '0';
  if (digit >= 'A' && digit <= 'D')
    return 12 + (digit - 'A');
  if (digit >= 'a' && digit <= 'd')
    return 12 + (digit - 'a');
  if (digit == '*')
    return 10;
  if (digit == '#')
    return 11;
  return -EINVAL;
}

char rfc4733_digit_from_event(unsigned event)
{
  static const char digits[16] = "0123456789*#ABCD";

  return event < 16 ? digits[event] : 0;
}

void rfc4733_encode(const rfc4733_event *ev, uint8_t out[RFC4733_PAYLOAD_LEN])
{
  out[0] = ev->event;
  out[1] = (uint8_t)((ev->end ? 0x80 : 0) | (ev->volume & 0x3f)); /* R bit 0 */
  out[2] = (uint8_t)(ev->duration >> 8);
  out[3] = (uint8_t)ev->duration;
}

int rfc4733_decode(const uint8_t *payload, size_t len, rfc4733_event *ev)
{
  if (len < RFC4733_PAYLOAD_LEN)
    return -EINVAL;
  ev->event = payload[0];
  ev->end = (payload[1] & 0x80) != 0;
  ev->volume = payload[1] & 0x3f;
  ev->duration = (uint16_t)(payload[2] << 8 | payload[3]);
  return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

size_t rfc4733_packet_write(uint8_t *buf, const rfc4733_header *h, const rfc4733_event *ev)
{
  buf[0] = 0x80;
  buf[1] = (uint8_t)((h->marker ? 0x80 : 0) | (h->pt & 0x7f));
  buf[2] = (uint8_t)(h->seq >> 8);
  buf[3] = (uint8_t)h->seq;
  put32(buf + 4, h->timestamp);
  put32(buf + 8, h->ssrc);
  rfc4733_encode(ev, buf + 12);
  return RFC4733_PACKET_LEN;
}

int rfc4733_packet_parse(const uint8_t *buf, size_t len, uint32_t *timestamp, rfc4733_event *ev)
{
  if (len < 12 || (buf[0] >> 6) != 2)
    return -EINVAL;
  size_t off = 12 + 4u * (buf[0] & 0x0f);
  if (buf[0] & 0x20) { /* padding: the last byte says how much */
    if (buf[len - 1] == 0 || buf[len - 1] > len)
      return -EINVAL;
    len -= buf[len - 1];
  }
  if (buf[0] & 0x10) { /* header extension: 4 bytes, then LENGTH words */
    if (off + 4 > len)
      return -EINVAL;
    off += 4 + 4u * (size_t)(buf[off + 2] << 8 | buf[off + 3]);
  }
  if (off > len)
    return -EINVAL;
  *timestamp = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
  return rfc4733_decode(buf + off, len - off, ev);
}

bool rfc4733_end_filter_feed(rfc4733_end_filter *f, uint32_t timestamp, const rfc4733_event *ev)
{
  if (!ev->end)
    return false;
  if (f->have && f->timestamp == timestamp && f->event == ev->event)
    return false;
  f->have = true;
  f->timestamp = timestamp;
  f->event = ev->event;
  return true;
}
