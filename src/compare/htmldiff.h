/* htmldiff.h: compares two HTML bodies as documents, not as bytes.
 *
 * Both bodies are parsed with libxml2's HTML parser and each is written out
 * as a canonical text, one line per node, indented by depth:
 *
 *   <!DOCTYPE html>
 *   <html lang="ja">
 *     <body>
 *       <p class="a" id="x">
 *         "Hello world"
 *
 * so that attribute order, insignificant whitespace, entity spelling
 * (&amp; / &#38;, &eacute; / é) and comments never count. The two texts are
 * compared with kg_linediff; its changes are reported as differences whose
 * `where` is the XPath of the node (attribute, text or element) that
 * differs. Canonical form, in detail:
 *
 * - element: `<name a="1" b="2">`, attributes sorted by name, values as the
 *   parser decoded them (whitespace kept) with \ " and control characters
 *   backslash-escaped. A value-less attribute (`<input disabled>`) has its
 *   own name as value, as libxml2 reads it.
 * - text: `"..."`, the text of adjacent text/CDATA siblings together, runs
 *   of HTML whitespace (space, tab, LF, FF, CR) made one space and trimmed;
 *   whitespace-only text is dropped. Inside <pre>, <textarea>, <listing>,
 *   <xmp> and <plaintext> text is kept exactly, except the one newline
 *   directly after the start tag that HTML ignores. Script and style
 *   contents are text like any other.
 * - doctype: `<!DOCTYPE name PUBLIC "..." "...">`, only when the body has one.
 * - dropped: comments (they mostly carry build ids and render times) and
 *   processing instructions.
 * - indentation: two spaces per level up to depth 32, then "<depth>> ".
 *
 * The canonical text carries no positional XPaths on purpose: an element
 * inserted near the top would renumber every later sibling and turn the
 * whole rest of the page into differences. XPaths are computed afterwards
 * for the changed lines only.
 *
 * Thread safety: after kg_htmldiff_global_init, every function may run on
 * any thread at the same time; nothing here touches libxml2's global or
 * per-thread error handlers. */
#ifndef KG_HTMLDIFF_H
#define KG_HTMLDIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "compare/differences.h"

/* Initialises libxml2 (xmlInitParser). Call once from the main thread before
 * any other thread uses this module. */
void kg_htmldiff_global_init(void);

typedef struct kg_htmldiff_opts {
  const char *const *ignore; /* XPath 1.0 expressions; what they select is
                                noise: elements (with their subtree),
                                attributes, text nodes, or "/" for all */
  size_t nignore;
  const char *a_label, *b_label; /* "--- "/"+++ " lines of the unified diff */
  size_t max_output;             /* cap on unified diff bytes (0 = none); the
                                    differences list is never capped by it */
  const char *encoding; /* charset from the Content-Type header, or NULL to
                           let libxml2 detect it (BOM, <meta charset>,
                           else UTF-8 falling back to Latin-1) */
} kg_htmldiff_opts;

/* Compares HTML bodies a (master) and b (shadow).
 *
 * Returns 0 when both parsed. Then the differences are appended to out:
 * - a changed text node: where = its XPath in a ("/html/body/p[2]/text()"),
 *   master/shadow = the normalised texts (unescaped);
 * - a changed attribute: where = ".../input[3]/@value", the two values
 *   (NULL on the side that lacks the attribute);
 * - an added (removed) element: where = its XPath in b (in a), shadow
 *   (master) = its canonical lines, subtree included, up to ~1 KB;
 *   master (shadow) = NULL. Added or removed text nodes likewise.
 * A difference's pattern (its noise key) is `where` too: noise at
 * /html/body/p[1] never hides a change at /html/body/p[2]. A removed and
 * an added node with the same XPath but for positions, at the same place,
 * are one changed node. Each ignore expression that selected nodes whose
 * canonical forms differ between a and b is passed to kg_diffs_suppress.
 * The unified diff of the two canonical texts is appended to unified
 * (nothing when they are equal).
 *
 * Returns -1 when a is not HTML, -2 when b is not (a is checked first);
 * out and unified are then untouched and the caller should fall back to a
 * plain line diff. Not HTML means: binary (a NUL or other control byte,
 * other than whitespace and ESC, in the first 1445 bytes, as the WHATWG
 * MIME sniffing rule says; UTF-16 bodies with a BOM are exempt), or a NUL
 * byte anywhere; no tag at all ("<" followed by a letter, "!", "/" or
 * "?"), e.g. plain text or JSON; more than INT_MAX bytes; no root element
 * after parsing (a body of comments only); or a page libxml2 did not read
 * to its end (it reported a failed charset conversion): a difference in
 * the part it left out would otherwise be hidden. An empty or
 * whitespace-only body is an empty document, not an error: two of them
 * are equal, and against a page every node of the page differs.
 *
 * Ignore expressions that fail to compile or evaluate, or select no nodes,
 * hide nothing (validate them with kg_htmldiff_check_xpath at load time). */
int kg_htmldiff(const char *a, size_t alen, const char *b, size_t blen,
                const kg_htmldiff_opts *o, kg_diffs *out, kg_buf *unified);

/* kg_htmldiff without its fast path (htmlfast.h): always the two trees.
 * For tests that hold the fast path to this answer. */
int kg_htmldiff_tree(const char *a, size_t alen, const char *b, size_t blen,
                     const kg_htmldiff_opts *o, kg_diffs *out, kg_buf *unified);

/* HTML whitespace (space, tab, LF, FF, CR): what the canonical text
 * collapses into one space. */
bool kg_htmldiff_is_ws(unsigned char c);

/* True when the first 1445 bytes of s hold a WHATWG "binary data byte"
 * (see kg_htmldiff), or s holds a NUL byte anywhere (libxml2 2.9 ends a
 * document at one where a token starts, and the rest of the page would
 * be compared by no one): the body is then not compared as HTML. */
bool kg_htmldiff_looks_binary(const char *s, size_t len);

/* Validates an ignore expression for the config loader: it must compile
 * and, evaluated on an empty document, yield a node-set. Returns 0, or -1
 * with a one-line message in err (always NUL-terminated when errlen > 0). */
int kg_htmldiff_check_xpath(const char *xpath, char *err, size_t errlen);

#endif
