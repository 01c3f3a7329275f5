/* test_config.c: kg_config_load, kg_config_locate and kg_config_read_secret
 * (kg_addr_parse is in test_parse.c).
 *
 * Configs are written to temp files; error messages are compared whole,
 * line numbers included, because "FILE:LINE: keypath: message" is the
 * contract `kagami check` users and scripts rely on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <http_parser.h>

#include "config/config.h"
#include "net/conn.h"

/* Writes text to a fresh /tmp/kagami-cfg-XXXXXX.lua; caller frees the
 * returned path and unlinks the file. */
static char *write_tmp(const char *text) {
  char *path = strdup("/tmp/kagami-cfg-XXXXXX.lua");
  int fd = mkstemps(path, 4);
  assert_true(fd >= 0);
  size_t len = strlen(text);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  close(fd);
  return path;
}

/* Loads text, expecting success. */
static kg_config *load_ok(const char *text) {
  char *path = write_tmp(text);
  char err[1024] = "";
  kg_config *cfg = NULL;
  int rc = kg_config_load(path, &cfg, err, sizeof(err));
  unlink(path);
  free(path);
  if (rc != 0) fail_msg("unexpected error: %s", err);
  assert_non_null(cfg);
  return cfg;
}

/* Loads text, expecting the error "<path><suffix>". Cleans up before
 * asserting so a failing test does not also report a leak. */
static void expect_error(const char *text, const char *suffix) {
  char *path = write_tmp(text);
  char err[1024] = "", want[1024];
  kg_config *cfg = (kg_config *)&want; /* must be reset to NULL */
  int rc = kg_config_load(path, &cfg, err, sizeof(err));
  snprintf(want, sizeof(want), "%s%s", path, suffix);
  unlink(path);
  free(path);
  assert_int_equal(rc, -1);
  assert_null(cfg);
  assert_string_equal(err, want);
}

/* Same, comparing only the start of the message (resolver wording varies). */
static void expect_error_prefix(const char *text, const char *suffix) {
  char *path = write_tmp(text);
  char err[1024] = "", want[1024];
  kg_config *cfg = NULL;
  int rc = kg_config_load(path, &cfg, err, sizeof(err));
  snprintf(want, sizeof(want), "%s%s", path, suffix);
  unlink(path);
  free(path);
  assert_int_equal(rc, -1);
  assert_null(cfg);
  if (strncmp(err, want, strlen(want)) != 0)
    fail_msg("got \"%s\", want a message starting \"%s\"", err, want);
}

#define MASTER_ONLY \
  "  backends = { p = { url = \"http://127.0.0.1:9001\", master = true } },\n"

/* ---- defaults and a full config -------------------------------------- */

static void test_defaults_when_minimal(void **state) {
  kg_config *cfg = load_ok(
      "return {\n"
      "  backends = {\n"
      "    production = { url = \"http://127.0.0.1:9001\", master = true },\n"
      "  },\n"
      "}\n");
  assert_int_equal(cfg->nlisten, 1);
  assert_string_equal(cfg->listen[0].text, "127.0.0.1:8090");
  assert_string_equal(cfg->listen[0].host, "127.0.0.1");
  assert_int_equal(cfg->listen[0].port, 8090);
  assert_int_equal(cfg->listen[0].sa.ss_family, AF_INET);
  assert_true(cfg->client_timeout_ms == 15000);
  assert_true(cfg->backend_timeout_ms == 10000);
  assert_int_equal(cfg->nbackends, 1);
  assert_string_equal(cfg->backends[0].name, "production");
  assert_string_equal(cfg->backends[0].url, "http://127.0.0.1:9001");
  assert_int_equal(cfg->backends[0].addr.port, 9001);
  assert_true(cfg->backends[0].master);
  assert_int_equal(cfg->shadow_methods, (1ULL << HTTP_GET) | (1ULL << HTTP_HEAD));
  assert_true(cfg->sample == 1.0);
  assert_null(cfg->diff_log);
  assert_int_equal(cfg->max_capture_bytes, 8u << 20);
  assert_int_equal(cfg->max_header_bytes, 64u << 10);
  assert_int_equal(cfg->max_headers, 100);
  assert_int_equal(cfg->max_body_bytes, 16u << 20);
  assert_int_equal(cfg->max_connections, 10000);
  assert_int_equal(cfg->shadow_max_inflight, 1000);
  assert_int_equal(cfg->workers, 1);
  assert_int_equal(cfg->hook_budget, 1000000);
  assert_false(cfg->has_select_backends);
  assert_false(cfg->has_munge_headers);
  assert_false(cfg->has_on_backends_finished);
  assert_true(strstr(cfg->path, "/tmp/kagami-cfg-") == cfg->path);
  kg_config_free(cfg);
}

static void test_full_config(void **state) {
  kg_config *cfg = load_ok(
      "local base = 'http://127.0.0.1:'\n"
      "return {\n"
      "  listen = { \"127.0.0.1:8090\", \"[::1]:8091\", \"localhost:8092\" },\n"
      "  client_timeout = 2.5,\n"
      "  backend_timeout = 3,\n"
      "  backends = {\n"
      "    zeta  = { url = base .. '9004/' },\n"
      "    prod  = { url = base .. '9001', master = true },\n"
      "    alpha = { url = 'http://localhost:9002', master = false },\n"
      "    ['m-1'] = { url = base .. '9003' },\n"
      "  },\n"
      "  shadow_methods = { 'GET', 'POST', 'M-SEARCH' },\n"
      "  sample = 0.25,\n"
      "  diff_log = 'diffs.jsonl',\n"
      "  max_capture_bytes = '1MiB',\n"
      "  max_header_bytes = 32768,\n"
      "  max_headers = 50,\n"
      "  max_body_bytes = '2GiB',\n"
      "  max_connections = 1e3,\n"
      "  shadow_max_inflight = 7,\n"
      "  workers = 64,\n"
      "  hook_budget = 5000,\n"
      "  select_backends = function(req) return nil end,\n"
      "  munge_headers = function() end,\n"
      "  on_backends_finished = function() end,\n"
      "}\n");
  assert_int_equal(cfg->nlisten, 3);
  assert_string_equal(cfg->listen[1].host, "::1");
  assert_int_equal(cfg->listen[1].port, 8091);
  assert_int_equal(cfg->listen[1].sa.ss_family, AF_INET6);
  /* localhost: the IPv4 address is preferred */
  assert_int_equal(cfg->listen[2].sa.ss_family, AF_INET);
  assert_true(cfg->client_timeout_ms == 2500);
  assert_true(cfg->backend_timeout_ms == 3000);
  /* master first, then shadows by name */
  assert_int_equal(cfg->nbackends, 4);
  assert_string_equal(cfg->backends[0].name, "prod");
  assert_string_equal(cfg->backends[1].name, "alpha");
  assert_string_equal(cfg->backends[2].name, "m-1");
  assert_string_equal(cfg->backends[3].name, "zeta");
  assert_true(cfg->backends[0].master);
  assert_false(cfg->backends[1].master);
  assert_string_equal(cfg->backends[3].url, "http://127.0.0.1:9004/");
  assert_int_equal(cfg->backends[3].addr.port, 9004);
  assert_string_equal(cfg->backends[1].addr.host, "localhost");
  assert_int_equal(kg_config_backend_index(cfg, "m-1"), 2);
  assert_int_equal(kg_config_backend_index(cfg, "prod"), 0);
  assert_int_equal(kg_config_backend_index(cfg, "nope"), -1);
  assert_int_equal(cfg->shadow_methods, (1ULL << HTTP_GET) | (1ULL << HTTP_POST) |
                                            (1ULL << HTTP_MSEARCH));
  assert_true(cfg->sample == 0.25);
  assert_string_equal(cfg->diff_log, "diffs.jsonl");
  assert_int_equal(cfg->max_capture_bytes, 1u << 20);
  assert_int_equal(cfg->max_header_bytes, 32768);
  assert_int_equal(cfg->max_headers, 50);
  assert_int_equal(cfg->max_body_bytes, (size_t)2 << 30);
  assert_int_equal(cfg->max_connections, 1000);
  assert_int_equal(cfg->shadow_max_inflight, 7);
  assert_int_equal(cfg->workers, 64);
  assert_int_equal(cfg->hook_budget, 5000);
  assert_true(cfg->has_select_backends);
  assert_true(cfg->has_munge_headers);
  assert_true(cfg->has_on_backends_finished);
  kg_config_free(cfg);
}

static void test_listen_string_and_empty_methods(void **state) {
  kg_config *cfg = load_ok("return {\n"
                           "  listen = '0.0.0.0:9999',\n"
                           "  shadow_methods = {},\n"
                           "  sample = 0,\n" MASTER_ONLY "}\n");
  assert_int_equal(cfg->nlisten, 1);
  assert_int_equal(cfg->listen[0].port, 9999);
  assert_int_equal(cfg->shadow_methods, 0);
  assert_true(cfg->sample == 0.0);
  kg_config_free(cfg);
}

/* ---- sizes ------------------------------------------------------------ */

static size_t load_body_size(const char *value) {
  char text[512];
  snprintf(text, sizeof(text),
           "return {\n  max_body_bytes = %s,\n" MASTER_ONLY "}\n", value);
  kg_config *cfg = load_ok(text);
  size_t n = cfg->max_body_bytes;
  kg_config_free(cfg);
  return n;
}

static void test_size_strings(void **state) {
  assert_int_equal(load_body_size("'512'"), 512);
  assert_int_equal(load_body_size("512"), 512);
  assert_int_equal(load_body_size("'512B'"), 512);
  assert_int_equal(load_body_size("'64KiB'"), 64 * 1024);
  assert_int_equal(load_body_size("'8MiB'"), 8 * 1024 * 1024);
  assert_int_equal(load_body_size("'8 mib'"), 8 * 1024 * 1024);
  assert_int_equal(load_body_size("'2GiB'"), (size_t)2 << 30);
  assert_int_equal(load_body_size("'1TiB'"), (size_t)1 << 40);
  assert_int_equal(load_body_size("1e6"), 1000000);

  const char *bad[] = {"'8MB'", "'abc'", "'0'", "0", "-1", "1.5", "'1.5MiB'",
                       "''", "'MiB'", "true", "{}", "'8 MiB x'"};
  const char *shown[] = {"\"8MB\"", "\"abc\"", "\"0\"", "0", "-1", "1.5",
                         "\"1.5MiB\"", "\"\"", "\"MiB\"", "true", "a table",
                         "\"8 MiB x\""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char text[512], want[512];
    snprintf(text, sizeof(text),
             "return {\n" MASTER_ONLY "  max_body_bytes = %s,\n}\n", bad[i]);
    snprintf(want, sizeof(want),
             ":3: max_body_bytes: expected a positive size such as 512, "
             "\"64KiB\", \"8MiB\" or \"2GiB\", got %s",
             shown[i]);
    expect_error(text, want);
  }
  expect_error("return {\n" MASTER_ONLY
               "  max_capture_bytes = '99999999999999999999KiB',\n}\n",
               ":3: max_capture_bytes: size \"99999999999999999999KiB\" is too "
               "large");
  expect_error("return {\n" MASTER_ONLY "  max_capture_bytes = '20000000TiB',\n}\n",
               ":3: max_capture_bytes: size \"20000000TiB\" is too large");
}

/* ---- errors ----------------------------------------------------------- */

static void test_missing_master(void **state) {
  expect_error("return {\n"
               "  backends = {\n"
               "    a = { url = \"http://127.0.0.1:9001\" },\n"
               "    b = { url = \"http://127.0.0.1:9002\" },\n"
               "  },\n"
               "}\n",
               ":2: backends: no master backend (set master = true on exactly "
               "one)");
}

static void test_two_masters(void **state) {
  expect_error("return {\n"
               "  backends = {\n"
               "    b = { url = \"http://127.0.0.1:9002\", master = true },\n"
               "    c = { url = \"http://127.0.0.1:9003\" },\n"
               "    a = { url = \"http://127.0.0.1:9001\",\n"
               "          master = true },\n"
               "  },\n"
               "}\n",
               ":3: backends: more than one master: 'a' and 'b' (exactly one "
               "backend has master = true)");
}

static void test_bad_url(void **state) {
  expect_error("return {\n"
               "  listen = \"127.0.0.1:8090\",\n"
               "  backends = {\n"
               "    production = { url = \"http://127.0.0.1:9001\", master = true },\n"
               "    newdb = {\n"
               "      url = \"localhost\",\n"
               "    },\n"
               "  },\n"
               "}\n",
               ":6: backends.newdb.url: expected http://host:port, https://host:port or "
               "unix:/path, got "
               "\"localhost\"");
  /* https is a transport now (test_tls_config); tls settings on a plain
   * url would silently mean nothing. */
  expect_error("return {\n"
               "  backends = {\n"
               "    p = { url = 'http://127.0.0.1:9001', master = true,\n"
               "          tls = { verify = false } },\n"
               "  },\n"
               "}\n",
               ":4: backends.p.tls: tls settings need an https:// url, got "
               "http://127.0.0.1:9001");
  expect_error("return {\n"
               "  backends = {\n"
               "    p = { url = 'http://127.0.0.1', master = true },\n"
               "  },\n"
               "}\n",
               ":3: backends.p.url: expected http://host:port (the port is "
               "required), got \"http://127.0.0.1\"");
  expect_error("return {\n"
               "  backends = {\n"
               "    p = { url = 'http://127.0.0.1:9001/api', master = true },\n"
               "  },\n"
               "}\n",
               ":3: backends.p.url: a path after host:port is not supported "
               "yet, got \"http://127.0.0.1:9001/api\"");
  expect_error("return {\n"
               "  backends = {\n"
               "    p = { url = 'http://127.0.0.1:99999', master = true },\n"
               "  },\n"
               "}\n",
               ":3: backends.p.url: invalid port in \"127.0.0.1:99999\" "
               "(expected 1-65535)");
  expect_error("return {\n"
               "  backends = {\n"
               "    p = { url = 9001, master = true },\n"
               "  },\n"
               "}\n",
               ":3: backends.p.url: expected http://host:port, got 9001");
  expect_error("return {\n"
               "  backends = {\n"
               "    p = { master = true },\n"
               "  },\n"
               "}\n",
               ":3: backends.p.url: missing (expected \"http://host:port\")");
  expect_error_prefix("return {\n"
                      "  backends = {\n"
                      "    p = { url = 'http://no-such-host.invalid:80', "
                      "master = true },\n"
                      "  },\n"
                      "}\n",
                      ":3: backends.p.url: cannot resolve host "
                      "\"no-such-host.invalid\": ");
}

static void test_backend_shapes(void **state) {
  expect_error("return {\n"
               "  backends = {\n"
               "    p = { url = 'http://127.0.0.1:9001', maser = true },\n"
               "  },\n"
               "}\n",
               ":3: backends.p: unknown key 'maser' (did you mean 'master'?)");
  expect_error("return {\n"
               "  backends = {\n"
               "    p = { url = 'http://127.0.0.1:9001', master = 1 },\n"
               "  },\n"
               "}\n",
               ":3: backends.p.master: expected true or false, got 1");
  expect_error("return {\n"
               "  backends = {\n"
               "    p = 'http://127.0.0.1:9001',\n"
               "  },\n"
               "}\n",
               ":3: backends.p: expected a table like { url = "
               "\"http://host:port\" }, got \"http://127.0.0.1:9001\"");
  expect_error("return {\n"
               "  backends = {\n"
               "    ['a b'] = { url = 'http://127.0.0.1:9001', master = true },\n"
               "  },\n"
               "}\n",
               ":2: backends: invalid backend name \"a b\" (use letters, "
               "digits, '_' and '-')");
  expect_error("return {\n"
               "  backends = { { url = 'http://127.0.0.1:9001' } },\n"
               "}\n",
               ":2: backends: expected name = { url = ... } entries, got an "
               "entry [1]");
  expect_error("return {\n  backends = {},\n}\n",
               ":2: backends: no backends defined");
  expect_error("return {\n  listen = '127.0.0.1:1',\n}\n",
               ":1: backends: missing (define at least one backend, one with "
               "master = true)");
  char text[4096] = "return {\n  backends = {\n";
  for (int i = 0; i <= KG_MAX_BACKENDS; i++) {
    char line[128];
    snprintf(line, sizeof(line),
             "    b%02d = { url = 'http://127.0.0.1:%d'%s },\n", i, 9000 + i,
             i == 0 ? ", master = true" : "");
    strcat(text, line);
  }
  strcat(text, "  },\n}\n");
  expect_error(text, ":2: backends: too many backends (33, at most 32)");
}

static void test_duplicate_listen(void **state) {
  expect_error("return {\n"
               "  listen = { \"127.0.0.1:8090\",\n"
               "             \"127.0.0.1:8090\" },\n" MASTER_ONLY "}\n",
               ":2: listen: duplicate listen address 127.0.0.1:8090");
  expect_error("return {\n"
               "  listen = { \"127.0.0.1:8090\", \"localhost:8090\" },\n"
               MASTER_ONLY "}\n",
               ":2: listen: duplicate listen address localhost:8090 (same as "
               "127.0.0.1:8090)");
  expect_error("return {\n  listen = {},\n" MASTER_ONLY "}\n",
               ":2: listen: expected at least one address");
  expect_error("return {\n  listen = { '127.0.0.1:1', true },\n" MASTER_ONLY "}\n",
               ":2: listen: expected \"host:port\" or a port number, got true");
  expect_error("return {\n  listen = 1.5,\n" MASTER_ONLY "}\n",
               ":2: listen: expected \"host:port\" or a port number, got 1.5");
  expect_error("return {\n  listen = { 8090, '127.0.0.1:8090' },\n" MASTER_ONLY "}\n",
               ":2: listen: duplicate listen address 127.0.0.1:8090");
  expect_error("return {\n  listen = 70000,\n" MASTER_ONLY "}\n",
               ":2: listen: invalid port in \"127.0.0.1:70000\" (expected 1-65535)");
  expect_error("return {\n  listen = '::1:80',\n" MASTER_ONLY "}\n",
               ":2: listen: IPv6 addresses go in brackets, e.g. "
               "\"[::1]:8080\", got \"::1:80\"");
}

/* A bare port means loopback, as for admin: alone, in a list, or as a
 * TLS entry's address. */
static void test_listen_bare_port(void **state) {
  kg_config *cfg = load_ok("return {\n  listen = 8290,\n" MASTER_ONLY "}\n");
  assert_int_equal(cfg->nlisten, 1);
  assert_string_equal(cfg->listen[0].text, "127.0.0.1:8290");
  assert_int_equal(cfg->listen[0].port, 8290);
  kg_config_free(cfg);
  cfg = load_ok("return {\n  listen = { 8290, '[::1]:8291', { address = 8292 } },\n"
                MASTER_ONLY "}\n");
  assert_int_equal(cfg->nlisten, 3);
  assert_string_equal(cfg->listen[0].text, "127.0.0.1:8290");
  assert_string_equal(cfg->listen[1].host, "::1");
  assert_string_equal(cfg->listen[2].text, "127.0.0.1:8292");
  kg_config_free(cfg);
}

static void test_unknown_key(void **state) {
  expect_error("return {\n" MASTER_ONLY
               "  on_backend_finished = function() end,\n"
               "}\n",
               ":3: unknown key 'on_backend_finished' (did you mean "
               "'on_backends_finished'?)");
  expect_error("return {\n" MASTER_ONLY "  completely_different = 1,\n}\n",
               ":3: unknown key 'completely_different'");
  /* Several unknown keys: the first one in the file is reported. */
  expect_error("return {\n" MASTER_ONLY
               "  zzz = 1,\n"
               "  samples = 1,\n"
               "  aaa = 1,\n"
               "}\n",
               ":3: unknown key 'zzz'");
  expect_error("return {\n" MASTER_ONLY "  'x',\n}\n",
               ":1: unexpected entry [1] (expected name = value)");
}

static void test_hook_not_function(void **state) {
  expect_error("return {\n" MASTER_ONLY "  select_backends = 'production',\n}\n",
               ":3: select_backends: expected a function, got \"production\"");
  expect_error("return {\n" MASTER_ONLY "  munge_headers = {},\n}\n",
               ":3: munge_headers: expected a function, got a table");
}

static void test_bad_numbers(void **state) {
  expect_error("return {\n" MASTER_ONLY "  sample = 1.5,\n}\n",
               ":3: sample: expected a number from 0 to 1, got 1.5");
  expect_error("return {\n" MASTER_ONLY "  sample = \"x\",\n}\n",
               ":3: sample: expected a number from 0 to 1, got \"x\"");
  expect_error("return {\n" MASTER_ONLY "  sample = 0/0,\n}\n",
               ":3: sample: expected a number from 0 to 1, got nan");
  expect_error("return {\n" MASTER_ONLY "  client_timeout = 0,\n}\n",
               ":3: client_timeout: expected a positive number of seconds, "
               "got 0");
  expect_error("return {\n" MASTER_ONLY "  backend_timeout = '10',\n}\n",
               ":3: backend_timeout: expected a positive number of seconds, "
               "got \"10\"");
  expect_error("return {\n" MASTER_ONLY "  workers = 65,\n}\n",
               ":3: workers: expected a whole number from 1 to 64, got 65");
  expect_error("return {\n" MASTER_ONLY "  hook_budget = 2.5,\n}\n",
               ":3: hook_budget: expected a positive whole number, got 2.5");
  expect_error("return {\n" MASTER_ONLY "  max_headers = -3,\n}\n",
               ":3: max_headers: expected a positive whole number, got -3");
  expect_error("return {\n" MASTER_ONLY "  diff_log = true,\n}\n",
               ":3: diff_log: expected a file path or false, got true");
  /* false turns it off, as store = false does */
  kg_config *cfg = load_ok("return {\n" MASTER_ONLY "  diff_log = false,\n}\n");
  assert_null(cfg->diff_log);
  kg_config_free(cfg);
}

static void test_bad_methods(void **state) {
  expect_error("return {\n" MASTER_ONLY "  shadow_methods = { 'GET', 'get' },\n}\n",
               ":3: shadow_methods: unknown method \"get\" (did you mean "
               "\"GET\"?)");
  expect_error("return {\n" MASTER_ONLY "  shadow_methods = { 'FETCH' },\n}\n",
               ":3: shadow_methods: unknown method \"FETCH\"");
  expect_error("return {\n" MASTER_ONLY "  shadow_methods = 'GET',\n}\n",
               ":3: shadow_methods: expected a list of method names like { "
               "\"GET\", \"HEAD\" }, got \"GET\"");
  expect_error("return {\n" MASTER_ONLY "  shadow_methods = { GET = true },\n}\n",
               ":3: shadow_methods: expected a list of method names like { "
               "\"GET\", \"HEAD\" }, got a table");
}

static void test_lua_errors_pass_through(void **state) {
  expect_error("return {\n  listen = ,\n}\n", ":2: unexpected symbol near ','");
  expect_error("local x = nil\nreturn x.y\n",
               ":2: attempt to index a nil value (local 'x')");
  expect_error("error('no position', 0)\n", ":1: no position");
  expect_error("error({})\n",
               ":1: the config raised an error that is not a string (table)");
}

/* A config that never finishes is stopped by an instruction budget instead
 * of hanging `kagami check` and reloads. Found by fuzz_config. */
static void test_endless_config(void **state) {
  expect_error("local n = 0\nwhile true do n = n + 1 end\n",
               ":2: the config ran for more than 100000000 Lua instructions "
               "(a loop that never ends?)");
}

/* Lua runs finalizers with hooks off, so an endless __gc would escape the
 * budget and hang the loader (or a worker): no finalizers at all. Other
 * metatables work as the base library's setmetatable makes them. */
static void test_no_finalizers(void **state) {
  expect_error("local t = {}\n"
               "setmetatable(t, { __gc = function() while true do end end })\n"
               "return t\n",
               ":2: __gc metamethods are not allowed in a config (a finalizer "
               "cannot be stopped if it never ends)");
  expect_error("debug.setmetatable({}, { __gc = print })\n",
               ":1: attempt to call a nil value (field 'setmetatable')");
  expect_error("local t = setmetatable({}, { __metatable = 'locked' })\n"
               "setmetatable(t, {})\n",
               ":2: cannot change a protected metatable");
  kg_config *cfg = load_ok("local defaults = { workers = 3 }\n"
                           "local t = setmetatable({" MASTER_ONLY "}, { __index = defaults })\n"
                           "assert(getmetatable(t).__index == defaults)\n"
                           "assert(setmetatable(t, nil) == t and getmetatable(t) == nil)\n"
                           "return setmetatable(t, { __index = defaults })\n");
  kg_config_free(cfg);
}

static void test_not_a_table(void **state) {
  expect_error("return 42\n", ":1: the config must return a table, got 42");
  expect_error("-- a comment: return {}\nlocal a = 'return'\n\nreturn a\n",
               ":4: the config must return a table, got \"return\"");
  expect_error("", ":1: the config must return a table, got nil");
}

static void test_missing_file(void **state) {
  char err[256];
  kg_config *cfg = NULL;
  assert_int_equal(kg_config_load("/nonexistent/kagami.lua", &cfg, err, sizeof(err)),
                   -1);
  assert_null(cfg);
  assert_string_equal(err,
                      "/nonexistent/kagami.lua: cannot read: No such file or "
                      "directory");
}

/* ---- kg_config_locate ------------------------------------------------- */

static const char locate_src[] =
    "-- backends = { in a comment }\n"                       /* 1 */
    "local s = \"backends = in a string\"\n"                 /* 2 */
    "--[==[ backends =\n"                                   /* 3 */
    "  still a comment ]] ]==]\n"                           /* 4 */
    "local t = [[ backends = long string\n"                 /* 5 */
    "]]\n"                                                  /* 6 */
    "return {\n"                                            /* 7 */
    "  backends = {\n"                                      /* 8 */
    "    [\"new-db\"] = { url = 'x' },\n"                   /* 9 */
    "    old = {\n"                                         /* 10 */
    "      my_url = 1, x = url == 2, s = 'url = 3',\n"      /* 11 */
    "      url\n"                                           /* 12 */
    "        = 'y',\n"                                      /* 13 */
    "    },\n"                                              /* 14 */
    "    [ 'single' ] = {},\n"                              /* 15 */
    "  },\n"                                                /* 16 */
    "  n = 0x1e,\n"                                         /* 17 */
    "  listen = { 'a', 'b' },\n"                            /* 18 */
    "}\n";                                                  /* 19 */

static void test_locate(void **state) {
  assert_int_equal(kg_config_locate(locate_src, "backends"), 8);
  assert_int_equal(kg_config_locate(locate_src, "backends.new-db"), 9);
  assert_int_equal(kg_config_locate(locate_src, "backends.new-db.url"), 9);
  assert_int_equal(kg_config_locate(locate_src, "backends.old"), 10);
  assert_int_equal(kg_config_locate(locate_src, "backends.old.url"), 12);
  assert_int_equal(kg_config_locate(locate_src, "backends.single"), 15);
  /* deepest component found */
  assert_int_equal(kg_config_locate(locate_src, "backends.old.nope"), 10);
  assert_int_equal(kg_config_locate(locate_src, "backends.missing.url"), 8);
  /* list indexes are skipped */
  assert_int_equal(kg_config_locate(locate_src, "listen.2"), 18);
  assert_int_equal(kg_config_locate(locate_src, "e"), 0);
  assert_int_equal(kg_config_locate(locate_src, "nope"), 0);
  assert_int_equal(kg_config_locate(locate_src, ""), 0);
  assert_int_equal(kg_config_locate("", "x"), 0);
  assert_int_equal(kg_config_locate("x = 'unterminated\ny = 1", "y"), 2);
  assert_int_equal(kg_config_locate("a = \"esc\\\"aped\\\nx = 1\"\nx = 2", "x"), 3);
  /* A long string inside an earlier list entry counts its lines once
   * (found by fuzz_config). */
  assert_int_equal(kg_config_locate("r = {\n  { i = [[\nx\ny\n]] },\n  { p = 1 },\n}\n",
                                    "r.2.p"),
                   6);
}

/* ---- TLS: https backends, the listener's table form ------------------- */

static void test_tls_config(void **state) {
  (void)state;
  /* An https url with no tls table: verified against the system store,
   * the url's host checked; the listener's table form alongside a plain
   * address. */
  kg_config *cfg = load_ok(
      "return {\n"
      "  listen = { '127.0.0.1:8090', { address = '127.0.0.1:8443' } },\n"
      "  backends = {\n"
      "    p = { url = 'https://localhost:9001', master = true },\n"
      "    s = { url = 'http://127.0.0.1:9002' },\n"
      "  },\n"
      "}\n");
  assert_int_equal(cfg->nlisten, 2);
  assert_null(cfg->listen_tls[0]);
  assert_null(cfg->listen_tls[1]); /* a table without tls is plain */
  assert_ptr_equal(cfg->backends[0].transport, &kg_conn_tls);
  assert_non_null(cfg->backends[0].tls);
  assert_true(cfg->backends[0].tls_cfg.verify);
  assert_int_equal(cfg->backends[0].tls_cfg.min_version, 12);
  assert_ptr_equal(cfg->backends[1].transport, &kg_conn_tcp);
  assert_null(cfg->backends[1].tls);
  kg_config_free(cfg);

  expect_error("return {\n"
               "  backends = { p = { url = 'https://localhost:9001', master = true,\n"
               "    tls = { ca = '/nonexistent/ca.pem' } } },\n"
               "}\n",
               ":3: backends.p.tls.ca: cannot read /nonexistent/ca.pem: No such file or "
               "directory");
  expect_error("return {\n"
               "  backends = { p = { url = 'https://localhost:9001', master = true,\n"
               "    tls = { min_version = '1.1' } } },\n"
               "}\n",
               ":3: backends.p.tls.min_version: expected \"1.2\" or \"1.3\", got "
               "\"1.1\"");
  expect_error("return {\n"
               "  backends = { p = { url = 'https://localhost:9001', master = true,\n"
               "    tls = { verfy = false } } },\n"
               "}\n",
               ":3: backends.p.tls: unknown key 'verfy' (did you mean 'verify'?)");
  expect_error("return {\n"
               "  backends = { p = { url = 'https://localhost:9001', master = true,\n"
               "    tls = { cert = '/etc/hostname' } } },\n"
               "}\n",
               ":3: backends.p.tls: a client certificate needs both cert and key");
  expect_error("return {\n"
               "  listen = { { address = '127.0.0.1:8443', tls = {} } },\n" MASTER_ONLY
               "}\n",
               ":2: listen.tls: a TLS listener needs both cert and key");
  expect_error("return {\n"
               "  listen = { { address = '127.0.0.1:8443', tsl = {} } },\n" MASTER_ONLY
               "}\n",
               ":2: listen: unknown key 'tsl'");
}

/* kg_config_read_secret: an environment variable, else a file's first
 * line (a trailing CR LF dropped); what is unset, missing or empty says so. */
static void test_read_secret(void **state) {
  (void)state;
  char err[256] = "";
  setenv("KG_TEST_SECRET", "postgresql://k:pw@db/x", 1);
  char *v = kg_config_read_secret("KG_TEST_SECRET", NULL, err, sizeof(err));
  assert_string_equal(v, "postgresql://k:pw@db/x");
  free(v);
  setenv("KG_TEST_SECRET", "", 1);
  assert_null(kg_config_read_secret("KG_TEST_SECRET", NULL, err, sizeof(err)));
  assert_string_equal(err, "environment variable KG_TEST_SECRET is not set");
  unsetenv("KG_TEST_SECRET");
  char *path = write_tmp("s3cret\r\nsecond line\n");
  v = kg_config_read_secret(NULL, path, err, sizeof(err));
  assert_string_equal(v, "s3cret");
  free(v);
  FILE *f = fopen(path, "w");
  fclose(f);
  assert_null(kg_config_read_secret(NULL, path, err, sizeof(err)));
  char want[300];
  snprintf(want, sizeof(want), "%s is empty", path);
  assert_string_equal(err, want);
  unlink(path);
  assert_null(kg_config_read_secret(NULL, path, err, sizeof(err)));
  snprintf(want, sizeof(want), "%s: No such file or directory", path);
  assert_string_equal(err, want);
  free(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_when_minimal),
      cmocka_unit_test(test_full_config),
      cmocka_unit_test(test_listen_string_and_empty_methods),
      cmocka_unit_test(test_size_strings),
      cmocka_unit_test(test_missing_master),
      cmocka_unit_test(test_two_masters),
      cmocka_unit_test(test_endless_config),
      cmocka_unit_test(test_no_finalizers),
      cmocka_unit_test(test_bad_url),
      cmocka_unit_test(test_tls_config),
      cmocka_unit_test(test_backend_shapes),
      cmocka_unit_test(test_duplicate_listen),
      cmocka_unit_test(test_listen_bare_port),
      cmocka_unit_test(test_unknown_key),
      cmocka_unit_test(test_hook_not_function),
      cmocka_unit_test(test_bad_numbers),
      cmocka_unit_test(test_bad_methods),
      cmocka_unit_test(test_lua_errors_pass_through),
      cmocka_unit_test(test_not_a_table),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_locate),
      cmocka_unit_test(test_read_secret),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
