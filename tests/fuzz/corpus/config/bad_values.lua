return {
  listen = "localhost",
  backends = { ["bad name"] = { url = "https://127.0.0.1:9001", master = "yes" } },
  max_body_bytes = "8MB",
  sample = 2,
  shadow_methods = { "GOT" },
  rules = { { ignore = { "$.[" }, ignore_xpath = { "//[" }, replace = { { "(", "$2" } } } },
  endpoints = { "no-slash" },
}
