/* test_warc.c: unit tests for the recorder's WARC output (src/traffic/record.c),
 * the WARC reader (src/traffic/warc.c) and the sources that read files
 * through it (src/traffic/source.c; its line parsers are in test_source.c).
 *
 * The recorder is driven through its public API (open, submit, close) on
 * files in a fresh temporary directory; what it wrote is read back with
 * the reader. Damage is made by cutting the file at every byte offset and
 * by flipping bytes in each part of a record, and the reader must return
 * every whole record before the damage and name where it stopped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/common.h"
#include "traffic/record.h"
#include "traffic/source.h"
#include "traffic/warc.h"

/* --- helpers ------------------------------------------------------------------ */

typedef struct fixture {
  char dir[64];
  char path[128];
  kg_config cfg;
  kg_backend_cfg be;
  char *redact[5];
} fixture;

static int setup(void **state) {
  fixture *f = kg_calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/kg_test_warc_XXXXXX");
  if (mkdtemp(f->dir) == NULL) return -1;
  snprintf(f->path, sizeof(f->path), "%s/traffic.warc", f->dir);
  f->be.name = "production";
  f->be.addr.text = "127.0.0.1:9001";
  f->be.master = true;
  f->cfg.backends = &f->be;
  f->cfg.nbackends = 1;
  f->cfg.record_file = f->path;
  f->cfg.record_sample = 1.0;
  f->cfg.record_bodies = true;
  f->cfg.record_max_bytes = (uint64_t)1 << 30;
  static const char *const names[] = {"Authorization", "Proxy-Authorization", "Cookie",
                                      "Set-Cookie", "X-Secret"};
  for (size_t i = 0; i < 5; i++) f->redact[i] = (char *)names[i];
  f->cfg.redact_headers = f->redact;
  f->cfg.nredact_headers = 5;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  DIR *d = opendir(f->dir);
  if (d) {
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.') continue;
      snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

static void add(kg_hdrs *h, const char *name, const char *value) {
  kg_hdrs_add(h, name, strlen(name), value, strlen(value));
}

static const char *field(const kg_hdrs *h, const char *name) {
  long i = kg_hdrs_find(h, name);
  return i < 0 ? NULL : kg_hdrs_value(h, (size_t)i);
}

/* A recorded exchange: method url -> status body. */
static kg_record_item *item(const char *method, const char *url, int status,
                            const char *body) {
  kg_record_item *it = kg_calloc(1, sizeof(*it));
  it->ts.tv_sec = 1700000000 + (time_t)strlen(url);
  it->ts.tv_nsec = 250000000;
  it->method = kg_strdup(method);
  it->url = kg_strdup(url);
  add(&it->req_hdrs, "Host", "shop.example");
  add(&it->req_hdrs, "Accept", "*/*");
  it->status = status;
  it->reason = kg_strdup("OK");
  add(&it->resp_hdrs, "Content-Type", "text/plain");
  add(&it->resp_hdrs, "Transfer-Encoding", "chunked");
  add(&it->resp_hdrs, "Connection", "keep-alive");
  if (body) kg_buf_appends(&it->resp_body, body);
  it->elapsed = 0.0125;
  return it;
}

static void record_items(fixture *f, kg_record_item **items, size_t n) {
  kg_recorder *r = NULL;
  char err[256];
  assert_int_equal(kg_recorder_open(&f->cfg, &r, err, sizeof(err)), 0);
  for (size_t i = 0; i < n; i++) assert_true(kg_recorder_submit(r, items[i]));
  kg_recorder_close(r);
}

/* Reads every item of path; returns the count, fills st. */
static size_t read_all(const char *path, bool strict, kg_source_item *out, size_t max,
                       kg_source_status *st, int *last_rc) {
  kg_source *t = NULL;
  char err[256];
  assert_int_equal(kg_source_open(path, KG_SOURCE_AUTO, strict, &t, err, sizeof(err)), 0);
  size_t n = 0;
  kg_source_item it;
  int rc;
  while ((rc = kg_source_next(t, &it, err, sizeof(err))) == 1) {
    if (out && n < max) out[n] = it;
    else kg_source_item_free(&it);
    n++;
  }
  if (last_rc) *last_rc = rc;
  if (st) kg_source_status_get(t, st);
  kg_source_close(t);
  return n;
}

static void free_items(kg_source_item *v, size_t n) {
  for (size_t i = 0; i < n; i++) kg_source_item_free(&v[i]);
}

static char *slurp(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *p = kg_malloc((size_t)n + 1);
  assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
  p[n] = '\0';
  fclose(fp);
  *len = (size_t)n;
  return p;
}

static void spit(const char *path, const char *p, size_t n) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(p, 1, n, fp), n);
  fclose(fp);
}

/* Record offsets of a WARC file, from the reader itself. */
static size_t record_offsets(const char *path, uint64_t *off, size_t max) {
  kg_warc_reader *r = NULL;
  char err[256];
  assert_int_equal(kg_warc_open(path, &r, err, sizeof(err)), 0);
  kg_warc_record rec;
  kg_warc_record_init(&rec);
  size_t n = 0;
  while (kg_warc_read(r, &rec) == 1 && n < max) off[n++] = rec.offset;
  kg_warc_record_free(&rec);
  kg_warc_close(r);
  return n;
}

/* --- the writer and reader round trip ------------------------------------------------ */

static void test_round_trip(void **state) {
  fixture *f = *state;
  kg_record_item *items[4];
  items[0] = item("GET", "/users/42?x=1", 200, "hello\nworld\n");
  add(&items[0]->req_hdrs, "Authorization", "Bearer s3cret");
  add(&items[0]->req_hdrs, "Cookie", "session=abc; theme=dark");
  add(&items[0]->req_hdrs, "X-Secret", "hush");
  add(&items[0]->resp_hdrs, "Set-Cookie", "session=xyz; Path=/; HttpOnly");
  items[1] = item("POST", "/orders", 201, "{\"id\": 7}");
  kg_buf_appends(&items[1]->req_body, "qty=2&sku=a1");
  items[2] = item("HEAD", "/users/42", 200, NULL);
  add(&items[2]->resp_hdrs, "Content-Length", "12");
  items[3] = item("GET", "/down", 0, NULL);
  free(items[3]->reason);
  items[3]->reason = NULL;
  items[3]->error = kg_strdup("connection refused");
  record_items(f, items, 4);

  /* The container itself. */
  kg_warc_reader *r = NULL;
  char err[256];
  assert_int_equal(kg_warc_open(f->path, &r, err, sizeof(err)), 0);
  kg_warc_record rec;
  kg_warc_record_init(&rec);
  assert_int_equal(kg_warc_read(r, &rec), 1);
  assert_string_equal(kg_warc_field(&rec, "WARC-Type"), "warcinfo");
  assert_non_null(strstr(rec.block.data, "software: kagami/"));
  assert_int_equal(kg_warc_read(r, &rec), 1);
  assert_string_equal(kg_warc_field(&rec, "WARC-Type"), "request");
  assert_string_equal(kg_warc_field(&rec, "Content-Type"), "application/http;msgtype=request");
  assert_string_equal(kg_warc_field(&rec, "WARC-Target-URI"), "http://shop.example/users/42?x=1");
  assert_string_equal(kg_warc_field(&rec, "WARC-Date"), "2023-11-14T22:13:33.250000Z");
  const char *id = kg_warc_field(&rec, "WARC-Record-ID");
  assert_int_equal(strlen(id), 47);
  assert_memory_equal(id, "<urn:uuid:", 10);
  assert_int_equal(id[24], '4'); /* version 4 */
  char req_id[64];
  snprintf(req_id, sizeof(req_id), "%s", id);
  assert_null(strstr(rec.block.data, "s3cret"));
  assert_null(strstr(rec.block.data, "hush"));
  assert_non_null(strstr(rec.block.data, "Cookie: session=[redacted]; theme=[redacted]\r\n"));
  assert_non_null(strstr(rec.block.data, "Authorization: [redacted]\r\n"));
  assert_int_equal(kg_warc_read(r, &rec), 1);
  assert_string_equal(kg_warc_field(&rec, "WARC-Type"), "response");
  assert_string_equal(kg_warc_field(&rec, "WARC-Concurrent-To"), req_id);
  assert_string_equal(kg_warc_field(&rec, "WARC-Kagami-Elapsed"), "0.012500");
  assert_non_null(strstr(rec.block.data, "Set-Cookie: session=[redacted]; Path=/; HttpOnly\r\n"));
  assert_null(strstr(rec.block.data, "Transfer-Encoding"));
  assert_null(strstr(rec.block.data, "Connection"));
  assert_non_null(strstr(rec.block.data, "Content-Length: 12\r\n\r\nhello\nworld\n"));
  kg_warc_record_free(&rec);
  kg_warc_close(r);

  /* The items. */
  kg_source_item v[8];
  kg_source_status st;
  int rc;
  size_t n = read_all(f->path, true, v, 8, &st, &rc);
  assert_int_equal(rc, 0);
  assert_int_equal(n, 4);
  assert_int_equal(st.format, KG_SOURCE_WARC);
  assert_false(st.damaged);
  assert_int_equal(st.other_records, 1); /* the warcinfo */
  assert_int_equal(st.unparseable, 0);

  assert_string_equal(v[0].method, "GET");
  assert_string_equal(v[0].url, "/users/42?x=1");
  assert_string_equal(field(&v[0].req_hdrs, "Host"), "shop.example");
  assert_string_equal(field(&v[0].req_hdrs, "Authorization"), "[redacted]");
  assert_true(fabs(v[0].ts - 1700000013.25) < 1e-6);
  assert_true(v[0].has_response);
  assert_int_equal(v[0].status, 200);
  assert_string_equal(v[0].reason, "OK");
  assert_string_equal(v[0].resp_body.data, "hello\nworld\n");
  assert_string_equal(field(&v[0].resp_hdrs, "Content-Type"), "text/plain");
  assert_null(field(&v[0].resp_hdrs, "Transfer-Encoding"));
  assert_false(v[0].resp_truncated);
  assert_true(fabs(v[0].elapsed - 0.0125) < 1e-9);

  assert_string_equal(v[1].method, "POST");
  assert_string_equal(v[1].req_body.data, "qty=2&sku=a1");
  assert_null(field(&v[1].req_hdrs, "Content-Length")); /* framing is the sender's */
  assert_int_equal(v[1].status, 201);

  assert_string_equal(v[2].method, "HEAD");
  assert_int_equal(v[2].resp_body.len, 0);
  assert_string_equal(field(&v[2].resp_hdrs, "Content-Length"), "12"); /* kept for HEAD */
  assert_false(v[2].resp_body_omitted);

  assert_string_equal(v[3].url, "/down");
  assert_false(v[3].has_response);
  assert_string_equal(v[3].error, "connection refused");
  free_items(v, n);
}

static void test_keep_credentials_and_no_bodies(void **state) {
  fixture *f = *state;
  f->cfg.record_keep_credentials = true;
  f->cfg.record_bodies = false;
  kg_record_item *items[2];
  items[0] = item("GET", "/a", 200, "body that is not kept");
  add(&items[0]->req_hdrs, "Authorization", "Bearer s3cret");
  items[1] = item("PUT", "/b", 204, NULL);
  kg_buf_appends(&items[1]->req_body, "payload");
  record_items(f, items, 2);

  size_t len;
  char *text = slurp(f->path, &len);
  assert_non_null(strstr(text, "Authorization: Bearer s3cret"));
  assert_null(strstr(text, "body that is not kept"));
  assert_null(strstr(text, "payload"));
  assert_non_null(strstr(text, "WARC-Truncated: length"));
  free(text);

  kg_source_item v[4];
  size_t n = read_all(f->path, true, v, 4, NULL, NULL);
  assert_int_equal(n, 2);
  assert_true(v[0].resp_truncated);
  assert_true(v[0].resp_body_omitted);
  assert_int_equal(v[0].resp_body.len, 0);
  assert_int_equal(v[1].req_body.len, 0);
  assert_int_equal(v[1].status, 204);
  assert_false(v[1].resp_body_omitted); /* a 204 has no body to omit */
  free_items(v, n);
}

static void test_many_and_dropped_counted(void **state) {
  fixture *f = *state;
  kg_recorder *r = NULL;
  char err[256];
  assert_int_equal(kg_recorder_open(&f->cfg, &r, err, sizeof(err)), 0);
  size_t queued = 0;
  for (int i = 0; i < 3000; i++) {
    char url[32];
    snprintf(url, sizeof(url), "/n/%d", i);
    if (kg_recorder_submit(r, item("GET", url, 200, "x"))) queued++;
  }
  /* Dropped ones are counted as soon as they are refused; queued ones once
   * the writer gives up on them, which it does not here. */
  assert_int_equal(kg_recorder_dropped(r), 3000 - queued);
  kg_recorder_close(r);
  size_t n = read_all(f->path, true, NULL, 0, NULL, NULL);
  assert_int_equal(n, queued);
}

/* --- damage ---------------------------------------------------------------------- */

/* Cutting the file anywhere: every record wholly before the cut is read,
 * and the stop is reported at the start of the cut record. */
static void test_truncated_everywhere(void **state) {
  fixture *f = *state;
  kg_record_item *items[3] = {item("GET", "/one", 200, "first body\n"),
                              item("GET", "/two", 200, "second body\n"),
                              item("GET", "/three", 404, "third body\n")};
  record_items(f, items, 3);
  size_t len;
  char *whole = slurp(f->path, &len);
  uint64_t off[16];
  size_t nrec = record_offsets(f->path, off, 16);
  assert_int_equal(nrec, 7); /* warcinfo + 3 x (request, response) */
  char cut[200];
  snprintf(cut, sizeof(cut), "%s/cut.warc", f->dir);
  for (size_t at = 1; at < len; at++) {
    spit(cut, whole, at);
    kg_source_status st;
    int rc;
    size_t n = read_all(cut, false, NULL, 0, &st, &rc);
    assert_int_equal(rc, 0);
    /* Records whose end is at or before the cut are whole. */
    size_t whole_recs = 0;
    for (size_t i = 0; i < nrec; i++) {
      uint64_t end = i + 1 < nrec ? off[i + 1] : len;
      if (end <= at) whole_recs++;
    }
    bool boundary = false;
    for (size_t i = 0; i < nrec; i++) boundary |= off[i] == at;
    /* Whole exchanges: a request alone (its response cut) is still an
     * item, replayed without comparison. */
    /* Records 1, 3, 5 are the requests: each whole one is an item (a
     * request whose response was cut is replayed without comparison). */
    size_t want = whole_recs / 2;
    assert_int_equal(n, want);
    if (boundary) {
      if (st.damaged) fail_msg("cut at %zu (a record boundary): damage at %llu: %s", at,
                               (unsigned long long)st.damage_offset, st.damage_why);
    } else {
      if (!st.damaged) fail_msg("cut at %zu of %zu: no damage reported", at, len);
      assert_int_equal(st.damage_offset, off[whole_recs]);
      assert_non_null(strstr(st.damage_why, "truncated"));
    }
    /* Strict: the same records, then an error. */
    n = read_all(cut, true, NULL, 0, &st, &rc);
    assert_int_equal(n, want);
    assert_int_equal(rc, boundary ? 0 : -1);
  }
  free(whole);
}

static void test_corrupted(void **state) {
  fixture *f = *state;
  kg_record_item *items[3] = {item("GET", "/one", 200, "first body\n"),
                              item("GET", "/two", 200, "second body\n"),
                              item("GET", "/three", 200, "third body\n")};
  record_items(f, items, 3);
  size_t len;
  char *whole = slurp(f->path, &len);
  uint64_t off[16];
  size_t nrec = record_offsets(f->path, off, 16);
  assert_int_equal(nrec, 7);
  /* Damage the second exchange's request record (record 3) in each of its
   * framing parts. */
  uint64_t at = off[3];
  char *copy = kg_malloc(len + 1);
  char bad[200];
  snprintf(bad, sizeof(bad), "%s/bad.warc", f->dir);
  typedef struct {
    const char *what;
    size_t pos; /* relative to the record */
    char byte;
  } damage;
  const char *rec = whole + at;
  const char *cl = strstr(rec, "Content-Length: ") + 16;
  size_t ndig = strspn(cl, "0123456789");
  const char *blk = strstr(rec, "\r\n\r\n") + 4;
  size_t blen = (size_t)strtoul(cl, NULL, 10);
  char last = cl[ndig - 1];
  damage cases[4] = {
      {"version line", 0, 'X'},
      {"content length off by one", (size_t)(cl - rec) + ndig - 1,
       (char)(last == '9' ? '8' : last + 1)},
      {"content length not a number", (size_t)(cl - rec), 'z'},
      {"closing CRLF", (size_t)(blk - rec) + blen, 'X'},
  };
  for (size_t c = 0; c < 4; c++) {
    memcpy(copy, whole, len);
    copy[at + cases[c].pos] = cases[c].byte;
    spit(bad, copy, len);
    kg_source_status st;
    int rc;
    size_t n = read_all(bad, false, NULL, 0, &st, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 1); /* the first exchange */
    assert_true(st.damaged);
    assert_int_equal(st.damage_offset, at);
    n = read_all(bad, true, NULL, 0, &st, &rc);
    if (rc != -1) fail_msg("%s: strict reading did not fail", cases[c].what);
  }
  /* Garbage that is not WARC at all after a good start. */
  memcpy(copy, whole, len);
  memset(copy + off[5], 'Z', len - off[5]);
  spit(bad, copy, len);
  kg_source_status st;
  size_t n = read_all(bad, false, NULL, 0, &st, NULL);
  assert_int_equal(n, 2);
  assert_int_equal(st.damage_offset, off[5]);
  assert_non_null(strstr(st.damage_why, "not a WARC record"));
  free(copy);
  free(whole);
}

/* A file that ends inside a record is moved aside when recording starts
 * again, so later records stay reachable. */
static void test_reopen_after_cut(void **state) {
  fixture *f = *state;
  kg_record_item *a[2] = {item("GET", "/one", 200, "1"), item("GET", "/two", 200, "2")};
  record_items(f, a, 2);
  size_t len;
  char *whole = slurp(f->path, &len);
  spit(f->path, whole, len - 10);
  free(whole);
  kg_record_item *b[1] = {item("GET", "/three", 200, "3")};
  record_items(f, b, 1);
  kg_source_item v[4];
  kg_source_status st;
  size_t n = read_all(f->path, true, v, 4, &st, NULL);
  assert_int_equal(n, 1);
  assert_string_equal(v[0].url, "/three");
  free_items(v, n);
  /* And a whole file is appended to. */
  kg_record_item *c[1] = {item("GET", "/four", 200, "4")};
  record_items(f, c, 1);
  n = read_all(f->path, true, NULL, 0, &st, NULL);
  assert_int_equal(n, 2);
  /* The moved file is next to it. */
  DIR *d = opendir(f->dir);
  int moved = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strncmp(e->d_name, "traffic.warc.", 13) == 0) moved++;
  closedir(d);
  assert_int_equal(moved, 1);
}

static void test_rotation(void **state) {
  fixture *f = *state;
  f->cfg.record_max_bytes = 4096;
  kg_recorder *r = NULL;
  char err[256];
  assert_int_equal(kg_recorder_open(&f->cfg, &r, err, sizeof(err)), 0);
  char body[600];
  memset(body, 'b', sizeof(body) - 1);
  body[sizeof(body) - 1] = '\0';
  for (int i = 0; i < 20; i++) {
    char url[32];
    snprintf(url, sizeof(url), "/r/%d", i);
    assert_true(kg_recorder_submit(r, item("GET", url, 200, body)));
  }
  kg_recorder_close(r);
  DIR *d = opendir(f->dir);
  struct dirent *e;
  size_t files = 0, total = 0;
  char p[512];
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "traffic.warc", 12) != 0) continue;
    snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_true((uint64_t)sb.st_size <= 4096);
    kg_source_status st;
    int rc;
    total += read_all(p, true, NULL, 0, &st, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(st.other_records, 1); /* every file starts with warcinfo */
    files++;
  }
  closedir(d);
  assert_int_equal(total, 20);
  assert_true(files >= 5);
}

/* --- other writers' WARC files --------------------------------------------------- */

static void warc_record(kg_buf *out, const char *type, const char *id, const char *concurrent,
                        const char *uri, const char *block) {
  kg_hdrs f = KG_HDRS_INIT;
  add(&f, "WARC-Type", type);
  add(&f, "WARC-Record-ID", id);
  add(&f, "WARC-Date", "2024-03-01T10:00:00Z");
  if (uri) add(&f, "WARC-Target-URI", uri);
  if (concurrent) add(&f, "WARC-Concurrent-To", concurrent);
  add(&f, "Content-Type", strcmp(type, "response") == 0 ? "application/http; msgtype=response"
                                                        : "application/http; msgtype=request");
  kg_warc_format(out, &f, block, strlen(block));
  kg_hdrs_free(&f);
}

static void test_foreign_layouts(void **state) {
  fixture *f = *state;
  kg_buf b = KG_BUF_INIT;
  /* warcio/wget order: response first, request pointing at it; the
   * response body chunked as it came off the wire. */
  warc_record(&b, "response", "<urn:uuid:r1>", NULL, "http://a.example/x",
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
              "3\r\nabc\r\n0\r\n\r\n");
  warc_record(&b, "request", "<urn:uuid:q1>", "<urn:uuid:r1>", "http://a.example/x",
              "GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n");
  /* A response alone. */
  warc_record(&b, "response", "<urn:uuid:r2>", NULL, "http://b.example:8080/only?q=1",
              "HTTP/1.0 404 Not Found\r\n\r\nclose-delimited body");
  /* A request whose HTTP does not parse: skipped and counted. */
  warc_record(&b, "request", "<urn:uuid:q3>", NULL, "http://a.example/bad",
              "this is not http\r\n\r\n");
  spit(f->path, b.data, b.len);
  kg_buf_free(&b);
  kg_source_item v[4];
  kg_source_status st;
  size_t n = read_all(f->path, true, v, 4, &st, NULL);
  assert_int_equal(n, 2);
  assert_int_equal(st.unparseable, 1);
  assert_string_equal(v[0].url, "/x");
  assert_string_equal(v[0].resp_body.data, "abc");
  assert_int_equal(v[0].status, 200);
  assert_true(fabs(v[0].ts - 1709287200.0) < 1e-6);
  assert_string_equal(v[1].method, "GET");
  assert_string_equal(v[1].url, "/only?q=1");
  assert_string_equal(v[1].host, "b.example:8080");
  assert_int_equal(v[1].status, 404);
  assert_string_equal(v[1].resp_body.data, "close-delimited body");
  free_items(v, n);
}

static void test_gzip(void **state) {
  fixture *f = *state;
  kg_record_item *items[2] = {item("GET", "/g1", 200, "one"), item("GET", "/g2", 200, "two")};
  record_items(f, items, 2);
  size_t len;
  char *whole = slurp(f->path, &len);
  char gzpath[200];
  snprintf(gzpath, sizeof(gzpath), "%s/traffic.warc.gz", f->dir);
  /* One gzip member per record, as .warc.gz files are made. */
  uint64_t off[8];
  size_t nrec = record_offsets(f->path, off, 8);
  FILE *fp = fopen(gzpath, "wb");
  for (size_t i = 0; i < nrec; i++) {
    size_t end = i + 1 < nrec ? off[i + 1] : len;
    gzFile g = gzdopen(dup(fileno(fp)), "ab");
    gzwrite(g, whole + off[i], (unsigned)(end - off[i]));
    gzclose(g);
    fseek(fp, 0, SEEK_END);
  }
  fclose(fp);
  kg_source_item v[4];
  kg_source_status st;
  size_t n = read_all(gzpath, true, v, 4, &st, NULL);
  assert_int_equal(n, 2);
  assert_true(st.compressed);
  assert_string_equal(v[1].resp_body.data, "two");
  free_items(v, n);
  /* Cut the compressed file short: the first exchange survives. */
  size_t glen;
  char *gz = slurp(gzpath, &glen);
  spit(gzpath, gz, glen - 30);
  int rc;
  n = read_all(gzpath, false, NULL, 0, &st, &rc);
  assert_int_equal(rc, 0);
  assert_true(st.damaged);
  assert_true(n >= 1);
  free(gz);
  free(whole);
}

/* --- sources -------------------------------------------------------------------------- */

static void test_import_files(void **state) {
  fixture *f = *state;
  char p[200];
  snprintf(p, sizeof(p), "%s/urls.txt", f->dir);
  const char *urls = "# urls to warm\n/a\n\n/b?x=1\nnot a url\r\nhttp://h.example/c\n/d";
  spit(p, urls, strlen(urls));
  kg_source_item v[8];
  kg_source_status st;
  size_t n = read_all(p, true, v, 8, &st, NULL);
  assert_int_equal(st.format, KG_SOURCE_URLS);
  assert_int_equal(n, 4);
  assert_int_equal(st.unparseable, 1);
  assert_string_equal(v[0].url, "/a");
  assert_string_equal(v[2].url, "/c");
  assert_string_equal(v[3].url, "/d"); /* no final newline */
  free_items(v, n);

  snprintf(p, sizeof(p), "%s/access.log", f->dir);
  const char *log =
      "10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] \"GET /one HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n"
      "10.0.0.1 - - [01/Jan/2024:00:00:01 +0000] \"POST /two HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n"
      "garbage line\n"
      "10.0.0.1 - - [01/Jan/2024:00:00:02 +0000] \"GET /three HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n";
  spit(p, log, strlen(log));
  n = read_all(p, true, v, 8, &st, NULL);
  assert_int_equal(st.format, KG_SOURCE_NGINX);
  assert_int_equal(n, 2);
  assert_int_equal(st.skipped, 1);
  assert_int_equal(st.unparseable, 1);
  assert_true(fabs(v[1].ts - v[0].ts - 2.0) < 1e-9);
  assert_int_equal(v[1].offset, strstr(log, "10.0.0.1 - - [01/Jan/2024:00:00:02") - log);
  free_items(v, n);
}

static void test_dates(void **state) {
  (void)state;
  char d[32];
  kg_warc_date(1700000000.123456, d);
  assert_string_equal(d, "2023-11-14T22:13:20.123456Z");
  double t;
  assert_int_equal(kg_warc_parse_date(d, &t), 0);
  assert_true(fabs(t - 1700000000.123456) < 1e-6);
  assert_int_equal(kg_warc_parse_date("2023-11-14T22:13:20Z", &t), 0);
  assert_true(fabs(t - 1700000000.0) < 1e-9);
  assert_int_equal(kg_warc_parse_date("2023-11-14 22:13:20Z", &t), -1);
  assert_int_equal(kg_warc_parse_date("2023-11-14T22:13:20", &t), -1);
  assert_int_equal(kg_warc_parse_date("2023-13-14T22:13:20Z", &t), -1);
  char a[KG_WARC_ID_LEN], b[KG_WARC_ID_LEN];
  kg_warc_new_id(a);
  kg_warc_new_id(b);
  assert_string_not_equal(a, b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keep_credentials_and_no_bodies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_and_dropped_counted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncated_everywhere, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_after_cut, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_foreign_layouts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gzip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_import_files, setup, teardown),
      cmocka_unit_test(test_dates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
