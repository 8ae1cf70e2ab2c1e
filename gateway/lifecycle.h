/* Daemon lifecycle toward systemd: sd_notify READY/STATUS/STOPPING and the
 * watchdog.  Everything here is a no-op when NOTIFY_SOCKET is not set. */
#pragma once

#include <stdbool.h>

/* Starts the WATCHDOG=1 timer (at half of WATCHDOG_USEC) on the default GLib
 * main context when the service manager asked for one.  Returns 0 or a
 * negative errno (a wrong WATCHDOG_PID is not an error: no watchdog then). */
int lifecycle_start_watchdog(void);
void lifecycle_stop_watchdog(void);
/* READY=1 with a first STATUS= line. */
void lifecycle_notify_ready(const char *status);
/* STATUS=... (sent only when it changed since the last call) */
void lifecycle_notify_status(const char *status);
/* RELOADING=1 ... READY=1 around a SIGHUP reload */
void lifecycle_notify_reloading(void);
void lifecycle_notify_reloaded(void);
/* STOPPING=1 */
void lifecycle_notify_stopping(void);
