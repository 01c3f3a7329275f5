/* Unit tests: the results pipeline (batching, bounds, flush, a clean loop
 * at the end) and the sink list (every sink gets every batch; the diff log
 * opens, writes, reopens and closes as a sink). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/common.h"
#include "config/config.h"
#include "results/pipeline.h"
#include "results/sink.h"

/* --- a fake owner and fake sinks ----------------------------------------------- */

typedef struct test_item {
  kg_pipeline_item link;
  char id[16];
  int *done;                 /* the owner's count of done calls */
} test_item;

/* What a fake sink saw: each batch's size and the ids in order. */
typedef struct test_sink {
  pthread_mutex_t lock;      /* write runs in the thread pool */
  size_t batches;
  size_t sizes[16];
  char ids[64][16];
  size_t nids;
  int rc;                    /* what write returns */
  bool closed;
} test_sink;

static int test_sink_write(void *state, const kg_result *const *results, size_t n) {
  test_sink *s = state;
  pthread_mutex_lock(&s->lock);
  if (s->batches < KG_ARRAY_SIZE(s->sizes)) s->sizes[s->batches] = n;
  s->batches++;
  for (size_t i = 0; i < n && s->nids < KG_ARRAY_SIZE(s->ids); i++)
    snprintf(s->ids[s->nids++], sizeof(s->ids[0]), "%s", results[i]->id);
  pthread_mutex_unlock(&s->lock);
  return s->rc;
}

static void test_sink_close(void *state) { ((test_sink *)state)->closed = true; }

static const kg_sink_ops test_sink_ops = {.write = test_sink_write, .close = test_sink_close};

static void test_compare(kg_pipeline_item *it, kg_result *out) {
  test_item *t = KG_CONTAINER_OF(it, test_item, link);
  *out = (kg_result){.id = t->id, .equal = true};
}

static void test_done(kg_pipeline_item *it, bool compared) {
  test_item *t = KG_CONTAINER_OF(it, test_item, link);
  assert_true(compared);
  (*t->done)++;
  free(t);
}

static int drained_calls;
static void test_drained(kg_pipeline *p) { drained_calls++; }

static const kg_pipeline_ops test_ops = {
    .compare = test_compare, .done = test_done, .drained = test_drained};

static test_item *item(int i, size_t bytes, int *done) {
  test_item *t = kg_calloc(1, sizeof(*t));
  snprintf(t->id, sizeof(t->id), "r%d", i);
  t->link.bytes = bytes;
  t->done = done;
  return t;
}

/* One loop, one pipeline over one fake sink. */
typedef struct fixture {
  uv_loop_t loop;
  kg_pipeline p;
  test_sink sink;
  kg_sinks sinks;
  int done;
} fixture;

static void setup(fixture *f, const kg_pipeline_limits *lim) {
  memset(f, 0, sizeof(*f));
  uv_loop_init(&f->loop);
  pthread_mutex_init(&f->sink.lock, NULL);
  f->sinks.ops[0] = &test_sink_ops;
  f->sinks.state[0] = &f->sink;
  f->sinks.n = 1;
  kg_pipeline_init(&f->p, &f->loop, &test_ops, lim, &f->sinks, f);
  drained_calls = 0;
}

/* Runs the loop dry, closes the pipeline and checks the loop closes
 * cleanly (no handle or request left behind). */
static void teardown(fixture *f) {
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_false(kg_pipeline_busy(&f->p));
  kg_pipeline_close(&f->p);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  pthread_mutex_destroy(&f->sink.lock);
}

/* --- the pipeline ------------------------------------------------------------------ */

static void test_gathers_until_the_timer(void **state) {
  (void)state;
  fixture f;
  const kg_pipeline_limits lim = {.gather = 32, .wait_ms = 2};
  setup(&f, &lim);
  for (int i = 0; i < 5; i++) assert_int_equal(kg_pipeline_submit(&f.p, &item(i, 1, &f.done)->link), 0);
  size_t bytes = 0;
  assert_int_equal(kg_pipeline_pending(&f.p, &bytes), 5);
  assert_int_equal(bytes, 5);
  uv_run(&f.loop, UV_RUN_DEFAULT); /* the timer starts one batch of all five */
  assert_int_equal(f.sink.batches, 1);
  assert_int_equal(f.sink.sizes[0], 5);
  for (int i = 0; i < 5; i++) {
    char want[16];
    snprintf(want, sizeof(want), "r%d", i);
    assert_string_equal(f.sink.ids[i], want); /* in submission order */
  }
  assert_int_equal(f.done, 5);
  assert_int_equal(drained_calls, 1);
  teardown(&f);
}

static void test_gather_starts_a_batch_and_the_rest_follows(void **state) {
  (void)state;
  fixture f;
  const kg_pipeline_limits lim = {.gather = 3, .wait_ms = 60000};
  setup(&f, &lim);
  for (int i = 0; i < 3; i++) kg_pipeline_submit(&f.p, &item(i, 1, &f.done)->link);
  assert_true(kg_pipeline_busy(&f.p));
  assert_int_equal(kg_pipeline_pending(&f.p, NULL), 0); /* all in the batch */
  /* While it runs, two more wait; its end starts them without the timer
   * (a 60 s wait would hang the test). */
  for (int i = 3; i < 5; i++) kg_pipeline_submit(&f.p, &item(i, 1, &f.done)->link);
  assert_int_equal(kg_pipeline_pending(&f.p, NULL), 2);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_int_equal(f.sink.batches, 2);
  assert_int_equal(f.sink.sizes[0], 3);
  assert_int_equal(f.sink.sizes[1], 2);
  assert_int_equal(f.done, 5);
  teardown(&f);
}

static void test_bounds_refuse(void **state) {
  (void)state;
  fixture f;
  const kg_pipeline_limits lim = {.max_items = 2, .max_bytes = 25, .gather = 100,
                                  .wait_ms = 60000};
  setup(&f, &lim);
  test_item *a = item(0, 10, &f.done), *b = item(1, 20, &f.done), *c = item(2, 10, &f.done),
            *d = item(3, 1, &f.done);
  assert_int_equal(kg_pipeline_submit(&f.p, &a->link), 0);
  /* 10 + 20 would pass 25 bytes: refused, left to the caller. */
  assert_int_equal(kg_pipeline_submit(&f.p, &b->link), UV_ENOBUFS);
  assert_int_equal(kg_pipeline_submit(&f.p, &c->link), 0);
  /* Two items wait: the count bound refuses the third. */
  assert_int_equal(kg_pipeline_submit(&f.p, &d->link), UV_ENOBUFS);
  free(b);
  free(d);
  size_t bytes = 0;
  assert_int_equal(kg_pipeline_pending(&f.p, &bytes), 2);
  assert_int_equal(bytes, 20);
  kg_pipeline_flush(&f.p); /* no 60 s wait */
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_int_equal(f.sink.batches, 1);
  assert_int_equal(f.done, 2);
  /* The batch took the queue: there is room again. */
  assert_int_equal(kg_pipeline_submit(&f.p, &item(4, 20, &f.done)->link), 0);
  kg_pipeline_flush(&f.p);
  teardown(&f);
  assert_int_equal(f.done, 3);
}

/* Batches of at most max_batch items, and at most max_running of them in
 * the thread pool at once: what the sink sees at the same time is counted. */
static int concurrent, most_concurrent;
static pthread_mutex_t concurrent_lock = PTHREAD_MUTEX_INITIALIZER;

static void slow_compare(kg_pipeline_item *it, kg_result *out) {
  pthread_mutex_lock(&concurrent_lock);
  if (++concurrent > most_concurrent) most_concurrent = concurrent;
  pthread_mutex_unlock(&concurrent_lock);
  usleep(20 * 1000); /* long enough for a second batch to overlap */
  test_compare(it, out);
  pthread_mutex_lock(&concurrent_lock);
  concurrent--;
  pthread_mutex_unlock(&concurrent_lock);
}

static void test_batch_size_and_running_batches(void **state) {
  (void)state;
  static const kg_pipeline_ops ops = {.compare = slow_compare, .done = test_done};
  fixture f;
  const kg_pipeline_limits lim = {.gather = 1, .wait_ms = 60000, .max_batch = 3,
                                  .max_running = 2};
  setup(&f, &lim);
  f.p.ops = &ops;
  concurrent = most_concurrent = 0;
  for (int i = 0; i < 10; i++) assert_int_equal(kg_pipeline_submit(&f.p, &item(i, 1, &f.done)->link), 0);
  /* The first submit started a batch (of one); the fourth, with a full
   * batch waiting, a second beside it; the rest wait. */
  assert_int_equal(kg_pipeline_pending(&f.p, NULL), 6);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_int_equal(f.done, 10);
  assert_int_equal(f.sink.nids, 10);
  for (size_t b = 0; b < f.sink.batches; b++) assert_in_range(f.sink.sizes[b], 1, 3);
  assert_in_range(f.sink.batches, 4, 10);
  assert_in_range(most_concurrent, 1, 2);
  teardown(&f);
}

static void test_flush_with_nothing_waiting(void **state) {
  (void)state;
  fixture f;
  const kg_pipeline_limits lim = {.gather = 0 /* means 1 */};
  setup(&f, &lim);
  kg_pipeline_flush(&f.p);
  assert_false(kg_pipeline_busy(&f.p));
  assert_int_equal(kg_pipeline_submit(&f.p, &item(0, 1, &f.done)->link), 0);
  assert_true(kg_pipeline_busy(&f.p)); /* gather 1: at once */
  teardown(&f);
  assert_int_equal(f.done, 1);
  assert_int_equal(f.sink.batches, 1);
}

/* --- the sink list ------------------------------------------------------------------ */

static void test_every_sink_gets_every_batch(void **state) {
  (void)state;
  test_sink a = {.rc = -5}, b = {0}; /* a fails: b still writes */
  pthread_mutex_init(&a.lock, NULL);
  pthread_mutex_init(&b.lock, NULL);
  kg_sinks s = {.ops = {&test_sink_ops, &test_sink_ops}, .state = {&a, &b}, .n = 2};
  kg_result r1 = {.id = "one"}, r2 = {.id = "two"};
  const kg_result *rs[2] = {&r1, &r2};
  kg_sinks_write(&s, rs, 2);
  kg_sinks_reopen(&s); /* neither has reopen: a no-op */
  assert_int_equal(a.batches, 1);
  assert_int_equal(b.batches, 1);
  assert_string_equal(b.ids[1], "two");
  kg_sinks_close(&s);
  assert_true(a.closed && b.closed);
  assert_int_equal(s.n, 0);
  pthread_mutex_destroy(&a.lock);
  pthread_mutex_destroy(&b.lock);
}

static void test_sinks_open_from_config(void **state) {
  (void)state;
  char dir[] = "/tmp/kagami-sink-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128], moved[128], err[512] = "";
  snprintf(path, sizeof(path), "%s/diffs.jsonl", dir);
  snprintf(moved, sizeof(moved), "%s/diffs.jsonl.1", dir);
  kg_config cfg = {0};
  kg_sinks s;
  /* Neither diff_log nor store: no sink, no error. */
  assert_int_equal(kg_sinks_open(&cfg, &s, err, sizeof(err)), 0);
  assert_int_equal(s.n, 0);
  kg_sinks_close(&s);

  cfg.diff_log = path;
  assert_int_equal(kg_sinks_open(&cfg, &s, err, sizeof(err)), 0);
  assert_int_equal(s.n, 1);
  kg_resp_view v = {.backend = "production", .status = 200};
  kg_pair_result pair = {0};
  const char *roles[1] = {"master"};
  kg_result r = {.id = "abc", .method = "GET", .url = "/", .endpoint = "GET /",
                 .resps = &v, .roles = roles, .pairs = &pair, .n = 1, .equal = true};
  const kg_result *rs[1] = {&r};
  kg_sinks_write(&s, rs, 1);
  /* logrotate: rename, SIGHUP; the next line lands in a new file. */
  assert_int_equal(rename(path, moved), 0);
  kg_sinks_reopen(&s);
  kg_sinks_write(&s, rs, 1);
  kg_sinks_close(&s);
  FILE *fp = fopen(path, "r");
  assert_non_null(fp);
  char line[4096];
  assert_non_null(fgets(line, sizeof(line), fp));
  assert_non_null(strstr(line, "{\"id\":\"abc\""));
  fclose(fp);
  unlink(path);
  unlink(moved);

  /* A diff log that cannot be opened: an error naming it, nothing open. */
  snprintf(path, sizeof(path), "%s/missing/diffs.jsonl", dir);
  assert_int_equal(kg_sinks_open(&cfg, &s, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "diff log"));
  assert_non_null(strstr(err, path));
  assert_int_equal(s.n, 0);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gathers_until_the_timer),
      cmocka_unit_test(test_gather_starts_a_batch_and_the_rest_follows),
      cmocka_unit_test(test_bounds_refuse),
      cmocka_unit_test(test_batch_size_and_running_batches),
      cmocka_unit_test(test_flush_with_nothing_waiting),
      cmocka_unit_test(test_every_sink_gets_every_batch),
      cmocka_unit_test(test_sinks_open_from_config),
  };
  return cmocka_run_group_tests_name("pipeline", tests, NULL, NULL);
}
