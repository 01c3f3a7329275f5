/* differ.h: the seam for comparing bodies of one media type.
 *
 * A differ says which media types it takes and compares two decoded
 * bodies, appending differences (kg_diffs) and a readable diff to a
 * kg_pair_result. compare.c asks the differs in its table in order and
 * gives the bodies to the first that takes the master's media type; a body
 * with no Content-Type is text unless it holds control bytes. The result's
 * `kind` is the differ that compared it (its name goes to the diff log, the
 * store and the hooks). A differ whose parser fails on either body hands
 * them to the text differ (kg_differ_text.compare) and sets out->kind to
 * it, so a malformed JSON body is still compared line by line.
 *
 * A new differ is one file defining a `const kg_differ`, its extern
 * declaration below and one line in compare.c's table. */
#ifndef KG_DIFFER_H
#define KG_DIFFER_H

#include <stdbool.h>
#include <stddef.h>

#include "compare/compare.h"

/* What a differ gets: both bodies decoded (Content-Encoding undone), not
 * byte-equal, and the comparison's rules. Everything is borrowed. */
typedef struct kg_differ_input {
  const char *a;              /* the master's body */
  size_t alen;
  const char *b;              /* the shadow's body */
  size_t blen;
  const char *ctype;          /* the master's Content-Type, or NULL */
  const char *a_label;        /* backend names, for the readable diff */
  const char *b_label;
  const kg_compare_opts *o;   /* rules, noise, settings */
} kg_differ_input;

struct kg_differ {
  const char *name;           /* the result's kind: "json", "html", ... */
  /* True when the differ takes bodies of this media type: lower case,
   * parameters cut ("application/json", "text/html"). */
  bool (*handles)(const char *media_type);
  /* Appends differences to out->body (and suppressions), and the readable
   * diff to out->diff. Must not touch out->headers. */
  void (*compare)(const kg_differ_input *in, kg_pair_result *out);
  /* Optional, after learned noise was taken out of out->body: output that
   * must agree with the differences that are left (JSON's listing). NULL
   * means: no differences left, no readable diff. */
  void (*finish)(const kg_differ_input *in, kg_pair_result *out);
};

extern const kg_differ kg_differ_json;   /* structural, by JSON path */
extern const kg_differ kg_differ_html;   /* by DOM, located by XPath */
extern const kg_differ kg_differ_text;   /* line by line */
extern const kg_differ kg_differ_binary; /* size and CRC-32; takes the rest */

/* The differ for a Content-Type value (NULL: text, to be sniffed). */
const kg_differ *kg_differ_for(const char *ctype);

#endif
