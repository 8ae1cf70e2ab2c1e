/* Fuzz target: the configuration loader (config/config.c) on any file.
 *
 * The input is written to one file (a temporary directory per process,
 * reused for every input) and read with config_load(), as rtcsipd reads
 * -c FILE at start and on SIGHUP.  Besides crashes and leaks, it checks what
 * config.h promises: a refusal says "FILE:LINE: ..." and leaves no config; an
 * accepted file has a listener, domains, an advertised address, a PBX and a
 * usable RTP port range. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "config/config.h"
#include "config/log.h"
#include "tests/fuzz/fuzz_common.h"

#define CHECK FUZZ_CHECK

static char *dir, *path;

static void cleanup(void)
{
  if (path)
    g_unlink(path);
  if (dir)
    g_rmdir(dir);
}

static void check_accepted(const config *c)
{
  CHECK(c->path && strcmp(c->path, path) == 0);
  CHECK(c->log_level >= LOG_ERR && c->log_level <= LOG_DEBUG);
  CHECK(c->ws.port || c->wss.port);
  CHECK(!(c->ws.port && c->ws.port == c->wss.port));
  CHECK(!c->tls_certificate == !c->tls_private_key);
  CHECK(c->domains && c->domains[0]);
  for (char **d = c->domains; *d; d++)
    CHECK(config_serves_domain(c, *d));
  CHECK(c->advertised_address && c->advertised_address[0]);
  CHECK(c->pbx_host && c->pbx_host[0] && c->pbx_port);
  CHECK(c->rtp_port_min < c->rtp_port_max);
  CHECK(!c->session_expires || c->session_expires >= c->min_se);
  CHECK(c->pending_calls_per_connection <= c->pending_calls_per_ip);
  CHECK(c->echo_user);
  for (size_t i = 0; i < c->n_turn_servers; i++)
    CHECK(c->turn_servers[i].url && c->turn_servers[i].username && c->turn_servers[i].password);
  for (size_t i = 0; i < c->n_stun_servers; i++)
    CHECK(c->stun_servers[i].url);
  (void)sip_transport_name(c->pbx_transport);
  (void)dtmf_mode_name(c->dtmf_to_pbx);
  (void)rtp_source_mode_name(c->rtp_source);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  config *c = NULL;
  char *error = NULL;
  g_autoptr(GError) gerr = NULL;
  int r;

  if (!dir) {
    log_set_level(LOG_ERR);
    dir = g_dir_make_tmp("rtcsipd-fuzz-config-XXXXXX", &gerr);
    CHECK(dir);
    path = g_build_filename(dir, "rtcsipd.conf", NULL);
    atexit(cleanup);
  }
  /* written in place (g_file_set_contents would fsync every input) */
  FILE *f = fopen(path, "wb");
  CHECK(f);
  CHECK(fwrite(data, 1, size, f) == size || size == 0);
  CHECK(fclose(f) == 0);

  r = config_load(path, &c, &error);
  if (r == 0) {
    CHECK(c && !error);
    check_accepted(c);
    config_free(c);
  } else {
    CHECK(r < 0 && !c);
    CHECK(error);
    /* "FILE:LINE: ..." */
    CHECK(g_str_has_prefix(error, path) && error[strlen(path)] == ':');
    char *end = NULL;
    (void)strtoul(error + strlen(path) + 1, &end, 10);
    CHECK(end != error + strlen(path) + 1 && end[0] == ':');
    g_free(error);
  }
  return 0;
}
