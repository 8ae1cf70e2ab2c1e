/* Answers the browser's STUN Binding requests (ICE connectivity and consent
 * checks, RFC 8445 section 7.3, RFC 7675) on a call's media socket once the
 * media worker reads that socket instead of libnice (ice_agent_fastpath_open).
 *
 * The request is validated with libnice's STUN library (MESSAGE-INTEGRITY
 * with our ICE password, FINGERPRINT, USERNAME starting with our ufrag) and
 * the success response is built with it too (XOR-MAPPED-ADDRESS of the
 * sender).  Anything else (responses, indications, requests for another
 * ufrag, bad integrity) gets no answer.  The responder holds no pointer and
 * does not allocate: the media path calls it per STUN packet, on any thread
 * (one thread at a time per responder).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <stun/stunagent.h>

#define STUN_RESPONDER_MAX_CRED 256 /* RFC 8839: ufrag and pwd at most 256 characters */
#define STUN_RESPONDER_MAX_REPLY 1280

typedef struct {
  StunAgent agent;
  char ufrag[STUN_RESPONDER_MAX_CRED + 1];
  uint8_t pwd[STUN_RESPONDER_MAX_CRED + 1];
  size_t ufrag_len, pwd_len;
} stun_responder;

/* UFRAG and PWD: our local ICE credentials.  0 or -EINVAL (missing, too long). */
int stun_responder_init(stun_responder *r, const char *ufrag, const char *pwd);

/* The datagram REQ (LEN bytes) from FROM: when it is a Binding request for
 * us, the success response goes in OUT (CAP >= STUN_RESPONDER_MAX_REPLY
 * suffices), *OUT_LEN set, 0 returned.  -EBADMSG: not a valid request for us
 * (drop it, nothing to send). */
int stun_responder_reply(stun_responder *r, const uint8_t *req, size_t len,
                         const struct sockaddr *from, socklen_t from_len,
                         uint8_t *out, size_t cap, size_t *out_len);
