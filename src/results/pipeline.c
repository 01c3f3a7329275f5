/* pipeline.c: batches of finished requests through the thread pool to the
 * sinks (see pipeline.h). */
#include "results/pipeline.h"

#include <stdlib.h>

#include "common/common.h"

/* One batch: the items taken from the queue, owned by the batch until
 * their done callbacks. */
typedef struct kg_pipeline_batch {
  uv_work_t work;
  kg_pipeline *p;
  kg_pipeline_item *head;
  size_t n;
} kg_pipeline_batch;

void kg_pipeline_init(kg_pipeline *p, uv_loop_t *loop, const kg_pipeline_ops *ops,
                      const kg_pipeline_limits *lim, const kg_sinks *sinks, void *data) {
  *p = (kg_pipeline){.ops = ops, .lim = *lim, .sinks = sinks, .data = data, .loop = loop};
  if (p->lim.gather == 0) p->lim.gather = 1;
  if (p->lim.max_running == 0) p->lim.max_running = 1;
  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
}

/* Thread pool: compares every item, then gives the whole batch to the
 * sinks at once (one diff log write, one store transaction). */
static void kg_pipeline_work(uv_work_t *req) {
  kg_pipeline_batch *b = KG_CONTAINER_OF(req, kg_pipeline_batch, work);
  const kg_pipeline *p = b->p;
  kg_result *results = kg_calloc(b->n, sizeof(kg_result));
  const kg_result **ptrs = kg_calloc(b->n, sizeof(kg_result *));
  size_t i = 0;
  for (kg_pipeline_item *it = b->head; it; it = it->next, i++) {
    p->ops->compare(it, &results[i]);
    ptrs[i] = &results[i];
  }
  kg_sinks_write(p->sinks, ptrs, b->n);
  free(ptrs);
  free(results);
}

static void kg_pipeline_start(kg_pipeline *p);

static void kg_pipeline_after(uv_work_t *req, int status) {
  kg_pipeline_batch *b = KG_CONTAINER_OF(req, kg_pipeline_batch, work);
  kg_pipeline *p = b->p;
  kg_pipeline_item *next;
  for (kg_pipeline_item *it = b->head; it; it = next) {
    next = it->next;
    p->ops->done(it, status == 0);
  }
  free(b);
  p->running--;
  if (p->head) kg_pipeline_start(p);
  /* still a backlog: run beside it as submit would */
  if (p->lim.max_batch && p->n >= p->lim.max_batch && p->running < p->lim.max_running)
    kg_pipeline_start(p);
  if (p->ops->drained) p->ops->drained(p);
}

/* Takes the head of the queue (max_batch items at most) to the thread
 * pool as one batch. */
static void kg_pipeline_start(kg_pipeline *p) {
  kg_pipeline_batch *b = kg_calloc(1, sizeof(*b));
  b->p = p;
  b->head = p->head;
  size_t take = p->lim.max_batch ? KG_MIN(p->n, p->lim.max_batch) : p->n;
  kg_pipeline_item *last = p->head;
  p->bytes -= last->bytes;
  for (size_t i = 1; i < take; i++) {
    last = last->next;
    p->bytes -= last->bytes;
  }
  p->head = last->next;
  if (p->head == NULL) p->tail = NULL;
  last->next = NULL;
  b->n = take;
  p->n -= take;
  p->running++;
  if (p->head == NULL) uv_timer_stop(&p->timer);
  uv_queue_work(p->loop, &b->work, kg_pipeline_work, kg_pipeline_after);
}

static void kg_pipeline_on_timer(uv_timer_t *t) { kg_pipeline_flush(t->data); }

int kg_pipeline_submit(kg_pipeline *p, kg_pipeline_item *it) {
  if ((p->lim.max_items && p->n >= p->lim.max_items) ||
      (p->lim.max_bytes && p->bytes + it->bytes > p->lim.max_bytes))
    return UV_ENOBUFS;
  it->next = NULL;
  if (p->tail) p->tail->next = it;
  else p->head = it;
  p->tail = it;
  p->n++;
  p->bytes += it->bytes;
  /* A batch's end starts the next. Another batch runs beside one only for
   * a backlog (a full batch waiting): under ordinary load results gather
   * while one batch runs, and fewer, bigger batches cost the sinks less. */
  if (p->running >= p->lim.max_running) return 0;
  if (p->running > 0 && (p->lim.max_batch == 0 || p->n < p->lim.max_batch)) return 0;
  /* Waking a pool thread costs about as much as comparing two small equal
   * responses: under load, gather results for a moment first. */
  if (p->n >= p->lim.gather) kg_pipeline_start(p);
  else if (!uv_is_active((uv_handle_t *)&p->timer))
    uv_timer_start(&p->timer, kg_pipeline_on_timer, p->lim.wait_ms, 0);
  return 0;
}

void kg_pipeline_flush(kg_pipeline *p) {
  while (p->running < p->lim.max_running && p->head) kg_pipeline_start(p);
}

size_t kg_pipeline_pending(const kg_pipeline *p, size_t *bytes) {
  if (bytes) *bytes = p->bytes;
  return p->n;
}

bool kg_pipeline_busy(const kg_pipeline *p) { return p->running > 0 || p->head != NULL; }

void kg_pipeline_close(kg_pipeline *p) { uv_close((uv_handle_t *)&p->timer, NULL); }
