"""`halo repl` driven through a real pseudo-terminal (ptydriver.Pty), the
way an operator types into it: history recalled across sessions, a
multi-line function, Ctrl-C ending a long sleep (and a CPU loop) at once
with the prompt back while background tasks run on, tab completion of
module members and of a response's methods, .save producing a script that
`halo exec` runs to the same results, .tasks/.stop, .run, secrets as ***,
and a container the session paused unpaused on the way out (the real Docker
daemon). Without a terminal: lines from stdin, results on stdout, exit 3
when a line raised.

HTTP goes to tests/servers/edge_server.py on 127.0.0.1; each session has
its own XDG_STATE_HOME, so no test reads another's history.
"""
import os
import signal
import re
import shutil
import subprocess
import tempfile
import textwrap
import time
import unittest

import dockerenv
from halotest import HALO, SOURCE, halo_env
from httptest import EdgeServer
from ptydriver import Pty

PROMPT = r"halo> $"


class ReplTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO} (set HALO_BIN)")
        cls.server = EdgeServer()
        cls.base = cls.server.url("")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="halo-repl-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.state = os.path.join(self.tmp, "state")

    def env(self, extra=None):
        env = halo_env({"XDG_STATE_HOME": self.state, "TERM": "xterm"})
        env.update(extra or {})
        return env

    def repl(self, *args, env=None):
        t = Pty([HALO, "repl"] + list(args), env=self.env(env), cwd=self.tmp)
        self.addCleanup(t.close)
        t.expect(r"REPL.*Ctrl-D to leave")
        t.expect(PROMPT)
        return t

    def line(self, t, text, expect=None, timeout=10):
        """Type a line; wait for what it prints (a pattern) and the next prompt."""
        t.send(text + "\r")
        m = t.expect(expect, timeout=timeout) if expect else None
        t.expect(PROMPT, timeout=timeout)
        return m

    def leave(self, t):
        t.send("\x04")
        self.assertEqual(t.wait(timeout=20), 0, t.output[-2000:])

    def stack_file(self, text):
        path = os.path.join(self.tmp, "stack.lua")
        with open(path, "w") as f:
            f.write(text)
        return path


class Terminal(ReplTestCase):
    def test_expression_prints_without_return(self):
        t = self.repl()
        self.line(t, "6 * 7", r"\n42\n")
        self.line(t, "x = { b = 2, a = { 1, json.null } }")
        self.line(t, "x", r"\{\n  a = \{\n    1,\n    null,\n  \},\n  b = 2,\n\}\n")
        self.line(t, "ring = { name = 'ring' }; ring.self = ring")
        self.line(t, "ring", r'\{\n  name = "ring",\n  self = <cycle>,\n\}\n')
        self.line(t, "error('boom')", r"\[\d+\]:1: boom\n")
        self.line(t, "nosuchfunction()", r"attempt to call a nil value \(global 'nosuchfunction'\)")
        self.leave(t)

    def test_history_recalled_across_sessions(self):
        t = self.repl()
        self.line(t, "answer = 6 * 7")
        self.leave(t)
        history = os.path.join(self.state, "halo", "history")
        self.assertTrue(os.path.exists(history), "no history file under $XDG_STATE_HOME/halo/")
        t = self.repl()
        t.send("\x1b[A")                       # up: the last line of the last session
        t.expect(r"answer = 6 \* 7")
        t.send("\r")
        t.expect(PROMPT)
        self.line(t, "answer + 0", r"\n42\n")
        self.leave(t)

    def test_multi_line_function(self):
        t = self.repl()
        t.send("function twice(a)\r")
        t.expect(r">> $")
        t.send("  local b = a * 2\r")
        t.expect(r">> $")
        t.send("  return b\r")
        t.expect(r">> $")
        t.send("end\r")
        t.expect(PROMPT)
        self.line(t, "twice(21)", r"\n42\n")
        # Ctrl-C drops an unfinished chunk
        t.send("for i = 1, 3 do\r")
        t.expect(r">> $")
        t.send("\x03")
        t.expect(PROMPT)
        self.line(t, "1 + 1", r"\n2\n")
        self.leave(t)

    def test_ctrl_c_stops_the_line_not_the_repl(self):
        t = self.repl()
        self.line(t, "n = 0; bg = task.spawn(function() while true do n = n + 1; time.sleep(0.05) end end)")
        t.send("time.sleep(30)\r")
        time.sleep(0.5)
        started = time.monotonic()
        t.send("\x03")
        t.expect(r"interrupted\n", timeout=3)
        t.expect(PROMPT, timeout=3)
        waited = time.monotonic() - started
        print(f"\n[test_repl] Ctrl-C to prompt during time.sleep(30): {waited:.3f} s", flush=True)
        # a loop that never waits is stopped too, and a pcall cannot keep it
        t.send("while true do pcall(function() while true do end end) end\r")
        time.sleep(0.5)
        t.send("\x03")
        t.expect(r"interrupted\n", timeout=3)
        t.expect(PROMPT, timeout=3)
        # the background task ran on through both
        m = self.line(t, "before = n; time.sleep(0.3); return n - before", r"\n(\d+)\n")
        self.assertGreaterEqual(int(m.group(1)), 3)
        self.line(t, "bg:status()", r'\n"?waiting"?\n|\nwaiting\n')
        self.leave(t)

    def test_completion(self):
        t = self.repl()
        t.send("http.\t\t")
        for member in ("http.client", "http.get", "http.post", "http.request"):   # listed sorted
            t.expect(re.escape(member))
        t.send("\x15")                         # Ctrl-U: clear the line
        t.send("json.enc\t")
        t.expect(r"json\.encode")
        t.send("({1})\r")
        t.expect(r"\[1\]\n")
        t.expect(PROMPT)
        self.line(t, f'res = http.get("{self.base}/ok")')
        t.send("res:\t\t")
        for method in ("res:header", "res:header_values", "res:json"):   # sorted
            t.expect(re.escape(method))
        t.send("\x15")
        t.send("res:js\t")
        t.expect(r"res:json")
        t.send("()\r")
        t.expect(PROMPT)
        # a handle whose methods table is its own metatable, as docker's
        # containers are: Tab offers its methods, not __index or __tostring
        self.line(t, "M = {}; M.__index = M; M.__tostring = function() return 'm' end; "
                     "function M:go() return 1 end; o = setmetatable({}, M)")
        t.send("o:\t\t")
        t.expect_not(r"__index|__tostring", 0.7)
        t.expect(r"o:go")
        t.send("\x15")
        t.send(".sa\t")
        t.expect(r"\.save")
        t.send("\x15")
        self.leave(t)

    def test_a_response_prints_as_status_headers_and_body(self):
        t = self.repl()
        t.send(f'http.get("{self.base}/echo")\r')
        t.expect(r"HTTP 200 +\([\d.]+ s, GET " + re.escape(self.base) + r"/echo\)\n")
        t.expect(r"content-type: application/json")
        t.expect(r'\n\{\n  "body": "",\n')       # the JSON body, indented, keys sorted
        t.expect(PROMPT)
        self.leave(t)

    def test_tasks_and_stop(self):
        t = self.repl()
        self.line(t, "ticker = task.spawn(function() while true do time.sleep(0.1) end end)")
        m = self.line(t, ".tasks", r"\n +(\d+) +waiting +function at \[\d+\]:1\n")
        tid = m.group(1)
        self.line(t, f".stop {tid}", rf"task {tid} stopped\n")
        self.line(t, ".tasks", r"no tasks running\n")
        self.line(t, ".stop 999", r"no task 999 running\n")
        self.leave(t)

    def test_time(self):
        t = self.repl()
        m = self.line(t, ".time time.sleep(0.2)", r"\(([\d.]+) s\)\n")
        self.assertGreaterEqual(float(m.group(1)), 0.19)
        self.line(t, ".time 2 + 2", r"\n4\n\([\d.]+ s\)\n")
        self.leave(t)

    def test_save_gives_a_script_exec_runs_to_the_same_results(self):
        t = self.repl()
        inputs = [
            f'res = http.get("{self.base}/echo")',
            "res.status",
            "local doc = res:json(); return doc.method, doc.path",
            "function shout(s) return s:upper() .. '!' end",
            "shout('ha')",
            "local hidden = 1",
            "hidden",                         # a local of another line: nil, as in the REPL
            "{ 3, 2, 1 }",
        ]
        shown = []
        for text in inputs:
            t.send(text + "\r")
            t.expect(re.escape(text) + r"\n")
            m = t.expect(r"(?s)(.*?)halo> $")
            shown.append(m.group(1))
        self.line(t, "error('not saved')", r"not saved")
        path = os.path.join(self.tmp, "probe.lua")
        self.line(t, f".save {path}", rf"{len(inputs)} inputs saved to {re.escape(path)}\n")
        self.leave(t)
        p = subprocess.run([HALO, "exec", path], capture_output=True, text=True, env=self.env(), timeout=30,
                           cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(path) as f:
            script = f.read()
        self.assertEqual(p.stdout, "".join(shown), script)
        self.assertIn("GET\t/echo\n", p.stdout)
        self.assertIn("\nHA!\n", p.stdout)
        self.assertNotIn("not saved", script)

    def test_load(self):
        path = os.path.join(self.tmp, "helpers.lua")
        with open(path, "w") as f:
            f.write("function add(a, b) return a + b end\n")
        t = self.repl()
        self.line(t, f".load {path}")
        self.line(t, "add(40, 2)", r"\n42\n")
        self.line(t, ".load /nonexistent/file.lua", r"/nonexistent/file.lua: No such file or directory\n")
        self.leave(t)

    def test_secrets_show_as_stars(self):
        stack = self.stack_file('return { key = secret("HALO_REPL_TEST_KEY"), '
                                'db = "postgres://app:" .. secret("HALO_REPL_TEST_PW") .. "@127.0.0.1/db" }\n')
        t = self.repl("--stack", stack, env={"HALO_REPL_TEST_KEY": "s3cr3t-key-value",
                                              "HALO_REPL_TEST_PW": "pw-value-1234"})
        self.line(t, "stack.key", r"\n\*\*\*\n")
        self.line(t, "stack", r'key = "\*\*\*"')
        self.line(t, "error(stack.key)", r"\*\*\*")
        self.leave(t)
        self.assertNotIn("s3cr3t-key-value", t.output)
        self.assertNotIn("pw-value-1234", t.output)

    def test_run_and_list_checks(self):
        checks = os.path.join(self.tmp, "checks")
        os.makedirs(checks)
        with open(os.path.join(checks, "01-quick.lua"), "w") as f:
            f.write(textwrap.dedent("""\
                return { title = "A quick check", run = function(t) t:evidence("answer", 42) end }
            """))
        t = self.repl("--checks", checks)
        self.line(t, ".list", r"1 +A quick check")
        self.line(t, ".run 1", r"PASS.*A quick check")
        self.line(t, ".run", r"\.run needs a check id")
        self.leave(t)

    def test_a_run_started_with_dot_run_ends_with_the_repl(self):
        """kill -9 of the REPL (a closed terminal) while `.run` runs a check:
        the run it started sees its lifeline end and stops, its worker too."""
        from halotest import descendants_of, is_alive
        checks = os.path.join(self.tmp, "checks-slow")
        os.makedirs(checks)
        with open(os.path.join(checks, "01-slow.lua"), "w") as f:
            f.write('local time = require "time"\n'
                    'return { title = "A slow check", run = function(t) time.sleep(30) end }\n')
        t = self.repl("--checks", checks)
        t.send(".run 1\r")
        t.expect(r"\[1\] A slow check", timeout=10)  # the tty progress line
        time.sleep(0.3)
        started = {pid: open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19]
                   for pid in descendants_of(t.pid)}
        self.assertGreaterEqual(len(started), 2, "no run and worker under the REPL")
        os.kill(t.pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        def alive():
            return [p for p, st in started.items() if is_alive(p, int(st))]
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(alive(), [], "the run outlived the REPL that started it")

    def test_exit_command_and_t_helpers(self):
        t = self.repl()
        self.line(t, "t:expect(1 == 2, 'one is not %d', 2)", r"expectation failed: one is not 2\n")
        self.line(t, "t:defer(function() print('deferred ran') end)")
        t.send(".exit\r")
        t.expect(r"deferred ran\n")
        self.assertEqual(t.wait(timeout=20), 0)


class Docker(ReplTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        dockerenv.ensure_docker()
        cls.project = dockerenv.Project()
        cls.project.up()

    @classmethod
    def tearDownClass(cls):
        cls.project.down()
        super().tearDownClass()

    def test_paused_container_is_unpaused_on_exit(self):
        stack = self.stack_file(f'return {{ compose = {{ project = "{self.project.name}" }} }}\n')
        t = self.repl("--stack", stack)
        self.line(t, 'web = docker.container{ service = "web" }')
        self.line(t, "web:pause()", r"\ntrue\n")
        self.assertTrue(self.project.inspect("web")["State"]["Paused"])
        t.send("\x04")
        t.expect(r"undoing: unpause \S+")
        self.assertEqual(t.wait(timeout=30), 0, t.output[-2000:])
        state = self.project.inspect("web")["State"]
        self.assertEqual((state["Paused"], state["Running"]), (False, True))


class Piped(unittest.TestCase):
    def run_repl(self, text):
        return subprocess.run([HALO, "repl"], input=text, capture_output=True, text=True, env=halo_env(),
                              timeout=30)

    def test_lines_from_stdin(self):
        p = self.run_repl("1 + 1\nx = 5\nfunction f(a)\n  return a * x\nend\nf(2)\n")
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "2\n10\n", ""))

    def test_a_value_made_secret_prints_as_stars(self):
        """t:secret(v) hides a value the operator made up from then on;
        misuse is an error at the line."""
        p = self.run_repl('k = t:secret("made-up-key-" .. 4711)\nk\nprint("key", k)\nt:secret("abc")\n'
                          't:secret(12345)\n')
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(p.stdout, "***\nkey\t***\n"
                                   "[4]:1: bad argument #1 to 'secret' (halo cannot keep a secret shorter than 4 "
                                   "characters out of its output)\n"
                                   "[5]:1: bad argument #1 to 'secret' (string expected, got number)\n")
        self.assertNotIn("made-up-key-4711", p.stdout + p.stderr)

    def test_an_error_raised_for_the_caller_names_the_line(self):
        """t:assert and error(msg, 2) blame the operator's line, not the
        REPL's own code (an expression line was a tail call)."""
        p = self.run_repl('t:assert(false, "x")\nlocal function f() error("in f", 2) end\nf()\n1, nil, 3\n')
        self.assertEqual(p.stdout, "[1]:1: assertion failed: x\n[3]:1: in f\n1\tnil\t3\n")

    def test_a_local_on_one_line_stays_for_the_next(self):
        """`local x = 1` declares x for the lines after it, as an operator
        expects (each line is its own chunk); a local with an attribute stays
        a real local."""
        p = self.run_repl("local x = 41\nx + 1\nlocal function f(a) return a * 2 end\nf(x)\n"
                          "local a, b = 1, 2\na + b\nlocal c <const> = 5\nc == nil\n")
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "42\n82\n3\ntrue\n", ""))

    def test_a_line_that_raises_makes_the_exit_status_3(self):
        p = self.run_repl("1 + 1\nerror('boom')\n2 + 2\n")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(p.stdout, "2\n[2]:1: boom\n4\n")

    def test_statements_then_an_expression_print_its_value(self):
        """`time.sleep(0.01); flow:stats()` shows the stats, as a bare
        expression would; a `;` inside a function body is left alone."""
        p = self.run_repl("x = 1; x + 41\ntime.sleep(0.01); 'slept'\n"
                          "f = function() local n = 0; n = n + 1; return n end\nf()\n")
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, '42\nslept\n1\n', ""))

    def test_several_values_print_on_one_line(self):
        """As lua.c prints them: tab-separated; a table keeps its lines."""
        p = self.run_repl("return 1, 'a', nil\nshow(6, 7)\n")
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "1\ta\tnil\n6\t7\n", ""))

    def test_background_task_runs_between_lines(self):
        p = self.run_repl("n = 0\nbg = task.spawn(function() while true do n = n + 1; time.sleep(0.01) end end)\n"
                          "time.sleep(0.2)\nn > 5\n")
        self.assertEqual((p.returncode, p.stdout), (0, "true\nstopped 1 background task\n"), p.stderr)


if __name__ == "__main__":
    unittest.main()
