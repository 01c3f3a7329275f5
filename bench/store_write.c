/* store_write: the results store's CPU per compared result, alone.
 *
 * Writes N results of one 1.4 KB page through kg_store_write, in batches
 * of 32 (what the proxy's pipeline gathers under load; fewer when it is
 * not busy: the cost per batch is then shared by fewer), with arrival
 * times advancing at 10,000 results per second, into a new store with
 * the default retention; a given share of them differs. Prints the
 * process CPU time (user + system, every thread: SQLite writes from this
 * one) per result. The same file builds against older stores (schema 2,
 * whose config has no per-endpoint shares), so a change can be measured
 * against the code before it.
 *
 *   build/bench/store_write [results (default 300000)] [differing share
 *                            (default 0)] [endpoints (default 10)]
 *                            [batch size (default 32, at most 256)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "compare/compare.h"
#include "compare/differences.h"
#include "results/store.h"

#define BATCH_MAX 256

static double cpu_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 300000;
  double share = argc > 2 ? atof(argv[2]) : 0;
  int neps = argc > 3 ? atoi(argv[3]) : 10;
  int batch = argc > 4 ? atoi(argv[4]) : 32;
  if (n <= 0 || share < 0 || share > 1 || neps <= 0 || batch <= 0 || batch > BATCH_MAX) {
    fprintf(stderr, "usage: store_write [results] [differing share] [endpoints] [batch]\n");
    return 2;
  }
  char dir[] = "/tmp/kagami-store-write-XXXXXX";
  if (mkdtemp(dir) == NULL) return 1;
  char path[128];
  snprintf(path, sizeof(path), "%s/kagami.db", dir);
  kg_config cfg = {.store_path = path, .store_max_rows = 100000, .store_max_days = 7,
                   .store_max_body_bytes = 256 * 1024};
#if KG_STORE_SCHEMA_VERSION >= 3
  cfg.store_keep_differing = 1000;
  cfg.store_keep_equal = 100;
  cfg.store_keep_equal_per_minute = 2;
#endif
  kg_store *s = NULL;
  char err[512];
  if (kg_store_open(&cfg, &s, err, sizeof(err)) < 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  /* one page, 1.4 KB */
  char page[1400];
  for (size_t i = 0; i < sizeof(page); i++) page[i] = (char)('a' + i % 26);
  page[sizeof(page) - 1] = '\n';
  kg_hdrs req = {0}, hdrs = {0};
  kg_hdrs_add(&req, "Host", 4, "example", 7);
  kg_hdrs_add(&hdrs, "Content-Type", 12, "text/html", 9);
  kg_pair_result differs = {.equal = false};
  kg_diffs_add(&differs.body, "/html/body/p[2]/text()", "/html/body/p[2]/text()", "a", "b");
  kg_buf_appends(&differs.diff, "--- production\n+++ newdb\n@@ -1 +1 @@\n-a\n+b\n");
  kg_pair_result same = {.equal = true};
  const char *roles[2] = {"master", "shadow"};
  char eps[64][32];
  for (int i = 0; i < neps && i < 64; i++) snprintf(eps[i], sizeof(eps[i]), "GET /page/%d", i);
  static kg_resp_view views[BATCH_MAX][2];
  static kg_pair_result pairs[BATCH_MAX][2];
  static kg_result res[BATCH_MAX];
  static const kg_result *ptr[BATCH_MAX];
  static char ids[BATCH_MAX][32];
  time_t t0 = time(NULL) - (time_t)(n / 10000) - 60;
  unsigned seed = 1;
  double c0 = cpu_seconds();
  long ndiff = 0;
  for (long done = 0; done < n;) {
    int k = (int)KG_MIN((long)batch, n - done);
    for (int j = 0; j < k; j++, done++) {
      seed = seed * 1103515245u + 12345u;
      bool eq = (double)((seed >> 8) % 1000000) / 1e6 >= share;
      ndiff += !eq;
      long ms = done / 10; /* 10,000 a second */
      snprintf(ids[j], sizeof(ids[j]), "%011llx00%07lx",
               (unsigned long long)((long long)t0 * 1000 + ms), done & 0xfffffff);
      for (int b = 0; b < 2; b++)
        views[j][b] = (kg_resp_view){.backend = b ? "newdb" : "production", .status = 200,
                                     .hdrs = &hdrs, .body = page, .body_len = sizeof(page),
                                     .elapsed = 0.001 + 0.0001 * (done % 17) + 0.0002 * b,
                                     .bytes = sizeof(page)};
      pairs[j][0] = same;
      pairs[j][1] = eq ? same : differs;
      res[j] = (kg_result){.id = ids[j],
                           .ts = {.tv_sec = t0 + ms / 1000, .tv_nsec = (ms % 1000) * 1000000},
                           .method = "GET", .url = "/page", .endpoint = eps[done % neps % 64],
                           .req_hdrs = &req, .resps = views[j], .roles = roles,
                           .pairs = pairs[j], .n = 2, .equal = eq, .kind = KG_KIND_HTML};
      ptr[j] = &res[j];
    }
    if (kg_store_write(s, ptr, (size_t)k) < 0) return 1;
  }
  double c1 = cpu_seconds();
  kg_store_close(s);
  printf("store_write: %ld results (%ld differing), batches of %d, %d endpoints, schema %d: "
         "%.2f us CPU per result\n", n, ndiff, batch, neps, KG_STORE_SCHEMA_VERSION,
         (c1 - c0) * 1e6 / (double)n);
  kg_hdrs_free(&req);
  kg_hdrs_free(&hdrs);
  kg_pair_result_free(&differs);
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : 1;
}
