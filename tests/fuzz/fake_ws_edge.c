/* A stand-in for sip/ws_edge.c: see fake_ws_edge.h. */
#include "tests/fuzz/fake_ws_edge.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

struct ws_conn {
  ws_edge *edge;
  uint64_t id;
  char name[32];
  char ip[64];
  char peer[80];
  bool secure;
  bool registered;
  bool closing;
  uint16_t close_status;
  unsigned sent;
};

struct ws_edge {
  ws_edge_callbacks cb;
  void *user;
  fake_ws_sent_fn sent_fn;
  void *sent_user;
  uint64_t next_id;
  GHashTable *conns; /* &conn->id -> ws_conn */
  bool freeing;
};

ws_edge *fake_ws_edge_new(const ws_edge_callbacks *cb, void *user)
{
  ws_edge *edge = g_new0(ws_edge, 1);

  if (cb)
    edge->cb = *cb;
  edge->user = user;
  edge->conns = g_hash_table_new(g_int64_hash, g_int64_equal);
  return edge;
}

void fake_ws_edge_set_callbacks(ws_edge *edge, const ws_edge_callbacks *cb, void *user)
{
  edge->cb = *cb;
  edge->user = user;
}

void fake_ws_edge_set_sent_hook(ws_edge *edge, fake_ws_sent_fn fn, void *user)
{
  edge->sent_fn = fn;
  edge->sent_user = user;
}

ws_conn *fake_ws_edge_open(ws_edge *edge, const char *ip, bool secure)
{
  ws_conn *c = g_new0(ws_conn, 1);

  c->edge = edge;
  c->id = ++edge->next_id;
  c->secure = secure;
  g_snprintf(c->name, sizeof c->name, "ws-%" G_GUINT64_FORMAT, c->id);
  g_strlcpy(c->ip, ip, sizeof c->ip);
  g_snprintf(c->peer, sizeof c->peer, strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip,
             (unsigned)(40000 + c->id % 20000));
  g_hash_table_insert(edge->conns, &c->id, c);
  if (edge->cb.on_open)
    edge->cb.on_open(edge->user, c);
  return c;
}

void fake_ws_edge_receive(ws_edge *edge, ws_conn *conn, const char *data, size_t len)
{
  if (conn->closing)
    return;
  if (len == 4 && memcmp(data, "\r\n\r\n", 4) == 0)
    ws_conn_send(conn, "\r\n", 2);
  else if (edge->cb.on_message)
    edge->cb.on_message(edge->user, conn, data, len);
}

void fake_ws_edge_close(ws_edge *edge, ws_conn *conn)
{
  g_hash_table_remove(edge->conns, &conn->id);
  conn->closing = true; /* sends from on_close: -ENOTCONN, as in ws_edge.c */
  if (!edge->freeing && edge->cb.on_close)
    edge->cb.on_close(edge->user, conn);
  g_free(conn);
}

void fake_ws_edge_free(ws_edge *edge)
{
  GHashTableIter it;
  gpointer value;

  if (!edge)
    return;
  for (;;) {
    g_hash_table_iter_init(&it, edge->conns);
    if (!g_hash_table_iter_next(&it, NULL, &value))
      break;
    fake_ws_edge_close(edge, value);
  }
  g_hash_table_destroy(edge->conns);
  g_free(edge);
}

bool fake_ws_conn_closing(const ws_conn *conn, uint16_t *status)
{
  if (status)
    *status = conn->close_status;
  return conn->closing;
}

unsigned fake_ws_conn_sent(const ws_conn *conn)
{
  return conn->sent;
}

/* ---- sip/ws_edge.h ---- */

int ws_edge_new(const ws_edge_settings *settings, const ws_edge_callbacks *callbacks,
                void *user, ws_edge **ret)
{
  *ret = fake_ws_edge_new(callbacks, user);
  return 0;
}

void ws_edge_free(ws_edge *edge)
{
  if (edge)
    edge->freeing = true;
  fake_ws_edge_free(edge);
}

void ws_edge_set_limits(ws_edge *edge, size_t max_message_size, unsigned max_connections_per_ip)
{
}

void ws_edge_stop_accepting(ws_edge *edge)
{
}

void ws_edge_close_all(ws_edge *edge)
{
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init(&it, edge->conns);
  while (g_hash_table_iter_next(&it, NULL, &value))
    ws_conn_close(value, 1001, "going away");
}

unsigned ws_edge_connection_count(const ws_edge *edge)
{
  return g_hash_table_size(edge->conns);
}

ws_conn *ws_edge_find(ws_edge *edge, uint64_t id)
{
  return g_hash_table_lookup(edge->conns, &id);
}

uint64_t ws_conn_id(const ws_conn *conn)
{
  return conn->id;
}

const char *ws_conn_name(const ws_conn *conn)
{
  return conn->name;
}

const char *ws_conn_ip(const ws_conn *conn)
{
  return conn->ip;
}

void ws_conn_set_registered(ws_conn *conn)
{
  conn->registered = true;
}

bool ws_conn_registered(const ws_conn *conn)
{
  return conn->registered;
}

const char *ws_conn_peer(const ws_conn *conn)
{
  return conn->peer;
}

bool ws_conn_is_secure(const ws_conn *conn)
{
  return conn->secure;
}

int ws_conn_send(ws_conn *conn, const char *data, size_t len)
{
  ws_edge *edge = conn->edge;

  if (conn->closing)
    return -ENOTCONN;
  conn->sent++;
  if (edge->sent_fn)
    edge->sent_fn(edge->sent_user, conn, data, len);
  return 0;
}

void ws_conn_close(ws_conn *conn, uint16_t status, const char *reason)
{
  if (conn->closing)
    return;
  conn->closing = true;
  conn->close_status = status;
}
