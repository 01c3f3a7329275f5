/* config.h: the Lua config file, read and validated once into plain C.
 *
 * The config file is a Lua chunk returning a table (see README, "Config
 * reference"). kg_config_load runs it in a throw-away Lua state, checks
 * every key, and copies what it finds into a kg_config. The hot path only
 * reads this struct; hooks (Lua functions) are loaded separately per worker
 * by hooks.c, which runs the same file again in the worker's own state. */
#ifndef KG_CONFIG_H
#define KG_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define KG_MAX_BACKENDS 32

typedef struct kg_addr {
  char *text;                   /* owned: as written, e.g. "127.0.0.1:8090" */
  char *host;                   /* owned: host part, e.g. "127.0.0.1" */
  uint16_t port;
  struct sockaddr_storage sa;   /* resolved at load time */
  socklen_t salen;
} kg_addr;

typedef struct kg_backend_cfg {
  char *name;        /* owned: the key in `backends` */
  char *url;         /* owned: as written, "http://host:port" */
  kg_addr addr;      /* host and port of the url, resolved */
  bool master;       /* exactly one backend is the master */
} kg_backend_cfg;

typedef struct kg_config {
  char *path;                 /* owned: the file it was read from */
  kg_addr *listen;            /* owned array of nlisten addresses */
  size_t nlisten;
  double client_timeout;      /* seconds; default 15 */
  double backend_timeout;     /* seconds; default 10 */
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
  int workers;                /* event-loop threads; default 1 */
  int hook_budget;            /* Lua instructions per hook call; 1000000 */
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
void kg_config_lua_message(const char *msg, const char *path,
                           struct kg_buf *out);

/* Index of the backend called `name`, or -1. */
int kg_config_backend_index(const kg_config *cfg, const char *name);

/* Parses "host:port" (IPv4, [IPv6] or a name) and resolves it. Returns 0,
 * or -1 with a message (no FILE:LINE prefix) in err. */
int kg_addr_parse(const char *text, kg_addr *out, char *err, size_t errlen);
void kg_addr_free(kg_addr *a);

/* Line in `source` where the dotted key path (e.g. "backends.newdb.url")
 * is written, found by scanning for each component in turn; 0 if unknown.
 * Exposed for the unit tests. */
int kg_config_locate(const char *source, const char *keypath);

#endif
