/* WebSocket edge (libwebsockets on the GLib loop).  See ws_edge.h.
 *
 * Two lws protocols per listener: "http" (protocols[0]: refuses upgrades
 * that do not ask for "sip", answers GET /healthz, serves static files
 * through a mount) and "sip" (one ws_conn per WebSocket).  HTTP/2 is not
 * offered (ALPN http/1.1 only): browsers open WebSockets over HTTP/1.1.
 */
#include "sip/ws_edge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config/log.h"

#define RX_CHUNK_SIZE 8192            /* lws delivers a message in chunks of at most this */
#define DEFAULT_MAX_MESSAGE 65536     /* when the settings say 0 */
#define MAX_QUEUED_BYTES (4u << 20)   /* per connection, toward a browser that is not reading */
#define MAX_QUEUED_MESSAGES 1000u
#define CLOSE_TIMEOUT_S 5             /* a close that the peer does not let through */
#define WS_CLOSE_REASON_MAX 123       /* RFC 6455 5.5.1: 125 bytes minus the status */
#define LWS_LOG_BURST 20              /* lines of lws's log per minute */

/* One message waiting to be written, with lws's headroom in front. */
typedef struct {
  size_t len;
  unsigned char data[]; /* LWS_PRE + len */
} out_msg;

struct ws_conn {
  ws_edge *edge;
  struct lws *wsi;
  uint64_t id;
  char name[32];
  char peer[64];
  char ip[INET6_ADDRSTRLEN];
  bool secure;
  bool registered;      /* counts no more toward the per-IP limit */
  bool closing;         /* ws_conn_close() was called: drain the queue, then close */
  uint16_t close_status;
  char close_reason[WS_CLOSE_REASON_MAX + 1];
  GQueue out;           /* of out_msg */
  size_t out_bytes;
  char *rx;             /* the message being reassembled from fragments */
  size_t rx_len, rx_cap;
};

struct ws_edge {
  ws_edge_callbacks cb;
  void *user;
  struct lws_context *context;
  GMainLoop *loop;      /* a handle on the default context, for lws */
  void *foreign_loops[1];
  size_t max_message_size;
  unsigned max_per_ip;
  bool stopping;        /* ws_edge_stop_accepting() */
  bool freeing;         /* inside ws_edge_free(): no more callbacks */
  uint64_t next_id;
  GHashTable *conns;    /* &conn->id -> ws_conn */
  GHashTable *per_ip;   /* ip string -> count of open connections */
  char *static_dir;
  struct lws_http_mount mount_files, mount_health;
};

/* ---- lws's own log ---- */

/* Errors and warnings only, and at most LWS_LOG_BURST lines a minute: lws
 * logs some trouble that peers cause (an oversized header) at error level. */
static void ws_edge_lws_log(int level, const char *line)
{
  static gint64 window_start;
  static unsigned lines, dropped;
  gint64 now = g_get_monotonic_time();
  size_t n = strlen(line);

  if (now - window_start > 60 * G_USEC_PER_SEC) {
    if (dropped)
      log_id("lws", LOG_WARNING, "%u more lines in the last minute not shown", dropped);
    window_start = now;
    lines = dropped = 0;
  }
  if (++lines > LWS_LOG_BURST) {
    dropped++;
    return;
  }
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
    n--;
  log_id("lws", level == LLL_ERR ? LOG_ERR : LOG_WARNING, "%.*s", (int)n, line);
}

/* ---- connections ---- */

/* The peer's address into IP (v4-mapped shown as v4) and its port; returns
 * the family (AF_INET6 only for a real v6 address), 0 when unknown. */
static int ws_edge_peer_of(struct lws *wsi, char ip[INET6_ADDRSTRLEN], unsigned *port)
{
  struct sockaddr_storage ss;
  struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
  socklen_t sl = sizeof ss;
  int fd = lws_get_socket_fd(wsi);

  g_strlcpy(ip, "?", INET6_ADDRSTRLEN);
  *port = 0;
  if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
    return 0;
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &sin->sin_addr, ip, INET6_ADDRSTRLEN);
    *port = ntohs(sin->sin_port);
    return AF_INET;
  }
  if (ss.ss_family != AF_INET6)
    return 0;
  *port = ntohs(sin6->sin6_port);
  if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
    inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip, INET6_ADDRSTRLEN);
    return AF_INET;
  }
  inet_ntop(AF_INET6, &sin6->sin6_addr, ip, INET6_ADDRSTRLEN);
  return AF_INET6;
}

static unsigned ws_edge_count_ip(ws_edge *edge, const char *ip)
{
  return GPOINTER_TO_UINT(g_hash_table_lookup(edge->per_ip, ip));
}

static void ws_edge_count_ip_change(ws_edge *edge, const char *ip, bool opened)
{
  unsigned n = ws_edge_count_ip(edge, ip);

  n = opened ? n + 1 : (n ? n - 1 : 0);
  if (n)
    g_hash_table_insert(edge->per_ip, g_strdup(ip), GUINT_TO_POINTER(n));
  else
    g_hash_table_remove(edge->per_ip, ip);
}

static ws_conn *ws_conn_new(ws_edge *edge, struct lws *wsi)
{
  ws_conn *c = g_new0(ws_conn, 1);
  unsigned port;

  c->edge = edge;
  c->wsi = wsi;
  c->id = ++edge->next_id;
  g_snprintf(c->name, sizeof c->name, "ws-%" G_GUINT64_FORMAT, c->id);
  c->secure = lws_is_ssl(wsi) != 0;
  g_queue_init(&c->out);
  if (ws_edge_peer_of(wsi, c->ip, &port) == AF_INET6)
    g_snprintf(c->peer, sizeof c->peer, "[%s]:%u", c->ip, port);
  else
    g_snprintf(c->peer, sizeof c->peer, "%s:%u", c->ip, port);
  g_hash_table_insert(edge->conns, &c->id, c);
  ws_edge_count_ip_change(edge, c->ip, true);
  return c;
}

static void ws_conn_clear_queue(ws_conn *c)
{
  g_queue_clear_full(&c->out, g_free);
  c->out_bytes = 0;
}

static void ws_conn_free_rx(ws_conn *c)
{
  g_free(c->rx);
  c->rx = NULL;
  c->rx_len = c->rx_cap = 0;
}

/* The connection is gone: forget it, tell the user, free it. */
static void ws_conn_gone(ws_conn *c)
{
  ws_edge *edge = c->edge;

  g_hash_table_remove(edge->conns, &c->id);
  if (!c->registered)
    ws_edge_count_ip_change(edge, c->ip, false);
  c->closing = true; /* ws_conn_send/close from on_close: no-ops */
  if (!edge->freeing && edge->cb.on_close)
    edge->cb.on_close(edge->user, c);
  ws_conn_clear_queue(c);
  ws_conn_free_rx(c);
  g_free(c);
}

/* Inside an lws callback of C's wsi: start lws's close handshake.  The
 * caller returns -1 to lws. */
static int ws_conn_close_now(ws_conn *c)
{
  lws_close_reason(c->wsi, (enum lws_close_status)c->close_status,
                   (unsigned char *)c->close_reason, strlen(c->close_reason));
  return -1;
}

static void ws_conn_set_close(ws_conn *c, uint16_t status, const char *reason)
{
  size_t n = reason ? strlen(reason) : 0;
  const char *end;

  c->closing = true;
  c->close_status = status;
  if (n > WS_CLOSE_REASON_MAX)
    n = WS_CLOSE_REASON_MAX;
  /* never cut a UTF-8 sequence: the reason must stay valid UTF-8 */
  if (n && !g_utf8_validate(reason, (gssize)n, &end))
    n = (size_t)(end - reason);
  memcpy(c->close_reason, reason, n);
  c->close_reason[n] = '\0';
}

/* Appends a chunk of the message being received; the caller checked the limit, MAX. */
static void ws_conn_rx_append(ws_conn *c, const void *in, size_t len, size_t max)
{
  if (c->rx_len + len > c->rx_cap) {
    size_t cap = MAX(c->rx_cap * 2, c->rx_len + len);
    c->rx_cap = MIN(MAX(cap, (size_t)RX_CHUNK_SIZE), max);
    c->rx = g_realloc(c->rx, c->rx_cap);
  }
  memcpy(c->rx + c->rx_len, in, len);
  c->rx_len += len;
}

static int ws_conn_on_receive(ws_conn *c, const void *in, size_t len)
{
  ws_edge *edge = c->edge;
  size_t max = edge->max_message_size;
  size_t remaining = lws_remaining_packet_payload(c->wsi);
  bool final = lws_is_final_fragment(c->wsi);
  const char *data = in;

  if (c->closing) /* closing: what the peer still sends is dropped */
    return 0;
  if (len > max || c->rx_len > max - len || remaining > max - c->rx_len - len) {
    log_id(c->name, LOG_NOTICE, "closing: message over %zu bytes", max);
    ws_conn_free_rx(c);
    ws_conn_set_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big");
    return ws_conn_close_now(c);
  }
  if (!final || c->rx_len) {
    ws_conn_rx_append(c, in, len, max);
    if (!final)
      return 0;
    data = c->rx;
    len = c->rx_len;
  }

  if (len == 4 && memcmp(data, "\r\n\r\n", 4) == 0) {
    /* RFC 5626 4.4.1 keepalive: the pong is a single CRLF */
    ws_conn_send(c, "\r\n", 2);
  } else if (edge->cb.on_message) {
    edge->cb.on_message(edge->user, c, data, len);
  }
  ws_conn_free_rx(c);
  /* closed from inside on_message, with nothing left to send: close now */
  if (c->closing && g_queue_is_empty(&c->out))
    return ws_conn_close_now(c);
  return 0;
}

static int ws_conn_on_writeable(ws_conn *c)
{
  out_msg *m = g_queue_pop_head(&c->out);
  bool ok;
  int n;

  if (!m)
    return c->closing ? ws_conn_close_now(c) : 0;
  c->out_bytes -= m->len;
  n = lws_write(c->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
  ok = n >= 0 && (size_t)n == m->len;
  g_free(m);
  if (!ok) {
    log_id(c->name, LOG_DEBUG, "write failed, closing");
    return -1;
  }
  if (!g_queue_is_empty(&c->out) || c->closing)
    lws_callback_on_writable(c->wsi);
  return 0;
}

static int ws_edge_sip_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                                void *in, size_t len)
{
  ws_edge *edge = lws_context_user(lws_get_context(wsi));
  ws_conn **slot = user;
  ws_conn *c = slot ? *slot : NULL;

  switch (reason) {
  case LWS_CALLBACK_ESTABLISHED:
    if (!slot)
      return -1;
    c = *slot = ws_conn_new(edge, wsi);
    if (edge->cb.on_open)
      edge->cb.on_open(edge->user, c);
    return 0;

  case LWS_CALLBACK_RECEIVE:
    return c ? ws_conn_on_receive(c, in, len) : -1;

  case LWS_CALLBACK_SERVER_WRITEABLE:
    return c ? ws_conn_on_writeable(c) : -1;

  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    /* lws answers the close; nothing more goes out */
    if (c && !c->closing) {
      ws_conn_clear_queue(c);
      ws_conn_set_close(c, LWS_CLOSE_STATUS_NORMAL, "");
    }
    return 0;

  case LWS_CALLBACK_CLOSED:
    if (c) {
      *slot = NULL;
      ws_conn_gone(c);
    }
    return 0;

  default:
    return 0;
  }
}

/* ---- the HTTP side: upgrades, /healthz, static files ---- */

/* Does the Sec-WebSocket-Protocol list ask for "sip" (before any other
 * protocol name this server knows, which lws would pick first)? */
static bool ws_edge_wants_sip(struct lws *wsi)
{
  char buf[256];
  char *save = NULL;

  if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) <= 0 ||
      lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_PROTOCOL) <= 0)
    return false;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    t = g_strstrip(t);
    if (strcmp(t, "sip") == 0)
      return true;
    if (strcmp(t, "http") == 0)
      return false;
  }
  return false;
}

static int ws_edge_refuse(struct lws *wsi, unsigned status, const char *why)
{
  char ip[INET6_ADDRSTRLEN];
  unsigned port;

  ws_edge_peer_of(wsi, ip, &port);
  log_msg(status == HTTP_STATUS_BAD_REQUEST ? LOG_DEBUG : LOG_INFO,
          "WebSocket upgrade from %s refused with %u: %s", ip, status, why);
  if (lws_return_http_status(wsi, status, why))
    return -1;
  return 1; /* lws completes the transaction */
}

/* RFC 6455 4.4: a version other than 13 gets 426 with the version spoken
 * here (lws 4.1 would take any version as 13). */
static int ws_edge_refuse_version(struct lws *wsi)
{
  static const char body[] = "WebSocket version 13 only\n";
  unsigned char head[LWS_PRE + 512], *start = head + LWS_PRE, *p = start;
  unsigned char *end = head + sizeof head - 1;
  unsigned char out[LWS_PRE + sizeof body];

  log_msg(LOG_DEBUG, "WebSocket upgrade refused with 426: unsupported Sec-WebSocket-Version");
  if (lws_add_http_common_headers(wsi, 426, "text/plain", sizeof body - 1,
                                  &p, end) ||
      lws_add_http_header_by_token(wsi, WSI_TOKEN_VERSION, (const unsigned char *)"13", 2, &p, end) ||
      lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                   &p, end) ||
      lws_finalize_write_http_header(wsi, start, &p, end))
    return -1;
  memcpy(out + LWS_PRE, body, sizeof body - 1);
  lws_write(wsi, out + LWS_PRE, sizeof body - 1, LWS_WRITE_HTTP_FINAL);
  return -1; /* and hang up */
}

static int ws_edge_confirm_upgrade(ws_edge *edge, struct lws *wsi)
{
  char up[32], ip[INET6_ADDRSTRLEN];
  unsigned port;

  /* lws 4.1 calls this even after it answered an unknown Upgrade itself and
   * let go of the headers (then IN points to freed memory): hang up. */
  if (lws_hdr_total_length(wsi, WSI_TOKEN_UPGRADE) <= 0)
    return -1;
  if (lws_hdr_copy(wsi, up, sizeof up, WSI_TOKEN_UPGRADE) <= 0 || g_ascii_strcasecmp(up, "websocket") != 0)
    return ws_edge_refuse(wsi, HTTP_STATUS_BAD_REQUEST, "unsupported upgrade");
  {
    char version[8] = "";
    if (lws_hdr_copy(wsi, version, sizeof version, WSI_TOKEN_VERSION) <= 0 ||
        strcmp(version, "13") != 0)
      return ws_edge_refuse_version(wsi);
  }
  if (!ws_edge_wants_sip(wsi))
    return ws_edge_refuse(wsi, HTTP_STATUS_BAD_REQUEST, "the WebSocket subprotocol must be \"sip\"");
  if (edge->stopping)
    return ws_edge_refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "shutting down");
  ws_edge_peer_of(wsi, ip, &port);
  if (edge->max_per_ip && ws_edge_count_ip(edge, ip) >= edge->max_per_ip)
    return ws_edge_refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "too many connections from this address");
  return 0;
}

static int ws_edge_serve_health(ws_edge *edge, struct lws *wsi)
{
  g_autoptr(GString) body = g_string_new("ok\n");
  unsigned char head[LWS_PRE + 512], *start = head + LWS_PRE, *p = start;
  unsigned char *end = head + sizeof head - 1;
  g_autofree unsigned char *out = NULL;

  if (edge->cb.on_health)
    edge->cb.on_health(edge->user, body);
  if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/plain", body->len, &p, end) ||
      lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                   (const unsigned char *)"no-store", 8, &p, end) ||
      lws_finalize_write_http_header(wsi, start, &p, end))
    return -1;
  out = g_malloc(LWS_PRE + body->len);
  memcpy(out + LWS_PRE, body->str, body->len);
  if (lws_write(wsi, out + LWS_PRE, body->len, LWS_WRITE_HTTP_FINAL) != (int)body->len)
    return -1;
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int ws_edge_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                                 void *in, size_t len)
{
  ws_edge *edge = lws_context_user(lws_get_context(wsi));
  char uri[64];

  switch (reason) {
  case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
    return edge->stopping ? -1 : 0;

  case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
    return ws_edge_confirm_upgrade(edge, wsi);

  case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
  case LWS_CALLBACK_ESTABLISHED:
    return -1; /* a WebSocket bound to this protocol: never */

  case LWS_CALLBACK_HTTP:
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) > 0 && strcmp(uri, "/healthz") == 0)
      return ws_edge_serve_health(edge, wsi);
    if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
      return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;

  default:
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

static const struct lws_protocols ws_edge_protocols[] = {
  { "http", ws_edge_http_callback, 0, 0, 0, NULL, 0 },
  { "sip", ws_edge_sip_callback, sizeof(ws_conn *), RX_CHUNK_SIZE, 0, NULL, 0 },
  { NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* ---- listeners ---- */

/* Fills SA from an address literal; -EINVAL when HOST is not one. */
static int ws_edge_parse_address(const char *host, uint16_t port, struct sockaddr_storage *sa,
                                 socklen_t *len)
{
  struct sockaddr_in *sin = (struct sockaddr_in *)sa;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;

  memset(sa, 0, sizeof *sa);
  if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    *len = sizeof *sin;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    *len = sizeof *sin6;
    return 0;
  }
  return -EINVAL;
}

/* Can HOST:PORT be listened on?  lws only says "no"; this says why. */
static int ws_edge_probe_bind(const struct sockaddr_storage *sa, socklen_t len)
{
  int one = 1, r = 0;
  int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -errno;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (const struct sockaddr *)sa, len) < 0)
    r = -errno;
  close(fd);
  return r;
}

static int ws_edge_no_passphrase(char *buf, int size, int rwflag, void *u)
{
  return -1;
}

/* lws 4.1 takes a key that does not match its certificate and then fails
 * every handshake: check the pair here, and say what is wrong. */
static int ws_edge_check_certificate(const ws_edge_settings *s)
{
  bool files = s->cert_file && *s->cert_file;
  const char *cname = files ? s->cert_file : "(in memory)";
  const char *kname = files ? (s->key_file ? s->key_file : "(none given)") : "(in memory)";
  BIO *cb = NULL, *kb = NULL;
  X509 *cert = NULL;
  EVP_PKEY *key = NULL;
  int r = -EINVAL;

  errno = 0;
  cb = files ? BIO_new_file(s->cert_file, "r") : BIO_new_mem_buf(s->cert_pem, -1);
  if (!cb) {
    r = errno ? -errno : -EINVAL;
    log_msg(LOG_ERR, "wss: cannot read the certificate %s: %s", cname, g_strerror(-r));
    goto out;
  }
  cert = PEM_read_bio_X509(cb, NULL, ws_edge_no_passphrase, NULL);
  if (!cert) {
    log_msg(LOG_ERR, "wss: the certificate %s holds no PEM certificate", cname);
    goto out;
  }
  errno = 0;
  kb = files ? (s->key_file ? BIO_new_file(s->key_file, "r") : NULL) : BIO_new_mem_buf(s->key_pem, -1);
  if (!kb) {
    r = errno ? -errno : -EINVAL;
    log_msg(LOG_ERR, "wss: cannot read the private key %s: %s", kname, g_strerror(-r));
    goto out;
  }
  key = PEM_read_bio_PrivateKey(kb, NULL, ws_edge_no_passphrase, NULL);
  if (!key) {
    log_msg(LOG_ERR, "wss: the private key %s holds no PEM key (or it is encrypted)", kname);
    goto out;
  }
  if (X509_check_private_key(cert, key) != 1) {
    log_msg(LOG_ERR, "wss: the private key %s does not match the certificate %s", kname, cname);
    goto out;
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
    log_msg(LOG_WARNING, "wss: the certificate %s has expired", cname);
  r = 0;
out:
  ERR_clear_error();
  X509_free(cert);
  EVP_PKEY_free(key);
  BIO_free(cb);
  BIO_free(kb);
  return r;
}

static int ws_edge_listen(ws_edge *edge, const ws_edge_settings *s, bool secure)
{
  const char *scheme = secure ? "wss" : "ws";
  const char *host = secure ? s->wss_host : s->ws_host;
  uint16_t port = secure ? s->wss_port : s->ws_port;
  struct lws_context_creation_info info = { 0 };
  struct sockaddr_storage sa;
  socklen_t sa_len;
  bool any;
  int r;

  if (!host || !*host || !port)
    return 0;
  if (ws_edge_parse_address(host, port, &sa, &sa_len) < 0) {
    log_msg(LOG_ERR, "%s: '%s' is not an IP address", scheme, host);
    return -EINVAL;
  }
  r = ws_edge_probe_bind(&sa, sa_len);
  if (r < 0) {
    log_msg(LOG_ERR, "%s: cannot listen on %s%s%s:%u: %s", scheme, sa.ss_family == AF_INET6 ? "[" : "",
            host, sa.ss_family == AF_INET6 ? "]" : "", port, g_strerror(-r));
    return r;
  }

  any = strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
  info.vhost_name = scheme;
  info.port = port;
  info.iface = any ? NULL : host;
  info.protocols = ws_edge_protocols;
  info.mounts = &edge->mount_health;
  info.alpn = "http/1.1";
  info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND |
                 (sa.ss_family == AF_INET ? LWS_SERVER_OPTION_DISABLE_IPV6 : 0);
  if (secure) {
    if (!(s->cert_file && *s->cert_file) && !(s->cert_pem && s->key_pem)) {
      log_msg(LOG_ERR, "wss: no certificate");
      return -EINVAL;
    }
    r = ws_edge_check_certificate(s);
    if (r < 0)
      return r;
    /* without DO_SSL_GLOBAL_INIT in the vhost's options lws 4.1 quietly
     * serves plain HTTP on this port */
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    if (s->cert_file && *s->cert_file) {
      info.ssl_cert_filepath = s->cert_file;
      info.ssl_private_key_filepath = s->key_file;
    } else if (s->cert_pem && s->key_pem) {
      info.server_ssl_cert_mem = s->cert_pem;
      info.server_ssl_cert_mem_len = (unsigned)strlen(s->cert_pem);
      info.server_ssl_private_key_mem = s->key_pem;
      info.server_ssl_private_key_mem_len = (unsigned)strlen(s->key_pem);
    }
  }
  if (!lws_create_vhost(edge->context, &info)) {
    log_msg(LOG_ERR, "%s: libwebsockets cannot listen on %s port %u (see above)", scheme, host, port);
    return -EIO;
  }
  log_msg(LOG_DEBUG, "%s: listening on %s port %u", scheme, host, port);
  return 0;
}

/* ---- the edge ---- */

int ws_edge_new(const ws_edge_settings *settings, const ws_edge_callbacks *callbacks,
                void *user, ws_edge **ret)
{
  struct lws_context_creation_info info = { 0 };
  ws_edge *edge = g_new0(ws_edge, 1);
  int r;

  edge->cb = *callbacks;
  edge->user = user;
  edge->conns = g_hash_table_new(g_int64_hash, g_int64_equal);
  edge->per_ip = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  ws_edge_set_limits(edge, settings->max_message_size, settings->max_connections_per_ip);

  /* GET /healthz, then the static files (longest mountpoint wins) */
  edge->mount_health = (struct lws_http_mount){
    .mountpoint = "/healthz", .mountpoint_len = 8,
    .origin = "http", .origin_protocol = LWSMPRO_CALLBACK,
  };
  if (settings->static_dir && *settings->static_dir) {
    edge->static_dir = g_strdup(settings->static_dir);
    edge->mount_files = (struct lws_http_mount){
      .mountpoint = "/", .mountpoint_len = 1,
      .origin = edge->static_dir, .def = "index.html", .origin_protocol = LWSMPRO_FILE,
    };
    edge->mount_health.mount_next = &edge->mount_files;
  }

  lws_set_log_level(LLL_ERR | LLL_WARN, ws_edge_lws_log);
  edge->loop = g_main_loop_new(NULL, FALSE);
  edge->foreign_loops[0] = edge->loop;
  /* VALIDATE_UTF8 (a context option in lws 4.1): a text frame that is not
   * UTF-8 closes the connection with 1007 (RFC 6455 8.1); reserved bits,
   * unknown opcodes and broken control frames lws refuses (1002) by itself */
  info.options = LWS_SERVER_OPTION_GLIB | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                 LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_VALIDATE_UTF8;
  info.foreign_loops = edge->foreign_loops;
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.gid = -1;
  info.uid = -1;
  info.user = edge;
  edge->context = lws_create_context(&info);
  if (!edge->context) {
    log_msg(LOG_ERR, "cannot start libwebsockets on the GLib loop "
            "(is libwebsockets-evlib-glib installed?)");
    ws_edge_free(edge);
    return -ENOPKG;
  }

  r = ws_edge_listen(edge, settings, false);
  if (r == 0)
    r = ws_edge_listen(edge, settings, true);
  if (r < 0) {
    ws_edge_free(edge);
    return r;
  }
  *ret = edge;
  return 0;
}

void ws_edge_free(ws_edge *edge)
{
  if (!edge)
    return;
  /* The user may be gone already (main.c frees the router first): from
   * here on the connections close without on_close. */
  edge->freeing = true;
  if (edge->context)
    lws_context_destroy(edge->context);
  /* connections lws did not report closed (none expected) */
  if (g_hash_table_size(edge->conns)) {
    GList *left = g_hash_table_get_values(edge->conns);
    for (GList *l = left; l; l = l->next)
      ws_conn_gone(l->data);
    g_list_free(left);
  }
  g_hash_table_destroy(edge->conns);
  g_hash_table_destroy(edge->per_ip);
  if (edge->loop)
    g_main_loop_unref(edge->loop);
  g_free(edge->static_dir);
  g_free(edge);
}

void ws_edge_set_limits(ws_edge *edge, size_t max_message_size, unsigned max_connections_per_ip)
{
  edge->max_message_size = max_message_size ? max_message_size : DEFAULT_MAX_MESSAGE;
  edge->max_per_ip = max_connections_per_ip;
}

void ws_edge_stop_accepting(ws_edge *edge)
{
  edge->stopping = true;
}

void ws_edge_close_all(ws_edge *edge)
{
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init(&it, edge->conns);
  while (g_hash_table_iter_next(&it, NULL, &value))
    ws_conn_close(value, LWS_CLOSE_STATUS_GOINGAWAY, "going away");
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

void ws_conn_set_registered(ws_conn *conn)
{
  if (conn->registered)
    return;
  conn->registered = true;
  ws_edge_count_ip_change(conn->edge, conn->ip, false);
}

bool ws_conn_registered(const ws_conn *conn)
{
  return conn->registered;
}

const char *ws_conn_ip(const ws_conn *conn)
{
  return conn->ip;
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
  out_msg *m;

  if (conn->closing)
    return -ENOTCONN;
  if (conn->out.length >= MAX_QUEUED_MESSAGES || len > MAX_QUEUED_BYTES - conn->out_bytes) {
    log_id(conn->name, LOG_WARNING, "the browser is not reading (%u messages, %zu bytes queued): closing",
           conn->out.length, conn->out_bytes);
    ws_conn_clear_queue(conn);
    ws_conn_close(conn, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue full");
    return -ENOBUFS;
  }
  m = g_malloc(sizeof *m + LWS_PRE + len);
  m->len = len;
  memcpy(m->data + LWS_PRE, data, len);
  g_queue_push_tail(&conn->out, m);
  conn->out_bytes += len;
  lws_callback_on_writable(conn->wsi);
  return 0;
}

void ws_conn_close(ws_conn *conn, uint16_t status, const char *reason)
{
  if (conn->closing)
    return;
  ws_conn_set_close(conn, status, reason);
  /* the close goes out at the next writable callback, after what is queued;
   * a peer that does not read is cut off after CLOSE_TIMEOUT_S */
  lws_set_timeout(conn->wsi, PENDING_TIMEOUT_CLOSE_SEND, CLOSE_TIMEOUT_S);
  lws_callback_on_writable(conn->wsi);
}
