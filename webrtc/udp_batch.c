/* A batch of received datagrams: see udp_batch.h. */
#include "webrtc/udp_batch.h"

#include <errno.h>
#include <glib.h>

unsigned udp_batch_recv(udp_batch *b, int fd, int *err)
{
  for (unsigned i = 0; i < UDP_BATCH; i++) {
    b->iov[i].iov_base = b->buf[i];
    b->iov[i].iov_len = UDP_MAX_PACKET + 1; /* one more: a longer datagram shows as truncated */
    b->msgs[i].msg_hdr = (struct msghdr){
      .msg_name = &b->from[i], .msg_namelen = sizeof b->from[i], .msg_iov = &b->iov[i], .msg_iovlen = 1,
    };
  }
  *err = 0;
  for (;;) {
    int n = recvmmsg(fd, b->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
    if (n >= 0)
      return (unsigned)n;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      *err = errno;
    return 0;
  }
}

static GPrivate batch_key = G_PRIVATE_INIT(g_free);

udp_batch *udp_batch_for_thread(void)
{
  udp_batch *b = g_private_get(&batch_key);

  if (!b) {
    b = g_new0(udp_batch, 1);
    g_private_set(&batch_key, b);
  }
  return b;
}
