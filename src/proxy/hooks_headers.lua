-- hooks_headers.lua: header fields shown to Lua hooks as case-insensitive
-- proxy tables (see hooks.c, which loads this chunk once per state as
-- "kagami.headers"; the build embeds it with scripts/embed_lua.py).
--
-- The fields live in a weak-keyed side table, so the proxy the hook sees is
-- an empty table whose metatable is hidden: hook code can neither reach nor
-- corrupt the storage. Names and values are checked on assignment, so a bad
-- value fails at the line that wrote it; C checks again when rebuilding the
-- kg_hdrs. Metatables are far shorter to write in Lua than through the C
-- API, and this runs only when a hook touches headers.

local lower, find, format, gsub = string.lower, string.find, string.format, string.gsub
local type, tostring, error, setmetatable = type, tostring, error, setmetatable
local state = setmetatable({}, { __mode = 'k' })
local mt = { __metatable = false }

local function printable(s)
  return (gsub(s, '[%c\128-\255]', function(ch)
    return format('\\x%02x', ch:byte()) end))
end

function mt.__index(t, k)
  if type(k) ~= 'string' then return nil end
  return state[t].values[lower(k)]
end

function mt.__newindex(t, k, v)
  local st = state[t]
  if st.ro then error('these headers are read-only', 2) end
  if type(k) ~= 'string' then
    error('header names must be strings, got a ' .. type(k), 2)
  end
  if not find(k, "^[!#$%%&'*+%-.^_`|~0-9A-Za-z]+$") then
    error('invalid header name "' .. printable(k) .. '"', 2)
  end
  if type(v) == 'number' then
    v = tostring(v)
  elseif v ~= nil and type(v) ~= 'string' then
    error('header ' .. k .. ': value must be a string, got a ' .. type(v), 2)
  end
  if v ~= nil and find(v, '[\r\n\0]') then
    error('header ' .. k .. ': value contains CR, LF or NUL', 2)
  end
  local l = lower(k)
  if st.names[l] == nil then
    if v == nil then return end
    st.names[l] = k
    st.order[#st.order + 1] = l
  end
  st.values[l] = v
  st.touched[l] = true
end

function mt.__pairs(t)
  local st, i = state[t], 0
  return function()
    while true do
      i = i + 1
      local l = st.order[i]
      if l == nil then return nil end
      local v = st.values[l]
      if v ~= nil then return st.names[l], v end
    end
  end, t, nil
end

-- list = { name1, value1, name2, value2, ... } as received. Fields
-- sharing a name are shown joined with ", " (RFC 9110 5.3).
local function new(list, ro)
  local st = { names = {}, values = {}, order = {}, touched = {},
               orig = list, ro = ro }
  for i = 1, #list, 2 do
    local n, v = list[i], list[i + 1]
    local l = lower(n)
    local old = st.values[l]
    if old == nil then
      st.names[l] = n
      st.order[#st.order + 1] = l
      st.values[l] = v
    else
      st.values[l] = old .. ', ' .. v
    end
  end
  st.norig = #st.order
  local t = setmetatable({}, mt)
  state[t] = st
  return t
end

-- Appends the field named l (lower case) to out as the hook left it:
-- its current spelling and value, or nothing once it was deleted.
local function put(out, st, l)
  local v = st.values[l]
  if v ~= nil then
    out[#out + 1] = st.names[l]
    out[#out + 1] = v
  end
end

-- Back to a flat list: names the hook did not touch keep their original
-- separate fields; a touched name takes the place of its first original
-- field (keeping that spelling); new names follow in the order they were
-- first assigned.
local function export(t)
  local st = state[t]
  local out, done, orig = {}, {}, st.orig
  for i = 1, #orig, 2 do
    local n = orig[i]
    local l = lower(n)
    if not st.touched[l] then
      out[#out + 1] = n
      out[#out + 1] = orig[i + 1]
    elseif not done[l] then
      done[l] = true
      put(out, st, l)
    end
  end
  for i = st.norig + 1, #st.order do
    put(out, st, st.order[i])
  end
  return out
end

return { new = new, export = export }
