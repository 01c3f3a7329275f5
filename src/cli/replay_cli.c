/* replay_cli.c: the `kagami replay` command line: options in, the replay
 * engine (traffic/replay.h) run, the summary out, as text or with --json
 * as one object, and the exit status.
 *
 * A progress line is drawn on stderr when it is a terminal; the summary
 * (throughput, latency per endpoint, status codes, errors, comparison) is
 * printed on stdout at the end. Where reading stopped in a damaged file is
 * always printed on stderr.
 *
 * Exit status: 0 when the run completed, whatever the target answered;
 * 1 on usage or I/O errors; 2 when --strict and the input is damaged. */
#include "cli/replay_cli.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/common.h"
#include "common/histogram.h"
#include "traffic/replay.h"
#include "traffic/source.h"

static const char kg_replay_cli_usage[] =
    "usage: kagami replay FILE --target http[s]://host:port [options]\n"
    "\n"
    "Sends the requests in FILE to the target and reports throughput, latency per\n"
    "endpoint, status codes and errors. FILE is a WARC recording (kagami's\n"
    "`record = {...}`, or another tool's .warc / .warc.gz), a list of URLs (one per\n"
    "line), or an nginx access log in the combined format (GET requests only).\n"
    "\n"
    "options:\n"
    "  --target URL        where to send: http://host:port or https://host:port\n"
    "                      (required)\n"
    "  --ca FILE           https: trust these CAs (PEM) instead of the system's\n"
    "  --insecure          https: do not verify the target's certificate\n"
    "  --rate N[/s]        send N requests per second\n"
    "  --speed K[x]        keep the recorded timing, K times faster (WARC, nginx log)\n"
    "                      (with neither, as fast as --concurrency allows)\n"
    "  --concurrency C     requests in flight at most (default 64)\n"
    "  --duration D        stop sending after D: 90, 30s, 5m, 1h\n"
    "  --filter GLOB       only requests whose endpoint ('GET /users/:id') or method\n"
    "                      and path match, e.g. 'GET /users/*' or '/api/*'\n"
    "  --methods LIST      methods to send, e.g. GET,HEAD,POST, or '*' for all\n"
    "                      (default GET,HEAD,OPTIONS: recorded writes are skipped\n"
    "                      and counted, never sent, unless listed here)\n"
    "  --compare           compare each response with the recorded one (WARC)\n"
    "  --config FILE.lua   noise rules, endpoints and limits for --compare\n"
    "  --diff-log FILE     append a JSON line per compared request (implies --compare)\n"
    "  --db FILE           write compared requests to a results store for `kagami\n"
    "                      report` and the dashboard (implies --compare)\n"
    "  --strict            a damaged input file is an error (exit status 2)\n"
    "  --format F          auto (default), warc, urls or nginx\n"
    "  --header 'N: V'     set a header field on every request (repeatable)\n"
    "  --timeout S         seconds a request may stay silent (default 30)\n"
    "  --json              print the summary as one JSON object\n"
    "\n"
    "Exit status: 0 when the run completed (even with differences or errors), 1 on\n"
    "usage or I/O errors, 2 when --strict is given and FILE is damaged. Where\n"
    "reading stopped in a damaged file is always printed.\n";

/* Prints what is wrong with the command line, and where to read more, on
 * stderr. Returns -1. */
static int kg_replay_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int kg_replay_cli_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("kagami replay: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\n(kagami replay --help for the options)\n", stderr);
  va_end(ap);
  return -1;
}

/* A positive finite number with an optional suffix from `suffixes`
 * (each with its multiplier); *out = number * multiplier. */
static bool kg_replay_cli_parse_number(const char *s, const char *const *suffixes,
                                       const double *mult, size_t n, double *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno || !(v > 0) || !isfinite(v)) return false;
  if (*end == '\0') {
    *out = v;
    return true;
  }
  for (size_t i = 0; i < n; i++)
    if (strcmp(end, suffixes[i]) == 0) {
      *out = v * mult[i];
      return true;
    }
  return false;
}

/* Reads the command line into *o (initialised here) and *json. Returns 0,
 * 1 for --help, or -1 after printing what is wrong. Strings in *o point
 * into argv; o->headers is the caller's to free, whatever the outcome. */
static int kg_replay_cli_parse(int argc, char **argv, kg_replay_opts *o, bool *json) {
  kg_replay_opts_init(o);
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || strcmp(a, "-") == 0) {
      if (o->file)
        return kg_replay_cli_usage_error("more than one input file ('%s' and '%s')", o->file, a);
      o->file = a;
      continue;
    }
    /* --name=value or --name value */
    char name[32];
    const char *val = NULL;
    const char *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
    if (nlen >= sizeof(name)) return kg_replay_cli_usage_error("unknown option '%s'", a);
    memcpy(name, a, nlen);
    name[nlen] = '\0';
    static const char *const flags[] = {"--compare", "--strict", "--json", "--insecure",
                                        "--help", "-h"};
    bool is_flag = false;
    for (size_t k = 0; k < KG_ARRAY_SIZE(flags); k++) is_flag |= strcmp(name, flags[k]) == 0;
    if (is_flag) {
      if (eq) return kg_replay_cli_usage_error("%s takes no value", name);
      if (strcmp(name, "--compare") == 0) o->compare = true;
      else if (strcmp(name, "--strict") == 0) o->strict = true;
      else if (strcmp(name, "--json") == 0) *json = true;
      else if (strcmp(name, "--insecure") == 0) o->tls_insecure = true;
      else return 1; /* help */
      continue;
    }
    static const char *const valued[] = {
        "--target", "--rate", "--speed", "--concurrency", "--duration", "--timeout",
        "--filter", "--config", "--diff-log", "--db", "--format", "--header", "--methods",
        "--ca"};
    bool known = false;
    for (size_t k = 0; k < KG_ARRAY_SIZE(valued); k++) known |= strcmp(name, valued[k]) == 0;
    if (!known) return kg_replay_cli_usage_error("unknown option '%s'", name);
    if (eq) val = eq + 1;
    else if (i + 1 < argc) val = argv[++i];
    else return kg_replay_cli_usage_error("%s needs a value", name);
    if (strcmp(name, "--target") == 0) {
      o->target = val;
    } else if (strcmp(name, "--ca") == 0) {
      o->tls_ca = val;
    } else if (strcmp(name, "--rate") == 0) {
      static const char *const sfx[] = {"/s", "/m", "/min"};
      static const double mul[] = {1.0, 1.0 / 60, 1.0 / 60};
      if (!kg_replay_cli_parse_number(val, sfx, mul, 3, &o->rate))
        return kg_replay_cli_usage_error(
            "--rate: expected requests per second such as 100 or 100/s, got '%s'", val);
    } else if (strcmp(name, "--speed") == 0) {
      static const char *const sfx[] = {"x", "X"};
      static const double mul[] = {1.0, 1.0};
      if (!kg_replay_cli_parse_number(val, sfx, mul, 2, &o->speed))
        return kg_replay_cli_usage_error("--speed: expected a factor such as 2x or 0.5x, got '%s'",
                                         val);
    } else if (strcmp(name, "--concurrency") == 0) {
      char *end = NULL;
      long v = strtol(val, &end, 10);
      if (end == val || *end || v < 1 || v > 100000)
        return kg_replay_cli_usage_error("--concurrency: expected 1 to 100000, got '%s'", val);
      o->concurrency = (size_t)v;
    } else if (strcmp(name, "--duration") == 0) {
      static const char *const sfx[] = {"s", "ms", "m", "min", "h"};
      static const double mul[] = {1, 0.001, 60, 60, 3600};
      if (!kg_replay_cli_parse_number(val, sfx, mul, 5, &o->duration))
        return kg_replay_cli_usage_error(
            "--duration: expected a time such as 90, 30s, 5m or 1h, got '%s'", val);
    } else if (strcmp(name, "--timeout") == 0) {
      static const char *const sfx[] = {"s", "ms"};
      static const double mul[] = {1, 0.001};
      if (!kg_replay_cli_parse_number(val, sfx, mul, 2, &o->timeout))
        return kg_replay_cli_usage_error(
            "--timeout: expected seconds such as 10 or 500ms, got '%s'", val);
    } else if (strcmp(name, "--filter") == 0) {
      if (*val == '\0') return kg_replay_cli_usage_error("--filter: empty glob");
      o->filter = val;
    } else if (strcmp(name, "--methods") == 0) {
      bool ok = *val != '\0';
      if (strcmp(val, "*") != 0)
        for (const char *p = val; ok && *p; p++)
          ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '-' ||
               (*p == ',' && p != val && p[1] != '\0' && p[1] != ',');
      if (!ok)
        return kg_replay_cli_usage_error(
            "--methods: expected a list such as GET,HEAD,POST or '*', got '%s'", val);
      o->methods = val;
    } else if (strcmp(name, "--config") == 0) {
      o->config = val;
    } else if (strcmp(name, "--diff-log") == 0) {
      o->diff_log = val;
    } else if (strcmp(name, "--db") == 0) {
      o->db = val;
    } else if (strcmp(name, "--format") == 0) {
      if (kg_source_format_parse(val, &o->format) != 0)
        return kg_replay_cli_usage_error(
            "--format: expected auto, warc, urls or nginx, got '%s'", val);
    } else if (strcmp(name, "--header") == 0) {
      const char *colon = strchr(val, ':');
      bool ok = colon && colon > val;
      for (const char *p = val; ok && p < colon; p++)
        ok = *p > ' ' && *p < 0x7f;
      for (const char *p = colon ? colon : val; ok && *p; p++)
        ok = *p != '\r' && *p != '\n';
      if (!ok) return kg_replay_cli_usage_error("--header: expected 'Name: value', got '%s'", val);
      const char *v = colon + 1;
      while (*v == ' ' || *v == '\t') v++;
      kg_hdrs_add(&o->headers, val, (size_t)(colon - val), v, strlen(v));
    } else {
      return kg_replay_cli_usage_error("unknown option '%s'", name);
    }
  }
  if (o->file == NULL) return kg_replay_cli_usage_error("no input FILE given");
  if (o->target == NULL) return kg_replay_cli_usage_error("--target http://host:port is required");
  if (o->rate > 0 && o->speed > 0)
    return kg_replay_cli_usage_error("--rate and --speed exclude each other");
  if (o->diff_log || o->db) o->compare = true;
  return 0;
}

static double kg_replay_cli_ms(uint64_t us) { return (double)us / 1000.0; }

/* A figure for the JSON summary, to the microsecond or the thousandth:
 * 0.974 rather than 0.97410889099999998. */
static json_t *kg_replay_cli_real(double v) { return json_real(round(v * 1000.0) / 1000.0); }

static json_t *kg_replay_cli_pct_json(const kg_hist *h, double q) {
  return kg_hist_count(h) ? kg_replay_cli_real(kg_replay_cli_ms(kg_hist_percentile(h, q)))
                          : json_null();
}

/* Whether the replay's own load is what the target's latencies measure:
 * it kept `concurrency` requests in flight for most of the run, and it was
 * either not paced (as fast as it could) or had due requests wait for a
 * slot, well above what the recording had in flight. */
static bool kg_replay_cli_self_load(const kg_replay_opts *o, const kg_replay_summary *s) {
  if (s->saturated_share < 0.5 || s->sent < 2 * o->concurrency) return false;
  if (s->recorded_concurrency > 0 && s->recorded_concurrency * 2 >= (double)o->concurrency)
    return false;
  return (o->rate == 0 && o->speed == 0) || s->held_back > 0;
}

/* The summary as one JSON object on one line, for scripts. */
static void kg_replay_cli_print_json(const kg_replay_opts *o, const kg_replay_summary *s) {
  const kg_source_status *st = &s->input;
  double el = s->elapsed;
  json_t *j = json_object();
  json_object_set_new(j, "file", json_string(o->file));
  json_object_set_new(j, "format", json_string(kg_source_format_name(st->format)));
  json_object_set_new(j, "target", json_string(o->target));
  json_object_set_new(j, "stopped", json_string(s->stop_reason));
  json_object_set_new(j, "sent", json_integer((json_int_t)s->sent));
  json_object_set_new(j, "answered", json_integer((json_int_t)s->answered));
  json_object_set_new(j, "errors", json_integer((json_int_t)s->errors));
  json_object_set_new(j, "filtered_out", json_integer((json_int_t)s->filtered));
  json_t *load = json_object();
  json_object_set_new(load, "saturated_share", kg_replay_cli_real(s->saturated_share));
  json_object_set_new(load, "held_back", json_integer((json_int_t)s->held_back));
  json_object_set_new(load, "recorded_concurrency",
                      s->recorded_concurrency > 0 ? kg_replay_cli_real(s->recorded_concurrency)
                                                  : json_null());
  json_object_set_new(load, "dominates", json_boolean(kg_replay_cli_self_load(o, s)));
  json_object_set_new(j, "own_load", load);
  json_t *sk = json_object();
  for (size_t i = 0; i < KG_REPLAY_MAX_SKIPPED_KINDS && s->skipped_method[i][0]; i++)
    json_object_set_new(sk, s->skipped_method[i], json_integer((json_int_t)s->skipped_count[i]));
  json_object_set_new(j, "skipped_methods", sk);
  json_object_set_new(j, "elapsed_s", kg_replay_cli_real(el));
  json_object_set_new(j, "throughput", kg_replay_cli_real(el > 0 ? (double)s->sent / el : 0));
  json_object_set_new(j, "connections", json_integer((json_int_t)s->connections));
  json_t *lat = json_object();
  json_object_set_new(lat, "p50_ms", kg_replay_cli_pct_json(&s->all, 50));
  json_object_set_new(lat, "p90_ms", kg_replay_cli_pct_json(&s->all, 90));
  json_object_set_new(lat, "p99_ms", kg_replay_cli_pct_json(&s->all, 99));
  json_object_set_new(lat, "max_ms", kg_replay_cli_pct_json(&s->all, 100));
  json_object_set_new(j, "latency", lat);
  json_t *sts = json_object();
  for (int c = 0; c < 600; c++)
    if (s->status[c]) {
      char k[16];
      snprintf(k, sizeof(k), "%d", c);
      json_object_set_new(sts, k, json_integer((json_int_t)s->status[c]));
    }
  if (s->status_other) json_object_set_new(sts, "other", json_integer((json_int_t)s->status_other));
  json_object_set_new(j, "statuses", sts);
  json_t *errs = json_object();
  for (size_t i = 0; i < KG_REPLAY_MAX_ERROR_KINDS && s->error_kind[i]; i++)
    json_object_set_new(errs, s->error_kind[i], json_integer((json_int_t)s->error_count[i]));
  json_object_set_new(j, "error_kinds", errs);
  json_t *eps = json_array();
  for (size_t i = 0; i < s->neps; i++) {
    const kg_replay_endpoint *e = &s->eps[i];
    json_t *row = json_object();
    json_object_set_new(row, "endpoint", json_string(e->name));
    json_object_set_new(row, "requests", json_integer((json_int_t)e->requests));
    json_object_set_new(row, "errors", json_integer((json_int_t)e->errors));
    json_object_set_new(row, "p50_ms", kg_replay_cli_pct_json(&e->lat, 50));
    json_object_set_new(row, "p90_ms", kg_replay_cli_pct_json(&e->lat, 90));
    json_object_set_new(row, "p99_ms", kg_replay_cli_pct_json(&e->lat, 99));
    json_object_set_new(row, "max_ms", kg_replay_cli_pct_json(&e->lat, 100));
    json_object_set_new(row, "recorded_p90_ms", kg_replay_cli_pct_json(&e->rec, 90));
    if (o->compare) {
      json_object_set_new(row, "compared", json_integer((json_int_t)e->compared));
      json_object_set_new(row, "differing", json_integer((json_int_t)e->differing));
    }
    json_array_append_new(eps, row);
  }
  json_object_set_new(j, "endpoints", eps);
  if (o->compare) {
    json_t *c = json_object();
    json_object_set_new(c, "compared", json_integer((json_int_t)s->compared));
    json_object_set_new(c, "equal", json_integer((json_int_t)s->equal));
    json_object_set_new(c, "differing", json_integer((json_int_t)s->differing));
    json_object_set_new(c, "not_compared", json_integer((json_int_t)s->not_compared));
    json_t *d = json_array();
    for (size_t i = 0; i < s->neps; i++)
      if (s->eps[i].differing) json_array_append_new(d, json_string(s->eps[i].name));
    json_object_set_new(c, "differing_endpoints", d);
    json_object_set_new(j, "compare", c);
  }
  json_t *in = json_object();
  json_object_set_new(in, "items", json_integer((json_int_t)st->items));
  json_object_set_new(in, "unparseable", json_integer((json_int_t)st->unparseable));
  json_object_set_new(in, "skipped", json_integer((json_int_t)st->skipped));
  json_object_set_new(in, "damaged", json_boolean(st->damaged));
  if (st->damaged) {
    json_object_set_new(in, "stopped_at", json_integer((json_int_t)st->damage_offset));
    json_object_set_new(in, "why", json_string(st->damage_why));
  }
  json_object_set_new(j, "input", in);
  char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
  if (text) printf("%s\n", text);
  free(text);
  json_decref(j);
}

/* The summary for people: totals, then a table of endpoints. */
static void kg_replay_cli_print_text(const kg_replay_opts *o, const kg_replay_summary *s) {
  const kg_source_status *st = &s->input;
  double el = s->elapsed;
  printf("kagami replay: %s (%s) -> %s\n", o->file, kg_source_format_name(st->format),
         o->target);
  printf("sent %" PRIu64 " requests in %.2f s (%.1f/s) on %" PRIu64
         " connection%s; %" PRIu64 " answered, %" PRIu64 " errors; stopped: %s\n",
         s->sent, el, el > 0 ? (double)s->sent / el : 0.0, s->connections,
         s->connections == 1 ? "" : "s", s->answered, s->errors,
         s->stop_reason);
  if (s->filtered) printf("filtered out: %" PRIu64 " requests\n", s->filtered);
  if (kg_replay_cli_self_load(o, s)) {
    printf("note: the replay kept %zu requests in flight (--concurrency) for %.0f%% of the run, "
           "so the target's latencies include queueing caused by the replay itself",
           o->concurrency, s->saturated_share * 100);
    if (s->recorded_concurrency > 0)
      printf("; the recording had about %.1f in flight: try --concurrency %.0f or --speed 1x",
             s->recorded_concurrency, ceil(s->recorded_concurrency));
    else
      printf("; try a lower --concurrency or a --rate");
    printf("\n");
  }
  if (s->skipped) {
    printf("skipped, method not in --methods (%s): %" PRIu64 " requests (",
           o->methods ? o->methods : KG_REPLAY_SAFE_METHODS, s->skipped);
    for (size_t i = 0; i < KG_REPLAY_MAX_SKIPPED_KINDS && s->skipped_method[i][0]; i++)
      printf("%s%s %" PRIu64, i ? ", " : "", s->skipped_method[i], s->skipped_count[i]);
    printf(")\n");
  }
  if (kg_hist_count(&s->all))
    printf("latency: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
           kg_replay_cli_ms(kg_hist_percentile(&s->all, 50)),
           kg_replay_cli_ms(kg_hist_percentile(&s->all, 90)),
           kg_replay_cli_ms(kg_hist_percentile(&s->all, 99)),
           kg_replay_cli_ms(kg_hist_max(&s->all)));
  kg_buf b = KG_BUF_INIT;
  for (int c = 0; c < 600; c++)
    if (s->status[c]) kg_buf_appendf(&b, "%s%d: %" PRIu64, b.len ? ", " : "", c, s->status[c]);
  if (s->status_other) kg_buf_appendf(&b, "%sother: %" PRIu64, b.len ? ", " : "", s->status_other);
  if (b.len) printf("status codes: %s\n", b.data);
  kg_buf_reset(&b);
  for (size_t i = 0; i < KG_REPLAY_MAX_ERROR_KINDS && s->error_kind[i]; i++)
    kg_buf_appendf(&b, "%s%s: %" PRIu64, b.len ? ", " : "", s->error_kind[i], s->error_count[i]);
  if (b.len) printf("errors: %s\n", b.data);
  kg_buf_free(&b);
  if (s->neps) {
    int w = 8;
    for (size_t i = 0; i < s->neps; i++) w = KG_MAX(w, (int)KG_MIN(strlen(s->eps[i].name), 60));
    printf("\n%-*s %9s %7s %9s %9s %9s %9s", w, "endpoint", "requests", "errors", "p50 ms",
           "p90 ms", "p99 ms", "max ms");
    if (o->compare) printf(" %9s %9s", "differing", "rec p90");
    printf("\n");
    for (size_t i = 0; i < s->neps; i++) {
      const kg_replay_endpoint *e = &s->eps[i];
      bool any = kg_hist_count(&e->lat) > 0;
      printf("%-*.*s %9" PRIu64 " %7" PRIu64, w, w, e->name, e->requests, e->errors);
      if (any)
        printf(" %9.2f %9.2f %9.2f %9.2f", kg_replay_cli_ms(kg_hist_percentile(&e->lat, 50)),
               kg_replay_cli_ms(kg_hist_percentile(&e->lat, 90)),
               kg_replay_cli_ms(kg_hist_percentile(&e->lat, 99)),
               kg_replay_cli_ms(kg_hist_max(&e->lat)));
      else
        printf(" %9s %9s %9s %9s", "-", "-", "-", "-");
      if (o->compare) {
        printf(" %9" PRIu64, e->differing);
        if (kg_hist_count(&e->rec))
          printf(" %9.2f", kg_replay_cli_ms(kg_hist_percentile(&e->rec, 90)));
        else
          printf(" %9s", "-");
      }
      printf("\n");
    }
  }
  if (o->compare) {
    printf("\ncompared %" PRIu64 ": %" PRIu64 " equal, %" PRIu64 " differing", s->compared,
           s->equal, s->differing);
    if (s->not_compared)
      printf(" (%" PRIu64 " not compared: no recorded response)", s->not_compared);
    printf("\n");
    if (s->differing) {
      printf("differing endpoints:");
      for (size_t i = 0; i < s->neps; i++)
        if (s->eps[i].differing)
          printf(" %s (%" PRIu64 "/%" PRIu64 ")", s->eps[i].name, s->eps[i].differing,
                 s->eps[i].compared);
      printf("\n");
    }
    if (o->diff_log) printf("diff log: %s\n", o->diff_log);
    if (o->db) printf("store: %s (kagami report --db %s)\n", o->db, o->db);
  }
  if (st->unparseable || st->skipped)
    printf("input: %" PRIu64 " unparseable, %" PRIu64 " skipped\n", st->unparseable, st->skipped);
  fflush(stdout);
}

/* Where reading stopped in a damaged file, on stderr whatever the output
 * format. */
static void kg_replay_cli_report_damage(const kg_replay_opts *o,
                                        const kg_source_status *st) {
  if (!st->damaged) return;
  fprintf(stderr,
          "kagami replay: %s: reading stopped at %sbyte %" PRIu64 ": %s; %" PRIu64
          " request%s read before it%s\n",
          o->file, st->compressed ? "uncompressed " : "", st->damage_offset,
          st->damage_why, st->items, st->items == 1 ? " was" : "s were",
          o->strict ? " (--strict: exit status 2)" : "");
}

int kg_replay_cli_main(int argc, char **argv) {
  kg_replay_opts o;
  bool json = false;
  int prc = kg_replay_cli_parse(argc, argv, &o, &json);
  if (prc != 0) {
    if (prc > 0) fputs(kg_replay_cli_usage, stdout);
    kg_hdrs_free(&o.headers);
    return prc > 0 ? 0 : 1;
  }
  o.progress = isatty(STDERR_FILENO) == 1;
  kg_replay_summary *s = kg_calloc(1, sizeof(*s));
  int status = 1;
  if (kg_replay_run(&o, s) != 0) {
    if (s->usage) kg_replay_cli_usage_error("%s", s->error);
    else fprintf(stderr, "kagami replay: %s\n", s->error);
  } else {
    if (json) kg_replay_cli_print_json(&o, s);
    else kg_replay_cli_print_text(&o, s);
    kg_replay_cli_report_damage(&o, &s->input);
    if (s->input_failed && !s->input.damaged)
      fprintf(stderr, "kagami replay: %s\n", s->input_error);
    status = s->input_failed ? (s->input.damaged ? 2 : 1) : 0;
    /* An input that yields nothing is a wrong file, not a quiet success
     * (a binary file taken for a URL list, a non-WARC as --format warc). */
    if (status == 0 && s->input.items == 0) {
      fprintf(stderr, "kagami replay: %s: no request found in it (read as %s)\n", o.file,
              kg_source_format_name(s->input.format));
      status = 1;
    }
  }
  kg_replay_summary_free(s);
  free(s);
  kg_hdrs_free(&o.headers);
  return status;
}
