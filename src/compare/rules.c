/* rules.c: matching a noise rule to an endpoint, and freeing a rule (see
 * rules.h). */
#include "compare/rules.h"

#include <stdlib.h>
#include <string.h>

#include "compare/textnorm.h"

/* '*' matches any run of characters (including none). Iterative, with
 * one saved backtracking point, so the worst case is O(len(pat) * len(s))
 * rather than exponential. */
static bool kg_rule_glob(const char *pat, const char *s) {
  const char *star = NULL, *resume = NULL;
  while (*s) {
    if (*pat == '*') {
      star = pat++;
      resume = s;
    } else if (*pat == *s) {
      pat++;
      s++;
    } else if (star) {
      pat = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (*pat == '*') pat++;
  return *pat == '\0';
}

bool kg_rule_matches(const kg_rule *r, const char *endpoint) {
  if (r->endpoint == NULL) return true;
  if (strchr(r->endpoint, ' ') == NULL) {
    const char *sp = strchr(endpoint, ' ');
    return kg_rule_glob(r->endpoint, sp ? sp + 1 : endpoint);
  }
  return kg_rule_glob(r->endpoint, endpoint);
}

static void kg_rule_free_strs(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

void kg_rule_clear(kg_rule *r) {
  free(r->endpoint);
  kg_rule_free_strs(r->ignore, r->nignore);
  kg_rule_free_strs(r->unordered, r->nunordered);
  kg_rule_free_strs(r->ignore_xpath, r->nignore_xpath);
  kg_rule_free_strs(r->ignore_headers, r->nignore_headers);
  kg_textnorm_free(r->replace);
  kg_rule_free_strs(r->replace_patterns, r->nreplace_patterns);
  memset(r, 0, sizeof(*r));
}
