return {
  backends = { production = { url = "http://127.0.0.1:9001", master = true } },
  sampel = 0.5,
}
