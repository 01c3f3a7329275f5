/* difflog.h: the diff log, one JSON object per compared request.
 *
 * Shared by every worker and written only from the thread pool. Each result
 * is formatted completely first and then appended with one write(2) on an
 * O_APPEND descriptor under a lock, so a reader (or a kill -9) never sees
 * half a line from us, and lines from different threads never interleave. */
#ifndef KG_DIFFLOG_H
#define KG_DIFFLOG_H

#include <stddef.h>
#include <time.h>

#include "common/buf.h"
#include "compare/result.h"

typedef struct kg_difflog kg_difflog;

/* Opens (creating, appending) `path`. Returns 0 or a negative errno. */
int kg_difflog_open(const char *path, kg_difflog **out);
/* Opens `path` again and writes there from now on (after logrotate has
 * renamed the file). Returns 0, or a negative errno with the old file
 * still in use. Safe while other threads write. */
int kg_difflog_reopen(kg_difflog *d, const char *path);
/* Appends one line. Returns 0 or a negative errno (the line is lost). */
int kg_difflog_append(kg_difflog *d, const char *line, size_t len);
/* Formats the n results and appends them with one write (a batch of
 * results, from the thread pool). Returns 0 or a negative errno, after
 * logging it. */
int kg_difflog_write(kg_difflog *d, const kg_result *const *results, size_t n);
/* fsyncs and closes. */
void kg_difflog_close(kg_difflog *d);

/* Formats r as one JSON line (with the trailing newline) into out. */
void kg_result_format(const kg_result *r, kg_buf *out);

#endif
