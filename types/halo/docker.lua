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
---@field project? string
---@field namespace? string a swarm stack's name (com.docker.stack.namespace)
---@field task? string the swarm task it runs
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

---A task of a swarm service.
---@class halo.SwarmTask
---@field id string
---@field slot? integer
---@field node_id string
---@field state string
---@field desired string
---@field message? string
---@field container_id? string
local Task = {}
---The task's container, on the daemon of the node that runs it (stack.swarm.nodes).
---@return halo.DockerContainer? container
---@return halo.Error? err
function Task:container() end

---A swarm service.
---@class halo.SwarmService
---@field id string
---@field name string
---@field namespace? string
---@field replicas? integer
---@field version integer
local Service = {}
---@return table? info
---@return halo.Error? err
function Service:inspect() end
---Its environment as a table.
---@return table<string, string>? env
---@return halo.Error? err
function Service:env() end
---@param opts? { desired?: "running"|"all", slot?: integer }
---@return halo.SwarmTask[]? tasks
---@return halo.Error? err
function Service:tasks(opts) end
---New environment (false removes) and/or update settings (delay, monitor in seconds); or
---`original = true`: back to the spec from before the check's first change.
---@param opts { env?: table<string, string|false>, update?: { parallelism?: integer, delay?: number, order?: "stop-first"|"start-first", failure_action?: string, monitor?: number }, original?: boolean, undo?: boolean }
---@return true|nil ok
---@return halo.Error? err
function Service:update(opts) end
---Seconds until no update runs and every replica's task runs on the current spec.
---@param opts? { timeout?: number, interval?: number, replacing?: (halo.SwarmTask|string)[] }
---@return number? seconds
---@return halo.Error? err
function Service:converge(opts) end
---@return true|nil ok
---@return halo.Error? err
function Service:rollback() end
---@param opts? { timeout?: number }
---@return true|nil ok
---@return halo.Error? err
function Service:restore(opts) end

---A swarm node.
---@class halo.SwarmNode
---@field id string
---@field name string its stack.swarm.node_label label, else its hostname
---@field hostname string
---@field role "manager"|"worker"
---@field availability "active"|"pause"|"drain"
---@field state string
---@field labels table<string, string>
---@field leader boolean
local Node = {}
---@param opts? { undo?: boolean }
---@return true|nil ok
---@return halo.Error? err
function Node:drain(opts) end
---@param opts? { undo?: boolean }
---@return true|nil ok
---@return halo.Error? err
function Node:pause(opts) end
---@return true|nil ok
---@return halo.Error? err
function Node:activate() end
---Stops the node's daemon (the stack file's swarm.node_control stop NAME);
---started again at the check's end.
---@param opts? { undo?: boolean, timeout?: number }
---@return true|nil ok
---@return halo.Error? err
function Node:stop(opts) end
---Starts the node's daemon (swarm.node_control start NAME) and waits until
---the manager has it ready.
---@param opts? { timeout?: number }
---@return number|nil seconds
---@return halo.Error? err
function Node:start(opts) end

---Another daemon than the default one (a swarm node, a remote host).
---@class halo.DockerDaemon
---@field host string
local Daemon = {}
---@return { api: string, server: string, host: string }? version
---@return halo.Error? err
function Daemon:version() end
---@param opts? { project?: string, namespace?: string, service?: string, all?: boolean }
---@return halo.DockerContainer[]? containers
---@return halo.Error? err
function Daemon:containers(opts) end
---@param ref string|{ service: string, project?: string }
---@return halo.DockerContainer? container
---@return halo.Error? err
function Daemon:container(ref) end
---@param opts? { namespace?: string|false }
---@return halo.SwarmService[]? services
---@return halo.Error? err
function Daemon:services(opts) end
---@param ref string
---@return halo.SwarmService? service
---@return halo.Error? err
function Daemon:service(ref) end
---@return halo.SwarmNode[]? nodes
---@return halo.Error? err
function Daemon:nodes() end
---@param ref string
---@return halo.SwarmNode? node
---@return halo.Error? err
function Daemon:node(ref) end

---@class halo.dockerlib
local docker = {}

---@return { api: string, server: string, host: string }? version
---@return halo.Error? err
function docker.version() end

---A handle on another daemon: unix:///path or tcp://host:port (tls: client certificate files).
---@param opts { host: string, tls?: { ca: string, cert: string, key: string } }
---@return halo.DockerDaemon
function docker.daemon(opts) end

---The default daemon's swarm services (it must be a manager).
---@param opts? { namespace?: string|false }
---@return halo.SwarmService[]? services
---@return halo.Error? err
function docker.services(opts) end
---@param ref string
---@return halo.SwarmService? service
---@return halo.Error? err
function docker.service(ref) end
---@return halo.SwarmNode[]? nodes
---@return halo.Error? err
function docker.nodes() end
---@param ref string
---@return halo.SwarmNode? node
---@return halo.Error? err
function docker.node(ref) end

---The containers (project defaults to stack.compose.project).
---@param opts? { project?: string, namespace?: string, service?: string, all?: boolean }
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
