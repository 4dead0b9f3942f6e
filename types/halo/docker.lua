---@meta docker
-- LuaCATS annotations for halo's `docker` module (docs/modules.md#docker).
-- Every call that fails returns `nil, err` (kind connect, docker, not_found,
-- timeout); faults are undone at the end of the check unless `undo = false`.

---A limits handle from `c:update`.
---@class halo.DockerLimits
---@field before { NanoCpus: integer, Memory: integer, MemorySwap: integer, PidsLimit: integer }
local Limits = {}
---Puts back the limits read before the update.
---@return true|nil ok
---@return halo.Error? err
function Limits:restore() end

---@class halo.DockerLogLine
---@field stream "stdout"|"stderr"
---@field time string
---@field text string
---@field service? string

---@class halo.DockerContainer
---@field id string
---@field name string
---@field service string
---@field project string
---@field labels table<string, string>
local Container = {}

---The Engine API's JSON for it.
---@return table? info
---@return halo.Error? err
function Container:inspect() end

---@param opts? { signal?: string, undo?: boolean }
---@return true|nil ok
---@return halo.Error? err
function Container:kill(opts) end

---@param opts? { timeout?: number, signal?: string, undo?: boolean }
---@return true|nil ok
---@return halo.Error? err
function Container:stop(opts) end

---Lowers its limits; `memory`/`memory_swap` are bytes or "512k", "256m", "1g".
---@param opts { cpus?: number, memory?: string|integer, memory_swap?: string|integer, pids?: integer, undo?: boolean }
---@return halo.DockerLimits? limits
---@return halo.Error? err
function Container:update(opts) end

---@param opts? { timeout?: number }
---@return true|nil ok
---@return halo.Error? err
function Container:restart(opts) end

---@param opts? { undo?: boolean }
---@return true|nil ok
---@return halo.Error? err
function Container:pause(opts) end

---@return true|nil ok
---@return halo.Error? err
function Container:start() end

---@return true|nil ok
---@return halo.Error? err
function Container:unpause() end

---`true, seconds`, or `nil, err` (kind timeout, with the last state seen).
---@param opts { state: "running"|"healthy"|"exited", timeout?: number }
---@return true|nil ok
---@return number|halo.Error seconds_or_err
function Container:wait(opts) end

---@param opts? { since?: number|string, ["until"]?: number|string, tail?: integer }
---@return halo.DockerLogLine[]? lines
---@return halo.Error? err
function Container:logs(opts) end

---A skew handle from `p:skew`.
---@class halo.DockerSkew
---@field service string
---@field spec string such as "+5s x1.5"
---@field container halo.DockerContainer
local Skew = {}
---Recreates the service with its own configuration (idempotent).
---@return true|nil ok
---@return halo.Error? err
function Skew:heal() end

---A compose project handle.
---@class halo.ComposeProject
local Project = {}

---@param opts? { services?: string[], no_deps?: boolean, env?: table<string, table<string, string>>, timeout?: number }
---@return true|nil ok
---@return halo.Error? err
function Project:up(opts) end

---@param opts? { volumes?: boolean }
---@return true|nil ok
---@return halo.Error? err
function Project:down(opts) end

---The project's containers.
---@return halo.DockerContainer[]? containers
---@return halo.Error? err
function Project:ps() end

---@param opts? { services?: string[], since?: number|string }
---@return halo.DockerLogLine[]? lines
---@return halo.Error? err
function Project:logs(opts) end

---Recreates the service with its clock `offset` seconds off (and running
---at `rate`), through libfaketime; undone at the end of the check.
---@param opts { service: string, offset?: number, rate?: number, monotonic?: boolean, timeout?: number, undo?: boolean }
---@return halo.DockerSkew? skew
---@return halo.Error? err
function Project:skew(opts) end

---@class halo.dockerlib
local docker = {}

---@return { api: string, server: string }? version
---@return halo.Error? err
function docker.version() end

---The containers (project defaults to stack.compose.project).
---@param opts? { project?: string, service?: string, all?: boolean }
---@return halo.DockerContainer[]? containers
---@return halo.Error? err
function docker.containers(opts) end

---One container, by id, name, or `{ service = "api1" [, project =] }`.
---@param ref string|{ service: string, project?: string }
---@return halo.DockerContainer? container
---@return halo.Error? err
function docker.container(ref) end

---The log-frame demultiplexer the module uses, for raw streams.
---@return function
function docker.demux() end

---A project handle; without options, the stack file's project.
---@param opts? { files?: string[], project?: string, env?: table<string, string>, cwd?: string, env_file?: string|string[] }
---@return halo.ComposeProject
function docker.compose(opts) end

return docker
