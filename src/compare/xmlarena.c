/* xmlarena.c: a per-thread bump arena for libxml2 (see xmlarena.h).
 *
 * Each block carries its size in a 16-byte header, so that realloc knows
 * how much to copy and can grow the newest block in place (libxml2 grows
 * its text buffers by doubling, usually right after filling them). Which
 * memory is the arena's is decided by address: a pointer inside one of the
 * thread's chunks is an arena block; anything else came from malloc
 * before begin (or on another thread) and goes to free/realloc. */
#include "compare/xmlarena.h"

#include <libxml/xmlerror.h>
#include <libxml/xmlmemory.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#if defined(__SANITIZE_ADDRESS__)
#define XA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XA_ASAN 1
#endif
#endif
#ifdef XA_ASAN
#include <sanitizer/asan_interface.h>
#define XA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define XA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define XA_POISON(p, n) ((void)(p), (void)(n))
#define XA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define XA_ALIGN 16
#define XA_HDR 16               /* bytes before each block: its size */
#define XA_FIRST (256u << 10)   /* first chunk; each new one doubles */
/* Blocks this big go to malloc even inside the arena: they are few (XPath
 * node sets, the parser's input buffer) and grow by doubling, which malloc
 * does in place or by remapping where the arena would copy. libxml2 frees
 * them like any block, and free() gets them: they are not the arena's. */
#define XA_BIG (64u << 10)

typedef struct xa_chunk {
  struct xa_chunk *next; /* older chunk */
  size_t cap;            /* bytes of blocks after this header */
  size_t used;
  size_t last; /* offset of the newest block's header (SIZE_MAX: none) */
} xa_chunk;

typedef struct xa_arena {
  xa_chunk *chunks; /* newest first */
  bool on;
} xa_arena;

_Static_assert(sizeof(xa_chunk) % XA_ALIGN == 0, "blocks must stay aligned");

/* The thread's arena, created on its first begin and freed when the
 * thread exits (the key's destructor). */
static _Thread_local xa_arena *xa_mine;
static pthread_key_t xa_key;

static char *kg_xmlarena_data(xa_chunk *c) { return (char *)(c + 1); }

static void kg_xmlarena_free_chunks(xa_chunk *c) {
  while (c) {
    xa_chunk *next = c->next;
    XA_UNPOISON(c, sizeof(*c) + c->cap);
    free(c);
    c = next;
  }
}

static void kg_xmlarena_thread_exit(void *arg) {
  xa_arena *a = arg;
  kg_xmlarena_free_chunks(a->chunks);
  free(a);
}

static xa_arena *kg_xmlarena_active(void) {
  xa_arena *a = xa_mine;
  return a && a->on ? a : NULL;
}

static xa_chunk *kg_xmlarena_owner(xa_arena *a, const void *p) {
  for (xa_chunk *c = a->chunks; c; c = c->next) {
    const char *d = kg_xmlarena_data(c);
    if ((const char *)p >= d && (const char *)p < d + c->cap) return c;
  }
  return NULL;
}

static size_t kg_xmlarena_size(const void *p) {
  size_t n;
  memcpy(&n, (const char *)p - XA_HDR, sizeof(n));
  return n;
}

static void kg_xmlarena_set_size(void *p, size_t n) {
  memcpy((char *)p - XA_HDR, &n, sizeof(n));
}

static size_t kg_xmlarena_round(size_t n) {
  return n == 0 ? XA_ALIGN : (n + XA_ALIGN - 1) & ~(size_t)(XA_ALIGN - 1);
}

static void *kg_xmlarena_alloc(xa_arena *a, size_t n) {
  size_t need = XA_HDR + kg_xmlarena_round(n);
  xa_chunk *c = a->chunks;
  if (c == NULL || c->cap - c->used < need) {
    size_t cap = c ? 2 * c->cap : XA_FIRST;
    while (cap < need) cap *= 2;
    xa_chunk *fresh = kg_malloc(sizeof(*fresh) + cap);
    *fresh = (xa_chunk){.next = c, .cap = cap, .used = 0, .last = SIZE_MAX};
    XA_POISON(kg_xmlarena_data(fresh), cap);
    a->chunks = c = fresh;
  }
  char *h = kg_xmlarena_data(c) + c->used;
  XA_UNPOISON(h, XA_HDR + n);
  c->last = c->used;
  c->used += need;
  kg_xmlarena_set_size(h + XA_HDR, n);
  return h + XA_HDR;
}

/* --- libxml2's allocator --------------------------------------------------------- */

static void *kg_xmlarena_malloc(size_t n) {
  xa_arena *a = kg_xmlarena_active();
  return a && n < XA_BIG ? kg_xmlarena_alloc(a, n) : malloc(n);
}

static void kg_xmlarena_xfree(void *p) {
  if (p == NULL) return;
  xa_arena *a = kg_xmlarena_active();
  if (a && kg_xmlarena_owner(a, p)) {
    XA_POISON(p, kg_xmlarena_size(p)); /* a later read is a use after free */
    return;
  }
  free(p);
}

static void *kg_xmlarena_realloc(void *p, size_t n) {
  xa_arena *a = kg_xmlarena_active();
  if (a == NULL) return realloc(p, n);
  if (p == NULL) return kg_xmlarena_alloc(a, n);
  xa_chunk *c = kg_xmlarena_owner(a, p);
  if (c == NULL) return realloc(p, n);
  size_t old = kg_xmlarena_size(p);
  size_t off = (size_t)((char *)p - XA_HDR - kg_xmlarena_data(c));
  if (n <= old) {
    XA_POISON((char *)p + n, old - n);
    kg_xmlarena_set_size(p, n);
    return p;
  }
  /* the newest block of its chunk grows where it is when there is room */
  if (off == c->last && c->cap - off >= XA_HDR + kg_xmlarena_round(n)) {
    XA_UNPOISON(p, n);
    c->used = off + XA_HDR + kg_xmlarena_round(n);
    kg_xmlarena_set_size(p, n);
    return p;
  }
  void *q = n < XA_BIG ? kg_xmlarena_alloc(a, n) : malloc(n);
  if (q == NULL) return NULL; /* libxml2 keeps p, as with realloc */
  memcpy(q, p, old);
  XA_POISON(p, old);
  return q;
}

static char *kg_xmlarena_strdup(const char *s) {
  xa_arena *a = kg_xmlarena_active();
  if (a == NULL) return strdup(s);
  size_t n = strlen(s) + 1;
  char *p = n < XA_BIG ? kg_xmlarena_alloc(a, n) : malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

/* --- API --------------------------------------------------------------------------- */

static void kg_xmlarena_install_once(void) {
  if (pthread_key_create(&xa_key, kg_xmlarena_thread_exit) != 0) abort();
  xmlMemSetup(kg_xmlarena_xfree, kg_xmlarena_malloc, kg_xmlarena_realloc,
              kg_xmlarena_strdup);
}

void kg_xmlarena_install(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, kg_xmlarena_install_once);
}

void kg_xmlarena_begin(void) {
  if (xa_mine == NULL) {
    xa_mine = kg_calloc(1, sizeof(*xa_mine));
    pthread_setspecific(xa_key, xa_mine);
  }
  xa_mine->on = true;
}

void kg_xmlarena_end(void) {
  xa_arena *a = xa_mine;
  /* libxml2 keeps a copy of the last error per thread; dropped while the
   * arena is still on, so that a later reset never frees arena memory */
  xmlResetLastError();
  a->on = false;
  /* keep the largest chunk that fits KG_XMLARENA_KEEP, empty */
  xa_chunk *keep = NULL;
  for (xa_chunk *c = a->chunks; c; c = c->next) {
    if (c->cap <= KG_XMLARENA_KEEP && (keep == NULL || c->cap > keep->cap)) keep = c;
  }
  xa_chunk **pp = &a->chunks;
  while (*pp) {
    xa_chunk *c = *pp;
    if (c == keep) {
      pp = &c->next;
      continue;
    }
    *pp = c->next;
    c->next = NULL;
    kg_xmlarena_free_chunks(c);
  }
  if (keep) {
    keep->used = 0;
    keep->last = SIZE_MAX;
    XA_POISON(kg_xmlarena_data(keep), keep->cap);
  }
}

size_t kg_xmlarena_held(void) {
  size_t n = 0;
  for (xa_chunk *c = xa_mine ? xa_mine->chunks : NULL; c; c = c->next) n += c->cap;
  return n;
}
