-- A JSON API whose answers carry ids, timestamps and request ids that can
-- never match between two deployments. Rules say where they are, so that a
-- difference anywhere else is reported. (Rules hide only the paths they
-- name: a changed price next to an ignored timestamp still shows.)
--
--   kagami check examples/api-rules.lua
return {
  listen = "127.0.0.1:8090",
  backends = {
    production = { url = "http://127.0.0.1:9001", master = true },
    candidate  = { url = "http://127.0.0.1:9002" },
  },

  -- Header fields that differ per instance, added to the default list
  -- (Date, Server, ETag, X-Request-Id, ...).
  ignore_headers = { "X-Instance", "X-Cache-Status" },

  rules = {
    -- Every API answer has a meta block written at request time.
    { endpoint = "GET /api/*",
      ignore = { "$.meta.generated_at", "$.meta.request_id", "$..trace_id" },
    },
    -- Orders: ids are allocated per deployment, timestamps per request,
    -- and the tag list has no meaningful order.
    { endpoint = "GET /api/orders/*",
      ignore = { "$.orders[*].id", "$.orders[*].created_at" },
      unordered = { "$.orders[*].tags" },
    },
    -- An HTML page with a CSRF token and a render time in a comment.
    { endpoint = "GET /account/*",
      ignore_xpath = { "//input[@name='csrf_token']/@value" },
      replace = { { "rendered in [0-9.]+ ms", "rendered in # ms" } },
    },
  },

  -- Name endpoints the way the API does, so statistics group by route.
  endpoints = { "GET /api/orders/:id", "GET /api/users/:id/orders" },

  diff_log = "/var/log/kagami/diffs.jsonl",
  store = "/var/lib/kagami/kagami.db",
}
