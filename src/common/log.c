/* log.c: timestamped stderr lines (see log.h). */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static void kg_log_v(const char *level, const char *fmt, va_list ap) {
  char line[4096];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof(line),
                   "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ kagami %s: ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level);
  if (n < 0) return;
  int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  if (m < 0) return;
  size_t len = (size_t)n + (size_t)m;
  if (len > sizeof(line) - 2) len = sizeof(line) - 2;
  line[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w; /* nowhere to report a failing stderr */
}

#define KG_LOG_FN(name, level)        \
  void name(const char *fmt, ...) {   \
    va_list ap;                       \
    va_start(ap, fmt);                \
    kg_log_v(level, fmt, ap);         \
    va_end(ap);                       \
  }

KG_LOG_FN(kg_log_info, "info")
KG_LOG_FN(kg_log_warn, "warn")
KG_LOG_FN(kg_log_error, "error")
