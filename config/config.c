/* Configuration loader.  See config.h.
 *
 * GKeyFile reads the file and unescapes values; a small line index (made
 * here from the same text) gives every group and key its line number for
 * the error messages, and finds duplicate keys, which GKeyFile would merge
 * silently.  Every key is one row of the schema below: a parser that checks
 * the value and stores it.  Checks that involve several keys come after.
 */
#include "config/config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib.h>

#include "config/log.h"

#ifndef RTCSIPD_WWW_DIR
#define RTCSIPD_WWW_DIR "/usr/share/rtcsipd/www"
#endif

#define DEFAULT_SIP_PORT 5060
#define DEFAULT_SIPS_PORT 5061

const char *sip_transport_name(sip_transport t)
{
  switch (t) {
  case SIP_TRANSPORT_UDP: return "udp";
  case SIP_TRANSPORT_TCP: return "tcp";
  case SIP_TRANSPORT_TLS: return "tls";
  }
  return "?";
}

/* ---- where each group and key is in the file ---- */

typedef struct {
  GHashTable *lines; /* "group\nkey" or "group" -> line number (first seen) */
  char *duplicate;   /* "group.key" seen twice, NULL when none */
  unsigned duplicate_line;
  unsigned bad_line; /* first line that is no group, key or comment; 0: none */
  unsigned n_lines;
} line_index;

static void line_index_build(line_index *ix, const char *text)
{
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  g_autofree char *group = NULL;

  ix->lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (unsigned i = 0; lines[i]; i++) {
    unsigned no = i + 1;
    const char *l = lines[i];
    const char *eq;

    ix->n_lines = no;
    while (*l == ' ' || *l == '\t')
      l++;
    if (*l == '\0' || *l == '\r' || *l == '#')
      continue;
    if (*l == '[') {
      const char *end = strchr(l, ']');
      if (!end) {
        if (!ix->bad_line)
          ix->bad_line = no;
        continue;
      }
      g_free(group);
      group = g_strndup(l + 1, end - l - 1);
      if (!g_hash_table_contains(ix->lines, group))
        g_hash_table_insert(ix->lines, g_strdup(group), GUINT_TO_POINTER(no));
      continue;
    }
    eq = strchr(l, '=');
    if (!eq || !group) {
      if (!ix->bad_line)
        ix->bad_line = no;
      continue;
    }
    g_autofree char *key = g_strstrip(g_strndup(l, eq - l));
    char *k = g_strdup_printf("%s\n%s", group, key);
    if (g_hash_table_contains(ix->lines, k)) {
      if (!ix->duplicate) {
        ix->duplicate = g_strdup_printf("%s.%s", group, key);
        ix->duplicate_line = no;
      }
      g_free(k);
      continue;
    }
    g_hash_table_insert(ix->lines, k, GUINT_TO_POINTER(no));
  }
}

static void line_index_clear(line_index *ix)
{
  g_clear_pointer(&ix->lines, g_hash_table_destroy);
  g_clear_pointer(&ix->duplicate, g_free);
}

/* The line of GROUP/KEY, or of GROUP when KEY is NULL or absent; 0 when neither is there. */
static unsigned line_of(const line_index *ix, const char *group, const char *key)
{
  gpointer v = NULL;

  if (key) {
    g_autofree char *k = g_strdup_printf("%s\n%s", group, key);
    v = g_hash_table_lookup(ix->lines, k);
  }
  if (!v)
    v = g_hash_table_lookup(ix->lines, group);
  return GPOINTER_TO_UINT(v);
}

/* ---- value parsers: 0, or -EINVAL with *why (g_malloc'd) ---- */

typedef struct {
  config *c;
  const char *dir;     /* the file's directory, for relative paths */
  char *why;
  char *turn_username; /* for every TURN server, see finish() */
  char *turn_password;
  bool ice_addresses_set; /* [media] ice_addresses given (maybe empty) */
  bool ice_loopback_set;  /* [media] ice_loopback given */
} parse_ctx;

typedef int (*key_parser)(parse_ctx *p, const char *value);

static int fail(parse_ctx *p, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static int fail(parse_ctx *p, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  g_free(p->why);
  p->why = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  return -EINVAL;
}

static int parse_unsigned(parse_ctx *p, const char *value, guint64 min, guint64 max, guint64 *out)
{
  g_autoptr(GError) error = NULL;

  if (!g_ascii_string_to_unsigned(value, 10, min, max, out, &error))
    return fail(p, "'%s' is not a whole number from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT,
                value, min, max);
  return 0;
}

static bool is_ip_literal(const char *s)
{
  g_autoptr(GInetAddress) a = g_inet_address_new_from_string(s);
  return a != NULL;
}

/* A DNS name or an IP literal, as may follow "sip:" */
static bool is_host(const char *s)
{
  size_t n = strlen(s);

  if (n == 0 || n > 253)
    return false;
  if (is_ip_literal(s))
    return true;
  for (size_t i = 0; i < n; i++)
    if (!g_ascii_isalnum(s[i]) && s[i] != '-' && s[i] != '.')
      return false;
  return s[0] != '.' && s[0] != '-';
}

/* "HOST:PORT" or "[V6]:PORT" into *host (g_malloc'd, no brackets) and *port.
 * IP_ONLY: HOST must be an address literal (a listener). */
static int parse_host_port(parse_ctx *p, const char *value, bool ip_only, char **host,
                           uint16_t *port)
{
  g_autofree char *h = NULL;
  const char *colon;
  guint64 n;

  if (value[0] == '[') {
    const char *end = strchr(value, ']');
    if (!end || end[1] != ':')
      return fail(p, "'%s': write an IPv6 address as [ADDRESS]:PORT", value);
    h = g_strndup(value + 1, end - value - 1);
    colon = end + 1;
  } else {
    colon = strrchr(value, ':');
    if (!colon)
      return fail(p, "'%s': expected ADDRESS:PORT", value);
    h = g_strndup(value, colon - value);
    if (strchr(h, ':'))
      return fail(p, "'%s': write an IPv6 address as [ADDRESS]:PORT", value);
  }
  if (ip_only ? !is_ip_literal(h) : !is_host(h))
    return fail(p, "'%s': '%s' is not %s", value, h,
                ip_only ? "an IP address (use 0.0.0.0 or [::] for all)" : "a host name or address");
  if (parse_unsigned(p, colon + 1, 1, 65535, &n) < 0)
    return fail(p, "'%s': the port must be a number from 1 to 65535", value);
  *host = g_steal_pointer(&h);
  *port = (uint16_t)n;
  return 0;
}

/* An empty value switches the listener off. */
static int parse_listener(parse_ctx *p, const char *value, config_listen *l)
{
  g_free(l->host);
  l->host = NULL;
  l->port = 0;
  if (*value == '\0')
    return 0;
  return parse_host_port(p, value, true, &l->host, &l->port);
}

static char *resolve_path(parse_ctx *p, const char *value)
{
  if (g_path_is_absolute(value))
    return g_strdup(value);
  return g_build_filename(p->dir, value, NULL);
}

static int parse_log_level(parse_ctx *p, const char *v)
{
  int level = log_level_from_string(v);

  if (level < 0)
    return fail(p, "'%s' is not one of error, warning, notice, info, debug", v);
  p->c->log_level = level;
  return 0;
}

static int parse_ws(parse_ctx *p, const char *v) { return parse_listener(p, v, &p->c->ws); }
static int parse_wss(parse_ctx *p, const char *v) { return parse_listener(p, v, &p->c->wss); }

static int parse_readable_file(parse_ctx *p, const char *v, char **out)
{
  g_autofree char *path = resolve_path(p, v);

  if (!g_file_test(path, G_FILE_TEST_IS_REGULAR) || access(path, R_OK) != 0)
    return fail(p, "cannot read '%s': %s", path, g_strerror(errno ? errno : ENOENT));
  g_free(*out);
  *out = g_steal_pointer(&path);
  return 0;
}

static int parse_certificate(parse_ctx *p, const char *v)
{
  return parse_readable_file(p, v, &p->c->tls_certificate);
}

static int parse_private_key(parse_ctx *p, const char *v)
{
  return parse_readable_file(p, v, &p->c->tls_private_key);
}

static int parse_static_dir(parse_ctx *p, const char *v)
{
  g_autofree char *path = NULL;

  g_clear_pointer(&p->c->static_dir, g_free);
  if (*v == '\0')
    return 0; /* no static files */
  path = resolve_path(p, v);
  if (!g_file_test(path, G_FILE_TEST_IS_DIR))
    return fail(p, "'%s' is not a directory", path);
  p->c->static_dir = g_steal_pointer(&path);
  return 0;
}

static int parse_sip_listen(parse_ctx *p, const char *v)
{
  g_clear_pointer(&p->c->sip.host, g_free);
  return parse_host_port(p, v, true, &p->c->sip.host, &p->c->sip.port);
}

static int parse_advertised_address(parse_ctx *p, const char *v)
{
  if (!is_host(v))
    return fail(p, "'%s' is not a host name or IP address", v);
  g_free(p->c->advertised_address);
  p->c->advertised_address = g_strdup(v);
  return 0;
}

static int parse_domains(parse_ctx *p, const char *v)
{
  g_auto(GStrv) parts = g_regex_split_simple("[,;\\s]+", v, 0, 0);
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

  for (unsigned i = 0; parts[i]; i++) {
    if (*parts[i] == '\0')
      continue;
    if (!is_host(parts[i])) {
      g_ptr_array_free(out, TRUE);
      return fail(p, "'%s' is not a domain name", parts[i]);
    }
    g_ptr_array_add(out, g_ascii_strdown(parts[i], -1));
  }
  if (out->len == 0) {
    g_ptr_array_free(out, TRUE);
    return fail(p, "at least one domain is needed");
  }
  g_ptr_array_add(out, NULL);
  g_strfreev(p->c->domains);
  p->c->domains = (char **)g_ptr_array_free(out, FALSE);
  return 0;
}

static int parse_echo_user(parse_ctx *p, const char *v)
{
  for (const char *c = v; *c; c++)
    if (!g_ascii_isalnum(*c) && !strchr("-_.!~*'()&=+$,;?/", *c))
      return fail(p, "'%s' is not a SIP user name", v);
  g_free(p->c->echo_user);
  p->c->echo_user = g_strdup(v);
  return 0;
}

static int parse_pbx_host(parse_ctx *p, const char *v)
{
  if (!is_host(v))
    return fail(p, "'%s' is not a host name or IP address", v);
  g_free(p->c->pbx_host);
  p->c->pbx_host = g_strdup(v);
  return 0;
}

static int parse_pbx_port(parse_ctx *p, const char *v)
{
  guint64 n;

  if (parse_unsigned(p, v, 1, 65535, &n) < 0)
    return -EINVAL;
  p->c->pbx_port = (uint16_t)n;
  return 0;
}

static int parse_pbx_transport(parse_ctx *p, const char *v)
{
  for (sip_transport t = SIP_TRANSPORT_UDP; t <= SIP_TRANSPORT_TLS; t++)
    if (g_ascii_strcasecmp(v, sip_transport_name(t)) == 0) {
      p->c->pbx_transport = t;
      return 0;
    }
  return fail(p, "'%s' is not one of udp, tcp, tls", v);
}

const char *dtmf_mode_name(dtmf_mode m)
{
  return m == DTMF_INFO ? "info" : "rfc4733";
}

static int parse_dtmf_mode(parse_ctx *p, const char *v, dtmf_mode *out)
{
  if (g_ascii_strcasecmp(v, "rfc4733") == 0)
    *out = DTMF_RFC4733;
  else if (g_ascii_strcasecmp(v, "info") == 0)
    *out = DTMF_INFO;
  else
    return fail(p, "'%s' is not one of rfc4733, info", v);
  return 0;
}

static int parse_dtmf_to_pbx(parse_ctx *p, const char *v)
{
  return parse_dtmf_mode(p, v, &p->c->dtmf_to_pbx);
}

static int parse_dtmf_to_browser(parse_ctx *p, const char *v)
{
  return parse_dtmf_mode(p, v, &p->c->dtmf_to_browser);
}

const char *rtp_source_mode_name(rtp_source_mode m)
{
  return m == RTP_SOURCE_LATCH ? "latch" : "sdp";
}

static int parse_rtp_source(parse_ctx *p, const char *v)
{
  if (g_ascii_strcasecmp(v, "sdp") == 0)
    p->c->rtp_source = RTP_SOURCE_SDP;
  else if (g_ascii_strcasecmp(v, "latch") == 0)
    p->c->rtp_source = RTP_SOURCE_LATCH;
  else
    return fail(p, "'%s' is not one of sdp, latch", v);
  return 0;
}

static int parse_bool(parse_ctx *p, const char *v, bool *out)
{
  if (g_ascii_strcasecmp(v, "true") == 0 || g_ascii_strcasecmp(v, "yes") == 0 ||
      strcmp(v, "1") == 0)
    *out = true;
  else if (g_ascii_strcasecmp(v, "false") == 0 || g_ascii_strcasecmp(v, "no") == 0 ||
           strcmp(v, "0") == 0)
    *out = false;
  else
    return fail(p, "'%s' is not true or false", v);
  return 0;
}

static int parse_ice_loopback(parse_ctx *p, const char *v)
{
  p->ice_loopback_set = true;
  return parse_bool(p, v, &p->c->ice_loopback);
}

/* "NETWORK[/PREFIX], ..." (empty: none), at most 64 */
static int parse_networks(parse_ctx *p, const char *v, config_network **list, size_t *n)
{
  g_auto(GStrv) parts = g_regex_split_simple("[,;\\s]+", v, 0, 0);
  GArray *out = g_array_new(FALSE, TRUE, sizeof(config_network));

  for (unsigned i = 0; parts[i]; i++) {
    config_network net;

    if (*parts[i] == '\0')
      continue;
    if (netlist_parse(parts[i], &net) < 0) {
      g_array_free(out, TRUE);
      return fail(p, "'%s' is not a network (ADDRESS or ADDRESS/PREFIX, host bits zero)",
                  parts[i]);
    }
    if (out->len == 64) {
      g_array_free(out, TRUE);
      return fail(p, "more than 64 networks");
    }
    g_array_append_val(out, net);
  }
  g_free(*list);
  *n = out->len;
  *list = (config_network *)g_array_free(out, out->len == 0);
  return 0;
}

static int parse_pbx_trusted(parse_ctx *p, const char *v)
{
  return parse_networks(p, v, &p->c->pbx_trusted, &p->c->n_pbx_trusted);
}

static int parse_ice_allow(parse_ctx *p, const char *v)
{
  return parse_networks(p, v, &p->c->ice_allow, &p->c->n_ice_allow);
}

static int parse_ice_deny(parse_ctx *p, const char *v)
{
  return parse_networks(p, v, &p->c->ice_deny, &p->c->n_ice_deny);
}

static int parse_pbx_tls_directory(parse_ctx *p, const char *v)
{
  g_autofree char *path = resolve_path(p, v);

  if (!g_file_test(path, G_FILE_TEST_IS_DIR))
    return fail(p, "'%s' is not a directory", path);
  g_free(p->c->pbx_tls_directory);
  p->c->pbx_tls_directory = g_steal_pointer(&path);
  return 0;
}

static int parse_port_value(parse_ctx *p, const char *v, uint16_t *out)
{
  guint64 n;

  if (parse_unsigned(p, v, 1024, 65535, &n) < 0)
    return -EINVAL;
  *out = (uint16_t)n;
  return 0;
}

static int parse_rtp_port_min(parse_ctx *p, const char *v)
{
  return parse_port_value(p, v, &p->c->rtp_port_min);
}

static int parse_rtp_port_max(parse_ctx *p, const char *v)
{
  return parse_port_value(p, v, &p->c->rtp_port_max);
}

static int parse_ice_addresses(parse_ctx *p, const char *v)
{
  g_auto(GStrv) parts = g_regex_split_simple("[,;\\s]+", v, 0, 0);
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

  for (unsigned i = 0; parts[i]; i++) {
    if (*parts[i] == '\0')
      continue;
    if (!is_ip_literal(parts[i])) {
      g_ptr_array_free(out, TRUE);
      return fail(p, "'%s' is not an IP address", parts[i]);
    }
    g_ptr_array_add(out, g_strdup(parts[i]));
  }
  p->ice_addresses_set = true;
  g_strfreev(p->c->ice_addresses);
  p->c->ice_addresses = NULL;
  if (out->len == 0) {
    g_ptr_array_free(out, TRUE);
    return 0; /* all interfaces */
  }
  g_ptr_array_add(out, NULL);
  p->c->ice_addresses = (char **)g_ptr_array_free(out, FALSE);
  return 0;
}

static void ice_servers_free(config_ice_server *list, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    g_free(list[i].url);
    g_free(list[i].username);
    if (list[i].password)
      explicit_bzero(list[i].password, strlen(list[i].password));
    g_free(list[i].password);
  }
  g_free(list);
}

/* "SCHEME:HOST:PORT[?transport=udp|tcp]", separated by commas */
static int parse_ice_servers(parse_ctx *p, const char *v, const char *const *schemes,
                             config_ice_server **list, size_t *n)
{
  g_auto(GStrv) parts = g_regex_split_simple("[,;\\s]+", v, 0, 0);
  GArray *out = g_array_new(FALSE, TRUE, sizeof(config_ice_server));
  int r = 0;

  for (unsigned i = 0; parts[i] && r == 0; i++) {
    const char *s = parts[i], *rest = NULL, *q;
    g_autofree char *hostport = NULL, *host = NULL;
    uint16_t port;

    if (*s == '\0')
      continue;
    for (unsigned k = 0; schemes[k] && !rest; k++)
      if (g_str_has_prefix(s, schemes[k]))
        rest = s + strlen(schemes[k]);
    if (!rest) {
      r = fail(p, "'%s' does not start with %s", s, schemes[0]);
      break;
    }
    q = strchr(rest, '?');
    hostport = q ? g_strndup(rest, q - rest) : g_strdup(rest);
    if (q && strcmp(q, "?transport=udp") != 0 && strcmp(q, "?transport=tcp") != 0) {
      r = fail(p, "'%s': the only parameter is ?transport=udp or ?transport=tcp", s);
      break;
    }
    r = parse_host_port(p, hostport, false, &host, &port);
    if (r == 0) {
      config_ice_server srv = { .url = g_strdup(s) };
      g_array_append_val(out, srv);
    }
  }
  if (r < 0) {
    size_t len = out->len;
    ice_servers_free((config_ice_server *)g_array_free(out, FALSE), len);
    return r;
  }
  ice_servers_free(*list, *n);
  *n = out->len;
  *list = (config_ice_server *)g_array_free(out, FALSE);
  return 0;
}

static int parse_stun_servers(parse_ctx *p, const char *v)
{
  static const char *const schemes[] = { "stun:", NULL };
  return parse_ice_servers(p, v, schemes, &p->c->stun_servers, &p->c->n_stun_servers);
}

static int parse_turn_servers(parse_ctx *p, const char *v)
{
  static const char *const schemes[] = { "turn:", "turns:", NULL };
  return parse_ice_servers(p, v, schemes, &p->c->turn_servers, &p->c->n_turn_servers);
}

static int parse_turn_username(parse_ctx *p, const char *v)
{
  g_free(p->turn_username);
  p->turn_username = g_strdup(v);
  return 0;
}

static int parse_turn_password(parse_ctx *p, const char *v)
{
  g_free(p->turn_password);
  p->turn_password = g_strdup(v);
  return 0;
}

#define UNSIGNED_PARSER(name, field, min, max)        \
  static int name(parse_ctx *p, const char *v)        \
  {                                                   \
    guint64 n;                                        \
    if (parse_unsigned(p, v, (min), (max), &n) < 0)   \
      return -EINVAL;                                 \
    p->c->field = n;                                  \
    return 0;                                         \
  }

UNSIGNED_PARSER(parse_connections_per_ip, connections_per_ip, 0, 1000000)
UNSIGNED_PARSER(parse_max_message_size, max_message_size, 1024, 16 * 1024 * 1024)
UNSIGNED_PARSER(parse_max_registrations, max_registrations, 1, 10000000)
UNSIGNED_PARSER(parse_max_expires, max_expires, 60, 86400)
UNSIGNED_PARSER(parse_transaction_timeout, transaction_timeout, 1, 300)
UNSIGNED_PARSER(parse_ring_timeout, ring_timeout, 1, 3600)
UNSIGNED_PARSER(parse_session_expires, session_expires, 0, 86400)
UNSIGNED_PARSER(parse_min_se, min_se, 1, 86400)
UNSIGNED_PARSER(parse_media_timeout, media_timeout, 0, 86400)
UNSIGNED_PARSER(parse_media_workers, media_workers, 0, 64)
UNSIGNED_PARSER(parse_ice_candidates_max, ice_candidates_max, 1, 100)
UNSIGNED_PARSER(parse_max_calls, max_calls, 1, 1000000)
UNSIGNED_PARSER(parse_pending_calls_per_connection, pending_calls_per_connection, 1, 10000)
UNSIGNED_PARSER(parse_pending_calls_per_ip, pending_calls_per_ip, 1, 1000000)

/* ---- the schema ---- */

typedef struct {
  const char *group;
  const char *key;
  key_parser parse;
} config_key;

static const config_key schema[] = {
  { "general",   "log_level",           parse_log_level },
  { "websocket", "ws",                  parse_ws },
  { "websocket", "wss",                 parse_wss },
  { "websocket", "certificate",         parse_certificate },
  { "websocket", "private_key",         parse_private_key },
  { "websocket", "static_dir",          parse_static_dir },
  { "sip",       "listen",              parse_sip_listen },
  { "sip",       "advertised_address",  parse_advertised_address },
  { "sip",       "domains",             parse_domains },
  { "sip",       "echo_user",           parse_echo_user },
  { "sip",       "session_expires",     parse_session_expires },
  { "sip",       "min_se",              parse_min_se },
  { "pbx",       "host",                parse_pbx_host },
  { "pbx",       "port",                parse_pbx_port },
  { "pbx",       "transport",           parse_pbx_transport },
  { "pbx",       "tls_directory",       parse_pbx_tls_directory },
  { "pbx",       "trusted",             parse_pbx_trusted },
  { "media",     "rtp_port_min",        parse_rtp_port_min },
  { "media",     "rtp_port_max",        parse_rtp_port_max },
  { "media",     "stun_servers",        parse_stun_servers },
  { "media",     "turn_servers",        parse_turn_servers },
  { "media",     "turn_username",       parse_turn_username },
  { "media",     "turn_password",       parse_turn_password },
  { "media",     "ice_addresses",       parse_ice_addresses },
  { "media",     "media_timeout",       parse_media_timeout },
  { "media",     "workers",             parse_media_workers },
  { "media",     "dtmf_to_pbx",         parse_dtmf_to_pbx },
  { "media",     "dtmf_to_browser",     parse_dtmf_to_browser },
  { "media",     "rtp_source",          parse_rtp_source },
  { "media",     "ice_candidates_max",  parse_ice_candidates_max },
  { "media",     "ice_loopback",        parse_ice_loopback },
  { "media",     "ice_allow",           parse_ice_allow },
  { "media",     "ice_deny",            parse_ice_deny },
  { "limits",    "connections_per_ip",  parse_connections_per_ip },
  { "limits",    "max_message_size",    parse_max_message_size },
  { "limits",    "max_registrations",   parse_max_registrations },
  { "limits",    "max_expires",         parse_max_expires },
  { "limits",    "transaction_timeout", parse_transaction_timeout },
  { "limits",    "ring_timeout",        parse_ring_timeout },
  { "limits",    "max_calls",           parse_max_calls },
  { "limits",    "pending_calls_per_connection", parse_pending_calls_per_connection },
  { "limits",    "pending_calls_per_ip", parse_pending_calls_per_ip },
};

static const config_key *schema_find(const char *group, const char *key)
{
  for (size_t i = 0; i < G_N_ELEMENTS(schema); i++)
    if (strcmp(schema[i].group, group) == 0 && (!key || strcmp(schema[i].key, key) == 0))
      return &schema[i];
  return NULL;
}

/* The demo page shipped with rtcsipd: the installed copy, or the one built
 * in the build directory (BUILD/gateway/www) when the binary runs from there. */
static char *default_static_dir(void)
{
#ifdef RTCSIPD_BUILD_ROOT
  g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
  if (exe && g_str_has_prefix(exe, RTCSIPD_BUILD_ROOT "/"))
    return g_strdup(RTCSIPD_UNINSTALLED_WWW_DIR);
#endif
  return g_file_test(RTCSIPD_WWW_DIR, G_FILE_TEST_IS_DIR) ? g_strdup(RTCSIPD_WWW_DIR) : NULL;
}

static void set_defaults(config *c)
{
  c->log_level = LOG_INFO;
  c->ws.host = g_strdup("127.0.0.1");
  c->ws.port = 8080;
  c->static_dir = default_static_dir();
  c->sip.host = g_strdup("127.0.0.1");
  c->sip.port = 5070;
  c->echo_user = g_strdup("echo");
  c->pbx_port = 0; /* from the transport, see finish() */
  c->pbx_transport = SIP_TRANSPORT_UDP;
  c->rtp_port_min = 20000;
  c->rtp_port_max = 29999;
  c->connections_per_ip = 100;
  c->max_message_size = 64 * 1024;
  c->max_registrations = 10000;
  c->max_expires = 3600;
  c->transaction_timeout = 32;
  c->ring_timeout = 60;
  c->media_timeout = 30;
  c->session_expires = 1800;
  c->min_se = 90;
  c->dtmf_to_pbx = DTMF_RFC4733;
  c->dtmf_to_browser = DTMF_RFC4733;
  c->rtp_source = RTP_SOURCE_SDP;
  c->ice_candidates_max = 20;
  c->max_calls = 1000;
  c->pending_calls_per_connection = 4;
  c->pending_calls_per_ip = 32;
}

/* Checks between keys, and what follows from several of them. */
static int finish(config *c, const parse_ctx *p, const line_index *ix, char **error)
{
#define REFUSE(group, key, ...)                                                   \
  do {                                                                            \
    g_autofree char *what_ = g_strdup_printf(__VA_ARGS__);                        \
    *error = g_strdup_printf("%s:%u: %s.%s: %s", c->path, line_of(ix, group, key), \
                             group, key, what_);                                  \
    return -EINVAL;                                                               \
  } while (0)

  if (!c->ws.port && !c->wss.port)
    REFUSE("websocket", "ws", "no listener: set ws, wss or both");
  if (c->ws.port && c->wss.port && c->ws.port == c->wss.port)
    REFUSE("websocket", "wss", "ws and wss cannot share port %u", c->ws.port);
  if (!c->tls_certificate != !c->tls_private_key)
    REFUSE("websocket", c->tls_certificate ? "private_key" : "certificate",
           "certificate and private_key go together");
  if (!c->domains)
    REFUSE("sip", "domains", "missing: the SIP domains served are required");
  if (c->session_expires && c->session_expires < c->min_se)
    REFUSE("sip", "session_expires", "%u is below min_se (%u)", c->session_expires, c->min_se);
  if (!c->advertised_address) {
    if (g_strcmp0(c->sip.host, "0.0.0.0") == 0 || g_strcmp0(c->sip.host, "::") == 0)
      REFUSE("sip", "advertised_address",
             "missing: required when listen is %s (the PBX must know where to reach rtcsipd)",
             c->sip.host);
    c->advertised_address = g_strdup(c->sip.host);
  }
  if (!p->ice_addresses_set && is_ip_literal(c->advertised_address)) {
    c->ice_addresses = g_new0(char *, 2);
    c->ice_addresses[0] = g_strdup(c->advertised_address);
  }
  if (!p->ice_loopback_set) {
    /* rtcsipd offering browsers loopback candidates only: the browser is on
     * this host, and its checks come from the loopback too */
    c->ice_loopback = c->ice_addresses != NULL;
    for (char **a = c->ice_addresses; a && *a; a++) {
      struct sockaddr_storage ss;
      if (netlist_parse_address(*a, &ss) < 0 || !netlist_is_loopback((struct sockaddr *)&ss))
        c->ice_loopback = false;
    }
  }
  if (c->pending_calls_per_connection > c->pending_calls_per_ip)
    REFUSE("limits", "pending_calls_per_connection", "%u is above pending_calls_per_ip (%u)",
           c->pending_calls_per_connection, c->pending_calls_per_ip);
  if (!c->pbx_host)
    REFUSE("pbx", "host", "missing: the PBX (or outbound proxy) address is required");
  if (!c->pbx_port)
    c->pbx_port = c->pbx_transport == SIP_TRANSPORT_TLS ? DEFAULT_SIPS_PORT : DEFAULT_SIP_PORT;
  if (c->rtp_port_min > c->rtp_port_max || c->rtp_port_max - c->rtp_port_min < 1)
    REFUSE("media", "rtp_port_max", "the range %u-%u holds no port pair", c->rtp_port_min,
           c->rtp_port_max);
  if (c->n_turn_servers && (!p->turn_username || !p->turn_password))
    REFUSE("media", "turn_servers", "TURN needs turn_username and turn_password");
  for (size_t i = 0; i < c->n_turn_servers; i++) {
    c->turn_servers[i].username = g_strdup(p->turn_username);
    c->turn_servers[i].password = g_strdup(p->turn_password);
  }
  return 0;
#undef REFUSE
}

int config_load(const char *path, config **ret, char **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_autoptr(GError) gerr = NULL;
  g_autofree char *text = NULL, *dir = NULL;
  g_auto(GStrv) groups = NULL;
  line_index ix = { 0 };
  config *c = NULL;
  parse_ctx p = { 0 };
  gsize len = 0;
  int r = -EINVAL;

  *ret = NULL;
  *error = NULL;
  if (!g_file_get_contents(path, &text, &len, &gerr)) {
    int e = gerr->domain == G_FILE_ERROR && gerr->code == G_FILE_ERROR_NOENT ? ENOENT : EIO;
    *error = g_strdup_printf("%s:0: cannot read the configuration: %s", path, gerr->message);
    return -e;
  }
  if (!g_utf8_validate(text, (gssize)len, NULL) || memchr(text, '\0', len)) {
    *error = g_strdup_printf("%s:0: the file is not UTF-8 text", path);
    return -EINVAL;
  }
  line_index_build(&ix, text);
  if (ix.bad_line) {
    *error = g_strdup_printf("%s:%u: syntax: expected [group], key = value, or # comment",
                             path, ix.bad_line);
    goto out;
  }
  if (ix.duplicate) {
    *error = g_strdup_printf("%s:%u: %s: set twice", path, ix.duplicate_line, ix.duplicate);
    goto out;
  }
  if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &gerr)) {
    *error = g_strdup_printf("%s:0: syntax: %s", path, gerr->message);
    goto out;
  }

  c = g_new0(config, 1);
  c->path = g_strdup(path);
  set_defaults(c);
  p.c = c;
  p.dir = dir = g_path_get_dirname(path);

  groups = g_key_file_get_groups(kf, NULL);
  for (unsigned gi = 0; groups[gi]; gi++) {
    const char *group = groups[gi];
    g_auto(GStrv) keys = NULL;

    if (!schema_find(group, NULL)) {
      *error = g_strdup_printf("%s:%u: [%s]: unknown group", path, line_of(&ix, group, NULL), group);
      goto out;
    }
    keys = g_key_file_get_keys(kf, group, NULL, NULL);
    for (unsigned ki = 0; keys && keys[ki]; ki++) {
      const char *key = keys[ki];
      const config_key *k = schema_find(group, key);
      unsigned line = line_of(&ix, group, key);
      g_autofree char *value = NULL;

      if (!k) {
        *error = g_strdup_printf("%s:%u: %s.%s: unknown key", path, line, group, key);
        goto out;
      }
      value = g_key_file_get_string(kf, group, key, &gerr);
      if (!value) {
        *error = g_strdup_printf("%s:%u: %s.%s: %s", path, line, group, key, gerr->message);
        goto out;
      }
      g_strstrip(value);
      if (k->parse(&p, value) < 0) {
        *error = g_strdup_printf("%s:%u: %s.%s: %s", path, line, group, key, p.why);
        goto out;
      }
    }
  }
  r = finish(c, &p, &ix, error);
  if (r == 0) {
    *ret = g_steal_pointer(&c);
  }

out:
  g_free(p.why);
  g_free(p.turn_username);
  if (p.turn_password)
    explicit_bzero(p.turn_password, strlen(p.turn_password));
  g_free(p.turn_password);
  line_index_clear(&ix);
  config_free(c);
  return r;
}

void config_free(config *c)
{
  if (!c)
    return;
  g_free(c->path);
  g_free(c->ws.host);
  g_free(c->wss.host);
  g_free(c->tls_certificate);
  g_free(c->tls_private_key);
  g_free(c->static_dir);
  g_free(c->sip.host);
  g_free(c->advertised_address);
  g_strfreev(c->domains);
  g_free(c->echo_user);
  g_strfreev(c->ice_addresses);
  g_free(c->pbx_host);
  g_free(c->pbx_tls_directory);
  g_free(c->pbx_trusted);
  g_free(c->ice_allow);
  g_free(c->ice_deny);
  ice_servers_free(c->stun_servers, c->n_stun_servers);
  ice_servers_free(c->turn_servers, c->n_turn_servers);
  g_free(c);
}

bool config_serves_domain(const config *c, const char *domain)
{
  if (!domain || !c->domains)
    return false;
  for (char **d = c->domains; *d; d++)
    if (g_ascii_strcasecmp(*d, domain) == 0)
      return true;
  return false;
}
