/* sink.c: the table of sink kinds and the list of open sinks (see sink.h). */
#include "results/sink.h"

#include "common/common.h"

/* Every kind of sink, in the order results reach them. */
static const kg_sink_ops *const kg_sink_kinds[] = {
    &kg_difflog_sink,
    &kg_store_sink,
    &kg_pgstore_sink,
};

_Static_assert(KG_ARRAY_SIZE(kg_sink_kinds) <= KG_SINKS_MAX, "raise KG_SINKS_MAX");

int kg_sinks_open(const kg_config *cfg, kg_sinks *out, char *err, size_t errlen) {
  *out = (kg_sinks){0};
  for (size_t i = 0; i < KG_ARRAY_SIZE(kg_sink_kinds); i++) {
    void *state = NULL;
    if (kg_sink_kinds[i]->open(cfg, &state, err, errlen) < 0) {
      kg_sinks_close(out); /* all or nothing */
      return -1;
    }
    if (state == NULL) continue; /* not configured */
    out->ops[out->n] = kg_sink_kinds[i];
    out->state[out->n++] = state;
  }
  return 0;
}

void kg_sinks_write(const kg_sinks *s, const kg_result *const *results, size_t n) {
  for (size_t i = 0; i < s->n; i++) s->ops[i]->write(s->state[i], results, n);
}

void kg_sinks_metrics(const kg_sinks *s, kg_buf *out) {
  for (size_t i = 0; i < s->n; i++)
    if (s->ops[i]->metrics) s->ops[i]->metrics(s->state[i], out);
}

void kg_sinks_share_noise(const kg_sinks *s, kg_noise *noise) {
  for (size_t i = 0; noise && i < s->n; i++)
    if (s->ops[i]->share_noise) s->ops[i]->share_noise(s->state[i], noise);
}

void kg_sinks_reopen(const kg_sinks *s) {
  for (size_t i = 0; i < s->n; i++)
    if (s->ops[i]->reopen) s->ops[i]->reopen(s->state[i]);
}

void kg_sinks_close(kg_sinks *s) {
  for (size_t i = s->n; i-- > 0;) s->ops[i]->close(s->state[i]); /* last opened first */
  *s = (kg_sinks){0};
}
