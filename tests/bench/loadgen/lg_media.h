/* The load generator's media: a pool of threads, each sending and checking
 * the RTP of its share of the calls.
 *
 * A call is handed over once its DTLS-SRTP is keyed, as a browser_media
 * (webrtc/browser_media.h: the browser's per-packet half, which the
 * generator shares with rtcsipd) on a connected socket of its own
 * (ice_agent_fastpath_open).  Its worker sends one packet every 20 ms, at a
 * phase of its own inside the 20 ms so that the calls of a worker do not
 * all send in one burst; the payload is prepared once (the codec's size,
 * no codec work); each packet carries its sending time in its first 8
 * payload bytes.  What comes back is classed by lg_report.h.  A worker
 * waits on its sockets, a 1 ms timer and its command queue with epoll.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "webrtc/browser_media.h"
#include "webrtc/udp_batch.h"
#include "lg_report.h"
#include "lg_sdp.h"

typedef struct lg_media lg_media;
typedef struct lg_call_media lg_call_media;

/* WORKERS threads (0: one per core).  0 or a negative errno. */
int lg_media_new(unsigned workers, lg_media **ret);
/* Stops the threads; every call must have been removed. */
void lg_media_free(lg_media *pool);

/* BM (ownership moves here), keyed and with its socket; PT the payload
 * type the answer gave the codec.  NULL on failure. */
lg_call_media *lg_call_media_new(browser_media *bm, lg_codec codec, int pt, uint32_t ssrc);
/* Frees it and its browser_media (after lg_media_remove). */
void lg_call_media_free(lg_call_media *cm);

/* Starts the call's media on the least loaded worker. */
void lg_media_add(lg_media *pool, lg_call_media *cm);
/* Stops sending (what is in flight still counts when it comes back). */
void lg_media_stop_sending(lg_call_media *cm);
/* Takes the call off its worker; when it returns, no thread touches it. */
void lg_media_remove(lg_media *pool, lg_call_media *cm);

/* After lg_media_remove: what was sent and what came back. */
uint64_t lg_call_media_sent(const lg_call_media *cm);
uint64_t lg_call_media_send_failed(const lg_call_media *cm);
const lg_stream *lg_call_media_stream(const lg_call_media *cm);
void lg_call_media_bm_stats(const lg_call_media *cm, browser_media_stats *out);

/* Running totals of every worker (for the progress line; relaxed). */
void lg_media_progress(lg_media *pool, uint64_t *sent, uint64_t *received);
