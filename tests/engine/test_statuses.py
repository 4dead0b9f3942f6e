"""Every status from a fixture check, the exit codes they add up to, the
order checks run in, check files that do not load, and the report formats.

Fixtures: tests/fixtures/statuses, requires, ordering, duplicate-ids,
bad-files.
"""
import os
import re
import unittest
import xml.etree.ElementTree as ET

from halotest import HaloTestCase, fixture, line_of, logs, parse_report, run, run_json

STATUSES = fixture("statuses")


def line(name, text):
    """The line of `text` in tests/fixtures/statuses/<name>."""
    return line_of(os.path.join(STATUSES, name), text)


class StatusesTest(HaloTestCase):
    """One run of tests/fixtures/statuses with check 7 deferred."""

    @classmethod
    def setUpClass(cls):
        cls.rep = run_json(["--checks", STATUSES, "--defer", "7"])

    def test_pass(self):
        c = self.assertCheck(self.rep, 1, "PASS")
        self.assertIsNone(c["message"])
        self.assertEqual(c["failures"], [])
        self.assertEqual([(s["name"], s["status"]) for s in c["steps"]], [("add", "PASS")])
        self.assertIsInstance(c["steps"][0]["duration_ms"], (int, float))
        self.assertEqual(c["evidence"], {"sum": 2})
        self.assertIn("checked the sum", logs(c))
        self.assertIn("sum 2 of 1 + 1", logs(c), "t:log formats when its first argument has a %")
        self.assertIn("joined\t1\ttrue\tnil", logs(c), "t:log without a format is print: tab-joined")
        self.assertEqual(c["title"], "Everything holds")
        self.assertGreaterEqual(c["duration_ms"], 0)

    def test_fail_expect_reports_first_failure_and_count(self):
        first = line("2-fail-expect.lua", "first broken thing")
        c = self.assertCheck(self.rep, 2, "FAIL",
                             rf"^\S*2-fail-expect\.lua:{first}: first broken thing: 42 \(and 2 more\)$")
        self.assertEqual(len(c["failures"]), 3, c["failures"])
        self.assertRegex(c["failures"][0], rf"2-fail-expect\.lua:{first}: first broken thing: 42$")
        self.assertRegex(c["failures"][1], rf"2-fail-expect\.lua:{first + 1}: second broken thing$")
        # no message given: a default one, still with file:line
        self.assertRegex(c["failures"][2], rf"2-fail-expect\.lua:{first + 2}: \S")
        # t:expect goes on after a failure
        self.assertIn("went on after the failures", logs(c))

    def test_fail_single_expect_has_no_count(self):
        n = line("8-fail-once.lua", "values differ")
        c = self.assertCheck(self.rep, 8, "FAIL", rf"^\S*8-fail-once\.lua:{n}: values differ: a vs b$")
        self.assertNotIn("more)", c["message"])
        self.assertEqual(len(c["failures"]), 1)

    def test_fail_assert_ends_the_check(self):
        n = line("3-fail-assert.lua", "t:assert(")
        c = self.assertCheck(self.rep, 3, "FAIL", rf"^\S*3-fail-assert\.lua:{n}: the replica is down: api2$")
        self.assertIn("before the assertion", logs(c))
        self.assertNotIn("after the assertion", logs(c))

    def test_error_names_file_and_line(self):
        n = line("4-error.lua", "answer.status")
        c = self.assertCheck(self.rep, 4, "ERROR",
                             rf"^\S*4-error\.lua:{n}: attempt to index a nil value \(local 'answer'\)")
        self.assertEqual([(s["name"], s["status"]) for s in c["steps"]], [("read the answer", "ERROR")])
        # the traceback is in the log, not in the one-line message
        self.assertTrue(any("stack traceback" in text for text in logs(c)), logs(c))
        self.assertNotIn("\n", c["message"])

    # Regression test (fixed engine bug): a script error inside t:step does not name the step. The
    # context pops its step stack before re-raising (engine/check/context.lua,
    # t:step), so worker_run's "%s (in step '%s')" branch for errors never
    # fires and the JSON's current_step is null; a timeout or memory limit in
    # the same step does name it. Repro: `halo run --checks
    # tests/fixtures/statuses 4 --format json` -> message without
    # "(in step 'read the answer')", "current_step": null.
    def test_error_names_the_step(self):
        c = self.assertCheck(self.rep, 4, "ERROR", r"\(in step 'read the answer'\)$")
        self.assertEqual(c.get("current_step"), "read the answer")

    def test_skip_is_na_with_reason(self):
        c = self.assertCheck(self.rep, 5, "N/A", r"^no second replica on this stack$")
        self.assertEqual(c["failures"], [], "t:skip must end the run")

    def test_requires_false_is_na_with_reason(self):
        c = self.assertCheck(self.rep, 6, "N/A", r"^single-tenant stack$")
        self.assertEqual(c["failures"], [], "run was called although requires said no")

    def test_deferred(self):
        c = self.assertCheck(self.rep, 7, "DEFERRED", r"defer")
        self.assertEqual(c["failures"], [], "a deferred check must not run")
        self.assertEqual(c["steps"], [])

    def test_summary_and_exit_code(self):
        self.assertSummary(self.rep, **{"pass": 1, "fail": 3, "error": 1, "na": 2, "deferred": 1})
        self.assertEqual(self.rep["summary"].get("total", 8), 8)
        self.assertFalse(self.rep["interrupted"])
        self.assertExit(self.rep.result, 3)

    def test_json_schema(self):
        self.assertEqual(len(self.rep["checks"]), 8)
        for c in self.rep["checks"]:
            for key in ("id", "title", "status", "duration_ms", "message", "evidence", "steps",
                        "failures", "logs"):
                self.assertIn(key, c, c)
            self.assertIsInstance(c["id"], int, "numeric ids are JSON numbers")
            self.assertIsInstance(c["evidence"], dict)
            for s in c["steps"]:
                self.assertTrue({"name", "duration_ms", "status"} <= set(s), s)
        for key in ("pass", "fail", "error", "na", "deferred"):
            self.assertIsInstance(self.rep["summary"][key], int)

    def test_defer_accepts_a_list_and_repeats(self):
        for args in (["--defer", "7,8"], ["--defer", "7", "--defer", "8"]):
            with self.subTest(args=args):
                rep = run_json(["--checks", STATUSES] + args)
                self.assertCheck(rep, 7, "DEFERRED", r"defer")
                self.assertCheck(rep, 8, "DEFERRED", r"defer")
                self.assertSummary(rep, deferred=2, fail=2)

    def test_defer_unknown_id_is_usage_error(self):
        self.assertUsageError(run(["run", "--checks", STATUSES, "--defer", "99"]), r"99")


class RequiresTest(HaloTestCase):
    """tests/fixtures/requires: what requires can do besides saying no."""

    @classmethod
    def setUpClass(cls):
        cls.rep = run_json(["--checks", fixture("requires"), "--grace", "1"])

    def test_requires_true_runs_the_check(self):
        c = self.assertCheck(self.rep, 1, "PASS")
        self.assertEqual(logs(c), ["ran"])

    def test_requires_error_names_file_and_line(self):
        n = line_of(os.path.join(fixture("requires"), "2-requires-error.lua"), "stack.tenants.count")
        c = self.assertCheck(self.rep, 2, "ERROR",
                             rf"^requires\(\) failed: \S*2-requires-error\.lua:{n}: attempt to index a nil value")
        self.assertNotIn("ran", logs(c))

    # Regression test (fixed engine bug): when requires() raises, the check message carries the whole
    # traceback ("...\nstack traceback:\n\t..."): worker_run formats
    # sched_error_text(t) into it, where an error in run() keeps only the
    # first line and puts the traceback in the log. Repro: `halo run
    # --checks tests/fixtures/requires 2 --format json` -> "message" holds
    # newlines and "stack traceback:".
    def test_requires_error_message_is_one_line(self):
        c = self.rep.check(2)
        self.assertNotIn("\n", c["message"])
        self.assertNotIn("stack traceback", c["message"])

    def test_requires_stopped_at_timeout(self):
        c = self.assertCheck(self.rep, 3, "ERROR", r"^requires\(\) failed: timeout: the check exceeded its 1 s limit")
        self.assertLess(c["duration_ms"], 1000 + 1000 + 2000, c)

    def test_requires_false_without_reason(self):
        self.assertCheck(self.rep, 4, "N/A", r"\S")


class ExitCodeTest(HaloTestCase):
    """Exit status from the statuses fixture, picking checks by id."""

    def test_zero_when_pass_na_deferred(self):
        rep = run_json(["--checks", STATUSES, "1", "5", "6", "7", "--defer", "7"])
        self.assertSummary(rep, **{"pass": 1, "na": 2, "deferred": 1, "fail": 0, "error": 0})
        self.assertExit(rep.result, 0)

    def test_one_when_a_check_failed(self):
        rep = run_json(["--checks", STATUSES, "1", "2", "3"])
        self.assertSummary(rep, **{"pass": 1, "fail": 2, "error": 0})
        self.assertExit(rep.result, 1)

    def test_three_when_a_check_errored_wins_over_fail(self):
        rep = run_json(["--checks", STATUSES, "2", "4"])
        self.assertSummary(rep, fail=1, error=1)
        self.assertExit(rep.result, 3)
        self.assertExit(run(["run", "--checks", STATUSES, "4"]), 3)

    def test_two_for_wrong_usage_and_bad_stack_file(self):
        self.assertUsageError(run(["run", "--checks", STATUSES, "--format", "yaml"]), r"--format")
        stack = self.tmp_path("stack.lua")
        with open(stack, "w") as f:
            f.write("return {\n  url = = 'x',\n}\n")
        res = run(["run", "--checks", STATUSES, "--stack", stack])
        self.assertUsageError(res, re.escape(stack) + r":2:")


class FormatsTest(HaloTestCase):
    """The same run rendered as md, junit, tap and text."""

    ARGS = ["run", "--checks", STATUSES, "--defer", "7"]

    def render(self, fmt):
        res = run(self.ARGS + ["--format", fmt])
        self.assertExit(res, 3)
        return res.out

    def test_md_heading_and_marks(self):
        md = self.render("md")
        lines = md.splitlines()
        heading = next((l for l in lines if "Run " in l), None)
        self.assertIsNotNone(heading, md)
        self.assertRegex(heading, r"Run — \d{4}-\d{2}-\d{2} \(1/8 PASS, .*\)$")
        self.assertRegex(heading, r"3/8 FAIL")
        self.assertRegex(heading, r"1/8 ERROR")
        self.assertRegex(heading, r"1/8 deferred")
        self.assertRegex(heading, r"2/8 N/A")
        body = "\n".join(l.rstrip() for l in lines)
        self.assertRegex(body, r"(?m)^\[✓\] 1\. Everything holds — PASS$")
        self.assertRegex(body, r"(?m)^\[✗\] 2\. Three expectations fail — FAIL$")
        self.assertRegex(body, r"(?m)^\[✗\] 4\. A script error — ERROR$")
        self.assertRegex(body, r"(?m)^\[-\] 7\. Deferred by the operator — DEFERRED$")
        self.assertRegex(body, r"(?m)^\[N/A\] 5\. Skips itself — N/A \(no second replica on this stack\)$")
        self.assertRegex(body, r"(?m)^\[N/A\] 6\. Requires says no — N/A \(single-tenant stack\)$")
        # detail per check from the evidence
        self.assertRegex(body, r"(?m)^\s+sum: 2$")

    def test_junit_parses(self):
        root = ET.fromstring(self.render("junit"))
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        self.assertEqual(len(suites), 1)
        suite = suites[0]
        self.assertEqual(suite.get("tests"), "8")
        self.assertEqual(suite.get("failures"), "3")
        self.assertEqual(suite.get("errors"), "1")
        cases = suite.findall("testcase")
        self.assertEqual(len(cases), 8)
        kinds = {}
        for case in cases:
            kid = next((k.tag for k in case if k.tag in ("failure", "error", "skipped")), "pass")
            kinds[case.get("name").split(".")[0]] = kid
        self.assertEqual(kinds, {"1": "pass", "2": "failure", "3": "failure", "4": "error",
                                 "5": "skipped", "6": "skipped", "7": "skipped", "8": "failure"})
        failure = cases[1].find("failure")
        self.assertRegex(failure.get("message"), r"2-fail-expect\.lua:8: first broken thing")

    def test_tap_parses(self):
        lines = self.render("tap").splitlines()
        self.assertEqual(lines[0], "TAP version 13")
        self.assertEqual(lines[1], "1..8")
        points = [l for l in lines if re.match(r"(not )?ok \d+ ", l)]
        self.assertEqual(len(points), 8, lines)
        self.assertEqual([int(re.match(r"(?:not )?ok (\d+)", p).group(1)) for p in points], list(range(1, 9)))
        by_id = {re.match(r"(?:not )?ok \d+ - (\w+)\.", p).group(1): p for p in points}
        for cid in ("1", "5", "6", "7"):
            self.assertTrue(by_id[cid].startswith("ok "), by_id[cid])
        for cid in ("2", "3", "4", "8"):
            self.assertTrue(by_id[cid].startswith("not ok "), by_id[cid])
        for cid in ("5", "6", "7"):
            self.assertRegex(by_id[cid], r"# SKIP")

    def test_text_table_and_summary(self):
        out = self.render("text")
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^ID\s+STATUS\s+TIME\s+TITLE")
        for cid, status in (("1", "PASS"), ("2", "FAIL"), ("4", "ERROR"), ("5", "N/A"), ("7", "DEFERRED")):
            self.assertTrue(any(re.match(rf"^{cid}\s+{re.escape(status)}\s", l) for l in lines),
                            f"no row for {cid} {status} in:\n{out}")
        self.assertRegex(lines[-1], r"^8 checks: 1 passed, 3 failed, 1 error, 2 N/A, 1 deferred in \d")

    def test_json_to_out_file_matches_stdout_run(self):
        path = self.tmp_path("report.json")
        res = run(self.ARGS + ["--format", "json", "--out", path])
        self.assertExit(res, 3)
        self.assertEqual(res.out, "")
        with open(path) as f:
            rep = parse_report(f.read())
        self.assertSummary(rep, **{"pass": 1, "fail": 3, "error": 1, "na": 2, "deferred": 1})


class OrderingTest(HaloTestCase):
    """tests/fixtures/ordering: numeric ids in numeric order, the id field
    over the file name, named ids after numbered ones."""

    @classmethod
    def setUpClass(cls):
        cls.rep = run_json(["--checks", fixture("ordering")])

    def test_report_order(self):
        self.assertEqual(self.rep.ids(), [2, 7, 10, "alpha", "omega"])
        self.assertSummary(self.rep, **{"pass": 5})
        self.assertExit(self.rep.result, 0)

    def test_run_order(self):
        starts = [float(c["evidence"]["started"]) for c in self.rep["checks"]]
        self.assertEqual(starts, sorted(starts), f"checks did not start in id order: {starts}")

    def test_id_override_and_default_titles(self):
        c = self.rep.check(7)
        self.assertEqual(c["title"], "Overridden id")
        self.assertTrue(c["file"].endswith("1-override.lua"), c["file"])
        self.assertEqual(self.rep.check(2)["title"], "2-y")
        self.assertTrue(self.rep.check("alpha")["file"].endswith("zz-named.lua"))

    def test_list_uses_the_same_order(self):
        rc, out, err = run(["list", "--checks", fixture("ordering")])
        self.assertEqual(rc, 0, err)
        ids = [l.split()[0] for l in out.splitlines()[1:] if l.strip()]
        self.assertEqual(ids, ["2", "7", "10", "alpha", "omega"])


class DuplicateIdsTest(HaloTestCase):
    def test_duplicate_ids_error_naming_the_other_file(self):
        rep = run_json(["--checks", fixture("duplicate-ids")])
        self.assertCheck(rep, 1, "PASS")
        threes = rep.checks_with_id(3)
        self.assertEqual(sorted(c["status"] for c in threes), ["ERROR", "PASS"], threes)
        bad = next(c for c in threes if c["status"] == "ERROR")
        self.assertTrue(bad["file"].endswith("3-second.lua"), bad)
        self.assertRegex(bad["message"], r"duplicate id 3 .*3-first\.lua")
        fours = rep.checks_with_id(4)
        self.assertEqual(sorted(c["status"] for c in fours), ["ERROR", "PASS"], fours)
        bad = next(c for c in fours if c["status"] == "ERROR")
        other = next(c for c in fours if c["status"] == "PASS")
        self.assertRegex(bad["message"], r"duplicate id 4 .*" + re.escape(os.path.basename(other["file"])))
        self.assertExit(rep.result, 3)


class BadFilesTest(HaloTestCase):
    """tests/fixtures/bad-files: each broken file is an ERROR with a clear
    message; the good checks around them still PASS."""

    @classmethod
    def setUpClass(cls):
        cls.rep = run_json(["--checks", fixture("bad-files")], timeout=60)

    def test_good_checks_still_pass(self):
        self.assertCheck(self.rep, 1, "PASS")
        self.assertCheck(self.rep, 9, "PASS")
        self.assertSummary(self.rep, **{"pass": 2, "error": 7})
        self.assertExit(self.rep.result, 3)

    def test_syntax_error(self):
        self.assertCheck(self.rep, 2, "ERROR", r"2-syntax\.lua:4: .*near '='")

    def test_returns_non_table(self):
        self.assertCheck(self.rep, 3, "ERROR", r"3-non-table\.lua: must return a table.*returned string")

    def test_missing_run(self):
        self.assertCheck(self.rep, 4, "ERROR", r"4-no-run\.lua: .*no run function")

    def test_unknown_key(self):
        self.assertCheck(self.rep, 5, "ERROR", r"5-unknown-key\.lua: unknown key 'timout'")

    def test_runtime_error_at_load(self):
        self.assertCheck(self.rep, 6, "ERROR", r"6-load-error\.lua:3: attempt to index a nil value")

    def test_endless_loop_at_load_is_stopped(self):
        for cid, name in ((7, "7-endless-load"), (8, "8-endless-pcall")):
            with self.subTest(check=cid):
                self.assertCheck(self.rep, cid, "ERROR", name + r"\.lua: loading .*(took longer than|within) \d+ s")
        # the probes run side by side and are stopped at about 5 s
        self.assertTookLess(self.rep.result.seconds, 15)

    def test_list_shows_the_broken_files(self):
        rc, out, err = run(["list", "--checks", fixture("bad-files")], timeout=60)
        self.assertEqual(rc, 3, err)
        self.assertRegex(out, r"(?m)^2\s+ERROR: .*2-syntax\.lua:4:")
        self.assertRegex(out, r"(?m)^1\s+Good before the bad ones\s")


if __name__ == "__main__":
    unittest.main()
