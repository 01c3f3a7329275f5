/* textnorm.c: PCRE2 replacement rules for text bodies (see textnorm.h). */
#include "compare/textnorm.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/common.h"

typedef struct tn_rule {
  pcre2_code *code; /* owned; read-only once compiled, so shareable */
  char *repl;       /* owned replacement text */
  size_t repl_len;
} tn_rule;

struct kg_textnorm {
  tn_rule *rules;              /* owned array, applied in order */
  size_t n;
  uint32_t ovector_pairs;      /* enough for the rule with most groups */
  pcre2_general_context *gctx; /* owned; routes PCRE2's allocations
                                  through kg_malloc */
  pcre2_match_context *mctx;   /* owned; the limits. Only read while
                                  matching, so shared by all threads */
};

/* PCRE2 allocates through these so that running out of memory aborts like
 * everywhere else, instead of turning into a "rule failed". */
static void *kg_textnorm_pcre_malloc(PCRE2_SIZE n, void *data) { return kg_malloc(n); }
static void kg_textnorm_pcre_free(void *p, void *data) { free(p); }

static bool kg_textnorm_is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool kg_textnorm_is_name_char(char c) {
  return kg_textnorm_is_name_start(c) || (c >= '0' && c <= '9');
}
static bool kg_textnorm_is_digit(char c) { return c >= '0' && c <= '9'; }

/* Checks a group reference (a number or a name) against the pattern. */
static bool kg_textnorm_check_group(const pcre2_code *code, const char *ref, size_t len,
                        size_t rule_no, char *err, size_t errlen) {
  if (kg_textnorm_is_digit(ref[0])) {
    uint32_t groups = 0;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &groups);
    unsigned long num = 0;
    for (size_t i = 0; i < len && num <= groups; i++) num = num * 10 + (unsigned long)(ref[i] - '0');
    if (num <= groups) return true;
    snprintf(err, errlen, "replacement %zu: group %.*s does not exist (the pattern has %u)",
             rule_no, (int)KG_MIN(len, 20), ref, (unsigned)groups);
    return false;
  }
  char name[64];
  if (len < sizeof(name)) {
    memcpy(name, ref, len);
    name[len] = '\0';
    int rc = pcre2_substring_number_from_name(code, (PCRE2_SPTR)name);
    if (rc >= 0 || rc == PCRE2_ERROR_NOUNIQUESUBSTRING) return true;
  }
  snprintf(err, errlen, "replacement %zu: no group named %.*s", rule_no,
           (int)KG_MIN(len, 40), ref);
  return false;
}

/* Validates a replacement in PCRE2's (non-extended) syntax: "$$", "$n",
 * "${n}", "$name", "${name}", "$*MARK", "${*MARK}". pcre2_substitute would
 * only notice a bad one when a match first needs it, mid-body. */
static bool kg_textnorm_check_replacement(const pcre2_code *code, const char *r, size_t rule_no,
                              char *err, size_t errlen) {
  size_t len = strlen(r);
  for (size_t i = 0; i < len; i++) {
    if (r[i] != '$') continue;
    size_t at = i++;
    if (i < len && r[i] == '$') continue;
    bool braced = i < len && r[i] == '{';
    if (braced) i++;
    size_t start = i;
    if (i < len && r[i] == '*') { /* a (*MARK) name: always allowed */
      i++;
      while (i < len && kg_textnorm_is_name_char(r[i])) i++;
    } else if (i < len && kg_textnorm_is_digit(r[i])) {
      while (i < len && kg_textnorm_is_digit(r[i])) i++;
      if (!kg_textnorm_check_group(code, r + start, i - start, rule_no, err, errlen)) return false;
    } else if (i < len && kg_textnorm_is_name_start(r[i])) {
      while (i < len && kg_textnorm_is_name_char(r[i])) i++;
      if (!kg_textnorm_check_group(code, r + start, i - start, rule_no, err, errlen)) return false;
    } else {
      snprintf(err, errlen, "replacement %zu: '$' at offset %zu must be followed by "
               "$, a group number or a group name", rule_no, at);
      return false;
    }
    if (braced) {
      if (i >= len || r[i] != '}') {
        snprintf(err, errlen, "replacement %zu: missing } after ${ at offset %zu", rule_no, at);
        return false;
      }
    } else {
      i--; /* the loop's i++ moves past the reference */
    }
  }
  return true;
}

kg_textnorm *kg_textnorm_new(const char *const *patterns,
                             const char *const *replacements, size_t n,
                             char *err, size_t errlen) {
  char scratch[8];
  if (err == NULL || errlen == 0) { /* messages still need somewhere to go */
    err = scratch;
    errlen = sizeof(scratch);
  }
  err[0] = '\0';

  kg_textnorm *t = kg_calloc(1, sizeof(*t));
  t->gctx = pcre2_general_context_create(kg_textnorm_pcre_malloc, kg_textnorm_pcre_free, NULL);
  if (t->gctx == NULL) abort(); /* kg_textnorm_pcre_malloc aborts first; belt and braces */
  t->mctx = pcre2_match_context_create(t->gctx);
  pcre2_compile_context *cctx = pcre2_compile_context_create(t->gctx);
  if (t->mctx == NULL || cctx == NULL) abort();
  pcre2_set_match_limit(t->mctx, KG_TEXTNORM_MATCH_LIMIT);
  pcre2_set_depth_limit(t->mctx, KG_TEXTNORM_DEPTH_LIMIT);
  pcre2_set_heap_limit(t->mctx, KG_TEXTNORM_HEAP_LIMIT);
  t->rules = kg_calloc(n, sizeof(*t->rules));
  t->ovector_pairs = 1;

  bool ok = true;
  for (size_t i = 0; i < n && ok; i++) {
    tn_rule *r = &t->rules[i];
    t->n = i + 1; /* so that kg_textnorm_free sees what was built */
    if (patterns == NULL || patterns[i] == NULL) {
      snprintf(err, errlen, "pattern %zu: missing", i + 1);
      ok = false;
      break;
    }
    if (replacements == NULL || replacements[i] == NULL) {
      snprintf(err, errlen, "replacement %zu: missing", i + 1);
      ok = false;
      break;
    }
    int code_err;
    PCRE2_SIZE off;
    r->code = pcre2_compile((PCRE2_SPTR)patterns[i], PCRE2_ZERO_TERMINATED, PCRE2_NEVER_UTF,
                            &code_err, &off, cctx);
    if (r->code == NULL) {
      PCRE2_UCHAR msg[160];
      if (pcre2_get_error_message(code_err, msg, sizeof(msg)) < 0)
        snprintf((char *)msg, sizeof(msg), "error %d", code_err);
      snprintf(err, errlen, "pattern %zu: %s at offset %zu", i + 1, (char *)msg, (size_t)off);
      ok = false;
      break;
    }
    /* JIT is a speed-up only: without it (unsupported CPU, no executable
     * memory) the interpreter gives the same results. */
    (void)pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);
    if (!kg_textnorm_check_replacement(r->code, replacements[i], i + 1, err, errlen)) {
      ok = false;
      break;
    }
    r->repl = kg_strdup(replacements[i]);
    r->repl_len = strlen(r->repl);
    uint32_t groups = 0;
    pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &groups);
    if (groups + 1 > t->ovector_pairs) t->ovector_pairs = groups + 1;
  }
  pcre2_compile_context_free(cctx);
  if (!ok) {
    kg_textnorm_free(t);
    return NULL;
  }
  return t;
}

void kg_textnorm_free(kg_textnorm *t) {
  if (t == NULL) return;
  for (size_t i = 0; i < t->n; i++) {
    pcre2_code_free(t->rules[i].code);
    free(t->rules[i].repl);
  }
  free(t->rules);
  pcre2_match_context_free(t->mctx);
  pcre2_general_context_free(t->gctx);
  free(t);
}

/* Applies one rule to in[0..n), replacing dst's content with the result.
 * Returns the number of substitutions, or a negative PCRE2 error. */
static int kg_textnorm_apply_rule(const kg_textnorm *t, const tn_rule *r, pcre2_match_data *md,
                      const char *in, size_t n, kg_buf *dst) {
  /* OVERFLOW_LENGTH: when the guess is too small, PCRE2 reports the size
   * needed, and the second attempt then fits. UNSET_EMPTY: a group that
   * did not take part ("(a)|b" matching b) inserts nothing. */
  uint32_t opts = PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH |
                  PCRE2_SUBSTITUTE_UNSET_EMPTY;
  PCRE2_SPTR subject = (PCRE2_SPTR)(n ? in : ""); /* never a NULL subject */
  kg_buf_reset(dst);
  kg_buf_reserve(dst, n + n / 8 + 64);
  for (int attempt = 0; attempt < 3; attempt++) {
    PCRE2_SIZE outlen = dst->cap + 1; /* kg_buf keeps one spare byte */
    int rc = pcre2_substitute(r->code, subject, n, 0, opts, md, t->mctx,
                              (PCRE2_SPTR)r->repl, r->repl_len,
                              (PCRE2_UCHAR *)dst->data, &outlen);
    if (rc >= 0) {
      dst->len = outlen; /* excludes the terminator PCRE2 wrote */
      return rc;
    }
    if (rc == PCRE2_ERROR_NOMEMORY) {
      /* outlen is now the size needed, terminator included. */
      kg_buf_reserve(dst, outlen);
      continue;
    }
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !(opts & PCRE2_NO_JIT)) {
      /* The JIT's 32K stack is fixed; the interpreter uses the heap, under
       * the depth and heap limits, so let it try before giving up. */
      opts |= PCRE2_NO_JIT;
      continue;
    }
    return rc;
  }
  return PCRE2_ERROR_NOMEMORY; /* unreachable: the second try always fits */
}

int kg_textnorm_apply(const kg_textnorm *t, const char *in, size_t n,
                      kg_buf *out, size_t *replaced) {
  size_t count = 0;
  int result = 0;
  const char *cur = in;
  size_t cur_n = n;
  kg_buf scratch[2] = {KG_BUF_INIT, KG_BUF_INIT};
  int which = 0;
  /* Per call, never shared: match data is what pcre2_match writes to. */
  pcre2_match_data *md = t->n ? pcre2_match_data_create(t->ovector_pairs, t->gctx) : NULL;
  if (t->n && md == NULL) abort();

  for (size_t i = 0; i < t->n; i++) {
    kg_buf *dst = &scratch[which];
    int rc = kg_textnorm_apply_rule(t, &t->rules[i], md, cur, cur_n, dst);
    if (rc < 0) {
      result = -1; /* skip this rule: its input goes on unchanged */
      continue;
    }
    count += (size_t)rc;
    cur = dst->data;
    cur_n = dst->len;
    which ^= 1;
  }
  kg_buf_append(out, cur, cur_n);

  pcre2_match_data_free(md);
  kg_buf_free(&scratch[0]);
  kg_buf_free(&scratch[1]);
  if (replaced) *replaced = count;
  return result;
}
