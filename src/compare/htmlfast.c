/* htmlfast.c: lockstep comparison of two HTML pages (see htmlfast.h).
 *
 * Why the shortcut is sound: libxml2's HTML parser reads left to right, so
 * where two pages are byte-equal up to a point its state there is the
 * same. A difference that lies inside one attribute value or one text run,
 * bounded by markup on both sides, and cannot change how anything around
 * it is read (no quote, '<', '&', control or non-ASCII byte; text that is
 * not blank on either side, so no element is implied differently), leaves
 * the rest of the parse the same too. The trees then differ in those
 * values alone, and whether an expression hides them needs only the start
 * tag they belong to.
 *
 * The tokenizer below therefore has to agree with libxml2 (2.9, RECOVER)
 * only on where tokens start and end, and is strict about it: what it does
 * not read with certainty (a '<' that is not markup, `<?`, `<![CDATA[`, an
 * odd comment, a malformed tag, a start tag whose content libxml2 reads
 * specially, nesting near the 256 levels after which libxml2 stops) is
 * "odd", and past an odd token the pages must be byte-equal to the end, or
 * the tree differ decides. Nothing here allocates or recurses. */
#include "compare/htmlfast.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"

/* Ignore expressions the fast path reads; more go to the tree differ. */
#define HF_EXPRS_MAX 32
/* Attributes of one start tag; more is odd. */
#define HF_ATTRS_MAX 32
/* libxml2's HTML names stop at 100 bytes (HTML_PARSER_BUFFER_SIZE). */
#define HF_NAME_MAX 100
/* Longest differing value read here; libxml2 limits a text node to 10 MB
 * (without HTML_PARSE_HUGE), and nothing real comes near this. */
#define HF_VALUE_MAX (1u << 20)
/* Open elements tracked. libxml2 stops parsing past 256 levels (without
 * HTML_PARSE_HUGE); it may imply up to three elements this stack lacks
 * (html, body, p), and it closes at least what this stack closes, so past
 * this depth the reading is no longer certain. */
#define HF_DEPTH_MAX 250

typedef enum hf_kind {
  HF_TEXT,    /* characters up to the next '<' or the end */
  HF_START,   /* <name attr="v" ...> or <name .../> */
  HF_END,     /* </name> */
  HF_COMMENT, /* <!-- ... --> */
  HF_DOCTYPE, /* <!DOCTYPE ...> */
  HF_RAW,     /* content of <script> or <style>, up to its end tag */
  HF_ODD      /* anything not read with certainty */
} hf_kind;

typedef struct hf_span {
  const char *p;
  size_t n;
} hf_span;

typedef struct hf_elem hf_elem; /* what an element name means, below */

typedef struct hf_attr {
  hf_span name, val;
  bool has_val; /* `disabled` alone has none */
} hf_attr;

/* One token of one page. Spans point into the page. */
typedef struct hf_tok {
  hf_kind kind;
  size_t end;  /* offset just past the token */
  size_t term; /* bytes after end that decided where it ends, which must
                  agree for two tokens to be the same (TEXT: the '<';
                  RAW: "</" and the name); 0 at the end of the page */
  hf_span name; /* START, END */
  const hf_elem *elem; /* START, END: what name is */
  hf_attr attrs[HF_ATTRS_MAX];
  size_t nattrs;
  bool self_closing; /* <name/>: libxml2 closes it at once */
} hf_tok;

/* What an expression selects. */
typedef enum hf_sel {
  HF_SEL_ATTR, /* .../@name */
  HF_SEL_TEXT, /* .../text() */
  HF_SEL_ELEM, /* the element, its attributes and everything in it */
  HF_SEL_NONE  /* a NULL expression: nothing */
} hf_sel;

/* One ignore expression in the subset read here. */
typedef struct hf_expr {
  hf_sel sel;
  hf_span tag;         /* element name; n == 0 for "*" */
  hf_span pattr, pval; /* predicate [@pattr='pval'], pattr.n == 0 if none */
  hf_span attr;        /* HF_SEL_ATTR: the attribute's name */
} hf_expr;

/* The open elements, as libxml2's name stack would have them (or deeper). */
typedef struct hf_open {
  hf_span name;
  const hf_elem *elem;
} hf_open;

typedef struct hf_stack {
  hf_open v[HF_DEPTH_MAX];
  size_t n;
} hf_stack;

/* --- characters and names ---------------------------------------------- */

static bool hf_is_letter(unsigned char c) {
  return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/* libxml2's IS_BLANK_CH, what separates attributes. */
static bool hf_is_blank(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* htmlParseHTMLName: a letter, '_', ':' or '.', then those, digits and
 * '-'. */
static bool hf_is_name_char(unsigned char c) {
  return hf_is_letter(c) || (c >= '0' && c <= '9') || c == '_' || c == ':' ||
         c == '.' || c == '-';
}

static bool hf_is_name_start(unsigned char c) {
  return hf_is_letter(c) || c == '_' || c == ':' || c == '.';
}

/* Compares two HTML names, case-blind as libxml2 reads them (it lowers
 * every name). */
static bool hf_same_name(hf_span x, hf_span y) {
  if (x.n != y.n) return false;
  for (size_t i = 0; i < x.n; i++) {
    unsigned char c = (unsigned char)x.p[i], d = (unsigned char)y.p[i];
    if (hf_is_letter(c)) c |= 0x20;
    if (hf_is_letter(d)) d |= 0x20;
    if (c != d) return false;
  }
  return true;
}

static bool hf_span_eq(hf_span x, hf_span y) {
  return x.n == y.n && (x.n == 0 || memcmp(x.p, y.p, x.n) == 0);
}

/* What the fast path needs to know of an element (lower-case names). */
enum {
  HF_E_TEXT = 1,    /* its text child is the text right after its start tag,
                       as libxml2 builds it: never moved (into an implied
                       <p> or <body>), never kept verbatim, never raw */
  HF_E_VOID = 2,    /* no content, no end tag */
  HF_E_SPECIAL = 4, /* content libxml2 reads its own way, or that we do
                       not want to guess about */
  HF_E_RAW = 8,     /* content is raw text up to its end tag */
  HF_E_PRE = 16,    /* text keeps its whitespace (htmldiff.c's
                       kg_htmldiff_is_pre; textarea and xmp are special) */
  HF_E_META = 32,   /* may declare the charset */
  HF_E_ROOT = 64    /* html, head, body: libxml2 drops repeated ones */
};

struct hf_elem {
  const char *name;
  unsigned flags;
  int prio; /* libxml2's htmlEndPriority: an end tag closes nothing above
               an element of higher priority than its own */
};

/* Sorted by name for bsearch. */
static const hf_elem hf_elems[] = {
    {"a", HF_E_TEXT, 100},
    {"abbr", HF_E_TEXT, 100},
    {"address", HF_E_TEXT, 100},
    {"area", HF_E_VOID, 100},
    {"article", HF_E_TEXT, 100},
    {"aside", HF_E_TEXT, 100},
    {"b", HF_E_TEXT, 100},
    {"base", HF_E_VOID, 100},
    {"basefont", HF_E_VOID, 100},
    {"bdi", HF_E_TEXT, 100},
    {"bdo", HF_E_TEXT, 100},
    {"big", HF_E_TEXT, 100},
    {"body", HF_E_ROOT, 200},
    {"br", HF_E_VOID, 100},
    {"button", HF_E_TEXT, 100},
    {"caption", HF_E_TEXT, 100},
    {"cite", HF_E_TEXT, 100},
    {"code", HF_E_TEXT, 100},
    {"col", HF_E_VOID, 100},
    {"data", HF_E_TEXT, 100},
    {"dd", HF_E_TEXT, 100},
    {"del", HF_E_TEXT, 100},
    {"dfn", HF_E_TEXT, 100},
    {"div", HF_E_TEXT, 150},
    {"dt", HF_E_TEXT, 100},
    {"em", HF_E_TEXT, 100},
    {"embed", HF_E_VOID, 100},
    {"figcaption", HF_E_TEXT, 100},
    {"footer", HF_E_TEXT, 100},
    {"frame", HF_E_VOID, 100},
    {"h1", HF_E_TEXT, 100},
    {"h2", HF_E_TEXT, 100},
    {"h3", HF_E_TEXT, 100},
    {"h4", HF_E_TEXT, 100},
    {"h5", HF_E_TEXT, 100},
    {"h6", HF_E_TEXT, 100},
    {"head", HF_E_ROOT, 200},
    {"header", HF_E_TEXT, 100},
    {"hr", HF_E_VOID, 100},
    {"html", HF_E_ROOT, 220},
    {"i", HF_E_TEXT, 100},
    {"iframe", HF_E_SPECIAL, 100},
    {"img", HF_E_VOID, 100},
    {"input", HF_E_VOID, 100},
    {"ins", HF_E_TEXT, 100},
    {"isindex", HF_E_VOID, 100},
    {"kbd", HF_E_TEXT, 100},
    {"keygen", HF_E_VOID, 100},
    {"label", HF_E_TEXT, 100},
    {"legend", HF_E_TEXT, 100},
    {"li", HF_E_TEXT, 100},
    {"link", HF_E_VOID, 100},
    {"listing", HF_E_PRE, 100},
    {"main", HF_E_TEXT, 100},
    {"mark", HF_E_TEXT, 100},
    {"math", HF_E_SPECIAL, 100},
    {"meta", HF_E_VOID | HF_E_META, 100},
    {"nav", HF_E_TEXT, 100},
    {"noembed", HF_E_SPECIAL, 100},
    {"noframes", HF_E_SPECIAL, 100},
    {"noscript", HF_E_SPECIAL, 100},
    {"option", HF_E_TEXT, 100},
    {"p", HF_E_TEXT, 100},
    {"param", HF_E_VOID, 100},
    {"plaintext", HF_E_SPECIAL, 100},
    {"pre", HF_E_PRE, 100},
    {"q", HF_E_TEXT, 100},
    {"s", HF_E_TEXT, 100},
    {"samp", HF_E_TEXT, 100},
    {"script", HF_E_RAW, 100},
    {"section", HF_E_TEXT, 100},
    {"small", HF_E_TEXT, 100},
    {"source", HF_E_VOID, 100},
    {"span", HF_E_TEXT, 100},
    {"strong", HF_E_TEXT, 100},
    {"style", HF_E_RAW, 100},
    {"sub", HF_E_TEXT, 100},
    {"summary", HF_E_TEXT, 100},
    {"sup", HF_E_TEXT, 100},
    {"svg", HF_E_SPECIAL, 100},
    {"table", 0, 190},
    {"tbody", 0, 180},
    {"td", HF_E_TEXT, 160},
    {"textarea", HF_E_SPECIAL, 100},
    {"tfoot", 0, 180},
    {"th", HF_E_TEXT, 160},
    {"thead", 0, 180},
    {"time", HF_E_TEXT, 100},
    {"tr", 0, 170},
    {"track", HF_E_VOID, 100},
    {"tt", HF_E_TEXT, 100},
    {"u", HF_E_TEXT, 100},
    {"var", HF_E_TEXT, 100},
    {"wbr", HF_E_VOID, 100},
    {"xmp", HF_E_SPECIAL, 100},
};

static const hf_elem hf_other = {"", 0, 100};

static int hf_elem_cmp(const void *key, const void *e) {
  return strcmp(key, ((const hf_elem *)e)->name);
}

/* The element named name (any case), or hf_other. */
static const hf_elem *hf_lookup(hf_span name) {
  char low[16];
  if (name.n >= sizeof low) return &hf_other;
  for (size_t i = 0; i < name.n; i++) {
    unsigned char c = (unsigned char)name.p[i];
    low[i] = (char)(hf_is_letter(c) ? c | 0x20 : c);
  }
  low[name.n] = '\0';
  const hf_elem *e = bsearch(low, hf_elems, sizeof hf_elems / sizeof *hf_elems,
                             sizeof *hf_elems, hf_elem_cmp);
  return e ? e : &hf_other;
}

/* Names looked up during one comparison: a page repeats a few element
 * names thousands of times, and a hit costs one memcmp. Direct-mapped by
 * length and first and last byte; the spans point into the pages. */
#define HF_NAMES_SLOTS 32
typedef struct hf_names {
  hf_span name[HF_NAMES_SLOTS];
  const hf_elem *elem[HF_NAMES_SLOTS];
} hf_names;

/* Sets t->elem for a start or end tag. */
static void hf_lookup_tag(hf_names *c, hf_tok *t) {
  if (t->kind != HF_START && t->kind != HF_END) return;
  hf_span name = t->name; /* never empty: a tag name starts with a letter */
  unsigned k = ((unsigned)name.n * 7u + (unsigned char)name.p[0] +
                (unsigned char)name.p[name.n - 1]) % HF_NAMES_SLOTS;
  if (c->elem[k] == NULL || c->name[k].n != name.n ||
      memcmp(c->name[k].p, name.p, name.n) != 0) {
    c->name[k] = name;
    c->elem[k] = hf_lookup(name);
  }
  t->elem = c->elem[k];
}

/* A value whose bytes are its meaning: printable ASCII and tab/newline
 * only, no character reference. Anything else may decode (entities),
 * convert (charsets), normalise (CR LF) or switch the decoder (invalid
 * UTF-8 makes libxml2 read the rest as Latin-1) differently. */
static bool hf_is_plain(hf_span s) {
  if (s.n > HF_VALUE_MAX) return false;
  for (size_t i = 0; i < s.n; i++) {
    unsigned char c = (unsigned char)s.p[i];
    if (!((c >= 0x20 && c < 0x7F) || c == '\t' || c == '\n')) return false;
    if (c == '&' || c == '<') return false;
  }
  return true;
}

static bool hf_is_blank_text(hf_span s) {
  for (size_t i = 0; i < s.n; i++)
    if (!kg_htmldiff_is_ws((unsigned char)s.p[i])) return false;
  return true;
}

/* Text as the canonical form has it: runs of whitespace made one space,
 * trimmed. Compares without building either. */
static bool hf_same_text(hf_span x, hf_span y) {
  size_t i = 0, j = 0;
  for (;;) {
    while (i < x.n && kg_htmldiff_is_ws((unsigned char)x.p[i])) i++;
    while (j < y.n && kg_htmldiff_is_ws((unsigned char)y.p[j])) j++;
    if (i == x.n || j == y.n) return i == x.n && j == y.n;
    /* one word each */
    while (i < x.n && j < y.n && !kg_htmldiff_is_ws((unsigned char)x.p[i]) &&
           !kg_htmldiff_is_ws((unsigned char)y.p[j])) {
      if (x.p[i] != y.p[j]) return false;
      i++, j++;
    }
    bool xe = i == x.n || kg_htmldiff_is_ws((unsigned char)x.p[i]);
    bool ye = j == y.n || kg_htmldiff_is_ws((unsigned char)y.p[j]);
    if (xe != ye) return false;
  }
}

/* --- ignore expressions ------------------------------------------------- */

/* Reads an XPath name (what libxml2 would match against the lower-case
 * names of the HTML parser). */
static bool hf_read_name(const char **s, hf_span *out) {
  const char *p = *s;
  if (!(hf_is_letter((unsigned char)*p) || *p == '_')) return false;
  while (hf_is_letter((unsigned char)*p) || (*p >= '0' && *p <= '9') ||
         *p == '_' || *p == '-' || *p == '.')
    p++;
  *out = (hf_span){*s, (size_t)(p - *s)};
  *s = p;
  return out->n <= HF_NAME_MAX;
}

/* Parses "//TAG[@A='V']", ".../@NAME" or ".../text()" (TAG may be "*",
 * the predicate may be left out). Anything else: false. */
static bool hf_parse_expr(const char *s, hf_expr *e) {
  memset(e, 0, sizeof *e);
  if (strncmp(s, "//", 2) != 0) return false;
  s += 2;
  if (*s == '*')
    s++;
  else if (!hf_read_name(&s, &e->tag))
    return false;
  if (*s == '[') {
    s++;
    if (*s++ != '@' || !hf_read_name(&s, &e->pattr) || *s++ != '=') return false;
    char q = *s++;
    if (q != '\'' && q != '"') return false;
    const char *close = strchr(s, q);
    if (close == NULL) return false;
    e->pval = (hf_span){s, (size_t)(close - s)};
    s = close + 1;
    if (*s++ != ']') return false;
  }
  e->sel = HF_SEL_ELEM;
  if (*s == '\0') return true;
  if (*s++ != '/') return false;
  e->sel = HF_SEL_TEXT;
  if (strcmp(s, "text()") == 0) return true;
  e->sel = HF_SEL_ATTR;
  if (*s++ != '@' || !hf_read_name(&s, &e->attr)) return false;
  return *s == '\0';
}

/* Lower-case names only: libxml2's HTML parser lowers every name, so an
 * expression naming "P" matches nothing, and the tag test below would
 * disagree with it. */
static bool hf_expr_lower(const hf_expr *e) {
  const hf_span *names[3] = {&e->tag, &e->pattr, &e->attr};
  for (int k = 0; k < 3; k++)
    for (size_t i = 0; i < names[k]->n; i++)
      if (names[k]->p[i] >= 'A' && names[k]->p[i] <= 'Z') return false;
  return true;
}

/* --- tokenizer ---------------------------------------------------------- */

/* Reads a start tag at s[pos] == '<', s[pos+1] a letter. */
static void hf_start_tag(const char *s, size_t len, size_t pos, hf_tok *t) {
  size_t p = pos + 1;
  while (p < len && hf_is_name_char((unsigned char)s[p])) p++;
  t->name = (hf_span){s + pos + 1, p - pos - 1};
  if (t->name.n > HF_NAME_MAX) return; /* odd */
  for (;;) {
    bool blank = false;
    while (p < len && hf_is_blank((unsigned char)s[p])) p++, blank = true;
    if (p >= len) return;
    if (s[p] == '>') {
      t->end = p + 1;
      break;
    }
    if (s[p] == '/' && p + 1 < len && s[p + 1] == '>') {
      t->self_closing = true;
      t->end = p + 2;
      break;
    }
    if (!blank || !hf_is_name_start((unsigned char)s[p]) || t->nattrs == HF_ATTRS_MAX)
      return;
    hf_attr *at = &t->attrs[t->nattrs++];
    *at = (hf_attr){.has_val = false};
    size_t n0 = p;
    while (p < len && hf_is_name_char((unsigned char)s[p])) p++;
    at->name = (hf_span){s + n0, p - n0};
    if (at->name.n > HF_NAME_MAX) return;
    size_t q = p;
    while (q < len && hf_is_blank((unsigned char)s[q])) q++;
    if (q >= len || s[q] != '=') continue; /* value-less */
    q++;
    while (q < len && hf_is_blank((unsigned char)s[q])) q++;
    if (q >= len) return;
    at->has_val = true;
    if (s[q] == '"' || s[q] == '\'') {
      const char *close = memchr(s + q + 1, s[q], len - q - 1);
      if (close == NULL) return;
      at->val = (hf_span){s + q + 1, (size_t)(close - s) - q - 1};
      p = (size_t)(close - s) + 1;
      /* the next attribute needs a blank before it: checked above */
      if (p < len && !hf_is_blank((unsigned char)s[p]) && s[p] != '>' && s[p] != '/')
        return;
    } else {
      size_t v0 = q;
      while (q < len && !hf_is_blank((unsigned char)s[q]) && s[q] != '>') q++;
      at->val = (hf_span){s + v0, q - v0};
      /* an unquoted value is read up to a blank or '>': a quote or '<' in
         it, or a '/' before '>', reads differently elsewhere */
      for (size_t i = 0; i < at->val.n; i++)
        if (strchr("\"'<=`", at->val.p[i]) != NULL) return;
      p = q;
    }
  }
  t->kind = HF_START;
}

/* Reads the token at s[pos] (pos < len). raw: the element whose raw
 * content comes next (script, style), or an empty span. */
static void hf_next(const char *s, size_t len, size_t pos, hf_span raw, hf_tok *t) {
  t->kind = HF_ODD;
  t->end = pos + 1;
  t->term = 0;
  t->nattrs = 0;
  t->self_closing = false;
  t->name = (hf_span){NULL, 0};
  t->elem = &hf_other;
  if (raw.n > 0) { /* up to "</name", any case, as libxml2 RECOVER does */
    const char *p = s + pos, *e = s + len;
    while ((p = memchr(p, '<', (size_t)(e - p))) != NULL) {
      if ((size_t)(e - p) >= raw.n + 2 && p[1] == '/' &&
          hf_same_name((hf_span){p + 2, raw.n}, raw))
        break;
      p++;
    }
    t->kind = HF_RAW;
    t->end = p ? (size_t)(p - s) : len;
    t->term = p ? raw.n + 2 : 0;
    return;
  }
  if (s[pos] != '<') {
    const char *p = memchr(s + pos, '<', len - pos);
    t->kind = HF_TEXT;
    t->end = p ? (size_t)(p - s) : len;
    t->term = p ? 1 : 0;
    return;
  }
  if (pos + 1 >= len) return;
  unsigned char c = (unsigned char)s[pos + 1];
  if (hf_is_letter(c)) {
    hf_start_tag(s, len, pos, t);
  } else if (c == '/') {
    size_t p = pos + 2;
    if (p >= len || !hf_is_letter((unsigned char)s[p])) return;
    while (p < len && hf_is_name_char((unsigned char)s[p])) p++;
    t->name = (hf_span){s + pos + 2, p - pos - 2};
    while (p < len && hf_is_blank((unsigned char)s[p])) p++;
    if (p >= len || s[p] != '>' || t->name.n > HF_NAME_MAX) return;
    t->kind = HF_END;
    t->end = p + 1;
  } else if (c == '!') {
    if (len - pos >= 4 && memcmp(s + pos, "<!--", 4) == 0) {
      const char *body = s + pos + 4;
      size_t n = len - pos - 4;
      const char *close = memmem(body, n, "-->", 3);
      /* "<!-->", "<!--->", a "--" inside: parsers disagree on where
         these end */
      if (close == NULL || (n > 0 && body[0] == '>') ||
          (n > 1 && body[0] == '-' && body[1] == '>') ||
          memmem(body, (size_t)(close - body), "--", 2) != NULL ||
          (close > body && close[-1] == '-'))
        return;
      t->kind = HF_COMMENT;
      t->end = (size_t)(close - s) + 3;
    } else if (len - pos >= 10 && hf_same_name((hf_span){s + pos + 2, 7}, (hf_span){"doctype", 7})) {
      const char *close = memchr(s + pos, '>', len - pos);
      if (close == NULL) return;
      for (const char *q = s + pos + 2; q < close; q++)
        if (*q == '"' || *q == '\'' || *q == '<') return;
      t->kind = HF_DOCTYPE;
      t->end = (size_t)(close - s) + 1;
    }
  }
}

/* --- open elements ------------------------------------------------------- */

/* Returns false when the stack would grow past what is certain. */
static bool hf_push(hf_stack *st, const hf_tok *t) {
  if (t->self_closing || (t->elem->flags & HF_E_VOID)) return true;
  if (st->n == HF_DEPTH_MAX) return false;
  st->v[st->n++] = (hf_open){t->name, t->elem};
  return true;
}

static void hf_pop(hf_stack *st, const hf_tok *t) {
  for (size_t i = st->n; i-- > 0;) {
    if (hf_same_name(st->v[i].name, t->name)) {
      st->n = i;
      return;
    }
    if (st->v[i].elem->prio > t->elem->prio) return;
  }
}

/* Inside an element whose text keeps its whitespace (htmldiff.c's
 * kg_htmldiff_is_pre; textarea, xmp and plaintext are never read here)?
 * The stack may hold more than libxml2's, never less: erring towards yes. */
static bool hf_in_pre(const hf_stack *st) {
  for (size_t i = 0; i < st->n; i++)
    if (st->v[i].elem->flags & HF_E_PRE) return true;
  return false;
}

/* --- deciding one difference -------------------------------------------- */

typedef struct hf_state {
  const hf_expr *ex;
  size_t nex;
  bool hit[HF_EXPRS_MAX]; /* expression i hid a difference */
} hf_state;

static const hf_attr *hf_find_attr(const hf_tok *t, hf_span lower) {
  for (size_t i = 0; i < t->nattrs; i++)
    if (hf_same_name(t->attrs[i].name, lower)) return &t->attrs[i];
  return NULL;
}

/* Two attributes of one name: libxml2 keeps one of them. */
static bool hf_has_duplicates(const hf_tok *t) {
  for (size_t i = 0; i < t->nattrs; i++)
    for (size_t j = i + 1; j < t->nattrs; j++)
      if (hf_same_name(t->attrs[i].name, t->attrs[j].name)) return true;
  return false;
}

/* Does e's element test hold for start tag t? -1: cannot say. */
static int hf_tag_matches(const hf_expr *e, const hf_tok *t) {
  if (e->sel == HF_SEL_NONE) return 0;
  if (e->tag.n > 0 && !hf_same_name(t->name, e->tag)) return 0;
  if (e->pattr.n == 0) return 1;
  const hf_attr *at = hf_find_attr(t, e->pattr);
  if (at == NULL) return 0;
  if (!at->has_val || !hf_is_plain(at->val)) return -1;
  return hf_span_eq(at->val, e->pval);
}

/* Marks the expressions that select, in both pages, the node that
 * differs: the text right after start tag t (attr.n == 0) or t's attribute
 * attr. As the tree differ charges a difference to the expressions that
 * hid the innermost node: those naming the text or attribute if any, else
 * those selecting t itself (an element's rendering leaves out what another
 * expression hid). Returns false when none does, when one does in one page
 * only (the tree differ would then see a real difference), or when it
 * cannot say. Expressions selecting an element further up are not seen
 * here: such a difference goes to the tree differ. */
static bool hf_hide(hf_state *st, const hf_tok *ta, const hf_tok *tb, hf_span attr) {
  if (hf_has_duplicates(ta) || hf_has_duplicates(tb)) return false;
  hf_sel node = attr.n > 0 ? HF_SEL_ATTR : HF_SEL_TEXT;
  bool hit[HF_EXPRS_MAX] = {false};
  for (int pass = 0; pass < 2; pass++) {
    bool any = false;
    for (size_t i = 0; i < st->nex; i++) {
      const hf_expr *e = &st->ex[i];
      if (e->sel != (pass == 0 ? node : HF_SEL_ELEM)) continue;
      if (e->sel == HF_SEL_ATTR && !hf_same_name(attr, e->attr)) continue; /* any case */
      int ma = hf_tag_matches(e, ta), mb = hf_tag_matches(e, tb);
      if (ma < 0 || mb < 0 || ma != mb) return false;
      if (ma) hit[i] = any = true;
    }
    if (!any) continue;
    for (size_t i = 0; i < st->nex; i++) st->hit[i] |= hit[i];
    return true;
  }
  return false;
}

/* After a text run: the end, or a tag (not a comment, whose removal would
 * join this text with the next in the canonical form). */
static bool hf_text_ends_at_tag(const char *s, size_t len, size_t end) {
  if (end == len) return true;
  if (end + 1 >= len) return false;
  unsigned char c = (unsigned char)s[end + 1];
  return hf_is_letter(c) || (c == '/' && end + 2 < len && hf_is_letter((unsigned char)s[end + 2]));
}

/* A meta tag that may set the charset: a different value changes how the
 * whole page is decoded. */
static bool hf_sets_charset(const hf_tok *t) {
  return (t->elem->flags & HF_E_META) &&
         (hf_find_attr(t, (hf_span){"charset", 7}) != NULL ||
          hf_find_attr(t, (hf_span){"http-equiv", 10}) != NULL);
}

/* Two start tags of the same element, whose bytes differ. */
static bool hf_start_pair(hf_state *st, const hf_tok *ta, const hf_tok *tb) {
  if (!hf_same_name(ta->name, tb->name) || ta->self_closing != tb->self_closing ||
      ta->nattrs != tb->nattrs)
    return false;
  /* libxml2 drops repeated html/head/body tags (keeping some attributes) */
  if (ta->elem->flags & HF_E_ROOT) return false;
  if (hf_sets_charset(ta) || hf_sets_charset(tb)) return false;
  /* Every expression must select the same of this element on both pages:
     one that holds on one side only would hide an equal text or attribute
     there and not here, a real difference. */
  for (size_t i = 0; i < st->nex; i++) {
    int ma = hf_tag_matches(&st->ex[i], ta), mb = hf_tag_matches(&st->ex[i], tb);
    if (ma < 0 || mb < 0 || ma != mb) return false;
  }
  for (size_t i = 0; i < ta->nattrs; i++) {
    const hf_attr *x = &ta->attrs[i], *y = &tb->attrs[i];
    if (!hf_same_name(x->name, y->name) || x->has_val != y->has_val) return false;
    if (hf_span_eq(x->val, y->val)) continue;
    if (!hf_is_plain(x->val) || !hf_is_plain(y->val)) return false;
    if (!hf_hide(st, ta, tb, x->name)) return false;
  }
  return true;
}

/* Two text runs right after the same start tag (prev), whose bytes
 * differ. */
static bool hf_text_pair(hf_state *st, const hf_stack *open, const hf_tok *pa,
                         const hf_tok *pb, hf_span xa, hf_span xb) {
  if (!hf_is_plain(xa) || !hf_is_plain(xb)) return false;
  /* Blank against not blank: libxml2 drops or keeps such text, and implies
     elements for it, by context. */
  if (hf_is_blank_text(xa) || hf_is_blank_text(xb)) return false;
  if (!hf_in_pre(open) && hf_same_text(xa, xb)) return true; /* same canonical text */
  if (pa == NULL || pb == NULL || pa->self_closing || pb->self_closing ||
      !(pa->elem->flags & HF_E_TEXT))
    return false;
  return hf_hide(st, pa, pb, (hf_span){NULL, 0});
}

/* --- the walk ------------------------------------------------------------ */

/* Decided: lists what was hidden, in the expressions' order as the tree
 * differ does. */
static int hf_finish(const hf_state *st, const kg_htmldiff_opts *o, kg_diffs *out) {
  for (size_t i = 0; i < st->nex; i++)
    if (st->hit[i]) kg_diffs_suppress(out, o->ignore[i]);
  return 0;
}

/* Charsets that libxml2 decodes without a chance of a conversion error:
 * UTF-8 (invalid bytes make it read the rest as Latin-1, which depends on
 * the bytes alone, never on where a conversion chunk ends) and Latin-1.
 * In others (windows-1252, Shift_JIS, ...) a byte sequence the converter
 * rejects stops the parse at a point that moves with the lengths of the
 * values before it. Names as given, exactly: a misspelt one is not
 * guessed at. */
static bool hf_charset_ok(const char *cs, size_t n) {
  static const char *const ok[] = {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1",
                                   "latin1"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
    if (strlen(ok[i]) == n && strncasecmp(cs, ok[i], n) == 0) return true;
  return false;
}

/* The charset a meta start tag declares, if any: may it be read here? */
static bool hf_meta_charset_ok(const hf_tok *t) {
  const hf_attr *cs = hf_find_attr(t, (hf_span){"charset", 7});
  const hf_attr *ct = hf_find_attr(t, (hf_span){"content", 7});
  hf_span v = cs ? cs->val : ct && hf_find_attr(t, (hf_span){"http-equiv", 10}) ? ct->val
                                                                             : (hf_span){NULL, 0};
  if (cs == NULL && v.n == 0) return true;
  if (cs == NULL) { /* content="text/html; charset=X" */
    const char *p = NULL;
    for (size_t i = 0; i + 8 <= v.n; i++)
      if (strncasecmp(v.p + i, "charset=", 8) == 0) p = v.p + i + 8;
    if (p == NULL) return true;
    v = (hf_span){p, (size_t)(v.p + v.n - p)};
  }
  return hf_charset_ok(v.p, v.n);
}

/* A charset a start tag declares: may it be read here? */
static bool hf_declared_charset_ok(const hf_tok *t) {
  return !(t->elem->flags & HF_E_META) || hf_meta_charset_ok(t);
}

/* Past an odd token the page is not read token by token, but a meta tag
 * there can still switch libxml2 to a charset whose conversion may fail
 * (the tree differ then does not compare the page as HTML). Every "<meta"
 * in s from pos on, whatever its context, must read as a meta start tag
 * declaring no charset or one read here. */
static bool hf_rest_charsets_ok(const char *s, size_t len, size_t pos) {
  static const hf_span meta = {"meta", 4};
  const char *p = s + pos, *end = s + len;
  while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
    if (end - p > 4 && hf_same_name((hf_span){p + 1, 4}, meta)) {
      hf_tok t;
      hf_next(s, len, (size_t)(p - s), (hf_span){NULL, 0}, &t);
      if (t.kind == HF_ODD) return false;
      if (t.kind == HF_START && hf_same_name(t.name, meta) && !hf_meta_charset_ok(&t))
        return false;
    }
    p++;
  }
  return true;
}

/* The tree differ's "is it HTML at all" (htmldiff.c) for what the walk
 * does not see: a UTF-16 BOM, binary bytes. */
static bool hf_sniff_ok(const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  if (len >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) || (u[0] == 0xFE && u[1] == 0xFF)))
    return false;
  return !kg_htmldiff_looks_binary(s, len) && len <= INT_MAX;
}

/* Past an odd token nothing is certain: decided only when the rest of the
 * pages is byte-equal (and a root element was seen). */
static int hf_finish_if_rest_equal(const hf_state *st, const kg_htmldiff_opts *o,
                                   kg_diffs *out, const char *a, size_t alen, size_t pa,
                                   const char *b, size_t blen, size_t pb, bool rooted) {
  if (!rooted || alen - pa != blen - pb || memcmp(a + pa, b + pb, alen - pa) != 0 ||
      !hf_rest_charsets_ok(a, alen, pa))
    return KG_HTMLFAST_FALLBACK;
  return hf_finish(st, o, out);
}

/* Reads the ignore expressions; false when one is outside the subset. */
static bool hf_read_exprs(const kg_htmldiff_opts *o, hf_expr *ex, size_t *nex) {
  *nex = 0;
  if (o == NULL || o->ignore == NULL) return true;
  if (o->nignore > HF_EXPRS_MAX) return false;
  for (size_t i = 0; i < o->nignore; i++) {
    if (o->ignore[i] == NULL) { /* hides nothing, as in the tree differ */
      memset(&ex[i], 0, sizeof ex[i]);
      ex[i].sel = HF_SEL_NONE;
    } else if (!hf_parse_expr(o->ignore[i], &ex[i]) || !hf_expr_lower(&ex[i])) {
      return false;
    }
  }
  *nex = o->nignore;
  return true;
}

int kg_htmlfast(const char *a, size_t alen, const char *b, size_t blen,
                const kg_htmldiff_opts *o, kg_diffs *out) {
  hf_expr ex[HF_EXPRS_MAX];
  hf_state st = {.ex = ex};
  if (!hf_read_exprs(o, ex, &st.nex)) return KG_HTMLFAST_FALLBACK;
  if (o != NULL && o->encoding != NULL && !hf_charset_ok(o->encoding, strlen(o->encoding)))
    return KG_HTMLFAST_FALLBACK;
  if (!hf_sniff_ok(a, alen) || !hf_sniff_ok(b, blen)) return KG_HTMLFAST_FALLBACK;

  /* Two token slots per side: the current token, and the start tag just
     before it (a text's parent). While the bytes agree only the master's
     page is read and the shadow's token is the master's. */
  hf_tok ta[2], tb[2];
  const hf_tok *prev_a = NULL, *prev_b = NULL;
  int cur = 0;
  hf_stack open;
  open.n = 0;
  hf_names names;
  memset(names.elem, 0, sizeof names.elem);
  hf_span raw = {NULL, 0}; /* element whose raw content comes next */
  size_t pa = 0, pb = 0;
  bool rooted = false; /* a start tag seen: libxml2 builds a root element */
  while (pa < alen || pb < blen) {
    if (pa == alen || pb == blen) return KG_HTMLFAST_FALLBACK;
    hf_tok *x = &ta[cur], *y = x; /* y: the shadow's token, x's own while
                                     the bytes agree (no copy: 1.3 KB) */
    hf_next(a, alen, pa, raw, x);
    hf_lookup_tag(&names, x);
    if (x->kind == HF_ODD ||
        (x->kind == HF_START &&
         ((x->elem->flags & HF_E_SPECIAL) || !hf_declared_charset_ok(x))))
      return hf_finish_if_rest_equal(&st, o, out, a, alen, pa, b, blen, pb, rooted);
    size_t n = x->end - pa + x->term, next_b;
    bool same = n <= blen - pb && memcmp(a + pa, b + pb, n) == 0 &&
                (x->term > 0 || pb + n == blen ||
                 (x->kind != HF_TEXT && x->kind != HF_RAW));
    if (same) {
      next_b = pb + (x->end - pa);
    } else {
      y = &tb[cur];
      hf_next(b, blen, pb, raw, y);
      hf_lookup_tag(&names, y);
      next_b = y->end;
      if (y->kind != x->kind) return KG_HTMLFAST_FALLBACK;
      switch (x->kind) {
        case HF_START:
          if (!hf_start_pair(&st, x, y)) return KG_HTMLFAST_FALLBACK;
          break;
        case HF_TEXT:
          if (!hf_text_ends_at_tag(a, alen, x->end) || !hf_text_ends_at_tag(b, blen, y->end) ||
              !hf_text_pair(&st, &open, prev_a, prev_b, (hf_span){a + pa, x->end - pa},
                            (hf_span){b + pb, y->end - pb}))
            return KG_HTMLFAST_FALLBACK;
          break;
        case HF_COMMENT: /* dropped from the canonical form, but a byte
                            that is not UTF-8 would change how libxml2
                            decodes the rest */
          if (!hf_is_plain((hf_span){a + pa + 4, x->end - pa - 7}) ||
              !hf_is_plain((hf_span){b + pb + 4, y->end - pb - 7}))
            return KG_HTMLFAST_FALLBACK;
          break;
        default: /* end tags, doctypes, script and style contents */
          return KG_HTMLFAST_FALLBACK;
      }
    }
    pa = x->end;
    pb = next_b;
    prev_a = prev_b = NULL;
    hf_span was_raw = raw;
    raw = (hf_span){NULL, 0};
    if (x->kind == HF_START) {
      rooted = true;
      if (!hf_push(&open, x)) return KG_HTMLFAST_FALLBACK;
      if (!x->self_closing && (x->elem->flags & HF_E_RAW)) raw = x->name;
      prev_a = x, prev_b = y;
      cur ^= 1;
    } else if (x->kind == HF_END) {
      hf_pop(&open, x);
    } else if (x->kind == HF_RAW && pa < alen) {
      /* only the element's own end tag ends it: after "</scriptx>" libxml2
         reads raw content again */
      hf_tok *end = &ta[cur];
      hf_next(a, alen, pa, (hf_span){NULL, 0}, end);
      if (end->kind != HF_END || !hf_same_name(end->name, was_raw))
        return hf_finish_if_rest_equal(&st, o, out, a, alen, pa, b, blen, pb, rooted);
    }
  }
  if (!rooted) return KG_HTMLFAST_FALLBACK;
  return hf_finish(&st, o, out);
}
