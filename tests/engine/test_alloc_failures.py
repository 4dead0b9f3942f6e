"""The allocation-failure sweep: every primitive run with its Nth Lua
allocation failing (HALO_FAIL_ALLOC=N, for N = 1, 2, ... past the last
allocation the script makes, every N up to 600 and every 7th after) ends
with a clean exit — its result (0) or one line saying memory ran out (3) —
never a crash, an abort or a hang; and for a sample of N, valgrind finds no
definite leak and no invalid access.

Primitives: tasks and time, JSON, zlib, the pretty printer, HTTP (an edge server
on 127.0.0.1), SQL (a throwaway PostgreSQL cluster), proc, and the stack
file with its secrets.
"""
import os
import shutil
import subprocess
import tempfile
import unittest
from concurrent.futures import ThreadPoolExecutor

from halotest import HALO, halo_env
from httptest import EdgeServer
from pgcluster import PgCluster

DENSE, STEP, LAST = 600, 7, 4000
VALGRIND_SAMPLES = 4


class AllocationFailureSweep(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="halo-alloc-")
        cls.server = EdgeServer()
        cls.pg = PgCluster()
        cls.stack = os.path.join(cls.tmp, "stack.lua")
        with open(cls.stack, "w") as f:
            f.write('return { key = secret("HALO_SWEEP_KEY"), db = "postgres://u:" .. secret("HALO_SWEEP_PW")'
                    ' .. "@127.0.0.1/x", allow_exec = { "true" } }\n')

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.pg.stop()
        shutil.rmtree(cls.tmp, True)

    def run_eval(self, code, n, valgrind=False):
        env = halo_env({"HALO_FAIL_ALLOC": str(n), "HALO_SWEEP_KEY": "sweep-key-123",
                        "HALO_SWEEP_PW": "sweep-pw-456"})
        if code.startswith("run:"):
            # a whole check run: the runner, its probe and its worker each fail their Nth allocation
            argv = [HALO, "run", "--checks", code[4:], "--stack", self.stack, "--format", "tap"]
        else:
            argv = [HALO, "eval", "--stack", self.stack, "--timeout", "20", code]
        if valgrind:
            argv = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
                    "--error-exitcode=99"] + argv
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60,
                              stdin=subprocess.DEVNULL)

    def sweep(self, code, expect, ok_codes=(0, 3)):
        clean = self.run_eval(code, 0)
        self.assertEqual((clean.returncode, clean.stdout.strip()), (0, expect), clean.stderr)
        outcomes = {"ok": 0, "out of memory": 0}
        tail_ok = swept = 0
        samples = []
        # every N is a process of its own, waiting on nothing timed: a
        # batch of them at a time, one per core, judged in N's order
        ns = []
        n = 0
        while n < LAST:
            n = n + 1 if n < DENSE else n + STEP
            ns.append(n)
        batch = max(2, os.cpu_count() or 1) * 4
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
            for start in range(0, len(ns), batch):
                for n, r in zip(ns[start:start + batch], pool.map(lambda n: self.run_eval(code, n),
                                                                  ns[start:start + batch])):
                    if tail_ok >= 60:
                        break
                    self.judge(r, n, expect, ok_codes, outcomes)
                    swept = n
                    if r.returncode == ok_codes[0]:
                        tail_ok += 1
                    else:
                        tail_ok = 0
                        if len(samples) < VALGRIND_SAMPLES and n % 3 == 0:
                            samples.append(n)
                if tail_ok >= 60:
                    break  # past the script's last allocation: every further N runs clean
        print(f"\n[test_alloc_failures] {code[:50]!r}: swept N up to {swept}: {outcomes}; valgrind at {samples}",
              flush=True)
        self.assertGreater(outcomes["out of memory"], 10, "the sweep never made an allocation fail")
        if shutil.which("valgrind"):
            with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
                for n, r in zip(samples, pool.map(lambda n: self.run_eval(code, n, valgrind=True), samples)):
                    self.assertIn(r.returncode, ok_codes, f"valgrind at HALO_FAIL_ALLOC={n}:\n{r.stderr[-3000:]}")

    def judge(self, r, n, expect, ok_codes, outcomes):
        where = f"HALO_FAIL_ALLOC={n}: rc {r.returncode}\nstdout: {r.stdout[-500:]}\nstderr: {r.stderr[-1500:]}"
        self.assertIn(r.returncode, ok_codes, where)
        self.assertNotIn("unprotected", r.stderr, where)
        if r.returncode == ok_codes[0]:
            outcomes["ok"] += 1
            if r.stdout.strip() != expect:
                # a recovered failure may change what is printed, never into nonsense
                self.assertRegex(r.stderr + r.stdout, r"memory|not enough", where)
        else:
            outcomes["out of memory"] += 1
            self.assertRegex(r.stderr + r.stdout, r"memory", where)
            self.assertLessEqual(len(r.stderr.strip().splitlines()), 6, where)  # a few clear lines, no dump

    def test_tasks_and_time(self):
        self.sweep("local t = task.spawn(function() time.sleep(0.001) return 21 end); return t:join() * 2", "42")

    def test_json(self):
        self.sweep('json.encode(json.decode(\'{"a":[1,2,{"b":null}],"s":"x"}\')).a == nil', "true")

    def test_zlib(self):
        # zlib's own state comes from the same allocator: its refusals are swept too
        self.sweep('#zlib.gunzip(zlib.gzip(string.rep("halo ", 2000))) .. " " .. select(2, zlib.inflate("nope")).kind',
                   "10000 corrupt")

    def test_pretty_printer(self):
        self.sweep("local t = { a = { 1, 2 }, b = 'x' }; t.self = t; show(t); return 1", None or
                   '{\n  a = {\n    1,\n    2,\n  },\n  b = "x",\n  self = <cycle>,\n}\n1')

    def test_http(self):
        self.sweep(f'http.get("{self.server.url("/ok")}").status', "200")

    def test_sql(self):
        self.sweep(f'(function() local db = assert(sql.connect("{self.pg.url()}")); '
                   'local rows = assert(db:query("SELECT 1 AS one")); db:close(); return rows[1].one end)()', "1")

    def test_proc(self):
        self.sweep('proc.run{ argv = { "true" } }.code', "0")

    def test_a_check_run(self):
        d = os.path.join(self.tmp, "checks")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "1-context.lua"), "w") as f:
            f.write('local time = require "time"\n'
                    'return { title = "context", run = function(t)\n'
                    '  t:defer(function() t:log("undone") end)\n'
                    '  local v = t:step("step", function() time.sleep(0.001) return 2 end)\n'
                    '  t:expect(v == 2, "v is %d", v); t:evidence("v", { v = v })\n'
                    'end }\n')
        clean = self.run_eval("run:" + d, 0)
        expect = clean.stdout.strip()
        self.assertIn("ok 1 - 1. context", expect)
        self.sweep("run:" + d, expect, ok_codes=(0, 3, 2))

    def test_stack_file_with_secrets(self):
        self.sweep("stack.key .. ' ' .. stack.db", "*** postgres://u:***@127.0.0.1/x")


if __name__ == "__main__":
    unittest.main()
