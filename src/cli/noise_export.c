/* noise_export.c: learned noise as config rules (see noise_export.h). */
#include "cli/noise_export.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "compare/htmldiff.h"
#include "compare/jsondiff.h"

/* The rule lists a location can go to, in the order a rule shows them. */
enum { KG_EXPORT_JSON, KG_EXPORT_XPATH, KG_EXPORT_HEADER, KG_EXPORT_NLISTS };

static const char *const kg_noise_export_keys[KG_EXPORT_NLISTS] = {
    "ignore", "ignore_xpath", "ignore_headers"};

/* Appends s as a Lua string literal: quotes and backslashes escaped,
 * control bytes as \ddd, so that no location can end the string or the
 * line and inject code into a config. Other bytes go as they are (Lua
 * strings are bytes, and the config is read as bytes). */
static void kg_noise_export_str(kg_buf *out, const char *s) {
  kg_buf_appends(out, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') kg_buf_appendf(out, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f) kg_buf_appendf(out, "\\%03u", *p);
    else kg_buf_append(out, (const char *)p, 1);
  }
  kg_buf_appends(out, "\"");
}

void kg_noise_export_printable(kg_buf *out, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7f) kg_buf_appendf(out, "\\%03u", *p);
    else kg_buf_append(out, (const char *)p, 1);
  }
}

/* RFC 9110 token characters: what a header name may hold. */
static bool kg_noise_export_token(const char *s) {
  if (*s == '\0') return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s)))
      return false;
  return true;
}

/* Which rule list hides exactly `loc`, with the string to put there in
 * *value (loc itself, or the header name in it); or -1 and why not. */
static int kg_noise_export_kind(const char *loc, const char **value, const char **why,
                                char *err, size_t errlen) {
  *value = loc;
  if (loc[0] == '$') {
    /* A learned location is a concrete path; one that is a wider pattern
     * ($..ts, $.*) would make a rule hide more than was learned. A
     * concrete path is one that parses as a path and matches itself. */
    if (kg_jsonpath_check(loc, err, errlen) < 0) *why = err;
    else if (!kg_jsonpath_match(loc, loc)) *why = "not a concrete path: a rule would hide more";
    else return KG_EXPORT_JSON;
    return -1;
  }
  if (loc[0] == '/') {
    if (kg_htmldiff_check_xpath(loc, err, errlen) == 0) return KG_EXPORT_XPATH;
    *why = err;
    return -1;
  }
  if (strncmp(loc, "header:", 7) == 0) {
    *value = loc + 7;
    if (kg_noise_export_token(loc + 7)) return KG_EXPORT_HEADER;
    *why = strchr(loc, '[') ? "one field of a repeated header: ignore_headers would "
                              "hide every field of that name"
                            : "not a header name";
    return -1;
  }
  if (strncmp(loc, "line ", 5) == 0) {
    *why = "a text line: a replace regex would act on every line of that shape, "
           "anywhere in the body";
    return -1;
  }
  *why = strcmp(loc, "body") == 0 ? "a binary body: ignoring it would hide every change"
                                  : "no rule hides this kind of location";
  return -1;
}

/* An integer member, or 0 when absent or not an integer. */
static json_int_t kg_noise_export_int(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* Appends "differed in D of P pairs" for location l. */
static void kg_noise_export_evidence(kg_buf *out, const json_t *l) {
  kg_buf_appendf(out, "differed in %lld of %lld pairs",
                 (long long)kg_noise_export_int(l, "differed"),
                 (long long)kg_noise_export_int(l, "pairs"));
}

/* The locations of endpoint entry `ep` that are hidden now, as rule list
 * entries into lists[] and as comments into left (one line each); all of
 * them comments unless the endpoint can be named by a rule (`literal`).
 * Returns how many went to lists. */
static int kg_noise_export_locations(const json_t *ep, bool literal,
                                     kg_buf lists[KG_EXPORT_NLISTS], kg_buf *left) {
  int n = 0;
  size_t i;
  const json_t *l;
  json_array_foreach(json_object_get(ep, "locations"), i, l) {
    const char *loc = json_string_value(json_object_get(l, "location"));
    if (loc == NULL || !json_is_true(json_object_get(l, "suppressed"))) continue;
    char err[256];
    const char *value = NULL, *why = NULL;
    int kind = kg_noise_export_kind(loc, &value, &why, err, sizeof(err));
    if (!literal && kind >= 0) {
      kind = -1;
      why = "a rule's endpoint glob cannot name this endpoint alone";
    }
    kg_buf *o = kind >= 0 ? &lists[kind] : left;
    if (kind >= 0) {
      kg_buf_appends(o, "      ");
      kg_noise_export_str(o, value);
      kg_buf_appends(o, ",  -- ");
      n++;
    } else {
      kg_buf_appends(o, "    --   ");
      kg_noise_export_printable(o, loc);
      kg_buf_appends(o, " (");
    }
    kg_noise_export_evidence(o, l);
    if (kind < 0) {
      kg_buf_appends(o, "): ");
      kg_noise_export_printable(o, why);
    }
    kg_buf_appends(o, "\n");
  }
  return n;
}

/* One endpoint's rule, or comments only when nothing of it can be a rule.
 * Returns the number of locations written as rules. */
static int kg_noise_export_endpoint(const json_t *ep, kg_buf *out) {
  const char *name = json_string_value(json_object_get(ep, "endpoint"));
  if (name == NULL) {
    kg_buf_appends(out, "  -- (an endpoint entry without a name was left out)\n");
    return 0;
  }
  /* A rule's endpoint is a glob matched against the whole name only when
   * it has a space (a method); '*' in a name would match more. */
  bool literal = strchr(name, '*') == NULL && strchr(name, ' ') != NULL;
  kg_buf lists[KG_EXPORT_NLISTS] = {KG_BUF_INIT, KG_BUF_INIT, KG_BUF_INIT};
  kg_buf left = KG_BUF_INIT;
  int n = kg_noise_export_locations(ep, literal, lists, &left);
  if (n == 0 && left.len > 0) {
    kg_buf_appends(out, "  -- ");
    kg_noise_export_printable(out, name);
    kg_buf_appendf(out, ": %lld noise pairs; no rule hides exactly what it suppresses:\n",
                   (long long)kg_noise_export_int(ep, "pairs"));
    kg_buf_append(out, left.data, left.len);
  } else if (n > 0) {
    kg_buf_appends(out, "  { endpoint = ");
    kg_noise_export_str(out, name);
    kg_buf_appendf(out, ",  -- %lld noise pairs\n", (long long)kg_noise_export_int(ep, "pairs"));
    for (int k = 0; k < KG_EXPORT_NLISTS; k++) {
      if (lists[k].len == 0) continue;
      kg_buf_appendf(out, "    %s = {\n", kg_noise_export_keys[k]);
      kg_buf_append(out, lists[k].data, lists[k].len);
      kg_buf_appends(out, "    },\n");
    }
    if (left.len) {
      kg_buf_appends(out, "    -- left out, as no rule hides exactly this location:\n");
      kg_buf_append(out, left.data, left.len);
    }
    kg_buf_appends(out, "  },\n");
  }
  for (int k = 0; k < KG_EXPORT_NLISTS; k++) kg_buf_free(&lists[k]);
  kg_buf_free(&left);
  return n;
}

int kg_noise_export_lua(const json_t *api, const char *source, kg_buf *out) {
  const json_t *eps = json_object_get(api, "endpoints");
  if (!json_is_array(eps)) return -1;
  kg_buf_appends(out, "-- Learned noise");
  if (source) {
    kg_buf_appends(out, " from ");
    kg_noise_export_printable(out, source);
  }
  const json_t *th = json_object_get(api, "threshold");
  kg_buf_appendf(out, " (threshold %g, min_pairs %lld), exported by kagami noise --export.\n"
                      "-- Review, paste into the config's table (merge with any rules it\n"
                      "-- has), and run with noise = { learn = false } to freeze it.\n"
                      "-- A rule also hides what lies under its location: check any that\n"
                      "-- name a whole object, array or element rather than a value.\n"
                      "rules = {\n",
                 json_is_number(th) ? json_number_value(th) : 0.0,
                 (long long)kg_noise_export_int(api, "min_pairs"));
  int n = 0;
  size_t i;
  const json_t *ep;
  json_array_foreach(eps, i, ep) n += kg_noise_export_endpoint(ep, out);
  kg_buf_appends(out, "},\n");
  return n;
}
