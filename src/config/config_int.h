/* config_int.h: what the config loader's files share (config.c reads the
 * proxy keys, config_compare.c the comparison keys). Not for other
 * modules: they read the finished kg_config. */
#ifndef KG_CONFIG_INT_H
#define KG_CONFIG_INT_H

#include <lua.h>
#include <stddef.h>

#include "config/config.h"

typedef struct kg_cfg_ctx {
  const char *path;   /* as given, the FILE of every message */
  const char *src;    /* file text, for kg_config_locate */
  lua_State *L;
  kg_config *cfg;     /* being filled; every allocation hangs off it at once
                         so kg_config_free cleans up on any error path */
  char *err;
  size_t errlen;
  int rc;             /* result of validate(), read after the pcall */
} kg_cfg_ctx;

/* Writes "FILE:LINE: keypath: message", the line being where keypath is
 * written; returns -1 so callers can `return kg_cfg_fail(...)`. */
int kg_cfg_fail(kg_cfg_ctx *c, const char *keypath, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A short description of the Lua value at idx for "got ..." messages. */
const char *kg_cfg_describe(lua_State *L, int idx, char *out, size_t outlen);
/* Pushes t[name] without metamethods; returns its type. */
int kg_cfg_rawfield(lua_State *L, int t, const char *name);
/* Entries of the list at idx, or -1 when it has non-list keys. */
lua_Integer kg_cfg_list_len(lua_State *L, int idx);
/* Rejects keys of the table at idx not in `allowed` (with a suggestion). */
int kg_cfg_check_keys(kg_cfg_ctx *c, int idx, const char *prefix,
                      const char *const *allowed, size_t nallowed);

/* The top-level keys config_output.c reads, and the loader. */
extern const char *const kg_cfg_output_keys[];
extern const size_t kg_cfg_noutput_keys;
int kg_cfg_load_output(kg_cfg_ctx *c, int t);
void kg_cfg_free_output(kg_config *cfg);
/* A list of strings at idx (each checked by check, which may be NULL)
 * into *out (owned) and *n. */
int kg_cfg_strlist(kg_cfg_ctx *c, int idx, const char *kp, char ***out,
                   size_t *n, int (*check)(const char *, char *, size_t));
/* Validates an HTTP field name (for lists of header names). */
int kg_cfg_check_header_name(const char *s, char *err, size_t errlen);
/* Appends name to a list of header names unless it is there already
 * (compared case-insensitively). */
void kg_cfg_add_name(char ***list, size_t *n, const char *name);
/* Typed readers of the value at idx, for the section files: each writes
 * *out, or fails with "kp: expected ..., got ..." and returns -1. */
int kg_cfg_bool(kg_cfg_ctx *c, int idx, const char *kp, bool *out);
int kg_cfg_share(kg_cfg_ctx *c, int idx, const char *kp, double *out);
int kg_cfg_count(kg_cfg_ctx *c, int idx, const char *kp, uint64_t *out);
/* Writes s (len bytes) into out quoted like a Lua string literal, cut at
 * 60 bytes, for messages that show a bad value (parse.c). */
void kg_cfg_quote(char *out, size_t outlen, const char *s, size_t len);
/* True when s[0..n) is one or more ASCII digits (parse.c). */
bool kg_cfg_all_digits(const char *s, size_t n);

/* The top-level keys config_compare.c reads, for the unknown-key check. */
extern const char *const kg_cfg_compare_keys[];
extern const size_t kg_cfg_ncompare_keys;
/* Reads them from the table at index t into c->cfg. 0 or -1. */
int kg_cfg_load_compare(kg_cfg_ctx *c, int t);
void kg_cfg_free_compare(kg_config *cfg);

#endif
