/* The load generator's media threads (lg_media.h). */
#include "lg_media.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>

#define PTIME_MS 20
#define TICK_US 1000
#define PHASES (PTIME_MS * 1000 / TICK_US)
#define MAX_WORKERS 64
#define RTP_HEADER 12
#define TIME_BYTES 8

struct lg_call_media {
  browser_media *bm;
  int fd;
  uint8_t pt;
  uint32_t ssrc, ts, ts_step;
  uint16_t seq;
  size_t payload_len;
  unsigned phase;
  atomic_bool sending;
  uint64_t sent, send_failed;
  lg_stream stream;
  struct lg_worker *worker;
  unsigned index; /* in the worker's array */
};

typedef enum { CMD_ADD, CMD_REMOVE } cmd_kind;

typedef struct {
  cmd_kind kind;
  lg_call_media *cm;
  bool *done; /* CMD_REMOVE: set under the worker's lock */
} cmd;

typedef struct lg_worker {
  pthread_t thread;
  int epfd, evfd, timerfd;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  GArray *cmds; /* cmd, under lock */
  bool stop;    /* under lock */
  GPtrArray *calls; /* the worker's own */
  unsigned next_phase; /* of the next call added */
  atomic_uint_fast64_t sent, received;
  unsigned load; /* calls added minus removed (main thread only) */
} lg_worker;

struct lg_media {
  lg_worker w[MAX_WORKERS];
  unsigned n;
};

static uint8_t payload_bytes[UDP_MAX_PACKET]; /* prepared once */

static int64_t now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_rtp(void *user, uint8_t *buf, size_t len, size_t cap)
{
  lg_call_media *cm = user;
  int64_t sent_us;

  if (len < RTP_HEADER + TIME_BYTES || (buf[1] & 0x7f) != cm->pt)
    return; /* not ours: counted by browser_media's stats as delivered only */
  unsigned cc = buf[0] & 0x0f;
  size_t off = RTP_HEADER + 4 * cc;
  if (buf[0] & 0x10) { /* header extension */
    if (len < off + 4)
      return;
    off += 4 + 4 * (size_t)((buf[off + 2] << 8) | buf[off + 3]);
  }
  if (len < off + TIME_BYTES)
    return;
  memcpy(&sent_us, buf + off, TIME_BYTES);
  lg_stream_received(&cm->stream, (uint16_t)(buf[2] << 8 | buf[3]), sent_us, now_us());
  atomic_fetch_add_explicit(&cm->worker->received, 1, memory_order_relaxed);
}

static void on_rtcp(void *user, uint8_t *buf, size_t len, size_t cap)
{
}

static void send_one(lg_worker *w, lg_call_media *cm, int64_t now)
{
  uint8_t buf[RTP_HEADER + UDP_MAX_PACKET + SRTP_LEG_MAX_TRAILER];
  size_t len = RTP_HEADER + cm->payload_len;

  buf[0] = 0x80;
  buf[1] = cm->pt;
  buf[2] = (uint8_t)(cm->seq >> 8), buf[3] = (uint8_t)cm->seq;
  buf[4] = (uint8_t)(cm->ts >> 24), buf[5] = (uint8_t)(cm->ts >> 16);
  buf[6] = (uint8_t)(cm->ts >> 8), buf[7] = (uint8_t)cm->ts;
  buf[8] = (uint8_t)(cm->ssrc >> 24), buf[9] = (uint8_t)(cm->ssrc >> 16);
  buf[10] = (uint8_t)(cm->ssrc >> 8), buf[11] = (uint8_t)cm->ssrc;
  memcpy(buf + RTP_HEADER, &now, TIME_BYTES);
  memcpy(buf + RTP_HEADER + TIME_BYTES, payload_bytes, cm->payload_len - TIME_BYTES);
  if (browser_media_send_rtp(cm->bm, buf, len, sizeof(buf)) == 0) {
    cm->sent++;
    atomic_fetch_add_explicit(&w->sent, 1, memory_order_relaxed);
  } else {
    cm->send_failed++;
  }
  cm->seq++;
  cm->ts += cm->ts_step;
}

static void run_commands(lg_worker *w, bool *stop)
{
  pthread_mutex_lock(&w->lock);
  for (guint i = 0; i < w->cmds->len; i++) {
    cmd *c = &g_array_index(w->cmds, cmd, i);
    lg_call_media *cm = c->cm;
    if (c->kind == CMD_ADD) {
      struct epoll_event ev = { .events = EPOLLIN, .data.ptr = cm };
      cm->index = w->calls->len;
      g_ptr_array_add(w->calls, cm);
      cm->phase = w->next_phase; /* spread over the 20 ms, round robin */
      w->next_phase = (w->next_phase + 1) % PHASES;
      (void)epoll_ctl(w->epfd, EPOLL_CTL_ADD, cm->fd, &ev);
    } else {
      (void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, cm->fd, NULL);
      lg_call_media *last = g_ptr_array_index(w->calls, w->calls->len - 1);
      w->calls->pdata[cm->index] = last;
      last->index = cm->index;
      g_ptr_array_set_size(w->calls, w->calls->len - 1);
      *c->done = true;
    }
  }
  g_array_set_size(w->cmds, 0);
  *stop = w->stop;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *data)
{
  lg_worker *w = data;
  struct epoll_event evs[64];
  unsigned phase = 0;
  bool stop = false;

  while (!stop) {
    int n = epoll_wait(w->epfd, evs, 64, 100);
    for (int i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == &w->evfd) {
        uint64_t v;
        (void)!read(w->evfd, &v, sizeof(v));
        run_commands(w, &stop);
      } else if (p == &w->timerfd) {
        uint64_t expirations = 0;
        (void)!read(w->timerfd, &expirations, sizeof(expirations));
        int64_t now = now_us();
        /* a late wakeup sends the phases it missed (at most one round) */
        if (expirations > PHASES)
          expirations = PHASES;
        for (uint64_t e = 0; e < expirations; e++) {
          for (guint k = 0; k < w->calls->len; k++) {
            lg_call_media *cm = g_ptr_array_index(w->calls, k);
            if (cm->phase == phase && atomic_load_explicit(&cm->sending, memory_order_relaxed))
              send_one(w, cm, now);
          }
          phase = (phase + 1) % PHASES;
        }
      } else {
        lg_call_media *cm = p;
        while (browser_media_drain(cm->bm) == UDP_BATCH)
          ;
      }
    }
  }
  return NULL;
}

static int worker_start(lg_worker *w)
{
  struct itimerspec its = { .it_interval = { 0, TICK_US * 1000 }, .it_value = { 0, TICK_US * 1000 } };
  struct epoll_event ev = { .events = EPOLLIN };

  w->epfd = epoll_create1(EPOLL_CLOEXEC);
  w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  w->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (w->epfd < 0 || w->evfd < 0 || w->timerfd < 0)
    return -errno;
  timerfd_settime(w->timerfd, 0, &its, NULL);
  ev.data.ptr = &w->evfd;
  epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev);
  ev.data.ptr = &w->timerfd;
  epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->timerfd, &ev);
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->cond, NULL);
  w->cmds = g_array_new(FALSE, FALSE, sizeof(cmd));
  w->calls = g_ptr_array_new();
  return -pthread_create(&w->thread, NULL, worker_main, w);
}

int lg_media_new(unsigned workers, lg_media **ret)
{
  lg_media *pool = g_new0(lg_media, 1);

  if (!workers)
    workers = g_get_num_processors();
  if (workers > MAX_WORKERS)
    workers = MAX_WORKERS;
  for (size_t i = 0; i < sizeof(payload_bytes); i++)
    payload_bytes[i] = (uint8_t)(0x55 ^ (i * 7));
  for (unsigned i = 0; i < workers; i++) {
    int rc = worker_start(&pool->w[i]);
    if (rc < 0) {
      pool->n = i;
      lg_media_free(pool);
      return rc;
    }
    pool->n = i + 1;
  }
  *ret = pool;
  return 0;
}

static void post(lg_worker *w, cmd c, bool wait)
{
  uint64_t one = 1;
  bool done = false;

  c.done = &done;
  pthread_mutex_lock(&w->lock);
  g_array_append_val(w->cmds, c);
  pthread_mutex_unlock(&w->lock);
  (void)!write(w->evfd, &one, sizeof(one));
  if (!wait)
    return;
  pthread_mutex_lock(&w->lock);
  while (!done)
    pthread_cond_wait(&w->cond, &w->lock);
  pthread_mutex_unlock(&w->lock);
}

void lg_media_free(lg_media *pool)
{
  if (!pool)
    return;
  for (unsigned i = 0; i < pool->n; i++) {
    lg_worker *w = &pool->w[i];
    uint64_t one = 1;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_mutex_unlock(&w->lock);
    (void)!write(w->evfd, &one, sizeof(one));
    pthread_join(w->thread, NULL);
    close(w->epfd);
    close(w->evfd);
    close(w->timerfd);
    g_array_unref(w->cmds);
    g_ptr_array_unref(w->calls);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
  }
  g_free(pool);
}

lg_call_media *lg_call_media_new(browser_media *bm, lg_codec codec, int pt, uint32_t ssrc)
{
  lg_call_media *cm = g_new0(lg_call_media, 1);

  cm->bm = bm;
  cm->fd = browser_media_socket(bm);
  cm->pt = (uint8_t)pt;
  cm->ssrc = ssrc;
  cm->seq = (uint16_t)g_random_int();
  cm->ts = g_random_int();
  /* Chromium's Opus at its default rate is about 60-120 bytes per 20 ms;
   * PCMU is 160 */
  cm->payload_len = codec == LG_CODEC_OPUS ? 100 : 160;
  cm->ts_step = codec == LG_CODEC_OPUS ? 960 : 160;
  lg_stream_init(&cm->stream);
  atomic_init(&cm->sending, true);
  browser_media_set_sink(bm, on_rtp, on_rtcp, cm);
  return cm;
}

void lg_call_media_free(lg_call_media *cm)
{
  if (!cm)
    return;
  browser_media_free(cm->bm);
  g_free(cm);
}

void lg_media_add(lg_media *pool, lg_call_media *cm)
{
  lg_worker *best = &pool->w[0];
  for (unsigned i = 1; i < pool->n; i++)
    if (pool->w[i].load < best->load)
      best = &pool->w[i];
  best->load++;
  cm->worker = best;
  post(best, (cmd){ .kind = CMD_ADD, .cm = cm }, false);
}

void lg_media_stop_sending(lg_call_media *cm)
{
  atomic_store(&cm->sending, false);
}

void lg_media_remove(lg_media *pool, lg_call_media *cm)
{
  if (!cm->worker)
    return;
  post(cm->worker, (cmd){ .kind = CMD_REMOVE, .cm = cm }, true);
  cm->worker->load--;
  cm->worker = NULL;
}

uint64_t lg_call_media_sent(const lg_call_media *cm) { return cm->sent; }
uint64_t lg_call_media_send_failed(const lg_call_media *cm) { return cm->send_failed; }
const lg_stream *lg_call_media_stream(const lg_call_media *cm) { return &cm->stream; }
void lg_call_media_bm_stats(const lg_call_media *cm, browser_media_stats *out)
{
  browser_media_get_stats(cm->bm, out);
}

void lg_media_progress(lg_media *pool, uint64_t *sent, uint64_t *received)
{
  *sent = *received = 0;
  for (unsigned i = 0; i < pool->n; i++) {
    *sent += atomic_load_explicit(&pool->w[i].sent, memory_order_relaxed);
    *received += atomic_load_explicit(&pool->w[i].received, memory_order_relaxed);
  }
}
