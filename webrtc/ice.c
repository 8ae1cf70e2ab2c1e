/* ICE toward the browser with libnice: see ice.h. */
#include "webrtc/ice.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <gio/gio.h>
#include <nice/agent.h>

#include "config/log.h"

#define ICE_COMPONENT 1
#define ICE_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define ICE_DEFAULT_SERVER_PORT 3478

struct ice_agent {
  NiceAgent *nice;
  guint stream_id;
  GMainContext *context;
  ice_callbacks cb;
  void *user;
  char *log_id;
  unsigned connect_timeout_ms;
  bool has_turn;

  ice_filter filter;         /* its networks owned here */
  bool has_filter;
  unsigned remote_accepted;  /* remote candidates handed to libnice so far */

  ice_state state;     /* as libnice (or the timeout) last said */
  ice_state reported;  /* as on_state last said */
  bool gathered_pending;
  bool selected_pending;  /* a pair was selected: on_selected once connected */
  unsigned depth;      /* > 0 while a callback runs */
  bool freed;          /* ice_agent_free() ran inside a callback */

  char *ufrag, *pwd;   /* cached local credentials */
  GSource *notify_source, *timeout_source;
};

const char *ice_state_to_string(ice_state state) {
  switch (state) {
  case ICE_NEW: return "new";
  case ICE_GATHERING: return "gathering";
  case ICE_CHECKING: return "checking";
  case ICE_CONNECTED: return "connected";
  case ICE_FAILED: return "failed";
  }
  return "?";
}

static void source_clear(GSource **s) {
  if (*s) {
    g_source_destroy(*s);
    g_source_unref(*s);
    *s = NULL;
  }
}

/* ---- events toward the user: always from an idle source, never from inside
 * an ice_agent_* call or libnice's own stack ---- */

static gboolean notify_dispatch(gpointer data) {
  ice_agent *a = data;

  g_source_unref(a->notify_source); /* the context holds it while it dispatches */
  a->notify_source = NULL;
  a->depth++;
  if (a->gathered_pending && !a->freed) {
    a->gathered_pending = false;
    if (a->cb.on_gathered)
      a->cb.on_gathered(a->user);
  }
  while (!a->freed && a->reported != a->state) {
    a->reported = a->state;
    if (a->cb.on_state)
      a->cb.on_state(a->user, a->reported);
  }
  if (!a->freed && a->selected_pending && a->state == ICE_CONNECTED) {
    a->selected_pending = false;
    if (a->cb.on_selected)
      a->cb.on_selected(a->user);
  }
  a->depth--;
  return G_SOURCE_REMOVE;
}

static void notify_schedule(ice_agent *a) {
  if (a->notify_source || a->freed)
    return;
  a->notify_source = g_idle_source_new();
  g_source_set_priority(a->notify_source, G_PRIORITY_DEFAULT); /* not behind busy media */
  g_source_set_callback(a->notify_source, notify_dispatch, a, NULL);
  g_source_attach(a->notify_source, a->context);
}

static void state_set(ice_agent *a, ice_state s) {
  if (a->freed || a->state == s || a->state == ICE_FAILED)
    return;
  log_id(a->log_id, s == ICE_FAILED ? LOG_NOTICE : LOG_INFO, "ice %s -> %s",
         ice_state_to_string(a->state), ice_state_to_string(s));
  a->state = s;
  if (s == ICE_CONNECTED || s == ICE_FAILED)
    source_clear(&a->timeout_source);
  notify_schedule(a);
}

/* ---- libnice signals ---- */

static void on_nice_gathering_done(NiceAgent *nice, guint stream_id, gpointer data) {
  ice_agent *a = data;
  if (a->freed || stream_id != a->stream_id)
    return;
  a->gathered_pending = true;
  notify_schedule(a);
}

static void on_nice_state(NiceAgent *nice, guint stream_id, guint component_id,
                          guint state, gpointer data) {
  ice_agent *a = data;
  if (a->freed || stream_id != a->stream_id)
    return;
  switch ((NiceComponentState)state) {
  case NICE_COMPONENT_STATE_CONNECTING:
    /* after connected (a restart) the selected pair keeps carrying media */
    if (a->state != ICE_CONNECTED)
      state_set(a, ICE_CHECKING);
    break;
  case NICE_COMPONENT_STATE_CONNECTED:
  case NICE_COMPONENT_STATE_READY:
    state_set(a, ICE_CONNECTED);
    break;
  case NICE_COMPONENT_STATE_FAILED:
    state_set(a, ICE_FAILED);
    break;
  default: /* DISCONNECTED, GATHERING: ours already say more */
    break;
  }
}

static void on_nice_selected_pair(NiceAgent *nice, guint stream_id, guint component_id,
                                  NiceCandidate *local, NiceCandidate *remote, gpointer data) {
  ice_agent *a = data;
  if (a->freed)
    return;
  a->selected_pending = true;
  notify_schedule(a);
  if (!log_enabled(LOG_INFO))
    return;
  char l[NICE_ADDRESS_STRING_LEN], r[NICE_ADDRESS_STRING_LEN];
  nice_address_to_string(&local->addr, l);
  nice_address_to_string(&remote->addr, r);
  log_id(a->log_id, LOG_INFO, "ice selected pair %s:%u -> %s:%u", l,
         nice_address_get_port(&local->addr), r, nice_address_get_port(&remote->addr));
}

/* The media hot path: no allocation, no logging. */
static void on_nice_recv(NiceAgent *nice, guint stream_id, guint component_id,
                         guint len, gchar *buf, gpointer data) {
  ice_agent *a = data;
  if (G_UNLIKELY(a->freed))
    return;
  a->depth++;
  a->cb.on_receive(a->user, (uint8_t *)buf, len);
  a->depth--;
}

static gboolean on_connect_timeout(gpointer data) {
  ice_agent *a = data;
  /* the context holds the source while it dispatches */
  g_source_unref(a->timeout_source);
  a->timeout_source = NULL;
  if (a->state != ICE_CONNECTED) {
    log_id(a->log_id, LOG_NOTICE, "ice not connected after %u ms", a->connect_timeout_ms);
    state_set(a, ICE_FAILED);
  }
  return G_SOURCE_REMOVE;
}

/* ---- life cycle ---- */

static void agent_destroy(ice_agent *a) {
  source_clear(&a->notify_source);
  source_clear(&a->timeout_source);
  if (a->nice) {
    g_signal_handlers_disconnect_by_data(a->nice, a);
    if (a->stream_id)
      nice_agent_attach_recv(a->nice, a->stream_id, ICE_COMPONENT, a->context, NULL, NULL);
    if (a->has_turn) /* releases the allocation; holds its own reference meanwhile */
      nice_agent_close_async(a->nice, NULL, NULL);
    g_object_unref(a->nice);
  }
  g_main_context_unref(a->context);
  g_free((config_network *)a->filter.allow);
  g_free((config_network *)a->filter.deny);
  g_free(a->ufrag);
  g_free(a->pwd);
  g_free(a->log_id);
  g_free(a);
}

static gboolean deferred_destroy(gpointer data) {
  agent_destroy(data);
  return G_SOURCE_REMOVE;
}

void ice_agent_free(ice_agent *a) {
  if (!a || a->freed)
    return;
  if (a->depth == 0) {
    agent_destroy(a);
    return;
  }
  /* Inside one of our callbacks, maybe on libnice's own stack: silence
   * everything now, let go of libnice once the stack has unwound. */
  a->freed = true;
  source_clear(&a->notify_source);
  source_clear(&a->timeout_source);
  GSource *s = g_idle_source_new();
  g_source_set_priority(s, G_PRIORITY_DEFAULT);
  g_source_set_callback(s, deferred_destroy, a, NULL);
  g_source_attach(s, a->context);
  g_source_unref(s);
}

static bool is_ip(const char *host) {
  return host && g_hostname_is_ip_address(host);
}

int ice_agent_new(const ice_settings *settings, const ice_callbacks *callbacks,
                  void *user, ice_agent **ret) {
  g_return_val_if_fail(settings && callbacks && callbacks->on_receive && ret, -EINVAL);

  if (settings->port_min > settings->port_max)
    return -EINVAL;
  if (settings->stun_host && !*settings->stun_host)
    return -EINVAL;
  if (settings->turn_transport != ICE_TURN_NONE &&
      (!is_ip(settings->turn_host) || !settings->turn_username || !settings->turn_password))
    return -EINVAL;

  ice_agent *a = g_new0(ice_agent, 1);
  a->context = settings->context ? g_main_context_ref(settings->context)
                                 : g_main_context_ref(g_main_context_default());
  a->cb = *callbacks;
  a->user = user;
  a->log_id = g_strdup(settings->log_id);
  a->connect_timeout_ms = settings->connect_timeout_ms ? settings->connect_timeout_ms
                                                       : ICE_DEFAULT_CONNECT_TIMEOUT_MS;
  a->state = a->reported = ICE_NEW;
  if (settings->filter) {
    a->has_filter = true;
    a->filter = *settings->filter;
    a->filter.allow = g_memdup2(settings->filter->allow,
                                settings->filter->n_allow * sizeof(config_network));
    a->filter.deny = g_memdup2(settings->filter->deny,
                               settings->filter->n_deny * sizeof(config_network));
  }

  /* Controlling (rtcsipd offered: a call from the PBX): aggressive
   * nomination, USE-CANDIDATE in every check, so that the first check that
   * succeeds selects its pair.  Regular nomination would wait for a pacing
   * tick (Ta, 20 ms) to see the check succeed, one more to decide (the
   * stopping criterion), and a third to send the check with USE-CANDIDATE:
   * about 60 ms on 127.0.0.1 instead of 20, and the browser, which sends its
   * ClientHello as soon as its own check succeeds, waits for our DTLS that
   * long.  A better pair that succeeds later is still nominated and
   * selected (on_selected again); browsers as controlled agents take
   * USE-CANDIDATE in any check (RFC 5245 8.1.1.2; RFC 8445 keeps regular
   * nomination only, and a controlled agent must accept both).
   * Controlled (rtcsipd answered): the browser nominates; the mode is ours
   * only for a role conflict.  No trickle.  No consent freshness nor
   * keepalive checks in libnice: once media flows, the media worker reads
   * the pair (ice_agent_fastpath_open) and the answers to libnice's checks
   * would never reach it.  The browser's own consent checks are answered
   * there; silence ends the call through the media timeout. */
  a->nice = nice_agent_new_full(a->context, NICE_COMPATIBILITY_RFC5245,
                                settings->controlling ? NICE_AGENT_OPTION_NONE
                                                      : NICE_AGENT_OPTION_REGULAR_NOMINATION);
  g_object_set(a->nice,
               "controlling-mode", (gboolean)settings->controlling,
               "upnp", FALSE,
               "ice-tcp", FALSE,
               "ice-udp", TRUE,
               "keepalive-conncheck", FALSE,
               NULL);
  if (settings->stun_host)
    g_object_set(a->nice, "stun-server", settings->stun_host,
                 "stun-server-port", (guint)(settings->stun_port ? settings->stun_port
                                                                 : ICE_DEFAULT_SERVER_PORT),
                 NULL);

  int r = -EINVAL;
  for (const char *const *p = settings->local_addresses; p && *p; p++) {
    NiceAddress addr;
    nice_address_init(&addr);
    if (!nice_address_set_from_string(&addr, *p) || !nice_agent_add_local_address(a->nice, &addr))
      goto fail;
  }

  r = -ENOMEM;
  a->stream_id = nice_agent_add_stream(a->nice, 1);
  if (a->stream_id == 0)
    goto fail;
  if (settings->port_min || settings->port_max)
    nice_agent_set_port_range(a->nice, a->stream_id, ICE_COMPONENT,
                              settings->port_min ? settings->port_min : 1,
                              settings->port_max ? settings->port_max : 65535);
  if (settings->turn_transport != ICE_TURN_NONE) {
    a->has_turn = true;
    if (!nice_agent_set_relay_info(a->nice, a->stream_id, ICE_COMPONENT, settings->turn_host,
                                   settings->turn_port ? settings->turn_port
                                                       : ICE_DEFAULT_SERVER_PORT,
                                   settings->turn_username, settings->turn_password,
                                   settings->turn_transport == ICE_TURN_TCP
                                       ? NICE_RELAY_TYPE_TURN_TCP : NICE_RELAY_TYPE_TURN_UDP)) {
      r = -EINVAL;
      goto fail;
    }
  }

  g_signal_connect(a->nice, "candidate-gathering-done", G_CALLBACK(on_nice_gathering_done), a);
  g_signal_connect(a->nice, "component-state-changed", G_CALLBACK(on_nice_state), a);
  g_signal_connect(a->nice, "new-selected-pair-full", G_CALLBACK(on_nice_selected_pair), a);
  if (!nice_agent_attach_recv(a->nice, a->stream_id, ICE_COMPONENT, a->context, on_nice_recv, a))
    goto fail;

  *ret = a;
  return 0;

fail:
  agent_destroy(a);
  return r;
}

static const ice_filter *agent_filter(const ice_agent *a) {
  return a->has_filter ? &a->filter : NULL;
}

/* The socket filter on every UDP socket of the component (host sockets,
 * which also carry server-reflexive and TURN-UDP traffic).  libnice binds
 * them in nice_agent_gather_candidates(), before anyone knows their port or
 * our password; an ICE restart keeps them. */
static void attach_socket_filter(ice_agent *a) {
  GPtrArray *socks = nice_agent_get_sockets(a->nice, a->stream_id, ICE_COMPONENT);
  int failed = 0, err = 0;

  for (guint i = 0; socks && i < socks->len; i++) {
    GSocket *s = g_ptr_array_index(socks, i);
    if (g_socket_get_socket_type(s) != G_SOCKET_TYPE_DATAGRAM)
      continue;
    int r = ice_filter_attach(agent_filter(a), g_socket_get_fd(s));
    if (r < 0) {
      failed++;
      err = r;
    }
  }
  if (failed)
    log_id(a->log_id, LOG_WARNING,
           "ice: no socket filter on %d sockets (%s): peer-reflexive checks from denied sources get answers",
           failed, g_strerror(-err));
  if (socks)
    g_ptr_array_unref(socks);
}

int ice_agent_gather(ice_agent *a) {
  g_return_val_if_fail(a && !a->freed, -EINVAL);
  state_set(a, ICE_GATHERING);
  /* FALSE when no socket could be bound (e.g. the port range is used up) */
  if (!nice_agent_gather_candidates(a->nice, a->stream_id)) {
    log_id(a->log_id, LOG_WARNING, "ice: gathering failed (no port free in the range?)");
    return -EIO;
  }
  attach_socket_filter(a);
  return 0;
}

void ice_agent_local_credentials(ice_agent *a, const char **ufrag, const char **pwd) {
  if (!a->ufrag)
    nice_agent_get_local_credentials(a->nice, a->stream_id, &a->ufrag, &a->pwd);
  *ufrag = a->ufrag;
  *pwd = a->pwd;
}

char **ice_agent_local_candidates(ice_agent *a) {
  GPtrArray *out = g_ptr_array_new();
  GSList *cands = nice_agent_get_local_candidates(a->nice, a->stream_id, ICE_COMPONENT);
  for (GSList *l = cands; l; l = l->next) {
    NiceCandidate *c = l->data;
    if (c->transport != NICE_CANDIDATE_TRANSPORT_UDP)
      continue;
    char *sdp = nice_agent_generate_local_candidate_sdp(a->nice, c);
    if (sdp && g_str_has_prefix(sdp, "a="))
      g_ptr_array_add(out, g_strdup(sdp + 2));
    g_free(sdp);
  }
  g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(out, FALSE);
}

int ice_agent_set_remote(ice_agent *a, const char *ufrag, const char *pwd,
                         const char *const *candidates) {
  g_return_val_if_fail(a && !a->freed, -EINVAL);
  if (!ufrag || !*ufrag || !pwd || !*pwd)
    return -EINVAL;
  if (!nice_agent_set_remote_credentials(a->nice, a->stream_id, ufrag, pwd))
    return -EIO;

  GSList *list = NULL;
  ice_filter_tally tally = { 0 };
  for (const char *const *p = candidates; p && *p; p++) {
    /* libnice wants the whole attribute line, "a=candidate:..." */
    g_autofree char *line = g_str_has_prefix(*p, "a=") ? g_strdup(*p) : g_strconcat("a=", *p, NULL);
    g_strchomp(line);
    tally.total++;
    NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(a->nice, a->stream_id, line);
    ice_filter_reason why;
    if (!c) {
      why = ice_filter_unparsed(line);
    } else if (c->transport != NICE_CANDIDATE_TRANSPORT_UDP) {
      why = ICE_FILTER_TCP;
    } else if (c->component_id != ICE_COMPONENT) {
      why = ICE_FILTER_UNUSABLE;
    } else {
      /* the address libnice would send checks to, as libnice parsed it */
      struct sockaddr_storage ss;
      memset(&ss, 0, sizeof ss);
      nice_address_copy_to_sockaddr(&c->addr, (struct sockaddr *)&ss);
      why = ice_filter_admit(agent_filter(a), &a->remote_accepted, (struct sockaddr *)&ss);
    }
    if (why != ICE_FILTER_ACCEPT) {
      tally.ignored[why]++;
      if (c)
        nice_candidate_free(c);
      continue;
    }
    list = g_slist_prepend(list, c);
  }
  char summary[256];
  unsigned ignored = ice_filter_summary(&tally, summary, sizeof summary);
  if (ignored) {
    /* refused for a reason the operator may want to know of: NOTICE */
    bool refused = tally.ignored[ICE_FILTER_FORBIDDEN] || tally.ignored[ICE_FILTER_LOOPBACK] ||
                   tally.ignored[ICE_FILTER_NOT_ALLOWED] || tally.ignored[ICE_FILTER_DENIED] ||
                   tally.ignored[ICE_FILTER_OVER_LIMIT];
    log_id(a->log_id, refused ? LOG_NOTICE : LOG_INFO, "ICE: %s", summary);
  }
  list = g_slist_reverse(list);

  int r = 0;
  if (list && nice_agent_set_remote_candidates(a->nice, a->stream_id, ICE_COMPONENT, list) < 0)
    r = -EIO;
  g_slist_free_full(list, (GDestroyNotify)nice_candidate_free);
  if (r < 0)
    return r;

  if (a->state != ICE_CONNECTED && !a->timeout_source) {
    a->timeout_source = g_timeout_source_new(a->connect_timeout_ms);
    g_source_set_callback(a->timeout_source, on_connect_timeout, a, NULL);
    g_source_attach(a->timeout_source, a->context);
  }
  if (a->state == ICE_NEW || a->state == ICE_GATHERING)
    state_set(a, ICE_CHECKING);
  return 0;
}

int ice_agent_restart(ice_agent *a, bool controlling) {
  g_return_val_if_fail(a && !a->freed, -EINVAL);
  /* before the restart: libnice may have switched roles on a conflict with
   * the peer's early checks (the browser checks in its new role as soon as
   * it has offered); the new session starts in the role the offer gave */
  g_object_set(a->nice, "controlling-mode", (gboolean)controlling, NULL);
  if (!nice_agent_restart_stream(a->nice, a->stream_id))
    return -EIO;
  g_clear_pointer(&a->ufrag, g_free);
  g_clear_pointer(&a->pwd, g_free);
  source_clear(&a->timeout_source);
  if (a->state == ICE_FAILED) /* a restart is the one way out of failed */
    a->state = a->reported = ICE_NEW;
  return 0;
}

/* The media hot path: no allocation, no logging. */
int ice_agent_send(ice_agent *a, const uint8_t *data, size_t len) {
  if (G_UNLIKELY(a->state != ICE_CONNECTED))
    return -ENOTCONN;
  if (G_UNLIKELY(len > 65535))
    return -EMSGSIZE;
  gint n = nice_agent_send(a->nice, a->stream_id, ICE_COMPONENT, (guint)len, (const gchar *)data);
  return n == (gint)len ? 0 : -EAGAIN;
}

int ice_agent_send_mt(ice_agent *a, const uint8_t *data, size_t len) {
  if (G_UNLIKELY(len > 65535))
    return -EMSGSIZE;
  gint n = nice_agent_send(a->nice, a->stream_id, ICE_COMPONENT, (guint)len, (const gchar *)data);
  return n == (gint)len ? 0 : -EAGAIN;
}

int ice_agent_fastpath_open(ice_agent *a, char **ufrag, char **pwd) {
  NiceCandidate *local = NULL, *remote = NULL;
  struct sockaddr_storage here, there;
  socklen_t here_len = sizeof here;
  int one = 1, fd, r;

  g_return_val_if_fail(a && !a->freed, -EINVAL);
  if (a->state != ICE_CONNECTED ||
      !nice_agent_get_selected_pair(a->nice, a->stream_id, ICE_COMPONENT, &local, &remote))
    return -ENOTCONN;
  if (local->type == NICE_CANDIDATE_TYPE_RELAYED || local->transport != NICE_CANDIDATE_TRANSPORT_UDP)
    return -ENOTSUP;
  GSocket *gs = nice_agent_get_selected_socket(a->nice, a->stream_id, ICE_COMPONENT);
  if (!gs)
    return -ENOTSUP;
  int nice_fd = g_socket_get_fd(gs);
  memset(&there, 0, sizeof there);
  nice_address_copy_to_sockaddr(&remote->addr, (struct sockaddr *)&there);
  socklen_t there_len = there.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (getsockname(nice_fd, (struct sockaddr *)&here, &here_len) < 0 ||
      setsockopt(nice_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
    r = -errno;
    g_object_unref(gs);
    return r;
  }
  g_object_unref(gs);
  fd = socket(here.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(fd, (struct sockaddr *)&here, here_len) < 0 ||
      connect(fd, (struct sockaddr *)&there, there_len) < 0) {
    r = -errno;
    close(fd);
    return r;
  }
  const char *u, *p;
  ice_agent_local_credentials(a, &u, &p);
  *ufrag = g_strdup(u);
  *pwd = g_strdup(p);
  return fd;
}

ice_state ice_agent_state(const ice_agent *a) {
  return a->state;
}

int ice_default_candidate(char **cands, char *address, size_t size, uint16_t *port)
{
  char addr[64];
  unsigned p;

  /* "candidate:F C transport priority ADDRESS PORT typ ..." */
  if (!cands || !cands[0] ||
      sscanf(cands[0], "%*s %*s %*s %*s %63s %u", addr, &p) != 2 || p == 0 || p > 65535)
    return -ENOENT;
  g_strlcpy(address, addr, size);
  *port = (uint16_t)p;
  return 0;
}
