/* Unit tests: libxml2's per-thread arena during a comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first. */
#include <cmocka.h>

#include <libxml/HTMLparser.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlmemory.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "compare/htmldiff.h"
#include "compare/xmlarena.h"

static int group_setup(void **state) {
  kg_htmldiff_global_init(); /* installs the arena, then initialises libxml2 */
  return 0;
}

/* Blocks come from the arena between begin and end, keep their contents
 * through realloc, and are all taken back at end; one chunk stays. */
static void test_blocks_and_realloc(void **state) {
  kg_xmlarena_begin();
  char *p = xmlMalloc(10);
  memcpy(p, "012345678", 10);
  char *q = xmlMalloc(100);
  memset(q, 'x', 100);
  assert_true(kg_xmlarena_held() > 0);
  /* the newest block grows where it is */
  char *q2 = xmlRealloc(q, 5000);
  assert_ptr_equal(q2, q);
  assert_int_equal(q2[99], 'x');
  /* an older one moves, contents kept */
  char *p2 = xmlRealloc(p, 64);
  assert_ptr_not_equal(p2, p);
  assert_string_equal(p2, "012345678");
  char *s = (char *)xmlStrdup((const xmlChar *)"tea");
  assert_string_equal(s, "tea");
  xmlFree(s);
  xmlFree(p2);
  xmlFree(q2);
  xmlFree(NULL);
  kg_xmlarena_end();
  size_t held = kg_xmlarena_held();
  assert_true(held > 0 && held <= KG_XMLARENA_KEEP);
  /* the next comparison reuses the kept chunk */
  kg_xmlarena_begin();
  void *r = xmlMalloc(64);
  assert_non_null(r);
  assert_int_equal(kg_xmlarena_held(), held);
  kg_xmlarena_end();
}

/* Memory libxml2 allocated before begin (plain malloc) may be freed or
 * grown inside it, and arena memory never reaches free(). */
static void test_malloc_blocks_across_begin(void **state) {
  char *before = xmlMalloc(32);
  strcpy(before, "made outside");
  kg_xmlarena_begin();
  before = xmlRealloc(before, 4096);
  assert_string_equal(before, "made outside");
  xmlFree(before);
  kg_xmlarena_end();
  /* outside, libxml2 gets malloc again */
  char *after = (char *)xmlStrdup((const xmlChar *)"plain");
  kg_xmlarena_begin();
  kg_xmlarena_end();
  assert_string_equal(after, "plain");
  xmlFree(after);
}

/* A page's worth of small blocks beyond the kept size: the extra chunks
 * are returned at end. A big block is malloc's, freed by its owner. */
static void test_extra_chunks_are_returned(void **state) {
  kg_xmlarena_begin();
  size_t held0 = kg_xmlarena_held();
  for (int i = 0; i < 4000; i++) memset(xmlMalloc(4000), 1, 4000); /* ~16 MB */
  assert_true(kg_xmlarena_held() >= 16000000);
  char *big = xmlMalloc(1 << 20);
  memset(big, 2, 1 << 20);
  big = xmlRealloc(big, 4 << 20);
  assert_int_equal(big[(1 << 20) - 1], 2);
  xmlFree(big);
  kg_xmlarena_end();
  assert_true(kg_xmlarena_held() <= KG_XMLARENA_KEEP);
  assert_true(kg_xmlarena_held() >= held0);
}

/* A page that makes the parser report errors: libxml2 keeps a copy of
 * the last one per thread, which end must drop while it is arena memory
 * (a later error on this thread frees it: under ASan a stale copy would
 * be a bad free). */
static void test_parse_errors_leave_nothing_behind(void **state) {
  static const char page[] = "<html><body><p>unclosed <b>bold <i>mess</p></div>&bogus;";
  for (int i = 0; i < 3; i++) {
    kg_xmlarena_begin();
    htmlDocPtr doc = htmlReadMemory(page, (int)sizeof(page) - 1, NULL, "utf-8",
                                    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                                        HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
    assert_non_null(doc);
    xmlFreeDoc(doc);
    kg_xmlarena_end();
    assert_null(xmlGetLastError());
  }
  /* an error outside any arena, then one inside: the reset inside frees
   * the malloc'd copy with free() */
  htmlDocPtr doc = htmlReadMemory(page, (int)sizeof(page) - 1, NULL, "utf-8",
                                  HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                                      HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
  xmlFreeDoc(doc);
  assert_non_null(xmlGetLastError());
  kg_xmlarena_begin();
  kg_xmlarena_end();
  assert_null(xmlGetLastError());
}

/* Each thread has its own arena, freed when the thread exits (LeakSanitizer
 * checks that at the end of the run). */
static void *thread_compare(void *arg) {
  static const char a[] = "<html><body><p id=t>1</p><ul><li>a</li><li>b</li></ul></body></html>";
  static const char b[] = "<html><body><p id=t>2</p><ul><li>a</li><li>c</li></ul></body></html>";
  static const char *const ignore[] = {"//p[@id='t']"};
  kg_htmldiff_opts o = {.ignore = ignore, .nignore = 1, .a_label = "m", .b_label = "s"};
  size_t *found = arg;
  for (int i = 0; i < 50; i++) {
    kg_diffs d = {0};
    kg_buf u = KG_BUF_INIT;
    if (kg_htmldiff(a, sizeof(a) - 1, b, sizeof(b) - 1, &o, &d, &u) == 0) *found = d.n;
    kg_diffs_free(&d);
    kg_buf_free(&u);
  }
  return NULL;
}

static void test_threads_own_arenas(void **state) {
  pthread_t t[4];
  size_t found[4] = {0};
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, thread_compare, &found[i]), 0);
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
  for (int i = 0; i < 4; i++) assert_int_equal(found[i], 1); /* li "b" vs "c" */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_blocks_and_realloc),
      cmocka_unit_test(test_malloc_blocks_across_begin),
      cmocka_unit_test(test_extra_chunks_are_returned),
      cmocka_unit_test(test_parse_errors_leave_nothing_behind),
      cmocka_unit_test(test_threads_own_arenas),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
