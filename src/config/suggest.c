/* suggest.c: "did you mean" for a misspelt key. */
#include <stdint.h>
#include <string.h>

#include "common/common.h"
#include "config/config_int.h"

/* Levenshtein distance, for "did you mean" on misspelt keys. Keys are
 * short; longer strings are simply not compared. */
static size_t kg_cfg_edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return SIZE_MAX;
  size_t row[64];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t best = KG_MIN(row[j] + 1, row[j - 1] + 1);
      row[j] = KG_MIN(best, diag + cost);
      diag = up;
    }
  }
  return row[lb];
}

/* The allowed name closest to `key`, if close enough to be a likely typo
 * (a third of the key's length, at least 1 and at most 3 edits). */
const char *kg_cfg_suggest(const char *key, const char *const *names,
                           size_t n) {
  size_t limit = KG_MAX((size_t)1, KG_MIN((size_t)3, strlen(key) / 3));
  const char *best = NULL;
  size_t bestd = SIZE_MAX;
  for (size_t i = 0; i < n; i++) {
    size_t d = kg_cfg_edit_distance(key, names[i]);
    if (d < bestd) bestd = d, best = names[i];
  }
  return bestd <= limit ? best : NULL;
}
