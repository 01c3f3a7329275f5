/* test_keys.c: kg_config_list_keys, the listing the configuration
 * reference (docs/config.md, kagami.lua(5)) is checked against: one line
 * per key, nested keys under their parent's path, defaults written the
 * way a config writes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "config/config.h"
#include "config/parse.h"

static char *kg_test_keys(void) {
  kg_buf b = {0};
  kg_config_list_keys(&b);
  return b.data; /* owned: the caller frees */
}

static void test_keys_lines(void **state) {
  (void)state;
  char *text = kg_test_keys();
  static const char *const want[] = {
      "listen\tcustom\t127.0.0.1:8090\n",
      "client_timeout\tseconds\t15\n",
      "backends.NAME.url\tcustom\t\n",
      "backends.NAME.secondary\tbool\tfalse\n",
      "max_capture_bytes\tsize\t8MiB\n",
      "rules[].ignore\tlist\t\n",
      "noise.threshold\tshare\t0.2\n",
      "store\tcustom\tkagami.db\n",
      "store_max_body_bytes\tsize\t256KiB\n",
      "record.max_bytes\tsize\t1GiB\n",
      "on_backends_finished\tfunction\t\n",
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    const char *at = strstr(text, want[i]);
    /* A whole line: at the start or after a newline. */
    assert_non_null(at);
    assert_true(at == text || at[-1] == '\n');
  }
  free(text);
}

/* Every line has three fields; no path twice; every size default reads
 * back through the parser a config's sizes go through. */
static void test_keys_well_formed(void **state) {
  (void)state;
  char *text = kg_test_keys();
  char *paths[256];
  size_t n = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    char *tab1 = strchr(line, '\t');
    assert_non_null(tab1);
    char *tab2 = strchr(tab1 + 1, '\t');
    assert_non_null(tab2);
    assert_null(strchr(tab2 + 1, '\t'));
    *tab1 = *tab2 = '\0';
    for (size_t i = 0; i < n; i++) assert_string_not_equal(paths[i], line);
    assert_true(n < 256);
    paths[n++] = line;
    if (strcmp(tab1 + 1, "size") == 0) {
      uint64_t v = 0;
      assert_int_equal(kg_config_parse_size(tab2 + 1, &v), 0);
      assert_true(v > 0);
    }
  }
  assert_true(n > 40);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys_lines),
      cmocka_unit_test(test_keys_well_formed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
