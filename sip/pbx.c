/* PBX side: nta agent, default leg for requests from the PBX, client
 * transactions toward it.  See pbx.h. */
#include "sip/pbx.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>

#include "config/log.h"
#include "sip/sip_filter.h"

struct pbx_link {
  su_home_t home[1];
  su_root_t *root;
  nta_agent_t *agent;
  nta_leg_t *default_leg;
  pbx_callbacks callbacks;
  void *user;
  char *target;        /* "sip:host:port;transport=udp" */
  url_t *target_url;   /* parsed target, in home */
  char *contact_host;
  uint16_t contact_port;     /* the UDP/TCP port */
  uint16_t contact_tls_port; /* the TLS port; 0 without TLS */
  sip_transport transport;
  char *target_host;         /* the PBX host as configured (name or literal) */
  config_network *trusted;   /* the PBX's addresses, then [pbx] trusted */
  size_t n_trusted;
  int filtered[8];           /* Sofia's listening sockets, with the filter */
  size_t n_filtered;
};

static int sip_filter_apply(pbx_link *link);

struct pbx_client_tx {
  pbx_link *link;
  nta_outgoing_t *orq;
  pbx_response_fn *callback;
  void *user;
};

struct pbx_server_tx {
  pbx_link *link;
  nta_incoming_t *irq;
};

static char *format_host(const char *host)
{
  /* IPv6 literals go in brackets in a SIP URI */
  if (strchr(host, ':') && host[0] != '[')
    return g_strdup_printf("[%s]", host);
  return g_strdup(host);
}

static char *make_target(const char *host, uint16_t port, sip_transport transport)
{
  g_autofree char *h = format_host(host);
  return g_strdup_printf("sip:%s:%u;transport=%s", h, port, sip_transport_name(transport));
}

int pbx_link_set_target(pbx_link *link, const char *host, uint16_t port, sip_transport transport)
{
  char *target;
  url_t *url;

  if (transport == SIP_TRANSPORT_TLS && link->agent && !link->contact_tls_port)
    return -EPROTONOSUPPORT;
  target = make_target(host, port, transport);
  url = url_make(link->home, target);

  if (!url || url->url_type != url_sip) {
    g_free(target);
    return -EINVAL;
  }
  if (link->target_url)
    su_free(link->home, link->target_url);
  g_free(link->target);
  g_free(link->target_host);
  link->target_host = g_strdup(host);
  link->target = target;
  link->target_url = url;
  link->transport = transport;
  return 0;
}

/* ---- trust ---- */

/* The addresses HOST resolves to, as /32 or /128 networks, appended to OUT. */
static int resolve_host(const char *host, GArray *out)
{
  struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM };
  struct addrinfo *res = NULL;
  int r = getaddrinfo(host, NULL, &hints, &res);

  if (r != 0) {
    log_msg(LOG_ERR, "pbx: cannot resolve %s: %s", host, gai_strerror(r));
    return -EHOSTUNREACH;
  }
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    config_network n = { 0 };
    char text[INET6_ADDRSTRLEN];

    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof text, NULL, 0, NI_NUMERICHOST) != 0 ||
        netlist_parse(text, &n) < 0)
      continue;
    bool seen = false;
    for (guint i = 0; i < out->len; i++)
      if (memcmp(&g_array_index(out, config_network, i), &n, sizeof n) == 0)
        seen = true;
    if (!seen)
      g_array_append_val(out, n);
  }
  freeaddrinfo(res);
  return out->len ? 0 : -EHOSTUNREACH;
}

int pbx_link_set_trusted(pbx_link *link, const config_network *extra, size_t n_extra)
{
  GArray *list = g_array_new(FALSE, TRUE, sizeof(config_network));
  int r = resolve_host(link->target_host, list);

  if (r < 0) {
    g_array_free(list, TRUE);
    return r;
  }
  if (n_extra)
    g_array_append_vals(list, extra, n_extra);
  g_free(link->trusted);
  link->n_trusted = list->len;
  link->trusted = (config_network *)g_array_free(list, FALSE);
  if (link->agent) {
    r = sip_filter_apply(link);
    if (r < 0)
      return r;
  }
  {
    GString *s = g_string_new(NULL);
    for (size_t i = 0; i < link->n_trusted; i++) {
      char buf[64];
      g_string_append_printf(s, "%s%s", i ? ", " : "", netlist_format(&link->trusted[i], buf, sizeof buf));
    }
    log_msg(LOG_INFO, "pbx: SIP requests and latched media are taken from %s only", s->str);
    g_string_free(s, TRUE);
  }
  return 0;
}

/* Finds Sofia's listening sockets (the SIP port, and the TLS port) and puts
 * the filter on each. */
static int sip_filter_apply(pbx_link *link)
{
  if (!link->n_filtered) {
    link->n_filtered = sip_filter_find_listeners(link->contact_port, link->filtered,
                                                 G_N_ELEMENTS(link->filtered));
    if (link->contact_tls_port)
      link->n_filtered += sip_filter_find_listeners(link->contact_tls_port,
                                                    link->filtered + link->n_filtered,
                                                    G_N_ELEMENTS(link->filtered) - link->n_filtered);
    if (!link->n_filtered) {
      log_msg(LOG_ERR, "pbx: cannot find the SIP sockets to filter");
      return -ENOTSOCK;
    }
  }
  for (size_t i = 0; i < link->n_filtered; i++) {
    int r = sip_filter_attach(link->filtered[i], link->trusted, link->n_trusted);
    if (r < 0) {
      log_msg(LOG_ERR, "pbx: cannot set the socket filter on the SIP port: %s", g_strerror(-r));
      return r;
    }
  }
  return 0;
}

uint64_t pbx_link_dropped(const pbx_link *link)
{
  uint64_t n = 0;

  for (size_t i = 0; i < link->n_filtered; i++)
    n += sip_filter_drops(link->filtered[i]);
  return n;
}

const config_network *pbx_link_trusted(const pbx_link *link, size_t *n)
{
  *n = link->n_trusted;
  return link->trusted;
}

bool pbx_link_is_trusted(const pbx_link *link, const struct sockaddr *sa)
{
  return netlist_match(link->trusted, link->n_trusted, sa);
}

const char *pbx_link_target(const pbx_link *link)
{
  return link->target;
}

const char *pbx_link_contact_host(const pbx_link *link)
{
  return link->contact_host;
}

uint16_t pbx_link_contact_port(const pbx_link *link)
{
  return link->transport == SIP_TRANSPORT_TLS ? link->contact_tls_port : link->contact_port;
}

const char *pbx_link_contact_transport(const pbx_link *link)
{
  return sip_transport_name(link->transport);
}

nta_agent_t *pbx_link_agent(const pbx_link *link)
{
  return link->agent;
}

su_root_t *pbx_link_root(const pbx_link *link)
{
  return link->root;
}

const url_t *pbx_link_target_url(const pbx_link *link)
{
  return link->target_url;
}

/* ---- requests from the PBX ---- */

static int on_leg_request(nta_leg_magic_t *magic, nta_leg_t *leg, nta_incoming_t *irq,
                          sip_t const *sip)
{
  pbx_link *link = (pbx_link *)magic;
  pbx_server_tx *tx;
  msg_t *msg;

  if (sip->sip_request->rq_method == sip_method_ack) {
    nta_incoming_destroy(irq); /* a stray ACK: nothing to answer (nta keeps it otherwise) */
    return 0;
  }
  if (sip->sip_request->rq_method == sip_method_cancel)
    return 481; /* a CANCEL that matched no transaction */

  tx = g_new0(pbx_server_tx, 1);
  tx->link = link;
  tx->irq = irq;
  msg = nta_incoming_getrequest(irq);
  link->callbacks.on_request(link->user, tx, msg);
  msg_destroy(msg);
  return 0;
}

static void server_tx_done(pbx_server_tx *tx, int status)
{
  if (status >= 200) {
    nta_incoming_destroy(tx->irq);
    g_free(tx);
  }
}

int pbx_server_tx_reply(pbx_server_tx *tx, int status, const char *phrase)
{
  int r = nta_incoming_treply(tx->irq, status, phrase, TAG_END());
  server_tx_done(tx, status);
  return r < 0 ? -EIO : 0;
}

int pbx_server_tx_reply_retry_after(pbx_server_tx *tx, int status, const char *phrase,
                                    unsigned seconds)
{
  char value[16];
  int r;

  g_snprintf(value, sizeof value, "%u", seconds);
  r = nta_incoming_treply(tx->irq, status, phrase, SIPTAG_RETRY_AFTER_STR(value), TAG_END());
  server_tx_done(tx, status);
  return r < 0 ? -EIO : 0;
}

/* Whether RESPONSE can answer TX's request: nta asserts (the process
 * aborts) on a response whose CSeq method is not the request's (found by
 * tests/fuzz: a browser's answer to the PBX's MESSAGE did it). */
static bool answers_request(pbx_server_tx *tx, const sip_t *sip)
{
  const char *name = nta_incoming_method_name(tx->irq);

  return sip && sip->sip_status && sip->sip_via && sip->sip_cseq &&
         sip->sip_cseq->cs_method == nta_incoming_method(tx->irq) &&
         (sip->sip_cseq->cs_method != sip_method_unknown ||
          (name && sip->sip_cseq->cs_method_name && strcmp(sip->sip_cseq->cs_method_name, name) == 0));
}

int pbx_server_tx_relay(pbx_server_tx *tx, msg_t *response)
{
  sip_t *sip = sip_object(response);
  int status = sip && sip->sip_status ? sip->sip_status->st_status : 500;
  int r = -1;

  if (answers_request(tx, sip))
    r = nta_incoming_mreply(tx->irq, response);
  else
    msg_destroy(response);

  if (r < 0 && status >= 200) {
    /* mreply failed: the PBX still gets a final answer */
    nta_incoming_treply(tx->irq, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
  }
  server_tx_done(tx, status);
  return r < 0 ? -EIO : 0;
}

nta_incoming_t *pbx_server_tx_take(pbx_server_tx *tx)
{
  nta_incoming_t *irq = tx->irq;
  g_free(tx);
  return irq;
}

msg_t *pbx_server_tx_request(pbx_server_tx *tx)
{
  msg_t *m = nta_incoming_getrequest(tx->irq);
  /* getrequest returns a new reference; the irq keeps its own */
  msg_destroy(m);
  return m;
}

/* ---- requests to the PBX ---- */

static int on_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip)
{
  pbx_client_tx *tx = (pbx_client_tx *)magic;
  int status = nta_outgoing_status(orq);
  msg_t *response = NULL;

  if (sip && !nta_sip_is_internal(sip))
    response = nta_outgoing_getresponse(orq);
  else if (status < 300)
    status = 503; /* no response at all: treat as unavailable */

  tx->callback(tx->user, tx, status, response);
  if (response)
    msg_destroy(response);
  return 0;
}

pbx_client_tx *pbx_link_send_request(pbx_link *link, msg_t *request,
                                     pbx_response_fn *callback, void *user)
{
  pbx_client_tx *tx = g_new0(pbx_client_tx, 1);

  tx->link = link;
  tx->callback = callback;
  tx->user = user;
  tx->orq = nta_outgoing_mcreate(link->agent, on_response, (nta_outgoing_magic_t *)tx,
                                 (url_string_t *)link->target_url, request, TAG_END());
  if (!tx->orq) {
    msg_destroy(request);
    g_free(tx);
    return NULL;
  }
  return tx;
}

void pbx_client_tx_free(pbx_client_tx *tx)
{
  if (!tx)
    return;
  nta_outgoing_destroy(tx->orq);
  g_free(tx);
}

const char *pbx_client_tx_branch(const pbx_client_tx *tx)
{
  return nta_outgoing_branch(tx->orq);
}

/* ---- the link ---- */

/* A TLS transport toward the PBX, on an ephemeral port of the listen
 * address; the PBX's certificate is verified when the TLS directory has a
 * cafile.pem. */
static int add_tls(pbx_link *link, const pbx_settings *s, const char *listen_h, const char *adv_h)
{
  g_autofree char *cafile = s->tls_directory ? g_build_filename(s->tls_directory, "cafile.pem", NULL) : NULL;
  bool verify = cafile && g_file_test(cafile, G_FILE_TEST_IS_REGULAR);
  g_autofree char *url = strcmp(listen_h, adv_h) == 0
    ? g_strdup_printf("sips:%s:0;transport=tls", listen_h)
    : g_strdup_printf("sips:%s:0;transport=tls;maddr=%s", adv_h, s->listen_host);

  if (nta_agent_add_tport(link->agent, URL_STRING_MAKE(url),
                          TAG_IF(s->tls_directory, TPTAG_CERTIFICATE(s->tls_directory)),
                          TPTAG_TLS_VERIFY_POLICY(verify ? TPTLS_VERIFY_OUT : TPTLS_VERIFY_NONE),
                          TAG_END()) < 0) {
    log_msg(LOG_ERR, "pbx: cannot make a TLS transport on %s", s->listen_host);
    return -EPROTONOSUPPORT;
  }
  for (sip_via_t *v = nta_agent_via(link->agent); v; v = v->v_next)
    if (v->v_protocol && g_ascii_strcasecmp(v->v_protocol, "SIP/2.0/TLS") == 0 && v->v_port)
      link->contact_tls_port = (uint16_t)atoi(v->v_port);
  if (!link->contact_tls_port) {
    log_msg(LOG_ERR, "pbx: the TLS transport has no port");
    return -EPROTONOSUPPORT;
  }
  if (!verify)
    log_msg(LOG_WARNING, "pbx: the PBX's TLS certificate is NOT verified: put the CA certificates "
            "in %s", cafile ? cafile : "cafile.pem of [pbx] tls_directory");
  return 0;
}

int pbx_link_new(su_root_t *root, const pbx_settings *s, const pbx_callbacks *callbacks,
                 void *user, pbx_link **ret)
{
  pbx_link *link = g_new0(pbx_link, 1);
  const char *adv = s->advertised_host && *s->advertised_host ? s->advertised_host : s->listen_host;
  g_autofree char *adv_h = format_host(adv);
  g_autofree char *listen_h = format_host(s->listen_host);
  g_autofree char *bind_url = NULL;
  int r;

  su_home_init(link->home);
  link->root = root;
  link->callbacks = *callbacks;
  link->user = user;
  link->contact_host = g_strdup(adv_h);
  link->contact_port = s->listen_port;

  /* maddr: bind to the listen address while Via/Contact say the advertised one */
  if (strcmp(adv, s->listen_host) == 0)
    bind_url = g_strdup_printf("sip:%s:%u", listen_h, s->listen_port);
  else
    bind_url = g_strdup_printf("sip:%s:%u;maddr=%s", adv_h, s->listen_port, s->listen_host);

  if (pbx_link_set_target(link, s->pbx_host, s->pbx_port, s->pbx_transport) < 0) {
    log_msg(LOG_ERR, "pbx: bad PBX address %s:%u", s->pbx_host, s->pbx_port);
    pbx_link_free(link);
    return -EINVAL;
  }

  link->agent = nta_agent_create(root, URL_STRING_MAKE(bind_url), NULL, NULL,
                                 NTATAG_UA(0),
                                 NTATAG_SERVER_RPORT(1),
                                 NTATAG_CLIENT_RPORT(1),
                                 NTATAG_PASS_100(1),
                                 NTATAG_EXTRA_100(1),
                                 TPTAG_STUN_SERVER(0), /* not a STUN server (the filter drops STUN) */
                                 TAG_END());
  if (!link->agent) {
    int e = errno ? errno : EADDRNOTAVAIL;
    log_msg(LOG_ERR, "pbx: cannot listen for SIP on %s:%u: %s", s->listen_host,
            s->listen_port, g_strerror(e));
    pbx_link_free(link);
    return -e;
  }
  if (s->pbx_transport == SIP_TRANSPORT_TLS) {
    r = add_tls(link, s, listen_h, adv_h);
    if (r < 0) {
      pbx_link_free(link);
      return r;
    }
  }
  r = pbx_link_set_trusted(link, s->trusted, s->n_trusted);
  if (r < 0) {
    pbx_link_free(link);
    return r;
  }
  link->default_leg = nta_leg_tcreate(link->agent, on_leg_request, (nta_leg_magic_t *)link,
                                      NTATAG_NO_DIALOG(1), TAG_END());
  if (!link->default_leg) {
    pbx_link_free(link);
    return -ENOMEM;
  }
  log_msg(LOG_INFO, "pbx: SIP on %s:%u (udp, tcp%s), PBX at %s", s->listen_host, s->listen_port,
          link->contact_tls_port ? ", tls" : "", link->target);
  *ret = link;
  return 0;
}

void pbx_link_free(pbx_link *link)
{
  if (!link)
    return;
  if (link->default_leg)
    nta_leg_destroy(link->default_leg);
  if (link->agent)
    nta_agent_destroy(link->agent);
  g_free(link->target);
  g_free(link->target_host);
  g_free(link->trusted);
  g_free(link->contact_host);
  su_home_deinit(link->home);
  g_free(link);
}
