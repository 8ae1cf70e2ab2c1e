/* The media engine: see media_engine.h.
 *
 * Messages to a worker go through a queue (a pthread mutex around a list:
 * pthread, not GLib's futex-based locks, so that ThreadSanitizer sees the
 * hand-over) and wake it with an eventfd in its epoll set.  Events to the main loop go through one queue and an
 * eventfd watched by a GLib fd source.  A message the caller waits for
 * (REMOVE, SEND_DTMF) carries a flag the worker sets under the worker's
 * mutex and signals with its condition.  Each call has an id: an event names
 * the id, and the main loop looks it up, so that an event that raced with a
 * REMOVE finds nothing and is dropped.
 */
#include "gateway/media_engine.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <glib.h>
#include <glib-unix.h>

#include "config/log.h"
#include "webrtc/udp_batch.h"

#define MAX_WORKERS 64
#define EPOLL_BATCH 128
/* the bridges' clock: generated DTMF needs 20 ms; the timeout is coarser */
#define TICK_US 20000

typedef struct worker worker;

/* A FIFO of items that start with a qlink; one lock taken per push and per
 * take of everything queued. */
typedef struct qlink {
  struct qlink *next;
} qlink;

typedef struct {
  pthread_mutex_t lock;
  qlink *head, *tail;
} queue;

static void queue_init(queue *q)
{
  pthread_mutex_init(&q->lock, NULL);
  q->head = q->tail = NULL;
}

static void queue_push(queue *q, qlink *l)
{
  l->next = NULL;
  pthread_mutex_lock(&q->lock);
  if (q->tail)
    q->tail->next = l;
  else
    q->head = l;
  q->tail = l;
  pthread_mutex_unlock(&q->lock);
}

/* Everything queued, oldest first (follow ->next). */
static qlink *queue_take_all(queue *q)
{
  pthread_mutex_lock(&q->lock);
  qlink *l = q->head;
  q->head = q->tail = NULL;
  pthread_mutex_unlock(&q->lock);
  return l;
}

static void queue_clear(queue *q)
{
  for (qlink *l = queue_take_all(q), *n; l; l = n) {
    n = l->next;
    g_free(l);
  }
  pthread_mutex_destroy(&q->lock);
}

typedef enum {
  EP_WAKE,     /* the worker's eventfd: messages */
  EP_BROWSER,  /* the browser's pair */
  EP_PBX_RTP,
  EP_PBX_RTCP,
} endpoint_kind;

typedef struct {
  endpoint_kind kind;
  media_call *mc;
} endpoint;

struct media_call {
  uint64_t id;
  media_engine *engine;
  worker *w;
  media_call_callbacks cb;
  void *user;
  /* the worker's, between ADD and REMOVE */
  browser_media *bm;
  rtp_socket *rtp;
  media_bridge *bridge;
  media_bridge_settings settings;
  char *log_id;
  endpoint ep[3];        /* browser, PBX RTP, PBX RTCP */
  int watched[3];        /* the fd each is watched with, -1: none */
  bool silent_sent;
  bool removed;          /* by MSG_REMOVE, in the worker's current batch */
  media_call *next_live; /* the worker's list */
  media_call *prev_live;
};

typedef enum {
  MSG_ADD,
  MSG_REMOVE,
  MSG_PBX_REMOTE,
  MSG_PBX_CLEAR,
  MSG_PT_MAP,
  MSG_DTMF_SETTINGS,
  MSG_FORWARD_DTMF,
  MSG_SENDING,
  MSG_SEND_DTMF,
  MSG_SRTP,
  MSG_SOCKET,
  MSG_DATAGRAM,
  MSG_STOP,      /* the worker thread ends */
} msg_type;

typedef struct {
  qlink link;                   /* first: the queue's */
  msg_type type;
  media_call *mc;
  bool flag_a, flag_b;          /* from_browser/to_pbx, forward/sending */
  int result;                   /* SEND_DTMF */
  bool *done;                   /* waited for: set under the worker's mutex */
  media_call_stats *stats;      /* REMOVE */
  union {
    struct { char address[64]; uint16_t rtp_port, rtcp_port; } remote;
    struct { media_bridge_pt_pair pairs[MEDIA_BRIDGE_MAX_PT_PAIRS]; size_t n; } pt;
    media_bridge_dtmf_settings dtmf;
    struct { char digit; unsigned ms; } send;
    srtp_leg *srtp;
    struct { int fd; char ufrag[STUN_RESPONDER_MAX_CRED + 1], pwd[STUN_RESPONDER_MAX_CRED + 1]; } sock;
    struct { size_t len; uint8_t *data; } datagram; /* the data follows the message */
  } u;
} msg;

typedef enum {
  EV_TIMEOUT,
  EV_DTMF,
  EV_DTLS,
  EV_SILENT,
} event_type;

typedef struct {
  qlink link;                   /* first: the queue's */
  event_type type;
  uint64_t call_id;
  bool from_browser;
  char digit;
  unsigned ms;
  size_t len;
  uint8_t data[];
} event;

struct worker {
  media_engine *e;
  unsigned index;
  GThread *thread;
  int epfd, wakefd;
  endpoint wake_ep;
  queue inbox;
  bool inbox_ready;
  pthread_mutex_t lock;         /* for the waited-for messages */
  pthread_cond_t cond;
  unsigned calls;               /* main's count, for the choice of a worker */
  media_call *live;             /* the worker's calls, for the clock */
  gint64 next_tick;
};

struct media_engine {
  worker *workers;
  unsigned n;
  queue events;                 /* worker -> main */
  int eventfd;
  guint event_source;
  GHashTable *calls;            /* id -> media_call, main's */
  uint64_t next_id;
};

/* ---- worker -> main ---- */

static void post_event(media_engine *e, event *ev)
{
  uint64_t one = 1;

  queue_push(&e->events, &ev->link);
  (void)!write(e->eventfd, &one, sizeof one);
}

static void on_bridge_timeout(void *user)
{
  media_call *mc = user;
  event *ev = g_new0(event, 1);

  ev->type = EV_TIMEOUT;
  ev->call_id = mc->id;
  post_event(mc->engine, ev);
}

static void on_bridge_dtmf(void *user, bool from_browser, char digit, unsigned duration_ms)
{
  media_call *mc = user;
  event *ev = g_new0(event, 1);

  ev->type = EV_DTMF;
  ev->call_id = mc->id;
  ev->from_browser = from_browser;
  ev->digit = digit;
  ev->ms = duration_ms;
  post_event(mc->engine, ev);
}

static void on_browser_dtls(void *user, const uint8_t *data, size_t len)
{
  media_call *mc = user;
  event *ev = g_malloc0(sizeof *ev + len);

  ev->type = EV_DTLS;
  ev->call_id = mc->id;
  ev->len = len;
  memcpy(ev->data, data, len);
  post_event(mc->engine, ev);
}

static gboolean on_events(gint fd, GIOCondition cond, gpointer data)
{
  media_engine *e = data;
  uint64_t n;
  event *ev;

  (void)cond;
  (void)!read(fd, &n, sizeof n);
  for (qlink *l = queue_take_all(&e->events), *next; l; l = next) {
    next = l->next;
    ev = (event *)l;
    media_call *mc = g_hash_table_lookup(e->calls, &ev->call_id);
    if (mc) {
      switch (ev->type) {
      case EV_TIMEOUT:
        if (mc->cb.on_timeout)
          mc->cb.on_timeout(mc->user); /* may free MC */
        break;
      case EV_DTMF:
        if (mc->cb.on_dtmf)
          mc->cb.on_dtmf(mc->user, ev->from_browser, ev->digit, ev->ms);
        break;
      case EV_DTLS:
        if (mc->cb.on_dtls)
          mc->cb.on_dtls(mc->user, ev->data, ev->len);
        break;
      case EV_SILENT:
        if (mc->cb.on_browser_silent)
          mc->cb.on_browser_silent(mc->user);
        break;
      }
    }
    g_free(ev);
  }
  return G_SOURCE_CONTINUE;
}

/* ---- the worker ---- */

static void watch(worker *w, media_call *mc, unsigned i, int fd)
{
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &mc->ep[i] };

  if (mc->watched[i] >= 0) {
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, mc->watched[i], NULL);
    mc->watched[i] = -1;
  }
  if (fd >= 0 && epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
    mc->watched[i] = fd;
}

static void call_add(worker *w, media_call *mc)
{
  media_bridge_settings s = mc->settings;

  mc->removed = false;
  s.log_id = mc->log_id;
  s.external_clock = true;
  s.on_dtls = on_browser_dtls;
  s.dtls_user = mc;
  static const media_bridge_callbacks bcb = { .on_timeout = on_bridge_timeout, .on_dtmf = on_bridge_dtmf };
  if (media_bridge_new(mc->bm, mc->rtp, &s, &bcb, mc, &mc->bridge) < 0)
    return; /* cannot happen with valid pointers; the call then carries no media */
  watch(w, mc, 0, browser_media_socket(mc->bm));
  if (mc->rtp) {
    watch(w, mc, 1, rtp_socket_fd(mc->rtp, 0));
    watch(w, mc, 2, rtp_socket_fd(mc->rtp, 1));
  }
  mc->next_live = w->live;
  if (w->live)
    w->live->prev_live = mc;
  w->live = mc;
}

static void call_remove(worker *w, media_call *mc, media_call_stats *out)
{
  for (unsigned i = 0; i < 3; i++)
    watch(w, mc, i, -1);
  if (mc->prev_live)
    mc->prev_live->next_live = mc->next_live;
  else if (w->live == mc)
    w->live = mc->next_live;
  if (mc->next_live)
    mc->next_live->prev_live = mc->prev_live;
  mc->next_live = mc->prev_live = NULL;
  if (out) {
    memset(out, 0, sizeof *out);
    browser_media_get_stats(mc->bm, &out->browser);
    if (mc->rtp) {
      rtp_socket_get_stats(mc->rtp, &out->pbx);
      out->has_pbx = true;
    }
    if (mc->bridge)
      media_bridge_get_stats(mc->bridge, &out->bridge);
  }
  g_clear_pointer(&mc->bridge, media_bridge_free);
  mc->removed = true; /* events already read for it are skipped */
  /* the browser's socket (a fastpath) stays with BM: the caller closes it */
}

static void handle_msg(worker *w, msg *m)
{
  media_call *mc = m->mc;

  switch (m->type) {
  case MSG_ADD:
    call_add(w, mc);
    break;
  case MSG_REMOVE:
    call_remove(w, mc, m->stats);
    break;
  case MSG_PBX_REMOTE:
    if (mc->rtp)
      rtp_socket_set_remote(mc->rtp, m->u.remote.address, m->u.remote.rtp_port, m->u.remote.rtcp_port);
    break;
  case MSG_PBX_CLEAR:
    if (mc->rtp)
      rtp_socket_clear_remote(mc->rtp);
    break;
  case MSG_PT_MAP:
    if (mc->bridge)
      media_bridge_set_pt_map(mc->bridge, m->u.pt.pairs, m->u.pt.n);
    break;
  case MSG_DTMF_SETTINGS:
    if (mc->bridge)
      media_bridge_set_dtmf(mc->bridge, &m->u.dtmf);
    break;
  case MSG_FORWARD_DTMF:
    if (mc->bridge)
      media_bridge_forward_dtmf(mc->bridge, m->flag_a, m->flag_b);
    break;
  case MSG_SENDING:
    if (mc->bridge)
      media_bridge_set_sending(mc->bridge, m->flag_a, m->flag_b);
    break;
  case MSG_SEND_DTMF:
    m->result = mc->bridge ? media_bridge_send_dtmf(mc->bridge, m->flag_a, m->u.send.digit, m->u.send.ms)
                           : -ENOTCONN;
    break;
  case MSG_SRTP:
    browser_media_set_srtp(mc->bm, m->u.srtp);
    break;
  case MSG_SOCKET:
    watch(w, mc, 0, -1);
    if (browser_media_set_socket(mc->bm, m->u.sock.fd, m->u.sock.ufrag, m->u.sock.pwd) < 0) {
      if (m->u.sock.fd >= 0)
        close(m->u.sock.fd);
      browser_media_set_socket(mc->bm, -1, NULL, NULL);
    }
    if (mc->bridge)
      watch(w, mc, 0, browser_media_socket(mc->bm));
    break;
  case MSG_DATAGRAM:
    browser_media_receive(mc->bm, m->u.datagram.data, m->u.datagram.len,
                          m->u.datagram.len + SRTP_LEG_MAX_TRAILER);
    break;
  case MSG_STOP:
    break;
  }
}

/* The sender of M waits (post_wait), or M was the worker's to free. */
static void complete(worker *w, msg *m)
{
  if (m->done) {
    pthread_mutex_lock(&w->lock);
    *m->done = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
  } else {
    g_free(m);
  }
}

/* the bridges' clock: DTMF packets that are due, media timeouts */
static void tick(worker *w, gint64 now)
{
  if (now < w->next_tick)
    return;
  w->next_tick = now + TICK_US;
  for (media_call *mc = w->live, *next; mc; mc = next) {
    next = mc->next_live;
    gint64 last = browser_media_last_rx(mc->bm);
    if (G_UNLIKELY(last && !mc->silent_sent && now - last > MEDIA_BROWSER_SILENCE_MS * 1000)) {
      mc->silent_sent = true;
      event *ev = g_new0(event, 1);
      ev->type = EV_SILENT;
      ev->call_id = mc->id;
      post_event(mc->engine, ev);
    }
    if (mc->bridge)
      media_bridge_tick(mc->bridge, now);
  }
}

static gpointer worker_main(gpointer data)
{
  worker *w = data;
  struct epoll_event evs[EPOLL_BATCH];
  bool running = true;

  w->next_tick = g_get_monotonic_time() + TICK_US;
  while (running) {
    gint64 now = g_get_monotonic_time();
    int timeout = w->next_tick > now ? (int)((w->next_tick - now + 999) / 1000) : 0;
    int n = epoll_wait(w->epfd, evs, EPOLL_BATCH, timeout);
    qlink *handled = NULL;

    /* Messages first: the keys (MSG_SRTP) of a call are posted before the
     * DTLS flight that lets the browser send (dtls.c holds it back until
     * on_connected has run), so its first packets, in the same batch as
     * the message, find them.  A call removed here is skipped below; its
     * remover is told only after the batch (it frees the call then). */
    for (int i = 0; i < n; i++) {
      endpoint *ep = evs[i].data.ptr;
      if (ep->kind != EP_WAKE)
        continue;
      uint64_t v;
      (void)!read(w->wakefd, &v, sizeof v);
      handled = queue_take_all(&w->inbox);
      for (qlink *l = handled; l; l = l->next) {
        msg *m = (msg *)l;
        if (m->type == MSG_STOP)
          running = false;
        handle_msg(w, m);
      }
      break;
    }
    for (int i = 0; i < n; i++) {
      endpoint *ep = evs[i].data.ptr;
      if (ep->kind != EP_WAKE && ep->mc->removed)
        continue;
      switch (ep->kind) {
      case EP_WAKE:
        break;
      case EP_BROWSER:
        browser_media_drain(ep->mc->bm);
        break;
      case EP_PBX_RTP:
        rtp_socket_drain(ep->mc->rtp, 0);
        break;
      case EP_PBX_RTCP:
        rtp_socket_drain(ep->mc->rtp, 1);
        break;
      }
    }
    tick(w, g_get_monotonic_time());
    for (qlink *l = handled, *next; l; l = next) {
      next = l->next;
      complete(w, (msg *)l);
    }
  }
  return NULL;
}

/* ---- main -> worker ---- */

static void post(worker *w, msg *m)
{
  uint64_t one = 1;

  queue_push(&w->inbox, &m->link);
  (void)!write(w->wakefd, &one, sizeof one);
}

/* Posts M (on the stack) and waits until the worker has handled it. */
static void post_wait(worker *w, msg *m)
{
  bool done = false;

  m->done = &done;
  post(w, m);
  pthread_mutex_lock(&w->lock);
  while (!done)
    pthread_cond_wait(&w->cond, &w->lock);
  pthread_mutex_unlock(&w->lock);
}

static msg *msg_new(media_call *mc, msg_type type)
{
  msg *m = g_new0(msg, 1);

  m->type = type;
  m->mc = mc;
  return m;
}

/* ---- the engine ---- */

static void worker_stop(worker *w)
{
  if (w->thread) {
    msg *m = g_new0(msg, 1);
    m->type = MSG_STOP;
    post(w, m);
    g_thread_join(w->thread);
    w->thread = NULL;
  }
  if (w->inbox_ready) {
    queue_clear(&w->inbox);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    w->inbox_ready = false;
  }
  if (w->epfd >= 0)
    close(w->epfd);
  if (w->wakefd >= 0)
    close(w->wakefd);
  w->epfd = w->wakefd = -1;
}

static int worker_start(media_engine *e, worker *w, unsigned index)
{
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &w->wake_ep };
  char name[16];

  w->e = e;
  w->index = index;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->cond, NULL);
  queue_init(&w->inbox);
  w->inbox_ready = true;
  w->wake_ep.kind = EP_WAKE;
  w->epfd = epoll_create1(EPOLL_CLOEXEC);
  w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->epfd < 0 || w->wakefd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev) < 0)
    return -errno;
  g_snprintf(name, sizeof name, "media-%u", index);
  w->thread = g_thread_try_new(name, worker_main, w, NULL);
  return w->thread ? 0 : -EAGAIN;
}

int media_engine_new(unsigned n_workers, media_engine **ret)
{
  g_return_val_if_fail(ret, -EINVAL);
  if (n_workers == 0)
    n_workers = MIN(g_get_num_processors(), MAX_WORKERS);
  if (n_workers > MAX_WORKERS)
    return -EINVAL;

  media_engine *e = g_new0(media_engine, 1);
  int r = 0;

  e->n = n_workers;
  e->workers = g_new0(worker, n_workers);
  for (unsigned i = 0; i < n_workers; i++)
    e->workers[i].epfd = e->workers[i].wakefd = -1;
  queue_init(&e->events);
  e->calls = g_hash_table_new(g_int64_hash, g_int64_equal);
  e->eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e->eventfd < 0)
    r = -errno;
  for (unsigned i = 0; r == 0 && i < n_workers; i++)
    r = worker_start(e, &e->workers[i], i);
  if (r < 0) {
    media_engine_free(e);
    return r;
  }
  e->event_source = g_unix_fd_add(e->eventfd, G_IO_IN, on_events, e);
  *ret = e;
  return 0;
}

void media_engine_free(media_engine *e)
{
  if (!e)
    return;
  for (unsigned i = 0; i < e->n; i++)
    worker_stop(&e->workers[i]);
  if (e->event_source)
    g_source_remove(e->event_source);
  if (e->eventfd >= 0)
    close(e->eventfd);
  queue_clear(&e->events);
  g_hash_table_destroy(e->calls);
  g_free(e->workers);
  g_free(e);
}

unsigned media_engine_workers(const media_engine *e)
{
  return e->n;
}

void media_engine_load(const media_engine *e, unsigned *calls, unsigned n)
{
  for (unsigned i = 0; i < n && i < e->n; i++)
    calls[i] = e->workers[i].calls;
}

/* ---- a call's media ---- */

int media_call_new(media_engine *e, browser_media *bm, rtp_socket *rtp,
                   const media_bridge_settings *settings, const media_call_callbacks *cb,
                   void *user, media_call **ret)
{
  g_return_val_if_fail(e && bm && settings && ret, -EINVAL);
  worker *w = &e->workers[0];

  for (unsigned i = 1; i < e->n; i++)
    if (e->workers[i].calls < w->calls)
      w = &e->workers[i];

  media_call *mc = g_new0(media_call, 1);
  mc->id = ++e->next_id;
  mc->engine = e;
  mc->w = w;
  if (cb)
    mc->cb = *cb;
  mc->user = user;
  mc->bm = bm;
  mc->rtp = rtp;
  mc->settings = *settings;
  mc->log_id = g_strdup(settings->log_id);
  mc->settings.log_id = NULL;
  for (unsigned i = 0; i < 3; i++) {
    mc->ep[i] = (endpoint){ .kind = (endpoint_kind)(EP_BROWSER + i), .mc = mc };
    mc->watched[i] = -1;
  }
  if (rtp)
    rtp_socket_detach(rtp); /* its fd sources: the worker reads it from now on */
  w->calls++;
  g_hash_table_insert(e->calls, &mc->id, mc);
  post(w, msg_new(mc, MSG_ADD));
  *ret = mc;
  return 0;
}

void media_call_free(media_call *mc, media_call_stats *final)
{
  if (!mc)
    return;
  msg m = { .type = MSG_REMOVE, .mc = mc, .stats = final };

  post_wait(mc->w, &m);
  mc->w->calls--;
  g_hash_table_remove(mc->engine->calls, &mc->id);
  g_free(mc->log_id);
  g_free(mc);
}

int media_call_set_pt_map(media_call *mc, const media_bridge_pt_pair *pairs, size_t n)
{
  if (media_bridge_pt_map_check(pairs, n) < 0)
    return -EINVAL;
  msg *m = msg_new(mc, MSG_PT_MAP);
  if (n)
    memcpy(m->u.pt.pairs, pairs, n * sizeof *pairs);
  m->u.pt.n = n;
  post(mc->w, m);
  return 0;
}

int media_call_set_dtmf(media_call *mc, const media_bridge_dtmf_settings *s)
{
  if (media_bridge_dtmf_check(s) < 0)
    return -EINVAL;
  msg *m = msg_new(mc, MSG_DTMF_SETTINGS);
  m->u.dtmf = *s;
  post(mc->w, m);
  return 0;
}

void media_call_forward_dtmf(media_call *mc, bool from_browser, bool forward)
{
  msg *m = msg_new(mc, MSG_FORWARD_DTMF);
  m->flag_a = from_browser;
  m->flag_b = forward;
  post(mc->w, m);
}

void media_call_set_sending(media_call *mc, bool to_pbx, bool sending)
{
  msg *m = msg_new(mc, MSG_SENDING);
  m->flag_a = to_pbx;
  m->flag_b = sending;
  post(mc->w, m);
}

int media_call_set_pbx_remote(media_call *mc, const char *address, uint16_t rtp_port, uint16_t rtcp_port)
{
  if (!address || !g_hostname_is_ip_address(address) || strlen(address) >= 64 || rtp_port == 0)
    return -EINVAL;
  msg *m = msg_new(mc, MSG_PBX_REMOTE);
  g_strlcpy(m->u.remote.address, address, sizeof m->u.remote.address);
  m->u.remote.rtp_port = rtp_port;
  m->u.remote.rtcp_port = rtcp_port;
  post(mc->w, m);
  return 0;
}

void media_call_clear_pbx_remote(media_call *mc)
{
  post(mc->w, msg_new(mc, MSG_PBX_CLEAR));
}

int media_call_send_dtmf(media_call *mc, bool to_pbx, char digit, unsigned duration_ms)
{
  msg m = { .type = MSG_SEND_DTMF, .mc = mc, .flag_a = to_pbx, .u.send = { digit, duration_ms } };

  post_wait(mc->w, &m);
  return m.result;
}

void media_call_set_srtp(media_call *mc, srtp_leg *srtp)
{
  msg *m = msg_new(mc, MSG_SRTP);
  m->u.srtp = srtp;
  post(mc->w, m);
}

void media_call_set_socket(media_call *mc, int fd, const char *ufrag, const char *pwd)
{
  msg *m = msg_new(mc, MSG_SOCKET);
  m->u.sock.fd = fd;
  if (ufrag)
    g_strlcpy(m->u.sock.ufrag, ufrag, sizeof m->u.sock.ufrag);
  if (pwd)
    g_strlcpy(m->u.sock.pwd, pwd, sizeof m->u.sock.pwd);
  post(mc->w, m);
}

void media_call_datagram(media_call *mc, const uint8_t *data, size_t len)
{
  if (len > UDP_MAX_PACKET)
    return;
  msg *m = g_malloc(sizeof *m + len + SRTP_LEG_MAX_TRAILER);
  memset(m, 0, sizeof *m);
  m->type = MSG_DATAGRAM;
  m->mc = mc;
  m->u.datagram.len = len;
  m->u.datagram.data = (uint8_t *)(m + 1);
  memcpy(m->u.datagram.data, data, len);
  post(mc->w, m);
}
