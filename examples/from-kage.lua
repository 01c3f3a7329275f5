-- Kage's example server (its README's kage.rb), translated line by line.
-- docs/migrating.md has the table of every Kage callback and setting.
--
--   Kage::ProxyServer.start do |server|           -> return { ... }
--   server.host = '0.0.0.0'; server.port = 8090   -> listen
--   server.add_master_backend(:production, ...)   -> backends.production, master = true
--   server.add_backend(:sandbox, ...)             -> backends.sandbox
--   server.on_select_backends { ... }             -> select_backends
--   server.on_munge_headers { ... }               -> munge_headers
--   server.on_backends_finished { ... }           -> on_backends_finished
--
--   kagami check examples/from-kage.lua
return {
  listen = "0.0.0.0:8090",         -- server.host + server.port
  client_timeout = 15,             -- server.client_timeout (same unit: seconds)
  backend_timeout = 10,            -- server.backend_timeout

  -- Kage let two backends share a host and port; so does kagami.
  backends = {
    production = { url = "http://127.0.0.1:80", master = true },
    sandbox    = { url = "http://127.0.0.1:80" },
  },

  -- Kage shadowed whatever on_select_backends returned, writes included;
  -- kagami shadows GET and HEAD unless told otherwise, and the rule below
  -- (GET only) is already what its default does. Kept to show the shape.
  shadow_methods = { "GET" },

  -- on_select_backends do |request, headers|: return the names to send to.
  -- kagami calls it per request (Kage: once per client connection) and
  -- adds the master if missing; nil means "every shadow".
  select_backends = function(req)
    if req.method == "GET" then return { "production", "sandbox" } end
    return { "production" }
  end,

  -- on_munge_headers do |backend, headers|: kagami passes the request too.
  -- Kage's self.session_id (one per client connection) is
  -- req.connection.id; req.connection.requests numbers the requests on it.
  munge_headers = function(backend, req, headers)
    if backend == "sandbox" then
      headers["X-Kage-Sandbox"] = "1"
      headers["X-Kage-Session"] = tostring(req.connection.id)
    end
  end,

  -- on_backends_finished do |backends, requests, responses|: Kage handed
  -- over every request of the connection and left comparing to you;
  -- kagami compares already (the diff log, the store, the dashboard), so
  -- this hook is for extra checks or shipping somewhere else.
  -- responses[name] = { status, headers, body, elapsed, error } (Kage:
  -- responses[:production][:data] and [:elapsed]).
  on_backends_finished = function(backends, req, responses, result)
    local p, s = responses.production, responses.sandbox
    if p and s and p.status ~= s.status then
      print(("status %s: production %s, sandbox %s"):format(
        req.url, tostring(p.status), tostring(s.status)))
    end
  end,

  diff_log = "kagami-diffs.jsonl",   -- Kage: your compare() wrote somewhere
}
