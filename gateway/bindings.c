/* The binding table.  See bindings.h. */
#include "gateway/bindings.h"

#include <string.h>

#include "sip/sipmsg.h"

struct bindings {
  GHashTable *by_token;    /* token -> binding (owns) */
  GHashTable *by_aor_flow; /* "flow aor" -> binding */
};

static char *aor_flow_key(const char *aor, uint64_t flow)
{
  return g_strdup_printf("%" G_GUINT64_FORMAT " %s", flow, aor);
}

static void binding_free(binding *x)
{
  g_free(x->aor);
  g_free(x->contact_uri);
  g_free(x);
}

bindings *bindings_new(void)
{
  bindings *b = g_new0(bindings, 1);
  b->by_token = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)binding_free);
  b->by_aor_flow = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  return b;
}

void bindings_free(bindings *b)
{
  if (!b)
    return;
  g_hash_table_destroy(b->by_aor_flow);
  g_hash_table_destroy(b->by_token);
  g_free(b);
}

binding *bindings_prepare(bindings *b, const char *aor, uint64_t flow,
                          const char *contact_uri, unsigned max, bool *created)
{
  char *key = aor_flow_key(aor, flow);
  binding *x = g_hash_table_lookup(b->by_aor_flow, key);

  *created = false;
  if (x) {
    g_free(key);
    if (g_strcmp0(x->contact_uri, contact_uri) != 0) {
      g_free(x->contact_uri);
      x->contact_uri = g_strdup(contact_uri);
    }
    return x;
  }
  if (g_hash_table_size(b->by_token) >= max) {
    g_free(key);
    return NULL;
  }
  x = g_new0(binding, 1);
  x->aor = g_strdup(aor);
  x->flow = flow;
  x->contact_uri = g_strdup(contact_uri);
  do
    sipmsg_random_token(x->token);
  while (g_hash_table_contains(b->by_token, x->token));
  g_hash_table_insert(b->by_token, x->token, x);
  g_hash_table_insert(b->by_aor_flow, key, x);
  *created = true;
  return x;
}

binding *bindings_lookup_by_token(bindings *b, const char *token)
{
  return token ? g_hash_table_lookup(b->by_token, token) : NULL;
}

bool binding_is_active(const binding *x, gint64 now)
{
  return x->expires_at != 0 && x->expires_at > now;
}

void bindings_remove(bindings *b, binding *x)
{
  char *key = aor_flow_key(x->aor, x->flow);
  g_hash_table_remove(b->by_aor_flow, key);
  g_free(key);
  g_hash_table_remove(b->by_token, x->token); /* frees x */
}

void bindings_confirm(bindings *b, binding *x, unsigned expires, gint64 now)
{
  if (expires == 0) {
    bindings_remove(b, x);
    return;
  }
  x->expires_at = now + (gint64)expires * G_USEC_PER_SEC;
}

typedef gboolean (*binding_pred)(const binding *x, const void *arg);

static unsigned remove_where(bindings *b, binding_pred pred, const void *arg)
{
  GHashTableIter it;
  gpointer value;
  GPtrArray *doomed = g_ptr_array_new();

  g_hash_table_iter_init(&it, b->by_token);
  while (g_hash_table_iter_next(&it, NULL, &value))
    if (pred(value, arg))
      g_ptr_array_add(doomed, value);
  for (guint i = 0; i < doomed->len; i++)
    bindings_remove(b, doomed->pdata[i]);
  unsigned n = doomed->len;
  g_ptr_array_free(doomed, TRUE);
  return n;
}

static gboolean on_flow(const binding *x, const void *arg)
{
  return x->flow == *(const uint64_t *)arg;
}

static gboolean on_aor(const binding *x, const void *arg)
{
  return strcmp(x->aor, arg) == 0;
}

static gboolean expired(const binding *x, const void *arg)
{
  return x->expires_at != 0 && x->expires_at <= *(const gint64 *)arg;
}

unsigned bindings_remove_flow(bindings *b, uint64_t flow)
{
  return remove_where(b, on_flow, &flow);
}

unsigned bindings_remove_aor(bindings *b, const char *aor)
{
  return remove_where(b, on_aor, aor);
}

unsigned bindings_expire(bindings *b, gint64 now)
{
  return remove_where(b, expired, &now);
}

unsigned bindings_count(const bindings *b)
{
  return g_hash_table_size(b->by_token);
}

unsigned bindings_active_count(const bindings *b, gint64 now)
{
  GHashTableIter it;
  gpointer value;
  unsigned n = 0;

  g_hash_table_iter_init(&it, b->by_token);
  while (g_hash_table_iter_next(&it, NULL, &value))
    n += binding_is_active(value, now);
  return n;
}
