/* fuzz_config: arbitrary Lua text -> kg_config_load and kg_config_locate.
 *
 * The input is a whole config file. It is written to an in-memory file
 * (memfd) once per run and loaded by path, exactly as `kagami check` does.
 *
 * A config is Lua code, run by the loader, so this binary links the loader
 * against three stand-ins (ld --wrap, see FUZZ_LDFLAGS_config):
 *   - luaL_newstate: a state whose allocator fails past FZ_LUA_MEM, so a
 *     config that allocates without bound meets Lua's "not enough memory"
 *     (an error path of the loader worth fuzzing) instead of ending the
 *     run on libFuzzer's malloc limit;
 *   - luaL_openlibs: only libraries without side effects, so that fuzzed
 *     code cannot touch files, run commands, block on stdin, exit, change
 *     the locale, load bytecode (which can crash the VM by design) or lift
 *     a hook with the debug library;
 *   - getaddrinfo: numeric hosts and "localhost" only, so a backend url
 *     with a made-up name fails at once instead of waiting on DNS;
 *   - lua_sethook: the loader's own instruction budget, cut to
 *     FZ_LUA_BUDGET so that looping inputs fail in milliseconds rather
 *     than in a second each. The loader must set a budget itself: without
 *     one a looping input hangs the run (libFuzzer's -timeout), as it hung
 *     `kagami check` before the budget was added.
 *
 * What must hold: a load either succeeds with a config that obeys the
 * documented invariants (one master, first; 1..KG_MAX_BACKENDS backends;
 * at least one listen address) or fails with one message in the form
 * "FILE:LINE: message"; kg_config_locate returns a line of the text or 0. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <netdb.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"
#include "fuzz_util.h"

/* --- the stand-ins ------------------------------------------------------- */

#define FZ_LUA_MEM ((size_t)64 << 20)

typedef struct fz_lua_mem {
  size_t used; /* bytes the state holds now */
} fz_lua_mem;

/* lua_Alloc: realloc with a budget. For a new block osize is a type tag,
 * not a size, hence the ptr test. */
static void *fz_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  fz_lua_mem *m = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    m->used -= old;
    return NULL;
  }
  if (nsize > old && m->used - old + nsize > FZ_LUA_MEM) return NULL;
  void *p = realloc(ptr, nsize);
  if (p != NULL) m->used = m->used - old + nsize;
  return p;
}

static int fz_lua_panic(lua_State *L) {
  fprintf(stderr, "unprotected Lua error: %s\n", lua_tostring(L, -1));
  abort();
}

/* The loader makes one state at a time, on one thread. */
static fz_lua_mem fz_mem;

lua_State *__wrap_luaL_newstate(void);
lua_State *__wrap_luaL_newstate(void) {
  fz_mem.used = 0;
  lua_State *L = lua_newstate(fz_lua_alloc, &fz_mem);
  if (L != NULL) lua_atpanic(L, fz_lua_panic);
  return L;
}

void __wrap_luaL_openlibs(lua_State *L);
void __wrap_luaL_openlibs(lua_State *L) {
  static const luaL_Reg libs[] = {
      {LUA_GNAME, luaopen_base},         {LUA_TABLIBNAME, luaopen_table},
      {LUA_STRLIBNAME, luaopen_string},  {LUA_MATHLIBNAME, luaopen_math},
      {LUA_UTF8LIBNAME, luaopen_utf8},   {LUA_COLIBNAME, luaopen_coroutine},
      {LUA_OSLIBNAME, luaopen_os},
  };
  for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
    luaL_requiref(L, libs[i].name, libs[i].func, 1);
    lua_pop(L, 1);
  }
  static const char *const unsafe_globals[] = {"dofile", "loadfile", "load", "print"};
  for (size_t i = 0; i < sizeof(unsafe_globals) / sizeof(unsafe_globals[0]); i++) {
    lua_pushnil(L);
    lua_setglobal(L, unsafe_globals[i]);
  }
  /* os keeps getenv, time, clock, date, difftime: what configs use. */
  static const char *const unsafe_os[] = {"execute", "exit", "remove", "rename",
                                          "tmpname", "setlocale"};
  lua_getglobal(L, LUA_OSLIBNAME);
  for (size_t i = 0; i < sizeof(unsafe_os) / sizeof(unsafe_os[0]); i++) {
    lua_pushnil(L);
    lua_setfield(L, -2, unsafe_os[i]);
  }
  lua_pop(L, 1);
}

int __real_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res) {
  struct addrinfo h = hints ? *hints : (struct addrinfo){0};
  if (node == NULL || strcmp(node, "localhost") != 0) h.ai_flags |= AI_NUMERICHOST;
  return __real_getaddrinfo(node, service, &h, res);
}

#define FZ_LUA_BUDGET 1000000

void __real_lua_sethook(lua_State *L, lua_Hook f, int mask, int count);
void __wrap_lua_sethook(lua_State *L, lua_Hook f, int mask, int count);
void __wrap_lua_sethook(lua_State *L, lua_Hook f, int mask, int count) {
  if ((mask & LUA_MASKCOUNT) && count > FZ_LUA_BUDGET) count = FZ_LUA_BUDGET;
  __real_lua_sethook(L, f, mask, count);
}

/* --- the target ------------------------------------------------------------ */

static int fz_fd = -1;
static char fz_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fz_fd = memfd_create("kagami-fuzz.lua", 0);
  if (fz_fd < 0) {
    perror("memfd_create");
    abort();
  }
  snprintf(fz_path, sizeof(fz_path), "/proc/self/fd/%d", fz_fd);
  return 0;
}

/* "FILE:LINE: message", FILE being the path the loader was given. Only the
 * first line is checked: several mistakes are one line each, but a Lua
 * error may quote the source, which is anything. */
static bool fz_well_formed_error(const char *err) {
  size_t plen = strlen(fz_path);
  if (strncmp(err, fz_path, plen) != 0 || err[plen] != ':') return false;
  const char *p = err + plen + 1;
  if (*p < '0' || *p > '9') return false;
  while (*p >= '0' && *p <= '9') p++;
  return p[0] == ':' && p[1] == ' ' && p[2] != '\0';
}

static void fz_check_config(const kg_config *cfg) {
  FZ_CHECK(cfg->nbackends >= 1 && cfg->nbackends <= KG_MAX_BACKENDS);
  FZ_CHECK(cfg->backends[0].master);
  for (size_t i = 1; i < cfg->nbackends; i++) FZ_CHECK(!cfg->backends[i].master);
  for (size_t i = 0; i < cfg->nbackends; i++) {
    FZ_CHECK(cfg->backends[i].name && cfg->backends[i].name[0]);
    FZ_CHECK(kg_config_backend_index(cfg, cfg->backends[i].name) == (int)i);
  }
  FZ_CHECK(cfg->nlisten >= 1);
  FZ_CHECK(cfg->sample >= 0 && cfg->sample <= 1);
  FZ_CHECK(cfg->workers >= 1);
  FZ_CHECK(cfg->secondary == -1 ||
           (cfg->secondary > 0 && (size_t)cfg->secondary < cfg->nbackends));
}

/* A line kg_config_locate returns must hold what it located: one of the
 * path's names, or the '{' of a list entry it moved to by index. */
static void fz_check_line(const char *src, const char *path, int l) {
  int lines = 1;
  for (const char *p = src; *p; p++) lines += *p == '\n';
  FZ_CHECK(l >= 0 && l <= lines);
  if (l == 0) return;
  const char *start = src;
  for (int i = 1; i < l; i++) start = strchr(start, '\n') + 1;
  size_t len = strcspn(start, "\n");
  bool holds = memchr(start, '{', len) != NULL;
  for (const char *c = path; *c && !holds;) {
    size_t clen = strcspn(c, ".");
    if (clen > 0 && clen <= len)
      for (size_t i = 0; i + clen <= len && !holds; i++)
        holds = memcmp(start + i, c, clen) == 0;
    c += clen;
    if (*c == '.') c++;
  }
  if (!holds) {
    fprintf(stderr, "locate(%s) = line %d: \"%.*s\"\n", path, l, (int)len, start);
    FZ_CHECK(!"the located line holds the key");
  }
}

/* Key paths the loader asks kg_config_locate about, plus the input's first
 * line when it is a comment ("-- backends.x.url"), so the fuzzer can steer
 * the path as well as the text. */
static void fz_locate(const char *src) {
  static const char *const paths[] = {
      "listen", "backends", "backends.production.url", "backends.a.master",
      "rules.1.ignore", "rules.2.replace.1", "endpoints", "noise.threshold",
      "store.path", "a.b.c.d.e",
  };
  for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
    fz_check_line(src, paths[i], kg_config_locate(src, paths[i]));
  if (strncmp(src, "-- ", 3) == 0) {
    char *path = strndup(src + 3, strcspn(src + 3, "\n"));
    fz_check_line(src, path, kg_config_locate(src, path));
    free(path);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (ftruncate(fz_fd, 0) != 0 || pwrite(fz_fd, data, size, 0) != (ssize_t)size)
    abort();
  kg_config *cfg = NULL;
  char err[1024];
  int rc = kg_config_load(fz_path, &cfg, err, sizeof(err));
  if (rc == 0) {
    FZ_CHECK(cfg != NULL);
    fz_check_config(cfg);
    kg_config_free(cfg);
  } else {
    FZ_CHECK(rc == -1 && cfg == NULL);
    if (!fz_well_formed_error(err)) {
      fprintf(stderr, "malformed error message: %s\n", err);
      FZ_CHECK(!"error message in the form FILE:LINE: message");
    }
  }
  char *src = fz_strdup((fz_in){data, size});
  fz_locate(src);
  free(src);
  return 0;
}
