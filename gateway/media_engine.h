/* The media engine: the media of every call on a pool of worker threads.
 *
 * Each worker is a thread with its own epoll set.  A call's media (its
 * bridge, the browser's per-packet half, the PBX's RTP socket) lives on one
 * worker, picked when the call's media starts (the one with the fewest
 * calls); the worker waits on the call's sockets with epoll, whose cost does
 * not grow with the number of idle sockets, reads them in batches
 * (recvmmsg), and does SRTP, the payload-type rewrite and the send without
 * allocating, logging or taking a lock.  It also runs the bridges' clock:
 * generated DTMF every 20 ms and the media timeout.
 *
 * Signalling stays on the main loop.  What crosses between the two is this
 * set of messages, in order, per call:
 *
 *   main -> worker (media_call_*)        worker -> main (media_call_callbacks)
 *   ADD     the call's media joins        TIMEOUT  no packet for timeout_ms
 *   REMOVE  it leaves (the caller waits)  DTMF     a telephone-event ended
 *   PBX_REMOTE / PBX_CLEAR  SDP address   DTLS     a DTLS datagram from the
 *   PT_MAP, DTMF_SETTINGS, FORWARD_DTMF,           browser's pair (alerts,
 *   SENDING                 SDP & hold             close_notify)
 *                                         SILENT   nothing at all from the
 *                                                  browser for 10 s since its
 *                                                  keys: consent lost
 *   SEND_DTMF (the caller waits: result)
 *   SRTP    the keys are in (SRTP moves)
 *   SOCKET  the browser's pair as a socket of its own (ice_agent_fastpath_open)
 *   DATAGRAM  a datagram libnice read (a relayed pair, an ICE restart)
 *
 * The objects a message hands over belong to the worker from then on, and
 * back to the caller after REMOVE.  Events for a call that has been removed
 * are dropped.  Every function here is for the main loop's thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/media_bridge.h"
#include "webrtc/browser_media.h"
#include "webrtc/rtp_socket.h"
#include "webrtc/srtp.h"

typedef struct media_engine media_engine;
typedef struct media_call media_call;

typedef struct {
  void (*on_timeout)(void *user);
  void (*on_dtmf)(void *user, bool from_browser, char digit, unsigned duration_ms);
  void (*on_dtls)(void *user, const uint8_t *data, size_t len);
  /* Keyed, and no datagram (STUN, SRTP, SRTCP) from the browser for
   * MEDIA_BROWSER_SILENCE_MS: its side is gone (RFC 7675: consent lost;
   * PBX media alone does not keep a call up).  Once. */
  void (*on_browser_silent)(void *user);
} media_call_callbacks;

#define MEDIA_BROWSER_SILENCE_MS 10000

typedef struct {
  browser_media_stats browser;
  rtp_socket_stats pbx;
  bool has_pbx;
  media_bridge_stats bridge;
} media_call_stats;

/* N_WORKERS 0: one per core (at most 64).  0, -EINVAL, or a negative errno
 * (epoll, eventfd, threads). */
int media_engine_new(unsigned n_workers, media_engine **ret);
/* Every call must have been removed.  NULL: no-op. */
void media_engine_free(media_engine *e);
unsigned media_engine_workers(const media_engine *e);
/* Calls per worker (N entries), for the operator. */
void media_engine_load(const media_engine *e, unsigned *calls, unsigned n);

/* ADD: a call's media onto a worker.  BM and RTP (NULL: echo, the browser's
 * packets are reflected) are lent to the worker until media_call_free; the
 * caller no longer touches their media side (RTP's fd sources are removed
 * here).  SETTINGS as for media_bridge_new (external_clock and on_dtls are
 * the engine's).  0, -EINVAL, -ENOMEM. */
int media_call_new(media_engine *e, browser_media *bm, rtp_socket *rtp,
                   const media_bridge_settings *settings, const media_call_callbacks *cb,
                   void *user, media_call **ret);
/* REMOVE: waits until the worker has let go of the call, copies the final
 * counters into FINAL (may be NULL) and frees MC; BM and RTP are the
 * caller's again.  No callback for MC comes after it.  NULL: no-op. */
void media_call_free(media_call *mc, media_call_stats *final);

/* As media_bridge_set_pt_map / _set_dtmf (the checks are made here: 0 or
 * -EINVAL), _forward_dtmf, _set_sending, rtp_socket_set_remote (0 or
 * -EINVAL for an address that is not numeric) / _clear_remote. */
int media_call_set_pt_map(media_call *mc, const media_bridge_pt_pair *pairs, size_t n);
int media_call_set_dtmf(media_call *mc, const media_bridge_dtmf_settings *s);
void media_call_forward_dtmf(media_call *mc, bool from_browser, bool forward);
void media_call_set_sending(media_call *mc, bool to_pbx, bool sending);
int media_call_set_pbx_remote(media_call *mc, const char *address, uint16_t rtp_port, uint16_t rtcp_port);
void media_call_clear_pbx_remote(media_call *mc);
/* As media_bridge_send_dtmf; waits for the worker's answer. */
int media_call_send_dtmf(media_call *mc, bool to_pbx, char digit, unsigned duration_ms);

/* SRTP's ownership moves to the worker. */
void media_call_set_srtp(media_call *mc, srtp_leg *srtp);
/* FD (ownership moves; -1: the worker closes the one it has and libnice
 * carries the packets again, e.g. before an ICE restart) and our ICE
 * credentials, as browser_media_set_socket. */
void media_call_set_socket(media_call *mc, int fd, const char *ufrag, const char *pwd);
/* Media path (the fallback): a datagram libnice read, copied to the worker. */
void media_call_datagram(media_call *mc, const uint8_t *data, size_t len);
