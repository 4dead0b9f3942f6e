-- Check 6: the report's API key rotation playbook, automated. A token
-- minted with the old key keeps working through the whole restart window
-- (zero 401s in the traffic and in the replicas' logs), then the four
-- probes: new key 200, old token 200, old key as x-api-key 401, old key
-- minting 401. The stack's original keys are restored at the end.
local pulp = require "pulp"
local docker = require "docker"
local traffic = require "traffic"
local time = require "time"

local function random_key()
  local hex = {}
  for i = 1, 32 do hex[i] = string.format("%02x", math.random(0, 255)) end
  return table.concat(hex)
end

return {
  title = "API key rotation with *_PREVIOUS, zero 401s",
  tags = { "auth", "rotation", "exclusive" },
  timeout = 300,
  run = function(t, stack)
    local keys = stack.keys or {}
    local old = keys.admin
    local new = random_key()
    local names = {}
    for name in pairs(stack.replicas) do names[#names + 1] = name end
    table.sort(names)
    local compose = docker.compose{ files = stack.compose.files, project = stack.compose.project }
    local var = (stack.rotation or {}).variable or "API_KEY_ADMIN"

    local old_token = t:step("mint an editor token with the old key", function()
      return assert(pulp.lb(stack, { key = old }):mint_editor_token{ actor = "rotation-test" })
    end)
    local sanity = pulp.lb(stack, { key = old }):call("GET", "/templates")
    t:assert(sanity and sanity.status == 200, "before the cutover the old key is refused (HTTP %s)",
             sanity and sanity.status or "-")

    local function restart(name, env)
      local service = stack.replicas[name].service or name
      assert(compose:up{ services = { service }, no_deps = true, env = env and { [service] = env } or nil })
      local c = assert(docker.container{ service = service })
      local ok, took = c:wait{ state = "healthy", timeout = 90 }
      assert(ok, took)
      return took
    end
    -- Whatever happens next, the replicas end with the stack's own keys.
    t:defer(function()
      for _, name in ipairs(names) do restart(name, nil) end
    end)

    local flow <close> = traffic.start{
      request = { url = stack.lb .. "/templates", headers = { ["x-editor-token"] = old_token }, timeout = 5 },
      rate = 20,
    }
    local cutover = time.now()
    local restarted = {}
    for _, name in ipairs(names) do
      local took = t:step("cut " .. name .. " over to the new key", function()
        return restart(name, { [var] = new, [var .. "_PREVIOUS"] = old })
      end)
      restarted[name] = string.format("healthy after %.1f s", took)
      -- the LB keeps a restarted replica out for its fail_timeout; cutting the
      -- next one over before that would leave no live upstream
      time.sleep((stack.rotation or {}).settle or 6)
    end
    time.sleep(2)
    local seen = flow:stop()
    t:evidence("restart window (s)", string.format("%.1f", time.now() - cutover))
    t:evidence("replicas", restarted)
    t:evidence("traffic with the old token", { sent = seen.sent, by_status = seen.by_status, by_error = seen.by_error })
    t:expect((seen.by_status[401] or 0) == 0, "%d requests with the old token got 401 during the restart window",
             seen.by_status[401] or 0)
    t:expect(seen.failures == 0, "%d of %d requests failed during the restart window", seen.failures, seen.sent)

    -- The report's step 6: the replicas' own logs since the cutover.
    local lines = t:step("scan the replicas' logs since the cutover", function()
      local services = {}
      for _, name in ipairs(names) do services[#services + 1] = stack.replicas[name].service or name end
      return assert(compose:logs{ services = services, since = cutover })
    end)
    local offending = {}
    for _, l in ipairs(lines) do
      if l.text:find('"msg":"Auth failure"', 1, true) or l.text:find('"statusCode":401', 1, true) then
        offending[#offending + 1] = l.service .. ": " .. l.text
      end
    end
    t:evidence("auth failures in the logs", #offending)
    t:expect(#offending == 0, "%d 401/Auth failure lines in the logs of the restart window; first: %s", #offending,
             offending[1] or "")

    -- The report's step 7: the four deliberate probes.
    local probes = {
      { "x-api-key: NEW /templates", pulp.lb(stack, { key = new }), "GET", "/templates", 200 },
      { "x-editor-token: OLD_TOKEN /templates", pulp.lb(stack, { token = old_token }), "GET", "/templates", 200 },
      { "x-api-key: OLD /templates", pulp.lb(stack, { key = old }), "GET", "/templates", 401 },
      { "POST x-api-key: OLD /auth/editor-token", pulp.lb(stack, { key = old }), "POST", "/auth/editor-token", 401 },
    }
    local matrix = {}
    for _, p in ipairs(probes) do
      local label, api, method, path, want = p[1], p[2], p[3], p[4], p[5]
      local res, err = api:call(method, path, method == "POST" and { json = { actor = "rotation-test" } } or nil)
      local got = res and res.status or err
      matrix[#matrix + 1] = string.format("%-40s %s (expected %d)", label, tostring(got), want)
      t:expect(got == want, "%s: got %s, expected %d", label, tostring(got), want)
    end
    t:evidence("probe matrix", matrix)

    local rollover = stack.rotation or {}
    if rollover.cleanup then
      t:step("post-rollover: drop the previous key", function()
        for _, name in ipairs(names) do restart(name, { [var] = new, [var .. "_PREVIOUS"] = "" }) end
      end)
      local res = pulp.lb(stack, { token = old_token }):call("GET", "/templates")
      t:expect(res and res.status == 401, "the old token still verifies once the previous key is gone (HTTP %s)",
               res and res.status or "-")
      local fresh = pulp.lb(stack, { key = new }):mint_editor_token{ actor = "rotation-test" }
      t:expect(fresh, "minting with the new key fails after the rollover")
    else
      local ttl = stack.token_ttl_minutes or 480
      t:evidence("post-rollover cleanup", string.format(
        "deferred: due %d min after the cutover (EDITOR_TOKEN_TTL_MINUTES), at %s UTC; set rotation.cleanup = true to run it",
        ttl, os.date("!%Y-%m-%d %H:%M", math.floor(cutover) + ttl * 60)))
    end
  end,
}
