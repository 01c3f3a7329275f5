/* compare.c: status and body comparison, shadow by shadow (see compare.h). */
#include "compare.h"

#include <string.h>

#include "linediff.h"

static bool kg_bodies_equal(const kg_resp_view *a, const kg_resp_view *b) {
  return a->bytes == b->bytes && a->body_len == b->body_len &&
         (a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0);
}

void kg_compare(const kg_resp_view *resps, size_t n, kg_result *out) {
  memset(out, 0, sizeof(*out));
  out->equal = true;
  out->nlegs = n;
  const kg_resp_view *m = &resps[0];
  out->legs[0].equal = m->error == NULL;
  if (m->truncated) out->truncated = true;
  for (size_t i = 1; i < n; i++) {
    const kg_resp_view *s = &resps[i];
    kg_result_leg *r = &out->legs[i];
    if (s->truncated) out->truncated = true;
    if (m->error || s->error) {
      r->equal = false;
      out->equal = false;
      continue;
    }
    r->status_differs = m->status != s->status;
    bool same_body = kg_bodies_equal(m, s);
    r->equal = !r->status_differs && same_body;
    if (!r->equal) out->equal = false;
    if (same_body) continue;
    kg_linediff_opts o = {.a_label = m->backend,
                          .b_label = s->backend,
                          .context = 3,
                          .max_output = KG_MAX_DIFF_BYTES};
    r->changed_lines =
        kg_linediff(m->body, m->body_len, s->body, s->body_len, &o, &out->diff);
  }
}

void kg_result_free(kg_result *r) { kg_buf_free(&r->diff); }
