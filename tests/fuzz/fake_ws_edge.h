/* A stand-in for sip/ws_edge.c in the fuzz targets and their replay: the
 * functions of sip/ws_edge.h that the router, the calls and the dialogs use,
 * without libwebsockets or sockets.  A connection is opened, fed messages and
 * closed by the harness; what rtcsipd would send on it is handed to a hook
 * (and counted) instead of being written.
 *
 * Linked instead of sip/ws_edge.c: it defines every public function of
 * ws_edge.h, so the linker never takes ws_edge.o from the static library
 * (a function added there and not here makes the link fail loudly with a
 * duplicate symbol). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sip/ws_edge.h"

/* What rtcsipd sends on CONN (one WebSocket message). */
typedef void (*fake_ws_sent_fn)(void *user, ws_conn *conn, const char *data, size_t len);

ws_edge *fake_ws_edge_new(const ws_edge_callbacks *cb, void *user);
/* Closes (on_close) every connection still open, then frees the edge. */
void fake_ws_edge_free(ws_edge *edge);
void fake_ws_edge_set_sent_hook(ws_edge *edge, fake_ws_sent_fn fn, void *user);
/* Callbacks and their user pointer from now on (a new router per input). */
void fake_ws_edge_set_callbacks(ws_edge *edge, const ws_edge_callbacks *cb, void *user);

/* A new connection from IP (a literal, e.g. "192.0.2.1"), on wss:// when
 * SECURE; on_open is called. */
ws_conn *fake_ws_edge_open(ws_edge *edge, const char *ip, bool secure);
/* One WebSocket message from the browser on CONN, as ws_edge.c passes it
 * up: a CRLF keepalive is answered here, anything else goes to on_message.
 * Nothing is passed up once rtcsipd closed the connection (ws_conn_close). */
void fake_ws_edge_receive(ws_edge *edge, ws_conn *conn, const char *data, size_t len);
/* The connection is gone: on_close, then CONN is freed. */
void fake_ws_edge_close(ws_edge *edge, ws_conn *conn);

/* Whether rtcsipd closed CONN (ws_conn_close), and with what status. */
bool fake_ws_conn_closing(const ws_conn *conn, uint16_t *status);
unsigned fake_ws_conn_sent(const ws_conn *conn);
