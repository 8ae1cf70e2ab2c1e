/* The media of one call as the call sees it: the browser's leg (ICE and DTLS
 * on the main loop, browser_leg.h) and the PBX's RTP socket joined by a
 * bridge on a media worker (media_engine.h).
 *
 * call_media_new() hands the leg's per-packet half and the socket to a
 * worker and keeps them fed: the SRTP keys when DTLS is done, the ICE pair
 * as a socket of the worker's own once ICE is connected (again after a
 * restart: call_media_ice_restart() gives the pair back to libnice first),
 * the datagrams libnice still reads, and back to the leg the DTLS datagrams
 * the worker reads.  Main loop only.
 */
#pragma once

#include "gateway/media_engine.h"
#include "webrtc/browser_leg.h"
#include "webrtc/rtp_socket.h"

typedef struct call_media call_media;

/* LEG and RTP (NULL: echo) are borrowed and must outlive the object; the
 * leg's media half is the object's from now on.  CB's on_dtls is the
 * object's own.  0 or a negative errno. */
int call_media_new(media_engine *e, browser_leg *leg, rtp_socket *rtp,
                   const media_bridge_settings *settings, const media_call_callbacks *cb,
                   void *user, call_media **ret);
/* Takes the media off its worker; the call's summary of it in *SUMMARY
 * (g_free) when not NULL.  NULL: no-op. */
void call_media_free(call_media *cm, char **summary);

/* For the setters of media_engine.h. */
media_call *call_media_call(call_media *cm);
/* Before ice_agent_restart(): libnice carries the pair until it is
 * connected again. */
void call_media_ice_restart(call_media *cm);

/* The summary of a call whose media never started: what LEG (NULL: none)
 * and RTP (NULL: none) counted (g_free). */
char *call_media_summary_unstarted(browser_leg *leg, rtp_socket *rtp);
