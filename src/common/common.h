/* common.h: conventions every kagami module follows.
 *
 * Errors: functions return 0 on success and a negative code on failure,
 * libuv's codes (UV_ENOMEM, UV_EINVAL, ...) where one fits. A function that
 * takes a callback and fails never calls that callback.
 *
 * Memory: allocation failure is not recoverable in a proxy that must stay
 * consistent, so every allocation goes through kg_malloc/kg_calloc/
 * kg_realloc/kg_strdup, which abort with a message instead of returning NULL.
 * Whoever allocates a thing says in the header who frees it.
 *
 * Names: every function, exported or static, starts with kg_ and its
 * module's name, the file's stem (kg_noise_observe in compare/noise.c,
 * kg_htmldiff_walk in compare/htmldiff.c): a backtrace, a perf report or a
 * grep names the module without a lookup. A file may use a shorter module
 * name when its stem is long (kg_hist_* in histogram.c). Types are
 * kg_<thing> when a header exports them; file-local types and variables
 * may be bare. Macros are KG_UPPER_CASE. Static is the default: a name
 * goes into a header only when another module calls it.
 */
#ifndef KG_COMMON_H
#define KG_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KG_VERSION "0.1.0"

#define KG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KG_MAX(a, b) ((a) > (b) ? (a) : (b))
/* Recover the struct that embeds a member (libuv handles embedded in ours). */
#define KG_CONTAINER_OF(ptr, type, field) \
  ((type *)((char *)(ptr) - offsetof(type, field)))

void *kg_malloc(size_t n);
void *kg_calloc(size_t count, size_t size);
void *kg_realloc(void *p, size_t n);
char *kg_strdup(const char *s);
char *kg_strndup(const char *s, size_t n);

/* Case-insensitive ASCII comparison of a (ptr,len) with a C string. */
bool kg_str_ieq(const char *a, size_t alen, const char *b);
/* Writes the low `digits` hex digits of v (lower case) to out, no NUL. */
void kg_put_hex(char *out, uint64_t v, int digits);
/* Writes the low three decimal digits of v, zero-padded, to out, no NUL
 * (status codes, milliseconds). */
void kg_put_dec3(char *out, uint64_t v);
/* Reads exactly n decimal digits at *p into *out and advances *p past
 * them; false (and *p unchanged) when any of the n is not a digit. For
 * fixed-width date fields. */
bool kg_read_digits(const char **p, int n, int *out);

/* Monotonic clock in nanoseconds (for elapsed times). */
uint64_t kg_now_ns(void);

/* Names the calling thread (at most 15 bytes are kept), so that `top -H`,
 * perf and /proc/PID/task/TID/comm tell the threads apart: kg-worker-N
 * (event loops), kg-pool (the thread pool: comparisons, store batches,
 * API queries), kg-store, kg-pgstore, kg-record. A new thread starts with
 * its maker's name. */
void kg_thread_name(const char *name);

#endif
