/* Seams of gateway/browser_dialog.c for tests/unit/test_browser_dialog.c:
 * a dialog made without a live connection, and the requests it would send,
 * built but not sent.  Not for the daemon's other files. */
#pragma once

#include "gateway/browser_dialog.h"

/* As browser_dialog_new, on flow FLOW of EDGE (NULL: nothing can be sent,
 * sending gives -ENOTCONN); SECURE chooses WSS over WS. */
browser_dialog *browser_dialog_new_on(ws_edge *edge, uint64_t flow, bool secure, msg_t *invite,
                                      const char *advertised);
/* As browser_dialog_new_uac, but the INVITE is only built, not sent. */
int browser_dialog_new_uac_on(ws_edge *edge, uint64_t flow, bool secure,
                              const browser_invite_params *params, const char *advertised,
                              browser_dialog **ret);
/* UAC: the INVITE as rtcsipd built it (borrowed). */
msg_t *browser_dialog_sent_invite(const browser_dialog *d);

/* The requests as the public functions send them (NULL when they would
 * fail); the caller frees them with msg_destroy. */
msg_t *browser_dialog_make_ack(browser_dialog *d);
msg_t *browser_dialog_make_ack_non2xx(browser_dialog *d, msg_t *response);
msg_t *browser_dialog_make_cancel(browser_dialog *d);
/* Takes the next CSeq and remembers the branch, as browser_dialog_send_bye. */
msg_t *browser_dialog_make_bye(browser_dialog *d);
/* As browser_dialog_send_request, built but not sent: *ret the request
 * (CSeq taken, the branch remembered). */
int browser_dialog_make_request(browser_dialog *d, const char *method, const char *content_type,
                                const char *body, const char *extra, uint32_t *cseq, msg_t **ret);
/* The ACK take_response sends for a 2xx to rtcsipd's last re-INVITE (after
 * its final response). */
msg_t *browser_dialog_make_reinvite_ack(browser_dialog *d);
/* The response browser_dialog_reply_full sends (a 2xx to INVITE/UPDATE
 * takes the request's Contact as the remote target). */
msg_t *browser_dialog_make_reply(browser_dialog *d, msg_t *request, int status,
                                 const char *phrase, const char *sdp, const char *extra);
