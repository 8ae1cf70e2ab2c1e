/* RFC 4733 telephone-events (DTMF) in RTP: the digit <-> event code table,
 * the 4-byte event payload, whole event packets, and the end-of-event filter
 * that reports an event once despite its repeated end packets.  Pure
 * functions on caller buffers: no allocation, usable on the media path.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RFC4733_PAYLOAD_LEN 4
#define RFC4733_PACKET_LEN (12 + RFC4733_PAYLOAD_LEN) /* as written: no CSRC, no extension */
#define RFC4733_VOLUME 10                              /* -dBm0, what we send */

typedef struct {
  uint8_t event;     /* 0-9, * = 10, # = 11, A-D = 12-15 (DTMF); others exist */
  bool end;          /* the E bit */
  uint8_t volume;    /* 0..63 */
  uint16_t duration; /* timestamp units since the event's (segment's) timestamp */
} rfc4733_event;

typedef struct {
  uint8_t pt;        /* 0..127 */
  bool marker;
  uint16_t seq;
  uint32_t timestamp, ssrc;
} rfc4733_header;

/* '0'-'9', '*', '#', 'A'-'D' (or 'a'-'d') -> 0..15; anything else -EINVAL. */
int rfc4733_event_from_digit(char digit);
/* 0..15 -> the digit ('A'-'D' upper case); 0 for other events. */
char rfc4733_digit_from_event(unsigned event);

void rfc4733_encode(const rfc4733_event *ev, uint8_t out[RFC4733_PAYLOAD_LEN]);
/* 0, or -EINVAL when LEN < RFC4733_PAYLOAD_LEN. */
int rfc4733_decode(const uint8_t *payload, size_t len, rfc4733_event *ev);

/* Writes RFC4733_PACKET_LEN bytes (RTP version 2) into BUF; returns that length. */
size_t rfc4733_packet_write(uint8_t *buf, const rfc4733_header *h, const rfc4733_event *ev);
/* An RTP packet of LEN bytes from the network: skips CSRCs and a header
 * extension, honours padding.  Its timestamp and event; 0 or -EINVAL. */
int rfc4733_packet_parse(const uint8_t *buf, size_t len, uint32_t *timestamp, rfc4733_event *ev);

/* One receiving stream's memory of the last event reported (zero-initialise). */
typedef struct {
  bool have;
  uint8_t event;
  uint32_t timestamp;
} rfc4733_end_filter;

/* True for the first packet with the E bit of an event (its timestamp and
 * code); false for the repeated end packets and for packets without E. */
bool rfc4733_end_filter_feed(rfc4733_end_filter *f, uint32_t timestamp, const rfc4733_event *ev);
