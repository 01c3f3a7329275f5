/* main.c: the command line: run, check, --version, --help, and the
 * other subcommands handed to their own files. */
#include <libgen.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "admin/admin.h"
#include "common/buf.h"
#include "common/common.h"
#include "config/config.h"
#include "compare/htmldiff.h"
#include "results/epstats.h"
#include "results/pgstore.h"
#include "results/sink.h"
#include "compare/noise.h"
#include "traffic/record.h"
#include "proxy/hooks.h"
#include "common/log.h"
#include "cli/admin_cli.h"
#include "cli/noise_cli.h"
#include "cli/notify.h"
#include "cli/replay_cli.h"
#include "cli/report.h"
#include "proxy/worker.h"

static const char kg_usage[] =
    "usage: kagami <command> [arguments]\n"
    "\n"
    "HTTP shadow proxy: sends every request to the master backend and a copy\n"
    "to shadow backends, answers with the master's response only, and logs\n"
    "where the shadows answer differently.\n"
    "\n"
    "commands:\n"
    "  run CONFIG.lua     run the proxy in the foreground (SIGINT/SIGTERM stop it\n"
    "                     gracefully)\n"
    "  check CONFIG.lua   validate a config; exit 0, or 1 with FILE:LINE: errors\n"
    "  report [--db FILE | --config FILE] [--since DURATION] [--endpoint PATTERN]\n"
    "         [--format text|json]\n"
    "                     per-endpoint differences and latency from the results\n"
    "                     store (default kagami.db), what needs a look first\n"
    "  show ID [--db FILE | --config FILE] [--format text|json]\n"
    "                     one stored result: request, backends, differences, diff\n"
    "  noise (--config FILE | --admin URL) [--endpoint PATTERN] [--format text|json]\n"
    "        [--export]\n"
    "                     what a running kagami learned as noise, with the\n"
    "                     evidence; --export prints it as config rules\n"
    "  admin (--db FILE|URL | --db-env NAME | --db-file PATH | --config FILE)\n"
    "        [--listen ADDR] [--token-file FILE]\n"
    "                     serve the dashboard and the read-only API from a\n"
    "                     store (a fleet's PostgreSQL store, or a SQLite file)\n"
    "                     without proxying; `kagami admin --help` tells more\n"
    "  replay FILE --target http://host:port [--rate N/s | --speed 2x] [--compare]\n"
    "                     send recorded traffic (a WARC recording, a URL list or an\n"
    "                     nginx log) to a target; `kagami replay --help` tells more\n"
    "  config-keys        list every config key: PATH, TYPE, DEFAULT (tab-separated)\n"
    "  --version          print the version\n"
    "  --help             print this help\n"
    "\n"
    "report and show exit 0 when they printed, 1 on a usage or store error, 2\n"
    "when nothing matched (no compared request, no result with that ID).\n"
    "`kagami report --help` and `kagami show --help` tell more.\n";

static const char kg_usage_run[] =
    "usage: kagami run CONFIG.lua\n"
    "\n"
    "Runs the proxy in the foreground with the config CONFIG.lua (a Lua file\n"
    "returning a table; see kagami.lua(5) or the README). Logs go to stderr.\n"
    "SIGHUP re-reads the config and reopens the diff log; SIGINT or SIGTERM\n"
    "stop gracefully (in-flight master responses finish, results are written);\n"
    "a second signal exits at once. Exit status 0 after a graceful stop, 1 when\n"
    "the config is invalid or a listen address cannot be bound.\n";

static const char kg_usage_check[] =
    "usage: kagami check CONFIG.lua\n"
    "\n"
    "Validates CONFIG.lua as `kagami run` would (every key, its type and value,\n"
    "the hooks compiled) without binding or connecting anything. Exit status 0\n"
    "with a one-line summary, or 1 with FILE:LINE: message errors on stderr.\n";

typedef struct kg_main {
  kg_config *cfg;
  kg_shared shared;        /* sinks, noise model, endpoint stats */
  atomic_uint_fast64_t conn_ids; /* shared.conn_ids points here */
  kg_worker *workers;
  int nworkers;
  uv_loop_t loop;          /* main thread: signals only */
  uv_signal_t sigint, sigterm, sighup;
  const char *path;        /* the config file, re-read on SIGHUP */
  kg_config **old_cfgs;    /* configs replaced by reloads: requests in
                              flight may still use them; freed at exit */
  size_t nold;
  uv_async_t exit_async;   /* a worker's loop ended */
  kg_admin_ctx admin;      /* what the admin listener reads; admin.admin
                              is set while it runs (on this loop) */
  uv_work_t pool_start;    /* the thread pool's first job (see below) */
  bool stopping;
} kg_main;

static void kg_main_pool_noop(uv_work_t *req) { (void)req; }

/* libuv makes its thread pool's threads at the pool's first job, and a
 * new thread takes the name of the thread that made it: make them here,
 * under their own name, rather than in whichever worker compares first
 * (where they would pass for that worker's event loop in top -H). */
static void kg_main_start_pool(kg_main *m) {
  char own[16];
  bool named = pthread_getname_np(pthread_self(), own, sizeof(own)) == 0;
  kg_thread_name("kg-pool");
  uv_queue_work(&m->loop, &m->pool_start, kg_main_pool_noop, NULL);
  if (named) kg_thread_name(own);
}

/* Tells the service manager (if any) our state; a message it cannot get
 * is logged, not fatal: kagami serves either way. */
static void kg_main_notify(const char *state) {
  int rc = kg_notify_send(state);
  if (rc < 0)
    kg_log_warn("NOTIFY_SOCKET: cannot send %s: %s", state, strerror(-rc));
}

static void kg_main_on_signal(uv_signal_t *s, int signum) {
  kg_main *m = s->data;
  if (m->stopping) {
    kg_log_warn("second signal: exiting now");
    _exit(1);
  }
  m->stopping = true;
  kg_main_notify("STOPPING=1");
  kg_log_info("received %s: stopping (finishing in-flight requests)",
              signum == SIGINT ? "SIGINT" : "SIGTERM");
  for (int i = 0; i < m->nworkers; i++) kg_worker_request_stop(&m->workers[i]);
  /* A second signal must still reach us, so the handlers stay until the
   * workers are done; see kg_main_run. */
}

static bool kg_str_same(const char *a, const char *b) {
  return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* What a reload cannot change: sockets already bound, files already open,
 * threads already running, shared state sized for the old config. Returns
 * the first such setting that differs, or NULL. */
static const char *kg_reload_blocker(const kg_config *a, const kg_config *b) {
  if (a->nlisten != b->nlisten) return "listen";
  for (size_t i = 0; i < a->nlisten; i++)
    if (strcmp(a->listen[i].text, b->listen[i].text) != 0) return "listen";
  if (a->workers != b->workers) return "workers";
  if (a->nbackends != b->nbackends) return "backends (names)";
  for (size_t i = 0; i < a->nbackends; i++)
    if (strcmp(a->backends[i].name, b->backends[i].name) != 0 ||
        a->backends[i].secondary != b->backends[i].secondary)
      return "backends (names)";
  if (!kg_str_same(a->diff_log, b->diff_log)) return "diff_log";
  if (!kg_str_same(a->store_path, b->store_path)) return "store";
  if (!kg_str_same(a->store_url, b->store_url)) return "store";
  if (!kg_str_same(a->instance, b->instance)) return "instance";
  if (!kg_str_same(a->record_file, b->record_file)) return "record";
  if ((a->admin == NULL) != (b->admin == NULL) ||
      (a->admin && strcmp(a->admin->text, b->admin->text) != 0))
    return "admin";
  if (a->noise_learn != b->noise_learn || a->noise_threshold != b->noise_threshold ||
      a->noise_min_pairs != b->noise_min_pairs)
    return "noise";
  if (a->latency_regression != b->latency_regression) return "latency_regression";
  if (a->max_endpoints != b->max_endpoints) return "max_endpoints";
  return NULL;
}

/* tls.verify = false is allowed only as a choice someone sees: one line
 * per such backend at start and at every reload. */
static void kg_main_warn_unverified(const kg_config *cfg) {
  for (size_t i = 0; i < cfg->nbackends; i++)
    if (cfg->backends[i].tls && !cfg->backends[i].tls_cfg.verify)
      kg_log_warn("backend %s (%s): TLS certificate verification is off "
                  "(tls.verify = false): any server can pose as it",
                  cfg->backends[i].name, cfg->backends[i].url);
}

/* The reload itself (kg_main_on_sighup): reopen the sinks' files, then
 * read the config again and hand it to the workers, or log why not. */
static void kg_main_reload(kg_main *m, int signum) {
  kg_sinks_reopen(&m->shared.sinks);
  char err[8192];
  kg_config *cfg = NULL;
  if (kg_config_load(m->path, &cfg, err, sizeof(err)) < 0) {
    kg_log_error("reload failed, keeping the running config: %s", err);
    return;
  }
  const char *blocker = kg_reload_blocker(m->cfg, cfg);
  if (blocker) {
    kg_log_error("reload refused, keeping the running config: %s cannot "
                 "change without a restart", blocker);
    kg_config_free(cfg);
    return;
  }
  m->old_cfgs = kg_realloc(m->old_cfgs, (m->nold + 1) * sizeof(kg_config *));
  m->old_cfgs[m->nold++] = m->cfg;
  m->cfg = cfg;
  m->admin.cfg = cfg; /* a new token or backend URL applies at once */
  for (int i = 0; i < m->nworkers; i++) kg_worker_request_reload(&m->workers[i], cfg);
  kg_log_info("reloaded %s (signal %d)", m->path, signum);
  kg_main_warn_unverified(cfg);
}

/* SIGHUP: the sinks reopen their files (logrotate renames the diff log,
 * then signals), and the config is read again. A valid one applies to
 * requests that start from now on (each worker swaps it in on its own
 * loop); an invalid one is logged and the running config stays. */
static void kg_main_on_sighup(uv_signal_t *s, int signum) {
  kg_main *m = s->data;
  if (m->stopping) return;
  /* systemd holds `systemctl reload` until READY=1 follows RELOADING=1,
   * whether the new config was taken or refused (the running one stays). */
  int rc = kg_notify_reloading();
  if (rc < 0) kg_log_warn("NOTIFY_SOCKET: cannot send RELOADING=1: %s", strerror(-rc));
  kg_main_reload(m, signum);
  kg_main_notify("READY=1");
}

static void kg_worker_thread(void *arg) {
  kg_worker *w = arg;
  char name[16];
  snprintf(name, sizeof(name), "kg-worker-%d", w->id);
  kg_thread_name(name);
  kg_worker_run(w);
  atomic_store(&w->exited, true);
  uv_async_send(w->exit_async);
}

/* Once every worker has ended, close the main loop's handles so that it
 * ends too. Until then signals keep being handled. */
static void kg_main_on_worker_exit(uv_async_t *a) {
  kg_main *m = a->data;
  for (int i = 0; i < m->nworkers; i++)
    if (!atomic_load(&m->workers[i].exited)) return;
  kg_admin_stop(&m->admin);
  uv_close((uv_handle_t *)&m->sigint, NULL);
  uv_close((uv_handle_t *)&m->sigterm, NULL);
  uv_close((uv_handle_t *)&m->sighup, NULL);
  uv_close((uv_handle_t *)&m->exit_async, NULL);
}

static void kg_log_start(const kg_config *cfg) {
  kg_buf b = KG_BUF_INIT;
  kg_buf_appendf(&b, "kagami %s listening on", KG_VERSION);
  for (size_t i = 0; i < cfg->nlisten; i++)
    kg_buf_appendf(&b, "%s %s%s", i ? "," : "", cfg->listen[i].text,
                   cfg->listen_tls[i] ? " (tls)" : "");
  kg_buf_appendf(&b, " (%d worker%s); master %s %s", cfg->workers,
                 cfg->workers == 1 ? "" : "s", cfg->backends[0].name,
                 cfg->backends[0].url);
  for (size_t i = 1; i < cfg->nbackends; i++)
    kg_buf_appendf(&b, "%s %s %s", i == 1 ? "; shadows" : ",",
                   cfg->backends[i].name, cfg->backends[i].url);
  if (cfg->diff_log) kg_buf_appendf(&b, "; diff log %s", cfg->diff_log);
  if (cfg->store_path) kg_buf_appendf(&b, "; store %s", cfg->store_path);
  if (cfg->store_url) { /* the password never reaches a log */
    kg_buf_appends(&b, "; store ");
    kg_pgstore_mask(cfg->store_url, &b);
    kg_buf_appendf(&b, " as instance %s", cfg->instance);
  }
  if (cfg->admin)
    kg_buf_appendf(&b, "; admin %s://%s/", cfg->admin_tls ? "https" : "http",
                   cfg->admin->text);
  if (cfg->noise_learn) {
    kg_buf_appendf(&b, "; learning noise from %s", cfg->secondary >= 0
                                                       ? cfg->backends[cfg->secondary].name
                                                       : "the shadow asked twice");
    if (cfg->secondary < 0)
      kg_buf_appendf(&b, " (%.0f%% of shadowed safe requests)", cfg->noise_repeat * 100);
    kg_buf_appendf(&b, " after %llu pairs", (unsigned long long)cfg->noise_min_pairs);
  }
  if (cfg->record_file)
    kg_buf_appendf(&b, "; recording %.0f%% of requests to %s", cfg->record_sample * 100,
                   cfg->record_file);
  kg_log_info("%s", b.data);
  kg_buf_free(&b);
  kg_main_warn_unverified(cfg);
}

static void kg_log_stop(const kg_main *m) {
  kg_stats t = {0};
  for (int i = 0; i < m->nworkers; i++) kg_stats_add(&t, &m->workers[i].stats);
  kg_buf be = KG_BUF_INIT;
  for (size_t i = 0; i < m->cfg->nbackends; i++)
    kg_buf_appendf(&be, "%s%s%s", i ? ", " : "", m->cfg->backends[i].name,
                   i == 0 ? " (master)" : "");
  kg_log_info(
      "stopped listening on %s (backends %s): %llu connections, %llu requests, %llu bad, "
      "%llu shadowed, %llu compared, %llu differing, %llu failed, %llu dropped, "
      "%llu aborted, %llu results dropped, %llu master errors, %llu shadow errors",
      m->cfg->listen[0].text, be.data, (unsigned long long)t.connections,
      (unsigned long long)t.requests, (unsigned long long)t.bad_requests,
      (unsigned long long)t.shadowed, (unsigned long long)t.compared,
      (unsigned long long)t.differing, (unsigned long long)t.failed,
      (unsigned long long)t.dropped,
      (unsigned long long)t.aborted, (unsigned long long)t.results_dropped,
      (unsigned long long)t.master_errors,
      (unsigned long long)t.shadow_errors);
  kg_buf_free(&be);
}

/* An output file kagami cannot create or write: the usual first failure
 * under a service manager, whose working directory ("/" or a state
 * directory) is where a relative path lands. When err (the sinks' message,
 * which starts with `prefix` when it is about this output) concerns a file
 * in a directory we cannot write, or a file we cannot write, appends who
 * we are, where that is, and `fix`, the key to set and to what, naming
 * the config file. Otherwise leaves err as it is (a corrupt or locked
 * store already says its own remedy). */
static void kg_main_hint_path(const char *path, const char *prefix,
                              const char *fix, const char *config, char *err,
                              size_t errlen) {
  if (path == NULL || strncmp(err, prefix, strlen(prefix)) != 0) return;
  char *copy = kg_strdup(path);
  const char *dir = dirname(copy);
  /* As the effective user: the one that opens the file. */
  bool dir_ok = euidaccess(dir, W_OK | X_OK) == 0;
  bool file_ok = euidaccess(path, F_OK) != 0 || euidaccess(path, W_OK) == 0;
  char cwd[512] = "";
  if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL) cwd[0] = '\0';
  size_t used = strlen(err);
  if (!(dir_ok && file_ok) && used < errlen) {
    bool here = !dir_ok && strcmp(dir, ".") == 0 && cwd[0];
    snprintf(err + used, errlen - used,
             "; kagami runs as uid %u and cannot write %s %s%s%s%s: %s in %s",
             (unsigned)geteuid(),
             dir_ok ? "the file" : here ? "in the working directory" : "in the directory",
             here ? cwd : dir_ok ? path : dir,
             !here && cwd[0] ? " (relative to the working directory " : "",
             !here ? cwd : "", !here && cwd[0] ? ")" : "", fix, config);
  }
  free(copy);
}

static int kg_main_run(const char *path) {
  char err[8192];
  kg_main m = {0};
  if (kg_config_load(path, &m.cfg, err, sizeof(err)) < 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int rc = 1;
  /* Requests are bounded by the config; the parser's own global limit
   * only needs to stay above ours (backend heads are not limited). */
  http_parser_set_max_header_size(
      (uint32_t)KG_MAX(m.cfg->max_header_bytes * 2, 256 * 1024));
  signal(SIGPIPE, SIG_IGN);
  /* glibc hands heap memory back to the kernel whenever 128 KB lie free at
   * the top of an arena, and every comparison's trees and buffers then
   * fault it in again: on a noisy 20 KB page that was a third of the
   * comparison's time. Keeping up to 8 MB per arena costs little beside
   * the bodies kagami holds anyway. Fixed thresholds also stop glibc's
   * own adjusting, so say where big buffers go: heap up to 4 MB, mmap
   * above (returned at once). */
  mallopt(M_TRIM_THRESHOLD, 8 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  if (kg_worker_check_addresses(m.cfg, err, sizeof(err)) < 0) {
    kg_log_error("%s", err);
    goto out;
  }
  kg_htmldiff_global_init();
  atomic_init(&m.conn_ids, 0);
  m.shared.conn_ids = &m.conn_ids;
  m.shared.epstats = kg_epstats_new(m.cfg->nbackends, m.cfg->latency_regression,
                                    (size_t)m.cfg->max_endpoints);
  if (m.cfg->noise_learn)
    m.shared.noise = kg_noise_new(m.cfg->noise_threshold, m.cfg->noise_min_pairs);
  if (m.cfg->record_file &&
      kg_recorder_open(m.cfg, &m.shared.recorder, err, sizeof(err)) < 0) {
    kg_log_error("%s", err);
    goto out;
  }
  /* Opened before any worker starts: a diff log that cannot be written, or
   * a store that is corrupt, foreign or used by another kagami, stops us
   * here, with its path in the message. */
  if (kg_sinks_open(m.cfg, &m.shared.sinks, err, sizeof(err)) < 0) {
    kg_main_hint_path(m.cfg->store_path, "store ",
                      "set store = \"/var/lib/kagami/kagami.db\" (a directory "
                      "kagami can write) or store = false",
                      path, err, sizeof(err));
    kg_main_hint_path(m.cfg->diff_log, "diff log ",
                      "set diff_log = \"/var/log/kagami/diffs.jsonl\" (a "
                      "directory kagami can write) or remove diff_log",
                      path, err, sizeof(err));
    kg_log_error("%s", err);
    goto out;
  }
  kg_sinks_share_noise(&m.shared.sinks, m.shared.noise);
  m.workers = kg_calloc((size_t)m.cfg->workers, sizeof(kg_worker));
  for (; m.nworkers < m.cfg->workers; m.nworkers++) {
    if (kg_worker_init(&m.workers[m.nworkers], m.nworkers, m.cfg, &m.shared,
                       err, sizeof(err)) < 0) {
      kg_log_error("%s", err);
      goto stop_workers;
    }
  }
  uv_loop_init(&m.loop);
  /* Bound before any worker thread starts, so that a taken admin port
   * stops us before a single client is served. */
  m.admin = (kg_admin_ctx){.cfg = m.cfg, .workers = m.workers, .nworkers = m.nworkers,
                           .epstats = m.shared.epstats, .noise = m.shared.noise,
                           .sinks = &m.shared.sinks};
  if (m.cfg->admin && kg_admin_start(&m.loop, &m.admin, err, sizeof(err)) < 0) {
    kg_log_error("%s", err);
    uv_run(&m.loop, UV_RUN_DEFAULT); /* the listener's close callback */
    uv_loop_close(&m.loop);
    goto stop_workers;
  }
  uv_signal_init(&m.loop, &m.sigint);
  uv_signal_init(&m.loop, &m.sigterm);
  m.sigint.data = m.sigterm.data = &m;
  uv_signal_start(&m.sigint, kg_main_on_signal, SIGINT);
  uv_signal_start(&m.sigterm, kg_main_on_signal, SIGTERM);
  m.path = path;
  uv_signal_init(&m.loop, &m.sighup);
  m.sighup.data = &m;
  uv_signal_start(&m.sighup, kg_main_on_sighup, SIGHUP);
  uv_async_init(&m.loop, &m.exit_async, kg_main_on_worker_exit);
  m.exit_async.data = &m;
  kg_main_start_pool(&m);
  for (int i = 0; i < m.nworkers; i++) {
    m.workers[i].exit_async = &m.exit_async;
    uv_thread_create(&m.workers[i].thread, kg_worker_thread, &m.workers[i]);
  }
  kg_log_start(m.cfg);
  /* Every listener (proxy and admin) is bound by now: clients can come. */
  kg_main_notify("READY=1");
  uv_run(&m.loop, UV_RUN_DEFAULT);
  for (int i = 0; i < m.nworkers; i++) uv_thread_join(&m.workers[i].thread);
  uv_loop_close(&m.loop);
  kg_log_stop(&m);
  rc = 0;
stop_workers:
  for (int i = 0; i < m.nworkers; i++) {
    if (rc != 0) { /* init failed part-way: unwind the ones that started */
      kg_worker_request_stop(&m.workers[i]);
      kg_worker_run(&m.workers[i]);
    }
    kg_worker_destroy(&m.workers[i]);
  }
  free(m.workers);
out:
  kg_recorder_close(m.shared.recorder);
  kg_sinks_close(&m.shared.sinks); /* workers are gone: no batch is running */
  kg_noise_free(m.shared.noise);
  kg_epstats_free(m.shared.epstats);
  kg_config_free(m.cfg);
  for (size_t i = 0; i < m.nold; i++) kg_config_free(m.old_cfgs[i]);
  free(m.old_cfgs);
  return rc;
}

static int kg_main_check(const char *path) {
  char err[8192];
  kg_config *cfg = NULL;
  if (kg_config_load(path, &cfg, err, sizeof(err)) < 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  kg_hooks *h = NULL;
  if (kg_hooks_new(cfg, &h, err, sizeof(err)) < 0) {
    fprintf(stderr, "%s\n", err);
    kg_config_free(cfg);
    return 1;
  }
  printf("%s: ok (master %s, %zu shadow%s)\n", path, cfg->backends[0].name,
         cfg->nbackends - 1, cfg->nbackends == 2 ? "" : "s");
  kg_hooks_free(h);
  kg_config_free(cfg);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(kg_usage, stderr);
    return 1;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
      strcmp(cmd, "help") == 0) {
    fputs(kg_usage, stdout);
    return 0;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    printf("kagami %s\n", KG_VERSION);
    return 0;
  }
  if (strcmp(cmd, "run") == 0 || strcmp(cmd, "check") == 0) {
    if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
      fputs(cmd[0] == 'r' ? kg_usage_run : kg_usage_check, stdout);
      return 0;
    }
    if (argc != 3 || argv[2][0] == '-') {
      fprintf(stderr, "kagami %s: expected exactly one CONFIG.lua argument\n%s",
              cmd, kg_usage);
      return 1;
    }
    return cmd[0] == 'r' ? kg_main_run(argv[2]) : kg_main_check(argv[2]);
  }
  if (strcmp(cmd, "config-keys") == 0) {
    if (argc != 2) {
      fprintf(stderr, "kagami config-keys: takes no arguments\n%s", kg_usage);
      return 1;
    }
    kg_buf b = {0};
    kg_config_list_keys(&b);
    fputs(b.data, stdout);
    kg_buf_free(&b);
    return 0;
  }
  if (strcmp(cmd, "report") == 0) return kg_report_main(argc - 2, argv + 2);
  if (strcmp(cmd, "show") == 0) return kg_show_main(argc - 2, argv + 2);
  if (strcmp(cmd, "replay") == 0) return kg_replay_cli_main(argc - 2, argv + 2);
  if (strcmp(cmd, "noise") == 0) return kg_noise_cli_main(argc - 2, argv + 2);
  if (strcmp(cmd, "admin") == 0) return kg_admin_cli_main(argc - 2, argv + 2);
  fprintf(stderr, "kagami: unknown %s '%s'\n%s",
          cmd[0] == '-' ? "option" : "command", cmd, kg_usage);
  return 1;
}
