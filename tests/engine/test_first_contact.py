"""Traps a new operator falls into (issue 18): each one must end as an
ERROR naming the check's file and line, never as a PASS (or a FAIL) for
the wrong reason.

Trap 1: a context method called with a dot, t.expect(1 == 2, "..."), took
the condition for self and passed."""
import re
import unittest

from halotest import HaloTestCase, run_json

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


if __name__ == "__main__":
    unittest.main()
