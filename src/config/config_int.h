/* config_int.h: what the config loader's files share. Not for other
 * modules: they read the finished kg_config (config.h) or call the pure
 * parsers (parse.h).
 *
 * The loader's files, and the one prefix they share:
 *   config.c          kg_config_load; the proxy keys (listen, backends, ...)
 *   config_compare.c  the comparison keys (headers, rules, noise, ...)
 *   config_output.c   the store, admin and recording keys
 *   read.c            the table-driven reader every section uses
 *   locate.c          key path -> FILE:LINE, and the messages
 *   suggest.c         "did you mean"
 *   parse.c           addresses, sizes, durations (public: parse.h)
 *   sandbox.c         running the file's Lua under a budget
 *   keys.c            every key with its type and default, for the docs
 * Public functions are kg_config_* (and kg_addr_* for the address type);
 * everything internal, static functions included, is kg_cfg_*. */
#ifndef KG_CONFIG_INT_H
#define KG_CONFIG_INT_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef struct kg_cfg_ctx {
  const char *path;   /* as given, the FILE of every message */
  const char *src;    /* file text, for kg_config_locate */
  lua_State *L;
  kg_config *cfg;     /* being filled; every allocation hangs off it at once
                         so kg_config_free cleans up on any error path */
  char *err;
  size_t errlen;
  int rc;             /* result of the validation, read after the pcall */
  size_t nerrors;     /* messages written to err (one per line) */
} kg_cfg_ctx;

/* ---- locate.c: messages ------------------------------------------------ */

/* Writes "FILE:LINE: keypath: message", the line being where keypath is
 * written; returns -1 so callers can `return kg_cfg_fail(...)`. */
int kg_cfg_fail(kg_cfg_ctx *c, const char *keypath, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same at a given line; `where` may be "" for no key path. */
int kg_cfg_fail_at(kg_cfg_ctx *c, int line, const char *where, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
/* A short description of the Lua value at idx for "got ..." messages. */
const char *kg_cfg_describe(lua_State *L, int idx, char *out, size_t outlen);
/* Line of the last `return` in the source (0 if none). */
int kg_cfg_locate_return(const char *source);
/* A character of a Lua identifier (ASCII letters, digits, '_'). */
bool kg_cfg_is_ident_char(char ch);

/* ---- parse.c: text helpers ---------------------------------------------- */

/* Writes s (len bytes) into out quoted like a Lua string literal, cut at
 * 60 bytes, for messages that show a bad value. */
void kg_cfg_quote(char *out, size_t outlen, const char *s, size_t len);
/* True when s[0..n) is one or more ASCII digits. */
bool kg_cfg_all_digits(const char *s, size_t n);

/* ---- suggest.c ------------------------------------------------------------ */

/* The name in names[0..n) closest to key, if close enough to be a likely
 * typo; else NULL. Ties go to the earlier name. */
const char *kg_cfg_suggest(const char *key, const char *const *names, size_t n);

/* ---- sandbox.c ------------------------------------------------------------ */

/* Reads the whole file into a NUL-terminated string the caller frees, or
 * returns NULL with errno's value in *err_no. */
char *kg_cfg_read_file(const char *path, int *err_no);

/* ---- read.c: one declarative table per config section ------------------ */

/* An address as written at idx: "host:port", or a bare port number, which
 * means 127.0.0.1:PORT (loopback: a port alone never opens kagami to the
 * network). Writes the "host:port" text to out; returns 0, or -1 after
 * kg_cfg_fail naming kp. The text is parsed by the caller. */
int kg_cfg_address(kg_cfg_ctx *c, int idx, const char *kp, char *out, size_t outlen);

/* What a key holds and how its value is checked. Each type has one message
 * for a bad value ("expected ..., got ..."), the same in every section. */
typedef enum kg_cfg_type {
  KG_CFG_BOOL,      /* bool */
  KG_CFG_SHARE,     /* double from 0 to 1 */
  KG_CFG_NUMBER,    /* double >= bound, finite */
  KG_CFG_POSITIVE,  /* double > 0, finite, in the unit named by `what` */
  KG_CFG_MS,        /* uint64_t ms, written as positive seconds */
  KG_CFG_COUNT,     /* a whole number > 0 into an unsigned field */
  KG_CFG_INT,       /* int from 1 to bound */
  KG_CFG_SIZE,      /* bytes into an unsigned field: 512 or "8MiB" */
  KG_CFG_PATH,      /* owned char *: a non-empty string without NUL */
  KG_CFG_HOOK,      /* bool: the key holds a function */
  KG_CFG_STRLIST,   /* owned char ** (count at off_n), each entry checked
                       by check_str when set */
  KG_CFG_TABLE,     /* a nested table read by the rows in sub */
  KG_CFG_CUSTOM,    /* read by `read` */
} kg_cfg_type;

enum {
  KG_CFG_ALWAYS = 1,       /* read (or default) when the key is absent too */
  KG_CFG_TERSE_SIZE = 2,   /* KG_CFG_SIZE with the store's and recording's
                              message: fewer examples, no "too large" */
  KG_CFG_FALSE_OFF = 4,    /* KG_CFG_PATH: `false` means off (left NULL),
                              as `store = false` does */
};

typedef struct kg_cfg_key kg_cfg_key;

/* Reads or checks the value at idx (nil for an absent KG_CFG_ALWAYS key)
 * for row k into base, the struct the table fills; kp is the key path for
 * messages. Returns 0 or -1 (message written). */
typedef int (*kg_cfg_reader)(kg_cfg_ctx *c, int idx, const kg_cfg_key *k,
                             const char *kp, void *base);

/* One row: a key, its type, its default and where it goes. Adding a key
 * is one row plus the struct field. */
struct kg_cfg_key {
  const char *name;
  kg_cfg_type type;
  size_t off;              /* the field in the struct the table fills */
  size_t width;            /* its size (unsigned types: 4 or 8) */
  double def;              /* default, in the unit the config is written
                              in (seconds for KG_CFG_MS), stored before
                              anything is read */
  const char *def_str;     /* default text for KG_CFG_CUSTOM readers */
  double bound;            /* KG_CFG_INT: the largest; KG_CFG_NUMBER: the
                              smallest */
  const char *what;        /* KG_CFG_POSITIVE: the unit; KG_CFG_TABLE: the
                              example in "expected ..."; KG_CFG_CUSTOM
                              with sub: the key path of one entry
                              ("backends.NAME", "rules[]") */
  unsigned flags;          /* KG_CFG_ALWAYS, KG_CFG_TERSE_SIZE */
  size_t off_n;            /* KG_CFG_STRLIST: the count's field */
  int (*check_str)(const char *s, char *err, size_t errlen); /* STRLIST */
  kg_cfg_reader read;      /* KG_CFG_CUSTOM: reads the value */
  kg_cfg_reader check;     /* any type: a check run after the row */
  const kg_cfg_key *sub;   /* KG_CFG_TABLE: its rows; KG_CFG_CUSTOM: the
                              rows of each entry its reader reads, listed
                              by kg_config_list_keys only */
  size_t nsub;
};

/* The field of a row: offset and size of T's member f. */
#define KG_CFG_AT(T, f) .off = offsetof(T, f), .width = sizeof(((T *)0)->f)

/* Stores every row's default into base (nested tables too). */
void kg_cfg_defaults(const kg_cfg_key *keys, size_t n, void *base);
/* Reads keys[0..n) from the table at t into base, in row order (so the
 * first error reported does not depend on the file); prefix is the table's
 * key path ("" at the top). Does not check for unknown keys. */
int kg_cfg_read_keys(kg_cfg_ctx *c, int t, const char *prefix,
                     const kg_cfg_key *keys, size_t n, void *base);
/* kg_cfg_check_keys against the rows' names, then kg_cfg_read_keys. */
int kg_cfg_read_table(kg_cfg_ctx *c, int t, const char *prefix,
                      const kg_cfg_key *keys, size_t n, void *base);
/* Appends the rows' names to names[*n..max). */
void kg_cfg_key_names(const kg_cfg_key *keys, size_t n, const char **names,
                      size_t *count, size_t max);

/* Pushes t[name] without metamethods; returns its type. */
int kg_cfg_rawfield(lua_State *L, int t, const char *name);
/* Entries of the list at idx, or -1 when it has non-list keys. */
lua_Integer kg_cfg_list_len(lua_State *L, int idx);
/* Entries of the list at idx; when the value is not a list, fails with
 * "kp: expected WHAT, got ..." and returns -1. */
lua_Integer kg_cfg_read_list(kg_cfg_ctx *c, int idx, const char *kp,
                             const char *what);
/* 0 when the value at idx has Lua type `type`; else fails with
 * "kp: expected WHAT, got ..." and returns -1. */
int kg_cfg_want(kg_cfg_ctx *c, int idx, const char *kp, int type,
                const char *what);
/* Rejects keys of the table at idx not in `allowed` (with a suggestion). */
int kg_cfg_check_keys(kg_cfg_ctx *c, int idx, const char *prefix,
                      const char *const *allowed, size_t nallowed);
/* A list of strings at idx (each checked by check, which may be NULL)
 * into *out (owned, allocated here) and *n. */
int kg_cfg_strlist(kg_cfg_ctx *c, int idx, const char *kp, char ***out,
                   size_t *n, int (*check)(const char *, char *, size_t));
/* A list of header names at idx added to *list / *n, each once
 * (compared case-insensitively). */
int kg_cfg_read_names(kg_cfg_ctx *c, int idx, const char *kp, char ***list,
                      size_t *n);
/* Validates an HTTP field name (a STRLIST check_str). 0 or -1 with why. */
int kg_cfg_check_header_name(const char *s, char *err, size_t errlen);
/* Appends name to a list of header names unless it is there already. */
void kg_cfg_add_name(char ***list, size_t *n, const char *name);
/* Frees a list of n owned strings and the list. */
void kg_cfg_free_strs(char **v, size_t n);

/* ---- config_tls.c: `tls = { ... }` tables ------------------------------ */

/* Reads the tls table at idx (nil: all defaults) into tc (zeroed, owned
 * by the config) for a listener (server) or a backend whose url names
 * host, checks its files and builds *out. kp is the table's key path
 * ("backends.NAME.tls"). 0, or -1 with the message written. */
int kg_cfg_tls(kg_cfg_ctx *c, int idx, const char *kp, bool server,
               const char *host, kg_tls_cfg *tc, struct kg_tls_ctx **out);
/* Frees what kg_cfg_tls stored (either may be empty). */
void kg_cfg_free_tls(kg_tls_cfg *tc, struct kg_tls_ctx *ctx);

/* ---- the sections ------------------------------------------------------- */

extern const kg_cfg_key kg_cfg_proxy_keys[];   /* config.c */
extern const size_t kg_cfg_nproxy_keys;
extern const kg_cfg_key kg_cfg_compare_keys[]; /* config_compare.c */
extern const size_t kg_cfg_ncompare_keys;
extern const kg_cfg_key kg_cfg_output_keys[];  /* config_output.c */
extern const size_t kg_cfg_noutput_keys;
/* Free what each section's custom readers allocated into cfg. */
void kg_cfg_free_compare(kg_config *cfg);
void kg_cfg_free_output(kg_config *cfg);

#endif
