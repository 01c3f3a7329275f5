/* differences.h: the common output of every differ (JSON, HTML, text).
 *
 * A difference names where (a JSON path, an XPath, or a line range), what
 * the master had and what the shadow had. Differences a noise rule
 * matched are not reported but their locations are listed as suppressed,
 * so that a person can see what was ignored and why. Owned strings; free
 * the whole list with kg_diffs_free. */
#ifndef KG_DIFFERENCES_H
#define KG_DIFFERENCES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kg_difference {
  char *where;    /* "$.items[3].price", "/html/body/div[2]/p[3]/text()",
                     "lines 12-14" (owned) */
  char *pattern;  /* the noise key: the location as learned noise counts
                     and hides it, stable across requests. The concrete
                     location (never generalised: noise in one array
                     element or sibling must not hide a change in
                     another), for text the line number and the shapes of
                     its two sides; owned, often equal to `where` */
  char *master;   /* master's value as JSON text or plain text; NULL when
                     absent on the master side (added) */
  char *shadow;   /* shadow's value; NULL when absent (removed) */
} kg_difference;

typedef struct kg_diffs {
  kg_difference *v;  /* owned array */
  size_t n, cap;
  size_t total;      /* differences found, including any not stored because
                        of max (n <= total) */
  size_t max;        /* store at most this many (0 = 100) */
  char **suppressed; /* owned list of distinct `pattern`s a noise rule hid */
  size_t nsuppressed, capsuppressed;
  const struct kg_noise_view *noisy; /* borrowed for one comparison, or NULL:
                        a difference at a location learned as noise is
                        suppressed when added, before it counts against
                        max, so noise can never crowd out a real change */
} kg_diffs;

/* Appends a difference (copies every string; NULL allowed for master or
 * shadow). Counts it in total even when over max. A difference at a
 * location d->noisy names is suppressed instead (kg_diffs_suppress). */
void kg_diffs_add(kg_diffs *d, const char *where, const char *pattern,
                  const char *master, const char *shadow);
/* True when d stores no more differences (it still counts them): a differ
 * need not render the values of the rest. */
bool kg_diffs_full(const kg_diffs *d);
/* Records that a noise rule hid a difference at `pattern` (deduplicated). */
void kg_diffs_suppress(kg_diffs *d, const char *pattern);
void kg_diffs_free(kg_diffs *d);

#endif
