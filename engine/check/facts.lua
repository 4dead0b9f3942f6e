-- What halo can find out about the stack by itself, for the run-log entry:
-- the app's version from /health, PostgreSQL's over SQL, the images the
-- compose project runs. Each fact is one event; a fact it cannot get is
-- simply left out.
local internal = ...
local http = require "http"
local json = require "json"

local stack = internal.stack() or {}

local function fact(key, value)
  if value ~= nil and value ~= json.null and value ~= "" then
    internal.event("fact", json.encode({ key = key, value = tostring(value) }))
  end
end

if type(stack.lb) == "string" then
  local res = http.get(stack.lb .. "/health", { timeout = 5, record = false })
  local doc = res and res.status == 200 and res:json()
  if type(doc) == "table" then fact("App version", doc.version) end
end

if type(stack.database) == "string" then
  local sql = require "sql"
  local conn = sql.connect(stack.database, { connect_timeout = 5 })
  if conn then
    fact("PostgreSQL", conn:server_version())
    conn:close()
  end
end

if type(stack.compose) == "table" and stack.compose.project then
  local docker = require "docker"
  local version = docker.version()
  if version then fact("Docker", version.server .. " (API " .. version.api .. ")") end
  local list = docker.containers{ project = stack.compose.project }
  for _, c in ipairs(list or {}) do
    local info = c:inspect()
    if info and info.Config then
      -- the tag names a build only loosely ("hostroot:local" for every
      -- local build): the image's id tells two builds apart
      local id = type(info.Image) == "string" and string.match(info.Image, "^sha256:(%x+)") or nil
      fact("Image " .. (c.service or c.name),
           id and string.format("%s (%s)", info.Config.Image, string.sub(id, 1, 12)) or info.Config.Image)
    end
  end
end
