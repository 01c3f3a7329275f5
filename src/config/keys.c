/* keys.c: the list of every config key with its type and default, read
 * from the same declarative tables the loader validates with, so the
 * documentation can be checked against what kagami accepts. */
#include <stdint.h>

#include "common/buf.h"
#include "common/common.h"
#include "config/config_int.h"

static const char *const kg_cfg_type_names[] = {
    [KG_CFG_BOOL] = "bool",      [KG_CFG_SHARE] = "share",
    [KG_CFG_NUMBER] = "number",  [KG_CFG_POSITIVE] = "number",
    [KG_CFG_MS] = "seconds",     [KG_CFG_COUNT] = "count",
    [KG_CFG_INT] = "count",      [KG_CFG_SIZE] = "size",
    [KG_CFG_PATH] = "path",      [KG_CFG_HOOK] = "function",
    [KG_CFG_STRLIST] = "list",   [KG_CFG_TABLE] = "table",
    [KG_CFG_CUSTOM] = "custom",
};

/* A size the way a config writes it: "8MiB" when it is a whole number of
 * KiB, MiB or GiB, else bytes. */
static void kg_cfg_keys_size(kg_buf *out, uint64_t v) {
  static const char *const units[] = {"GiB", "MiB", "KiB"};
  for (int i = 0; i < 3; i++) {
    uint64_t unit = (uint64_t)1 << (10 * (3 - i));
    if (v >= unit && v % unit == 0) {
      kg_buf_appendf(out, "%llu%s", (unsigned long long)(v / unit), units[i]);
      return;
    }
  }
  kg_buf_appendf(out, "%llu", (unsigned long long)v);
}

/* The row's default as a config would write it; nothing for rows whose
 * default only prose can say (required, "the global list", none). */
static void kg_cfg_keys_default(kg_buf *out, const kg_cfg_key *k) {
  switch (k->type) {
  case KG_CFG_BOOL:
    kg_buf_appendf(out, "%s", k->def != 0 ? "true" : "false");
    break;
  case KG_CFG_SHARE:
  case KG_CFG_NUMBER:
  case KG_CFG_POSITIVE:
  case KG_CFG_MS:
  case KG_CFG_COUNT:
  case KG_CFG_INT:
    /* A number-typed row without a default means "off" (0). */
    kg_buf_appendf(out, "%.15g", k->def);
    break;
  case KG_CFG_SIZE:
    kg_cfg_keys_size(out, (uint64_t)k->def);
    break;
  case KG_CFG_CUSTOM:
    if (k->def_str) kg_buf_appendf(out, "%s", k->def_str);
    break;
  default:
    break;
  }
}

static void kg_cfg_keys_list(kg_buf *out, const char *prefix,
                             const kg_cfg_key *keys, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const kg_cfg_key *k = &keys[i];
    kg_buf_appendf(out, "%s%s\t%s\t", prefix, k->name, kg_cfg_type_names[k->type]);
    kg_cfg_keys_default(out, k);
    kg_buf_appendf(out, "\n");
    if (k->sub == NULL) continue;
    kg_buf sub = {0};
    if (k->type == KG_CFG_CUSTOM && k->what)
      kg_buf_appendf(&sub, "%s.", k->what);
    else
      kg_buf_appendf(&sub, "%s%s.", prefix, k->name);
    kg_cfg_keys_list(out, sub.data, k->sub, k->nsub);
    kg_buf_free(&sub);
  }
}

void kg_config_list_keys(kg_buf *out) {
  kg_cfg_keys_list(out, "", kg_cfg_proxy_keys, kg_cfg_nproxy_keys);
  kg_cfg_keys_list(out, "", kg_cfg_compare_keys, kg_cfg_ncompare_keys);
  kg_cfg_keys_list(out, "", kg_cfg_output_keys, kg_cfg_noutput_keys);
}
