/* Browser dialog (UAS side).  See browser_dialog.h. */
#include "gateway/browser_dialog.h"

#include <errno.h>
#include <string.h>
#include <glib.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "sip/sipmsg.h"

struct browser_dialog {
  ws_edge *edge;
  uint64_t flow;
  msg_t *invite;      /* as the browser sent it */
  char local_tag[17]; /* rtcsipd's To tag */
  char *advertised;
  uint32_t cseq;      /* of rtcsipd's requests in the dialog */
  int final_status;   /* 0 until a final response went out */
};

browser_dialog *browser_dialog_new(ws_edge *edge, ws_conn *conn, msg_t *invite,
                                   const char *advertised)
{
  sip_t *sip = sip_object(invite);
  browser_dialog *d;

  if (!sip || !sip->sip_request || !sip->sip_call_id || !sip->sip_from || !sip->sip_to ||
      !sip->sip_cseq || !sip->sip_from->a_tag || sip->sip_to->a_tag) {
    msg_destroy(invite);
    return NULL;
  }
  d = g_new0(browser_dialog, 1);
  d->edge = edge;
  d->flow = ws_conn_id(conn);
  d->invite = invite;
  d->advertised = g_strdup(advertised);
  d->cseq = g_random_int_range(1, 10000);
  sipmsg_random_token(d->local_tag);
  return d;
}

void browser_dialog_free(browser_dialog *d)
{
  if (!d)
    return;
  msg_destroy(d->invite);
  g_free(d->advertised);
  g_free(d);
}

uint64_t browser_dialog_flow(const browser_dialog *d) { return d->flow; }
msg_t *browser_dialog_invite(const browser_dialog *d) { return d->invite; }
bool browser_dialog_answered(const browser_dialog *d) { return d->final_status != 0; }
bool browser_dialog_confirmed(const browser_dialog *d)
{
  return d->final_status >= 200 && d->final_status < 300;
}

const char *browser_dialog_call_id(const browser_dialog *d)
{
  return sip_object(d->invite)->sip_call_id->i_id;
}

bool browser_dialog_matches(const browser_dialog *d, uint64_t flow, msg_t *request)
{
  sip_t *in = sip_object(d->invite), *rq = sip_object(request);

  if (flow != d->flow || !rq || !rq->sip_request || !rq->sip_call_id || !rq->sip_from ||
      !rq->sip_to || !rq->sip_from->a_tag)
    return false;
  if (strcmp(rq->sip_call_id->i_id, in->sip_call_id->i_id) != 0 ||
      strcmp(rq->sip_from->a_tag, in->sip_from->a_tag) != 0)
    return false;
  if (rq->sip_request->rq_method == sip_method_cancel ||
      (rq->sip_request->rq_method == sip_method_ack && !browser_dialog_confirmed(d) &&
       rq->sip_cseq && rq->sip_cseq->cs_seq == in->sip_cseq->cs_seq))
    return true; /* same transaction as the INVITE */
  return rq->sip_to->a_tag && strcmp(rq->sip_to->a_tag, d->local_tag) == 0;
}

static int send_msg(browser_dialog *d, msg_t *msg)
{
  ws_conn *conn = ws_edge_find(d->edge, d->flow);
  g_autofree char *text = NULL;
  size_t len = 0;

  if (!conn)
    return -ENOTCONN;
  text = sipmsg_print(msg, &len);
  if (!text)
    return -EINVAL;
  return ws_conn_send(conn, text, len);
}

/* A response to REQUEST with rtcsipd's To tag (but on a 100), CONTACT and
 * SDP when not NULL. */
static msg_t *make_response(browser_dialog *d, msg_t *request, int status, const char *phrase,
                            const char *contact, const char *sdp)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  sip_t *rq = sip_object(request);
  sip_to_t *to = NULL;
  msg_t *resp;

  if (status > 100 && rq->sip_to && !rq->sip_to->a_tag) {
    to = sip_to_dup(home, rq->sip_to);
    if (!to || sip_to_tag(home, to, d->local_tag) < 0) {
      su_home_deinit(home);
      return NULL;
    }
  }
  resp = sipmsg_response(request, status, phrase,
                         TAG_IF(to, SIPTAG_TO(to)),
                         TAG_IF(contact, SIPTAG_CONTACT_STR(contact)),
                         TAG_IF(sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                         TAG_IF(sdp, SIPTAG_PAYLOAD_STR(sdp)),
                         TAG_END());
  su_home_deinit(home);
  return resp;
}

int browser_dialog_respond(browser_dialog *d, int status, const char *phrase, const char *sdp)
{
  g_autofree char *contact = NULL;
  ws_conn *conn = ws_edge_find(d->edge, d->flow);
  msg_t *resp;
  int r;

  if (d->final_status)
    return -EALREADY;
  if (status >= 200 && status < 300) {
    if (!sdp)
      return -EINVAL;
    contact = g_strdup_printf("<sip:rtcsipd@%s;transport=%s>", d->advertised,
                              conn && ws_conn_is_secure(conn) ? "wss" : "ws");
  }
  resp = make_response(d, d->invite, status, phrase, contact, sdp);
  if (!resp)
    return -EINVAL;
  r = send_msg(d, resp);
  msg_destroy(resp);
  if (status >= 200)
    d->final_status = status;
  return r;
}

int browser_dialog_reply(browser_dialog *d, msg_t *request, int status, const char *phrase)
{
  msg_t *resp = make_response(d, request, status, phrase, NULL, NULL);
  int r;

  if (!resp)
    return -EINVAL;
  r = send_msg(d, resp);
  msg_destroy(resp);
  return r;
}

int browser_dialog_send_bye(browser_dialog *d)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  sip_t *in = sip_object(d->invite);
  ws_conn *conn = ws_edge_find(d->edge, d->flow);
  msg_t *msg = NULL;
  sip_t *sip;
  sip_from_t *from;
  char branch[32];
  int r = -EINVAL;

  if (!conn)
    return -ENOTCONN;
  if (!browser_dialog_confirmed(d) || !in->sip_contact)
    return -EINVAL;
  msg = msg_create(sip_default_mclass(), 0);
  if (!msg)
    goto out;
  sip = sip_object(msg);
  sipmsg_new_branch(branch);
  from = sip_from_dup(home, (sip_from_t *)in->sip_to); /* rtcsipd is the To of the INVITE */
  if (!from || sip_from_tag(home, from, d->local_tag) < 0)
    goto out;
  {
    g_autofree char *via = g_strdup_printf("SIP/2.0/%s %s;branch=%s",
                                           ws_conn_is_secure(conn) ? "WSS" : "WS",
                                           d->advertised, branch);
    sip_request_t *rl = sip_request_create(home, SIP_METHOD_BYE,
                                           (url_string_t *)in->sip_contact->m_url, NULL);
    sip_cseq_t *cs = sip_cseq_create(home, ++d->cseq, SIP_METHOD_BYE);

    if (!rl || !cs)
      goto out;
    if (sip_add_tl(msg, sip,
                   SIPTAG_REQUEST(rl),
                   SIPTAG_VIA_STR(via),
                   SIPTAG_MAX_FORWARDS_STR("70"),
                   SIPTAG_FROM(from),
                   SIPTAG_TO((sip_to_t *)in->sip_from),
                   SIPTAG_CALL_ID(in->sip_call_id),
                   SIPTAG_CSEQ(cs),
                   SIPTAG_CONTENT_LENGTH_STR("0"),
                   TAG_END()) < 0)
      goto out;
  }
  /* the route set: the INVITE's Record-Route, in order (RFC 3261 12.1.1) */
  for (sip_record_route_t *rr = in->sip_record_route; rr; rr = rr->r_next) {
    char *s = sip_header_as_string(home, (sip_header_t *)rr);
    if (!s || sip_add_tl(msg, sip, SIPTAG_ROUTE_STR(s), TAG_END()) < 0)
      goto out;
  }
  r = send_msg(d, msg);
out:
  if (msg)
    msg_destroy(msg);
  su_home_deinit(home);
  return r;
}
