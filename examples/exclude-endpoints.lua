-- Excluding endpoints whose answers change on every request (ads, random
-- recommendations, CSRF-token pages) or must never be sent twice: they go
-- to the master only, so they neither drown the report in noise nor reach
-- a shadow at all.
--
--   kagami check examples/exclude-endpoints.lua
local master_only = {
  ["/ads"] = true,                 -- a new ad every time (the seed's case)
  ["/recommendations"] = true,     -- random by design
  ["/logout"] = true,              -- a GET with a side effect
}

return {
  listen = "127.0.0.1:8090",
  backends = {
    production = { url = "http://127.0.0.1:9001", master = true },
    newdb      = { url = "http://127.0.0.1:9002" },
  },
  shadow_methods = { "GET", "HEAD" },

  -- Called for every request picked for shadowing. Returning the master
  -- alone means "do not shadow"; nil means "the default rules decide".
  select_backends = function(req)
    if master_only[req.path] then return { "production" } end
    if req.path:sub(1, 8) == "/static/" then return { "production" } end
    return nil
  end,

  diff_log = "kagami-diffs.jsonl",
  store = "kagami.db",
}
