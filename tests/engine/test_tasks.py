"""The event loop and tasks: sleepers run side by side, join and cancel,
a timeout cancels a check's tasks, user coroutines around the scheduler's
yields, clear errors for yields that cannot work, and the time and json
modules.

Fixture: tests/fixtures/tasks (one check per behaviour); a few of the same
behaviours through `halo eval`, the way an operator probes.
"""
import json
import re
import unittest

from halotest import HaloTestCase, fixture, line_of, logs, run, run_json

TASKS = fixture("tasks")


class TaskChecksTest(HaloTestCase):
    """One run of tests/fixtures/tasks."""

    @classmethod
    def setUpClass(cls):
        cls.rep = run_json(["--checks", TASKS, "--grace", "2"])

    def test_200_sleepers_run_together(self):
        c = self.assertCheck(self.rep, 1, "PASS")
        took = c["evidence"]["seconds"]
        print(f"\n  200 tasks x 0.5 s sleep in a check: {took:.3f} s")
        self.assertGreaterEqual(took, 0.5)
        self.assertLess(took, 5, "the sleeps did not run side by side")

    def test_join_values_and_errors(self):
        c = self.assertCheck(self.rep, 2, "PASS")
        self.assertEqual(c["failures"], [])
        self.assertEqual(c["evidence"]["statuses"], ["done", "failed"])

    def test_cancel(self):
        c = self.assertCheck(self.rep, 3, "PASS")
        self.assertEqual(logs(c), ["waited past the cancelled sleep"])

    def test_timeout_cancels_tasks(self):
        c = self.assertCheck(self.rep, 4, "ERROR", r"^timeout: the check exceeded its 1 s limit at .+:\d+ \(in step 'wait'\)$")
        # the defer ran until ~1.6 s, past the task's 1.2 s wake-up
        self.assertIn("defer done", logs(c))
        self.assertFalse([l for l in logs(c) if l.startswith("LATE")], logs(c))
        self.assertTrue(any(re.match(r"cancelled \d+ task", l) for l in logs(c)), logs(c))

    def test_coroutines_around_sleep(self):
        c = self.assertCheck(self.rep, 5, "PASS")
        self.assertEqual(c["evidence"]["wrap"], "1,2,3,end")
        self.assertEqual(c["evidence"]["resume"], [True, 2, True, 20, "dead"])
        self.assertEqual(c["evidence"]["task"], "yr+other")

    def test_yield_at_top_of_task(self):
        n = line_of(f"{TASKS}/6-yield-at-top.lua", "coroutine.yield(\"where")
        self.assertCheck(self.rep, 6, "ERROR", rf"6-yield-at-top\.lua:{n}: attempt to yield from outside a coroutine$")

    def test_sleep_in_sort_comparator(self):
        n = line_of(f"{TASKS}/7-sort-sleeps.lua", "table.sort(list")
        self.assertCheck(self.rep, 7, "ERROR",
                         rf"7-sort-sleeps\.lua:{n}: .*attempt to (wait|yield) across a C-call boundary .*table\.sort comparator")

    def test_unjoined_background_task_error(self):
        n = line_of(f"{TASKS}/8-background-error.lua", "background boom")
        c = self.assertCheck(self.rep, 8, "ERROR",
                             rf"^background task \d+ failed: \S*8-background-error\.lua:{n}: background boom$")
        self.assertIn("body finished", logs(c))

    def test_clocks(self):
        c = self.assertCheck(self.rep, 9, "PASS")
        self.assertGreaterEqual(c["evidence"]["slept"], 0.19)

    def test_json(self):
        c = self.assertCheck(self.rep, 10, "PASS")
        self.assertEqual(json.loads(c["evidence"]["text"]), {"list": [1, 2], "missing": None})
        self.assertTrue(c["evidence"]["err"])

    def test_summary(self):
        self.assertSummary(self.rep, **{"pass": 6, "error": 4, "fail": 0})


class TaskEvalTest(HaloTestCase):
    """The same machinery through `halo eval`."""

    def test_200_sleepers_in_eval(self):
        res = run(["eval", "local t0 = time.mono() local ts = {} "
                           "for i = 1, 200 do ts[i] = task.spawn(function() time.sleep(0.5) return i end) end "
                           "local s = 0 for i = 1, 200 do s = s + ts[i]:join() end "
                           "return s, time.mono() - t0"], timeout=30)
        self.assertExit(res, 0)
        total, took = res.out.split()
        self.assertEqual(int(total), 20100)
        print(f"\n  200 tasks x 0.5 s sleep in eval: {float(took):.3f} s (whole process {res.seconds:.3f} s)")
        self.assertGreaterEqual(float(took), 0.5)
        self.assertLess(float(took), 5)
        self.assertLess(res.seconds, 5)

    def test_join_reraises_in_eval(self):
        res = run(["eval", 'local t = task.spawn(function() error("boom", 0) end) '
                           'local ok, e = pcall(t.join, t) return ok, e'])
        self.assertExit(res, 0)
        self.assertEqual(res.out.split("\n")[:2], ["false", "boom"])

    def test_cancel_in_eval(self):
        res = run(["eval", 'local hits = 0 '
                           'local t = task.spawn(function() time.sleep(0.2) hits = hits + 1 end) '
                           'time.sleep(0.01) local c = t:cancel() time.sleep(0.4) '
                           'return c, hits, t:status()'])
        self.assertExit(res, 0)
        self.assertEqual(res.out.split(), ["true", "0", "cancelled"])

    def test_timeout_in_eval_stops_tasks(self):
        res = run(["eval", "--timeout", "1",
                   'task.spawn(function() time.sleep(1.5) print("LATE") end) time.sleep(10)'])
        self.assertExit(res, 3)
        self.assertNotIn("LATE", res.out)
        self.assertRegex(res.err, r"timeout")
        self.assertLess(res.seconds, 5)

    def test_background_error_in_eval(self):
        res = run(["eval", 'task.spawn(function() error("bg boom") end) time.sleep(0.05) return "done"'])
        self.assertExit(res, 3)
        self.assertEqual(res.out.strip(), "done")
        self.assertRegex(res.err, r"background task \d+ failed: eval:1: bg boom")

    def test_yield_at_top_in_eval(self):
        res = run(["eval", "coroutine.yield(1)"])
        self.assertExit(res, 3)
        self.assertRegex(res.err, r"attempt to yield from outside a coroutine")

    def test_clock_values(self):
        res = run(["eval", "return time.now(), os.time(), time.mono()"])
        self.assertExit(res, 0)
        now, os_time, mono = (float(x) for x in res.out.split())
        self.assertLess(abs(now - os_time), 2)
        self.assertGreater(mono, 0)

    def test_json_null_round_trip_in_eval(self):
        res = run(["eval", "local d = json.decode(json.encode({a = json.null})) "
                           "return d.a == json.null, json.encode({json.null}), json.decode('[1,')"])
        self.assertExit(res, 0)
        lines = res.out.splitlines()
        self.assertEqual(lines[0], "true")
        self.assertEqual(lines[1], "[null]")
        self.assertEqual(lines[2], "nil")
        self.assertTrue(lines[3].strip(), "json.decode of invalid text gives an error message")


if __name__ == "__main__":
    unittest.main()
