/* SIP message helpers.  See sipmsg.h. */
#include "sip/sipmsg.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/random.h>
#include <glib.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_string.h>
#include <sofia-sip/su_tagarg.h>
#include <sofia-sip/url.h>

/* A URI rtcsipd can print into a message (a Contact also becomes a
 * Request-URI: a binding's, a dialog's remote target): printed, only the
 * characters a URI may hold.  Sofia-SIP takes anything between < and >
 * (spaces, '>', quotes), which printed again breaks the request line or the
 * header it is in (found by tests/fuzz). */
static bool uri_usable(const url_t *url)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  const char *uri = url->url_type == url_any ? "*" : url_as_string(home, url);
  bool ok = uri != NULL;

  for (const char *c = uri; ok && *c; c++)
    ok = *c > ' ' && *c < 0x7f && *c != '<' && *c != '>' && *c != '"';
  su_home_deinit(home);
  return ok;
}

/* The URIs of From, To and every Contact of SIP (those present). */
static bool uris_usable(const sip_t *sip)
{
  if ((sip->sip_from && !uri_usable(sip->sip_from->a_url)) ||
      (sip->sip_to && !uri_usable(sip->sip_to->a_url)))
    return false;
  for (const sip_contact_t *m = sip->sip_contact; m; m = m->m_next)
    if (!uri_usable(m->m_url))
      return false;
  return true;
}

sipmsg_parse_result sipmsg_parse(const char *text, size_t len, msg_t **ret, const char **why)
{
  msg_t *msg;
  sip_t *sip;

  *ret = NULL;
  *why = NULL;
  if (len == 0) {
    *why = "empty message";
    return SIPMSG_BAD_MESSAGE;
  }
  msg = msg_make(sip_default_mclass(), 0, text, (isize_t)len);
  if (!msg) {
    *why = "cannot be parsed";
    return SIPMSG_BAD_MESSAGE;
  }
  sip = sip_object(msg);
  if (!sip || (!sip->sip_request && !sip->sip_status)) {
    *why = "no request or status line";
    goto fatal;
  }
  if (sip->sip_status) {
    /* a broken response cannot be answered; it is dropped by the caller */
    if (!sip->sip_via || msg_has_error(msg) || !sip->sip_cseq || !sip->sip_call_id ||
        !uris_usable(sip)) {
      *why = "malformed response";
      goto fatal;
    }
    *ret = msg;
    return SIPMSG_OK;
  }
  /* a request line is enough to answer over the flow (RFC 3261 8.2): the
   * sender matches the answer by its Via branch when it sent one */
  if (!su_casematch(sip->sip_request->rq_version, sip_version_2_0)) {
    *why = "SIP version not supported";
    *ret = msg;
    return SIPMSG_BAD_VERSION;
  }
  if (!sip->sip_via) {
    *why = "missing Via header";
    goto answerable;
  }
  if (!sip->sip_from) {
    *why = "missing or malformed From header";
    goto answerable;
  }
  if (!sip->sip_to) {
    *why = "missing or malformed To header";
    goto answerable;
  }
  if (!sip->sip_call_id) {
    *why = "missing or malformed Call-ID header";
    goto answerable;
  }
  if (!sip->sip_cseq) {
    *why = "missing or malformed CSeq header";
    goto answerable;
  }
  if (msg_has_error(msg) || sip->sip_error) {
    *why = "malformed header";
    goto answerable;
  }
  if (!uris_usable(sip)) {
    *why = "malformed URI in From, To or Contact";
    goto answerable;
  }
  if (sip->sip_cseq->cs_method != sip->sip_request->rq_method ||
      (sip->sip_cseq->cs_method == sip_method_unknown &&
       g_strcmp0(sip->sip_cseq->cs_method_name, sip->sip_request->rq_method_name) != 0)) {
    *why = "CSeq method does not match the request";
    goto answerable;
  }
  if (!sip->sip_request->rq_url->url_host) {
    *why = "bad Request-URI";
    goto answerable;
  }
  *ret = msg;
  return SIPMSG_OK;

answerable:
  *ret = msg;
  return SIPMSG_BAD_REQUEST;
fatal:
  msg_destroy(msg);
  return SIPMSG_BAD_MESSAGE;
}

msg_t *sipmsg_response(msg_t *request, int status, const char *phrase,
                       tag_type_t tag, tag_value_t value, ...)
{
  sip_t *rq = sip_object(request);
  msg_t *msg;
  sip_t *sip;
  ta_list ta;
  int r;

  if (!rq || !rq->sip_request)
    return NULL;
  msg = msg_create(sip_default_mclass(), 0);
  if (!msg)
    return NULL;
  sip = sip_object(msg);

  ta_start(ta, tag, value);
  r = sip_add_tl(msg, sip,
                 SIPTAG_STATUS(sip_status_create(msg_home(msg), status, phrase, NULL)),
                 SIPTAG_VIA(rq->sip_via),
                 SIPTAG_FROM(rq->sip_from),
                 SIPTAG_TO(rq->sip_to),
                 SIPTAG_CALL_ID(rq->sip_call_id),
                 SIPTAG_CSEQ(rq->sip_cseq),
                 ta_tags(ta));
  (void)ta_end(ta);
  if (r < 0 || !sip->sip_status)
    goto fail;

  if (status >= 200 && sip->sip_to && !sip->sip_to->a_tag) {
    char tag_value[17];
    sipmsg_random_token(tag_value);
    if (sip_to_tag(msg_home(msg), sip->sip_to, tag_value) < 0)
      goto fail;
  }
  if (!sip->sip_cseq) {
    /* the request's CSeq was broken: the method still tells the sender
     * which kind of transaction this answers */
    sip_cseq_t *cs = sip_cseq_create(msg_home(msg), 0, rq->sip_request->rq_method,
                                     rq->sip_request->rq_method_name);
    if (!cs || msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)cs) < 0)
      goto fail;
  }
  if (!sip->sip_content_length)
    sip_add_tl(msg, sip, SIPTAG_CONTENT_LENGTH_STR("0"), TAG_END());
  return msg;

fail:
  msg_destroy(msg);
  return NULL;
}

char *sipmsg_print(msg_t *msg, size_t *len)
{
  sip_t *sip = sip_object(msg);
  su_home_t home[1] = { SU_HOME_INIT(home) };
  char *text, *copy;
  size_t n = 0;

  if (!sip)
    return NULL;
  /* sip_complete_message() fails without From, To, Call-ID or CSeq, after
   * adding Content-Length: a response to a request that lacked them is
   * still printed (a 400 saying which one) */
  if (sip_complete_message(msg) < 0 &&
      !(sip->sip_status && sip->sip_content_length && sip->sip_separator))
    return NULL;
  if (msg_serialize(msg, (msg_pub_t *)sip) < 0)
    return NULL;
  text = msg_as_string(home, msg, (msg_pub_t *)sip, 0, &n);
  if (!text) {
    su_home_deinit(home);
    return NULL;
  }
  copy = g_strndup(text, n);
  su_home_deinit(home);
  if (len)
    *len = n;
  return copy;
}

void sipmsg_random_token(char out[17])
{
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  uint8_t bytes[32];
  size_t got = 0;
  int i = 0;

  /* from the kernel's CSPRNG: tokens name bindings and must not be guessed
   * from the tags and branches a peer has seen (GLib's g_random is a
   * Mersenne Twister).  Bytes >= 252 are skipped so that each of the 36
   * characters is equally likely; 16 of them are 82 bits. */
  while (i < 16) {
    if (got == 0) {
      ssize_t n = getrandom(bytes, sizeof bytes, 0);
      if (n <= 0)
        continue; /* EINTR: the pool is ready after boot */
      got = (size_t)n;
    }
    uint8_t b = bytes[--got];
    if (b < 252)
      out[i++] = alphabet[b % 36];
  }
  out[16] = '\0';
}

void sipmsg_new_branch(char out[32])
{
  char token[17];
  sipmsg_random_token(token);
  g_snprintf(out, 32, "z9hG4bK%s", token);
}
