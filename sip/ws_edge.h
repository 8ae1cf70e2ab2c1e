/* WebSocket edge: the browser-facing listeners (libwebsockets on the GLib loop).
 *
 * One listener per configured address (ws:// and/or wss://) serves, on the same
 * port: WebSocket with the subprotocol "sip" (RFC 7118, one SIP message per
 * WebSocket message), static files from a directory, and GET /healthz.
 * An upgrade that does not ask for "sip" is refused with an HTTP 400.
 * A message over the size limit closes the connection with 1009.
 * A CRLF keepalive ("\r\n\r\n") is answered with "\r\n" (RFC 5626 4.4.1)
 * and not passed up.  Each connection is one SIP flow, named by an id that
 * is never reused while the process runs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

typedef struct ws_edge ws_edge;
typedef struct ws_conn ws_conn;

typedef struct {
  /* a WebSocket connection with subprotocol "sip" is open */
  void (*on_open)(void *user, ws_conn *conn);
  /* one complete WebSocket message (text or binary), not a CRLF keepalive */
  void (*on_message)(void *user, ws_conn *conn, const char *data, size_t len);
  /* the connection is gone; CONN is freed when this returns */
  void (*on_close)(void *user, ws_conn *conn);
  /* body of GET /healthz (append to OUT); may be NULL */
  void (*on_health)(void *user, GString *out);
} ws_edge_callbacks;

typedef struct {
  const char *ws_host;   /* NULL or "" : no ws:// listener */
  uint16_t ws_port;
  const char *wss_host;  /* NULL or "" : no wss:// listener */
  uint16_t wss_port;
  /* certificate for wss://: either files ... */
  const char *cert_file;
  const char *key_file;
  /* ... or PEM text in memory (used for the self-signed development certificate) */
  const char *cert_pem;
  const char *key_pem;
  const char *static_dir;          /* NULL: no static files */
  size_t max_message_size;         /* bytes */
  unsigned max_connections_per_ip; /* 0: unlimited */
} ws_edge_settings;

/* Creates the listeners on the default GLib main context.  Returns 0 or a
 * negative errno (and logs what failed: address in use, bad certificate). */
int ws_edge_new(const ws_edge_settings *settings, const ws_edge_callbacks *callbacks,
                void *user, ws_edge **ret);
/* Closes the listeners and every connection still open, and calls no
 * callback (the user may be gone already).  Those connections are cut
 * without a close handshake: for a clean 1001 "going away", call
 * ws_edge_close_all() first and let the loop run. */
void ws_edge_free(ws_edge *edge);

/* Limits that change at run time (SIGHUP). */
void ws_edge_set_limits(ws_edge *edge, size_t max_message_size, unsigned max_connections_per_ip);
/* Stops accepting new connections; existing ones stay open. */
void ws_edge_stop_accepting(ws_edge *edge);
/* Starts a clean close (1001) of every open connection. */
void ws_edge_close_all(ws_edge *edge);
unsigned ws_edge_connection_count(const ws_edge *edge);

/* The connection with this id, or NULL when it is gone. */
ws_conn *ws_edge_find(ws_edge *edge, uint64_t id);

uint64_t ws_conn_id(const ws_conn *conn);
const char *ws_conn_name(const ws_conn *conn);  /* "ws-12", for logs */
const char *ws_conn_peer(const ws_conn *conn);  /* "192.0.2.1:50000" or "[2001:db8::1]:50000" */
const char *ws_conn_ip(const ws_conn *conn);    /* "192.0.2.1" or "2001:db8::1" */
/* The PBX accepted a registration on CONN (its credentials): from now on it
 * no longer counts toward its address's max_connections_per_ip, so that an
 * office of browsers behind one NAT address is not refused; the limit holds
 * for connections nobody has vouched for.  Idempotent. */
void ws_conn_set_registered(ws_conn *conn);
bool ws_conn_registered(const ws_conn *conn);
bool ws_conn_is_secure(const ws_conn *conn);    /* came in on wss:// */
/* Queues one text message; 0 or a negative errno (-ENOTCONN when closing). */
int ws_conn_send(ws_conn *conn, const char *data, size_t len);
/* Closes with a WebSocket status (1002 protocol error, 1009 too big, ...). */
void ws_conn_close(ws_conn *conn, uint16_t status, const char *reason);
