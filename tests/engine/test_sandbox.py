"""Sandbox escape attempts, each in its own check, all in one run.

tests/fixtures/escapes/ holds one check file per attempt. The whole
directory runs once (`halo run --checks tests/fixtures/escapes --format
json`); every attempt must end as ERROR with the message in ESCAPES below,
the plain checks in the same directory must PASS, and halo must exit 3.

Below that: attempts that need their own run or `halo exec`. Tests marked
expectedFailure reproduce engine bugs found while writing these tests
(each says "ENGINE BUG"); they assert the correct behaviour. Tests whose
comment says "Regression test" reproduce bugs found the same way and fixed
since; each comment keeps the reproduction.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \
     python3 -m unittest -v test_sandbox
"""
import os
import unittest

from sandboxtest import by_id, checks_dir, fixture, halo, halo_json, log_texts, peak_rss_kb, script

# The file part of a message: Lua shortens long chunk names ("...escapes/x.lua"),
# so only the file's own name and line are pinned down.
ESC = r"(?:^|[\s/.])"

# id -> (status, regex the message must match). Kept next to the test that
# reads it; one row per file in tests/fixtures/escapes/.
ESCAPES = {
    1: ("ERROR", ESC + r"01-io-open\.lua:5: attempt to index a nil value \(global 'io'\)"),
    2: ("ERROR", ESC + r"02-os-execute\.lua:5: attempt to call a nil value \(field 'execute'\)"),
    3: ("ERROR", ESC + r"03-os-getenv\.lua:5: attempt to call a nil value \(field 'getenv'\)"),
    4: ("ERROR", ESC + r"04-os-remove\.lua:5: attempt to call a nil value \(field 'remove'\)"),
    5: ("ERROR", ESC + r"05-os-exit\.lua:5: attempt to call a nil value \(field 'exit'\)"),
    6: ("ERROR", ESC + r"06-package-loadlib\.lua:5: attempt to index a nil value \(global 'package'\)"),
    7: ("ERROR", r"module 'os' not found: not a host module \(time, task, json\b.*no file '[^']*scripts/lib/os\.lua'"),
    8: ("ERROR", r"module 'cjson' not found: not a host module \(.*no file '[^']*scripts/lib/cjson\.lua'"),
    9: ("ERROR", ESC + r"09-require-dotdot\.lua:5: bad argument #1 to 'require' \(module names are dotted words"),
    10: ("ERROR", ESC + r"10-require-slash\.lua:5: bad argument #1 to 'require' \(module names are dotted words"),
    11: ("ERROR", ESC + r"11-load-bytecode-string\.lua:7: attempt to load a binary chunk \(mode is 't'\)"),
    12: ("ERROR", ESC + r"12-load-mode-b\.lua:5: load: binary chunks are not allowed in halo \(mode 'b'\)"),
    13: ("ERROR", ESC + r"13-string-dump\.lua:5: attempt to call a nil value \(field 'dump'\)"),
    14: ("ERROR", ESC + r"14-dofile\.lua:5: attempt to call a nil value \(global 'dofile'\)"),
    15: ("ERROR", ESC + r"15-loadfile\.lua:5: attempt to call a nil value \(global 'loadfile'\)"),
    16: ("ERROR", ESC + r"16-debug-getinfo\.lua:5: attempt to call a nil value \(field 'getinfo'\)"),
    17: ("ERROR", ESC + r"17-debug-sethook\.lua:5: attempt to call a nil value \(field 'sethook'\)"),
    18: ("ERROR", ESC + r"18-debug-getregistry\.lua:6: attempt to call a nil value \(field 'getregistry'\)"),
    19: ("ERROR", ESC + r"19-debug-upvalueid\.lua:5: attempt to call a nil value \(field 'upvalueid'\)"),
    20: ("ERROR", ESC + r"20-debug-getupvalue\.lua:5: attempt to call a nil value \(field 'getupvalue'\)"),
    21: ("PASS", None),
    22: ("PASS", None),
    23: ("ERROR", ESC + r"23-collectgarbage-stop\.lua:5: collectgarbage\('stop'\) is not allowed"),
    24: ("ERROR", ESC + r"24-collectgarbage-setpause\.lua:5: collectgarbage\('setpause'\) is not allowed"),
    25: ("ERROR", ESC + r"25-load-return-os\.lua:10: attempt to call a nil value \(field 'execute'\)"),
    26: ("PASS", None),
    27: ("PASS", None),
    28: ("ERROR", ESC + r"28-task-metatable\.lua:9: bad argument #1 to 'setmetatable' \(table expected, got halo\.task\)"),
    29: ("ERROR", ESC + r"29-resume-other-task\.lua:14: cannot resume a coroutine that halo is running"),
    30: ("ERROR", ESC + r"30-close-other-task\.lua:12: cannot close a coroutine that halo is running"),
    31: ("ERROR", ESC + r"31-task-wrong-self\.lua:7: bad argument #1 to 'join' \(halo\.task expected, got table\)"),
    32: ("ERROR", ESC + r"32-yield-from-task-root\.lua:6: attempt to yield from outside a coroutine"),
    33: ("ERROR", r"^timeout: the check exceeded its 1 s limit"),
    34: ("ERROR", r"^timeout: the check exceeded its 1 s limit"),
    35: ("PASS", None),
    36: ("ERROR", r"attempt to load a binary chunk \(mode is 't'\)"),
}

# The files escape attempts would touch if they worked.
CANARY = "/tmp/halo-escaped"


class EscapeFixtures(unittest.TestCase):
    """One run of the whole escapes directory, shared by the tests below."""

    @classmethod
    def setUpClass(cls):
        if os.path.exists(CANARY):
            os.remove(CANARY)
        cls.result, cls.report = halo_json(["run", "--checks", fixture("escapes")])
        cls.checks = by_id(cls.report)

    def test_every_file_has_a_row_and_every_row_a_file(self):
        self.assertEqual(sorted(self.checks), sorted(ESCAPES),
                         "the escapes directory and the ESCAPES table disagree")

    def test_each_attempt_ends_with_its_status_and_message(self):
        for cid, (status, pattern) in sorted(ESCAPES.items()):
            with self.subTest(check=cid):
                check = self.checks[cid]
                self.assertEqual(check["status"], status, f"check {cid}: {check['message']}")
                if pattern:
                    self.assertRegex(check["message"] or "", pattern)
                else:
                    self.assertEqual(check["failures"], [], f"check {cid} recorded failures")

    def test_halo_exits_3_with_the_right_summary(self):
        self.assertEqual(self.result.rc, 3, self.result)
        s = self.report["summary"]
        self.assertEqual((s["pass"], s["fail"], s["error"]), (5, 0, len(ESCAPES) - 5), s)

    def test_the_plain_check_in_the_same_directory_passes(self):
        plain = self.checks[35]
        self.assertEqual(plain["status"], "PASS", plain["message"])
        self.assertEqual(plain["failures"], [])

    def test_globals_changed_by_one_check_are_not_seen_by_the_next(self):
        # 26 replaced string.format, table.insert, string.upper and tostring
        # and set a global, and saw its own changes (its expectation held);
        # 27 ran after it in the same run and found everything pristine.
        self.assertEqual(self.checks[26]["status"], "PASS", self.checks[26]["failures"])
        self.assertEqual(self.checks[27]["status"], "PASS", self.checks[27]["failures"])
        order = [c["id"] for c in self.report["checks"]]
        self.assertLess(order.index(26), order.index(27))

    def test_load_of_os_gives_only_the_clock_functions(self):
        self.assertIn("os has: clock,date,difftime,time", log_texts(self.checks[25]))

    def test_a_task_handles_metatable_reads_as_false(self):
        # The check's t:expect(getmetatable(h) == false) held before setmetatable raised.
        self.assertEqual(self.checks[28]["failures"], [])

    def test_timeouts_are_not_swallowed_and_stop_on_time(self):
        for cid in (33, 34):
            with self.subTest(check=cid):
                ms = self.checks[cid]["duration_ms"]
                self.assertGreaterEqual(ms, 900)
                self.assertLess(ms, 3000, f"check {cid} ran {ms} ms past a 1 s timeout")

    def test_no_attempt_touched_the_host(self):
        self.assertFalse(os.path.exists(CANARY), f"{CANARY} exists: os.execute ran")

    def test_bytecode_check_file_is_an_error_not_a_crash(self):
        check = self.checks[36]
        self.assertEqual(check["status"], "ERROR")
        self.assertNotRegex(check["message"], r"crash|signal")

    def test_bytecode_check_file_error_names_the_file(self):
        # Regression test for an engine bug these tests found (fixed since):
        # a check file that is a binary chunk is reported as just
        # "attempt to load a binary chunk (mode is 't')": Lua's message has no
        # chunk name, and worker.c load_spec passes it on as is, so the report
        # does not say which file was refused (issue item 2: "an ERROR naming
        # the file"). Repro: printf '\033Lua' > /tmp/c/01-x.lua;
        # halo run --checks /tmp/c
        self.assertIn("36-bytecode-check-file.lua", self.checks[36]["message"])


class EscapesOutsideChecks(unittest.TestCase):
    """The same sandbox under `halo eval` and `halo exec`."""

    def test_eval_has_the_restricted_surface(self):
        r = halo(["eval", "return type(io), type(package), type(dofile), type(string.dump), "
                          "type(os.execute), type(debug.getinfo), getmetatable('').__index == string"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split(), ["nil"] * 6 + ["true"])

    def test_exec_escape_is_an_error_with_exit_3(self):
        path = script(self, "os.execute('touch " + CANARY + "')\n")
        r = halo(["exec", path])
        self.assertEqual(r.rc, 3, r)
        self.assertRegex(r.err, r"halo: .*script\.lua:1: attempt to call a nil value \(field 'execute'\)")
        self.assertFalse(os.path.exists(CANARY))

    def test_stack_file_cannot_reach_require_load_or_io(self):
        for body, pattern in [("require 'os'", r"global 'require'"),
                              ("load('return 1')", r"global 'load'"),
                              ("io.open('/etc/passwd')", r"global 'io'"),
                              ("os.getenv('HOME')", r"field 'getenv'")]:
            with self.subTest(body=body):
                d = checks_dir(self, {"stack.lua": body + "\nreturn {}\n"})
                r = halo(["eval", "--stack", os.path.join(d, "stack.lua"), "1"])
                self.assertEqual(r.rc, 2, r)
                self.assertRegex(r.err, r"stack file .*stack\.lua:1: attempt to (call|index) a nil value \(" + pattern)

    def test_deadline_cannot_be_swallowed_by_xpcall_handlers(self):
        path = script(self, "while true do xpcall(function() while true do end end, function(e) return e end) end\n")
        r = halo(["exec", "--timeout", "1", path], timeout=10)
        self.assertEqual(r.rc, 3, r)
        self.assertIn("timeout", r.err)
        self.assertLess(r.seconds, 3)

    def test_load_with_one_argument(self):
        # Regression test for an engine bug these tests found (fixed since):
        # sandbox.c sb_load pushes lua_pushvalue(L, 2) after it has
        # pushed the real load, so with one argument index 2 *is* the real load
        # and the call becomes load(chunk, <function>, "t"). Repro:
        #   halo eval 'return load("return 1 + 1")()'
        #   -> halo: bad argument #2 to '?' (string expected, got function)
        r = halo(["eval", 'return load("return 1 + 1")()'])
        self.assertEqual((r.rc, r.out.strip()), (0, "2"), r)

    def test_eval_timeout_covers_a_looping_stack_file(self):
        # Regression test for an engine bug these tests found (fixed since):
        # adhoc.c sets the --timeout deadline only after
        # stack_load, and no deadline covers the stack file in eval/exec, so a
        # stack file that loops hangs `halo eval --timeout 1` forever (halo run
        # stops it after 10 s). Repro:
        #   echo 'while true do end' > /tmp/s.lua; halo eval --timeout 1 --stack /tmp/s.lua 1
        d = checks_dir(self, {"stack.lua": "while true do end\n"})
        r = halo(["eval", "--timeout", "1", "--stack", os.path.join(d, "stack.lua"), "1"], timeout=5)
        self.assertIsNotNone(r.rc, "halo eval --timeout 1 was still running after 5 s")
        self.assertNotEqual(r.rc, 0)


class SchedulerEscapes(unittest.TestCase):
    """Waiting where the scheduler cannot suspend (a C-call boundary such as a
    string.gsub callback or a table.sort comparator) raises an error about the
    C-call boundary. That error must leave nothing behind."""

    def test_sleep_across_a_c_boundary_leaves_no_dangling_timer(self):
        # Regression test for an engine bug these tests found (fixed since):
        # (memory safety): time.c time_sleep registers the timer
        # *before* sched_wait refuses to yield, so the timer outlives the
        # error. Its wait record is a userdata on the thread's stack; once it
        # is collected the timer fires into freed memory (ASan:
        # heap-use-after-free in sleep_fire, time.c:18) and sched_wake() is
        # handed a task pointer made of whatever the script put there -- here
        # the digits of a string, so the worker dies of SIGSEGV. A check can
        # do this too ("worker crashed: killed by SIGSEGV"). Repro: this
        # script under `halo exec`.
        path = script(self, r'''
local ok, err = pcall(string.gsub, "x", ".", function() time.sleep(0.1) end)
assert(not ok and err:find("C%-call boundary"), err)
local keep = {}
for i = 1, 20000 do keep[i] = ("A"):rep(16) .. string.format("%07d", i) end
for r = 1, 5 do
  local junk = {}
  for i = 1, 20000 do junk[i] = ("A"):rep(16) .. string.format("%07d", i + r * 100000) end
end
time.sleep(0.3)
print("survived")
''')
        r = halo(["exec", "--timeout", "10", path], timeout=20)
        self.assertEqual((r.rc, r.out.strip()), (0, "survived"), r)

    def test_refused_sleep_zero_does_not_cut_the_next_sleep_short(self):
        # Regression test for an engine bug these tests found (fixed since):
        # time.sleep(0) calls sched_wake(me) before sched_wait
        # refuses to yield, so the task stays queued as ready; its next real
        # wait returns at once. Repro (halo exec): after
        #   pcall(string.gsub, "x", ".", function() time.sleep(0) end)
        # time.sleep(0.5) returns after a few microseconds.
        path = script(self, r'''
pcall(string.gsub, "x", ".", function() time.sleep(0) end)
local t0 = time.mono()
time.sleep(0.5)
local took = time.mono() - t0
assert(took >= 0.45, "time.sleep(0.5) returned after " .. took .. " s")
''')
        r = halo(["exec", "--timeout", "10", path], timeout=20)
        self.assertEqual(r.rc, 0, r)

    def test_refused_sleep_does_not_wake_a_later_sleep(self):
        # Regression test for an engine bug these tests found (fixed since):
        # the orphaned timer of a refused time.sleep(0.1) later
        # wakes the task while it waits on something else: a following
        # time.sleep(1) returns after 0.1 s. (Same root cause as above.)
        path = script(self, r'''
pcall(string.gsub, "x", ".", function() time.sleep(0.1) end)
local t0 = time.mono()
time.sleep(1)
local took = time.mono() - t0
assert(took >= 0.95, "time.sleep(1) returned after " .. took .. " s")
''')
        r = halo(["exec", "--timeout", "10", path], timeout=20)
        self.assertEqual(r.rc, 0, r)

    def test_refused_join_does_not_wake_a_later_sleep(self):
        # Regression test for an engine bug these tests found (fixed since):
        # task_join (now mod/task.c) adds the caller to the target's
        # joiners before sched_wait refuses to yield (here inside a
        # table.sort comparator); when the target ends it wakes the caller
        # in whatever it waits for next. Repro: this script; time.sleep(1)
        # returns after 0.1 s. If the joiner is gone by then, the wake reads
        # a freed task.
        path = script(self, r'''
local target = task.spawn(function() time.sleep(0.1) return 1 end)
local ok, err = pcall(table.sort, {3, 2, 1}, function(a, b) target:join() return a < b end)
assert(not ok and err:find("C%-call boundary"), tostring(err))
local t0 = time.mono()
time.sleep(1)
local took = time.mono() - t0
assert(took >= 0.95, "time.sleep(1) returned after " .. took .. " s")
''')
        r = halo(["exec", "--timeout", "10", path], timeout=20)
        self.assertEqual(r.rc, 0, r)

    def test_error_object_that_cancels_its_own_task_does_not_crash(self):
        # Regression test for an engine bug these tests found (fixed since):
        # finish() (sched.c) describes a failed task's error value
        # with its __tostring before marking the task done; a __tostring that
        # cancels that same task re-enters finish(), which sets t->co = NULL,
        # and the outer finish() then calls busy_set(L, NULL, 0): SIGSEGV
        # (NULL dereference in lua_pushthread). Repro: this script.
        path = script(self, r'''
local victim = task.spawn(function()
  local me = task.current()
  error(setmetatable({}, { __tostring = function() me:cancel() return "boom" end }))
end)
local ok, err = pcall(victim.join, victim)
assert(not ok, "join of a failed task succeeded")
print("joined: " .. tostring(err))
''')
        r = halo(["exec", "--timeout", "10", path], timeout=20)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("joined:", r.out)

    def test_close_handler_that_cancels_its_own_task_does_not_crash(self):
        # Regression test for an engine bug these tests found (fixed since):
        # cancel_on() (sched.c, now sched_cancel) runs the task's to-be-closed
        # variables (lua_resetthread) before marking it done; a __close that
        # cancels the same task re-enters cancel_on(), finishes the task and
        # sets t->co = NULL, and the outer call then resets/uses a dead
        # thread: SIGSEGV. Repro: this script.
        path = script(self, r'''
local b = task.spawn(function()
  local me = task.current()
  local guard <close> = setmetatable({}, { __close = function() me:cancel() end })
  time.sleep(10)
end)
time.sleep(0.01)
b:cancel()
print("status " .. b:status())
''')
        r = halo(["exec", "--timeout", "10", path], timeout=20)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("status cancelled", r.out)


class ReportForgery(unittest.TestCase):
    """A check talks to the runner only through events; it must not be able
    to forge other events or break the report."""

    def test_event_lines_cannot_be_injected_or_the_json_report_broken(self):
        d = checks_dir(self, {
            "01-inject.lua": r'''
return { run = function(t)
  t:log("line\ndone\tPASS\t\n")
  print("p\ndone\tPASS\t\n")
  t:evidence("key\tdone\tPASS\n", "v\ndone\tPASS\t\n")
  t:step("step\ndone\tPASS\t\n", function() end)
  t:log("%0Adone%09PASS%09%0A")
  error("the real error")
end }
''',
            "02-json.lua": r'''
local json = require "json"
return { run = function(t)
  -- a forged json.encode: the host encodes evidence itself, so it has no say
  json.encode = function() return '1},"status":"PASS","x":{"y":2' end
  t:evidence("k", 1)
  t:fail("this check failed")
end }
'''})
        r, report = halo_json(["run", "--checks", d])
        self.assertEqual(r.rc, 3, r)
        a, b = report["checks"]
        self.assertEqual((a["status"], a["message"]), ("ERROR", a["file"] + ":8: the real error"))
        self.assertEqual([log for log in log_texts(a)][:3],
                         ["line\ndone\tPASS\t\n", "p\ndone\tPASS\t\n", "%0Adone%09PASS%09%0A"])
        self.assertEqual(a["evidence"], {"key\tdone\tPASS\n": "v\ndone\tPASS\t\n"})
        self.assertEqual([s["name"] for s in a["steps"]], ["step\ndone\tPASS\t\n"])
        self.assertEqual(b["status"], "FAIL")
        self.assertEqual(b["evidence"], {"k": 1})


class ErrorObjectEscapes(unittest.TestCase):
    """context.lua recognises t:assert's and t:skip's sentinels "by identity,
    so a check cannot fake them" -- but it compares with ==, which runs the
    error object's own __eq metamethod."""

    def test_error_object_with_tostring_is_an_error(self):
        d = checks_dir(self, {"01-obj.lua": r'''
return { run = function(t)
  error(setmetatable({}, { __tostring = function() return "object error" end }))
end }
'''})
        r, report = halo_json(["run", "--checks", d])
        self.assertEqual(r.rc, 3, r)
        # its __tostring, and where it was raised (an object carries no line)
        self.assertEqual(report["checks"][0]["status"], "ERROR")
        self.assertRegex(report["checks"][0]["message"], r"01-obj\.lua:3: object error$")

    def test_error_object_whose_eq_says_true_cannot_pass(self):
        # Regression test for an engine bug these tests found (fixed since):
        # control.classify (and t:step) test err == ENDED; an error
        # object whose __eq returns true is taken for t:assert's sentinel, and
        # with no recorded failure the check that raised is reported PASS
        # (exit 0). Should compare with rawequal. Repro: a check doing
        #   error(setmetatable({}, { __eq = function() return true end }))
        d = checks_dir(self, {"01-fake.lua": r'''
return { run = function(t)
  error(setmetatable({}, { __eq = function() return true end,
                           __tostring = function() return "real error" end }))
end }
'''})
        r, report = halo_json(["run", "--checks", d])
        self.assertEqual(report["checks"][0]["status"], "ERROR", report["checks"][0])
        self.assertEqual(r.rc, 3, r)

    def test_error_object_whose_eq_raises_does_not_crash_the_worker(self):
        # Regression test for an engine bug these tests found (fixed since):
        # worker.c calls control.classify(err) with an unprotected
        # lua_call; an error object whose __eq raises makes that error
        # unprotected, the panic handler aborts the worker ("worker crashed:
        # killed by SIGABRT") and the check's defers never run. (The panic
        # message also goes to stderr unredacted: see test_secrets.) Repro: a
        # check doing error(setmetatable({}, { __eq = function() error("x") end })).
        d = checks_dir(self, {"01-eq.lua": r'''
return { run = function(t)
  t:defer(function() t:log("defer ran") end)
  error(setmetatable({}, { __eq = function() error("eq raised", 0) end }))
end }
'''})
        r, report = halo_json(["run", "--checks", d])
        check = report["checks"][0]
        self.assertEqual(check["status"], "ERROR")
        self.assertNotRegex(check["message"], r"crashed|SIGABRT", check)
        self.assertIn("defer ran", log_texts(check), check)


class MemoryCap(unittest.TestCase):
    def test_baseline_stays_small(self):
        # The measurement itself: an idle halo stays far below the bound used below.
        self.assertLess(peak_rss_kb(["eval", "--max-mem", "16M", "1"]), 48 * 1024)

    def test_json_encode_cannot_allocate_past_the_cap(self):
        # Regression test (fixed engine bug): lua-cjson builds its output in its own malloc'd buffer,
        # outside the sandbox's counting allocator, so the cap only bites when
        # the finished text is copied into Lua. One 1 MiB string referenced
        # 200 times costs 1 MiB of Lua memory and 200 MiB of JSON: with
        # --max-mem 16M the process peaks at ~210 MB (and it scales: 400
        # references, 410 MB) before "memory limit of 16 MiB exceeded".
        # print() in a check (worker.c host_print builds the line with malloc)
        # is the same: print(table.unpack(refs)) with 300 references passed
        # with --max-mem 16M at ~900 MB peak. Repro:
        #   halo eval --max-mem 16M 'local s = ("x"):rep(2^20) local t = {}
        #     for i = 1, 200 do t[i] = s end return pcall(json.encode, t)'
        code = ('local s = ("x"):rep(2^20) local t = {} for i = 1, 200 do t[i] = s end '
                'return pcall(json.encode, t)')
        peak = peak_rss_kb(["eval", "--max-mem", "16M", code])
        self.assertLess(peak, 64 * 1024, f"peak RSS {peak} KiB with a 16 MiB cap")


class FinalizerEscapes(unittest.TestCase):
    def test_finalizer_cannot_hand_the_host_thread_to_the_script(self):
        # Regression test (fixed engine bug): a __gc finalizer runs on whichever thread triggered the
        # collection -- including the host's own main thread while sched.c's
        # finish() allocates for a task that ended -- and there
        # coroutine.running() returns that thread. Nothing marks it busy, so
        # the script can coroutine.close() it (wiping the host's Lua stack:
        # the worker then aborts on an unprotected error, defers never run)
        # or coroutine.resume() it (Lua calls whatever value the host has on
        # top of its stack and leaves the host thread dead). Repro: this
        # check; captured on the first round every time here.
        d = checks_dir(self, {"01-close-host-thread.lua": r'''
local task = require "task"
return { run = function(t)
  t:defer(function() t:log("defer ran") end)
  local main
  local function trap()
    return setmetatable({}, { __gc = function()
      if main == nil and task.current() == nil then main = coroutine.running() end
    end })
  end
  for round = 1, 2000 do
    for i = 1, 20 do trap() end
    local hs = {}
    for i = 1, 20 do hs[i] = task.spawn(function() return {} end) end
    for i = 1, 20 do hs[i]:join() end
    if main then t:log("captured the host thread in round " .. round) break end
  end
  if main then coroutine.close(main) end
  error("this check errored")
end }
'''})
        r, report = halo_json(["run", "--checks", d])
        check = report["checks"][0]
        self.assertEqual(check["status"], "ERROR")
        self.assertNotRegex(check["message"], r"crashed|SIGABRT", check)
        self.assertIn("defer ran", log_texts(check), check)

    def test_gc_finalizers_are_refused_and_defers_run(self):
        # Regression test (fixed engine bug): Lua runs __gc metamethods with
        # hooks disabled, so a finalizer that loops was invisible to the
        # instruction hook and only the hard deadline ended the worker, with
        # no defers run. The sandbox now refuses __gc in setmetatable, with
        # a message saying why, and the check's defers still run.
        d = checks_dir(self, {"01-gc-loop.lua": r'''
return { timeout = 1, run = function(t)
  t:defer(function() t:log("defer ran") end)
  setmetatable({}, { __gc = function() while true do end end })
  local churn = {}
  for i = 1, 1e7 do churn[i % 100] = {} end
end }
'''})
        r, report = halo_json(["run", "--checks", d, "--grace", "1"], timeout=20)
        check = report["checks"][0]
        self.assertEqual(check["status"], "ERROR")
        self.assertIn("defer ran", log_texts(check), check)
        self.assertRegex(check["message"], r"01-gc-loop\.lua:4: setmetatable: __gc finalizers are not allowed")


if __name__ == "__main__":
    unittest.main()
