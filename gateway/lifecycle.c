/* Daemon lifecycle toward systemd.  See lifecycle.h. */
#include "gateway/lifecycle.h"

#include <string.h>
#include <glib.h>
#include <systemd/sd-daemon.h>

#include "config/log.h"

static guint watchdog_source;
static char *last_status;

static gboolean on_watchdog(gpointer user)
{
  sd_notify(0, "WATCHDOG=1");
  return G_SOURCE_CONTINUE;
}

int lifecycle_start_watchdog(void)
{
  uint64_t usec = 0;
  int r = sd_watchdog_enabled(0, &usec);

  if (r < 0) {
    log_msg(LOG_WARNING, "systemd watchdog settings unusable (%s); running without it",
            g_strerror(-r));
    return 0;
  }
  if (r == 0 || usec == 0)
    return 0;
  sd_notify(0, "WATCHDOG=1");
  watchdog_source = g_timeout_add(MAX(usec / 2000, 1), on_watchdog, NULL);
  log_msg(LOG_INFO, "systemd watchdog every %" G_GUINT64_FORMAT " ms", usec / 2000);
  return 0;
}

void lifecycle_stop_watchdog(void)
{
  if (watchdog_source)
    g_source_remove(watchdog_source);
  watchdog_source = 0;
  g_clear_pointer(&last_status, g_free);
}

void lifecycle_notify_ready(const char *status)
{
  g_free(last_status);
  last_status = g_strdup(status);
  sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void lifecycle_notify_status(const char *status)
{
  if (g_strcmp0(status, last_status) == 0)
    return;
  g_free(last_status);
  last_status = g_strdup(status);
  sd_notifyf(0, "STATUS=%s", status);
}

void lifecycle_notify_reloading(void)
{
  sd_notify(0, "RELOADING=1");
}

void lifecycle_notify_reloaded(void)
{
  sd_notify(0, "READY=1");
}

void lifecycle_notify_stopping(void)
{
  sd_notify(0, "STOPPING=1");
}
