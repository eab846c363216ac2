-- rudis scripting prelude: Redis 7.0's sandbox and the Lua half of the `redis` API.
-- Runs once per interpreter with the hidden `internal` table; returns `run(f)`.
local internal = ...
local G = _G
local getinfo = debug.getinfo
local error, type, tostring, select, unpack = error, type, tostring, select, unpack
local setmetatable, pairs, xpcall, tonumber = setmetatable, pairs, xpcall, tonumber
local find, sub, gsub = string.find, string.sub, string.gsub
local concat = table.concat

-- Redis's __redis__err__handler: errors become {err=..., source=..., line=...}. The
-- position is the first frame that is neither C nor this prelude (Redis looks one
-- level up when the error was raised by a C function).
local function handler(err)
  local level, info = 2, nil
  while true do
    info = getinfo(level, 'nSl')
    if not info or (info.what ~= 'C' and info.source ~= '=redis_internal') then
      break
    end
    level = level + 1
  end
  if type(err) == 'userdata' then
    err = internal.unwrap(err)
  end
  if type(err) ~= 'table' then
    err = { err = 'ERR ' .. tostring(err) }
  end
  if info then
    err['source'] = info.source
    err['line'] = info.currentline
  end
  return err
end

local function run(f)
  return xpcall(f, handler)
end

local redis = internal.redis

-- The sandbox: Redis's allow-list of globals, everything else removed.
local allowed = {
  string = true, cjson = true, bit = true, cmsgpack = true, math = true, table = true,
  struct = true, coroutine = true, redis = true,
  xpcall = true, tostring = true, getmetatable = true, setmetatable = true,
  ipairs = true, assert = true, pcall = true, type = true, unpack = true,
  gcinfo = true, select = true, error = true, next = true, tonumber = true,
  pairs = true, rawequal = true, loadstring = true, load = true, rawget = true,
  rawset = true, collectgarbage = true, _VERSION = true,
}
G.redis = redis

local function readonly_error()
  error('Attempt to modify a readonly table', 2)
end
-- Tables scripts must not change: the library proxies and the globals table; the
-- value is what getmetatable shows for them (Redis's read-only tables).
local protected = {}
-- A library table seen through an empty proxy, so assignments fail as on Redis.
local function readonly(t)
  local proxy = setmetatable({}, { __index = t, __newindex = readonly_error, __metatable = false })
  protected[proxy] = false
  return proxy
end
local raw_setmetatable, raw_getmetatable = setmetatable, getmetatable
local function safe_setmetatable(t, mt)
  if protected[t] ~= nil then
    error('Attempt to modify a readonly table', 0)
  end
  return raw_setmetatable(t, mt)
end
local function safe_getmetatable(t)
  local shown = protected[t]
  if shown ~= nil then
    return shown or nil
  end
  return raw_getmetatable(t)
end

-- Redis's luaRedisPcall: an error table with a string `err` reaches the script as
-- that string (and our Rust errors, which travel as userdata, as their message).
local raw_pcall = pcall
local function pcall_result(ok, ...)
  if ok then
    return ok, ...
  end
  local e = ...
  if type(e) == 'userdata' then
    e = internal.unwrap(e)
  end
  if type(e) == 'table' and type(e.err) == 'string' then
    e = e.err
  end
  return false, e
end
local function redis_pcall(...)
  return pcall_result(raw_pcall(...))
end

local env = {}
for k, v in pairs(G) do
  if allowed[k] then
    if type(v) == 'table' then
      env[k] = readonly(v)
    elseif k == 'setmetatable' then
      env[k] = safe_setmetatable
    elseif k == 'getmetatable' then
      env[k] = safe_getmetatable
    elseif k == 'pcall' then
      env[k] = redis_pcall
    else
      env[k] = v
    end
  end
end
for k in pairs(G) do
  G[k] = nil
end
env._G = G
internal.env = env
local globals_mt = {
  __index = function(_, k)
    local v = env[k]
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = readonly_error,
}
globals_mt.__metatable = readonly(globals_mt)
protected[G] = globals_mt.__metatable
setmetatable(G, globals_mt)
return run
