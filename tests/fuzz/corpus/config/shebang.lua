#!/usr/bin/env kagami
return { backends = { m = { url = "http://[::1]:80", master = true } } }
