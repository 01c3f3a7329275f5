/* fuzz_endpoint: method and path -> endpoint name (src/compare/endpoint.c).
 *
 * Input: two parts split at FZ_SEP: endpoint patterns, one per line (as
 * in the config's `endpoints`), then the method on the first line and the
 * request target after it.
 *
 * What must hold: a name is "METHOD PATH", printable ASCII with exactly
 * one space, within the documented lengths; the same request always gets
 * the same name; templating is idempotent (a default name, taken as a
 * path, names itself); a pattern that does not compile names its position
 * in the message. */
#include "compare/endpoint.h"
#include "fuzz_util.h"

#define FZ_MAX_RULES 8

static void fz_check_name(const char *s, size_t n) {
  const char *sp = memchr(s, ' ', n);
  FZ_CHECK(sp != NULL);
  size_t mlen = (size_t)(sp - s), plen = n - mlen - 1;
  FZ_CHECK(mlen >= 1 && mlen <= KG_ENDPOINT_MAX_METHOD);
  /* "/..." for paths; the asterisk form of OPTIONS stays "*". */
  FZ_CHECK(plen >= 1 && plen <= KG_ENDPOINT_MAX_PATH);
  for (size_t i = 0; i < n; i++) {
    if (s + i == sp) continue;
    FZ_CHECK(s[i] > 0x20 && s[i] < 0x7f);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  char *pats_text = fz_strdup(fz_part(&in));
  char *pats[FZ_MAX_RULES];
  size_t npats = 0;
  char *save = NULL;
  for (char *l = strtok_r(pats_text, "\n", &save); l && npats < FZ_MAX_RULES;
       l = strtok_r(NULL, "\n", &save))
    pats[npats++] = l;
  char err[128];
  memset(err, 'x', sizeof(err));
  kg_endpoint_rules *rules =
      kg_endpoint_rules_new((const char *const *)pats, npats, err, sizeof(err));
  if (rules == NULL) {
    FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    FZ_CHECK(npats > 0);
  }

  const uint8_t *nl = memchr(in.p, '\n', in.n);
  size_t mlen = nl ? (size_t)(nl - in.p) : in.n;
  char *method = fz_strdup((fz_in){in.p, mlen});
  char *path = fz_strdup(nl ? (fz_in){nl + 1, in.n - mlen - 1} : (fz_in){in.p, 0});

  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
  kg_buf_append(&a, "PRE", 3);
  kg_endpoint_of(method, path, rules, &a);
  FZ_CHECK(a.len > 3 && memcmp(a.data, "PRE", 3) == 0);
  fz_check_name(a.data + 3, a.len - 3);
  kg_endpoint_of(method, path, rules, &b);
  FZ_CHECK(b.len == a.len - 3 && memcmp(b.data, a.data + 3, b.len) == 0);

  /* Without rules, the path part of a name is its own template. */
  kg_buf_reset(&a);
  kg_buf_reset(&b);
  kg_endpoint_of(method, path, NULL, &a);
  fz_check_name(a.data, a.len);
  const char *p = strchr(a.data, ' ');
  char *m2 = strndup(a.data, (size_t)(p - a.data));
  kg_endpoint_of(m2, p + 1, NULL, &b);
  if (strcmp(a.data, b.data) != 0) {
    fprintf(stderr, "not idempotent: \"%s\" -> \"%s\"\n", a.data, b.data);
    FZ_CHECK(!"templating is idempotent");
  }

  free(m2);
  kg_buf_free(&a);
  kg_buf_free(&b);
  free(method);
  free(path);
  kg_endpoint_rules_free(rules);
  free(pats_text);
  return 0;
}
