/* SIP message helpers on Sofia-SIP's parser and printer: parse the text of
 * one WebSocket message, make a response to a request, print a message.
 * Nothing here parses SIP by hand. */
#pragma once

#include <stddef.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/su_tag.h>

typedef enum {
  SIPMSG_OK,          /* a complete request or response */
  SIPMSG_BAD_REQUEST, /* broken, but with a request line: answer 400 (Via,
                       * From, To, Call-ID or CSeq may be missing) */
  SIPMSG_BAD_VERSION, /* a request of another SIP version: answer 505 */
  SIPMSG_BAD_MESSAGE, /* nothing to answer to: close the flow */
} sipmsg_parse_result;

/* Parses TEXT.  *ret gets the message (the caller frees it with msg_destroy)
 * for SIPMSG_OK and SIPMSG_BAD_REQUEST, NULL otherwise; *why says what is
 * wrong (static text) when the result is not SIPMSG_OK. */
sipmsg_parse_result sipmsg_parse(const char *text, size_t len, msg_t **ret, const char **why);

/* A response to REQUEST with its Via, From, To, Call-ID and CSeq; a To tag is
 * added to a final response when the request had none.  Further headers from
 * the tag list.  NULL on failure. */
msg_t *sipmsg_response(msg_t *request, int status, const char *phrase,
                       tag_type_t tag, tag_value_t value, ...);

/* The message as text (g_malloc'd, NUL-terminated), *len its length; NULL on
 * failure.  Headers changed since parsing are printed anew. */
char *sipmsg_print(msg_t *msg, size_t *len);

/* A fresh RFC 3261 branch: "z9hG4bK" + 16 random characters. */
void sipmsg_new_branch(char out[32]);
/* 16 random characters [a-z0-9] for tags and tokens, from the kernel's
 * CSPRNG (getrandom): unguessable. */
void sipmsg_random_token(char out[17]);
