/* xmlarena.h: libxml2's memory during one HTML comparison, in one arena.
 *
 * Parsing a page builds a tree of many small blocks (a node, its name, each
 * attribute, each text); freeing it gives them all back one by one. On a
 * ~20 KB page that malloc/free traffic, and the page faults of the heap
 * shrinking after each tree and growing again for the next, cost more than
 * the parse itself. Between kg_xmlarena_begin and kg_xmlarena_end every
 * allocation libxml2 makes on the calling thread comes from a bump arena
 * owned by that thread; a free of an arena block does nothing, and end
 * takes everything back at once, keeping one chunk for the next comparison
 * (at most KG_XMLARENA_KEEP bytes per thread). Blocks of 64 KB and more
 * still come from malloc: they are few, and malloc grows them cheaper.
 *
 * Rules that keep this safe:
 * - kg_xmlarena_install runs once, before xmlInitParser and before any
 *   other libxml2 call (kg_htmldiff_global_init does both in order).
 * - Between begin and end the caller keeps no pointer libxml2 returned
 *   past end: trees, XPath results and contexts are freed (or abandoned)
 *   before end. End also clears libxml2's per-thread "last error", the
 *   one place where libxml2 itself keeps a copy past a call.
 * - Outside begin/end, and on threads that never call begin, libxml2 gets
 *   plain malloc/realloc/free/strdup, as without this module.
 *
 * Under AddressSanitizer the unused part of each chunk is poisoned, so a
 * read past a block, or of a block after end, is still reported. */
#ifndef KG_XMLARENA_H
#define KG_XMLARENA_H

#include <stddef.h>

/* Bytes of arena a thread keeps between comparisons: enough for the
 * trees of two ~100 KB pages; a larger page's chunks go back to malloc. */
#define KG_XMLARENA_KEEP (4u << 20)

/* Points libxml2's allocator (xmlMemSetup) at this module. */
void kg_xmlarena_install(void);
/* From now until kg_xmlarena_end, libxml2 allocates on this thread from
 * the thread's arena. Not nested. */
void kg_xmlarena_begin(void);
/* Releases everything allocated since kg_xmlarena_begin. */
void kg_xmlarena_end(void);
/* Bytes the calling thread's arena holds in chunks (for tests). */
size_t kg_xmlarena_held(void);

#endif
