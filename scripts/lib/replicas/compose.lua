-- The compose replica backend (replicas.lua documents the interface):
-- each replica is a compose service of the stack's project, one container.
-- A kill is docker's, revived by starting the same container; a roll is
-- `up --no-deps` of the group's services with an override file setting the
-- environment (the docker module journals it and undoes it with a plain up).
local docker = require "docker"
local pulp = require "pulp"
local shared = require "replicas"

local ipairs, setmetatable = ipairs, setmetatable

local Set, Replica = {}, {}
Set.__index, Replica.__index = Set, Replica

local M = {}

function M.new(stack)
  return setmetatable({ stack = stack, kind = "compose", handles = {} }, Set)
end

function Set:names()
  return pulp.replica_names(self.stack)
end

function Set:replica(name)
  return shared.replica_handle(self, name, Replica, function(r, n) return { service = r.service or n } end)
end

-- The replica's container, looked up once: the docker handle follows its
-- service when compose recreates it (a new id).
function Replica:container()
  if not self.c then
    local c, err = docker.container{ service = self.service }
    if not c then return nil, err end
    self.c = c
  end
  return self.c
end

local function with_container(self, fn)
  local c, err = self:container()
  if not c then return nil, err end
  return fn(c)
end

function Replica:kill()
  return with_container(self, function(c) return c:kill() end)
end

function Replica:revive()
  return with_container(self, function(c)
    local ok, err = c:start()
    if not ok then return nil, err end
    return "started"
  end)
end

function Replica:wait_healthy(opts)
  opts = opts or {}
  return with_container(self, function(c) return c:wait{ state = "healthy", timeout = opts.timeout or 90 } end)
end

function Replica:logs(opts)
  opts = opts or {}
  return with_container(self, function(c) return c:logs{ since = opts.since } end)
end

function Replica:node()
  return "local"
end

function Replica:id()
  local c = self:container()
  return c and c.id:sub(1, 12) or "?"
end

-- The compose project of the stack file (files, project, env_file).
function Set:project()
  self.compose = self.compose or docker.compose()
  return self.compose
end

local function services_of(self, group)
  local services = {}
  for i, name in ipairs(group) do services[i] = self:replica(name).service end
  return services
end

function Set:roll(opts)
  shared.check_roll(opts, 3)
  for _, group in ipairs(shared.groups(self:names(), opts.mode or "rolling")) do
    local services, envs = services_of(self, group), nil
    if opts.env then
      envs = {}
      for _, s in ipairs(services) do envs[s] = opts.env end
    end
    opts.each(group, function()
      return self:project():up{ services = services, no_deps = true, env = envs }
    end)
  end
  return true
end

-- One machine: one node, which a check cannot take away.
function Set:nodes()
  return { { name = "local", state = "ready", availability = "active", manager = true, replicas = self:names() } }
end

function Set:lose()
  return nil, "the stack runs on one machine (backend compose): there is no node to lose"
end

function Set:restore()
  return self:project():up{ services = services_of(self, self:names()), no_deps = true }
end

return M
