/* ICE settings from the configuration.  See ice_config.h. */
#include "gateway/ice_config.h"

#include <string.h>
#include <glib.h>
#include <gio/gio.h>

#include "config/log.h"

/* "SCHEME:HOST:PORT[?transport=udp|tcp]" (checked by config.c) into *host
 * (g_malloc'd, brackets of an IPv6 address taken off), *port and *tcp. */
static bool split_server_url(const char *url, const char *scheme, char **host, uint16_t *port,
                             bool *tcp)
{
  g_autofree char *hp = NULL;
  const char *q, *colon;

  if (!g_str_has_prefix(url, scheme))
    return false;
  url += strlen(scheme);
  q = strchr(url, '?');
  hp = q ? g_strndup(url, (gsize)(q - url)) : g_strdup(url);
  *tcp = q && strcmp(q, "?transport=tcp") == 0;
  colon = strrchr(hp, ':');
  if (!colon)
    return false;
  *port = (uint16_t)g_ascii_strtoull(colon + 1, NULL, 10);
  if (hp[0] == '[' && colon > hp + 1 && colon[-1] == ']')
    *host = g_strndup(hp + 1, (gsize)(colon - hp - 2));
  else
    *host = g_strndup(hp, (gsize)(colon - hp));
  return true;
}

void ice_config_init(ice_config *ic, const config *cfg)
{
  bool tcp = false;

  memset(ic, 0, sizeof *ic);
  ic->addresses = g_strdupv(cfg->ice_addresses);
  ic->port_min = cfg->rtp_port_min;
  ic->port_max = cfg->rtp_port_max;
  ic->filter = (ice_filter){
    .candidates_max = cfg->ice_candidates_max,
    .loopback = cfg->ice_loopback,
    .allow = g_memdup2(cfg->ice_allow, cfg->n_ice_allow * sizeof(config_network)),
    .n_allow = cfg->n_ice_allow,
    .deny = g_memdup2(cfg->ice_deny, cfg->n_ice_deny * sizeof(config_network)),
    .n_deny = cfg->n_ice_deny,
  };
  if (cfg->n_stun_servers)
    split_server_url(cfg->stun_servers[0].url, "stun:", &ic->stun_host, &ic->stun_port, &tcp);
  for (size_t i = 0; i < cfg->n_turn_servers && !ic->turn_host; i++) {
    const config_ice_server *t = &cfg->turn_servers[i];
    char *host = NULL;
    uint16_t port = 0;

    /* turns: (TLS) is not offered by libnice's TURN client here: skipped */
    if (!split_server_url(t->url, "turn:", &host, &port, &tcp))
      continue;
    if (!g_hostname_is_ip_address(host)) {
      log_msg(LOG_WARNING, "[media] turn_servers: %s is not an IP address; libnice cannot use it",
              host);
      g_free(host);
      continue;
    }
    ic->turn_host = host;
    ic->turn_port = port;
    ic->turn_username = g_strdup(t->username);
    ic->turn_password = g_strdup(t->password);
    ic->turn_transport = tcp ? ICE_TURN_TCP : ICE_TURN_UDP;
  }
}

void ice_config_clear(ice_config *ic)
{
  g_strfreev(ic->addresses);
  g_free(ic->stun_host);
  g_free(ic->turn_host);
  g_free(ic->turn_username);
  g_free(ic->turn_password);
  g_free((config_network *)ic->filter.allow);
  g_free((config_network *)ic->filter.deny);
  memset(ic, 0, sizeof *ic);
}

void ice_config_apply(const ice_config *ic, ice_settings *s)
{
  s->local_addresses = (const char *const *)ic->addresses;
  s->port_min = ic->port_min;
  s->port_max = ic->port_max;
  s->stun_host = ic->stun_host;
  s->stun_port = ic->stun_port;
  s->turn_host = ic->turn_host;
  s->turn_port = ic->turn_port;
  s->turn_username = ic->turn_username;
  s->turn_password = ic->turn_password;
  s->turn_transport = ic->turn_host ? ic->turn_transport : ICE_TURN_NONE;
  s->filter = &ic->filter;
}
