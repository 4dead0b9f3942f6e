"""Writing checks: `halo lint` finds every spec problem of check and stack
files without running them, one FILE:LINE line each; `halo new check`
scaffolds a check that lints clean, lists and passes as it is."""
import os
import re
import shutil
import subprocess
import unittest

from halotest import SOURCE, HaloTestCase, line_of, run, write_checks

BAD = """return {
  title = 5,
  timeout = -1,
  tags = { "not a word" },
  colour = "red",
  requires = 3,
  run = "not a function",
}
"""


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class Lint(HaloTestCase):
    def lint(self, *args):
        return run(["lint"] + list(args))

    def test_every_spec_problem_with_its_line(self):
        d = self.checks_dir({"01-bad.lua": BAD})
        path = os.path.join(d, "01-bad.lua")
        rc, out, err = self.lint("--checks", d)
        self.assertEqual(rc, 1, out + err)
        lines = out.splitlines()
        for key, message in [("colour", "unknown key 'colour'"), ("run", "no run function"),
                             ("requires", "requires must be a function"), ("tags", "tags must be words"),
                             ("timeout", "timeout must be a positive number"), ("title", "title must be a string")]:
            want = f"{path}:{line_of(path, key + ' =')}: "
            self.assertTrue(any(l.startswith(want) and message in l for l in lines),
                            f"no {want}...{message} in:\n{out}")
        self.assertEqual(len(lines), 6, out)
        self.assertIn("6 problems", err)

    def test_syntax_and_load_errors_carry_luas_line(self):
        d = self.checks_dir({"01-syntax.lua": "return {\n  run = function( end\n}\n",
                             "02-raises.lua": "local x\nreturn { run = x.y }\n",
                             "03-nothing.lua": "return 42\n",
                             "04-semicolon.lua": "\nerror('one; problem')\n"})
        rc, out, _ = self.lint("--checks", d)
        self.assertEqual(rc, 1)
        self.assertRegex(out, re.escape(os.path.join(d, "01-syntax.lua")) + r":2: .*expected")
        self.assertRegex(out, re.escape(os.path.join(d, "02-raises.lua")) + r":2: attempt to index")
        self.assertRegex(out, re.escape(os.path.join(d, "03-nothing.lua")) + r": must return a table")
        # a script's own message is one problem, whatever it says
        self.assertIn(os.path.join(d, "04-semicolon.lua") + ":2: one; problem\n", out)
        self.assertEqual(len(out.splitlines()), 4, out)

    def test_missing_run_and_duplicate_ids_across_files(self):
        d = self.checks_dir({"01-a.lua": "return { run = function() end }\n",
                             "02-b.lua": "return {\n  title = 'b',\n  id = 1,\n  run = function() end,\n}\n",
                             "03-c.lua": "return { title = 'no run' }\n"})
        rc, out, _ = self.lint("--checks", d)
        self.assertEqual(rc, 1)
        self.assertIn(f"{d}/02-b.lua:3: duplicate id 1 (also used by {d}/01-a.lua)", out)
        self.assertIn(f"{d}/03-c.lua: the check table has no run function", out)

    def test_files_given_and_a_clean_run(self):
        d = self.checks_dir({"01-ok.lua": "return { title = 'ok', tags = { 'a' }, run = function() end }\n",
                             "02-bad.lua": BAD})
        rc, out, _ = self.lint(os.path.join(d, "01-ok.lua"))
        self.assertEqual((rc, out), (0, "halo lint: 1 check file and 0 stack files, no problems\n"))
        rc, out, _ = self.lint(os.path.join(d, "02-bad.lua"), os.path.join(d, "missing.lua"))
        self.assertEqual(rc, 1)
        self.assertIn(f"{d}/missing.lua: No such file or directory", out)

    def test_a_directory_stands_for_its_lua_files(self):
        d = self.checks_dir({"01-ok.lua": "return { title = 'ok', run = function() end }\n",
                             "02-bad.lua": "return {\n  grace = 'long',\n  run = function() end,\n}\n",
                             "notes.txt": "not a check\n"})
        rc, out, err = self.lint(d)
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out, f"{d}/02-bad.lua:2: grace must be a positive number of seconds\n")
        self.assertIn("1 problem in 2 check files", err)
        # a directory without a check in it is a problem, not "no problems"
        empty = self.checks_dir({"notes.txt": "not a check\n"})
        rc, out, err = self.lint(empty)
        self.assertEqual((rc, out), (1, f"{empty}: no check files (*.lua) in this directory\n"), err)

    def test_stack_files(self):
        d = write_checks({"stacks/bad.lua": "return {\n  url = env('X', 'http://a'),\n  x = nope(),\n}\n",
                          "good.lua": "return { url = env('X', 'http://a') }\n",
                          "checks/01-ok.lua": "return { run = function() end }\n"})
        self.addCleanup(__import__("shutil").rmtree, d, True)
        rc, out, _ = self.lint(os.path.join(d, "stacks", "bad.lua"))
        self.assertEqual(rc, 1)
        self.assertRegex(out, "^" + re.escape(os.path.join(d, "stacks", "bad.lua")) + r":3: .*nope")
        rc, out, _ = self.lint("--stack", os.path.join(d, "good.lua"), "--checks", os.path.join(d, "checks"))
        self.assertEqual((rc, out), (0, "halo lint: 1 check file and 1 stack file, no problems\n"))

    def test_usage(self):
        self.assertEqual(self.lint("--tag", "x").rc, 2)
        self.assertIn("halo lint", run(["help", "lint"]).out)
        self.assertIn("lint [FILE|DIR...]", run(["help"]).out)


class NewCheck(HaloTestCase):
    def test_numbering_and_the_scaffold_lints_lists_and_passes(self):
        d = self.checks_dir({"01-a.lua": "return { run = function() end }\n",
                             "07-b.lua": "return { run = function() end }\n",
                             "README.md": "# mine\n", "helper.lua": "return { run = function() end }\n"})
        rc, out, err = run(["new", "check", "lb-latency", "--checks", d])
        self.assertEqual(rc, 0, err)
        path = os.path.join(d, "08-lb-latency.lua")
        self.assertEqual(out, path + "\n")
        text = read(path)
        for part in ("title =", "tags =", "timeout =", "t:step(", "t:expect(", "t:defer(", "docs/writing-checks.md"):
            self.assertIn(part, text)
        rc, out, err = run(["lint", "--checks", d])
        self.assertEqual(rc, 0, out + err)
        rc, out, _ = run(["list", "--checks", d])
        self.assertRegex(out, r"\n8\s+lb latency\s+30s")
        rc, out, err = run(["run", "8", "--checks", d])
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r"8\s+PASS")
        if shutil.which("luacheck"):  # and luacheck with the repository's configuration finds nothing
            r = subprocess.run(["luacheck", "--no-color", "--config", os.path.join(SOURCE, ".luacheckrc"), path],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout)

    def test_first_in_an_empty_directory_and_no_overwrite(self):
        d = self.checks_dir({})
        self.assertEqual(run(["new", "check", "x1", "--checks", d]).out, os.path.join(d, "01-x1.lua") + "\n")
        before = read(os.path.join(d, "01-x1.lua"))
        rc, out, err = run(["new", "check", "x1", "--checks", d])
        self.assertEqual(rc, 2)
        self.assertIn("exists already", err)
        self.assertEqual(sorted(os.listdir(d)), ["01-x1.lua"])
        self.assertEqual(read(os.path.join(d, "01-x1.lua")), before)

    def test_bad_names_and_usage(self):
        d = self.checks_dir({})
        for name in ("has space", "dot.ted", "slash/y", "", "-lead", "ü"):
            rc, _, err = run(["new", "check", "--checks", d, "--", name])
            self.assertEqual(rc, 2, name)
        self.assertEqual(os.listdir(d), [])
        self.assertEqual(run(["new", "thing", "x", "--checks", d]).rc, 2)
        self.assertEqual(run(["new", "check", "--checks", d]).rc, 2)
        self.assertEqual(run(["new", "check", "x", "--checks", d + "/missing/deeper"]).rc, 2)

    def test_where_a_new_check_goes_without_checks(self):
        """A named directory that is missing is made; with no --checks, no
        stack file naming one and no ./scripts/checks, it is ./checks (made),
        never the checks installed with halo (the package's)."""
        d = self.checks_dir({})
        self.assertEqual(run(["new", "check", "x", "--checks", d + "/mine"]).out, d + "/mine/01-x.lua\n")
        shipped = sorted(os.listdir(os.path.join(SOURCE, "scripts", "checks")))
        r = run(["new", "check", "first", "--checks", "checks"], cwd=d)
        self.assertEqual((r.rc, r.out), (0, "checks/01-first.lua\n"), r.err)
        r = run(["new", "check", "second"], cwd=d)
        self.assertEqual((r.rc, r.out), (0, "checks/02-second.lua\n"), r.err)
        self.assertEqual(sorted(os.listdir(os.path.join(SOURCE, "scripts", "checks"))), shipped)
        self.assertEqual(run(["lint", "--checks", "checks"], cwd=d).rc, 0)


if __name__ == "__main__":
    unittest.main()
