/* Bindings: which browser (WebSocket flow) is registered for which AOR.
 *
 * A binding is made when a REGISTER from a flow is forwarded (pending), is
 * confirmed with an expiry by the PBX's 2xx, and goes away on un-REGISTER,
 * expiry, or when its flow closes.  Each has a token, the user part of the
 * Contact rtcsipd registers at the PBX; requests from the PBX find the
 * browser by it.  Times are GLib monotonic microseconds, passed in so that
 * tests control the clock.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct bindings bindings;

typedef struct {
  char *aor;          /* "sip:alice@example.com" */
  uint64_t flow;      /* ws_conn id */
  char token[17];
  char *contact_uri;  /* the browser's own Contact URI */
  gint64 expires_at;  /* 0 while pending: not (yet) confirmed by the PBX */
} binding;

bindings *bindings_new(void);
void bindings_free(bindings *b);

/* The binding of AOR on FLOW, made pending when there is none (then *created
 * is true).  CONTACT_URI replaces the stored one.  NULL when a new binding
 * would pass MAX bindings in all. */
binding *bindings_prepare(bindings *b, const char *aor, uint64_t flow,
                          const char *contact_uri, unsigned max, bool *created);
binding *bindings_lookup_by_token(bindings *b, const char *token);
/* Active: confirmed and not expired. */
bool binding_is_active(const binding *x, gint64 now);
/* The PBX accepted it for EXPIRES seconds; 0 removes it. */
void bindings_confirm(bindings *b, binding *x, unsigned expires, gint64 now);
void bindings_remove(bindings *b, binding *x);
/* Removes every binding of FLOW / of AOR; returns how many. */
unsigned bindings_remove_flow(bindings *b, uint64_t flow);
unsigned bindings_remove_aor(bindings *b, const char *aor);
/* Removes confirmed bindings whose time has passed; returns how many. */
unsigned bindings_expire(bindings *b, gint64 now);
unsigned bindings_count(const bindings *b);
unsigned bindings_active_count(const bindings *b, gint64 now);
