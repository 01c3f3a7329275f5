/* config.h: the Lua config file, read and validated once into plain C.
 *
 * The config file is a Lua chunk returning a table (see README, "Config
 * reference"). kg_config_load runs it in a throw-away Lua state, checks
 * every key, and copies what it finds into a kg_config. The hot path only
 * reads this struct; hooks (Lua functions) are loaded separately per worker
 * by hooks.c, which runs the same file again in the worker's own state
 * (kg_config_lua_run, the same sandbox).
 *
 * The types the comparison reads (kg_rule, kg_compare_settings) are
 * declared by compare/rules.h and the address type by config/parse.h; the
 * config fills them. A new key is one row in its section's table
 * (config.c, config_compare.c, config_output.c) plus its field here. */
#ifndef KG_CONFIG_H
#define KG_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "compare/rules.h"
#include "config/parse.h"

struct kg_buf;

#define KG_MAX_BACKENDS 32

struct kg_tls_ctx;

/* A `tls = { ... }` table (a backend's, a listener's): as written. The
 * context built from it (net/tls.h) is what connections use. */
typedef struct kg_tls_cfg {
  char *ca;          /* owned: trust anchors (PEM); NULL: system store */
  char *cert;        /* owned: certificate chain (PEM): a listener's, or a
                        backend's client certificate for mTLS */
  char *key;         /* owned: its private key (PEM) */
  char *server_name; /* owned: name checked and sent as SNI; NULL: the
                        url's host */
  char *ciphers;     /* owned: OpenSSL cipher list (TLS 1.2); NULL: default */
  int min_version;   /* 12 or 13 (written "1.2", "1.3"); default 12 */
  bool verify;       /* check the backend's certificate; default true */
} kg_tls_cfg;

typedef struct kg_backend_cfg {
  char *name;        /* owned: the key in `backends` */
  char *url;         /* owned: as written, "http://host:port" */
  kg_addr addr;      /* host and port of the url, resolved */
  const struct kg_conn_ops *transport; /* what the url's scheme names
                                          (net/conn.h), static */
  kg_tls_cfg tls_cfg;  /* its `tls` table (https urls only) */
  struct kg_tls_ctx *tls; /* owned: built from tls_cfg for an https url,
                             else NULL; shared by every worker's pool */
  bool master;       /* exactly one backend is the master */
  bool secondary;    /* a second instance of the master's version: what
                        differs between it and the master is noise */
  uint64_t shadow_methods;  /* this shadow's own method mask, when
                               has_shadow_methods (else the global one) */
  bool has_shadow_methods;
} kg_backend_cfg;

struct kg_endpoint_rules;

typedef struct kg_config {
  char *path;                 /* owned: the file it was read from */
  kg_addr *listen;            /* owned array of nlisten addresses */
  struct kg_tls_ctx **listen_tls; /* owned array of nlisten: the server
                                 context of a TLS listener, NULL for a
                                 plain one */
  kg_tls_cfg *listen_tls_cfg; /* owned array of nlisten: as written */
  size_t nlisten;
  uint64_t client_timeout_ms; /* written in seconds (fractions allowed),
                                 kept in ms, the unit timers take; 15 s */
  uint64_t backend_timeout_ms; /* the same; default 10 s */
  kg_backend_cfg *backends;   /* owned array; the master is backends[0],
                                 shadows follow sorted by name */
  size_t nbackends;           /* 1..KG_MAX_BACKENDS */
  uint64_t shadow_methods;    /* bit (1 << enum http_method); default GET|HEAD */
  double sample;              /* 0..1; default 1.0 */
  char *diff_log;             /* owned; NULL when not configured */
  size_t max_capture_bytes;   /* per response body kept for comparing; 8 MiB */
  size_t max_header_bytes;    /* request head limit -> 431; default 64 KiB */
  size_t max_headers;         /* header field count limit -> 431; default 100 */
  size_t max_body_bytes;      /* request body limit -> 413; default 16 MiB */
  size_t max_connections;     /* client connections per worker; 10000 */
  size_t shadow_max_inflight; /* per shadow backend per worker; over it the
                                 shadow copy is dropped and counted; 1000 */
  size_t shadow_max_inflight_bytes; /* response bytes captured by in-flight
                                 shadow requests, per backend per worker;
                                 over it new copies are dropped; 64 MiB */
  size_t shadow_max_body_bytes; /* requests with a larger body go to the
                                 master only (counted); 16 MiB */
  int workers;                /* event-loop threads; default 1 */
  int hook_budget;            /* Lua instructions per hook call; 1000000 */
  /* comparison (config_compare.c) */
  kg_compare_settings compare; /* headers: what compare/ reads */
  kg_rule *rules;             /* owned array, in config order */
  size_t nrules;
  struct kg_endpoint_rules *endpoints; /* owned templating overrides or NULL */
  double max_per_endpoint_per_s; /* 0: no cap */
  double latency_regression;  /* shadow p90 / master p90 flag; 1.5 */
  int max_endpoints;          /* endpoints with statistics of their own;
                                 later ones count under "(other)"; 1000 */
  bool noise_learn;           /* learn noise from noise pairs */
  double noise_threshold;     /* share of pairs; 0.2 */
  uint64_t noise_min_pairs;   /* pairs before anything counts as noisy; 10 */
  double noise_repeat;        /* noise.shadow_twice: share of shadowed safe
                                 requests also sent to the first shadow a
                                 second time; 0 */
  int secondary;              /* index of the secondary backend, or -1 */
  /* results store, admin listener, recording (config_output.c) */
  char *store_path;           /* owned; NULL when store = false or a
                                 PostgreSQL url; default "kagami.db" */
  char *store_url;            /* owned: "postgresql://..." (a fleet's
                                 shared store), or NULL; may hold a
                                 password: never log it unmasked */
  char *instance;             /* owned: this kagami's name in a shared
                                 store; default the host name */
  uint64_t store_keep_differing; /* differing results kept per endpoint;
                                    default 1000 */
  uint64_t store_keep_equal;  /* sampled equal results kept per endpoint;
                                 default 100 */
  uint64_t store_keep_equal_per_minute; /* equal results sampled per
                                 endpoint per minute; default 2 */
  uint64_t store_max_rows;    /* individual results kept in all (every
                                 endpoint together); default 100000 */
  double store_max_days;      /* aggregates and results kept; default 7 */
  size_t store_max_body_bytes; /* per stored body, before compression;
                                  default 256 KiB */
  char **redact_headers;      /* owned: values never stored or recorded
                                 (Authorization, Cookie, Set-Cookie,
                                 Proxy-Authorization, plus configured) */
  size_t nredact_headers;
  kg_addr *admin;             /* owned; NULL when off */
  struct kg_tls_ctx *admin_tls; /* owned: the admin listener's TLS server
                                 context, or NULL for plain HTTP */
  kg_tls_cfg admin_tls_cfg;   /* its `tls` table, as written */
  char *admin_token;          /* owned bearer token, or NULL */
  char *record_file;          /* owned; NULL when not recording */
  double record_sample;       /* share of requests recorded; 1.0 */
  bool record_bodies;         /* record request and response bodies; true */
  uint64_t record_max_bytes;  /* rotate the file past this; 1 GiB */
  bool record_keep_credentials; /* keep Authorization/Cookie; false */
  bool has_select_backends;   /* the hook functions are present */
  bool has_munge_headers;
  bool has_on_backends_finished;
} kg_config;

/* Loads and validates `path`. On success returns 0 and a config the caller
 * frees with kg_config_free. On failure returns -1 and writes one message
 * of the form "FILE:LINE: what is wrong" into err (errlen bytes). */
int kg_config_load(const char *path, kg_config **out, char *err, size_t errlen);
void kg_config_free(kg_config *cfg);

/* Loads the config file as a Lua chunk onto L's stack (lua_load's status;
 * on failure the message is on the stack). Messages that Lua makes about
 * this chunk must go through kg_config_lua_message, which puts the file's
 * full path where Lua's (length-limited) chunk name stands. */
typedef struct lua_State lua_State;
struct kg_buf;
int kg_config_lua_load(lua_State *L, const char *path);
/* Makes L safe to run a config in (call after luaL_openlibs: no __gc
 * metamethods), loads the file and runs its top level under an instruction
 * budget, leaving what it returned (or the error message) on the stack.
 * Returns lua_pcall's status; the budget stays armed. The same for
 * `kagami check`, start, reload and every worker's hook state. */
int kg_config_lua_run(lua_State *L, const char *path);
void kg_config_lua_message(const char *msg, const char *path,
                           struct kg_buf *out);

/* latency_regression when the config does not say, and for the readers of
 * a store that have no config (`kagami report --db`, `kagami admin --db`). */
#define KG_CONFIG_DEFAULT_LATENCY_REGRESSION 1.5

/* A store given as a PostgreSQL url (postgresql:// or postgres://) rather
 * than an SQLite file path. */
bool kg_config_is_pg_url(const char *s);

/* A secret kept out of argv and config files (a store url with its
 * password, a token): the value of the environment variable env_name when
 * it is given, else the first line of the file file_path. Returns an owned
 * string, or NULL with why in err ("environment variable X is not set",
 * "PATH: No such file or directory", "PATH is empty"). The same for the
 * store key's url_env / url_file and the command line's --db-env /
 * --db-file / --token-file. */
char *kg_config_read_secret(const char *env_name, const char *file_path, char *err,
                            size_t errlen);

/* Index of the backend called `name`, or -1. */
int kg_config_backend_index(const kg_config *cfg, const char *name);

/* Writes every key a config may hold to out, one line each:
 * "PATH<TAB>TYPE<TAB>DEFAULT", PATH dotted ("noise.learn"), with NAME for
 * a backend's name and [] for an entry of a list ("rules[].ignore");
 * DEFAULT is empty when the key has none (or one only prose can say).
 * The tables the loader reads are the source, so what this lists is what
 * `kagami check` accepts: docs are checked against it (scripts/man.py). */
void kg_config_list_keys(struct kg_buf *out);

/* Line in `source` where the dotted key path (e.g. "backends.newdb.url")
 * is written, found by scanning for each component in turn; 0 if unknown.
 * Exposed for the unit tests. */
int kg_config_locate(const char *source, const char *keypath);

#endif
