/* A batch of received datagrams: one recvmmsg() fills up to UDP_BATCH of
 * them, each in a slot with SRTP_LEG_MAX_TRAILER bytes of room after the
 * largest packet (so that it can be protected in place).  One batch per
 * thread that reads media (a media worker), not per socket: the memory of a
 * call does not grow with it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "webrtc/srtp.h"

#define UDP_BATCH 32
#define UDP_MAX_PACKET 1500
#define UDP_BATCH_SLOT (UDP_MAX_PACKET + SRTP_LEG_MAX_TRAILER)

typedef struct {
  struct mmsghdr msgs[UDP_BATCH];
  struct iovec iov[UDP_BATCH];
  struct sockaddr_storage from[UDP_BATCH];
  uint8_t buf[UDP_BATCH][UDP_BATCH_SLOT];
} udp_batch;

/* Reads what FD has, up to UDP_BATCH datagrams (MSG_DONTWAIT): the number
 * read (0: nothing there).  Datagram I is buf[I], msgs[I].msg_len bytes
 * (more than UDP_MAX_PACKET: it was truncated), from from[I] (its length in
 * msgs[I].msg_hdr.msg_namelen).  *ERR gets errno when recvmmsg failed with
 * something else than EAGAIN (ECONNREFUSED on a connected socket: the peer's
 * port is closed), else 0. */
unsigned udp_batch_recv(udp_batch *b, int fd, int *err);

/* A batch for the calling thread, made on its first use (never freed: one
 * per thread that reads media, for the life of the thread). */
udp_batch *udp_batch_for_thread(void);
