-- A stack file as examples/pulp-ha/stack.lua writes one: env() with
-- defaults, secret(), compose files relative to the file, a harness.
local dir = env("PULP_ENGINE_DIR", stack_dir)
local files = { dir .. "/docker-compose.ha.yml" }
local override = env("PULP_COMPOSE_OVERRIDE")
if override then files[#files + 1] = dir .. "/" .. override end
return {
  name = "Pulp Engine HA (docker-compose.ha.yml)",
  lb = env("PULP_LB_URL", "http://127.0.0.1:3000"),
  lb_fail_timeout = tonumber(env("PULP_LB_FAIL_TIMEOUT", "10")),
  replicas = {
    api1 = { url = env("PULP_API1_URL", "http://127.0.0.1:3001"), service = "api1", container = "api1" },
    api2 = { url = env("PULP_API2_URL", "http://127.0.0.1:3002"), service = "api2", container = "api2" },
  },
  database = env("PULP_DATABASE_URL", "postgres://pulp:s3cretpw@127.0.0.1:5432/pulp"),
  keys = { admin = secret("HALO_FUZZ_KEY_ADMIN", "admin-key-0001"), editor = secret("HALO_FUZZ_KEY_EDITOR", "") },
  multi_tenant = env("MULTI_TENANT_ENABLED", "false") == "true",
  compose = { project = env("COMPOSE_PROJECT_NAME", "pulpengine"), files = files },
  schedule = { cron = "* * * * *", ticks = 3, interval = 60 },
  allow_exec = { "docker", "docker-compose" },
  harness = {
    up = { "sh", "-c", 'cd "$PULP_ENGINE_DIR" && docker compose -f docker-compose.ha.yml up -d --wait' },
    down = "./down",
  },
}
