/* differences.c: the differences list shared by the differs. */
#include "compare/differences.h"

#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "compare/noise.h"

void kg_diffs_add(kg_diffs *d, const char *where, const char *pattern,
                  const char *master, const char *shadow) {
  if (pattern == NULL) pattern = where;
  if (d->noisy && kg_noise_view_has(d->noisy, pattern)) {
    kg_diffs_suppress(d, pattern);
    return;
  }
  d->total++;
  if (kg_diffs_full(d)) return;
  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 8;
    d->v = kg_realloc(d->v, d->cap * sizeof(*d->v));
  }
  kg_difference *x = &d->v[d->n++];
  x->where = kg_strdup(where);
  x->pattern = kg_strdup(pattern);
  x->master = master ? kg_strdup(master) : NULL;
  x->shadow = shadow ? kg_strdup(shadow) : NULL;
}

bool kg_diffs_full(const kg_diffs *d) { return d->n >= (d->max ? d->max : 100); }

void kg_diffs_suppress(kg_diffs *d, const char *pattern) {
  for (size_t i = 0; i < d->nsuppressed; i++)
    if (strcmp(d->suppressed[i], pattern) == 0) return;
  if (d->nsuppressed == d->capsuppressed) {
    d->capsuppressed = d->capsuppressed ? d->capsuppressed * 2 : 4;
    d->suppressed =
        kg_realloc(d->suppressed, d->capsuppressed * sizeof(*d->suppressed));
  }
  d->suppressed[d->nsuppressed++] = kg_strdup(pattern);
}

void kg_diffs_free(kg_diffs *d) {
  for (size_t i = 0; i < d->n; i++) {
    free(d->v[i].where);
    free(d->v[i].pattern);
    free(d->v[i].master);
    free(d->v[i].shadow);
  }
  free(d->v);
  for (size_t i = 0; i < d->nsuppressed; i++) free(d->suppressed[i]);
  free(d->suppressed);
  memset(d, 0, sizeof(*d));
}
