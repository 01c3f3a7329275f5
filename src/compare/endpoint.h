/* endpoint.h: which endpoint a request belongs to.
 *
 * Statistics and differences are grouped by endpoint, so "GET /users/42"
 * and "GET /users/43" must land in the same group: "GET /users/:id". Two
 * mechanisms, in this order:
 *
 *  1. Rules from the config: path patterns, optionally limited to one
 *     method. The first rule that matches names the endpoint, as written
 *     (method, one space, pattern path). Pattern syntax:
 *       "/users/:name/profile"  ":name" matches exactly one non-empty
 *                               segment;
 *       "/static/" then "*"     "*", only as the whole last segment,
 *                               matches the rest of the path, including
 *                               nothing ("/static" and "/static/" too);
 *                               (split here only because C comments
 *                               cannot hold a slash-star);
 *       "GET /search"           only GET requests (methods are
 *                               case-sensitive, RFC 9110 9.1).
 *     Anything else is a literal segment compared byte for byte (percent
 *     escapes as given; "/a" and "/a/" differ).
 *
 *  2. Otherwise, default templating of each path segment:
 *       all digits                        -> :id
 *       UUID, 8-4-4-4-12 hex, any case    -> :uuid
 *       date YYYY-MM-DD                   -> :date
 *       16+ hex digits                    -> :hex
 *       20+ of [A-Za-z0-9_-], with both
 *       letters and digits (tokens)       -> :token
 *       anything else                     -> kept as is.
 *
 * Names are keys in logs, JSON and SQLite, so they are bounded and always
 * printable ASCII: control bytes, spaces and bytes >= 0x80 are written as
 * %XX; the method part is at most KG_ENDPOINT_MAX_METHOD bytes and the path
 * part at most KG_ENDPOINT_MAX_PATH bytes (cut at a segment boundary, with
 * a final "/..." when segments were dropped).
 *
 * Rules are immutable once built, so one kg_endpoint_rules may be used by
 * any number of threads at once. */
#ifndef KG_ENDPOINT_H
#define KG_ENDPOINT_H

#include <stddef.h>

#include "common/buf.h"

#define KG_ENDPOINT_MAX_METHOD 32
#define KG_ENDPOINT_MAX_PATH 256

typedef struct kg_endpoint_rules kg_endpoint_rules;

/* Compiles n patterns (the syntax above; surrounding blanks ignored).
 * Returns the rules, freed with kg_endpoint_rules_free, or NULL with a
 * message in err (always NUL-terminated when errlen > 0) naming the first
 * bad pattern by its 1-based position. n == 0 gives valid empty rules. */
kg_endpoint_rules *kg_endpoint_rules_new(const char *const *patterns, size_t n,
                                         char *err, size_t errlen);
/* Frees rules (NULL is fine). */
void kg_endpoint_rules_free(kg_endpoint_rules *rules);

/* Appends the endpoint name of a request to out: "GET /users/:id/posts".
 * method may be NULL or empty (written as "-"). path is the request
 * target's path; a query or fragment, if present, is ignored, an
 * absolute-form target ("http://host/p") is reduced to its path, and an
 * empty path counts as "/". rules may be NULL (default templating only).
 * Never fails; out is the caller's. */
void kg_endpoint_of(const char *method, const char *path,
                    const kg_endpoint_rules *rules, kg_buf *out);

#endif
