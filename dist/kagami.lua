-- /etc/kagami/kagami.lua: the config the kagami service runs
-- (`systemctl start kagami`; `systemctl reload kagami` re-reads it).
-- Every key is in kagami.lua(5); more complete examples are in
-- /usr/share/doc/kagami/examples/. Check a change before reloading:
--   kagami check /etc/kagami/kagami.lua
return {
  listen = "127.0.0.1:8090",       -- a port below 1024 needs the capability
                                   -- described in the unit file
  backends = {
    production = { url = "http://127.0.0.1:9001", master = true },
    newdb      = { url = "http://127.0.0.1:9002" },
  },
  shadow_methods = { "GET", "HEAD" },  -- writes reach no shadow unless listed
  sample = 1.0,

  -- The service may write only here (StateDirectory, LogsDirectory).
  store = "/var/lib/kagami/kagami.db",
  diff_log = "/var/log/kagami/diffs.jsonl",

  admin = "127.0.0.1:8091",        -- dashboard, /metrics, /healthz
}
