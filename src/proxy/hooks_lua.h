/* hooks_lua.h: the Lua chunks hooks.c loads into every hook state, kept as
 * real .lua files beside it and embedded at build time by
 * scripts/embed_lua.py (into build/gen/hooks_lua.c). */
#ifndef KG_HOOKS_LUA_H
#define KG_HOOKS_LUA_H

#include <stddef.h>

/* src/proxy/hooks_headers.lua: header fields as case-insensitive proxy
 * tables; returns { new = new(list, readonly), export = export(proxy) }.
 * NUL-terminated; _len excludes the NUL. */
extern const char kg_hooks_headers_lua[];
extern const size_t kg_hooks_headers_lua_len;

#endif
