/* Unit tests: the binding table (gateway/bindings.c) with a test clock. */
#include <string.h>
#include <glib.h>

#include "gateway/bindings.h"

#define SEC G_USEC_PER_SEC

static void test_lifecycle(void)
{
  bindings *b = bindings_new();
  bool created = false;
  gint64 now = 1000 * SEC;

  binding *x = bindings_prepare(b, "sip:alice@example.com", 7, "sip:a1@h.invalid;transport=ws", 10, &created);
  g_assert_nonnull(x);
  g_assert_true(created);
  g_assert_cmpuint(strlen(x->token), ==, 16);
  /* pending: not reachable until the PBX says so */
  g_assert_false(binding_is_active(x, now));
  g_assert_cmpuint(bindings_active_count(b, now), ==, 0);
  g_assert_true(bindings_lookup_by_token(b, x->token) == x);

  bindings_confirm(b, x, 600, now);
  g_assert_true(binding_is_active(x, now));
  g_assert_true(binding_is_active(x, now + 599 * SEC));
  g_assert_false(binding_is_active(x, now + 600 * SEC));

  /* a refresh from the same flow keeps the binding and its token */
  char token[17];
  memcpy(token, x->token, sizeof token);
  binding *y = bindings_prepare(b, "sip:alice@example.com", 7, "sip:a1@h.invalid;transport=ws", 10, &created);
  g_assert_false(created);
  g_assert_true(y == x);
  bindings_confirm(b, y, 600, now + 500 * SEC);
  g_assert_true(binding_is_active(y, now + 900 * SEC));
  g_assert_cmpstr(y->token, ==, token);

  /* the same AOR from another flow is another binding */
  binding *z = bindings_prepare(b, "sip:alice@example.com", 8, "sip:a2@h.invalid;transport=ws", 10, &created);
  g_assert_true(created);
  g_assert_cmpstr(z->token, !=, token);
  g_assert_cmpuint(bindings_count(b), ==, 2);

  /* un-REGISTER (expires 0) removes it */
  bindings_confirm(b, z, 0, now);
  g_assert_cmpuint(bindings_count(b), ==, 1);
  g_assert_null(bindings_lookup_by_token(b, "nosuchtoken"));
  bindings_free(b);
}

static void test_expiry(void)
{
  bindings *b = bindings_new();
  bool created;
  gint64 now = 50 * SEC;

  binding *x = bindings_prepare(b, "sip:a@example.com", 1, "sip:a@h.invalid", 10, &created);
  binding *y = bindings_prepare(b, "sip:b@example.com", 1, "sip:b@h.invalid", 10, &created);
  bindings_prepare(b, "sip:c@example.com", 2, "sip:c@h.invalid", 10, &created); /* stays pending */
  bindings_confirm(b, x, 60, now);
  bindings_confirm(b, y, 120, now);

  g_assert_cmpuint(bindings_expire(b, now + 59 * SEC), ==, 0);
  g_assert_cmpuint(bindings_expire(b, now + 60 * SEC), ==, 1);
  g_assert_cmpuint(bindings_count(b), ==, 2);
  g_assert_cmpuint(bindings_active_count(b, now + 60 * SEC), ==, 1);
  /* pending bindings are not expired by the clock */
  g_assert_cmpuint(bindings_expire(b, now + 1000 * SEC), ==, 1);
  g_assert_cmpuint(bindings_count(b), ==, 1);
  bindings_free(b);
}

static void test_removal_and_limit(void)
{
  bindings *b = bindings_new();
  bool created;

  bindings_prepare(b, "sip:a@example.com", 1, "sip:a@h.invalid", 3, &created);
  bindings_prepare(b, "sip:b@example.com", 1, "sip:b@h.invalid", 3, &created);
  bindings_prepare(b, "sip:a@example.com", 2, "sip:a2@h.invalid", 3, &created);
  /* the table is full: a new one is refused, a known one is still found */
  g_assert_null(bindings_prepare(b, "sip:d@example.com", 3, "sip:d@h.invalid", 3, &created));
  g_assert_nonnull(bindings_prepare(b, "sip:b@example.com", 1, "sip:b@h.invalid", 3, &created));
  g_assert_false(created);

  /* a closed WebSocket takes its bindings with it */
  g_assert_cmpuint(bindings_remove_flow(b, 1), ==, 2);
  g_assert_cmpuint(bindings_count(b), ==, 1);
  g_assert_cmpuint(bindings_remove_flow(b, 1), ==, 0);
  /* "Contact: *" removes every binding of the AOR */
  g_assert_cmpuint(bindings_remove_aor(b, "sip:a@example.com"), ==, 1);
  g_assert_cmpuint(bindings_count(b), ==, 0);
  bindings_free(b);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/bindings/lifecycle", test_lifecycle);
  g_test_add_func("/bindings/expiry", test_expiry);
  g_test_add_func("/bindings/removal-and-limit", test_removal_and_limit);
  return g_test_run();
}
