-- A database upgrade (the case kagami was born from): the application on
-- the old database is the master, the same application on the upgraded
-- database is the shadow. The new cluster replicates from the old one, so
-- only reads are shadowed (writes would break replication).
--
-- Noise is learned rather than written down: a second instance of the
-- production version ("production2", on the OLD database) gets the same
-- requests, and whatever differs between the two production instances
-- (timestamps, request ids, random recommendations) is noise, hidden in
-- master-vs-shadow comparisons of that endpoint. What differs only on the
-- new database is what you are looking for.
--
--   kagami check examples/db-upgrade.lua
--   kagami run examples/db-upgrade.lua
--   kagami report --config examples/db-upgrade.lua
return {
  listen = "127.0.0.1:8090",
  backends = {
    production  = { url = "http://10.0.0.10:8080", master = true },
    production2 = { url = "http://10.0.0.11:8080", secondary = true },
    newdb       = { url = "http://10.0.1.10:8080" },
  },
  shadow_methods = { "GET", "HEAD" },
  sample = 1.0,                    -- all of it: kagami keeps up
  max_per_endpoint_per_s = 20,     -- hot pages do not crowd out rare ones

  noise = { learn = true, threshold = 0.2, min_pairs = 10 },
  latency_regression = 1.5,        -- flag pages whose p90 grows by half

  diff_log = "/var/log/kagami/diffs.jsonl",
  store = "/var/lib/kagami/kagami.db",
  admin = "127.0.0.1:8091",        -- dashboard and /metrics
}
