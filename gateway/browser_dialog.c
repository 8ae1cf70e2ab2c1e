/* Browser dialog, UAS and UAC.  See browser_dialog.h.
 *
 * Both roles share the dialog state of RFC 3261 12: Call-ID, local and
 * remote tag, local party (From of rtcsipd's requests), remote party (their
 * To), remote target, route set and rtcsipd's CSeq.  Every message is built
 * with Sofia-SIP (sip_add_tl and the header constructors) and printed by
 * sipmsg_print; nothing here parses SIP text by hand. */
#include "gateway/browser_dialog.h"
#include "gateway/browser_dialog_internal.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <glib.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "sip/sipmsg.h"

/* What rtcsipd takes from the browser inside a dialog (call.c answers the
 * others with 405). */
#define ALLOW "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY"
#define MAX_PENDING 8

/* One request of rtcsipd awaiting its final response. */
typedef struct {
  char branch[32];          /* "": none */
  char method[24];
  uint32_t cseq;
} pending_request;

struct browser_dialog {
  ws_edge *edge;
  uint64_t flow;
  bool uac;
  bool secure;              /* the flow is wss:// */
  char *advertised;
  su_home_t *home;          /* the dialog state below */
  msg_t *invite;            /* UAS: as the browser sent it; UAC: as rtcsipd sent it */
  msg_t *answer;            /* UAC: the browser's 2xx (a reference) */
  sip_call_id_t *call_id;
  char local_tag[17];       /* rtcsipd's tag */
  sip_from_t *local;        /* From of rtcsipd's requests, with local_tag */
  sip_to_t *remote;         /* To of rtcsipd's requests; its tag is the browser's, once known */
  url_t *remote_target;     /* UAS: the INVITE's Contact; UAC: the 2xx's (NULL: none) */
  sip_route_t *route_set;   /* NULL: empty */
  uint32_t cseq;            /* of rtcsipd's last request in the dialog */
  uint32_t invite_cseq;     /* UAC */
  char invite_branch[32];   /* UAC: also the CANCEL's and the non-2xx ACK's */
  char bye_branch[32];      /* "" until a BYE went */
  int final_status;         /* 0 until a final response to the INVITE went out / came */
  bool early;               /* UAS: a 101-199 with rtcsipd's tag went */
  pending_request offer;    /* rtcsipd's last re-INVITE or pending UPDATE */
  bool offer_pending;       /* ... and it awaits its final response */
  pending_request others[MAX_PENDING]; /* other requests of rtcsipd awaiting theirs */
  uint32_t last_cseq;       /* of the response take_response reported last */
};

static browser_dialog *dialog_alloc(ws_edge *edge, uint64_t flow, bool secure,
                                    const char *advertised)
{
  browser_dialog *d = g_new0(browser_dialog, 1);

  d->home = su_home_new(sizeof *d->home);
  if (!d->home) {
    g_free(d);
    return NULL;
  }
  d->edge = edge;
  d->flow = flow;
  d->secure = secure;
  d->advertised = g_strdup(advertised);
  sipmsg_random_token(d->local_tag);
  return d;
}

void browser_dialog_free(browser_dialog *d)
{
  if (!d)
    return;
  msg_destroy(d->invite);
  msg_destroy(d->answer);
  su_home_unref(d->home);
  g_free(d->advertised);
  g_free(d);
}

/* A copy of one entry ENTRY (of a Route or Record-Route) added at the end
 * of the route set, or at its start when PREPEND. */
static int route_set_append(browser_dialog *d, const sip_route_t *entry, bool prepend)
{
  su_home_t tmp[1] = { SU_HOME_INIT(tmp) };
  sip_route_t *copy = NULL, **p;
  msg_header_t *one = msg_header_dup_one(tmp, (const msg_header_t *)entry);
  char *s = one ? sip_header_as_string(tmp, (const sip_header_t *)one) : NULL;

  if (s)
    copy = sip_route_make(d->home, s);
  su_home_deinit(tmp);
  if (!copy)
    return -ENOMEM;
  if (prepend) {
    copy->r_next = d->route_set;
    d->route_set = copy;
    return 0;
  }
  for (p = &d->route_set; *p; p = &(*p)->r_next)
    ;
  *p = copy;
  return 0;
}

/* The route set from RR: in order (UAS, RFC 3261 12.1.1) or reversed
 * (UAC, 12.1.2). */
static int route_set_from(browser_dialog *d, const sip_record_route_t *rr, bool reverse)
{
  d->route_set = NULL;
  for (; rr; rr = rr->r_next)
    if (route_set_append(d, (const sip_route_t *)rr, reverse) < 0)
      return -ENOMEM;
  return 0;
}

/* ---- UAS ---- */

browser_dialog *browser_dialog_new_on(ws_edge *edge, uint64_t flow, bool secure, msg_t *invite,
                                      const char *advertised)
{
  sip_t *sip = sip_object(invite);
  browser_dialog *d;

  if (!sip || !sip->sip_request || !sip->sip_call_id || !sip->sip_from || !sip->sip_to ||
      !sip->sip_cseq || !sip->sip_from->a_tag || sip->sip_to->a_tag) {
    msg_destroy(invite);
    return NULL;
  }
  d = dialog_alloc(edge, flow, secure, advertised);
  if (!d) {
    msg_destroy(invite);
    return NULL;
  }
  d->invite = invite;
  d->cseq = g_random_int_range(1, 10000);
  d->call_id = sip_call_id_dup(d->home, sip->sip_call_id);
  /* rtcsipd is the To of the INVITE, the browser its From */
  d->local = sip_from_dup(d->home, (const sip_from_t *)sip->sip_to);
  d->remote = sip_to_dup(d->home, (const sip_to_t *)sip->sip_from);
  if (sip->sip_contact)
    d->remote_target = url_hdup(d->home, sip->sip_contact->m_url);
  if (!d->call_id || !d->local || !d->remote || sip_from_tag(d->home, d->local, d->local_tag) < 0 ||
      (sip->sip_contact && !d->remote_target) ||
      route_set_from(d, sip->sip_record_route, false) < 0) {
    browser_dialog_free(d);
    return NULL;
  }
  return d;
}

browser_dialog *browser_dialog_new(ws_edge *edge, ws_conn *conn, msg_t *invite,
                                   const char *advertised)
{
  return browser_dialog_new_on(edge, ws_conn_id(conn), ws_conn_is_secure(conn), invite,
                               advertised);
}

uint64_t browser_dialog_flow(const browser_dialog *d) { return d->flow; }
const char *browser_dialog_call_id(const browser_dialog *d) { return d->call_id->i_id; }
void browser_dialog_tags(const browser_dialog *d, const char **local, const char **remote)
{
  *local = d->local_tag;
  *remote = d->remote ? d->remote->a_tag : NULL;
}
msg_t *browser_dialog_invite(const browser_dialog *d) { return d->uac ? NULL : d->invite; }
msg_t *browser_dialog_sent_invite(const browser_dialog *d) { return d->uac ? d->invite : NULL; }
msg_t *browser_dialog_answer(const browser_dialog *d) { return d->answer; }
bool browser_dialog_answered(const browser_dialog *d) { return d->final_status != 0; }
bool browser_dialog_confirmed(const browser_dialog *d)
{
  return d->final_status >= 200 && d->final_status < 300;
}

bool browser_dialog_matches(const browser_dialog *d, uint64_t flow, msg_t *request)
{
  sip_t *rq = sip_object(request);
  sip_method_t method;

  if (flow != d->flow || !rq || !rq->sip_request || !rq->sip_call_id || !rq->sip_from ||
      !rq->sip_to || !rq->sip_from->a_tag || !d->remote->a_tag)
    return false;
  if (strcmp(rq->sip_call_id->i_id, d->call_id->i_id) != 0 ||
      strcmp(rq->sip_from->a_tag, d->remote->a_tag) != 0)
    return false;
  method = rq->sip_request->rq_method;
  if (!d->uac &&
      (method == sip_method_cancel ||
       (method == sip_method_ack && !browser_dialog_confirmed(d) && rq->sip_cseq &&
        rq->sip_cseq->cs_seq == sip_object(d->invite)->sip_cseq->cs_seq)))
    return true; /* same transaction as the browser's INVITE */
  return rq->sip_to->a_tag && strcmp(rq->sip_to->a_tag, d->local_tag) == 0;
}

static int send_msg(browser_dialog *d, msg_t *msg)
{
  ws_conn *conn = d->edge ? ws_edge_find(d->edge, d->flow) : NULL;
  g_autofree char *text = NULL;
  size_t len = 0;

  if (!conn)
    return -ENOTCONN;
  text = sipmsg_print(msg, &len);
  if (!text)
    return -EINVAL;
  return ws_conn_send(conn, text, len);
}

/* Sends MSG (consumed); -EINVAL when it could not be built. */
static int send_built(browser_dialog *d, msg_t *msg)
{
  int r;

  if (!msg)
    return -EINVAL;
  r = send_msg(d, msg);
  msg_destroy(msg);
  return r;
}

static char *contact_of(const browser_dialog *d)
{
  return g_strdup_printf("<sip:rtcsipd@%s;transport=%s>", d->advertised,
                         d->secure ? "wss" : "ws");
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
  int r;

  if (d->uac)
    return -EINVAL;
  if (d->final_status)
    return -EALREADY;
  if (status >= 200 && status < 300 && !sdp)
    return -EINVAL;
  /* a 1xx with a To tag makes an early dialog: it needs a Contact too
   * (RFC 3261 12.1.1; SIP.js drops a 180 without one) */
  if (status > 100 && status < 300)
    contact = contact_of(d);
  r = send_built(d, make_response(d, d->invite, status, phrase, contact, sdp));
  if (r == -EINVAL)
    return r;
  if (status > 100 && status < 200)
    d->early = true;
  if (status >= 200)
    d->final_status = status;
  return r;
}

/* The PBX's status and phrase, and what tells the browser why (Reason,
 * Warning) or when to try again (Retry-After); not its Contact or its
 * challenges, which name the PBX's side. */
int browser_dialog_respond_relay(browser_dialog *d, msg_t *response)
{
  sip_t *rs = sip_object(response);
  msg_t *resp;
  int status, r;

  if (d->uac || !rs || !rs->sip_status)
    return -EINVAL;
  status = rs->sip_status->st_status;
  if (status < 300 || status > 699)
    return -EINVAL;
  if (d->final_status)
    return -EALREADY;
  resp = make_response(d, d->invite, status, rs->sip_status->st_phrase, NULL, NULL);
  if (!resp ||
      sip_add_tl(resp, sip_object(resp),
                 TAG_IF(rs->sip_reason, SIPTAG_REASON(rs->sip_reason)),
                 TAG_IF(rs->sip_warning, SIPTAG_WARNING(rs->sip_warning)),
                 TAG_IF(rs->sip_retry_after, SIPTAG_RETRY_AFTER(rs->sip_retry_after)),
                 /* 401/407: the browser answers the PBX's challenge itself */
                 TAG_IF(rs->sip_www_authenticate,
                        SIPTAG_WWW_AUTHENTICATE(rs->sip_www_authenticate)),
                 TAG_IF(rs->sip_proxy_authenticate,
                        SIPTAG_PROXY_AUTHENTICATE(rs->sip_proxy_authenticate)),
                 TAG_IF(rs->sip_unsupported, SIPTAG_UNSUPPORTED(rs->sip_unsupported)),
                 TAG_IF(rs->sip_allow, SIPTAG_ALLOW(rs->sip_allow)),
                 TAG_END()) < 0) {
    if (resp)
      msg_destroy(resp);
    return -EINVAL;
  }
  r = send_built(d, resp);
  d->final_status = status;
  return r;
}

int browser_dialog_reply(browser_dialog *d, msg_t *request, int status, const char *phrase)
{
  return send_built(d, make_response(d, request, status, phrase, NULL, NULL));
}

/* 0 when EXTRA (NULL, or "Name: value\r\n" lines) parses with Sofia and
 * names no header the dialog sets itself; -EINVAL otherwise. */
static int extra_check(const char *extra)
{
  msg_t *tmp;
  sip_t *x;
  int r = 0;

  if (!extra || !*extra)
    return 0;
  tmp = msg_create(sip_default_mclass(), 0);
  if (!tmp)
    return -ENOMEM;
  x = sip_object(tmp);
  if (sip_add_tl(tmp, x, SIPTAG_HEADER_STR(extra), TAG_END()) < 0 ||
      x->sip_error || x->sip_request || x->sip_status || x->sip_via || x->sip_route ||
      x->sip_record_route || x->sip_max_forwards || x->sip_from || x->sip_to ||
      x->sip_call_id || x->sip_cseq || x->sip_contact || x->sip_content_type ||
      x->sip_content_length || x->sip_separator || x->sip_payload)
    r = -EINVAL;
  msg_destroy(tmp);
  return r;
}

/* A target refresh (RFC 3261 12.2): the remote target from CONTACT. */
static void refresh_target(browser_dialog *d, const sip_contact_t *contact)
{
  url_t *target;

  if (!contact || !contact->m_url->url_host)
    return;
  target = url_hdup(d->home, contact->m_url);
  if (target)
    d->remote_target = target;
}

msg_t *browser_dialog_make_reply(browser_dialog *d, msg_t *request, int status,
                                 const char *phrase, const char *sdp, const char *extra)
{
  sip_t *rq = sip_object(request);
  g_autofree char *contact = NULL;
  sip_method_t method;
  msg_t *resp;

  if (!rq || !rq->sip_request || !rq->sip_cseq || status < 100 || status > 699 ||
      extra_check(extra) < 0)
    return NULL;
  method = rq->sip_request->rq_method;
  if (method == sip_method_ack)
    return NULL;
  if (status >= 200 && status < 300 && (method == sip_method_invite || method == sip_method_update))
    contact = contact_of(d);
  resp = make_response(d, request, status, phrase, contact, sdp);
  if (resp && extra && *extra &&
      sip_add_tl(resp, sip_object(resp), SIPTAG_HEADER_STR(extra), TAG_END()) < 0) {
    msg_destroy(resp);
    return NULL;
  }
  if (resp && contact)
    refresh_target(d, rq->sip_contact); /* accepted re-INVITE or UPDATE */
  return resp;
}

int browser_dialog_reply_full(browser_dialog *d, msg_t *request, int status, const char *phrase,
                              const char *sdp, const char *extra)
{
  return send_built(d, browser_dialog_make_reply(d, request, status, phrase, sdp, extra));
}

/* A request: Request-URI RURI, Via of rtcsipd with BRANCH, ROUTE (may be
 * NULL), Max-Forwards 70, FROM, TO, the Call-ID, CSeq CSEQ METHOD.  NULL on
 * failure. */
static msg_t *make_request(browser_dialog *d, sip_method_t method, const char *name,
                           const url_t *ruri, const char *branch, uint32_t cseq,
                           const sip_route_t *route, const sip_from_t *from, const sip_to_t *to)
{
  su_home_t home[1] = { SU_HOME_INIT(home) };
  g_autofree char *via = g_strdup_printf("SIP/2.0/%s %s;branch=%s;rport",
                                         d->secure ? "WSS" : "WS", d->advertised, branch);
  sip_request_t *rl = sip_request_create(home, method, name, (const url_string_t *)ruri, NULL);
  sip_cseq_t *cs = sip_cseq_create(home, cseq, method, name);
  msg_t *msg = msg_create(sip_default_mclass(), 0);

  if (!msg || !rl || !cs ||
      sip_add_tl(msg, sip_object(msg),
                 SIPTAG_REQUEST(rl),
                 SIPTAG_VIA_STR(via),
                 TAG_IF(route, SIPTAG_ROUTE(route)),
                 SIPTAG_MAX_FORWARDS_STR("70"),
                 SIPTAG_FROM(from),
                 SIPTAG_TO(to),
                 SIPTAG_CALL_ID(d->call_id),
                 SIPTAG_CSEQ(cs),
                 TAG_END()) < 0) {
    if (msg)
      msg_destroy(msg);
    msg = NULL;
  }
  su_home_deinit(home);
  return msg;
}

msg_t *browser_dialog_make_bye(browser_dialog *d)
{
  if (!browser_dialog_confirmed(d) || !d->remote_target || !d->remote->a_tag)
    return NULL;
  sipmsg_new_branch(d->bye_branch);
  return make_request(d, SIP_METHOD_BYE, d->remote_target, d->bye_branch, ++d->cseq,
                      d->route_set, d->local, d->remote);
}

int browser_dialog_send_bye(browser_dialog *d)
{
  if (!d->edge || !ws_edge_find(d->edge, d->flow))
    return -ENOTCONN;
  return send_built(d, browser_dialog_make_bye(d));
}

/* ---- Other requests in the dialog, both roles ---- */

/* A free entry of d->others, else the oldest (its answer is then not
 * reported). */
static pending_request *pending_slot(browser_dialog *d)
{
  pending_request *oldest = &d->others[0];

  for (size_t i = 0; i < MAX_PENDING; i++) {
    if (!d->others[i].branch[0])
      return &d->others[i];
    if (d->others[i].cseq < oldest->cseq)
      oldest = &d->others[i];
  }
  return oldest;
}

static bool pending_is(const pending_request *p, const char *branch, uint32_t cseq,
                       const char *method)
{
  return p->branch[0] && strcasecmp(p->branch, branch) == 0 && p->cseq == cseq && method &&
         strcmp(p->method, method) == 0;
}

int browser_dialog_make_request(browser_dialog *d, const char *method, const char *content_type,
                                const char *body, const char *extra, uint32_t *cseq, msg_t **ret)
{
  pending_request *slot, p = { { 0 } };
  g_autofree char *contact = NULL;
  sip_method_t code;
  bool offer, refresh, has_body = body && *body;
  msg_t *msg;
  int r;

  *ret = NULL;
  if (!method || !*method || strlen(method) >= sizeof p.method ||
      strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(method) ||
      has_body != (content_type && *content_type))
    return -EINVAL;
  code = sip_method_code(method);
  if (code == sip_method_ack || code == sip_method_cancel || code == sip_method_prack ||
      code == sip_method_register)
    return -EINVAL;
  offer = code == sip_method_invite || code == sip_method_update;
  /* target refresh requests (RFC 3261 12.2, 3311, 3515, 6665) carry rtcsipd's Contact */
  refresh = offer || code == sip_method_notify || code == sip_method_refer ||
            code == sip_method_subscribe;
  /* a dialog: confirmed, or early for an UPDATE (RFC 3311) */
  if (!d->remote->a_tag || !d->remote_target || d->bye_branch[0] ||
      !(browser_dialog_confirmed(d) ||
        (code == sip_method_update && !d->final_status && (d->uac || d->early))))
    return -EINVAL;
  if (offer && d->offer_pending)
    return -EBUSY;
  r = extra_check(extra);
  if (r < 0)
    return r;

  sipmsg_new_branch(p.branch);
  g_strlcpy(p.method, method, sizeof p.method);
  p.cseq = d->cseq + 1;
  if (refresh)
    contact = contact_of(d);
  msg = make_request(d, code, method, d->remote_target, p.branch, p.cseq, d->route_set,
                     d->local, d->remote);
  if (!msg ||
      sip_add_tl(msg, sip_object(msg),
                 TAG_IF(contact, SIPTAG_CONTACT_STR(contact)),
                 TAG_IF(offer, SIPTAG_ALLOW_STR(ALLOW)),
                 TAG_IF(extra && *extra, SIPTAG_HEADER_STR(extra)),
                 TAG_IF(has_body, SIPTAG_CONTENT_TYPE_STR(content_type)),
                 TAG_IF(has_body, SIPTAG_PAYLOAD_STR(body)),
                 TAG_END()) < 0 ||
      sip_object(msg)->sip_error || (contact && !sip_object(msg)->sip_contact) ||
      (has_body && (!sip_object(msg)->sip_content_type || !sip_object(msg)->sip_payload))) {
    if (msg)
      msg_destroy(msg);
    return -EINVAL;
  }
  d->cseq = p.cseq;
  if (code == sip_method_bye) {
    memcpy(d->bye_branch, p.branch, sizeof d->bye_branch);
  } else if (offer) {
    d->offer = p;
    d->offer_pending = true;
  } else {
    slot = pending_slot(d);
    *slot = p;
  }
  if (cseq)
    *cseq = p.cseq;
  *ret = msg;
  return 0;
}

/* Forgets the request of CSEQ that could not be sent. */
static void pending_forget(browser_dialog *d, uint32_t cseq)
{
  if (d->offer_pending && d->offer.cseq == cseq) {
    d->offer_pending = false;
    d->offer.branch[0] = '\0';
  }
  for (size_t i = 0; i < MAX_PENDING; i++)
    if (d->others[i].branch[0] && d->others[i].cseq == cseq)
      d->others[i].branch[0] = '\0';
}

int browser_dialog_send_request(browser_dialog *d, const char *method, const char *content_type,
                                const char *body, const char *extra, uint32_t *cseq)
{
  msg_t *msg;
  uint32_t seq = 0;
  int r;

  if (!d->edge || !ws_edge_find(d->edge, d->flow))
    return -ENOTCONN;
  r = browser_dialog_make_request(d, method, content_type, body, extra, &seq, &msg);
  if (r < 0)
    return r;
  r = send_built(d, msg);
  if (r < 0) {
    pending_forget(d, seq);
    return r;
  }
  if (cseq)
    *cseq = seq;
  return 0;
}

bool browser_dialog_offer_pending(const browser_dialog *d) { return d->offer_pending; }
uint32_t browser_dialog_last_cseq(const browser_dialog *d) { return d->last_cseq; }

/* The ACK of the 2xx to rtcsipd's last re-INVITE: a new branch, its CSeq
 * number (RFC 3261 13.2.2.4). */
msg_t *browser_dialog_make_reinvite_ack(browser_dialog *d)
{
  char branch[32];

  if (!d->offer.branch[0] || d->offer_pending || strcmp(d->offer.method, "INVITE") != 0)
    return NULL;
  sipmsg_new_branch(branch);
  return make_request(d, SIP_METHOD_ACK, d->remote_target, branch, d->offer.cseq, d->route_set,
                      d->local, d->remote);
}

/* The ACK of a non-2xx to it: its branch, Request-URI, Route and CSeq
 * number, the To of RESPONSE (RFC 3261 17.1.1.3). */
static msg_t *make_reinvite_ack_non2xx(browser_dialog *d, msg_t *response)
{
  return make_request(d, SIP_METHOD_ACK, d->remote_target, d->offer.branch, d->offer.cseq,
                      d->route_set, d->local, sip_object(response)->sip_to);
}

/* A response to rtcsipd's re-INVITE or UPDATE; false when it is not to be
 * reported (a 1xx after the final response, a repeated final response: a
 * re-INVITE's is ACKed again). */
static bool take_offer_response(browser_dialog *d, msg_t *response, int status)
{
  bool invite = strcmp(d->offer.method, "INVITE") == 0, first = d->offer_pending;

  if (status < 200)
    return first;
  if (first && status < 300)
    refresh_target(d, sip_object(response)->sip_contact);
  d->offer_pending = false;
  if (invite) /* its branch stays, to ACK a repeated final response */
    (void)send_built(d, status < 300 ? browser_dialog_make_reinvite_ack(d)
                                     : make_reinvite_ack_non2xx(d, response));
  else
    d->offer.branch[0] = '\0';
  return first;
}

/* ---- UAC ---- */

int browser_dialog_new_uac_on(ws_edge *edge, uint64_t flow, bool secure,
                              const browser_invite_params *params, const char *advertised,
                              browser_dialog **ret)
{
  su_home_t tmp[1] = { SU_HOME_INIT(tmp) };
  g_autofree char *contact = NULL;
  browser_dialog *d = NULL;
  url_t *ruri;
  sip_t *sip;
  int r = -EINVAL;

  *ret = NULL;
  if (!params || !params->request_uri || !params->from || !params->to ||
      !params->call_id || !*params->call_id ||
      !params->sdp || !*params->sdp || !advertised || !*advertised)
    return -EINVAL;
  ruri = url_make(tmp, params->request_uri);
  if (!ruri || (ruri->url_type != url_sip && ruri->url_type != url_sips))
    goto out;
  r = -ENOMEM;
  d = dialog_alloc(edge, flow, secure, advertised);
  if (!d)
    goto out;
  d->uac = true;
  d->cseq = d->invite_cseq = 1;
  sipmsg_new_branch(d->invite_branch);
  d->call_id = sip_call_id_make(d->home, params->call_id);
  /* the PBX's parties, display name and URI; a new tag of ours, no tag in To */
  d->local = sip_from_create(d->home, (const url_string_t *)params->from->a_url);
  d->remote = sip_to_create(d->home, (const url_string_t *)params->to->a_url);
  d->remote_target = url_hdup(d->home, ruri);
  if (!d->call_id || !d->local || !d->remote || !d->remote_target ||
      sip_from_tag(d->home, d->local, d->local_tag) < 0)
    goto out;
  if (params->from->a_display)
    d->local->a_display = su_strdup(d->home, params->from->a_display);
  if (params->to->a_display)
    d->remote->a_display = su_strdup(d->home, params->to->a_display);

  d->invite = make_request(d, SIP_METHOD_INVITE, ruri, d->invite_branch, d->invite_cseq, NULL,
                           d->local, d->remote);
  if (!d->invite)
    goto out;
  sip = sip_object(d->invite);
  contact = contact_of(d);
  if (sip_add_tl(d->invite, sip,
                 SIPTAG_CONTACT_STR(contact),
                 SIPTAG_ALLOW_STR(ALLOW),
                 SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                 SIPTAG_PAYLOAD_STR(params->sdp),
                 TAG_IF(params->extra, SIPTAG_HEADER_STR(params->extra)),
                 TAG_END()) < 0 ||
      !sip->sip_contact || !sip->sip_payload)
    goto out;
  *ret = d;
  d = NULL;
  r = 0;
out:
  browser_dialog_free(d);
  su_home_deinit(tmp);
  return r;
}

int browser_dialog_new_uac(ws_edge *edge, ws_conn *conn, const browser_invite_params *params,
                           const char *advertised, browser_dialog **ret)
{
  browser_dialog *d;
  int r;

  *ret = NULL;
  if (!edge || !conn)
    return -EINVAL;
  r = browser_dialog_new_uac_on(edge, ws_conn_id(conn), ws_conn_is_secure(conn), params,
                                advertised, &d);
  if (r < 0)
    return r;
  r = send_msg(d, d->invite);
  if (r < 0) {
    browser_dialog_free(d);
    return r;
  }
  *ret = d;
  return 0;
}

/* The browser's tag, from the To of its response. */
static int set_remote_tag(browser_dialog *d, const char *tag)
{
  sip_to_t *to;

  if (d->remote->a_tag && strcmp(d->remote->a_tag, tag) == 0)
    return 0;
  to = sip_to_create(d->home, (const url_string_t *)d->remote->a_url);
  if (!to || sip_to_tag(d->home, to, tag) < 0)
    return -ENOMEM;
  if (d->remote->a_display)
    to->a_display = su_strdup(d->home, d->remote->a_display);
  d->remote = to;
  return 0;
}

/* A response to rtcsipd's INVITE: the dialog state of RFC 3261 12.1.2 from a
 * 2xx, the ACK of a non-2xx (17.1.1.3). */
static void take_invite_response(browser_dialog *d, msg_t *response, int status)
{
  sip_t *rs = sip_object(response);

  if (status < 200) {
    /* an early dialog: the browser's tag */
    if (status > 100 && !d->final_status && !d->remote->a_tag && rs->sip_to->a_tag &&
        set_remote_tag(d, rs->sip_to->a_tag) == 0 && rs->sip_contact) {
      refresh_target(d, rs->sip_contact);
      (void)route_set_from(d, rs->sip_record_route, true);
    }
    return;
  }
  if (status < 300) {
    if (d->final_status)
      return; /* a retransmission: the owner may ACK again */
    d->final_status = status;
    d->answer = msg_ref_create(response);
    if (rs->sip_to->a_tag)
      (void)set_remote_tag(d, rs->sip_to->a_tag);
    if (rs->sip_contact) {
      url_t *target = url_hdup(d->home, rs->sip_contact->m_url);
      if (target)
        d->remote_target = target;
    }
    (void)route_set_from(d, rs->sip_record_route, true);
    return;
  }
  if (!d->final_status)
    d->final_status = status;
  if (d->final_status >= 300) /* the first time and on every retransmission */
    (void)send_built(d, browser_dialog_make_ack_non2xx(d, response));
}

bool browser_dialog_take_response(browser_dialog *d, uint64_t flow, msg_t *response,
                                  browser_txn *which, int *status)
{
  sip_t *rs = sip_object(response);
  const char *branch, *name;
  pending_request *other;
  sip_method_t method;
  browser_txn txn;
  uint32_t seq;
  size_t i;
  int code;

  if (flow != d->flow || !rs || !rs->sip_status || !rs->sip_via || !rs->sip_via->v_branch ||
      !rs->sip_call_id || !rs->sip_cseq || !rs->sip_from || !rs->sip_from->a_tag || !rs->sip_to)
    return false;
  if (strcmp(rs->sip_call_id->i_id, d->call_id->i_id) != 0 ||
      strcmp(rs->sip_from->a_tag, d->local_tag) != 0)
    return false;
  code = rs->sip_status->st_status;
  if (code < 100 || code > 699)
    return false;
  branch = rs->sip_via->v_branch;
  method = rs->sip_cseq->cs_method;
  seq = rs->sip_cseq->cs_seq;
  name = rs->sip_cseq->cs_method_name;
  if (d->uac && strcasecmp(branch, d->invite_branch) == 0 && method == sip_method_invite &&
      rs->sip_cseq->cs_seq == d->invite_cseq)
    txn = BROWSER_TXN_INVITE;
  else if (d->uac && strcasecmp(branch, d->invite_branch) == 0 && method == sip_method_cancel)
    txn = BROWSER_TXN_CANCEL;
  else if (d->bye_branch[0] && strcasecmp(branch, d->bye_branch) == 0 &&
           method == sip_method_bye)
    txn = BROWSER_TXN_BYE;
  else if (pending_is(&d->offer, branch, seq, name)) {
    txn = method == sip_method_invite ? BROWSER_TXN_REINVITE : BROWSER_TXN_OTHER;
    if (!take_offer_response(d, response, code))
      return false;
  } else {
    for (other = NULL, i = 0; i < MAX_PENDING && !other; i++)
      if (pending_is(&d->others[i], branch, seq, name))
        other = &d->others[i];
    if (!other)
      return false;
    txn = BROWSER_TXN_OTHER;
    if (code >= 200)
      other->branch[0] = '\0';
  }
  if (txn == BROWSER_TXN_INVITE)
    take_invite_response(d, response, code);
  d->last_cseq = seq;
  if (which)
    *which = txn;
  if (status)
    *status = code;
  return true;
}

msg_t *browser_dialog_make_ack(browser_dialog *d)
{
  char branch[32];

  if (!d->uac || !browser_dialog_confirmed(d) || !d->remote->a_tag)
    return NULL;
  sipmsg_new_branch(branch);
  return make_request(d, SIP_METHOD_ACK, d->remote_target, branch, d->invite_cseq,
                      d->route_set, d->local, d->remote);
}

int browser_dialog_ack(browser_dialog *d)
{
  if (!d->uac || !browser_dialog_confirmed(d))
    return -EINVAL;
  return send_built(d, browser_dialog_make_ack(d));
}

/* The INVITE's Request-URI, Via branch, From, Call-ID and CSeq number; the
 * To of RESPONSE.  RFC 3261 17.1.1.3. */
msg_t *browser_dialog_make_ack_non2xx(browser_dialog *d, msg_t *response)
{
  sip_t *in = sip_object(d->invite), *rs = sip_object(response);

  if (!d->uac || !rs || !rs->sip_to)
    return NULL;
  return make_request(d, SIP_METHOD_ACK, in->sip_request->rq_url, d->invite_branch,
                      d->invite_cseq, NULL, d->local, rs->sip_to);
}

/* The INVITE's Request-URI, Via branch, From, To (no tag), Call-ID and CSeq
 * number.  RFC 3261 9.1. */
msg_t *browser_dialog_make_cancel(browser_dialog *d)
{
  sip_t *in = sip_object(d->invite);

  if (!d->uac || d->final_status)
    return NULL;
  return make_request(d, SIP_METHOD_CANCEL, in->sip_request->rq_url, d->invite_branch,
                      d->invite_cseq, NULL, in->sip_from, in->sip_to);
}

int browser_dialog_cancel(browser_dialog *d)
{
  if (!d->uac)
    return -EINVAL;
  if (d->final_status)
    return -EALREADY;
  return send_built(d, browser_dialog_make_cancel(d));
}
