/* Answers the browser's STUN checks on the media worker: see stun_responder.h. */
#include "webrtc/stun_responder.h"

#include <errno.h>
#include <string.h>
#include <stun/stunmessage.h>
#include <stun/usages/ice.h>

int stun_responder_init(stun_responder *r, const char *ufrag, const char *pwd)
{
  size_t ul = ufrag ? strlen(ufrag) : 0, pl = pwd ? strlen(pwd) : 0;

  if (ul == 0 || pl == 0 || ul > STUN_RESPONDER_MAX_CRED || pl > STUN_RESPONDER_MAX_CRED)
    return -EINVAL;
  memset(r, 0, sizeof *r);
  /* as libnice's own agent for RFC 5245 mode (agent.c, stun agent of a component) */
  stun_agent_init(&r->agent, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC5389,
                  STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
  memcpy(r->ufrag, ufrag, ul);
  memcpy(r->pwd, pwd, pl);
  r->ufrag_len = ul;
  r->pwd_len = pl;
  return 0;
}

/* USERNAME is "OURUFRAG:THEIRUFRAG" (RFC 8445 section 7.2.2): ours, and our password. */
static bool validate_username(StunAgent *agent, StunMessage *message, uint8_t *username,
                              uint16_t username_len, uint8_t **password, size_t *password_len,
                              void *user_data)
{
  stun_responder *r = user_data;

  (void)agent;
  (void)message;
  if (username_len <= r->ufrag_len || username[r->ufrag_len] != ':' ||
      memcmp(username, r->ufrag, r->ufrag_len) != 0)
    return false;
  *password = r->pwd;
  *password_len = r->pwd_len;
  return true;
}

int stun_responder_reply(stun_responder *r, const uint8_t *req, size_t len,
                         const struct sockaddr *from, socklen_t from_len,
                         uint8_t *out, size_t cap, size_t *out_len)
{
  StunMessage msg, reply;
  struct sockaddr_storage src;
  uint64_t their_tie;
  size_t n = cap;

  *out_len = 0;
  if (from_len > sizeof src ||
      stun_agent_validate(&r->agent, &msg, req, len, validate_username, r) != STUN_VALIDATION_SUCCESS ||
      stun_message_get_class(&msg) != STUN_REQUEST || stun_message_get_method(&msg) != STUN_BINDING)
    return -EBADMSG;
  memset(&src, 0, sizeof src);
  memcpy(&src, from, from_len);
  /* The pair is nominated and in use: whatever role the peer claims, take the
   * other one, so that a consent check is never answered with a role conflict. */
  bool control = stun_message_find64(&msg, STUN_ATTRIBUTE_ICE_CONTROLLING, &their_tie) !=
                 STUN_MESSAGE_RETURN_SUCCESS;
  if (stun_usage_ice_conncheck_create_reply(&r->agent, &msg, &reply, out, &n, &src, from_len,
                                            &control, 0, STUN_USAGE_ICE_COMPATIBILITY_RFC5245) !=
          STUN_USAGE_ICE_RETURN_SUCCESS ||
      n == 0)
    return -EBADMSG;
  *out_len = n;
  return 0;
}
