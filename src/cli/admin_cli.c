/* admin_cli.c: `kagami admin` (see admin_cli.h).
 *
 * The admin listener of `kagami run` (src/admin/), given a config of its
 * own that names only a store, an address and a token, and a context
 * that says no proxy runs here (kg_admin_ctx.store_only). Every API answer
 * reads the store as it is at that moment, as the proxy's own admin does:
 * a fleet's PostgreSQL store is copied for each answer from the answer's
 * `since` on (pgread.h), in the thread pool, at most two at a time; an
 * SQLite file is opened read-only per answer. So a dashboard that polls
 * every few seconds sees what the fleet wrote since its last poll, and a
 * store that is away answers 503 until it is back, without a restart. */
#include "cli/admin_cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "admin/admin.h"
#include "cli/cliopt.h"
#include "common/buf.h"
#include "common/common.h"
#include "common/log.h"
#include "config/config.h"
#include "config/parse.h"
#include "results/pgread.h"
#include "results/pgstore.h"
#include "results/storeq.h"

/* The variable `kagami noise` sends its token from, so one setting serves
 * both ends. */
#define KG_ADMIN_CLI_TOKEN_ENV "KAGAMI_ADMIN_TOKEN"

static const char kg_admin_cli_usage[] =
    "usage: kagami admin (--db FILE|URL | --db-env NAME | --db-file PATH |\n"
    "                     --config FILE) [--listen ADDR] [--token-file FILE]\n"
    "\n"
    "Serves the dashboard and the read-only admin API (/api/endpoints,\n"
    "/api/timeseries, /api/results, /api/results/ID, /api/instances,\n"
    "/healthz) from a results store, without proxying anything: a fleet's\n"
    "PostgreSQL store (every instance, or one with ?instance=NAME; the\n"
    "dashboard offers a choice), or a SQLite file. It never writes to the\n"
    "store. Every answer reads the store as it is then, so the dashboard\n"
    "follows what the proxies write. What only a running proxy knows (its\n"
    "counters, its learned noise) is not here: /metrics has the build only,\n"
    "/api/noise answers 501. SIGINT or SIGTERM stop it; SIGHUP is ignored.\n"
    "\n"
    "  --db FILE|URL      a SQLite store, or a PostgreSQL url\n"
    "                     (postgresql://user@host/db; the password from\n"
    "                     PGPASSWORD or ~/.pgpass, never on the command line)\n"
    "  --db-env NAME      the url from the environment variable NAME\n"
    "  --db-file PATH     the url from the first line of PATH\n"
    "  --config FILE      a kagami config: its store (url_env and url_file\n"
    "                     included), admin address, admin.tls, admin_token\n"
    "                     and latency_regression; the options above override\n"
    "  --listen ADDR      host:port, or a port on 127.0.0.1 (default: the\n"
    "                     config's admin address; one of the two is needed)\n"
    "  --token-file FILE  require \"Authorization: Bearer TOKEN\" for /metrics\n"
    "                     and /api/, TOKEN the first line of FILE; else from\n"
    "                     $KAGAMI_ADMIN_TOKEN when set, else the config's\n"
    "                     admin_token\n"
    "\n"
    "exit status: 0 stopped by a signal, 1 usage error, a store that cannot\n"
    "be read, or an address that cannot be bound\n";

typedef struct kg_admin_cli_opts {
  const char *db, *db_env, *db_file, *config, *listen, *token_file;
} kg_admin_cli_opts;

typedef struct kg_admin_cli {
  kg_config *cfg;           /* owned: loaded from --config, or made here */
  kg_admin_ctx ctx;
  uv_loop_t loop;
  uv_signal_t sigint, sigterm, sighup;
} kg_admin_cli;

/* Returns -1 after a message on stderr, 0 when parsed, 1 when help was
 * printed. */
static int kg_admin_cli_args(int argc, char **argv, kg_admin_cli_opts *o) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    int r = 0;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(kg_admin_cli_usage, stdout);
      return 1;
    }
    if ((r = kg_cli_opt(argc, argv, &i, "--db", &o->db)) ||
        (r = kg_cli_opt(argc, argv, &i, "--db-env", &o->db_env)) ||
        (r = kg_cli_opt(argc, argv, &i, "--db-file", &o->db_file)) ||
        (r = kg_cli_opt(argc, argv, &i, "--config", &o->config)) ||
        (r = kg_cli_opt(argc, argv, &i, "--listen", &o->listen)) ||
        (r = kg_cli_opt(argc, argv, &i, "--token-file", &o->token_file))) {
      if (r < 0) {
        fprintf(stderr, "kagami admin: %s needs a value\n%s", a, kg_admin_cli_usage);
        return -1;
      }
      continue;
    }
    fprintf(stderr, "kagami admin: unknown %s '%s'\n%s", a[0] == '-' ? "option" : "argument",
            a, kg_admin_cli_usage);
    return -1;
  }
  int ndb = (o->db != NULL) + (o->db_env != NULL) + (o->db_file != NULL);
  if (ndb > 1) {
    fprintf(stderr, "kagami admin: give one of --db, --db-env and --db-file\n");
    return -1;
  }
  if (ndb == 0 && o->config == NULL) {
    fprintf(stderr, "kagami admin: which store? give --db, --db-env, --db-file or "
            "--config\n%s", kg_admin_cli_usage);
    return -1;
  }
  return 0;
}

/* The store the options name, into cfg (replacing the config's). */
static int kg_admin_cli_store(const kg_admin_cli_opts *o, kg_config *cfg) {
  char why[4200];
  char *db = NULL;
  if (o->db) db = kg_strdup(o->db);
  else if (o->db_env || o->db_file) db = kg_config_read_secret(o->db_env, o->db_file, why,
                                                                sizeof(why));
  if ((o->db_env || o->db_file) && db == NULL) {
    fprintf(stderr, "kagami admin: %s: %s\n", o->db_env ? "--db-env" : "--db-file", why);
    return -1;
  }
  if (db == NULL) { /* the config's */
    if (cfg->store_path == NULL && cfg->store_url == NULL) {
      fprintf(stderr, "kagami admin: %s has the store turned off (store = false); "
              "give --db\n", o->config);
      return -1;
    }
    return 0;
  }
  if (db[0] == '\0') {
    fprintf(stderr, "kagami admin: --db: expected a file path or a postgresql:// url\n");
    free(db);
    return -1;
  }
  free(cfg->store_path);
  free(cfg->store_url);
  cfg->store_path = cfg->store_url = NULL;
  if (kg_config_is_pg_url(db)) cfg->store_url = db;
  else if (o->db_env || o->db_file) { /* the forms that exist for a password */
    fprintf(stderr, "kagami admin: %s: expected a postgresql:// url\n",
            o->db_env ? "--db-env" : "--db-file");
    free(db);
    return -1;
  } else cfg->store_path = db;
  return 0;
}

/* The address and token the options name, into cfg. */
static int kg_admin_cli_listen(const kg_admin_cli_opts *o, kg_config *cfg) {
  char why[4200];
  if (o->listen) {
    char text[300];
    /* a bare port means loopback, as the config's admin key reads it */
    if (o->listen[0] != '\0' && strspn(o->listen, "0123456789") == strlen(o->listen))
      snprintf(text, sizeof(text), "127.0.0.1:%s", o->listen);
    else
      snprintf(text, sizeof(text), "%s", o->listen);
    kg_addr *addr = kg_calloc(1, sizeof(*addr));
    if (kg_addr_parse(text, addr, why, sizeof(why)) < 0) {
      fprintf(stderr, "kagami admin: --listen: %s\n", why);
      free(addr);
      return -1;
    }
    if (cfg->admin) kg_addr_free(cfg->admin);
    free(cfg->admin);
    cfg->admin = addr;
  }
  if (cfg->admin == NULL) {
    fprintf(stderr, "kagami admin: where to listen? give --listen ADDR%s\n",
            o->config ? " (the config has no admin address)" : "");
    return -1;
  }
  const char *env = getenv(KG_ADMIN_CLI_TOKEN_ENV);
  char *token = NULL;
  if (o->token_file) token = kg_config_read_secret(NULL, o->token_file, why, sizeof(why));
  else if (env && *env) token = kg_strdup(env);
  if (o->token_file && token == NULL) {
    fprintf(stderr, "kagami admin: --token-file: %s\n", why);
    return -1;
  }
  if (token) {
    free(cfg->admin_token);
    cfg->admin_token = token;
  }
  return 0;
}

/* Reads the store once before serving, so that a wrong url, a password
 * refused or a file that is no kagami store stops us at once, with why. */
static int kg_admin_cli_probe(const kg_config *cfg) {
  char err[1024];
  if (cfg->store_url) {
    json_t *names = kg_pgread_instances(cfg->store_url, err, sizeof(err));
    if (names == NULL) {
      fprintf(stderr, "kagami admin: %s\n", err);
      return -1;
    }
    json_decref(names);
    return 0;
  }
  kg_storeq *q = NULL;
  if (kg_storeq_open(cfg->store_path, &q, err, sizeof(err)) < 0) {
    fprintf(stderr, "kagami admin: %s\n", err);
    return -1;
  }
  kg_storeq_close(q);
  return 0;
}

/* SIGINT/SIGTERM: stop listening and close every handle; the loop then
 * ends once the API queries still running are done. */
static void kg_admin_cli_on_signal(uv_signal_t *s, int signum) {
  kg_admin_cli *c = s->data;
  kg_log_info("received %s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
  kg_admin_stop(&c->ctx);
  uv_close((uv_handle_t *)&c->sigint, NULL);
  uv_close((uv_handle_t *)&c->sigterm, NULL);
  uv_close((uv_handle_t *)&c->sighup, NULL);
}

/* SIGHUP would end the process by default, and a service manager's
 * reload sends it: there is nothing to re-read (every answer reads the
 * store afresh), so it is only noted. */
static void kg_admin_cli_on_sighup(uv_signal_t *s, int signum) {
  kg_log_info("received SIGHUP: nothing to reload (every answer reads the store as it is)");
}

static void kg_admin_cli_log_start(const kg_config *cfg) {
  kg_buf b = KG_BUF_INIT;
  kg_buf_appendf(&b, "kagami %s admin (read-only, no proxy) on %s://%s/ from store ",
                 KG_VERSION, cfg->admin_tls ? "https" : "http", cfg->admin->text);
  if (cfg->store_url) kg_pgstore_mask(cfg->store_url, &b); /* no password in a log */
  else kg_buf_appends(&b, cfg->store_path);
  if (cfg->admin_token) kg_buf_appends(&b, "; API token required");
  kg_log_info("%s", b.data);
  kg_buf_free(&b);
}

static int kg_admin_cli_serve(kg_admin_cli *c) {
  char err[1024];
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&c->loop);
  c->ctx = (kg_admin_ctx){.cfg = c->cfg, .store_only = true};
  int rc = 0;
  if (kg_admin_start(&c->loop, &c->ctx, err, sizeof(err)) < 0) {
    fprintf(stderr, "kagami admin: %s\n", err);
    rc = 1;
  } else {
    uv_signal_init(&c->loop, &c->sigint);
    uv_signal_init(&c->loop, &c->sigterm);
    c->sigint.data = c->sigterm.data = c;
    uv_signal_start(&c->sigint, kg_admin_cli_on_signal, SIGINT);
    uv_signal_start(&c->sigterm, kg_admin_cli_on_signal, SIGTERM);
    uv_signal_init(&c->loop, &c->sighup);
    uv_signal_start(&c->sighup, kg_admin_cli_on_sighup, SIGHUP);
    kg_admin_cli_log_start(c->cfg);
  }
  uv_run(&c->loop, UV_RUN_DEFAULT); /* on failure: the listener's close callback */
  if (uv_loop_close(&c->loop) != 0) kg_log_warn("admin: a handle was left open at exit");
  if (rc == 0) kg_log_info("stopped");
  return rc;
}

int kg_admin_cli_main(int argc, char **argv) {
  kg_admin_cli_opts o = {0};
  int r = kg_admin_cli_args(argc, argv, &o);
  if (r != 0) return r < 0 ? 1 : 0;
  kg_admin_cli c = {0};
  if (o.config) {
    char err[8192];
    if (kg_config_load(o.config, &c.cfg, err, sizeof(err)) < 0) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
  } else {
    c.cfg = kg_calloc(1, sizeof(*c.cfg));
    c.cfg->latency_regression = KG_CONFIG_DEFAULT_LATENCY_REGRESSION;
  }
  int rc = 1;
  if (kg_admin_cli_store(&o, c.cfg) == 0 && kg_admin_cli_listen(&o, c.cfg) == 0 &&
      kg_admin_cli_probe(c.cfg) == 0)
    rc = kg_admin_cli_serve(&c);
  kg_config_free(c.cfg);
  return rc;
}
