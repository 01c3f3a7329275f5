/* report.c: `kagami report` and `kagami show` (see report.h).
 *
 * Both are thin: the numbers come from storeq.c as JSON; this file parses
 * the command line and lays the JSON out for a terminal. */
#include "cli/report.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cliopt.h"
#include "common/buf.h"
#include "common/common.h"
#include "config/config.h"
#include "results/pgread.h"
#include "results/pgstore.h"
#include "results/storeq.h"

#define KG_EXIT_OK 0
#define KG_EXIT_ERROR 1
#define KG_EXIT_EMPTY 2

#define KG_REPORT_MAX_NAME 60   /* endpoint column width cap */
#define KG_REPORT_MAX_LOC 100   /* a location printed at most this long */

static const char kg_report_usage[] =
    "usage: kagami report [--db FILE|URL | --config FILE] [--since DURATION]\n"
    "                     [--endpoint PATTERN] [--instance NAME]\n"
    "                     [--format text|json]\n"
    "\n"
    "Per endpoint: requests compared, how many differed, where they differed\n"
    "most, and master vs shadow latency (p50/p99) with the regression flag\n"
    "(a shadow's p90 over latency_regression x the master's, 20+ samples\n"
    "each). Endpoints are sorted by what most needs a look: latency\n"
    "regressions first, then by differing x difference rate. FLAG shows each\n"
    "shadow's p90 as a multiple of the master's, and SLOWER when flagged.\n"
    "\n"
    "  --db FILE|URL      the results store (default kagami.db), or a fleet's\n"
    "                     PostgreSQL store (postgresql://user@host/db; the\n"
    "                     password from PGPASSWORD or ~/.pgpass)\n"
    "  --config FILE      take the store and latency_regression from a\n"
    "                     kagami config (a relative store path is taken from\n"
    "                     the current directory, as `kagami run` would)\n"
    "  --instance NAME    PostgreSQL store: only what that kagami wrote\n"
    "                     (default: the whole fleet)\n"
    "  --since DURATION   only results of the last 30s, 15m, 2h, 7d, 1w...\n"
    "  --endpoint PATTERN only endpoints matching a glob (* ? [...]): on the\n"
    "                     whole name (\"GET /api/*\") or, without a space, on\n"
    "                     the path (\"/api/*\")\n"
    "  --format text|json an aligned table (default), or JSON\n"
    "\n"
    "exit status: 0 printed, 1 usage or store error, 2 no compared request\n"
    "matched\n";

static const char kg_show_usage[] =
    "usage: kagami show ID [--db FILE|URL | --config FILE] [--instance NAME]\n"
    "                  [--format text|json]\n"
    "\n"
    "One stored result: the request, each backend's status and latency, the\n"
    "differences and the unified diff (coloured on a terminal unless NO_COLOR\n"
    "is set). JSON includes the stored bodies (text, or base64). From a\n"
    "PostgreSQL store (a fleet's; --instance when two kagamis used one ID)\n"
    "the result is its diff log record: no headers or bodies.\n"
    "\n"
    "exit status: 0 printed, 1 usage or store error, 2 no result with that ID\n";

/* --- options ---------------------------------------------------------------------- */

typedef struct kg_report_opts {
  const char *db;        /* --db, or the config's store, or "kagami.db" */
  const char *config;    /* --config */
  const char *since;     /* --since as given */
  const char *endpoint;  /* --endpoint */
  const char *instance;  /* --instance (PostgreSQL stores) */
  bool pg;               /* db is a PostgreSQL url */
  bool json;             /* --format json */
  const char *id;        /* show: the positional ID */
  double factor;         /* latency_regression */
  kg_config *cfg;        /* owned when --config was given */
} kg_report_opts;

/* Parses argv for `cmd` ("report" or "show"). Returns -1 after a message
 * on stderr, 0 when parsed, 1 when help was printed. */
static int kg_report_args(const char *cmd, int argc, char **argv, kg_report_opts *o) {
  const char *usage = strcmp(cmd, "show") == 0 ? kg_show_usage : kg_report_usage;
  bool show = strcmp(cmd, "show") == 0;
  const char *format = "text";
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    int r = 0;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      return 1;
    }
    if ((r = kg_cli_opt(argc, argv, &i, "--db", &o->db)) ||
        (r = kg_cli_opt(argc, argv, &i, "--config", &o->config)) ||
        (r = kg_cli_opt(argc, argv, &i, "--format", &format)) ||
        (!show && (r = kg_cli_opt(argc, argv, &i, "--since", &o->since))) ||
        (!show && (r = kg_cli_opt(argc, argv, &i, "--endpoint", &o->endpoint))) ||
        (r = kg_cli_opt(argc, argv, &i, "--instance", &o->instance))) {
      if (r < 0) {
        fprintf(stderr, "kagami %s: %s needs a value\n%s", cmd, a, usage);
        return -1;
      }
      continue;
    }
    if (a[0] == '-' && a[1] != '\0') {
      fprintf(stderr, "kagami %s: unknown option '%s'\n%s", cmd, a, usage);
      return -1;
    }
    if (show && o->id == NULL) {
      o->id = a;
      continue;
    }
    fprintf(stderr, "kagami %s: unexpected argument '%s'\n%s", cmd, a, usage);
    return -1;
  }
  if (show && (o->id == NULL || o->id[0] == '\0')) {
    fprintf(stderr, "kagami show: which result? give its ID\n%s", usage);
    return -1;
  }
  if (strcmp(format, "json") == 0) o->json = true;
  else if (strcmp(format, "text") != 0) {
    fprintf(stderr, "kagami %s: --format must be text or json, got '%s'\n", cmd, format);
    return -1;
  }
  double d;
  if (o->since && kg_config_parse_duration(o->since, &d) < 0) {
    fprintf(stderr, "kagami %s: --since: expected a duration such as 30s, 15m, "
            "2h or 7d, got '%s'\n", cmd, o->since);
    return -1;
  }
  o->factor = KG_CONFIG_DEFAULT_LATENCY_REGRESSION;
  if (o->config) {
    char err[1024];
    if (kg_config_load(o->config, &o->cfg, err, sizeof(err)) < 0) {
      fprintf(stderr, "%s\n", err);
      return -1;
    }
    o->factor = o->cfg->latency_regression;
    if (o->db == NULL && o->cfg->store_url != NULL) o->db = o->cfg->store_url;
    if (o->db == NULL && o->cfg->store_path == NULL) {
      fprintf(stderr, "kagami %s: %s has the store turned off (store = false); "
              "give --db FILE\n", cmd, o->config);
      return -1;
    }
    if (o->db == NULL) o->db = o->cfg->store_path;
  }
  if (o->db == NULL) o->db = "kagami.db";
  o->pg = kg_config_is_pg_url(o->db);
  if (o->instance && !o->pg) {
    fprintf(stderr, "kagami %s: --instance: only a PostgreSQL store holds several "
            "instances\n", cmd);
    return -1;
  }
  return 0;
}

/* --- small text helpers ----------------------------------------------------------- */

typedef struct kg_style {
  bool on;
} kg_style;

/* Colour only for a person at a terminal, and never when NO_COLOR is set
 * (https://no-color.org: present and not empty). */
static kg_style kg_style_detect(void) {
  const char *nc = getenv("NO_COLOR");
  return (kg_style){.on = isatty(STDOUT_FILENO) && !(nc && *nc)};
}

static const char *kg_sgr(const kg_style *s, const char *code) {
  return s->on ? code : "";
}
#define KG_RED "\033[31m"
#define KG_GREEN "\033[32m"
#define KG_CYAN "\033[36m"
#define KG_BOLD "\033[1m"
#define KG_YELLOW "\033[33m"
#define KG_RESET "\033[0m"

static const char *kg_jstr(const json_t *o, const char *key, const char *dflt) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : dflt;
}

static void kg_fmt_time(double ts, char *out, size_t n) {
  time_t t = (time_t)ts;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A latency cell: "12.34" or "-" when unknown. */
static void kg_fmt_ms(const json_t *v, char *out, size_t n) {
  if (json_is_number(v)) snprintf(out, n, "%.2f", json_number_value(v));
  else snprintf(out, n, "-");
}

/* s cut to at most max bytes, with "..." when cut, on one line. */
static void kg_fmt_cut(const char *s, size_t max, kg_buf *out) {
  size_t n = strcspn(s, "\n");
  bool cut = n > max || s[n] == '\n';
  if (n > max) n = max > 3 ? max - 3 : max;
  kg_buf_append(out, s, n);
  if (cut) kg_buf_appends(out, "...");
}

/* Prints line without its trailing blanks (empty last columns), then
 * empties it. */
static void kg_emit(kg_buf *line) {
  size_t n = line->len;
  while (n && line->data[n - 1] == ' ') n--;
  printf("%.*s\n", (int)n, line->data ? line->data : "");
  kg_buf_reset(line);
}

/* --- report ------------------------------------------------------------------------ */

static int kg_report_text(const kg_report_opts *o, const json_t *r, double since) {
  kg_style st = kg_style_detect();
  const json_t *eps = json_object_get(r, "endpoints");
  long long compared = json_integer_value(json_object_get(r, "compared"));
  long long differing = json_integer_value(json_object_get(r, "differing"));
  long long errors = json_integer_value(json_object_get(r, "errors"));
  char when[64] = "";
  if (o->since) {
    char t[32];
    kg_fmt_time(since, t, sizeof(t));
    snprintf(when, sizeof(when), " since %s (last %s)", t, o->since);
  }
  /* Failures apart from differences: a dead shadow is not a behaviour
   * difference, and must not read as one. */
  printf("%sstore %s%s: %lld request%s compared, %lld differing (%.1f%%), %lld failed "
         "(%.1f%%)%s\n",
         kg_sgr(&st, KG_BOLD), o->db, kg_sgr(&st, KG_RESET), compared,
         compared == 1 ? "" : "s", differing,
         compared ? 100.0 * (double)differing / (double)compared : 0.0, errors,
         compared ? 100.0 * (double)errors / (double)compared : 0.0, when);
  if (o->endpoint) printf("endpoints matching %s\n", o->endpoint);
  if (o->instance) printf("instance %s only\n", o->instance);
  /* Column widths from the content (names are ASCII, see endpoint.h). */
  int wep = (int)strlen("ENDPOINT"), wbe = (int)strlen("BACKEND");
  size_t i, k;
  json_t *e, *b;
  json_array_foreach(eps, i, e) {
    wep = KG_MAX(wep, (int)KG_MIN(strlen(kg_jstr(e, "endpoint", "")), (size_t)KG_REPORT_MAX_NAME));
    json_array_foreach(json_object_get(e, "backends"), k, b)
      wbe = KG_MAX(wbe, (int)strlen(kg_jstr(b, "name", "")));
  }
  printf("\n%s%-*s  %8s  %9s  %6s  %-*s  %-6s  %8s  %8s  %6s  %s%s\n", kg_sgr(&st, KG_BOLD),
         wep, "ENDPOINT", "COMPARED", "DIFFERING", "RATE", wbe, "BACKEND", "ROLE",
         "P50 MS", "P99 MS", "ERRORS", "FLAG", kg_sgr(&st, KG_RESET));
  json_array_foreach(eps, i, e) {
    kg_buf name = KG_BUF_INIT;
    kg_fmt_cut(kg_jstr(e, "endpoint", ""), KG_REPORT_MAX_NAME, &name);
    char rate[16];
    snprintf(rate, sizeof(rate), "%.1f%%",
             100.0 * json_number_value(json_object_get(e, "difference_rate")));
    long long diff = json_integer_value(json_object_get(e, "differing"));
    const json_t *bes = json_object_get(e, "backends");
    if (json_array_size(bes) == 0) {
      printf("%-*s  %8lld  %9lld  %6s\n", wep, name.data,
             json_integer_value(json_object_get(e, "compared")), diff, rate);
    }
    kg_buf line = KG_BUF_INIT;
    json_array_foreach(bes, k, b) {
      char p50[32], p99[32];
      kg_fmt_ms(json_object_get(b, "p50_ms"), p50, sizeof(p50));
      kg_fmt_ms(json_object_get(b, "p99_ms"), p99, sizeof(p99));
      kg_buf flag = KG_BUF_INIT;
      const json_t *ratio = json_object_get(b, "p90_ratio");
      if (json_is_number(ratio)) {
        bool slow = json_is_true(json_object_get(b, "regression"));
        kg_buf_appendf(&flag, "%sp90 x%.2f%s%s", slow ? kg_sgr(&st, KG_RED) : "",
                       json_number_value(ratio), slow ? " SLOWER" : "",
                       slow ? kg_sgr(&st, KG_RESET) : "");
      }
      if (k == 0)
        kg_buf_appendf(&line, "%s%-*s%s  %8lld  %s%9lld  %6s%s  ", kg_sgr(&st, KG_BOLD), wep,
                       name.data, kg_sgr(&st, KG_RESET),
                       json_integer_value(json_object_get(e, "compared")),
                       diff ? kg_sgr(&st, KG_YELLOW) : "", diff, rate,
                       diff ? kg_sgr(&st, KG_RESET) : "");
      else
        kg_buf_appendf(&line, "%-*s  %8s  %9s  %6s  ", wep, "", "", "", "");
      kg_buf_appendf(&line, "%-*s  %-6s  %8s  %8s  %6lld  %s", wbe, kg_jstr(b, "name", ""),
                     kg_jstr(b, "role", ""), p50, p99,
                     json_integer_value(json_object_get(b, "errors")),
                     flag.data ? flag.data : "");
      kg_emit(&line);
      kg_buf_free(&flag);
    }
    kg_buf_free(&line);
    json_t *t;
    json_array_foreach(json_object_get(e, "top_differences"), k, t) {
      kg_buf loc = KG_BUF_INIT;
      kg_fmt_cut(kg_jstr(t, "location", ""), KG_REPORT_MAX_LOC, &loc);
      printf("  %s %6lld  %s\n", k == 0 ? "differing at" : "            ",
             json_integer_value(json_object_get(t, "count")), loc.data ? loc.data : "");
      kg_buf_free(&loc);
    }
    long long more = json_integer_value(json_object_get(e, "locations")) -
                     (long long)json_array_size(json_object_get(e, "top_differences"));
    if (more > 0) printf("               +%lld more location%s\n", more, more == 1 ? "" : "s");
    long long failed = json_integer_value(json_object_get(e, "errors"));
    if (failed > 0)
      printf("  %sfailed%s       %6lld  requests whose master or shadows failed (%.1f%%), "
             "not counted as differing\n", kg_sgr(&st, KG_RED), kg_sgr(&st, KG_RESET), failed,
             100.0 * json_number_value(json_object_get(e, "error_rate")));
    kg_buf_free(&name);
  }
  return KG_EXIT_OK;
}

int kg_report_main(int argc, char **argv) {
  kg_report_opts o = {0};
  int r = kg_report_args("report", argc, argv, &o);
  if (r != 0) {
    kg_config_free(o.cfg);
    return r > 0 ? KG_EXIT_OK : KG_EXIT_ERROR;
  }
  double since = 0;
  if (o.since) {
    double d = 0;
    kg_config_parse_duration(o.since, &d);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    since = (double)now.tv_sec + (double)now.tv_nsec / 1e9 - d;
  }
  char err[1024];
  kg_storeq *q = NULL;
  int rc = KG_EXIT_ERROR;
  int opened = o.pg ? kg_pgread_open(o.db, o.instance, since, 0, &q, err, sizeof(err))
                    : kg_storeq_open(o.db, &q, err, sizeof(err));
  if (opened < 0) {
    fprintf(stderr, "kagami report: %s\n", err);
    goto out;
  }
  /* a url may hold a password: print it masked */
  kg_buf label = KG_BUF_INIT;
  if (o.pg) kg_pgstore_mask(o.db, &label);
  else kg_buf_appends(&label, o.db);
  o.db = label.data;
  json_t *rep = kg_storeq_endpoints(q, since, o.endpoint, o.factor);
  if (rep == NULL) {
    fprintf(stderr, "kagami report: %s\n", kg_storeq_errmsg(q));
    kg_buf_free(&label);
    goto out;
  }
  if (o.instance) json_object_set_new(rep, "instance", json_string(o.instance));
  bool empty = json_array_size(json_object_get(rep, "endpoints")) == 0;
  if (o.json) {
    json_object_set_new(rep, "store", json_string(o.db));
    json_dumpf(rep, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    fputc('\n', stdout);
    rc = empty ? KG_EXIT_EMPTY : KG_EXIT_OK;
  } else if (empty) {
    printf("store %s: no compared requests%s%s%s%s%s\n", o.db,
           o.since ? " in the last " : "", o.since ? o.since : "",
           o.endpoint ? " for endpoints matching the pattern" : "",
           o.instance ? " from instance " : "", o.instance ? o.instance : "");
    rc = KG_EXIT_EMPTY;
  } else {
    rc = kg_report_text(&o, rep, since);
  }
  json_decref(rep);
  kg_buf_free(&label);
out:
  kg_storeq_close(q);
  kg_config_free(o.cfg);
  return rc;
}

/* --- show ---------------------------------------------------------------------------- */

/* Prints value v (may hold several lines) with a prefix on each line. */
static void kg_show_lines(const kg_style *st, const char *colour, const char *prefix,
                          const json_t *v) {
  const char *s = json_string_value(v);
  if (s == NULL) {
    printf("    %s%s(absent)%s\n", kg_sgr(st, colour), prefix, kg_sgr(st, KG_RESET));
    return;
  }
  do {
    size_t n = strcspn(s, "\n");
    printf("    %s%s%.*s%s\n", kg_sgr(st, colour), prefix, (int)n, s, kg_sgr(st, KG_RESET));
    s += n;
  } while (*s++ == '\n' && *s);
}

static void kg_show_headers(const json_t *list, const char *indent) {
  size_t i;
  json_t *h;
  json_array_foreach(list, i, h)
    printf("%s%s: %s\n", indent, json_string_value(json_array_get(h, 0)),
           json_string_value(json_array_get(h, 1)));
}

/* The unified diff, coloured like git's. */
static void kg_show_diff(const kg_style *st, const char *diff) {
  const char *p = diff;
  while (*p) {
    size_t n = strcspn(p, "\n");
    const char *c = "";
    if (strncmp(p, "--- ", 4) == 0 || strncmp(p, "+++ ", 4) == 0) c = KG_BOLD;
    else if (p[0] == '@' && p[1] == '@') c = KG_CYAN;
    else if (p[0] == '-') c = KG_RED;
    else if (p[0] == '+') c = KG_GREEN;
    printf("%s%.*s%s\n", kg_sgr(st, c), (int)n, p, *c ? kg_sgr(st, KG_RESET) : "");
    p += n;
    if (*p == '\n') p++;
  }
}

static void kg_show_text(const json_t *r) {
  kg_style st = kg_style_detect();
  bool equal = json_is_true(json_object_get(r, "equal"));
  printf("%sresult %s%s  %s\n", kg_sgr(&st, KG_BOLD), kg_jstr(r, "id", ""),
         kg_sgr(&st, KG_RESET), kg_jstr(r, "time", ""));
  printf("%s %s\n", kg_jstr(r, "method", ""), kg_jstr(r, "url", ""));
  printf("endpoint %s, compared as %s: %s%s%s%s\n", kg_jstr(r, "endpoint", ""),
         kg_jstr(r, "kind", "?"), kg_sgr(&st, equal ? KG_GREEN : KG_RED),
         equal ? "equal" : "DIFFERS", kg_sgr(&st, KG_RESET),
         json_is_true(json_object_get(r, "truncated"))
             ? " (a body was cut at max_capture_bytes)" : "");

  printf("\n%srequest headers%s\n", kg_sgr(&st, KG_BOLD), kg_sgr(&st, KG_RESET));
  kg_show_headers(json_object_get(r, "request_headers"), "  ");

  const json_t *bes = json_object_get(r, "backends");
  int wname = (int)strlen("BACKEND");
  size_t i;
  json_t *b;
  json_array_foreach(bes, i, b) wname = KG_MAX(wname, (int)strlen(kg_jstr(b, "name", "")));
  printf("\n%s  %-*s  %-9s  %6s  %10s  %10s  %s%s\n", kg_sgr(&st, KG_BOLD), wname,
         "BACKEND", "ROLE", "STATUS", "ELAPSED MS", "BYTES", "RESULT", kg_sgr(&st, KG_RESET));
  const json_t *slower = json_object_get(r, "latency_regression");
  json_array_foreach(bes, i, b) {
    char status[16] = "-", ms[32], bytes[32] = "-";
    if (json_is_integer(json_object_get(b, "status")))
      snprintf(status, sizeof(status), "%lld", json_integer_value(json_object_get(b, "status")));
    if (json_is_integer(json_object_get(b, "bytes")))
      snprintf(bytes, sizeof(bytes), "%lld", json_integer_value(json_object_get(b, "bytes")));
    kg_fmt_ms(json_object_get(b, "elapsed_ms"), ms, sizeof(ms));
    kg_buf res = KG_BUF_INIT;
    const char *error = kg_jstr(b, "error", NULL);
    const json_t *eq = json_object_get(b, "equal");
    if (error) kg_buf_appendf(&res, "%sfailed: %s%s", kg_sgr(&st, KG_RED), error, kg_sgr(&st, KG_RESET));
    else if (json_is_false(eq)) kg_buf_appendf(&res, "%sdiffers%s", kg_sgr(&st, KG_RED), kg_sgr(&st, KG_RESET));
    else if (json_is_true(eq)) kg_buf_appends(&res, "equal");
    if (kg_jstr(b, "compare_error", NULL))
      kg_buf_appendf(&res, " (not compared: %s)", kg_jstr(b, "compare_error", ""));
    if (json_is_true(json_object_get(b, "truncated"))) kg_buf_appends(&res, " (body cut)");
    size_t k;
    json_t *name;
    json_array_foreach(slower, k, name)
      if (strcmp(json_string_value(name), kg_jstr(b, "name", "")) == 0)
        kg_buf_appendf(&res, " %sslower (endpoint p90)%s", kg_sgr(&st, KG_YELLOW), kg_sgr(&st, KG_RESET));
    kg_buf line = KG_BUF_INIT;
    kg_buf_appendf(&line, "  %-*s  %-9s  %6s  %10s  %10s  %s", wname, kg_jstr(b, "name", ""),
                   kg_jstr(b, "role", ""), status, ms, bytes, res.data ? res.data : "");
    kg_emit(&line);
    kg_buf_free(&line);
    kg_buf_free(&res);
  }

  const json_t *diffs = json_object_get(r, "differences");
  const json_t *hdiffs = json_object_get(r, "header_differences");
  if (json_array_size(diffs) + json_array_size(hdiffs)) {
    printf("\n%sdifferences%s\n", kg_sgr(&st, KG_BOLD), kg_sgr(&st, KG_RESET));
    json_t *d;
    json_array_foreach(diffs, i, d) {
      printf("  %s%s%s (%s)\n", kg_sgr(&st, KG_CYAN), kg_jstr(d, "where", ""),
             kg_sgr(&st, KG_RESET), kg_jstr(d, "backend", ""));
      kg_show_lines(&st, KG_RED, "- ", json_object_get(d, "master"));
      kg_show_lines(&st, KG_GREEN, "+ ", json_object_get(d, "shadow"));
    }
    json_array_foreach(hdiffs, i, d) {
      printf("  %sheader %s%s (%s)\n", kg_sgr(&st, KG_CYAN), kg_jstr(d, "name", ""),
             kg_sgr(&st, KG_RESET), kg_jstr(d, "backend", ""));
      kg_show_lines(&st, KG_RED, "- ", json_object_get(d, "master"));
      kg_show_lines(&st, KG_GREEN, "+ ", json_object_get(d, "shadow"));
    }
  }
  const json_t *sup = json_object_get(r, "suppressed");
  if (json_array_size(sup)) {
    printf("\n%ssuppressed as noise%s\n", kg_sgr(&st, KG_BOLD), kg_sgr(&st, KG_RESET));
    json_t *s;
    json_array_foreach(sup, i, s) printf("  %s\n", json_string_value(s));
  }
  const char *diff = kg_jstr(r, "diff", "");
  if (*diff) {
    printf("\n%sdiff%s\n", kg_sgr(&st, KG_BOLD), kg_sgr(&st, KG_RESET));
    kg_show_diff(&st, diff);
  }
}

int kg_show_main(int argc, char **argv) {
  kg_report_opts o = {0};
  int r = kg_report_args("show", argc, argv, &o);
  if (r != 0) {
    kg_config_free(o.cfg);
    return r > 0 ? KG_EXIT_OK : KG_EXIT_ERROR;
  }
  char err[1024];
  kg_storeq *q = NULL;
  int rc = KG_EXIT_ERROR;
  kg_pgread_pick pick = {.instance = o.instance, .id = o.id};
  int opened = o.pg ? kg_pgread_open_results(o.db, &pick, &q, err, sizeof(err))
                    : kg_storeq_open(o.db, &q, err, sizeof(err));
  if (opened < 0) {
    fprintf(stderr, "kagami show: %s\n", err);
    goto out;
  }
  json_t *res = kg_storeq_result(q, o.id);
  if (res == NULL) {
    fprintf(stderr, "kagami show: %s\n", kg_storeq_errmsg(q));
    rc = kg_storeq_errcode(q) == KG_STOREQ_NOT_FOUND ? KG_EXIT_EMPTY : KG_EXIT_ERROR;
    goto out;
  }
  if (o.json) {
    json_dumpf(res, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    fputc('\n', stdout);
  } else {
    kg_show_text(res);
  }
  json_decref(res);
  rc = KG_EXIT_OK;
out:
  kg_storeq_close(q);
  kg_config_free(o.cfg);
  return rc;
}
