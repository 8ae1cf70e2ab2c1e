#include "config/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int current_level = LOG_INFO;
static int use_prefix = -1; /* <N> journald prefix, decided on first write */

static const char *const level_names[] = {
  [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
  [LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
  [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_set_level(int level)
{
  if (level >= LOG_ERR && level <= LOG_DEBUG)
    current_level = level;
}

int log_get_level(void)
{
  return current_level;
}

int log_level_from_string(const char *name)
{
  if (!name)
    return -EINVAL;
  for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
    if (strcmp(name, level_names[i]) == 0)
      return i;
  return -EINVAL;
}

const char *log_level_to_string(int level)
{
  if (level < 0 || level > LOG_DEBUG)
    return "?";
  return level_names[level];
}

void log_write(int level, const char *id, const char *fmt, ...)
{
  char text[2048];
  va_list ap;

  if (use_prefix < 0)
    use_prefix = getenv("JOURNAL_STREAM") != NULL;

  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);

  /* one fprintf per line, so that lines from one process never interleave */
  if (use_prefix)
    fprintf(stderr, "<%d>%s%s%s%s\n", level, id ? "[" : "", id ? id : "", id ? "] " : "", text);
  else
    fprintf(stderr, "%s: %s%s%s%s\n", level_names[level], id ? "[" : "", id ? id : "",
            id ? "] " : "", text);
}
