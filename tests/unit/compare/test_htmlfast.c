/* Unit tests: the lockstep HTML fast path, always against the tree differ
 * it stands in for: where it decides, its answer must be the tree's; where
 * the tree would see a real difference, or where libxml2's reading is not
 * certain, it must give up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "compare/htmldiff.h"
#include "compare/htmlfast.h"

static const char *const bench_rules[] = {
    "//meta[@name='csrf-token']/@content",
    "//input[@name='authenticity_token']/@value",
    "//p[@class='generated']/text()",
};

/* A page like the benchmark's, with the three noisy values filled in. */
static char *page(const char *token, const char *ms, const char *ts, const char *item3) {
  kg_buf b = KG_BUF_INIT;
  kg_buf_appendf(&b,
                 "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<meta name=\"csrf-token\" content=\"%s\">\n<title>Tea shop</title>\n"
                 "</head>\n<body>\n<main>\n<form action=\"/cart\" method=\"post\">"
                 "<input type=\"hidden\" name=\"authenticity_token\" value=\"%s\">"
                 "<button>Buy</button></form>\n<ul class=\"products\">\n",
                 token, token);
  for (int i = 0; i < 40; i++)
    kg_buf_appendf(&b,
                   "<li class=\"item\" data-id=\"%d\"><a href=\"/tea/%d\">%s</a> "
                   "<span class=\"price\">%d EUR</span></li>\n",
                   i, i, i == 3 ? item3 : "Sencha", i * 7 % 90);
  kg_buf_appendf(&b,
                 "</ul>\n<!-- rendered in %s ms -->\n<p class=\"generated\">Generated at %s</p>\n"
                 "</main>\n</body>\n</html>\n",
                 ms, ts);
  return b.data; /* caller frees */
}

static void assert_same_diffs(const kg_diffs *x, const kg_diffs *y) {
  assert_int_equal(x->n, y->n);
  assert_int_equal(x->total, y->total);
  for (size_t i = 0; i < x->n; i++) assert_string_equal(x->v[i].where, y->v[i].where);
  assert_int_equal(x->nsuppressed, y->nsuppressed);
  for (size_t i = 0; i < x->nsuppressed; i++)
    assert_string_equal(x->suppressed[i], y->suppressed[i]);
}

/* Runs the fast path, the tree differ and kg_htmldiff on (a, b) with
 * expressions ign; checks that a decision of the fast path is the tree's
 * and that kg_htmldiff's answer always is. Returns the fast path's return;
 * *nsup gets how many expressions were listed as suppressed and *ndiff
 * how many differences the tree found. */
static int check_n(const char *a, const char *b, const char *const *ign, size_t nign,
                   size_t *nsup, size_t *ndiff) {
  kg_htmldiff_opts o = {.ignore = ign, .nignore = nign, .a_label = "a", .b_label = "b"};
  kg_diffs tree = {0}, fast = {0}, both = {0};
  kg_buf tu = KG_BUF_INIT, bu = KG_BUF_INIT;
  int rc_tree = kg_htmldiff_tree(a, strlen(a), b, strlen(b), &o, &tree, &tu);
  int rc_fast = kg_htmlfast(a, strlen(a), b, strlen(b), &o, &fast);
  if (rc_fast == 0) {
    assert_int_equal(rc_tree, 0);
    assert_int_equal(tree.total, 0);
    assert_int_equal(tu.len, 0);
    assert_same_diffs(&fast, &tree);
  } else {
    assert_int_equal(rc_fast, KG_HTMLFAST_FALLBACK);
    assert_int_equal(fast.n + fast.total + fast.nsuppressed, 0);
  }
  assert_int_equal(kg_htmldiff(a, strlen(a), b, strlen(b), &o, &both, &bu), rc_tree);
  assert_same_diffs(&both, &tree);
  assert_int_equal(bu.len, tu.len);
  *nsup = tree.nsuppressed;
  *ndiff = tree.total;
  kg_diffs_free(&tree);
  kg_diffs_free(&fast);
  kg_diffs_free(&both);
  kg_buf_free(&tu);
  kg_buf_free(&bu);
  return rc_fast;
}

static int check(const char *a, const char *b, const char *const *ign, size_t nign) {
  size_t nsup, ndiff;
  return check_n(a, b, ign, nign, &nsup, &ndiff);
}

/* The benchmark's case: a token in two attributes, a timestamp in a text,
 * a render time in a comment. Decided, all three listed. */
static void test_noise_only(void **state) {
  char *a = page("0f3a9c1e", "12", "1733291234.123", "Sencha");
  char *b = page("77ab01ffee", "9", "1733291234.98", "Sencha");
  size_t nsup, ndiff;
  assert_int_equal(check_n(a, b, bench_rules, 3, &nsup, &ndiff), 0);
  assert_int_equal(nsup, 3);
  assert_int_equal(ndiff, 0);
  /* the same page: decided, nothing listed */
  assert_int_equal(check_n(a, a, bench_rules, 3, &nsup, &ndiff), 0);
  assert_int_equal(nsup, 0);
  /* only the comment differs: no difference at all */
  char *c = page("0f3a9c1e", "13", "1733291234.123", "Sencha");
  assert_int_equal(check_n(a, c, NULL, 0, &nsup, &ndiff), 0);
  assert_int_equal(nsup, 0);
  free(a), free(b), free(c);
}

/* A real change is never decided here: the tree locates it. */
static void test_real_change(void **state) {
  char *a = page("0f3a9c1e", "12", "1", "Sencha");
  char *b = page("77ab01ff", "12", "2", "Gyokuro");
  size_t nsup, ndiff;
  assert_int_equal(check_n(a, b, bench_rules, 3, &nsup, &ndiff), KG_HTMLFAST_FALLBACK);
  assert_int_equal(ndiff, 1);
  /* noise without the rules is a difference too */
  char *c = page("77ab01ff", "12", "1", "Sencha");
  assert_int_equal(check_n(a, c, NULL, 0, &nsup, &ndiff), KG_HTMLFAST_FALLBACK);
  assert_int_equal(ndiff, 2);
  free(a), free(b), free(c);
}

/* Predicates are checked on both pages: a rule whose predicate holds on
 * one side only hides nothing there. */
static void test_predicates(void **state) {
  const char *r[] = {"//p[@class='g']/text()", "//*[@id='t']/@value", "//input/@value"};
  assert_int_equal(check("<p class=\"g\">1</p>", "<p class=\"g\">2</p>", r, 1), 0);
  assert_int_equal(check("<p class=\"g\">1</p>", "<p class=\"h\">2</p>", r, 1),
                   KG_HTMLFAST_FALLBACK);
  assert_int_equal(check("<p class=\"h\">1</p>", "<p class=\"h\">2</p>", r, 1),
                   KG_HTMLFAST_FALLBACK);
  /* two rules select the same attribute: both listed, in order */
  size_t nsup, ndiff;
  assert_int_equal(check_n("<form><input id=t value=1></form>",
                           "<form><input id=t value=2></form>", r + 1, 2, &nsup, &ndiff),
                   0);
  assert_int_equal(nsup, 2);
  /* names are read case-blind, as libxml2 lowers them */
  assert_int_equal(check("<P CLASS=\"g\">1</P>", "<P CLASS=\"g\">2</P>", r, 1), 0);
  /* a repeated attribute: libxml2 keeps one, which we do not guess */
  assert_int_equal(check("<p class=\"g\" class=\"h\">1</p>", "<p class=\"g\" class=\"h\">2</p>",
                         r, 1),
                   KG_HTMLFAST_FALLBACK);
}

/* An expression selecting an element hides its attributes and its text,
 * charged to it unless a text or attribute expression hid them first. */
static void test_element_expressions(void **state) {
  const char *r[] = {"//div[@id='ads']", "//div[@id='ads']/text()", "//div/@data-t"};
  size_t nsup, ndiff;
  assert_int_equal(check_n("<div id=ads data-t=1>1</div>", "<div id=ads data-t=2>2</div>", r, 1,
                           &nsup, &ndiff),
                   0);
  assert_int_equal(nsup, 1);
  /* the text and attribute expressions hid both: the element's is clean */
  assert_int_equal(check_n("<div id=ads data-t=1>1</div>", "<div id=ads data-t=2>2</div>", r, 3,
                           &nsup, &ndiff),
                   0);
  assert_int_equal(nsup, 2);
  /* deeper in the element: left to the tree */
  assert_int_equal(check("<div id=ads><b>1</b></div>", "<div id=ads><b>2</b></div>", r, 1),
                   KG_HTMLFAST_FALLBACK);
  /* a start tag that an expression selects on one side only: a real
     difference even where its text is equal */
  const char *t[] = {"//p[@class='g']/text()", "//p/@class"};
  assert_int_equal(check_n("<p class=g>x</p>", "<p class=h>x</p>", t, 2, &nsup, &ndiff),
                   KG_HTMLFAST_FALLBACK);
  assert_int_equal(ndiff, 1);
}

/* Expressions outside the subset send every pair to the tree. */
static void test_unsupported_expressions(void **state) {
  const char *r[] = {"//div[contains(@id,'ads')]"}, *r2[] = {"//p[1]/text()"},
             *r3[] = {"//P/text()"};
  assert_int_equal(check("<div id=ads>1</div>", "<div id=ads>2</div>", r, 1),
                   KG_HTMLFAST_FALLBACK);
  assert_int_equal(check("<p>1</p>", "<p>2</p>", r2, 1), KG_HTMLFAST_FALLBACK);
  assert_int_equal(check("<p>1</p>", "<p>2</p>", r3, 1), KG_HTMLFAST_FALLBACK);
}

/* Values whose bytes are not their meaning go to the tree. */
static void test_values_not_plain(void **state) {
  const char *r[] = {"//input/@value", "//p/text()"};
  assert_int_equal(check("<input value=\"a&amp;b\">", "<input value=\"a&#38;b\">", r, 1),
                   KG_HTMLFAST_FALLBACK);
  assert_int_equal(check("<input value=\"a\r\nb\">", "<input value=\"a\nb\">", r, 1),
                   KG_HTMLFAST_FALLBACK);
  assert_int_equal(check("<p>\xc3\xa9</p>", "<p>e</p>", r + 1, 1), KG_HTMLFAST_FALLBACK);
  /* whitespace the canonical form collapses: no difference, no rule */
  assert_int_equal(check("<p class=x>a  b</p>", "<p class=x>a\n b</p>", NULL, 0), 0);
  /* blank against text: libxml2 may keep or drop it by context */
  assert_int_equal(check("<div><p> </p></div>", "<div><p>x</p></div>", r + 1, 1),
                   KG_HTMLFAST_FALLBACK);
  /* a byte that is not UTF-8, even in a comment, makes libxml2 read the
     rest of that page as Latin-1 */
  assert_int_equal(check("<!-- a\x9c --><p>\xc3\xa9</p>", "<!-- b --><p>\xc3\xa9</p>", NULL, 0),
                   KG_HTMLFAST_FALLBACK);
  /* a comment after the text joins it with the next text */
  assert_int_equal(check("<p>a <!--c-->b</p>", "<p>a<!--c-->b</p>", r + 1, 1),
                   KG_HTMLFAST_FALLBACK);
}

/* Markup libxml2 reads its own way: the fast path gives up unless the rest
 * of the pages is byte-equal. */
static void test_uncertain_markup(void **state) {
  const char *r[] = {"//p/text()", "//b/text()", "//span/text()", "//script/text()"};
  /* "</scriptx>" does not end a script for libxml2 */
  assert_int_equal(check("<script>a</scriptx><p>1</p></script>",
                         "<script>a</scriptx><p>2</p></script>", r, 1),
                   KG_HTMLFAST_FALLBACK);
  /* script content is not compared here */
  assert_int_equal(check("<script>var t=1;</script>", "<script>var t=2;</script>", r + 3, 1),
                   KG_HTMLFAST_FALLBACK);
  /* <span/> is closed at once: the text after it is not its child */
  assert_int_equal(check("<div><span/>1</div>", "<div><span/>2</div>", r + 2, 1),
                   KG_HTMLFAST_FALLBACK);
  /* a processing instruction, then equal bytes: decided */
  assert_int_equal(check("<p>1</p><?pi x?><p>y</p>", "<p>1</p><?pi x?><p>y</p>", r, 1), 0);
  assert_int_equal(check("<p>x</p><?pi x?><p>1</p>", "<p>x</p><?pi x?><p>2</p>", r, 1),
                   KG_HTMLFAST_FALLBACK);
  /* past libxml2's depth limit nothing more is parsed */
  kg_buf a = KG_BUF_INIT, b = KG_BUF_INIT;
  for (int i = 0; i < 300; i++) kg_buf_appends(&a, "<b>"), kg_buf_appends(&b, "<b>");
  kg_buf_appends(&a, "<b>1</b>");
  kg_buf_appends(&b, "<b>2</b>");
  assert_int_equal(check(a.data, b.data, r + 1, 1), KG_HTMLFAST_FALLBACK);
  /* end tags that libxml2 ignores (</span> does not close a div) do not
     make the depth look smaller than it is */
  kg_buf_reset(&a), kg_buf_reset(&b);
  for (int i = 0; i < 130; i++)
    kg_buf_appends(&a, "<span><div></span>"), kg_buf_appends(&b, "<span><div></span>");
  kg_buf_appends(&a, "<b>1</b>");
  kg_buf_appends(&b, "<b>2</b>");
  assert_int_equal(check(a.data, b.data, r + 1, 1), KG_HTMLFAST_FALLBACK);
  kg_buf_free(&a), kg_buf_free(&b);
}

/* A charset the page declares may change how everything is decoded. */
static void test_charsets(void **state) {
  const char *r[] = {"//meta/@content", "//p/text()"};
  assert_int_equal(check("<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">"
                         "<p>\xc3\xa9</p>",
                         "<meta http-equiv=\"Content-Type\" content=\"text/html; "
                         "charset=iso-8859-1\"><p>\xc3\xa9</p>",
                         r, 1),
                   KG_HTMLFAST_FALLBACK);
  assert_int_equal(check("<meta charset=\"utf-16\"><p>1</p>", "<meta charset=\"utf-16\"><p>2</p>",
                         r + 1, 1),
                   KG_HTMLFAST_FALLBACK);
  kg_htmldiff_opts o = {.ignore = r + 1, .nignore = 1, .encoding = "iso-2022-jp"};
  kg_diffs d = {0};
  assert_int_equal(kg_htmlfast("<p>1</p>", 8, "<p>2</p>", 8, &o, &d), KG_HTMLFAST_FALLBACK);
  o.encoding = "utf-8";
  assert_int_equal(kg_htmlfast("<p>1</p>", 8, "<p>2</p>", 8, &o, &d), 0);
  assert_int_equal(d.nsuppressed, 1);
  kg_diffs_free(&d);
}

/* Not HTML, or no element at all: the tree decides (and says -1/-2). */
static void test_not_html(void **state) {
  const char *r[] = {"//p/text()"};
  assert_int_equal(check("", "", r, 1), KG_HTMLFAST_FALLBACK);
  assert_int_equal(check("plain text", "plain text", r, 1), KG_HTMLFAST_FALLBACK);
  assert_int_equal(check("<!-- a -->", "<!-- b -->", r, 1), KG_HTMLFAST_FALLBACK);
  kg_htmldiff_opts o = {.ignore = r, .nignore = 1};
  kg_diffs d = {0};
  assert_int_equal(kg_htmlfast("<p>\x01</p>", 8, "<p>\x01</p>", 8, &o, &d), KG_HTMLFAST_FALLBACK);
}

/* After an odd token only byte-equality is checked, but a meta there may
 * still name a charset whose conversion libxml2 cannot finish (\xff is no
 * UTF-7): the tree differ then does not read the page as HTML, so neither
 * may the fast path. */
static void test_charset_after_odd_token(void **state) {
  (void)state;
  const char *r[] = {"//p[@class='t']/text()"};
  static const char *const tpl =
      "<html><head><script>var x = 1;</script><meta charset=\"%s\"></head>"
      "<body><p class=\"t\">%s</p><p>caf\xff</p></body></html>";
  char a[256], b[256];
  snprintf(a, sizeof a, tpl, "utf-7", "one");
  snprintf(b, sizeof b, tpl, "utf-7", "two");
  assert_int_equal(check(a, b, r, 1), KG_HTMLFAST_FALLBACK);
  snprintf(a, sizeof a, tpl, "utf-8", "one");
  snprintf(b, sizeof b, tpl, "utf-8", "two");
  assert_int_equal(check(a, b, r, 1), 0);
}

/* A NUL byte in an attribute value, past the first 1445 bytes, on both
 * pages: libxml2 stops reading there, so neither differ compares these as
 * HTML (the fast path had decided: the only difference it saw was ruled
 * noise, in the part libxml2 never read). */
static void test_nul_byte(void **state) {
  (void)state;
  char *a = page("t1", "12", "1733291234.123", "Sencha");
  char *b = page("t2", "9", "1733291234.987", "Sencha");
  const char *mark = "data-id=\"39\"";
  kg_buf x = KG_BUF_INIT, y = KG_BUF_INIT;
  for (int side = 0; side < 2; side++) {
    const char *p = side ? b : a;
    kg_buf *out = side ? &y : &x;
    const char *at = strstr(p, mark);
    assert_non_null(at);
    assert_true(at - p > 1445);
    kg_buf_append(out, p, (size_t)(at - p) + strlen(mark) - 1);
    kg_buf_append(out, "\0", 1);
    kg_buf_appends(out, at + strlen(mark) - 1);
  }
  kg_htmldiff_opts o = {.ignore = bench_rules, .nignore = 3, .a_label = "a", .b_label = "b"};
  kg_diffs d = {0};
  assert_int_equal(kg_htmlfast(x.data, x.len, y.data, y.len, &o, &d), KG_HTMLFAST_FALLBACK);
  kg_buf u = KG_BUF_INIT;
  assert_int_equal(kg_htmldiff_tree(x.data, x.len, y.data, y.len, &o, &d, &u), -1);
  kg_diffs_free(&d);
  kg_buf_free(&u);
  kg_buf_free(&x);
  kg_buf_free(&y);
  free(a);
  free(b);
}

int main(void) {
  kg_htmldiff_global_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_noise_only),
      cmocka_unit_test(test_real_change),
      cmocka_unit_test(test_predicates),
      cmocka_unit_test(test_element_expressions),
      cmocka_unit_test(test_unsupported_expressions),
      cmocka_unit_test(test_values_not_plain),
      cmocka_unit_test(test_uncertain_markup),
      cmocka_unit_test(test_charsets),
      cmocka_unit_test(test_not_html),
      cmocka_unit_test(test_nul_byte),
      cmocka_unit_test(test_charset_after_odd_token),
  };
  return cmocka_run_group_tests_name("htmlfast", tests, NULL, NULL);
}
