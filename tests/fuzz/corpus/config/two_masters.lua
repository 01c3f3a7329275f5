return {
  backends = {
    a = { url = "http://127.0.0.1:1", master = true },
    b = { url = "http://127.0.0.1:2", master = true },
  },
}
