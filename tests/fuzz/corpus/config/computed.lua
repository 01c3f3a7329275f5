local shadows = {}
for i = 1, 3 do shadows["s" .. i] = { url = string.format("http://127.0.0.1:%d", 9100 + i) } end
shadows.prod = { url = "http://127.0.0.1:9001", master = true }
local t = setmetatable({ backends = shadows }, { __index = function() return 1 end })
return t
