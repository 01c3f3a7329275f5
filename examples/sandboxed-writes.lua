-- Sending writes to one sandboxed shadow only. "newdb" replicates from
-- production and must never see a write (it would break replication);
-- "sandbox" has a throwaway copy of the data and may take POST, PUT,
-- PATCH and DELETE, so write paths are compared too.
--
--   kagami check examples/sandboxed-writes.lua
return {
  listen = "127.0.0.1:8090",
  backends = {
    production = { url = "http://127.0.0.1:9001", master = true },
    newdb      = { url = "http://127.0.0.1:9002" },   -- the global list: reads only
    sandbox    = { url = "http://127.0.0.1:9003",
                   shadow_methods = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" } },
  },
  shadow_methods = { "GET", "HEAD" },
  shadow_max_body_bytes = "1MiB",  -- larger uploads go to the master only

  -- Tell the sandbox's application it is one (e.g. to skip sending mail).
  munge_headers = function(backend, req, headers)
    if backend == "sandbox" then headers["X-Kagami-Sandbox"] = "1" end
  end,

  rules = {
    -- Ids of created objects come from each backend's own sequence.
    { endpoint = "POST /api/*", ignore = { "$.id", "$.created_at" } },
  },

  diff_log = "kagami-diffs.jsonl",
  store = "kagami.db",
}
