/* noise.h: learned noise, per endpoint.
 *
 * A "noise pair" is two answers to the same request that should be equal
 * because they come from the same code: the master and a secondary
 * instance of it (Twitter Diffy's way), or the same shadow asked twice.
 * Whatever differs within such a pair is noise: timestamps, random ids,
 * tokens. For each endpoint kagami counts the pairs seen and, per
 * location (a difference's `pattern`: a concrete JSON path, an XPath with
 * positions, a header field and its position, a line number with the
 * line's shapes), how many pairs differed there. A location that differed
 * in at least `threshold` of at least `min_pairs` pairs is noisy:
 * master-vs-shadow differences there are suppressed and listed as such,
 * while differences elsewhere in the same response are still reported.
 *
 * Locations are never generalised: noise at $.rows[0].n says nothing
 * about $.rows[1].n, whose master-vs-shadow difference may be the very
 * regression kagami is there to find. A location noise pairs never showed
 * differing is never hidden, at the price of reporting noise at positions
 * the pairs have not covered yet (a false alarm is the lesser failure).
 * The first time a location becomes noisy it is logged.
 *
 * Shared by every worker and used from the thread pool: one lock inside.
 * Bounded: at most KG_NOISE_MAX_ENDPOINTS endpoints,
 * KG_NOISE_MAX_PATTERNS locations per endpoint and
 * KG_NOISE_MAX_TOTAL_PATTERNS in all (about 150 bytes each) are tracked;
 * the rest are not learned (and so never suppressed). */
#ifndef KG_NOISE_H
#define KG_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KG_NOISE_MAX_ENDPOINTS 4096
#define KG_NOISE_MAX_PATTERNS 4096
#define KG_NOISE_MAX_TOTAL_PATTERNS 262144

typedef struct kg_noise kg_noise;

/* A list of noisy patterns for one endpoint, copied out under the lock so
 * a comparison can consult it without holding it. Sorted (strcmp order),
 * so that a lookup costs log n: every difference of a response is looked
 * up, against up to KG_NOISE_MAX_PATTERNS locations. A view made by hand
 * (tests) must be sorted too. */
typedef struct kg_noise_view {
  char **patterns;  /* owned, sorted */
  size_t n;
} kg_noise_view;

kg_noise *kg_noise_new(double threshold, uint64_t min_pairs);
void kg_noise_free(kg_noise *n);

/* Records one noise pair of `endpoint` whose differences had these
 * patterns (n may be 0: a pair that agreed). Duplicates in the list count
 * once. */
void kg_noise_observe(kg_noise *n, const char *endpoint,
                      const char *const *patterns, size_t count);
/* The patterns noisy for `endpoint` now. Free with kg_noise_view_free. */
void kg_noise_view_get(kg_noise *n, const char *endpoint, kg_noise_view *out);
/* Whether pattern is in v (by bisection: v must be sorted). */
bool kg_noise_view_has(const kg_noise_view *v, const char *pattern);
void kg_noise_view_free(kg_noise_view *v);

/* Statistics of one pattern, for reports and tests: pairs seen for the
 * endpoint and pairs in which the pattern differed. */
void kg_noise_stats(kg_noise *n, const char *endpoint, const char *pattern,
                    uint64_t *pairs, uint64_t *differed);

/* The evidence behind learned noise, for people (the admin API, `kagami
 * noise`): what was learned, from how many pairs, since when, and whether
 * it is hidden now. Times are wall-clock Unix seconds. */
typedef struct kg_noise_loc_info {
  char *location;      /* owned: a difference's pattern, as counted */
  uint64_t differed;   /* pairs that differed here (in a fleet: every
                          instance's) */
  uint64_t fleet_differed; /* of which the other instances' */
  double first_seen;   /* when it first differed in a pair */
  double last_seen;    /* when it last did */
  bool noisy;          /* hidden in master-vs-shadow comparisons now */
} kg_noise_loc_info;

typedef struct kg_noise_ep_info {
  char *endpoint;           /* owned */
  uint64_t pairs;           /* noise pairs seen: every location's
                               denominator (in a fleet: every
                               instance's) */
  uint64_t fleet_pairs;     /* of which the other instances' */
  double first_seen;        /* first pair */
  double last_seen;         /* latest pair */
  kg_noise_loc_info *locs;  /* owned, sorted by location (strcmp) */
  size_t nlocs;
  size_t nnoisy;            /* of locs, those noisy now */
} kg_noise_ep_info;

typedef struct kg_noise_snapshot {
  double threshold;         /* the model's settings, for the reader */
  uint64_t min_pairs;
  kg_noise_ep_info *eps;    /* owned, sorted by endpoint (strcmp) */
  size_t neps;
  bool full;                /* a cap was reached: some locations or
                               endpoints were not learned (so not hidden) */
} kg_noise_snapshot;

/* Copies out the model under its lock: every endpoint, or those whose
 * name matches `glob` as a rule's endpoint glob does ('*' any run; a glob
 * without a space matches the path alone). Bounded by the model's caps;
 * the lock is held only for the copy, sorting happens after. Free with
 * kg_noise_snapshot_free. */
void kg_noise_snapshot_get(kg_noise *n, const char *glob, kg_noise_snapshot *out);
void kg_noise_snapshot_free(kg_noise_snapshot *s);

/* A fleet's one noise model (issue 15): each instance publishes its own
 * evidence (pgstore.c) and reads back the others', summed. Counts are
 * then this instance's plus the others' everywhere above: the same
 * threshold and min_pairs decide on the sums, locations are as concrete
 * as ever, and a location only other instances saw differ is hidden here
 * too once their pairs say so. Only local evidence is ever published, so
 * nothing is counted twice. */
typedef struct kg_noise_row {
  char *endpoint;      /* owned */
  char *location;      /* owned; NULL: the row counts the endpoint's pairs */
  uint64_t count;      /* pairs, or pairs that differed at location */
  double first_seen, last_seen;
} kg_noise_row;

/* This instance's own evidence, as rows (allocated; free with
 * kg_noise_rows_free); returns the change counter it was taken at. */
uint64_t kg_noise_local_rows(kg_noise *n, kg_noise_row **rows, size_t *nrows);
/* The change counter: it moves with every local pair. */
uint64_t kg_noise_seq(kg_noise *n);
void kg_noise_rows_free(kg_noise_row *rows, size_t nrows);
/* Replaces the other instances' evidence with rows (within the caps) and
 * logs what becomes noisy through it. */
void kg_noise_set_fleet(kg_noise *n, const kg_noise_row *rows, size_t nrows);

#endif
