-- kagami demo: the tea shop (examples/app.py) on the current database
-- ("production", the master) and on the upgraded one ("newdb", a shadow).
--
-- By hand:
--   python3 examples/app.py --port 9001 --variant production &
--   python3 examples/app.py --port 9002 --variant newdb &
--   build/kagami run examples/demo.lua
--   curl http://127.0.0.1:8090/products
--
-- `make demo` (examples/demo.py) runs the same config on free ports.
return {
  listen = "127.0.0.1:8090",
  client_timeout = 15,
  backend_timeout = 5,
  backends = {
    production = { url = "http://127.0.0.1:9001", master = true },
    newdb      = { url = "http://127.0.0.1:9002" },
  },
  shadow_methods = { "GET", "HEAD" },  -- writes would break replication
  sample = 1.0,
  diff_log = "kagami-diffs.jsonl",

  -- /ads changes on every request: comparing it would only add noise.
  select_backends = function(req)
    if req.path == "/ads" then return { "production" } end
    return nil
  end,

  -- Let the shadow application know it is being shadowed.
  munge_headers = function(backend, req, headers)
    if backend ~= "production" then headers["X-Shadow"] = "1" end
  end,
}
