/* test_hooks.c: the Lua hooks through their C API.
 *
 * One config file defines all three hooks; each test picks a behaviour by
 * request path. Hooks report wrong inputs by raising an error (assert), so
 * "the hook saw what we passed" shows up as a return value of 1. Failing
 * hooks log to stderr; that noise is expected. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "http/hdrs.h"
#include "proxy/hooks.h"

static const char hooks_cfg[] =
    "local function join_pairs(h)\n"
    "  local out = {}\n"
    "  for k, v in pairs(h) do out[#out + 1] = k .. '=' .. v end\n"
    "  return table.concat(out, ';')\n"
    "end\n"
    "return {\n"
    "  backends = {\n"
    "    production = { url = 'http://127.0.0.1:9001', master = true },\n"
    "    newdb = { url = 'http://127.0.0.1:9002' },\n"
    "    other = { url = 'http://127.0.0.1:9003' },\n"
    "  },\n"
    "  hook_budget = 100000,\n"
    "  select_backends = function(req)\n"
    "    local p = req.path\n"
    "    if p == '/one' then return { 'newdb' } end\n"
    "    if p == '/both' then return { 'other', 'newdb' } end\n"
    "    if p == '/empty' then return {} end\n"
    "    if p == '/hdr' then\n"
    "      assert(req.headers['X-SHADOW'] == 'all')\n"
    "      assert(req.headers['x-shadow'] == 'all')\n"
    "      assert(req.headers['accept'] == 'a, b')\n"
    "      assert(req.headers['missing'] == nil)\n"
    "      return { 'other' }\n"
    "    end\n"
    "    if p == '/req' then\n"
    "      assert(req.method == 'POST', req.method)\n"
    "      assert(req.url == '/req?a=1&b=2', req.url)\n"
    "      assert(req.query == 'a=1&b=2', req.query)\n"
    "      assert(req.body == 'pay\\0load', req.body)\n"
    "      return { 'newdb' }\n"
    "    end\n"
    "    if p == '/noquery' then\n"
    "      assert(req.query == nil and req.body == '' and req.url == p)\n"
    "      assert(next(req.headers) == nil and join_pairs(req.headers) == '')\n"
    "      return { 'newdb' }\n"
    "    end\n"
    "    if p == '/unknown' then return { 'nope', 'newdb', 'nope2' } end\n"
    "    if p == '/number' then return 42 end\n"
    "    if p == '/map' then return { newdb = true } end\n"
    "    if p == '/mixed' then return { 'newdb', 7 } end\n"
    "    if p == '/err' then error('boom') end\n"
    "    if p == '/errtable' then error({}) end\n"
    "    if p == '/loop' then while true do end end\n"
    "    if p == '/sneaky' then\n"
    "      while true do pcall(function() while true do end end) end\n"
    "    end\n"
    "    if p == '/coroutine' then\n"
    "      local co = coroutine.wrap(function() while true do end end)\n"
    "      while true do pcall(co) end\n"
    "    end\n"
    "    if p == '/sethook' then debug.sethook() end\n"
    "    if p == '/finalizer' then\n"
    "      setmetatable({}, { __gc = function() while true do end end })\n"
    "      return { 'newdb' }\n"
    "    end\n"
    "    if p == '/metatable' then\n"
    "      local t = setmetatable({}, { __index = function() return 'newdb' end })\n"
    "      return { t.anything }\n"
    "    end\n"
    "    if p == '/ro' then req.headers['x'] = '1' end\n"
    "    if p == '/count' then\n"
    "      if finished_ok == 1 then return { 'other' } end\n"
    "      return {}\n"
    "    end\n"
    "    return nil\n"
    "  end,\n"
    "  munge_headers = function(backend, req, headers)\n"
    "    local p = req.path\n"
    "    if p == '/basic' then\n"
    "      assert(headers['HOST'] == 'example.com')\n"
    "      assert(headers.accept == 'a, b')\n"
    "      local seen = join_pairs(headers)\n"
    "      assert(seen == 'Host=example.com;X-Foo=1;Accept=a, b;X-Del=z', seen)\n"
    "      headers['x-foo'] = '2'\n"
    "      headers['X-New'] = 'n'\n"
    "      headers['x-del'] = nil\n"
    "      headers['Another'] = 5\n"
    "      headers['gone-again'] = 'x'\n"
    "      headers['Gone-Again'] = nil\n"
    "      headers['never'] = nil\n"
    "      if backend ~= 'production' then headers['X-Shadow'] = '1' end\n"
    "      assert(headers['x-new'] == 'n' and headers['X-FOO'] == '2')\n"
    "      assert(headers['X-Del'] == nil and headers['another'] == '5')\n"
    "      seen = join_pairs(headers)\n"
    "      local want = 'Host=example.com;X-Foo=2;Accept=a, b;X-New=n;Another=5'\n"
    "      if backend ~= 'production' then want = want .. ';X-Shadow=1' end\n"
    "      assert(seen == want, seen)\n"
    "    elseif p == '/replace-dup' then headers['ACCEPT'] = 'c'\n"
    "    elseif p == '/delete-dup' then headers['accept'] = nil\n"
    "    elseif p == '/readd' then\n"
    "      headers['x-foo'] = nil\n"
    "      headers['X-FOO'] = 'back'\n"
    "    elseif p == '/inject' then headers['X-Evil'] = 'a\\r\\nb'\n"
    "    elseif p == '/inject-nul' then headers['X-Evil'] = 'a\\0b'\n"
    "    elseif p == '/inject-name' then headers['X-A\\r\\nB'] = 'x'\n"
    "    elseif p == '/inject-space' then headers['X A'] = 'x'\n"
    "    elseif p == '/inject-caught' then\n"
    "      local ok = pcall(function() headers['X-Evil'] = 'a\\nb' end)\n"
    "      assert(not ok)\n"
    "      headers['X-Ok'] = '1'\n"
    "    elseif p == '/table-value' then headers['X-T'] = {}\n"
    "    elseif p == '/content-length' then headers['Content-Length'] = '0'\n"
    "    elseif p == '/te' then headers['Transfer-Encoding'] = 'chunked'\n"
    "    elseif p == '/same-cl' then headers['content-length'] = '5'\n"
    "    elseif p == '/loop' then\n"
    "      headers['X-Before'] = '1'\n"
    "      while true do end\n"
    "    end\n"
    "  end,\n"
    "  on_backends_finished = function(backends, req, responses)\n"
    "    assert(#backends == 2 and backends[1] == 'production')\n"
    "    assert(backends[2] == 'newdb')\n"
    "    assert(req.path == '/fin')\n"
    "    local p, n = responses.production, responses.newdb\n"
    "    assert(p.status == 200, 'status ' .. tostring(p.status))\n"
    "    assert(p.body == 'hello')\n"
    "    assert(p.headers['content-type'] == 'text/plain')\n"
    "    assert(p.error == nil)\n"
    "    assert(math.abs(p.elapsed - 0.25) < 1e-9)\n"
    "    assert(n.status == nil and n.error == 'timeout' and n.body == '')\n"
    "    assert(n.headers['content-type'] == nil)\n"
    "    assert(not pcall(function() p.headers['x'] = '1' end))\n"
    "    finished_ok = (finished_ok or 0) + 1\n"
    "  end,\n"
    "}\n";

typedef struct fixture {
  char *path;
  kg_config *cfg;
  kg_hooks *hooks;
} fixture;

static char *write_tmp(const char *text) {
  char *path = strdup("/tmp/kagami-hooks-XXXXXX.lua");
  int fd = mkstemps(path, 4);
  assert_true(fd >= 0);
  size_t len = strlen(text);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  close(fd);
  return path;
}

static int setup_text(void **state, const char *text) {
  fixture *f = calloc(1, sizeof(*f));
  char err[1024] = "";
  f->path = write_tmp(text);
  if (kg_config_load(f->path, &f->cfg, err, sizeof(err)) != 0)
    fail_msg("config: %s", err);
  if (kg_hooks_new(f->cfg, &f->hooks, err, sizeof(err)) != 0)
    fail_msg("hooks: %s", err);
  *state = f;
  return 0;
}

static int setup(void **state) { return setup_text(state, hooks_cfg); }

static int teardown(void **state) {
  fixture *f = *state;
  kg_hooks_free(f->hooks);
  kg_config_free(f->cfg);
  unlink(f->path);
  free(f->path);
  free(f);
  return 0;
}

static kg_req_view req_for(const char *method, const char *url,
                           const kg_hdrs *hdrs) {
  kg_req_view r = {.method = method, .url = url, .hdrs = hdrs};
  return r;
}

/* select_backends for `url` with no headers; returns the hook's result and
 * stores the mask (UINT64_MAX when untouched). */
static int select_for(fixture *f, const char *url, uint64_t *mask) {
  kg_req_view r = req_for("GET", url, NULL);
  *mask = UINT64_MAX;
  return kg_hooks_select_backends(f->hooks, &r, mask);
}

#define BIT(name) (1ULL << kg_config_backend_index(f->cfg, name))

/* ---- select_backends -------------------------------------------------- */

static void test_select_names(void **state) {
  fixture *f = *state;
  uint64_t mask;
  assert_int_equal(kg_config_backend_index(f->cfg, "newdb"), 1);
  assert_int_equal(select_for(f, "/one", &mask), 1);
  assert_int_equal(mask, BIT("newdb"));
  assert_int_equal(select_for(f, "/both?x=1", &mask), 1);
  assert_int_equal(mask, BIT("newdb") | BIT("other"));
  assert_int_equal(select_for(f, "/empty", &mask), 1);
  assert_int_equal(mask, 0);
  /* unknown names are skipped, the rest kept */
  assert_int_equal(select_for(f, "/unknown", &mask), 1);
  assert_int_equal(mask, BIT("newdb"));
}

static void test_select_nil_and_bad_shapes(void **state) {
  fixture *f = *state;
  uint64_t mask;
  const char *zero[] = {"/other", "/number", "/map", "/mixed"};
  for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++) {
    assert_int_equal(select_for(f, zero[i], &mask), 0);
    assert_int_equal(mask, UINT64_MAX);
  }
}

static void test_select_req_fields(void **state) {
  fixture *f = *state;
  kg_hdrs h = KG_HDRS_INIT;
  kg_hdrs_add(&h, "X-Shadow", 8, "all", 3);
  kg_hdrs_add(&h, "Accept", 6, "a", 1);
  kg_hdrs_add(&h, "accept", 6, "b", 1);
  uint64_t mask = 0;
  kg_req_view r = req_for("GET", "/hdr", &h);
  assert_int_equal(kg_hooks_select_backends(f->hooks, &r, &mask), 1);
  assert_int_equal(mask, BIT("other"));

  r = req_for("POST", "/req?a=1&b=2", &h);
  r.path = "/req";
  r.body = "pay\0load";
  r.body_len = 8;
  assert_int_equal(kg_hooks_select_backends(f->hooks, &r, &mask), 1);
  assert_int_equal(mask, BIT("newdb"));

  /* path derived from the url when not given */
  r = req_for("GET", "/noquery", NULL);
  assert_int_equal(kg_hooks_select_backends(f->hooks, &r, &mask), 1);
  /* request headers are read-only */
  r = req_for("GET", "/ro", &h);
  assert_int_equal(kg_hooks_select_backends(f->hooks, &r, &mask), 0);
  kg_hdrs_free(&h);
}

static void test_select_errors(void **state) {
  fixture *f = *state;
  uint64_t mask;
  assert_int_equal(select_for(f, "/err", &mask), 0);
  assert_int_equal(select_for(f, "/errtable", &mask), 0);
  assert_int_equal(mask, UINT64_MAX);
  /* the state is still usable afterwards */
  assert_int_equal(select_for(f, "/one", &mask), 1);
  assert_int_equal(mask, BIT("newdb"));
}

static void test_select_budget(void **state) {
  fixture *f = *state;
  uint64_t mask;
  const char *loops[] = {"/loop", "/sneaky", "/coroutine", "/loop"};
  for (size_t i = 0; i < sizeof(loops) / sizeof(loops[0]); i++) {
    assert_int_equal(select_for(f, loops[i], &mask), 0);
    /* a fresh budget per call: ordinary calls work again */
    assert_int_equal(select_for(f, "/both", &mask), 1);
    assert_int_equal(mask, BIT("newdb") | BIT("other"));
  }
  /* hooks cannot switch their budget off */
  assert_int_equal(select_for(f, "/sethook", &mask), 0);
  /* nor create a finalizer, which runs with no budget at all; other
   * metatables work */
  assert_int_equal(select_for(f, "/finalizer", &mask), 0);
  assert_int_equal(select_for(f, "/metatable", &mask), 1);
  assert_int_equal(mask, BIT("newdb"));
}

/* ---- munge_headers ---------------------------------------------------- */

static void base_headers(kg_hdrs *h) {
  kg_hdrs_reset(h);
  kg_hdrs_add(h, "Host", 4, "example.com", 11);
  kg_hdrs_add(h, "X-Foo", 5, "1", 1);
  kg_hdrs_add(h, "Accept", 6, "a", 1);
  kg_hdrs_add(h, "accept", 6, "b", 1);
  kg_hdrs_add(h, "X-Del", 5, "z", 1);
}

/* Renders the fields as "Name: value|Name: value" for comparing. */
static char *render(const kg_hdrs *h) {
  static char out[1024];
  out[0] = '\0';
  for (size_t i = 0; i < h->n; i++) {
    if (i) strcat(out, "|");
    strcat(out, kg_hdrs_name(h, i));
    strcat(out, ": ");
    strcat(out, kg_hdrs_value(h, i));
  }
  return out;
}

static int munge(fixture *f, const char *backend, const char *path, kg_hdrs *h) {
  kg_req_view r = req_for("GET", path, h);
  return kg_hooks_munge_headers(f->hooks, backend, &r, h);
}

static void test_munge_basic(void **state) {
  fixture *f = *state;
  kg_hdrs h = KG_HDRS_INIT;
  base_headers(&h);
  assert_int_equal(munge(f, "newdb", "/basic", &h), 1);
  assert_string_equal(render(&h),
                      "Host: example.com|X-Foo: 2|Accept: a|accept: b|"
                      "X-New: n|Another: 5|X-Shadow: 1");
  base_headers(&h);
  assert_int_equal(munge(f, "production", "/basic", &h), 1);
  assert_string_equal(render(&h),
                      "Host: example.com|X-Foo: 2|Accept: a|accept: b|"
                      "X-New: n|Another: 5");
  /* a hook that changes nothing leaves every field as it was */
  base_headers(&h);
  assert_int_equal(munge(f, "newdb", "/nothing", &h), 1);
  assert_string_equal(render(&h),
                      "Host: example.com|X-Foo: 1|Accept: a|accept: b|X-Del: z");
  kg_hdrs_free(&h);
}

static void test_munge_duplicates_and_readd(void **state) {
  fixture *f = *state;
  kg_hdrs h = KG_HDRS_INIT;
  base_headers(&h);
  assert_int_equal(munge(f, "newdb", "/replace-dup", &h), 1);
  assert_string_equal(render(&h),
                      "Host: example.com|X-Foo: 1|Accept: c|X-Del: z");
  base_headers(&h);
  assert_int_equal(munge(f, "newdb", "/delete-dup", &h), 1);
  assert_string_equal(render(&h), "Host: example.com|X-Foo: 1|X-Del: z");
  base_headers(&h);
  assert_int_equal(munge(f, "newdb", "/readd", &h), 1);
  assert_string_equal(render(&h),
                      "Host: example.com|X-Foo: back|Accept: a|accept: b|"
                      "X-Del: z");
  /* starting from no fields at all */
  kg_hdrs_reset(&h);
  assert_int_equal(munge(f, "newdb", "/inject-caught", &h), 1);
  assert_string_equal(render(&h), "X-Ok: 1");
  kg_hdrs_free(&h);
}

static void test_munge_rejects_injection(void **state) {
  fixture *f = *state;
  kg_hdrs h = KG_HDRS_INIT;
  const char *bad[] = {"/inject", "/inject-nul", "/inject-name",
                       "/inject-space", "/table-value", "/loop"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    base_headers(&h);
    assert_int_equal(munge(f, "newdb", bad[i], &h), 0);
    assert_string_equal(render(&h),
                        "Host: example.com|X-Foo: 1|Accept: a|accept: b|"
                        "X-Del: z");
  }
  /* the assignment was refused; what the hook did afterwards stands */
  base_headers(&h);
  assert_int_equal(munge(f, "newdb", "/inject-caught", &h), 1);
  assert_string_equal(render(&h),
                      "Host: example.com|X-Foo: 1|Accept: a|accept: b|"
                      "X-Del: z|X-Ok: 1");
  kg_hdrs_free(&h);
}

static void test_munge_framing_headers(void **state) {
  fixture *f = *state;
  kg_hdrs h = KG_HDRS_INIT;
  const char *bad[] = {"/content-length", "/te"};
  for (size_t i = 0; i < 2; i++) {
    kg_hdrs_reset(&h);
    kg_hdrs_add(&h, "Content-Length", 14, "5", 1);
    assert_int_equal(munge(f, "newdb", bad[i], &h), 0);
    assert_string_equal(render(&h), "Content-Length: 5");
  }
  /* setting the same value is harmless */
  assert_int_equal(munge(f, "newdb", "/same-cl", &h), 1);
  assert_string_equal(render(&h), "Content-Length: 5");
  kg_hdrs_free(&h);
}

/* ---- on_backends_finished --------------------------------------------- */

static void test_finished(void **state) {
  fixture *f = *state;
  kg_hdrs ph = KG_HDRS_INIT;
  kg_hdrs_add(&ph, "Content-Type", 12, "text/plain", 10);
  kg_resp_view rs[2] = {
      {.backend = "production", .status = 200, .hdrs = &ph, .body = "hello!",
       .body_len = 5, .elapsed = 0.25},
      {.backend = "newdb", .status = 0, .error = "timeout", .elapsed = 10},
  };
  kg_req_view r = req_for("GET", "/fin", NULL);
  uint64_t mask;
  assert_int_equal(select_for(f, "/count", &mask), 1);
  assert_int_equal(mask, 0);

  assert_int_equal(kg_hooks_backends_finished(f->hooks, &r, rs, 2, NULL), 1);
  /* the hook's global shows it ran exactly once */
  assert_int_equal(select_for(f, "/count", &mask), 1);
  assert_int_equal(mask, BIT("other"));

  /* wrong values make the hook's asserts fail: 0, and the count stays */
  rs[0].status = 500;
  assert_int_equal(kg_hooks_backends_finished(f->hooks, &r, rs, 2, NULL), 0);
  rs[0].status = 200;
  rs[0].body_len = 6;
  assert_int_equal(kg_hooks_backends_finished(f->hooks, &r, rs, 2, NULL), 0);
  assert_int_equal(kg_hooks_backends_finished(f->hooks, &r, rs, 1, NULL), 0);
  assert_int_equal(select_for(f, "/count", &mask), 1);
  assert_int_equal(mask, BIT("other"));
  kg_hdrs_free(&ph);
}

/* ---- configs without hooks, and config drift ------------------------- */

static int setup_nohooks(void **state) {
  return setup_text(state,
                    "return { backends = { p = { url = 'http://127.0.0.1:1', "
                    "master = true } } }\n");
}

static void test_no_hooks(void **state) {
  fixture *f = *state;
  assert_non_null(f->hooks);
  uint64_t mask = 7;
  kg_hdrs h = KG_HDRS_INIT;
  base_headers(&h);
  kg_req_view r = req_for("GET", "/", &h);
  assert_int_equal(kg_hooks_select_backends(f->hooks, &r, &mask), 0);
  assert_int_equal(mask, 7);
  assert_int_equal(kg_hooks_munge_headers(f->hooks, "p", &r, &h), 0);
  assert_int_equal(h.n, 5);
  assert_int_equal(kg_hooks_backends_finished(f->hooks, &r, NULL, 0, NULL), 0);
  assert_int_equal(kg_hooks_select_backends(NULL, &r, &mask), 0);
  kg_hooks_free(NULL);
  kg_hdrs_free(&h);
}

static int setup_only_select(void **state) {
  return setup_text(state,
                    "return { backends = { p = { url = 'http://127.0.0.1:1', "
                    "master = true } },\n"
                    "  select_backends = function() return { 'p' } end }\n");
}

static void test_only_select(void **state) {
  fixture *f = *state;
  uint64_t mask = 0;
  kg_hdrs h = KG_HDRS_INIT;
  base_headers(&h);
  kg_req_view r = req_for("GET", "/", &h);
  assert_int_equal(kg_hooks_select_backends(f->hooks, &r, &mask), 1);
  assert_int_equal(mask, 1);
  assert_int_equal(kg_hooks_munge_headers(f->hooks, "p", &r, &h), 0);
  assert_int_equal(h.n, 5);
  kg_hdrs_free(&h);
}

static void test_config_changed_on_disk(void **state) {
  char *path = write_tmp("return { backends = { p = { url = "
                         "'http://127.0.0.1:1', master = true } },\n"
                         "  munge_headers = function() end }\n");
  char err[512] = "", want[512];
  kg_config *cfg = NULL;
  kg_hooks *h = NULL;
  assert_int_equal(kg_config_load(path, &cfg, err, sizeof(err)), 0);
  FILE *fp = fopen(path, "w");
  fputs("return { backends = {} }\n", fp);
  fclose(fp);
  int rc = kg_hooks_new(cfg, &h, err, sizeof(err));
  snprintf(want, sizeof(want),
           "%s: munge_headers is no longer a function (the file changed after "
           "it was checked?)",
           path);
  fp = fopen(path, "w");
  fputs("return {\n  x = ,\n}\n", fp);
  fclose(fp);
  char err2[512] = "", want2[512];
  int rc2 = kg_hooks_new(cfg, &h, err2, sizeof(err2));
  snprintf(want2, sizeof(want2), "%s:2: unexpected symbol near ','", path);
  unlink(path);
  free(path);
  kg_config_free(cfg);
  assert_int_equal(rc, -1);
  assert_int_equal(rc2, -1);
  assert_null(h);
  assert_string_equal(err, want);
  assert_string_equal(err2, want2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_select_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_select_nil_and_bad_shapes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_select_req_fields, setup, teardown),
      cmocka_unit_test_setup_teardown(test_select_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_select_budget, setup, teardown),
      cmocka_unit_test_setup_teardown(test_munge_basic, setup, teardown),
      cmocka_unit_test_setup_teardown(test_munge_duplicates_and_readd, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_munge_rejects_injection, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_munge_framing_headers, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_finished, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_hooks, setup_nohooks, teardown),
      cmocka_unit_test_setup_teardown(test_only_select, setup_only_select,
                                      teardown),
      cmocka_unit_test(test_config_changed_on_disk),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
