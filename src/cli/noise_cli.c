/* noise_cli.c: `kagami noise` (see noise_cli.h). */
#include "cli/noise_cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli/noise_export.h"
#include "common/buf.h"
#include "common/common.h"
#include "config/config.h"
#include "config/parse.h"

#define KG_NOISE_CLI_TIMEOUT_S 10
/* The largest answer read: the model's caps (262,144 locations of a few
 * hundred bytes of JSON each) fit well under it. */
#define KG_NOISE_CLI_MAX_ANSWER (512u << 20)

static const char kg_noise_cli_usage[] =
    "usage: kagami noise (--config FILE | --admin URL [--token TOKEN])\n"
    "                    [--endpoint PATTERN] [--format text|json] [--export]\n"
    "\n"
    "What a running kagami learned as noise (noise = { learn = true }), per\n"
    "endpoint: each location (JSON path, XPath, header, text line), in how\n"
    "many noise pairs it differed, when it did first and last, and whether it\n"
    "is suppressed now. Asked from the admin listener's /api/noise.\n"
    "\n"
    "  --config FILE      the running kagami's config: its admin address and\n"
    "                     admin_token\n"
    "  --admin URL        the admin listener, http://127.0.0.1:8091 (or host:port)\n"
    "  --token TOKEN      its admin_token (default: $KAGAMI_ADMIN_TOKEN)\n"
    "  --endpoint PATTERN only endpoints matching this glob, as a rule's endpoint\n"
    "  --format json      the API's JSON instead of a table\n"
    "  --export           the suppressed locations as a rules = { ... } fragment\n"
    "                     to paste into the config (text lines, one field of a\n"
    "                     repeated header and binary bodies have no exact rule and\n"
    "                     are written as comments)\n"
    "\n"
    "exit status: 0 printed, 1 usage error or admin listener not usable, 2\n"
    "nothing learned (or nothing to export as a rule)\n";

typedef struct kg_noise_cli_opts {
  const char *config, *admin, *token, *endpoint, *format;
  bool export_rules;
} kg_noise_cli_opts;

/* Where to ask, and with what token. */
typedef struct kg_noise_cli_target {
  kg_addr addr;
  char *url;     /* "http://host:port", for messages (owned) */
  char *token;   /* owned, or NULL */
  bool from_config;
} kg_noise_cli_target;

static int kg_noise_cli_args(int argc, char **argv, kg_noise_cli_opts *o) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(kg_noise_cli_usage, stdout);
      return 0;
    }
    if (!strcmp(a, "--export")) {
      o->export_rules = true;
      continue;
    }
    const char **slot = !strcmp(a, "--config")     ? &o->config
                        : !strcmp(a, "--admin")    ? &o->admin
                        : !strcmp(a, "--token")    ? &o->token
                        : !strcmp(a, "--endpoint") ? &o->endpoint
                        : !strcmp(a, "--format")   ? &o->format
                                                   : NULL;
    if (slot == NULL) {
      fprintf(stderr, "kagami noise: unknown %s '%s'\n%s",
              a[0] == '-' ? "option" : "argument", a, kg_noise_cli_usage);
      return 1;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "kagami noise: %s needs a value\n%s", a, kg_noise_cli_usage);
      return 1;
    }
    *slot = argv[++i];
  }
  if ((o->config == NULL) == (o->admin == NULL)) {
    fprintf(stderr, "kagami noise: say which kagami to ask: --config kagami.lua "
                    "or --admin http://127.0.0.1:8091 (one of them)\n");
    return 1;
  }
  if (o->format && strcmp(o->format, "text") && strcmp(o->format, "json")) {
    fprintf(stderr, "kagami noise: --format must be text or json, got '%s'\n", o->format);
    return 1;
  }
  if (o->format && !strcmp(o->format, "json") && o->export_rules) {
    fprintf(stderr, "kagami noise: --export prints Lua; leave out --format json\n");
    return 1;
  }
  return -1;
}

/* Fills t from --config or --admin. Returns 0, or 1 after a message. */
static int kg_noise_cli_target_get(const kg_noise_cli_opts *o, kg_noise_cli_target *t) {
  char err[1024];
  const char *token = o->token ? o->token : getenv("KAGAMI_ADMIN_TOKEN");
  if (o->config) {
    kg_config *cfg = NULL;
    if (kg_config_load(o->config, &cfg, err, sizeof(err)) < 0) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    if (cfg->admin == NULL) {
      fprintf(stderr, "kagami noise: %s has no admin listener: add admin = "
                      "\"127.0.0.1:8091\" to it (and restart kagami), or give "
                      "--admin URL\n", o->config);
      kg_config_free(cfg);
      return 1;
    }
    t->addr = *cfg->admin;
    t->addr.text = kg_strdup(cfg->admin->text);
    t->addr.host = kg_strdup(cfg->admin->host);
    if (!o->token && cfg->admin_token) token = cfg->admin_token;
    t->token = token ? kg_strdup(token) : NULL;
    t->from_config = true;
    kg_config_free(cfg);
  } else {
    const char *a = o->admin;
    if (strncmp(a, "http://", 7) == 0) a += 7;
    /* A port alone means loopback, as the config's `admin` reads it. */
    kg_buf hp = KG_BUF_INIT;
    if (*a && a[strspn(a, "0123456789")] == '\0') kg_buf_appendf(&hp, "127.0.0.1:%s", a);
    else kg_buf_append(&hp, a, strcspn(a, "/"));
    kg_buf_appends(&hp, "");
    int rc = kg_addr_parse(hp.data, &t->addr, err, sizeof(err));
    kg_buf_free(&hp);
    if (rc < 0) {
      fprintf(stderr, "kagami noise: --admin: %s (expected http://host:port)\n", err);
      return 1;
    }
    t->token = token ? kg_strdup(token) : NULL;
  }
  kg_buf u = KG_BUF_INIT;
  kg_buf_appendf(&u, "http://%s", t->addr.text);
  t->url = kg_buf_steal(&u, NULL);
  return 0;
}

static void kg_noise_cli_target_free(kg_noise_cli_target *t) {
  kg_addr_free(&t->addr);
  free(t->url);
  free(t->token);
}

/* Appends s percent-encoded for a query value. */
static void kg_noise_cli_escape(kg_buf *out, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
        (*p >= '0' && *p <= '9') || strchr("-._~/:*", *p))
      kg_buf_append(out, (const char *)p, 1);
    else
      kg_buf_appendf(out, "%%%02X", *p);
  }
}

/* GET target from the admin listener over a blocking socket (a command
 * line tool has nothing else to do meanwhile), with a deadline per
 * send and receive. Returns 0 with the status and body, or -1 with a
 * message in err. */
static int kg_noise_cli_get(const kg_noise_cli_target *t, const char *target, int *status,
                            kg_buf *body, char *err, size_t errlen) {
  int fd = socket(t->addr.sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "socket: %s", strerror(errno));
    return -1;
  }
  struct timeval tv = {KG_NOISE_CLI_TIMEOUT_S, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  kg_buf in = KG_BUF_INIT, req = KG_BUF_INIT;
  int rc = -1;
  if (connect(fd, (const struct sockaddr *)&t->addr.sa, t->addr.salen) < 0) {
    snprintf(err, errlen, "%s is not reachable (%s): is kagami running with its "
             "admin listener there?", t->url, strerror(errno));
    goto out;
  }
  kg_buf_appendf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", target,
                 t->addr.text);
  if (t->token) kg_buf_appendf(&req, "Authorization: Bearer %s\r\n", t->token);
  kg_buf_appends(&req, "\r\n");
  for (size_t off = 0; off < req.len;) {
    ssize_t n = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      snprintf(err, errlen, "%s: sending the request: %s", t->url, strerror(errno));
      goto out;
    }
    off += (size_t)n;
  }
  char chunk[65536];
  for (;;) {
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      snprintf(err, errlen, "%s: reading the answer: %s", t->url,
               errno == EAGAIN ? "timed out" : strerror(errno));
      goto out;
    }
    if (n == 0) break;
    if (in.len + (size_t)n > KG_NOISE_CLI_MAX_ANSWER) {
      snprintf(err, errlen, "%s: the answer is over %u MiB", t->url,
               KG_NOISE_CLI_MAX_ANSWER >> 20);
      goto out;
    }
    kg_buf_append(&in, chunk, (size_t)n);
  }
  kg_buf_appends(&in, ""); /* NUL-terminated, even when empty */
  const char *end = in.data ? strstr(in.data, "\r\n\r\n") : NULL;
  if (end == NULL || sscanf(in.data, "HTTP/1.%*1[01] %3d", status) != 1) {
    snprintf(err, errlen, "%s does not answer as a kagami admin listener", t->url);
    goto out;
  }
  /* The admin listener frames with Content-Length; an answer shorter than
   * it says was cut, and cut JSON must not pass for a short list. */
  const char *cl = strcasestr(in.data, "\r\nContent-Length:");
  size_t got = in.len - (size_t)(end + 4 - in.data);
  if (cl == NULL || cl > end || strtoull(cl + 17, NULL, 10) != got) {
    snprintf(err, errlen, "%s: the answer was cut short", t->url);
    goto out;
  }
  kg_buf_append(body, end + 4, got);
  kg_buf_appends(body, "");
  rc = 0;
out:
  close(fd);
  kg_buf_free(&in);
  kg_buf_free(&req);
  return rc;
}

/* A status other than 200 as one line saying what to do. */
static void kg_noise_cli_status_error(const kg_noise_cli_target *t, int status,
                                      const kg_buf *body) {
  if (status == 401) {
    fprintf(stderr, "kagami noise: %s %s: give the admin_token with --token or "
                    "KAGAMI_ADMIN_TOKEN%s\n", t->url,
            t->token ? "refused the token" : "needs a token",
            t->from_config ? " (or set it in the config)" : "");
  } else if (status == 404) {
    fprintf(stderr, "kagami noise: %s has no /api/noise: is that kagami older than "
                    "this command? (kagami --version)\n", t->url);
  } else {
    size_t n = body->data ? strcspn(body->data, "\n") : 0;
    fprintf(stderr, "kagami noise: %s answered %d: %.*s\n", t->url, status, (int)n,
            n ? body->data : "");
  }
}

/* Unix seconds as "2026-12-03 08:40:01" (UTC), "-" for none. */
static void kg_noise_cli_time(kg_buf *out, const json_t *v) {
  time_t t = json_is_number(v) ? (time_t)json_number_value(v) : 0;
  struct tm tm;
  char s[32];
  if (t <= 0 || gmtime_r(&t, &tm) == NULL || strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm) == 0)
    kg_buf_appends(out, "-");
  else
    kg_buf_appends(out, s);
}

static long long kg_noise_cli_int(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* The table: one block per endpoint, one row per location, suppressed
 * ones marked, so that a person sees both what is hidden and what is
 * still only being counted. */
static void kg_noise_cli_table(const json_t *api, const kg_noise_cli_target *t, kg_buf *o) {
  const json_t *eps = json_object_get(api, "endpoints");
  const json_t *th = json_object_get(api, "threshold");
  kg_buf_appendf(o, "learned noise at %s (threshold %g, min_pairs %lld): %zu endpoint%s\n",
                 t->url, json_is_number(th) ? json_number_value(th) : 0.0,
                 kg_noise_cli_int(api, "min_pairs"), json_array_size(eps),
                 json_array_size(eps) == 1 ? "" : "s");
  if (json_is_true(json_object_get(api, "full")))
    kg_buf_appends(o, "(a cap was reached: some locations were not learned, so not hidden)\n");
  size_t i, k;
  const json_t *ep, *l;
  json_array_foreach(eps, i, ep) {
    const char *name = json_string_value(json_object_get(ep, "endpoint"));
    kg_buf_appends(o, "\n");
    kg_noise_export_printable(o, name ? name : "?");
    kg_buf_appendf(o, ": %lld noise pairs from ", kg_noise_cli_int(ep, "pairs"));
    kg_noise_cli_time(o, json_object_get(ep, "first_seen"));
    kg_buf_appends(o, " to ");
    kg_noise_cli_time(o, json_object_get(ep, "last_seen"));
    kg_buf_appendf(o, " UTC; %lld suppressed\n", kg_noise_cli_int(ep, "suppressed"));
    const json_t *locs = json_object_get(ep, "locations");
    if (json_array_size(locs) == 0) {
      kg_buf_appends(o, "  (no location differed in a noise pair)\n");
      continue;
    }
    kg_buf_appends(o, "  suppressed  differed/pairs  first seen           last seen            location\n");
    json_array_foreach(locs, k, l) {
      const char *loc = json_string_value(json_object_get(l, "location"));
      char counts[64];
      snprintf(counts, sizeof(counts), "%lld/%lld", kg_noise_cli_int(l, "differed"),
               kg_noise_cli_int(l, "pairs"));
      kg_buf_appendf(o, "  %-10s  %14s  ",
                     json_is_true(json_object_get(l, "suppressed")) ? "yes" : "no", counts);
      kg_noise_cli_time(o, json_object_get(l, "first_seen"));
      kg_buf_appends(o, "  ");
      kg_noise_cli_time(o, json_object_get(l, "last_seen"));
      kg_buf_appends(o, "  ");
      kg_noise_export_printable(o, loc ? loc : "?");
      kg_buf_appends(o, "\n");
    }
  }
}

/* How many locations the answer's endpoints suppress. */
static long long kg_noise_cli_suppressed(const json_t *eps) {
  long long n = 0;
  size_t i;
  const json_t *ep;
  json_array_foreach(eps, i, ep) n += kg_noise_cli_int(ep, "suppressed");
  return n;
}

/* Prints what the answer holds as asked. Returns the exit code. */
static int kg_noise_cli_print(const kg_noise_cli_opts *o, const kg_noise_cli_target *t,
                              const kg_buf *body) {
  json_error_t jerr;
  json_t *api = json_loads(body->data ? body->data : "", 0, &jerr);
  const json_t *eps = json_object_get(api, "endpoints");
  if (!json_is_array(eps)) {
    fprintf(stderr, "kagami noise: %s: not a /api/noise answer\n", t->url);
    json_decref(api);
    return 1;
  }
  bool learning = json_is_true(json_object_get(api, "learning"));
  int rc = learning && json_array_size(eps) > 0 ? 0 : 2;
  const char *why = !learning ? "it does not learn noise: set noise = { learn = true } in "
                                "its config"
                    : rc      ? "no noise pair seen yet"
                              : NULL;
  kg_buf out = KG_BUF_INIT;
  if (o->format && !strcmp(o->format, "json")) {
    /* As the API says it, learning off included, for scripts. */
    kg_buf_append(&out, body->data, body->len);
  } else if (!learning) {
    /* Nothing to show. */
  } else if (o->export_rules) {
    if (kg_noise_export_lua(api, t->url, &out) <= 0 && rc == 0) {
      rc = 2;
      why = kg_noise_cli_suppressed(eps)
                ? "no suppressed location has a rule that hides exactly it (see the "
                  "comments)"
                : "nothing suppressed yet";
    }
  } else {
    kg_noise_cli_table(api, t, &out);
  }
  if (why)
    fprintf(stderr, "kagami noise: %s: %s%s%s\n", t->url, why,
            learning && o->endpoint ? " for endpoints matching " : "",
            learning && o->endpoint ? o->endpoint : "");
  if (out.len) fwrite(out.data, 1, out.len, stdout);
  kg_buf_free(&out);
  json_decref(api);
  return rc;
}

int kg_noise_cli_main(int argc, char **argv) {
  kg_noise_cli_opts o = {0};
  int rc = kg_noise_cli_args(argc, argv, &o);
  if (rc >= 0) return rc;
  kg_noise_cli_target t = {0};
  if (kg_noise_cli_target_get(&o, &t) != 0) return 1;
  kg_buf target = KG_BUF_INIT, body = KG_BUF_INIT;
  kg_buf_appends(&target, "/api/noise");
  if (o.endpoint) {
    kg_buf_appends(&target, "?endpoint=");
    kg_noise_cli_escape(&target, o.endpoint);
  }
  char err[1024];
  int status = 0;
  if (kg_noise_cli_get(&t, target.data, &status, &body, err, sizeof(err)) < 0) {
    fprintf(stderr, "kagami noise: %s\n", err);
    rc = 1;
  } else if (status != 200) {
    kg_noise_cli_status_error(&t, status, &body);
    rc = 1;
  } else {
    rc = kg_noise_cli_print(&o, &t, &body);
  }
  kg_buf_free(&target);
  kg_buf_free(&body);
  kg_noise_cli_target_free(&t);
  return rc;
}
