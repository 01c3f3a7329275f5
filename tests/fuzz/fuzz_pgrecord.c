/* fuzz_pgrecord: a kept result read back from a fleet's PostgreSQL store
 * (src/results/pgread.c): its diff log record, stored data that a
 * hand-edited or damaged row may have made anything, turned back into the
 * store's rows and read with the dashboard's and `kagami show`'s queries.
 *
 * Input: the record's text.
 *
 * What must hold: the copy never fails on the record's content; a record
 * that is an object with a string id and an object of backends comes back
 * as exactly one result with that id, one backend row per backend (up to
 * the query's 64), the first the master; anything else comes back as no
 * result at all. */
#include <jansson.h>

#include "fuzz_util.h"
#include "results/pgread.h"
#include "results/storeq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *rec = malloc(size + 1);
  memcpy(rec, data, size);
  rec[size] = '\0';
  const char *recs[1] = {rec};
  double ts[1] = {1.7e9};
  kg_storeq *q = NULL;
  FZ_CHECK(kg_pgread_from_records(recs, ts, 1, "fuzz", &q) == 0);

  json_t *r = json_loads(rec, 0, NULL);
  const char *id = json_string_value(json_object_get(r, "id"));
  json_t *bes = json_object_get(r, "backends");
  bool kept = id != NULL && json_is_object(bes);

  json_t *list = kg_storeq_results(q, NULL, false, 10, NULL);
  FZ_CHECK(list != NULL);
  json_t *results = json_object_get(list, "results");
  FZ_CHECK(json_array_size(results) == (kept ? 1u : 0u));
  if (kept) {
    json_t *one = kg_storeq_result(q, id);
    FZ_CHECK(one != NULL);
    FZ_CHECK(strcmp(json_string_value(json_object_get(one, "id")), id) == 0);
    json_t *rows = json_object_get(one, "backends");
    size_t want = json_object_size(bes) < 64 ? json_object_size(bes) : 64;
    FZ_CHECK(json_array_size(rows) == want);
    if (want)
      FZ_CHECK(strcmp(json_string_value(json_object_get(json_array_get(rows, 0), "role")),
                      "master") == 0);
    json_decref(one);
  }
  json_decref(list);
  json_decref(r);
  kg_storeq_close(q);
  free(rec);
  return 0;
}
