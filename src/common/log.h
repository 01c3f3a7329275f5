/* log.h: one line per event on stderr, prefixed with a UTC timestamp and a
 * level. Safe from any thread: each line is formatted first and written
 * with a single write(2). */
#ifndef KG_LOG_H
#define KG_LOG_H

void kg_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kg_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kg_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
