-- Check 6: the report's API key rotation playbook, automated, in the
-- playbook's order. A token minted with the old key; the cutover (each
-- replica recreated with the new key and the old one as *_PREVIOUS, one
-- after the other or all together as the report did it); as soon as a
-- recreated replica reports ready, the four probes asked of it directly;
-- requests carrying the old token all along, straight to every replica
-- and through the LB; the replicas' logs of the window; the four probes
-- through the LB; the post-rollover step; the original keys restored.
-- Any 401 for the old token, anywhere in the window, fails the check.
local pulp = require "pulp"
local replicas = require "replicas"
local traffic = require "traffic"
local time = require "time"

local format, concat = string.format, table.concat

local function random_key()
  local hex = {}
  for i = 1, 32 do hex[i] = format("%02x", math.random(0, 255)) end
  return concat(hex)
end

local function is_auth_failure(text)
  return text:find('"msg":"Auth failure"', 1, true) or text:find('"statusCode":401', 1, true)
end

return {
  title = "API key rotation with *_PREVIOUS, zero 401s",
  tags = { "auth", "rotation" },
  exclusive = true,   -- it recreates what every other check uses
  faults = true,      -- so it runs only where the stack file allows faults
  timeout = 300,
  grace = 180,        -- a failed cutover rolls every replica back to its own keys (a rolling update on a swarm)
  run = function(t, stack)
    local rotation = stack.rotation or {}
    local mode = rotation.mode or "rolling"
    t:assert(mode == "rolling" or mode == "together",
             "stack.rotation.mode is '%s': it is \"rolling\" (one replica at a time) or \"together\" (the report's cutover)",
             tostring(mode))
    local var = rotation.variable or "API_KEY_ADMIN"
    local keys = stack.keys or {}
    local old = var == "API_KEY_EDITOR" and keys.editor or keys.admin
    t:assert(type(old) == "string" and old ~= "", "the stack file gives no key for %s (stack.keys)", var)
    local new = t:secret(random_key()) -- a live admin key while the check runs
    local set = replicas.of(stack)
    local names = set:names()
    t:evidence("cutover", mode == "together" and "together: every replica recreated at once (the report's own cutover)"
                          or "rolling: one replica at a time, the next once the LB serves the previous again")

    -- Steps 1-3 of the playbook: a token minted with the old key, and the
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

    -- Step 7's four probes: what each credential must get after the cutover.
    local probes = {
      { label = "x-api-key: NEW /templates", auth = { key = new }, method = "GET", path = "/templates", want = 200,
        meaning = "the new key is not active" },
      { label = "x-editor-token: OLD_TOKEN /templates", auth = { token = old_token }, method = "GET",
        path = "/templates", want = 200, meaning = "a token minted with the old key does not verify through *_PREVIOUS" },
      { label = "x-api-key: OLD /templates", auth = { key = old }, method = "GET", path = "/templates", want = 401,
        meaning = "the previous key is still accepted as x-api-key" },
      { label = "POST x-api-key: OLD /auth/editor-token", auth = { key = old }, method = "POST",
        path = "/auth/editor-token", want = 401, meaning = "the previous key can still mint editor tokens" },
    }
    -- 401s the probes provoked on purpose, per replica: their log lines are
    -- not the window's failures (the playbook scans before probing; probing
    -- at once means counting them out instead).
    local deliberate = {}
    local function the_four_probes(endpoint_of, where, name)
      local rows = {}
      for _, p in ipairs(probes) do
        local opts = p.method == "POST" and { json = { actor = "rotation-test" } } or nil
        -- A 5xx or no answer is availability (check 4's): waited out, noted.
        local res, note = endpoint_of(p.auth):call_settled(p.method, p.path, opts)
        local got = res and res.status or tostring(note)
        if name and p.want == 401 and res and res.status == 401 then deliberate[name] = (deliberate[name] or 0) + 1 end
        rows[#rows + 1] = format("%-40s %s (expected %d)%s", p.label, tostring(got), p.want,
                                 res and note and ("; " .. note) or "")
        t:expect(res and res.status == p.want, "%s: %s %s -> %s, expected %d", p.meaning, p.label, where, got, p.want)
      end
      return rows
    end

    -- Replace the replicas with env (nil: the stack's own configuration),
    -- a group at a time (one replica when rolling, all together): wait
    -- until each reports ready and hand it to `on_ready` at once, then let
    -- the LB take the group back before the next. One line of evidence per
    -- replica.
    local function phase(label, env, hooks)
      local seen = {}
      assert(set:roll{ env = env, mode = mode, each = function(group, replace)
        t:step(label .. " " .. concat(group, " and "), function()
          if hooks and hooks.before then hooks.before(group) end
          local began = time.mono()
          assert(replace())
          for _, name in ipairs(group) do
            assert(pulp.wait_ready(stack, name))
            seen[name] = format("ready %.2f s after the replacement began", time.mono() - began)
            if hooks and hooks.on_ready then seen[name] = seen[name] .. "; " .. hooks.on_ready(name) end
          end
          -- The platform's own view too (its healthcheck polls more slowly):
          -- nothing is disturbed next, nor the check ended, before it agrees.
          for _, name in ipairs(group) do assert(set:replica(name):wait_healthy{ timeout = 90 }) end
          local rejoined = pulp.wait_rejoined(stack, group, rotation.settle)
          for _, name in ipairs(group) do seen[name] = seen[name] .. "; " .. rejoined end
        end)
      end })
      return seen
    end

    -- Once the cutover begins, the replicas end with the stack's own keys
    -- whatever happens: the last step restores them, and this defer does it
    -- when that step was never reached (a failed assertion, an error, Ctrl-C).
    local restored = true
    t:defer(function()
      if not restored then assert(set:restore()) end
    end)

    -- Steps 4-5: the cutover, with the old token in use all along, straight
    -- to every replica and through the LB.
    local function old_token_traffic(base)
      return traffic.start{
        request = { url = base .. "/templates", headers = { ["x-editor-token"] = old_token }, timeout = 5 },
        rate = rotation.rate or 20,
      }
    end
    local targets = { "the LB" }
    local flows = { ["the LB"] = old_token_traffic(stack.lb) }
    for _, name in ipairs(names) do
      targets[#targets + 1] = name
      flows[name] = old_token_traffic(stack.replicas[name].url)
    end
    local cutover, cutover_mono = time.now(), time.mono()
    restored = false
    -- Compose removes a container it recreates, and its logs with it: read
    -- each outgoing replica's log of the window before it goes.
    local log_lines, scanned = {}, {}
    local function keep_logs(name, label)
      local r = set:replica(name)
      local lines = assert(r:logs{ since = cutover })
      for _, l in ipairs(lines) do
        if is_auth_failure(l.text) then log_lines[#log_lines + 1] = { replica = name, label = label, text = l.text } end
      end
      scanned[#scanned + 1] = format("%s (%s, %d lines)", label, r:id(), #lines)
    end
    local right_after_ready = {}
    local cut_over = phase("cut over to the new key:", { [var] = new, [var .. "_PREVIOUS"] = old }, {
      before = function(group)
        for _, name in ipairs(group) do keep_logs(name, name .. " before") end
      end,
      on_ready = function(name)
        right_after_ready[name] = the_four_probes(function(auth) return pulp.replica(stack, name, auth) end,
                                                  "on " .. name .. " right after it reported ready", name)
        return "probed at once"
      end,
    })
    local window = time.now() - cutover
    local traffic_seen = {}
    for _, target in ipairs(targets) do
      local seen = flows[target]:stop()
      local refused = seen.by_status[401] or 0
      local line = format("%d requests, %d got 401", seen.sent, refused)
      local other = seen.failures - refused
      local first401, first_other
      for _, f in ipairs(seen.first_failures) do
        if f.status == 401 then first401 = first401 or f else first_other = first_other or f end
      end
      if other > 0 then
        -- A 502 or a refused connection while a replica restarts is
        -- availability: check 4's property, evidence here.
        line = line .. format("; %d other failures (availability, check 4: %s)", other,
                              pulp.describe_failure(first_other))
      end
      traffic_seen[target] = line
      t:expect(refused == 0, "%d of %d requests with a token minted before the cutover got 401 %s during the restart " ..
               "window (%.1f s after the cutover began)", refused, seen.sent,
               target == "the LB" and "through the LB" or ("straight to " .. target),
               first401 and (seen.origin + first401.at - cutover_mono) or 0)
      t:expect(seen.sent > 0, "no request with the old token reached %s during the restart window", target)
    end
    t:evidence("restart window (s)", format("%.1f", window))
    t:evidence("replicas", cut_over)
    t:evidence("probes right after ready", right_after_ready)
    t:evidence("traffic with the old token", traffic_seen)

    -- Step 6: the replicas' own logs since the cutover, before the
    -- deliberate probes through the LB below add to them.
    t:step("scan the replicas' logs since the cutover", function()
      for _, name in ipairs(names) do keep_logs(name, name) end
    end)
    -- Count out one line per deliberate 401, on the replica that answered
    -- it, minting probes first (no traffic mints, so those lines are surely
    -- the probes').
    local total_deliberate = 0
    for _, n in pairs(deliberate) do total_deliberate = total_deliberate + n end
    local function take(pred)
      for i = #log_lines, 1, -1 do
        local l = log_lines[i]
        if l.label == l.replica and (deliberate[l.replica] or 0) > 0 and pred(l.text) then
          deliberate[l.replica] = deliberate[l.replica] - 1
          table.remove(log_lines, i)
        end
      end
    end
    take(function(text) return text:find("/auth/editor-token", 1, true) end)
    take(function() return true end)
    local unexplained = {}
    for _, l in ipairs(log_lines) do unexplained[#unexplained + 1] = l.label .. ": " .. l.text end
    t:evidence("logs scanned", scanned)
    t:evidence("deliberate 401 probes", total_deliberate)
    t:evidence("401 / Auth failure lines in the logs", #unexplained)
    t:expect(#unexplained == 0, "%d 401/Auth failure lines in the replicas' logs of the restart window beyond the %d " ..
             "deliberate probes; first: %s", #unexplained, total_deliberate, unexplained[1] or "")

    -- Step 7: the four probes through the LB, as the playbook sends them.
    t:evidence("probe matrix", the_four_probes(function(auth) return pulp.lb(stack, auth) end, "through the LB"))

    -- Step 8: the post-rollover cleanup, once editor sessions minted with
    -- the old key have expired — at once where the stack file allows it.
    if rotation.cleanup then
      t:evidence("post-rollover cleanup", phase("drop the previous key on", { [var] = new, [var .. "_PREVIOUS"] = "" }))
      local res, err = pulp.lb(stack, { token = old_token }):call_settled("GET", "/templates")
      t:expect(res and res.status == 401, "the old token still verifies once the previous key is gone (%s)",
               res and ("HTTP " .. res.status) or tostring(err))
      local minted, merr = pulp.lb(stack, { key = new }):call_settled("POST", "/auth/editor-token",
                                                                    { json = { actor = "rotation-test" } })
      t:expect(minted and (minted.status == 200 or minted.status == 201),
               "minting with the new key fails after the rollover (%s)",
               minted and ("HTTP " .. minted.status) or tostring(merr))
    else
      local ttl = stack.token_ttl_minutes or 480
      t:evidence("post-rollover cleanup", format(
        "deferred: due %d min after the cutover (EDITOR_TOKEN_TTL_MINUTES), at %s UTC; set rotation.cleanup = true to run it",
        ttl, os.date("!%Y-%m-%d %H:%M", math.floor(cutover) + ttl * 60)))
    end

    t:evidence("restored", phase("restore the original keys on", nil))
    restored = true
    local back, berr = pulp.lb(stack, { key = old }):call_settled("GET", "/templates")
    t:expect(back and back.status == 200, "after restoring the original keys the old key is refused (%s)",
             back and ("HTTP " .. back.status) or tostring(berr))
  end,
}
