/* Logging: one sink for the whole daemon, on stderr.
 *
 * Every line carries a level and, when it is about one connection or call,
 * that object's id ("ws-12", "reg-3", "call-7").  Under systemd (JOURNAL_STREAM
 * set) lines start with the "<N>" syslog prefix journald understands; otherwise
 * with the level's name.  The level is set from the configuration and changed
 * on SIGHUP.  Nothing on the media path logs.
 */
#pragma once

#include <stdbool.h>
#include <syslog.h>
#include <glib.h>

void log_set_level(int level);
int log_get_level(void);
/* "error", "warning", "notice", "info", "debug" -> LOG_ERR..LOG_DEBUG; -EINVAL otherwise */
int log_level_from_string(const char *name);
const char *log_level_to_string(int level);

void log_write(int level, const char *id, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

#define log_enabled(level) ((level) <= log_get_level())
#define log_msg(level, ...) \
  do { if (log_enabled(level)) log_write((level), NULL, __VA_ARGS__); } while (0)
/* id: a short string naming the connection or call, e.g. "ws-12" */
#define log_id(id, level, ...) \
  do { if (log_enabled(level)) log_write((level), (id), __VA_ARGS__); } while (0)
