-- The stack file for halo's reference HA stack (tests/stack/): two replicas
-- of the Pulp Engine stand-in behind nginx, PostgreSQL 15, all on 127.0.0.1.
--
--   tests/stack/up && build/halo run --stack tests/stack/stack.lua
--   build/halo run --stack tests/stack/stack.lua --up --down     # the same, plus tear-down
--
-- Multi-tenant: stack-multi.lua (this file, included, with multi_tenant = true).
--
-- Every value can be overridden from the environment with the same
-- variables tests/stack/up reads (README.md): run halo with the settings the
-- stack was brought up with. The keys' defaults are the test stack's own
-- test keys; they are secrets all the same, so no report shows them.

local function port(name, default)
  local p = tonumber(env(name, tostring(default)))
  if not p then error(name .. " must be a port number", 0) end
  return math.tointeger(p)
end

local function flag(name, default)
  local v = env(name, default):lower()
  return v == "1" or v == "true" or v == "yes" or v == "on"
end

local lb_fail_timeout = 5                 -- nginx max_fails=1 fail_timeout=5s (nginx/nginx.conf.template)
local lb_settle = lb_fail_timeout + 1

local project = env("COMPOSE_PROJECT_NAME", "halo")
local lb_port, api1_port, api2_port, db_port =
  port("LB_PORT", 3000), port("API1_PORT", 3001), port("API2_PORT", 3002), port("DB_PORT", 55432)
local proxy_port = port("PROXY_PORT", 3010)
-- the links go through the fault proxy only when the stack was brought up
-- with PROXY_LINKS=1 (tests/stack/up); the checks in scripts/faults need it
local proxied = flag("PROXY_LINKS", "0")
local lb_upstream_timeout = tonumber(env("LB_UPSTREAM_TIMEOUT_S", "60"))  -- nginx proxy_read_timeout

return {
  name = "halo reference stack (tests/stack)",

  -- where clients go: the nginx load balancer
  lb = "http://127.0.0.1:" .. lb_port,
  -- its passive failover (nginx max_fails=1 fail_timeout=5s): a replica that
  -- failed a request is left out for this many seconds, even once healthy
  -- again. After restarting a replica, wait until the LB serves from it
  -- (X-Served-By) before disturbing the other one.
  lb_fail_timeout = lb_fail_timeout,

  -- how long the LB waits on a replica that took a request but does not
  -- answer, before trying the other one
  lb_upstream_timeout = lb_upstream_timeout,

  -- each replica directly, its compose service (for docker.container{ service = ... }),
  -- and its links through the fault proxy: the LB's to it, its own to the database
  replicas = {
    api1 = { url = "http://127.0.0.1:" .. api1_port, service = "api1", container = "api1",
             links = proxied and { lb = "lb-api1", db = "api1-db" } or nil },
    api2 = { url = "http://127.0.0.1:" .. api2_port, service = "api2", container = "api2",
             links = proxied and { lb = "lb-api2", db = "api2-db" } or nil },
  },

  -- halo's fault proxy (`halo proxy`, the compose service `proxy`), which
  -- every link above goes through: require "netfault" drives it
  proxy = { control = "http://127.0.0.1:" .. proxy_port },

  -- PostgreSQL (trust authentication on 127.0.0.1: no password in the URL),
  -- and its compose service
  database = env("DATABASE_URL", "postgres://pulp@127.0.0.1:" .. db_port .. "/pulp"),
  database_service = "db",

  keys = {
    admin = secret("API_KEY_ADMIN", "halo-test-admin-key"),
    editor = secret("API_KEY_EDITOR", "halo-test-editor-key"),
    secret = secret("EDITOR_TOKEN_SECRET", "halo-test-editor-token-secret"),   -- EDITOR_TOKEN_SECRET
  },

  multi_tenant = flag("MULTI_TENANT_ENABLED", "false"),
  tenant_cache_ttl_ms = tonumber(env("TENANT_STATUS_CACHE_TTL_MS", "1500")),
  token_ttl_minutes = tonumber(env("EDITOR_TOKEN_TTL_MINUTES", "480")),

  compose = {
    project = project,
    files = { "docker-compose.yml" },     -- relative to this file
    -- the settings tests/stack/up brought this project up with: a replica
    -- that a check recreates gets the same ports, keys and faults. Beside
    -- this file in a source tree, or, installed, under
    -- the user's state directory (settings-file.sh): the first that exists.
    env_file = { stack_dir .. "/.env." .. project,
                 env("XDG_STATE_HOME", env("HOME", "/nonexistent") .. "/.local/state")
                   .. "/halo/stacks/" .. project .. ".env" },
  },

  -- check 2: a schedule with a seconds field, observed for this many ticks
  schedule = { cron = "*/2 * * * * *", ticks = 3, interval = 2 },

  -- check 4: traffic on a real route through the LB (failover.request,
  -- here the default GET /templates with the admin key) at `rate` per
  -- second, so a failure window is resolved to 5 ms; how long the LB is
  -- watched with a replica down; how long to let it re-admit a restarted
  -- replica before the next one is killed (more than lb_fail_timeout); how
  -- many LB failures are tolerated (`budget`); and how long a restarted
  -- replica may fail requests straight to it after it reports healthy
  -- (`grace`).
  failover = {
    request = { method = "GET", path = "/templates", key = "admin" },
    rate = tonumber(env("FAILOVER_RATE", "200")), window = 5, settle = lb_settle, budget = 0, grace = 0,
  },

  -- check 6: how keys are rotated here. Each service is recreated in turn
  -- with compose (an override file setting `variable` to the new key and
  -- `variable .. "_PREVIOUS"` to the old one); a plain `up` of the service
  -- restores it. `settle`: wait this long (or until the LB serves from the
  -- recreated replica) before recreating the next one.
  -- `mode`: "rolling" (one replica at a time, the next once the LB serves
  -- the previous again: no downtime) or "together" (every replica at once:
  -- the report's own cutover, `up -d --no-deps api1 api2`).
  rotation = {
    variable = "API_KEY_ADMIN",          -- API_KEY_EDITOR works the same way
    mode = env("ROTATION_MODE", "rolling"),
    services = { "api1", "api2" },       -- tests/stack/probe.lua's rotation (check 6 takes stack.replicas)
    settle = lb_settle,
    -- a test stack: the previous key may be dropped at once, no need to wait
    -- EDITOR_TOKEN_TTL_MINUTES before the post-rollover cleanup step
    cleanup = true,
  },

  -- The checks beyond the report (scripts/faults/). Times are seconds.
  -- database_lost: one replica's database link is cut; its readiness must
  -- say 503 within `notice`, the LB's traffic (`rate`/s on the failover
  -- route) may fail `budget` times, and once healed the replica must serve
  -- within `recover`.
  database_lost = { notice = 5, window = 5, recover = 15, rate = 50, budget = 0 },
  -- database_restart: PostgreSQL restarted under traffic; every replica
  -- serves the real route again within `recover` of it being back.
  database_restart = { recover = 20, rate = 20 },
  -- silent_replica: the LB's link to one replica swallows everything for
  -- `window`; clients (timeout: the LB's upstream timeout plus `margin`)
  -- may see `budget` failures.
  silent_replica = { window = 12, rate = 20, budget = 0, margin = 4 },
  -- clocks: one replica's clock `skew` seconds ahead (libfaketime)
  clocks = { skew = 5, ticks = 4 },
  -- graceful: `renders` renders in flight, held in the replica by `hold` seconds
  -- of latency on each answer of its database link, when it is stopped
  graceful = { renders = 8, hold = 1, stop_timeout = 15 },

  -- halo run --up / --down (run in this directory)
  harness = { up = { "./up" }, down = { "./down" } },

  allow_exec = { "docker", "docker-compose" },

  -- a stack that exists to be broken: checks 4 and 6 kill and recreate
  -- replicas, the checks in scripts/faults/ cut links, skew clocks and stop
  -- services (faults = true in them), and may here
  allow_faults = true,
}
