return { backends = { m = { url = "http://127.0.0.1:80", master = true } }, -- [[
  sample = [==[x]==] }
