/* rules.h: what a comparison takes from the configuration.
 *
 * The comparison declares the settings it reads; the config module fills
 * them (config_compare.c) and owns what they point to. Declared here, not
 * in config.h, so that compare/ never depends on the config loader: the
 * loader calls down into compare/ to check patterns, never the reverse. */
#ifndef KG_COMPARE_RULES_H
#define KG_COMPARE_RULES_H

#include <stdbool.h>
#include <stddef.h>

struct kg_textnorm;

/* Noise rules for the endpoints matching `endpoint` (all when NULL). */
typedef struct kg_rule {
  char *endpoint;            /* owned glob on the endpoint name, such as
                                "GET /api/" followed by '*'; NULL matches
                                every endpoint */
  char **ignore;             /* owned JSON path patterns */
  size_t nignore;
  char **unordered;          /* owned JSON path patterns of multiset arrays */
  size_t nunordered;
  char **ignore_xpath;       /* owned XPath expressions */
  size_t nignore_xpath;
  char **ignore_headers;     /* owned header names */
  size_t nignore_headers;
  struct kg_textnorm *replace; /* owned compiled regex replacements, or NULL */
  char **replace_patterns;   /* owned: their regexes, for naming the rule */
  size_t nreplace_patterns;
} kg_rule;

/* How response headers are compared, for every endpoint. */
typedef struct kg_compare_settings {
  bool compare_headers;      /* compare response headers; default true */
  char **ignore_headers;     /* owned: header names never compared
                                (defaults, extended or replaced) */
  size_t nignore_headers;
} kg_compare_settings;

/* True if the rule applies to `endpoint` ("GET /users/:id"): its glob
 * ('*' matches any run of characters) is matched against the whole name,
 * or against the path alone when the glob names no method. */
bool kg_rule_matches(const kg_rule *r, const char *endpoint);

/* Frees what r owns (not r itself) and zeroes it. */
void kg_rule_clear(kg_rule *r);

#endif
