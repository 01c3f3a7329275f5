/* htmldiff.c: HTML-aware comparison (see htmldiff.h).
 *
 * Pipeline: sniff each body (binary? any markup?); parse it with libxml2's
 * HTML parser; evaluate the ignore expressions on both trees and mark what
 * they select (node->_private, which neither the HTML parser nor XPath
 * uses); for each expression, compare the canonical forms of what it
 * selected and report it as suppressed when they differ; write each tree
 * out as a canonical text, remembering which node every line came from;
 * line-diff the two texts with kg_linediff and read its hunks back to turn
 * changed lines into differences, computing XPaths only for those lines.
 *
 * Nothing here is global or per-thread state of our own; libxml2's error
 * output is silenced through the parser options and the XPath context's
 * own error callback, never through its global or per-thread handlers. */
#include "compare/htmldiff.h"

#include <libxml/HTMLparser.h>
#include <libxml/HTMLtree.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "compare/htmlfast.h"
#include "compare/linediff.h"
#include "compare/xmlarena.h"

/* RECOVER: real pages are rarely valid and we compare what a browser would
 * show. NOERROR/NOWARNING: no stderr chatter from the thread pool. NONET:
 * never fetch anything. NODEFDTD: a doctype line only when the page has
 * one. COMPACT: short text stored inside the node, one malloc fewer each.
 * No HTML_PARSE_HUGE: libxml2's depth (256) and text size limits bound the
 * work a hostile page can cause. No NOBLANKS: whitespace is judged here,
 * where <pre> is known. */
#define HD_PARSE_OPTS                                               \
  (HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | \
   HTML_PARSE_NONET | HTML_PARSE_NODEFDTD | HTML_PARSE_COMPACT)
/* Bytes checked for binary data: the WHATWG MIME sniffing "resource
 * header" length. */
#define HD_SNIFF_LEN 1445
/* Deeper lines are indented as "<depth>> " instead of by spaces, so that a
 * deep page does not make the text quadratic. */
#define HD_INDENT_MAX 32
/* Cap on one difference's master/shadow value (bytes, then "..."); the
 * unified diff has the whole line. */
#define HD_VALUE_MAX 4096
/* How far ahead in a changed group a removed line looks for an added line
 * of the same pattern before it is called removed (keeps pairing linear). */
#define HD_LOOKAHEAD 32
/* Work one ignore expression may do on one page, in libxml2's XPath
 * steps (roughly node visits; ~30 ns each): on a 0.85 MB page `//script`
 * takes 7e4, `//div[@id='ads']` 2e5, a quadratic one (count(//p) in a
 * predicate on //p) far over 1e9. Over the limit the expression hides
 * nothing on that page rather than stall a thread-pool thread. */
#define HD_XPATH_OP_LIMIT 5000000UL
/* Bounds on re-aligning a run of added or removed lines with the tree
 * (kg_htmldiff_align): positions tried, and lines in the run. */
#define HD_SLIDE_MAX 32
#define HD_SLIDE_LINES 1024
#define HD_CONTEXT 3
/* Bodies together up to this size are parsed in the thread's arena
 * (xmlarena.h): 2-3x faster from 20 KB to 500 KB pages. Larger trees
 * would not fit the arena's kept chunk and would page-fault in fresh
 * memory on every comparison, where malloc reuses what the last one freed
 * (measured 2x slower on two 1 MB pages). */
#define HD_ARENA_MAX (1u << 20)

/* node->_private of what an ignore expression selected. Its address is the
 * mark; it is never written. */
static const char hd_hidden_mark;
#define HD_HIDDEN ((void *)&hd_hidden_mark)

/* One line of a canonical text. */
typedef struct hd_line {
  xmlNodePtr node; /* element, first node of a text run, or the doctype */
  size_t off;      /* start of the line (indentation included) in text */
  size_t len;      /* bytes, without the '\n' */
  size_t ind;      /* bytes of indentation at its start */
} hd_line;

/* One body: its tree and its canonical text. */
typedef struct hd_doc {
  htmlDocPtr doc;  /* owned; NULL for an empty body */
  bool all_hidden; /* an ignore expression selected the document node */
  kg_buf text;     /* canonical text, every line ending in '\n' */
  hd_line *lines;  /* owned; lines[i] is line i of text */
  size_t nlines, cap;
} hd_doc;

/* Writes canonical lines; records them in rec when it is non-NULL. */
typedef struct hd_writer {
  kg_buf *text;
  hd_doc *rec;
  kg_buf scratch; /* owned; joins the contents of adjacent text nodes */
} hd_writer;

/* State of turning kg_linediff's hunks into differences. */
typedef struct hd_report {
  const hd_doc *a, *b;
  kg_diffs *out;
  bool full; /* out stopped storing: only count from now on */
  kg_buf where, pattern, va, vb; /* scratch for one difference */
  size_t *r, nr, rcap;     /* removed line numbers (a) of the current group */
  size_t *ad, na, acap;    /* added line numbers (b) */
  size_t floor_a, floor_b; /* first line of a / b after the last group */
} hd_report;

/* --- sniffing and parsing ------------------------------------------------- */

bool kg_htmldiff_is_ws(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/* WHATWG "binary data byte": controls that never occur in text. */
static bool kg_htmldiff_is_binary_byte(unsigned char c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1A) ||
         (c >= 0x1C && c <= 0x1F);
}

bool kg_htmldiff_looks_binary(const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t k = 0; k < KG_MIN(len, (size_t)HD_SNIFF_LEN); k++)
    if (kg_htmldiff_is_binary_byte(u[k])) return true;
  return len > HD_SNIFF_LEN && memchr(s + HD_SNIFF_LEN, '\0', len - HD_SNIFF_LEN) != NULL;
}

static bool kg_htmldiff_has_tag(const char *s, size_t len) {
  const char *p = s, *end = s + len;
  while ((p = memchr(p, '<', (size_t)(end - p))) != NULL && p + 1 < end) {
    unsigned char c = (unsigned char)p[1];
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
    if (c == '!' || c == '/' || c == '?') return true;
    p++;
  }
  return false;
}

/* libxml2's generic error channel, which is per thread, as it was. Some
 * errors go only there: a failed charset conversion while a page is read,
 * a few XPath evaluation errors (an unknown function). It is pointed at us
 * while we parse or evaluate and restored right after, so nothing reaches
 * stderr from the thread pool and nothing else on the thread is affected. */
typedef struct hd_generic {
  xmlGenericErrorFunc fn;
  void *ctx;
} hd_generic;

static hd_generic kg_htmldiff_generic_redirect(xmlGenericErrorFunc fn, void *ctx) {
  hd_generic saved = {xmlGenericError, xmlGenericErrorContext};
  xmlSetGenericErrorFunc(ctx, fn);
  return saved;
}

static void kg_htmldiff_generic_restore(hd_generic saved) {
  xmlSetGenericErrorFunc(saved.ctx, saved.fn);
}

/* While a page is parsed, libxml2's generic error channel says only that
 * its reading went wrong (a charset conversion failed, an I/O error): the
 * parser's own complaints about the markup are off (HTML_PARSE_NOERROR). */
static void kg_htmldiff_generic_flag(void *ctx, const char *msg, ...) {
  (void)msg;
  *(bool *)ctx = true;
}

/* Parses s into d->doc per the rules in htmldiff.h. Returns 0 (d->doc may
 * be NULL: empty body) or -1 when s is not HTML, or not HTML that libxml2
 * reads to its end. libxml2 2.9 ends a document, without an error we
 * could tell from others, at a NUL byte where a token starts (one inside
 * an attribute value does it) and where a charset conversion fails: the
 * rest of the page is then missing from the tree, and comparing such trees
 * would hide any difference in that rest. A page with a NUL byte anywhere
 * is not HTML here (kg_htmldiff_looks_binary), and neither is one whose
 * reading libxml2 reports as failed: both are compared as text. */
static int kg_htmldiff_parse(const char *s, size_t len, const char *enc, hd_doc *d) {
  const unsigned char *u = (const unsigned char *)s;
  bool utf16 = len >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) ||
                            (u[0] == 0xFE && u[1] == 0xFF));
  if (!utf16) {
    size_t i = len >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF ? 3 : 0;
    while (i < len && kg_htmldiff_is_ws(u[i])) i++;
    if (i == len) return 0; /* empty document */
    if (kg_htmldiff_looks_binary(s, len)) return -1;
    if (!kg_htmldiff_has_tag(s, len)) return -1;
  }
  if (len > INT_MAX) return -1;
  bool failed = false;
  hd_generic saved = kg_htmldiff_generic_redirect(kg_htmldiff_generic_flag, &failed);
  d->doc = htmlReadMemory(s, (int)len, NULL, enc, HD_PARSE_OPTS);
  kg_htmldiff_generic_restore(saved);
  if (d->doc == NULL) return -1;
  if (failed || xmlDocGetRootElement(d->doc) == NULL) {
    xmlFreeDoc(d->doc);
    d->doc = NULL;
    return -1;
  }
  return 0;
}

static void kg_htmldiff_doc_free(hd_doc *d) {
  if (d->doc) xmlFreeDoc(d->doc);
  kg_buf_free(&d->text);
  free(d->lines);
  memset(d, 0, sizeof *d);
}

/* --- canonical text ------------------------------------------------------- */

/* Elements whose text keeps its whitespace. */
static bool kg_htmldiff_is_pre(const xmlNode *n) {
  if (n->type != XML_ELEMENT_NODE) return false;
  const char *s = (const char *)n->name;
  switch (s[0]) { /* asked twice per element: skip most names fast */
    case 'p':
      return strcmp(s, "pre") == 0 || strcmp(s, "plaintext") == 0;
    case 't':
      return strcmp(s, "textarea") == 0;
    case 'l':
      return strcmp(s, "listing") == 0;
    case 'x':
      return strcmp(s, "xmp") == 0;
    default:
      return false;
  }
}

/* The ones among them whose first newline HTML drops. */
static bool kg_htmldiff_drops_first_lf(const xmlNode *n) {
  const char *s = (const char *)n->name;
  return strcmp(s, "pre") == 0 || strcmp(s, "textarea") == 0 ||
         strcmp(s, "listing") == 0;
}

static bool kg_htmldiff_is_text(const xmlNode *n) {
  return n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE;
}

/* Appends s[0..n) with \ " and control characters backslash-escaped, so a
 * line never holds a raw newline and a quoted value has one reading. When
 * collapse is set, runs of HTML whitespace become one space and leading and
 * trailing whitespace goes. Returns the bytes of content appended. */
static size_t kg_htmldiff_put_escaped(kg_buf *b, const char *s, size_t n,
                             bool collapse) {
  static const char hex[] = "0123456789abcdef";
  kg_buf_reserve(b, 4 * n);
  char *p = b->data + b->len, *start = p;
  bool pending = false; /* whitespace seen after some content */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (collapse && kg_htmldiff_is_ws(c)) {
      pending = p != start;
      continue;
    }
    if (pending) *p++ = ' ', pending = false;
    switch (c) {
      case '\\':
        *p++ = '\\', *p++ = '\\';
        break;
      case '"':
        *p++ = '\\', *p++ = '"';
        break;
      case '\n':
        *p++ = '\\', *p++ = 'n';
        break;
      case '\r':
        *p++ = '\\', *p++ = 'r';
        break;
      case '\t':
        *p++ = '\\', *p++ = 't';
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          *p++ = '\\', *p++ = 'x', *p++ = hex[c >> 4], *p++ = hex[c & 15];
        } else {
          *p++ = (char)c;
        }
    }
  }
  size_t added = (size_t)(p - start);
  b->len += added;
  b->data[b->len] = '\0';
  return added;
}

/* Appends the indentation for depth; returns its length. */
static size_t kg_htmldiff_put_indent(kg_buf *b, unsigned depth) {
  size_t before = b->len;
  if (depth <= HD_INDENT_MAX) {
    kg_buf_reserve(b, 2 * (size_t)depth);
    memset(b->data + b->len, ' ', 2 * (size_t)depth);
    b->len += 2 * (size_t)depth;
    b->data[b->len] = '\0';
  } else {
    kg_buf_appendf(b, "%u> ", depth);
  }
  return b->len - before;
}

/* Ends the line begun at start (ind bytes of indentation) and records it. */
static void kg_htmldiff_end_line(hd_writer *w, xmlNodePtr node, size_t start,
                        size_t ind) {
  kg_buf_append(w->text, "\n", 1);
  hd_doc *d = w->rec;
  if (d == NULL) return;
  if (d->nlines == d->cap) {
    d->cap = d->cap ? 2 * d->cap : 256;
    d->lines = kg_realloc(d->lines, d->cap * sizeof *d->lines);
  }
  d->lines[d->nlines++] = (hd_line){node, start, w->text->len - 1 - start, ind};
}

static void kg_htmldiff_put_name(kg_buf *b, const xmlChar *name, const xmlNs *ns) {
  if (ns != NULL && ns->prefix != NULL) {
    kg_buf_appends(b, (const char *)ns->prefix);
    kg_buf_append(b, ":", 1);
  }
  kg_buf_appends(b, (const char *)name);
}

static int kg_htmldiff_attr_cmp(const void *x, const void *y) {
  const xmlAttr *a = *(const xmlAttr *const *)x,
                *b = *(const xmlAttr *const *)y;
  const char *pa = a->ns && a->ns->prefix ? (const char *)a->ns->prefix : "";
  const char *pb = b->ns && b->ns->prefix ? (const char *)b->ns->prefix : "";
  int c = strcmp(pa, pb);
  return c ? c : strcmp((const char *)a->name, (const char *)b->name);
}

/* Room for the attributes of most elements without a malloc. */
#define HD_ATTRS_INLINE 16

/* The attributes of element n not hidden by an ignore expression, sorted by
 * name: in inl when they fit, else in a kg_malloc'd array. Returns the
 * array; free it with kg_htmldiff_attrs_free. */
static xmlAttrPtr *kg_htmldiff_sorted_attrs(const xmlNode *n, xmlAttrPtr *inl,
                                   size_t *cnt) {
  size_t k = 0;
  for (xmlAttrPtr at = n->properties; at; at = at->next)
    k += at->_private != HD_HIDDEN;
  xmlAttrPtr *v = k <= HD_ATTRS_INLINE ? inl : kg_malloc(k * sizeof *v);
  size_t i = 0;
  for (xmlAttrPtr at = n->properties; at; at = at->next)
    if (at->_private != HD_HIDDEN) v[i++] = at;
  if (k > 1) qsort(v, k, sizeof *v, kg_htmldiff_attr_cmp);
  *cnt = k;
  return v;
}

static void kg_htmldiff_attrs_free(xmlAttrPtr *v, xmlAttrPtr *inl) {
  if (v != inl) free(v);
}

/* Appends the attribute's value as the parser decoded it (the HTML parser
 * leaves one text child; a tree built otherwise may have several). */
static void kg_htmldiff_attr_value(const xmlAttr *at, kg_buf *b, bool escaped) {
  for (const xmlNode *c = at->children; c; c = c->next) {
    if (!kg_htmldiff_is_text(c) || c->content == NULL) continue;
    const char *s = (const char *)c->content;
    if (escaped)
      kg_htmldiff_put_escaped(b, s, strlen(s), false);
    else
      kg_buf_appends(b, s);
  }
}

static void kg_htmldiff_put_element(hd_writer *w, xmlNodePtr n, unsigned depth) {
  kg_buf *b = w->text;
  size_t start = b->len, ind = kg_htmldiff_put_indent(b, depth);
  kg_buf_append(b, "<", 1);
  kg_htmldiff_put_name(b, n->name, n->ns);
  xmlAttrPtr inl[HD_ATTRS_INLINE];
  size_t cnt;
  xmlAttrPtr *attrs = kg_htmldiff_sorted_attrs(n, inl, &cnt);
  for (size_t i = 0; i < cnt; i++) {
    kg_buf_append(b, " ", 1);
    kg_htmldiff_put_name(b, attrs[i]->name, attrs[i]->ns);
    kg_buf_append(b, "=\"", 2);
    kg_htmldiff_attr_value(attrs[i], b, true);
    kg_buf_append(b, "\"", 1);
  }
  kg_htmldiff_attrs_free(attrs, inl);
  kg_buf_append(b, ">", 1);
  kg_htmldiff_end_line(w, n, start, ind);
}

/* Writes the text line for n and, when join is set, the text siblings
 * directly after it (XPath counts them apart, but they read as one text
 * and parsers split text differently). Nothing when it is blank outside
 * <pre>. Returns the last node consumed. */
static xmlNodePtr kg_htmldiff_put_text(hd_writer *w, xmlNodePtr n, unsigned depth,
                              bool pre, bool join) {
  xmlNodePtr last = n;
  const char *s = n->content ? (const char *)n->content : "";
  size_t len = strlen(s);
  if (join && last->next && kg_htmldiff_is_text(last->next) &&
      last->next->_private != HD_HIDDEN) {
    kg_buf_reset(&w->scratch);
    kg_buf_append(&w->scratch, s, len);
    while (last->next && kg_htmldiff_is_text(last->next) &&
           last->next->_private != HD_HIDDEN) {
      last = last->next;
      if (last->content)
        kg_buf_appends(&w->scratch, (const char *)last->content);
    }
    s = w->scratch.data, len = w->scratch.len;
  }
  if (pre && n->parent && n->parent->children == n &&
      kg_htmldiff_drops_first_lf(n->parent)) {
    if (len > 0 && s[0] == '\n')
      s++, len--;
    else if (len > 1 && s[0] == '\r' && s[1] == '\n')
      s += 2, len -= 2;
  }
  kg_buf *b = w->text;
  size_t start = b->len, ind = kg_htmldiff_put_indent(b, depth);
  kg_buf_append(b, "\"", 1);
  if (kg_htmldiff_put_escaped(b, s, len, !pre) == 0) {
    b->len = start; /* blank (or empty in <pre>): no line */
    b->data[start] = '\0';
    return last;
  }
  kg_buf_append(b, "\"", 1);
  kg_htmldiff_end_line(w, n, start, ind);
  return last;
}

static void kg_htmldiff_put_dtd(hd_writer *w, xmlDtdPtr dtd) {
  kg_buf *b = w->text;
  size_t start = b->len;
  kg_buf_appends(b, "<!DOCTYPE ");
  if (dtd->name)
    kg_htmldiff_put_escaped(b, (const char *)dtd->name, strlen((const char *)dtd->name),
                   false);
  if (dtd->ExternalID) {
    kg_buf_appends(b, " PUBLIC \"");
    kg_htmldiff_put_escaped(b, (const char *)dtd->ExternalID,
                   strlen((const char *)dtd->ExternalID), false);
    kg_buf_append(b, "\"", 1);
  }
  if (dtd->SystemID) {
    kg_buf_appends(b, dtd->ExternalID ? " \"" : " SYSTEM \"");
    kg_htmldiff_put_escaped(b, (const char *)dtd->SystemID,
                   strlen((const char *)dtd->SystemID), false);
    kg_buf_append(b, "\"", 1);
  }
  kg_buf_append(b, ">", 1);
  kg_htmldiff_end_line(w, (xmlNodePtr)dtd, start, 0);
}

/* Writes every descendant of parent (not parent itself), children at
 * depth; pre counts the whitespace-keeping elements around them. Iterative
 * so that no page can exhaust a thread pool stack. Hidden nodes are
 * skipped with their subtrees. */
static void kg_htmldiff_walk(hd_writer *w, xmlNodePtr parent, unsigned depth,
                    unsigned pre) {
  xmlNodePtr n = parent->children;
  while (n != NULL) {
    bool descend = false;
    if (n->type == XML_ELEMENT_NODE && n->_private != HD_HIDDEN) {
      kg_htmldiff_put_element(w, n, depth);
      descend = n->children != NULL;
    } else if (kg_htmldiff_is_text(n) && n->_private != HD_HIDDEN) {
      n = kg_htmldiff_put_text(w, n, depth, pre > 0, true);
    } else if (n->type == XML_DTD_NODE) {
      kg_htmldiff_put_dtd(w, (xmlDtdPtr)n);
    } /* comments, PIs, entity declarations: dropped */
    if (descend) {
      pre += kg_htmldiff_is_pre(n);
      depth++;
      n = n->children;
      continue;
    }
    while (n->next == NULL) {
      n = n->parent;
      if (n == parent || n == NULL) return;
      depth--;
      pre -= kg_htmldiff_is_pre(n);
    }
    n = n->next;
  }
}

static void kg_htmldiff_canonicalise(hd_doc *d) {
  hd_writer w = {.text = &d->text, .rec = d};
  kg_buf_reserve(&d->text, 0); /* data non-NULL even when empty */
  if (d->doc != NULL && !d->all_hidden) kg_htmldiff_walk(&w, (xmlNodePtr)d->doc, 0, 0);
  kg_buf_free(&w.scratch);
}

/* --- ignore expressions --------------------------------------------------- */

static void kg_htmldiff_xpath_silence(void *ud, xmlErrorPtr e) {}

static void kg_htmldiff_generic_silence(void *ctx, const char *msg, ...) {}

/* Appends the canonical form of one node an ignore expression selected:
 * the node itself whether hidden or not, then what it contains that no
 * expression hid, so that each difference is charged to the expression
 * that hid the innermost node. */
static void kg_htmldiff_render_match(hd_writer *w, xmlNodePtr n) {
  unsigned pre = 0;
  for (xmlNodePtr p = n->parent; p; p = p->parent) pre += kg_htmldiff_is_pre(p);
  switch (n->type) {
    case XML_ELEMENT_NODE:
      kg_htmldiff_put_element(w, n, 0);
      kg_htmldiff_walk(w, n, 1, pre + kg_htmldiff_is_pre(n));
      break;
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE:
      kg_htmldiff_put_text(w, n, 0, pre > 0, false);
      break;
    case XML_ATTRIBUTE_NODE:
      kg_buf_append(w->text, "@", 1);
      kg_htmldiff_put_name(w->text, n->name, n->ns);
      kg_buf_append(w->text, "=\"", 2);
      kg_htmldiff_attr_value((xmlAttrPtr)n, w->text, true);
      kg_buf_append(w->text, "\"\n", 2);
      break;
    case XML_HTML_DOCUMENT_NODE:
    case XML_DOCUMENT_NODE:
      kg_htmldiff_walk(w, n, 0, 0);
      break;
    default: /* comments, PIs: not part of the canonical text anyway */
      break;
  }
}

/* Marks what each expression selects in each document (res[2i], res[2i+1]
 * keep the results, caller frees), then reports as suppressed each
 * expression whose selections differ in canonical form. */
static void kg_htmldiff_apply_ignores(const kg_htmldiff_opts *o, hd_doc *d[2],
                             xmlXPathObjectPtr *res, kg_diffs *out) {
  xmlXPathContextPtr ctx = xmlXPathNewContext(NULL);
  if (ctx == NULL) abort(); /* out of memory: as kg_malloc does */
  ctx->error = kg_htmldiff_xpath_silence;
  hd_generic saved = kg_htmldiff_generic_redirect(kg_htmldiff_generic_silence, NULL);
  for (int s = 0; s < 2; s++) /* document order for XPath in O(n) */
    if (d[s]->doc) xmlXPathOrderDocElems(d[s]->doc);

  for (size_t i = 0; i < o->nignore; i++) {
    if (o->ignore[i] == NULL) continue;
    xmlXPathCompExprPtr comp =
        xmlXPathCtxtCompile(ctx, (const xmlChar *)o->ignore[i]);
    if (comp == NULL) continue;
    for (int s = 0; s < 2; s++) {
      if (d[s]->doc == NULL) continue;
      ctx->doc = d[s]->doc;
      ctx->node = (xmlNodePtr)d[s]->doc;
      ctx->opLimit = HD_XPATH_OP_LIMIT;
      ctx->opCount = 0;
      xmlXPathObjectPtr r = xmlXPathCompiledEval(comp, ctx);
      res[2 * i + (size_t)s] = r;
      if (r == NULL || r->type != XPATH_NODESET || r->nodesetval == NULL)
        continue;
      for (int k = 0; k < r->nodesetval->nodeNr; k++) {
        xmlNodePtr n = r->nodesetval->nodeTab[k];
        switch (n->type) {
          case XML_ELEMENT_NODE:
          case XML_TEXT_NODE:
          case XML_CDATA_SECTION_NODE:
          case XML_ATTRIBUTE_NODE:
            n->_private = HD_HIDDEN;
            break;
          case XML_HTML_DOCUMENT_NODE:
          case XML_DOCUMENT_NODE:
            d[s]->all_hidden = true;
            break;
          default: /* namespace nodes are not real nodes: leave alone */
            break;
        }
      }
    }
    xmlXPathFreeCompExpr(comp);
  }
  xmlXPathFreeContext(ctx);
  kg_htmldiff_generic_restore(saved);

  kg_buf form[2] = {KG_BUF_INIT, KG_BUF_INIT};
  for (size_t i = 0; i < o->nignore; i++) {
    for (int s = 0; s < 2; s++) {
      hd_writer w = {.text = &form[s]};
      kg_buf_reset(&form[s]);
      xmlXPathObjectPtr r = res[2 * i + (size_t)s];
      if (r == NULL || r->type != XPATH_NODESET || r->nodesetval == NULL)
        continue;
      for (int k = 0; k < r->nodesetval->nodeNr; k++)
        kg_htmldiff_render_match(&w, r->nodesetval->nodeTab[k]);
      kg_buf_free(&w.scratch);
    }
    if (form[0].len != form[1].len ||
        (form[0].len && memcmp(form[0].data, form[1].data, form[0].len) != 0))
      kg_diffs_suppress(out, o->ignore[i]);
  }
  kg_buf_free(&form[0]);
  kg_buf_free(&form[1]);
}

/* --- XPaths of changed nodes ---------------------------------------------- */

static bool kg_htmldiff_same_kind(const xmlNode *x, const xmlNode *n) {
  if (n->type == XML_ELEMENT_NODE)
    return x->type == XML_ELEMENT_NODE &&
           strcmp((const char *)x->name, (const char *)n->name) == 0;
  return kg_htmldiff_is_text(x);
}

/* Appends the name step of an element or attribute (after its "@"). The
 * HTML parser keeps names XPath cannot spell as a step: template attributes
 * such as ":href" or "v-bind:id", and "a:b" whose prefix no namespace
 * declares. Those are written as a name() test, so that every
 * location kagami reports is an expression ignore_xpath accepts. */
static void kg_htmldiff_put_step(kg_buf *b, const xmlChar *name, const xmlNs *ns) {
  if ((ns == NULL || ns->prefix == NULL) && xmlValidateNCName(name, 0) == 0) {
    kg_buf_appends(b, (const char *)name);
    return;
  }
  kg_buf q = KG_BUF_INIT;
  kg_htmldiff_put_name(&q, name, ns);
  bool has_apos = strchr(q.data, '\'') != NULL, has_quot = strchr(q.data, '"') != NULL;
  if (has_apos && has_quot) /* no XPath 1.0 literal holds both: any name */
    kg_buf_append(b, "*", 1);
  else
    kg_buf_appendf(b, has_apos ? "*[name()=\"%s\"]" : "*[name()='%s']", q.data);
  kg_buf_free(&q);
}

/* Appends the XPath of n: "/html/body/div[2]/p/text()[3]", an index only
 * where a sibling shares the name (as xmlGetNodePath does), "/@name" for an
 * attribute. Without indices it is the pattern. The doctype, which XPath
 * cannot select, is "/!DOCTYPE". */
static void kg_htmldiff_xpath(const xmlNode *n, bool indices, kg_buf *b) {
  if (n->type == XML_DTD_NODE) {
    kg_buf_appends(b, "/!DOCTYPE");
    return;
  }
  const xmlNode *stack[64];
  const xmlNode **chain = stack;
  size_t depth = 0, cap = KG_ARRAY_SIZE(stack);
  for (const xmlNode *p = n;
       p && p->type != XML_HTML_DOCUMENT_NODE && p->type != XML_DOCUMENT_NODE;
       p = p->parent) {
    if (depth == cap) {
      const xmlNode **bigger = kg_malloc(2 * cap * sizeof *bigger);
      memcpy(bigger, chain, depth * sizeof *chain);
      if (chain != stack) free(chain);
      chain = bigger, cap *= 2;
    }
    chain[depth++] = p;
  }
  while (depth > 0) {
    const xmlNode *p = chain[--depth];
    kg_buf_append(b, "/", 1);
    if (p->type == XML_ATTRIBUTE_NODE) {
      kg_buf_append(b, "@", 1);
      kg_htmldiff_put_step(b, p->name, p->ns);
      continue;
    }
    if (p->type == XML_ELEMENT_NODE)
      kg_htmldiff_put_step(b, p->name, p->ns);
    else
      kg_buf_appends(b, "text()");
    if (!indices) continue;
    size_t before = 0;
    bool others = false;
    for (const xmlNode *x = p->prev; x; x = x->prev)
      before += kg_htmldiff_same_kind(x, p);
    for (const xmlNode *x = p->next; x && !others && before == 0; x = x->next)
      others = kg_htmldiff_same_kind(x, p);
    if (before > 0 || others) kg_buf_appendf(b, "[%zu]", before + 1);
  }
  if (chain != stack) free(chain);
}

/* --- reporting ------------------------------------------------------------ */

static bool kg_htmldiff_is_descendant(const xmlNode *n, const xmlNode *anc) {
  for (const xmlNode *p = n->parent; p; p = p->parent)
    if (p == anc) return true;
  return false;
}

/* Cuts v to at most HD_VALUE_MAX bytes, on a UTF-8 character boundary,
 * marking the cut with "...". */
static void kg_htmldiff_cap_value(kg_buf *v) {
  if (v->len <= HD_VALUE_MAX) return;
  size_t n = HD_VALUE_MAX;
  while (n > 0 && ((unsigned char)v->data[n] & 0xC0) == 0x80) n--;
  v->len = n;
  kg_buf_appends(v, "...");
}

/* Appends a text line's content as the page has it: quotes dropped,
 * escapes undone. */
static void kg_htmldiff_unescape_text(const hd_doc *d, const hd_line *ln, kg_buf *v) {
  const char *s = d->text.data + ln->off + ln->ind + 1; /* past the quote */
  const char *end = d->text.data + ln->off + ln->len - 1;
  kg_buf_reserve(v, (size_t)(end - s));
  while (s < end && v->len <= HD_VALUE_MAX) {
    const char *bs = memchr(s, '\\', (size_t)(end - s));
    if (bs == NULL) bs = end;
    kg_buf_append(v, s, (size_t)(bs - s));
    if (bs == end) break;
    char c = bs[1];
    s = bs + 2;
    if (c == 'n')
      c = '\n';
    else if (c == 'r')
      c = '\r';
    else if (c == 't')
      c = '\t';
    else if (c == 'x' && end - s >= 2) {
      c = (char)strtol((char[]){s[0], s[1], '\0'}, NULL, 16);
      s += 2;
    }
    kg_buf_append(v, &c, 1);
  }
  kg_htmldiff_cap_value(v);
}

/* Appends lines idx[from..to) of d, de-indented by the first one's
 * indentation and joined by '\n': an added or removed subtree. */
static void kg_htmldiff_lines_value(const hd_doc *d, const size_t *idx, size_t from,
                           size_t to, kg_buf *v) {
  size_t ind0 = d->lines[idx[from]].ind;
  for (size_t k = from; k < to && v->len <= HD_VALUE_MAX; k++) {
    const hd_line *ln = &d->lines[idx[k]];
    size_t strip = KG_MIN(ind0, ln->ind);
    if (k > from) kg_buf_append(v, "\n", 1);
    kg_buf_append(v, d->text.data + ln->off + strip, ln->len - strip);
  }
  kg_htmldiff_cap_value(v);
}

/* Adds the difference held in rp's scratch buffers (NULL-valued sides as
 * told); once out stops storing, only counts. */
static void kg_htmldiff_add(hd_report *rp, bool has_a, bool has_b) {
  if (rp->full) {
    kg_diffs_add(rp->out, "", NULL, NULL, NULL);
    return;
  }
  /* Noise is keyed by the concrete location: the positionless pattern
   * only pairs removed with added nodes. */
  kg_diffs_add(rp->out, rp->where.data, rp->where.data,
               has_a ? rp->va.data : NULL, has_b ? rp->vb.data : NULL);
  /* A difference at a learned-noise location is suppressed, not stored,
   * so the list is full only when it stops storing; and with learned noise
   * every later difference still needs its location, to be recognised. */
  rp->full = kg_diffs_full(rp->out) && rp->out->noisy == NULL;
}

static void kg_htmldiff_reset_scratch(hd_report *rp) {
  kg_buf_reset(&rp->where);
  kg_buf_reset(&rp->pattern);
  kg_buf_reset(&rp->va);
  kg_buf_reset(&rp->vb);
  kg_buf_reserve(&rp->va, 0);
  kg_buf_reserve(&rp->vb, 0);
}

/* A changed element: one difference per attribute that differs. */
static void kg_htmldiff_report_attrs(hd_report *rp, xmlNodePtr x, xmlNodePtr y) {
  xmlAttrPtr inx[HD_ATTRS_INLINE], iny[HD_ATTRS_INLINE];
  size_t nx, ny;
  xmlAttrPtr *ax = kg_htmldiff_sorted_attrs(x, inx, &nx);
  xmlAttrPtr *ay = kg_htmldiff_sorted_attrs(y, iny, &ny);
  size_t i = 0, j = 0;
  kg_buf vx = KG_BUF_INIT, vy = KG_BUF_INIT;
  while (i < nx || j < ny) {
    int c = i == nx ? 1 : j == ny ? -1 : kg_htmldiff_attr_cmp(&ax[i], &ay[j]);
    kg_buf_reset(&vx);
    kg_buf_reset(&vy);
    kg_buf_reserve(&vx, 0);
    kg_buf_reserve(&vy, 0);
    if (c <= 0) kg_htmldiff_attr_value(ax[i], &vx, false);
    if (c >= 0) kg_htmldiff_attr_value(ay[j], &vy, false);
    if (c != 0 || strcmp(vx.data, vy.data) != 0) {
      if (!rp->full) {
        kg_htmldiff_reset_scratch(rp);
        /* In the master's coordinates even when only the shadow has it. */
        xmlAttrPtr at = c <= 0 ? ax[i] : ay[j];
        kg_htmldiff_xpath(x, true, &rp->where);
        kg_htmldiff_xpath(x, false, &rp->pattern);
        kg_buf_appends(&rp->where, "/@");
        kg_buf_appends(&rp->pattern, "/@");
        kg_htmldiff_put_step(&rp->where, at->name, at->ns);
        kg_htmldiff_put_step(&rp->pattern, at->name, at->ns);
        kg_buf_append(&rp->va, vx.data, vx.len);
        kg_buf_append(&rp->vb, vy.data, vy.len);
        kg_htmldiff_cap_value(&rp->va);
        kg_htmldiff_cap_value(&rp->vb);
      }
      kg_htmldiff_add(rp, c <= 0, c >= 0);
    }
    if (c <= 0) i++;
    if (c >= 0) j++;
  }
  kg_buf_free(&vx);
  kg_buf_free(&vy);
  kg_htmldiff_attrs_free(ax, inx);
  kg_htmldiff_attrs_free(ay, iny);
}

/* Line ia of a and line ib of b stand for the same node: report what
 * changed in it. */
static void kg_htmldiff_report_changed(hd_report *rp, size_t ia, size_t ib) {
  const hd_line *la = &rp->a->lines[ia], *lb = &rp->b->lines[ib];
  if (la->len == lb->len && memcmp(rp->a->text.data + la->off,
                                   rp->b->text.data + lb->off, la->len) == 0)
    return; /* the line differ's fallback may pair equal lines */
  if (la->node->type == XML_ELEMENT_NODE) {
    kg_htmldiff_report_attrs(rp, la->node, lb->node);
    return;
  }
  if (!rp->full) {
    kg_htmldiff_reset_scratch(rp);
    kg_htmldiff_xpath(la->node, true, &rp->where);
    kg_htmldiff_xpath(la->node, false, &rp->pattern);
    if (kg_htmldiff_is_text(la->node)) {
      kg_htmldiff_unescape_text(rp->a, la, &rp->va);
      kg_htmldiff_unescape_text(rp->b, lb, &rp->vb);
    } else {
      size_t one[2] = {ia, ib};
      kg_htmldiff_lines_value(rp->a, one, 0, 1, &rp->va);
      kg_htmldiff_lines_value(rp->b, one + 1, 0, 1, &rp->vb);
    }
  }
  kg_htmldiff_add(rp, true, true);
}

/* Line idx[k] of d (a when in_a) is only on one side: reports it with its
 * whole subtree, which it consumes from idx. Returns the index after. */
static size_t kg_htmldiff_report_lone(hd_report *rp, bool in_a, const size_t *idx,
                             size_t k, size_t n) {
  const hd_doc *d = in_a ? rp->a : rp->b;
  const hd_line *ln = &d->lines[idx[k]];
  size_t end = k + 1;
  if (ln->node->type == XML_ELEMENT_NODE)
    while (end < n && kg_htmldiff_is_descendant(d->lines[idx[end]].node, ln->node))
      end++;
  if (!rp->full) {
    kg_htmldiff_reset_scratch(rp);
    kg_htmldiff_xpath(ln->node, true, &rp->where);
    kg_htmldiff_xpath(ln->node, false, &rp->pattern);
    kg_buf *v = in_a ? &rp->va : &rp->vb;
    if (kg_htmldiff_is_text(ln->node))
      kg_htmldiff_unescape_text(d, ln, v);
    else
      kg_htmldiff_lines_value(d, idx, k, end, v);
  }
  kg_htmldiff_add(rp, in_a, !in_a);
  return end;
}

/* The differences lines d[from..from+n) would make when all on one side:
 * a line inside the subtree of an element line before it makes none. */
static size_t kg_htmldiff_subtrees(const hd_doc *d, size_t from, size_t n) {
  size_t count = 0;
  const xmlNode *root = NULL;
  for (size_t k = from; k < from + n; k++) {
    const xmlNode *node = d->lines[k].node;
    if (root != NULL && kg_htmldiff_is_descendant(node, root)) continue;
    count++;
    root = node->type == XML_ELEMENT_NODE ? node : NULL;
  }
  return count;
}

/* A run of added (or removed) lines idx[0..n), consecutive lines of d, can
 * often sit a few lines higher: when the line above it equals its last
 * line. diff -u puts it as low as it can, which for a tree is often half
 * in one subtree and half in the next ("0", <p> rather than <p>, "0" for a
 * <p>0</p> inserted before other <p>s). Moves it to the place, at most
 * HD_SLIDE_MAX lines up and not above floor, where it makes the fewest
 * differences; the diff stays as valid and as short. */
static void kg_htmldiff_align(const hd_doc *d, size_t *idx, size_t n, size_t floor) {
  if (n == 0 || n > HD_SLIDE_LINES || idx[n - 1] - idx[0] != n - 1) return;
  size_t from = idx[0], best = from, best_count = kg_htmldiff_subtrees(d, from, n);
  for (size_t k = 1; k <= HD_SLIDE_MAX && from >= floor + k; k++) {
    const hd_line *above = &d->lines[from - k];
    const hd_line *last = &d->lines[from - k + n];
    if (above->len != last->len ||
        memcmp(d->text.data + above->off, d->text.data + last->off,
               above->len) != 0)
      break;
    size_t count = kg_htmldiff_subtrees(d, from - k, n);
    if (count < best_count) best = from - k, best_count = count;
  }
  for (size_t k = 0; k < n; k++) idx[k] = best + k;
}

/* One run of removed lines rp->r and added lines rp->ad between equal
 * lines. Walks both in order: a removed and an added line with the same
 * pattern are one changed node; otherwise the added line is taken as an
 * insertion when the removed one's pattern comes up a little further
 * among the added lines, else the removed line as a deletion. */
static void kg_htmldiff_report_group(hd_report *rp, size_t ai, size_t bi) {
  size_t nr = rp->nr, na = rp->na;
  if (nr == 0 && na == 0) return;
  if (nr == 0) kg_htmldiff_align(rp->b, rp->ad, na, rp->floor_b);
  if (na == 0) kg_htmldiff_align(rp->a, rp->r, nr, rp->floor_a);
  kg_buf pat = KG_BUF_INIT;
  size_t *off = kg_malloc((nr + na + 1) * sizeof *off);
  for (size_t k = 0; k < nr + na; k++) {
    off[k] = pat.len;
    const hd_doc *d = k < nr ? rp->a : rp->b;
    size_t line = k < nr ? rp->r[k] : rp->ad[k - nr];
    kg_htmldiff_xpath(d->lines[line].node, false, &pat);
    kg_buf_append(&pat, "", 1); /* NUL-separated */
  }
#define HD_PAT(k) (pat.data + off[(k)])
  size_t i = 0, j = 0;
  while (i < nr || j < na) {
    if (i < nr && j < na && strcmp(HD_PAT(i), HD_PAT(nr + j)) == 0) {
      kg_htmldiff_report_changed(rp, rp->r[i++], rp->ad[j++]);
      continue;
    }
    bool insertion = i == nr;
    for (size_t k = j + 1;
         !insertion && i < nr && k < KG_MIN(na, j + HD_LOOKAHEAD); k++)
      insertion = strcmp(HD_PAT(i), HD_PAT(nr + k)) == 0;
    if (insertion)
      j = kg_htmldiff_report_lone(rp, false, rp->ad, j, na);
    else
      i = kg_htmldiff_report_lone(rp, true, rp->r, i, nr);
  }
#undef HD_PAT
  free(off);
  kg_buf_free(&pat);
  rp->nr = rp->na = 0;
  rp->floor_a = ai, rp->floor_b = bi;
}

static void kg_htmldiff_push(size_t **v, size_t *n, size_t *cap, size_t x) {
  if (*n == *cap) {
    *cap = *cap ? 2 * *cap : 64;
    *v = kg_realloc(*v, *cap * sizeof **v);
  }
  (*v)[(*n)++] = x;
}

/* Parses "A[,N]" of a hunk header into the 0-based index of its first
 * line (for an empty range diff -u names the line before it). */
static const char *kg_htmldiff_range(const char *p, size_t *first) {
  char *e;
  size_t start = strtoul(p, &e, 10), count = 1;
  if (*e == ',') count = strtoul(e + 1, &e, 10);
  *first = count == 0 ? start : start - 1;
  return e;
}

/* Reads the unified diff ud (made with context lines, no cap) back into
 * runs of removed/added line numbers and reports each run. Every canonical
 * line ends in '\n' and holds no other, so every diff line does too. */
static void kg_htmldiff_report_unified(hd_report *rp, const kg_buf *ud,
                              size_t header_lines) {
  const char *p = ud->data, *end = ud->data + ud->len;
  size_t ai = 0, bi = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *next = nl ? nl + 1 : end;
    if (header_lines > 0) {
      header_lines--;
    } else if (p[0] == '@') {
      kg_htmldiff_report_group(rp, ai, bi);
      if (strncmp(p, "@@ -", 4) != 0) break;
      const char *q = kg_htmldiff_range(p + 4, &ai);
      if (strncmp(q, " +", 2) != 0) break;
      kg_htmldiff_range(q + 2, &bi);
    } else if (p[0] == ' ') {
      kg_htmldiff_report_group(rp, ai, bi);
      ai++, bi++;
    } else if (p[0] == '-' && ai < rp->a->nlines) {
      kg_htmldiff_push(&rp->r, &rp->nr, &rp->rcap, ai++);
    } else if (p[0] == '+' && bi < rp->b->nlines) {
      kg_htmldiff_push(&rp->ad, &rp->na, &rp->acap, bi++);
    }
    p = next;
  }
  kg_htmldiff_report_group(rp, ai, bi);
}

static size_t kg_htmldiff_count_nl(const char *s) {
  size_t n = 0;
  for (; s && *s; s++) n += *s == '\n';
  return n;
}

/* Diffs the canonical texts: differences into out, unified diff (capped at
 * o->max_output) into unified. */
static void kg_htmldiff_compare(const hd_doc *a, const hd_doc *b,
                       const kg_htmldiff_opts *o, kg_diffs *out,
                       kg_buf *unified) {
  if (a->text.len == b->text.len &&
      memcmp(a->text.data, b->text.data, a->text.len) == 0)
    return;
  kg_linediff_opts lo = {.a_label = o->a_label,
                         .b_label = o->b_label,
                         .context = HD_CONTEXT,
                         .max_output = 0};
  kg_buf ud = KG_BUF_INIT;
  kg_linediff(a->text.data, a->text.len, b->text.data, b->text.len, &lo, &ud);

  hd_report rp = {.a = a, .b = b, .out = out};
  /* The "--- "/"+++ " lines: a label with newlines spans more. */
  if (ud.len > 0)
    kg_htmldiff_report_unified(&rp, &ud,
                      2 + kg_htmldiff_count_nl(o->a_label) + kg_htmldiff_count_nl(o->b_label));
  kg_buf_free(&rp.where);
  kg_buf_free(&rp.pattern);
  kg_buf_free(&rp.va);
  kg_buf_free(&rp.vb);
  free(rp.r);
  free(rp.ad);

  kg_linediff_keep(a->text.data, a->text.len, b->text.data, b->text.len, &lo, &ud,
                   o->max_output, unified);
  kg_buf_free(&ud);
}

/* --- API ------------------------------------------------------------------ */

void kg_htmldiff_global_init(void) {
  kg_xmlarena_install(); /* before libxml2 allocates anything */
  LIBXML_TEST_VERSION
  xmlInitParser();
}

int kg_htmldiff(const char *a, size_t alen, const char *b, size_t blen,
                const kg_htmldiff_opts *o, kg_diffs *out, kg_buf *unified) {
  if (kg_htmlfast(a, alen, b, blen, o, out) == 0) return 0;
  return kg_htmldiff_tree(a, alen, b, blen, o, out, unified);
}

int kg_htmldiff_tree(const char *a, size_t alen, const char *b, size_t blen,
                     const kg_htmldiff_opts *o, kg_diffs *out, kg_buf *unified) {
  static const kg_htmldiff_opts none = {0};
  if (o == NULL) o = &none;
  hd_doc da = {0}, db = {0};
  int rc = 0;
  /* every libxml2 object below is freed before kg_xmlarena_end */
  bool arena = alen + blen <= HD_ARENA_MAX;
  if (arena) kg_xmlarena_begin();
  if (kg_htmldiff_parse(a, alen, o->encoding, &da) != 0) {
    rc = -1;
    goto done;
  }
  if (kg_htmldiff_parse(b, blen, o->encoding, &db) != 0) {
    rc = -2;
    goto done;
  }
  if (o->nignore > 0 && o->ignore != NULL && (da.doc || db.doc)) {
    hd_doc *both[2] = {&da, &db};
    xmlXPathObjectPtr *res = kg_calloc(2 * o->nignore, sizeof *res);
    kg_htmldiff_apply_ignores(o, both, res, out);
    for (size_t i = 0; i < 2 * o->nignore; i++) xmlXPathFreeObject(res[i]);
    free(res);
  }
  kg_htmldiff_canonicalise(&da);
  kg_htmldiff_canonicalise(&db);
  kg_htmldiff_compare(&da, &db, o, out, unified);
done:
  kg_htmldiff_doc_free(&da);
  kg_htmldiff_doc_free(&db);
  if (arena) kg_xmlarena_end();
  return rc;
}

/* Keeps the first error libxml2 reports about an expression. */
typedef struct hd_errmsg {
  char *buf;
  size_t len;
  bool set;
} hd_errmsg;

/* libxml2 2.9 leaves the message of an XPath error empty; its code says
 * what went wrong. */
static const char *kg_htmldiff_xpath_errstr(int code) {
  switch (code - XML_XPATH_EXPRESSION_OK) {
    case XPATH_NUMBER_ERROR:
      return "invalid number";
    case XPATH_UNFINISHED_LITERAL_ERROR:
      return "unfinished string literal";
    case XPATH_START_LITERAL_ERROR:
      return "expected a string literal";
    case XPATH_VARIABLE_REF_ERROR:
    case XPATH_UNDEF_VARIABLE_ERROR:
      return "undefined variable";
    case XPATH_INVALID_PREDICATE_ERROR:
      return "invalid predicate";
    case XPATH_UNCLOSED_ERROR:
      return "missing closing bracket";
    case XPATH_UNKNOWN_FUNC_ERROR:
      return "unknown function";
    case XPATH_INVALID_OPERAND:
      return "invalid operand";
    case XPATH_INVALID_TYPE:
      return "wrong argument type";
    case XPATH_INVALID_ARITY:
      return "wrong number of arguments";
    case XPATH_UNDEF_PREFIX_ERROR:
      return "undefined namespace prefix";
    case XPATH_INVALID_CHAR_ERROR:
      return "invalid character";
    case XPATH_OP_LIMIT_EXCEEDED:
    case XPATH_RECURSION_LIMIT_EXCEEDED:
      return "too expensive";
    default:
      return "invalid XPath expression";
  }
}

static void kg_htmldiff_xpath_capture(void *ud, xmlErrorPtr e) {
  hd_errmsg *m = ud;
  if (m->set || m->len == 0 || e == NULL) return;
  const char *msg = kg_htmldiff_xpath_errstr(e->code);
  if (e->str1 != NULL)
    snprintf(m->buf, m->len, "%s at offset %d", msg, e->int1);
  else
    snprintf(m->buf, m->len, "%s", msg);
  m->set = true;
}

static void kg_htmldiff_generic_capture(void *ud, const char *fmt, ...) {
  hd_errmsg *m = ud;
  if (m->set || m->len == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->buf, m->len, fmt, ap);
  va_end(ap);
  m->buf[strcspn(m->buf, "\n")] = '\0';
  /* "xmlXPathCompOpEval: function foo not found": drop the C function. */
  const char *colon = strstr(m->buf, ": ");
  if (strncmp(m->buf, "xmlXPath", 8) == 0 && colon != NULL)
    memmove(m->buf, colon + 2, strlen(colon + 2) + 1);
  m->set = true;
}

int kg_htmldiff_check_xpath(const char *xpath, char *err, size_t errlen) {
  hd_errmsg m = {err, errlen, false};
  if (errlen > 0) err[0] = '\0';
  if (xpath == NULL || *xpath == '\0') {
    if (errlen > 0) snprintf(err, errlen, "empty XPath expression");
    return -1;
  }
  htmlDocPtr doc = htmlNewDocNoDtD(NULL, NULL);
  xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
  if (doc == NULL || ctx == NULL) abort(); /* out of memory */
  ctx->error = kg_htmldiff_xpath_capture;
  ctx->userData = &m;
  hd_generic saved = kg_htmldiff_generic_redirect(kg_htmldiff_generic_capture, &m);
  int rc = -1;
  xmlXPathCompExprPtr comp = xmlXPathCtxtCompile(ctx, (const xmlChar *)xpath);
  if (comp != NULL) {
    /* Evaluating finds what compiling does not: unknown functions,
     * undeclared prefixes, and results that are not nodes. */
    ctx->node = (xmlNodePtr)doc;
    xmlXPathObjectPtr r = xmlXPathCompiledEval(comp, ctx);
    if (r != NULL && r->type == XPATH_NODESET) {
      rc = 0;
    } else if (r != NULL && !m.set && errlen > 0) {
      snprintf(err, errlen, "selects a %s, not nodes",
               r->type == XPATH_NUMBER    ? "number"
               : r->type == XPATH_STRING  ? "string"
               : r->type == XPATH_BOOLEAN ? "boolean"
                                          : "value");
    }
    xmlXPathFreeObject(r);
    xmlXPathFreeCompExpr(comp);
  }
  kg_htmldiff_generic_restore(saved);
  if (rc != 0 && errlen > 0 && err[0] == '\0')
    snprintf(err, errlen, "invalid XPath expression");
  xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
  return rc;
}
