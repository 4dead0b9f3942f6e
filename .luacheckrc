-- luacheck configuration for halo's Lua (Debian: apt install lua-check).
-- Run from the repository root: luacheck scripts examples tests
-- (tests/engine/test_luacheck.py does, as e2e.test_luacheck). Editors that
-- run luacheck read this file too; types/ has the annotations
-- lua-language-server reads (docs/writing-checks.md, "Editor support").
std = "lua54"

-- Line length is the author's judgement (reports and messages are quoted
-- whole); unused arguments are a signature the engine fixes: a check's
-- run(t, stack) and requires(stack), a callback's (res, err).
max_line_length = false
unused_args = false
-- a name starting with _ is unused on purpose: a <close> variable kept
-- for its __close
ignore = { "211/_.*" }

-- The modules as globals: eval, exec and the REPL make every module of
-- the module table a global (`halo help modules`), with `stack` (the
-- stack file's table), `show` (print as the REPL does) and `arg`
-- (exec's arguments); the REPL adds `t`. A check file has none of these:
-- it requires what it uses.
local adhoc = { "time", "task", "json", "zlib", "proc", "errors", "http", "sql", "docker", "traffic",
                "eventually", "netfault", "undo", "stack", "show", "arg", "t" }
-- A stack file runs with env(name, default), secret(name), include(file)
-- and stack_dir (engine/check/stack.c).
local stack_file = { "env", "secret", "include", "stack_dir" }

exclude_files = {
  -- deliberately hostile scripts: sandbox escapes, resource abuse
  "tests/hostile/**",
  -- check files broken on purpose: a syntax error, a bytecode file, an
  -- unknown key, a load error (what halo list and halo lint must report)
  "tests/fixtures/bad-files/**",
  -- escape attempts on purpose: tampering with globals and the standard
  -- library, a binary chunk, a leaked global read back by another check
  "tests/fixtures/escapes/**",
  -- fuzzing inputs, mostly not Lua at all
  "fuzz/**",
}

-- scripts run by `halo exec` (tests/lua through ctest's lua.* tests, the
-- reference stack's probe)
files["tests/lua/**"] = { read_globals = adhoc }
files["tests/stack/probe.lua"] = { read_globals = adhoc }
files["bench/**"] = { read_globals = adhoc }

-- stack files, by the names halo lint recognises them by
for _, pattern in ipairs({ "**/stack*.lua", "**/*.stack.lua", "**/stacks/**" }) do
  files[pattern] = { read_globals = stack_file }
end
-- the reference stack on the swarm (it includes stack.lua)
files["tests/stack/swarm.lua"] = { read_globals = stack_file }
