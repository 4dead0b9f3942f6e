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

local function is_auth_failure(text)
  return text:find('"msg":"Auth failure"', 1, true) or text:find('"statusCode":401', 1, true)
end

return {
  title = "API key rotation with *_PREVIOUS, zero 401s",
  tags = { "auth", "rotation", "exclusive" },
  timeout = 300,
  run = function(t, stack)
    local rotation = stack.rotation or {}
    local var = rotation.variable or "API_KEY_ADMIN"
    local keys = stack.keys or {}
    local old = var == "API_KEY_EDITOR" and keys.editor or keys.admin
    t:assert(type(old) == "string" and old ~= "", "the stack file gives no key for %s (stack.keys)", var)
    local new = random_key()
    local names = pulp.replica_names(stack)
    local compose = docker.compose{ files = stack.compose.files, project = stack.compose.project }

    -- Step 1-3 of the playbook: a token minted with the old key, and the
    -- old key working as x-api-key before the cutover.
    local old_token = t:step("mint an editor token with the old key", function()
      return assert(pulp.lb(stack, { key = old }):mint_editor_token{ actor = "rotation-test" })
    end)
    local sanity = pulp.lb(stack, { key = old }):call("GET", "/templates")
    t:assert(sanity and sanity.status == 200, "before the cutover the old key is refused (HTTP %s)",
             sanity and sanity.status or "-")
    -- A token that some replica refuses before any key changed would make
    -- 401s in the window that no rotation caused: say so, not "rotation".
    t:step("the token verifies on every replica before the cutover", function()
      for _, name in ipairs(names) do
        local res, err = pulp.replica(stack, name, { token = old_token }):call("GET", "/templates")
        t:assert(res and res.status == 200,
                 "before any key changed, %s refuses the editor token minted through the LB (%s): tokens do not " ..
                 "verify across replicas (check 3), so no rotation can be free of 401s", name,
                 res and ("HTTP " .. res.status) or tostring(err))
      end
    end)

    -- Recreate one replica with env (nil: the stack's own configuration)
    -- and wait until it is healthy.
    local function recreate(name, env)
      local service = stack.replicas[name].service or name
      assert(compose:up{ services = { service }, no_deps = true, env = env and { [service] = env } or nil })
      local c = assert(docker.container{ service = service })
      local ok, took = c:wait{ state = "healthy", timeout = 90 }
      assert(ok, took)
      return took
    end
    -- ... and until the LB sends it requests again, so that recreating the
    -- next one does not leave the LB with no replica at all.
    local function recreate_in_turn(what, env)
      local seen = {}
      for _, name in ipairs(names) do
        seen[name] = t:step(what .. " " .. name, function()
          local took = recreate(name, env)
          local back = assert(pulp.wait_rejoined(stack, name, rotation.settle))
          return string.format("healthy after %.1f s; %s", took, back)
        end)
      end
      return seen
    end

    -- Once the cutover begins, the replicas end with the stack's own keys
    -- whatever happens: the last step restores them, and this defer does it
    -- when that step was never reached (a failed assertion, an error, Ctrl-C).
    local restored = true
    t:defer(function()
      if not restored then
        for _, name in ipairs(names) do recreate(name, nil) end
      end
    end)

    -- Steps 4-5: the cutover, with the old token in use all along.
    local flow <close> = traffic.start{
      request = { url = stack.lb .. "/templates", headers = { ["x-editor-token"] = old_token }, timeout = 5 },
      rate = 20,
    }
    local cutover = time.now()
    restored = false
    local rollover_env = { [var] = new, [var .. "_PREVIOUS"] = old }
    -- Compose removes a container it recreates, and its logs with it: read
    -- each outgoing container's log of the window before it goes.
    local log_lines, scanned = {}, {}
    local function keep_logs(c, label)
      local lines = assert(c:logs{ since = cutover })
      for _, l in ipairs(lines) do log_lines[#log_lines + 1] = label .. ": " .. l.text end
      scanned[#scanned + 1] = string.format("%s (%s, %d lines)", label, c.id:sub(1, 12), #lines)
    end
    local replicas = {}
    for _, name in ipairs(names) do
      replicas[name] = t:step("cut " .. name .. " over to the new key", function()
        keep_logs(assert(docker.container{ service = stack.replicas[name].service or name }), name .. " before")
        local took = recreate(name, rollover_env)
        local back = assert(pulp.wait_rejoined(stack, name, rotation.settle))
        return string.format("healthy after %.1f s; %s", took, back)
      end)
    end
    local seen = flow:stop()
    t:evidence("restart window (s)", string.format("%.1f", time.now() - cutover))
    t:evidence("replicas", replicas)
    t:evidence("traffic with the old token", { sent = seen.sent, by_status = seen.by_status, by_error = seen.by_error })
    t:expect((seen.by_status[401] or 0) == 0,
             "%d of %d requests with a token minted before the cutover got 401 during the restart window",
             seen.by_status[401] or 0, seen.sent)
    -- Other failures (a 502 while a replica restarts) are the LB's
    -- failover, check 4's property: evidence here, not this check's verdict.
    local other = seen.failures - (seen.by_status[401] or 0)
    if other > 0 then
      local first
      for _, f in ipairs(seen.first_failures) do
        if f.status ~= 401 then first = first or f end
      end
      t:evidence("other failures in the window", string.format("%d of %d (%s; failover is check 4)", other, seen.sent,
                                                                 pulp.describe_failure(first)))
    end
    t:expect(seen.sent > 0, "no traffic went through the LB during the restart window")

    -- Step 6: the replicas' own logs since the cutover, before the
    -- deliberate 401 probes below can add to them.
    t:step("scan the replicas' logs since the cutover", function()
      for _, name in ipairs(names) do
        keep_logs(assert(docker.container{ service = stack.replicas[name].service or name }), name)
      end
    end)
    local offending = {}
    for _, line in ipairs(log_lines) do
      if is_auth_failure(line) then offending[#offending + 1] = line end
    end
    t:evidence("logs scanned", scanned)
    t:evidence("401 / Auth failure lines in the logs", #offending)
    t:expect(#offending == 0, "%d 401/Auth failure lines in the replicas' logs of the restart window; first: %s",
             #offending, offending[1] or "")

    -- Step 7: the four deliberate probes.
    local probes = {
      { "x-api-key: NEW /templates", { key = new }, "GET", "/templates", 200, "the new key is not active" },
      { "x-editor-token: OLD_TOKEN /templates", { token = old_token }, "GET", "/templates", 200,
        "a token minted with the old key no longer verifies through *_PREVIOUS" },
      { "x-api-key: OLD /templates", { key = old }, "GET", "/templates", 401,
        "the previous key is still accepted as x-api-key" },
      { "POST x-api-key: OLD /auth/editor-token", { key = old }, "POST", "/auth/editor-token", 401,
        "the previous key can still mint editor tokens" },
    }
    local matrix = {}
    for _, p in ipairs(probes) do
      local label, auth, method, path, want, meaning = table.unpack(p)
      local res, err = pulp.lb(stack, auth):call(method, path, method == "POST" and { json = { actor = "rotation-test" } } or nil)
      local got = res and res.status or err
      matrix[#matrix + 1] = string.format("%-40s %s (expected %d)", label, tostring(got), want)
      t:expect(got == want, "%s: %s -> %s, expected %d", meaning, label, tostring(got), want)
    end
    t:evidence("probe matrix", matrix)

    -- Step 8: the post-rollover cleanup, once editor sessions minted with
    -- the old key have expired — at once where the stack file allows it.
    if rotation.cleanup then
      t:evidence("post-rollover cleanup", recreate_in_turn("drop the previous key on", { [var] = new, [var .. "_PREVIOUS"] = "" }))
      local res, err = pulp.lb(stack, { token = old_token }):call("GET", "/templates")
      t:expect(res and res.status == 401, "the old token still verifies once the previous key is gone (%s)",
               res and ("HTTP " .. res.status) or tostring(err))
      local fresh, ferr = pulp.lb(stack, { key = new }):mint_editor_token{ actor = "rotation-test" }
      t:expect(fresh, "minting with the new key fails after the rollover: %s", tostring(ferr))
    else
      local ttl = stack.token_ttl_minutes or 480
      t:evidence("post-rollover cleanup", string.format(
        "deferred: due %d min after the cutover (EDITOR_TOKEN_TTL_MINUTES), at %s UTC; set rotation.cleanup = true to run it",
        ttl, os.date("!%Y-%m-%d %H:%M", math.floor(cutover) + ttl * 60)))
    end

    t:evidence("restored", recreate_in_turn("restore the original keys on", nil))
    restored = true
    local back = pulp.lb(stack, { key = old }):call("GET", "/templates")
    t:expect(back and back.status == 200, "after restoring the original keys the old key is refused (HTTP %s)",
             back and back.status or "-")
  end,
}
