"""Resource limits: a CPU loop, memory bombs and a worker stuck in C are
stopped within their limits as ERROR, a worker killed by a signal costs
only its own check, the other checks of the run still PASS, and nothing
halo started outlives it.

Fixtures: tests/fixtures/limit-cpu, limit-memory, limit-stuck-c,
worker-crash. Times are limits with generous slack, not benchmarks.
"""
import os
import signal
import unittest

from halotest import HaloTestCase, fixture, logs, parse_report, start


class LimitRun:
    """Mixin: runs one fixture directory once for the class, watching the
    processes halo starts."""

    FIXTURE = None
    ARGS = []

    @classmethod
    def setUpClass(cls):
        h = start(["run", "--checks", fixture(cls.FIXTURE), "--format", "json"] + cls.ARGS)
        try:
            cls.res = h.finish(timeout=120)
            cls.left = h.leftovers()
        finally:
            h.kill()
        cls.rep = parse_report(cls.res.out, cls.res)

    def test_no_process_left_behind(self):
        self.assertEqual(self.left, [], "processes halo started are still running after it exited")


class CpuLoopTest(LimitRun, HaloTestCase):
    FIXTURE = "limit-cpu"
    ARGS = ["--grace", "1"]

    def test_cpu_loop_stopped_at_timeout(self):
        c = self.assertCheck(self.rep, 2, "ERROR", r"^timeout: the check exceeded its 1 s limit at .+:\d+ \(in step 'spin'\)$")
        self.assertGreaterEqual(c["duration_ms"], 900, c)
        self.assertLess(c["duration_ms"], 1000 + 1000 + 2000, c)
        self.assertEqual(logs(c), ["cleanup ran"], "defers run after the timeout")

    def test_other_checks_pass(self):
        self.assertCheck(self.rep, 1, "PASS")
        self.assertCheck(self.rep, 3, "PASS")
        self.assertExit(self.res, 3)

    def test_run_time(self):
        print(f"\n  CPU loop run: {self.res.seconds:.2f} s (timeout 1 s, grace 1 s)")
        self.assertTookLess(self.res.seconds, 1 + 1 + 5)


class MemoryBombTest(LimitRun, HaloTestCase):
    FIXTURE = "limit-memory"
    ARGS = ["--max-mem", "64M", "--grace", "1"]

    # Regression test (fixed engine bug): a memory bomb made of many small tables crashes the worker
    # (SIGABRT) instead of ERROR "memory limit of 64 MiB exceeded". When the
    # task dies of the memory error, sched.c finish() builds the traceback
    # with luaL_traceback on the main state, unprotected, while memory is
    # still full (the dead thread's stack keeps the table alive): Lua panics
    # ("halo: unprotected Lua error: not enough memory") and the worker
    # aborts. Repro: `halo eval --max-mem 64M 'local l={} while true do
    # l[#l+1]={} end'` -> abort, exit 134; or `halo run --checks
    # tests/fixtures/limit-memory 1 --max-mem 64M` -> "worker crashed:
    # killed by SIGABRT (abort)".
    def test_table_growth(self):
        self.assertCheck(self.rep, 1, "ERROR", r"^memory limit of 64 MiB exceeded")

    def test_table_growth_costs_only_its_check(self):
        # whatever the message, the bomb is an ERROR and the run goes on
        c = self.assertCheck(self.rep, 1, "ERROR")
        self.assertLess(c["duration_ms"], 20000, c)

    def test_string_rep_growth(self):
        c = self.assertCheck(self.rep, 2, "ERROR", r"^memory limit of 64 MiB exceeded( at .+:\d+)? \(in step 'grow'\)$")
        self.assertEqual(logs(c), ["cleanup ran"], "defers run after the memory limit")

    def test_concat_growth(self):
        self.assertCheck(self.rep, 3, "ERROR", r"^memory limit of 64 MiB exceeded")

    def test_one_oversized_allocation(self):
        c = self.assertCheck(self.rep, 4, "ERROR", r"memory")
        self.assertNotRegex(c["message"], r"crashed|killed")
        self.assertFalse([l for l in logs(c) if l.startswith("got ")], "the allocation must not succeed")

    def test_other_checks_pass(self):
        self.assertCheck(self.rep, 5, "PASS")
        self.assertSummary(self.rep, **{"pass": 1, "error": 4})

    def test_run_time(self):
        print(f"\n  memory bombs run: {self.res.seconds:.2f} s (--max-mem 64M)")
        self.assertTookLess(self.res.seconds, 30)


class StuckInCTest(LimitRun, HaloTestCase):
    FIXTURE = "limit-stuck-c"
    ARGS = ["--grace", "1"]

    def test_killed_at_hard_deadline(self):
        c = self.assertCheck(self.rep, 2, "ERROR",
                             r"^hard deadline: the worker did not finish within 2 s \(timeout 1 s \+ grace 1 s\)"
                             r" and was killed \(in step 'match'\)$")
        self.assertGreaterEqual(c["duration_ms"], 1900, c)
        self.assertLess(c["duration_ms"], 2000 + 2000, c)

    def test_other_checks_pass(self):
        self.assertCheck(self.rep, 1, "PASS")
        self.assertCheck(self.rep, 3, "PASS")
        self.assertExit(self.res, 3)

    def test_run_time(self):
        print(f"\n  stuck-in-C run: {self.res.seconds:.2f} s (timeout 1 s + grace 1 s)")
        self.assertTookLess(self.res.seconds, 1 + 1 + 5)


class WorkerCrashTest(HaloTestCase):
    """The test kills the worker of check 1 while it sleeps in a step."""

    def crash(self, sig, name):
        h = start(["run", "--checks", fixture("worker-crash"), "--format", "json", "--grace", "1"])
        try:
            h.wait_for_stderr(r"\[1\] step: nap")
            workers = h.workers()
            self.assertEqual(len(workers), 1, f"halo {h.pid} should have one worker: {workers}")
            os.kill(workers[0], sig)
            res = h.finish(timeout=30)
        finally:
            h.kill()
        rep = parse_report(res.out, res)
        self.assertCheck(rep, 1, "ERROR", rf"^worker crashed: killed by {name}.*\(in step 'nap'\)$")
        self.assertCheck(rep, 2, "PASS")
        self.assertExit(res, 3)
        self.assertTookLess(res.seconds, 10)
        self.assertNoLeftovers(h)

    def test_sigkill(self):
        self.crash(signal.SIGKILL, "SIGKILL")

    def test_sigsegv(self):
        self.crash(signal.SIGSEGV, "SIGSEGV")

    def test_sigabrt(self):
        self.crash(signal.SIGABRT, "SIGABRT")


if __name__ == "__main__":
    unittest.main()
