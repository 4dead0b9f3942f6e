"""Traps a new operator falls into (issue 18): each one must end as an
ERROR naming the check's file and line, never as a PASS (or a FAIL) for
the wrong reason.

Trap 1: a context method called with a dot, t.expect(1 == 2, "..."), took
the condition for self and passed.
Trap 3: `halo run --stack .../stack.lua` from another directory ran the
built-in checks, which killed and recreated replicas of a live stack with
no confirmation. Faults now need the stack file's allow_faults = true or
--allow-faults, and every run says which checks it runs first."""
import os
import re
import unittest

from halotest import SOURCE, HaloTestCase, run, run_json

# every method of t, called with a dot, with arguments that would make a
# colon call fail, record or raise: none may pass
DOT_CALLS = {
    "expect": 't.expect(1 == 2, "never")',
    "assert": 't.assert(false, "never")',
    "fail": 't.fail("never")',
    "evidence": 't.evidence("k", "v")',
    "log": 't.log("a line")',
    "step": 't.step("name", function() end)',
    "defer": 't.defer(function() end)',
    "skip": 't.skip("why")',
    "elapsed": 't.elapsed()',
}


class DotInsteadOfColon(HaloTestCase):
    def test_every_method_called_with_a_dot_is_an_error_at_its_line(self):
        files = {}
        for i, (name, call) in enumerate(sorted(DOT_CALLS.items()), 1):
            files["%02d-%s.lua" % (i, name)] = (
                'return { title = "%s with a dot", run = function(t)\n'
                '  %s\n'
                'end }\n' % (name, call))
        report = run_json(["--checks", self.checks_dir(files)])
        by_title = {c["title"]: c for c in report["checks"]}
        for name in DOT_CALLS:
            with self.subTest(method=name):
                c = by_title["%s with a dot" % name]
                self.assertEqual(c["status"], "ERROR", c)
                self.assertRegex(c["message"], r"-%s\.lua:2: t\.%s\(\.\.\.\) called with a dot: call it as t:%s\(\.\.\.\)"
                                 % (re.escape(name), re.escape(name), re.escape(name)))
                self.assertEqual(c["evidence"], {} if isinstance(c["evidence"], dict) else [], c["evidence"])

    def test_colon_calls_report_at_the_callers_line_as_before(self):
        d = self.checks_dir({"01-colon.lua": (
            'return { title = "colon", run = function(t)\n'
            '  t:evidence("k", "v")\n'
            '  t:expect(1 == 2, "expected %d", 3)\n'
            'end }\n')})
        c = run_json(["--checks", d])["checks"][0]
        self.assertEqual(c["status"], "FAIL", c)
        self.assertRegex(c["message"], r"01-colon\.lua:3: expected 3$")

    def test_a_method_passed_along_with_its_context_still_works(self):
        d = self.checks_dir({"01-pcall.lua": (
            'return { title = "pcall", run = function(t)\n'
            '  local ok = pcall(t.expect, t, true, "fine")\n'
            '  t:expect(ok, "pcall(t.expect, t, ...) raised")\n'
            'end }\n')})
        c = run_json(["--checks", d])["checks"][0]
        self.assertEqual(c["status"], "PASS", c)


FAULTY = ('return { title = "declares faults", faults = true, run = function(t)\n'
          '  t:log("ran")\n'
          'end }\n')
# takes the project down without declaring it: docker must refuse before
# compose runs (the compose file does not even exist)
UNDECLARED = ('local docker = require "docker"\n'
              'return { title = "undeclared fault", run = function(t, stack)\n'
              '  local p = docker.compose{ files = { "/nonexistent/compose.yml" }, project = "halotest-nofaults" }\n'
              '  p:down()\n'
              'end }\n')


class FaultsOnlyWhereAllowed(HaloTestCase):
    def stack(self, text):
        path = os.path.join(self.checks_dir({}), "stack.lua")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_a_check_that_declares_faults_is_na_unless_allowed(self):
        d = self.checks_dir({"01-faulty.lua": FAULTY})
        plain = self.stack("return { name = \"live\" }\n")
        c = run_json(["--checks", d, "--stack", plain])["checks"][0]
        self.assertEqual(c["status"], "N/A", c)
        self.assertIn("injects faults (faults = true)", c["message"])
        self.assertIn("allow_faults = true", c["message"])
        self.assertIn("--allow-faults", c["message"])
        self.assertEqual(c["logs"], [], "the check ran")
        c = run_json(["--checks", d, "--stack", plain, "--allow-faults"])["checks"][0]
        self.assertEqual(c["status"], "PASS", c)
        allowing = self.stack("return { name = \"test\", allow_faults = true }\n")
        c = run_json(["--checks", d, "--stack", allowing])["checks"][0]
        self.assertEqual(c["status"], "PASS", c)

    def test_an_undeclared_fault_is_refused_where_not_allowed(self):
        d = self.checks_dir({"01-undeclared.lua": UNDECLARED})
        c = run_json(["--checks", d, "--stack", self.stack("return { }\n")])["checks"][0]
        self.assertEqual(c["status"], "ERROR", c)
        self.assertRegex(c["message"], r"01-undeclared\.lua:4: docker: refusing to take down project "
                                       r"halotest-nofaults: this stack does not allow faults")

    def test_list_marks_checks_that_inject_faults(self):
        d = self.checks_dir({"01-faulty.lua": FAULTY, "02-plain.lua": 'return { run = function(t) end }\n'})
        rc, out, err = run(["list", "--checks", d])
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertRegex(next(l for l in lines if "declares faults" in l), r"\bfaults\b")
        self.assertNotRegex(next(l for l in lines if "02-plain" in l or "plain" in l), r"\bfaults\b")

    def test_the_builtin_checks_that_kill_declare_it(self):
        rc, out, err = run(["list", "--checks", os.path.join(SOURCE, "scripts", "checks")])
        self.assertEqual(rc, 0, err)
        marked = {m.group(1) for m in re.finditer(r"(?m)^\s*(\d+)\s.*\bfaults\b", out)}
        self.assertEqual(marked, {"4", "6"}, out)

    def test_every_run_says_which_checks_it_runs_first(self):
        d = self.checks_dir({"01-plain.lua": 'return { run = function(t) end }\n'})
        rc, out, err = run(["run", "--checks", d])
        self.assertEqual(rc, 0, err)
        self.assertEqual(err.splitlines()[0], "halo: 1 check from %s (no stack file)" % os.path.realpath(d))


class TimeoutsSayWhere(HaloTestCase):
    """Item 4: a check stopped by its deadline says where it was."""

    def test_busy_and_waiting_checks_name_their_line(self):
        d = self.checks_dir({
            "01-spin.lua": ('return { title = "spin", timeout = 1, run = function(t)\n'
                            '  local x = 0\n'
                            '  while true do x = x + 1 end\n'
                            'end }\n'),
            "02-sleep.lua": ('local time = require "time"\n'
                             'return { title = "sleep", timeout = 1, run = function(t)\n'
                             '  t:step("waiting", function()\n'
                             '    time.sleep(30)\n'
                             '  end)\n'
                             'end }\n'),
        })
        checks = {c["title"]: c for c in run_json(["--checks", d])["checks"]}
        self.assertEqual(checks["spin"]["status"], "ERROR")
        self.assertRegex(checks["spin"]["message"], r"exceeded its 1 s limit at \S*01-spin\.lua:3$")
        self.assertEqual(checks["sleep"]["status"], "ERROR")
        self.assertRegex(checks["sleep"]["message"],
                         r"exceeded its 1 s limit at \S*02-sleep\.lua:4 \(in step 'waiting'\)$")


class TheTableShowsTheReason(HaloTestCase):
    """Item 7: the text table's MESSAGE is the reason, not a cut path; the
    location stays in the detail block."""

    def test_reason_first_location_in_the_detail(self):
        d = self.checks_dir({"01-fails.lua": ('return { title = "fails", run = function(t)\n'
                                              '  t:expect(1 == 2, "expected %d templates, saw %d", 3, 2)\n'
                                              'end }\n')})
        rc, out, err = run(["run", "--checks", d])
        self.assertEqual(rc, 1, err)
        row = next(l for l in out.splitlines() if l.startswith("1 "))
        self.assertTrue(row.endswith("fails  expected 3 templates, saw 2"), row)
        self.assertIn("01-fails.lua:2: expected 3 templates, saw 2", out)


class NothingSaidTwice(HaloTestCase):
    """Item 13: with stderr not a terminal, a failure or an error is said
    once, as it happens; the line that ends the check does not repeat it."""

    def test_fail_and_error_lines_once(self):
        d = self.checks_dir({
            "01-fails.lua": 'return { title = "fails", run = function(t) t:expect(false, "no luck") end }\n',
            "02-raises.lua": 'return { title = "raises", run = function(t) error("boom") end }\n',
            "03-na.lua": 'return { title = "na", run = function(t) t:skip("not here") end }\n',
        })
        rc, out, err = run(["run", "--checks", d])
        self.assertEqual(err.count("no luck"), 1, err)
        self.assertEqual(err.count("boom"), 1, err)
        self.assertRegex(err, r"(?m)^✗ FAIL\s+\[1\] fails  \d+\.\ds$")
        self.assertRegex(err, r"(?m)^✗ ERROR\s+\[2\] raises  \d+\.\ds$")
        # what was not said before is said at the end
        self.assertRegex(err, r"(?m)^· N/A\s+\[3\] na  \d+\.\ds — not here$")


class BeginnersMistakesSayWhatAndWhere(HaloTestCase):
    """Items 9 and 10: a forgotten `return`, an error raised with a table, a
    function put in evidence: each an ERROR that says what and where."""

    def test_missing_return_is_hinted(self):
        d = self.checks_dir({"01-noreturn.lua": 'local time = require "time"\n'
                                                '{ title = "x", run = function(t) end }\n'})
        c = run_json(["--checks", d])["checks"][0]
        self.assertEqual(c["status"], "ERROR")
        self.assertRegex(c["message"], r"01-noreturn\.lua:1: attempt to call a table value "
                                       r"\(a check file ends with `return \{ \.\.\. \}`: is the `return` missing\?\)$")

    def test_an_error_table_is_shown_with_where_it_was_raised(self):
        d = self.checks_dir({"01-table.lua": 'return { title = "table", run = function(t)\n'
                                             '  error({ code = 42 })\n'
                                             'end }\n'})
        c = run_json(["--checks", d])["checks"][0]
        self.assertEqual(c["status"], "ERROR")
        self.assertRegex(c["message"], r"01-table\.lua:2: error object: \{code = 42\}$")

    def test_evidence_refuses_what_it_cannot_show(self):
        d = self.checks_dir({"01-fn.lua": 'return { title = "fn", run = function(t)\n'
                                          '  t:evidence("handler", print)\n'
                                          'end }\n'})
        c = run_json(["--checks", d])["checks"][0]
        self.assertEqual(c["status"], "ERROR")
        self.assertRegex(c["message"], r"01-fn\.lua:2: bad argument #2 to 'evidence' "
                                       r"\(a string, number, boolean or table, not a function\)$")


class TheMdEntryReadsLikeTheRunbook(HaloTestCase):
    """Item 8: a FAIL is a note, steps show their times, nested evidence has
    its keys in order and numbers a person reads, durations in ms."""

    def test_fail_run_entry(self):
        d = self.checks_dir({"01-f.lua": (
            'return { title = "fails", run = function(t)\n'
            '  t:step("probe", function() end)\n'
            '  t:evidence("stats", { sent = 100, ok = 97, latency = { p99 = 0.2, p50 = 0.0123456789 }, '
            'version = "1.2.30" })\n'
            '  t:expect(false, "3 of 100 failed")\n'
            'end }\n')})
        rc, out, err = run(["run", "--checks", d, "--format", "md"])
        self.assertEqual(rc, 1, err)
        self.assertRegex(out, r"Run time: \d+ ms")
        self.assertRegex(out, r"(?m)^    steps: probe \d+ ms  $")
        self.assertIn('stats: {"latency":{"p50":0.0123,"p99":0.2},"ok":97,"sent":100,"version":"1.2.30"}', out)
        notes = out.split("Notes / anomalies:")[1]
        self.assertNotIn("None.", notes)
        self.assertRegex(notes, r"- \[1\] FAIL: \S*01-f\.lua:4: 3 of 100 failed")

    def test_evidence_keys_are_sorted_in_every_format(self):
        d = self.checks_dir({"01-p.lua": ('return { title = "p", run = function(t)\n'
                                          '  t:evidence("m", { zeta = 1, alpha = 2, mid = { b = 1, a = 2 } })\n'
                                          'end }\n')})
        rc, out, err = run(["run", "--checks", d, "--format", "json"])
        self.assertIn('"m":{"alpha":2,"mid":{"a":2,"b":1},"zeta":1}', out.replace(" ", ""))


class TheDocsRecipeIsAShippedCheck(HaloTestCase):
    """Item 11: the rolling-restart recipe in docs/writing-checks.md is
    examples/checks/05-rolling-restart.lua, word for word, and loads."""

    def test_recipe_and_example_agree(self):
        with open(os.path.join(SOURCE, "docs", "writing-checks.md")) as f:
            docs = f.read()
        recipe = re.search(r"### Recipe: a rolling restart under traffic.*?```lua\n(.*?)```", docs, re.S).group(1)
        with open(os.path.join(SOURCE, "examples", "checks", "05-rolling-restart.lua")) as f:
            example = f.read()
        self.assertTrue(example.endswith(recipe), "the example and the recipe differ")
        rc, out, err = run(["list", "--checks", os.path.join(SOURCE, "examples", "checks")])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^5\s+A rolling restart loses no request\s+180s\s+exclusive,faults$")


if __name__ == "__main__":
    unittest.main()
