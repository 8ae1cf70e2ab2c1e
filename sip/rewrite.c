/* SIP rewriting for the edge proxy.  See rewrite.h. */
#include "sip/rewrite.h"

#include <errno.h>
#include <stdlib.h>
#include <glib.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#define DEFAULT_EXPIRES 3600

char *rewrite_contact_uri(const rewrite_target *target, const char *token)
{
  return g_strdup_printf("sip:%s@%s:%u;transport=%s", token, target->host, target->port,
                         target->transport);
}

static int set_contact_uri(msg_t *msg, sip_contact_t *m, const char *uri)
{
  url_t *url = url_make(msg_home(msg), uri);

  if (!url)
    return -EINVAL;
  m->m_url[0] = *url;
  msg_fragment_clear_chain((msg_header_t *)m);
  return 0;
}

int rewrite_register_request(msg_t *msg, const rewrite_target *target, const char *token,
                             unsigned max_expires)
{
  sip_t *sip = sip_object(msg);
  sip_contact_t *m;
  g_autofree char *uri = NULL;

  if (!sip || !sip->sip_contact || sip->sip_contact->m_url->url_type == url_any)
    return 0; /* "Contact: *" or none */
  m = sip->sip_contact;
  if (m->m_next)
    return -E2BIG;

  uri = rewrite_contact_uri(target, token);
  if (set_contact_uri(msg, m, uri) < 0)
    return -EINVAL;
  msg_header_remove_param(m->m_common, "reg-id");

  if (m->m_expires && strtoul(m->m_expires, NULL, 10) > max_expires) {
    /* the param list keeps the pointer: the text must live in the message */
    char *p = su_sprintf(msg_home(msg), "expires=%u", max_expires);
    if (!p || msg_header_replace_param(msg_home(msg), m->m_common, p) < 0)
      return -EINVAL;
  }
  if (sip->sip_expires && sip->sip_expires->ex_delta > max_expires) {
    sip->sip_expires->ex_delta = max_expires;
    msg_fragment_clear(sip->sip_expires->ex_common);
  }
  if (!m->m_expires && !sip->sip_expires) {
    /* no expiry asked: the registrar would pick its own default, maybe longer */
    char value[16];
    g_snprintf(value, sizeof value, "%u", max_expires);
    if (sip_add_tl(msg, sip, SIPTAG_EXPIRES_STR(value), TAG_END()) < 0)
      return -EINVAL;
  }
  return 1;
}

int rewrite_register_response(msg_t *msg, const char *token, const char *original_uri,
                              unsigned *expires)
{
  sip_t *sip = sip_object(msg);
  sip_contact_t *own = NULL, *next;
  int r = -ENOENT;

  if (!sip)
    return -EINVAL;
  /* every other binding of the AOR goes: another device's token must not
   * reach this browser, nor any other contact of the user */
  for (sip_contact_t *m = sip->sip_contact; m; m = next) {
    next = m->m_next;
    if (!own && token && m->m_url->url_user && strcmp(m->m_url->url_user, token) == 0) {
      own = m;
      continue;
    }
    if (msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)m) < 0)
      return -EINVAL;
  }
  if (own) {
    if (own->m_expires)
      *expires = (unsigned)strtoul(own->m_expires, NULL, 10);
    else if (sip->sip_expires)
      *expires = (unsigned)sip->sip_expires->ex_delta;
    else
      *expires = DEFAULT_EXPIRES;
    r = set_contact_uri(msg, own, original_uri);
  }
  return r;
}

int rewrite_push_via(msg_t *msg, const char *protocol, const char *host, const char *branch)
{
  sip_t *sip = sip_object(msg);
  sip_via_t *v;

  if (!sip)
    return -EINVAL;
  v = sip_via_format(msg_home(msg), "SIP/2.0/%s %s;branch=%s", protocol, host, branch);
  if (!v || msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)v) < 0)
    return -EINVAL;
  return 0;
}

int rewrite_pop_via(msg_t *msg, const char *branch)
{
  sip_t *sip = sip_object(msg);

  if (!sip || !sip->sip_via || !sip->sip_via->v_branch ||
      strcasecmp(sip->sip_via->v_branch, branch) != 0)
    return -ENOENT;
  if (msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_via) < 0)
    return -EINVAL;
  return 0;
}

void rewrite_strip_vias(msg_t *msg)
{
  sip_t *sip = sip_object(msg);

  while (sip && sip->sip_via)
    msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_via);
}

int rewrite_restore_vias(msg_t *msg, const sip_via_t *vias)
{
  sip_t *sip = sip_object(msg);

  if (!sip || !vias)
    return -EINVAL;
  /* msg_header_add_dup() appends a copy of the whole list, below any Via left */
  if (msg_header_add_dup(msg, (msg_pub_t *)sip, (const msg_header_t *)vias) < 0)
    return -EINVAL;
  return 0;
}

int rewrite_request_uri(msg_t *msg, const char *uri)
{
  sip_t *sip = sip_object(msg);
  sip_request_t *rq;

  if (!sip || !sip->sip_request)
    return -EINVAL;
  rq = sip_request_create(msg_home(msg), sip->sip_request->rq_method,
                          sip->sip_request->rq_method_name, URL_STRING_MAKE(uri), NULL);
  if (!rq || msg_header_replace(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_request,
                                (msg_header_t *)rq) < 0)
    return -EINVAL;
  return 0;
}

int rewrite_max_forwards(msg_t *msg)
{
  sip_t *sip = sip_object(msg);

  if (!sip)
    return -EINVAL;
  if (!sip->sip_max_forwards)
    return sip_add_tl(msg, sip, SIPTAG_MAX_FORWARDS_STR("70"), TAG_END()) < 0 ? -EINVAL : 0;
  if (sip->sip_max_forwards->mf_count == 0)
    return -ELOOP;
  sip->sip_max_forwards->mf_count--;
  msg_fragment_clear(sip->sip_max_forwards->mf_common);
  return 0;
}

void rewrite_strip_routes(msg_t *msg)
{
  sip_t *sip = sip_object(msg);

  while (sip && sip->sip_route)
    msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_route);
  while (sip && sip->sip_record_route)
    msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_record_route);
  while (sip && sip->sip_path)
    msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_path);
}
