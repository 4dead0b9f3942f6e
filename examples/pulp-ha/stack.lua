-- A halo stack file for a real Pulp Engine HA deployment: the repository's
-- docker-compose.ha.yml (2 API replicas + Postgres + MinIO + nginx LB), as
-- in the HA validation report. Copy it next to your checkout or point
-- halo at it, set the environment below, and run:
--
--   export API_KEY_ADMIN=... API_KEY_EDITOR=...          # the stack's real keys
--   export PULP_ENGINE_DIR=$HOME/src/pulpengine           # where docker-compose.ha.yml is
--   build/halo run --stack examples/pulp-ha/stack.lua --format md --out run.md
--
-- Nothing secret is written here: keys come from the environment through
-- secret(), and every report, log line and error message shows them as ***.
-- Anything set here can be overridden from the environment with the
-- variable named next to it.

-- Where the deployment's compose files are: by default next to this file
-- (copy it into your checkout). A relative path is relative to this file,
-- wherever halo runs.
local dir = env("PULP_ENGINE_DIR", stack_dir)

local files = { dir .. "/docker-compose.ha.yml" }
-- The report's Run 1 needed a port override (LB on 3010 because 3000 was
-- taken) and check 6's playbook uses docker-compose.ha.override.yml: list
-- the override too if you use one, or compose would "fix" it back when a
-- check recreates a replica.
local override = env("PULP_COMPOSE_OVERRIDE")          -- e.g. docker-compose.ha.override.yml
if override then files[#files + 1] = dir .. "/" .. override end

return {
  name = "Pulp Engine HA (docker-compose.ha.yml)",

  -- The nginx load balancer, as clients reach it. Run 1 used 3010.
  lb = env("PULP_LB_URL", "http://127.0.0.1:3000"),
  -- nginx's passive failover leaves a failed replica out for fail_timeout
  -- (nginx's default: 10 s) even once it is healthy again.
  lb_fail_timeout = tonumber(env("PULP_LB_FAIL_TIMEOUT", "10")),

  -- Each replica directly (checks 1, 3, 5 talk to one replica at a time),
  -- and its compose service (checks 4, 6 kill and recreate it). If the HA
  -- compose file does not publish the replicas' ports, publish them on
  -- 127.0.0.1 in your override, e.g.
  --   services: { api1: { ports: ["127.0.0.1:3001:3000"] }, api2: { ports: ["127.0.0.1:3002:3000"] } }
  replicas = {
    api1 = { url = env("PULP_API1_URL", "http://127.0.0.1:3001"), service = "api1", container = "api1" },
    api2 = { url = env("PULP_API2_URL", "http://127.0.0.1:3002"), service = "api2", container = "api2" },
  },

  -- PostgreSQL, for check 2's look at schedule_executions and the report's
  -- "Postgres:" line. Optional: without it check 2 reads the API only.
  -- A password in the URL is redacted from every report.
  database = env("PULP_DATABASE_URL"),                -- postgres://user:pass@127.0.0.1:5432/pulp

  keys = {
    admin = secret("API_KEY_ADMIN"),                  -- required: halo refuses to start without it
    editor = secret("API_KEY_EDITOR"),
    secret = env("EDITOR_TOKEN_SECRET") and secret("EDITOR_TOKEN_SECRET"),   -- optional, not sent anywhere
  },

  -- The report's stack is single-tenant (check 5 is N/A); set
  -- MULTI_TENANT_ENABLED=true for the multi-tenant variant.
  multi_tenant = env("MULTI_TENANT_ENABLED", "false") == "true",
  tenant_cache_ttl_ms = tonumber(env("TENANT_STATUS_CACHE_TTL_MS", "5000")),
  token_ttl_minutes = tonumber(env("EDITOR_TOKEN_TTL_MINUTES", "480")),

  -- The compose project (containers are found by its labels; the report's
  -- containers were pulpengine-api1-1, i.e. project "pulpengine") and files.
  compose = {
    project = env("COMPOSE_PROJECT_NAME", "pulpengine"),
    files = files,
  },

  -- Check 2: Pulp Engine schedules are per minute; three ticks take about
  -- 200 s, as the report's harness does.
  schedule = { cron = "* * * * *", ticks = 3, interval = 60 },

  -- Check 4: traffic on a real route through the LB (`request`: the
  -- method, path and the keys entry it authenticates with) at
  -- `rate` per second, a replica down for `window` seconds; the same route
  -- asked of each restarted replica directly, which must succeed from the
  -- moment it reports healthy (plus `grace` seconds); `settle` longer than
  -- lb_fail_timeout (nginx's default fail_timeout is 10 s) before the next
  -- replica is killed, where responses name no replica.
  failover = {
    request = { method = "GET", path = "/templates", key = "admin" },
    rate = 200, window = 5, settle = 12, budget = 0, grace = 0,
  },

  -- Check 6: the rotation playbook recreates api1 and api2 with
  -- API_KEY_ADMIN=<new> and API_KEY_ADMIN_PREVIOUS=<old> — both at once as
  -- the report did (mode "together"), or one after the other with no
  -- downtime (mode "rolling") — probes each as soon as its /health/ready
  -- says 200, and restores the keys of your compose configuration at the
  -- end. The post-rollover
  -- cleanup (old token rejected once the previous key is removed) is due
  -- EDITOR_TOKEN_TTL_MINUTES after the cutover: leave `cleanup` false on a
  -- stack with live editor sessions, and the check reports it as deferred.
  rotation = {
    variable = "API_KEY_ADMIN",
    mode = "together",
    settle = 12,
    cleanup = false,
  },

  -- What checks may run (docker compose v2 is `docker compose`).
  allow_exec = { "docker", "docker-compose" },

  -- Checks 4 and 6 kill and recreate replicas (faults = true in them). They
  -- are N/A until this stack says they may, or the run says --allow-faults:
  -- point halo at a production stack by mistake and nothing is killed.
  -- allow_faults = true,

  -- Uncomment to let `halo run --up --down` bring the stack up and down
  -- (commands run in this file's directory):
  -- harness = {
  --   up = { "sh", "-c", 'cd "$PULP_ENGINE_DIR" && docker compose -f docker-compose.ha.yml up -d --wait' },
  --   down = { "sh", "-c", 'cd "$PULP_ENGINE_DIR" && docker compose -f docker-compose.ha.yml down' },
  -- },
}
