"""The command line: usage errors are one line on stderr and exit 2; help
everywhere; version, list, eval, exec; stack files; --out, --tag, ids,
--timeout, --parallel and the exclusive tag.

Fixtures: tests/fixtures/cli-basic, cli-parallel, cli-exclusive,
cli-timeout, statuses; stack files and scripts are one-off temp files.
"""
import re
import unittest

from halotest import HaloTestCase, fixture, logs, parse_report, run, run_json

BASIC = fixture("cli-basic")


def interval(check):
    ev = check["evidence"]
    return float(ev["start"]), float(ev["end"])


def overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]


class UsageErrorTest(HaloTestCase):
    def test_no_arguments(self):
        rc, out, err = run([])
        self.assertEqual(rc, 2)
        self.assertEqual(out, "")
        # the usage text, not a one-liner: the commands are listed
        self.assertRegex(err.splitlines()[0], r"^usage: halo <command>")
        for cmd in ("run", "list", "eval", "exec", "version", "help"):
            self.assertRegex(err, rf"(?m)^\s+{cmd}\b")

    def test_unknown_command(self):
        self.assertUsageError(run(["frobnicate"]), r"unknown command 'frobnicate'")

    def test_unknown_flag(self):
        self.assertUsageError(run(["run", "--checks", BASIC, "--frobnicate"]), r"unknown option --frobnicate")
        self.assertUsageError(run(["list", "--bogus"]), r"unknown option --bogus")
        self.assertUsageError(run(["eval", "--bogus", "1"]), r"unknown option --bogus")

    def test_option_of_another_command(self):
        """An option a command does not take is an error naming the
        commands that do, never silently ignored (it once was: `halo eval
        --parallel 3 --format json --up 'return 1'` exited 0)."""
        for args, pattern in (
                (["eval", "--parallel", "3", "return 1"], r"--parallel is an option of run, not of eval"),
                (["eval", "--format", "json", "return 1"], r"--format is an option of run, not of eval"),
                (["exec", "--up", "x.lua"], r"--up is an option of run, not of exec"),
                (["list", "--format", "tap"], r"--format is an option of run, not of list"),
                (["list", "--history", "x"], r"--history is an option of run, not of list"),
                (["repl", "--timeout", "3"], r"--timeout is an option of run, eval, exec, not of repl"),
                (["cleanup", "--stack", "s.lua"], r"--stack is an option of run, list, lint, eval, exec, repl, not of cleanup"),
                (["run", "--checks", BASIC, "--dry-run"], r"--dry-run is an option of cleanup, not of run"),
                (["run", "--checks", BASIC, "--up=yes"], r"--up takes no value")):
            with self.subTest(args=args):
                res = self.assertUsageError(run(args), pattern)
                self.assertIn(f"(see: halo {args[0]} --help)", res)

    def test_help_lists_only_the_commands_options(self):
        """Each command's help comes from the one option table: what it
        takes, and nothing it does not."""
        takes = {
            "run": ["--checks", "--stack", "--tag", "--defer", "--format", "--out", "--report", "--history",
                    "--timeout", "--grace", "--max-mem", "--parallel", "--lib", "--operator", "--up", "--down", "--allow-faults", "--force",
                    "--verbose", "--help"],
            "list": ["--checks", "--stack", "--max-mem", "--lib", "--help"],
            "eval": ["--stack", "--timeout", "--grace", "--max-mem", "--lib", "--verbose", "--help"],
            "repl": ["--checks", "--stack", "--max-mem", "--lib", "--verbose", "--help"],
            "cleanup": ["--dry-run", "--help"],
        }
        every = set(sum(takes.values(), []))
        for cmd, options in takes.items():
            with self.subTest(cmd=cmd):
                rc, out, err = run(["help", cmd])
                self.assertEqual((rc, err), (0, ""))
                shown = set(re.findall(r"(?m)^  (?:-\w, )?(--[\w-]+)", out))
                self.assertEqual(shown, set(options), out)
                self.assertTrue(shown <= every)

    def test_missing_flag_value(self):
        self.assertUsageError(run(["run", "--checks"]), r"--checks needs a value")
        self.assertUsageError(run(["run", "--checks", BASIC, "--format"]), r"--format needs a value")

    def test_bad_timeout(self):
        for value in ("abc", "0", "-1", "5s"):
            with self.subTest(value=value):
                self.assertUsageError(run(["run", "--checks", BASIC, "--timeout", value]),
                                      rf"--timeout .*'{re.escape(value)}'")
        self.assertUsageError(run(["run", "--checks", BASIC, "--timeout=abc"]), r"--timeout")

    def test_bad_format(self):
        self.assertUsageError(run(["run", "--checks", BASIC, "--format", "xml"]), r"--format xml")

    def test_bad_numbers(self):
        self.assertUsageError(run(["run", "--checks", BASIC, "--parallel", "0"]), r"--parallel .*'0'")
        self.assertUsageError(run(["run", "--checks", BASIC, "--max-mem", "lots"]), r"--max-mem .*'lots'")
        self.assertUsageError(run(["run", "--checks", BASIC, "--grace", "never"]), r"--grace .*'never'")

    def test_missing_checks_dir(self):
        self.assertUsageError(run(["run", "--checks", "/nonexistent/halo-checks"]),
                              r"/nonexistent/halo-checks.* not exist")
        self.assertUsageError(run(["list", "--checks", "/nonexistent/halo-checks"]),
                              r"/nonexistent/halo-checks.* not exist")

    def test_missing_stack_file(self):
        self.assertUsageError(run(["run", "--checks", BASIC, "--stack", "/nonexistent/stack.lua"]),
                              r"stack file /nonexistent/stack\.lua does not exist")
        self.assertUsageError(run(["eval", "--stack", "/nonexistent/stack.lua", "1"]),
                              r"/nonexistent/stack\.lua")

    def test_unknown_check_id(self):
        line = self.assertUsageError(run(["run", "--checks", BASIC, "99"]), r"\b99\b")
        self.assertIn("no check", line)

    def test_missing_lib_dir(self):
        self.assertUsageError(run(["run", "--checks", BASIC, "--lib", "/nonexistent/lib"]),
                              r"--lib /nonexistent/lib")

    def test_eval_and_exec_arguments(self):
        self.assertUsageError(run(["eval"]), r"needs the code")
        self.assertUsageError(run(["exec"]), r"needs a script")
        self.assertUsageError(run(["exec", "/nonexistent/probe.lua"]), r"no such script /nonexistent/probe\.lua")
        self.assertUsageError(run(["list", "--checks", BASIC, "extra"]), r"unexpected argument extra")

    def test_help_for_unknown_command(self):
        self.assertUsageError(run(["help", "frobnicate"]), r"frobnicate")

    # Regression test (fixed engine bug): --out into a directory that does not exist is found only
    # after every check has run (they may take minutes and change the
    # target); the report is then lost and the exit status is 3. A wrong
    # --out is a command-line error like a missing --checks directory:
    # expected exit 2 with one line, before any check starts. Repro:
    # `halo run --checks tests/fixtures/cli-basic --out /nonexistent/r.txt`
    # -> runs all three checks, "halo: --out /nonexistent/r.txt: No such
    # file or directory", exit 3.
    def test_out_in_missing_directory(self):
        res = run(["run", "--checks", BASIC, "--out", "/nonexistent/halo-report.txt"])
        self.assertNotIn("start:", res.err, "checks ran before the bad --out was noticed")
        self.assertUsageError(res, r"/nonexistent/halo-report\.txt")


class HelpTest(HaloTestCase):
    def assertHelp(self, args, *mentions):
        rc, out, err = run(args)
        self.assertEqual(rc, 0, f"{args}: {err}")
        self.assertEqual(err, "")
        self.assertRegex(out, r"^usage: halo")
        for m in mentions:
            self.assertIn(m, out)
        return out

    def test_halo_help(self):
        out = self.assertHelp(["help"], "run", "list", "eval", "exec", "version")
        self.assertEqual(run(["--help"]).out, out)

    def test_run_help(self):
        out = self.assertHelp(["run", "--help"], "--checks", "--stack", "--tag", "--defer", "--format",
                              "--out", "--timeout", "--parallel", "exit status")
        self.assertEqual(run(["help", "run"]).out, out)
        self.assertEqual(run(["run", "-h"]).out, out)

    def test_list_help(self):
        self.assertHelp(["list", "--help"], "--checks")

    def test_eval_and_exec_help(self):
        self.assertHelp(["eval", "--help"], "eval", "exec", "--stack", "--timeout")
        self.assertHelp(["exec", "--help"], "exec")

    def test_version(self):
        rc, out, err = run(["version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^halo \d+\.\d+\.\d+\S* \(Lua 5\.4\.\d+\)\n$")


class ListTest(HaloTestCase):
    def test_list(self):
        rc, out, err = run(["list", "--checks", BASIC])
        self.assertEqual(rc, 0, err)
        lines = [l.rstrip() for l in out.splitlines()]
        self.assertRegex(lines[0], r"^ID\s+TITLE\s+TIMEOUT\s+TAGS$")
        self.assertRegex(lines[1], r"^1\s+Alpha check\s+5s\s+db$")
        self.assertRegex(lines[2], r"^2\s+Beta check\s+7s\s+web,slow$")
        self.assertRegex(lines[3], r"^3\s+Gamma check\s+60s$")
        self.assertEqual(len(lines), 4)


class EvalExecTest(HaloTestCase):
    def script(self, source, name="probe.lua"):
        path = self.tmp_path(name)
        with open(path, "w") as f:
            f.write(source)
        return path

    def test_eval_expression(self):
        self.assertEqual(run(["eval", "1+1"])[:2], (0, "2\n"))

    def test_eval_chunk_with_values(self):
        rc, out, err = run(["eval", "local a = 20 return a + 1, 'text', nil, true"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), ["21", "text", "nil", "true"])

    def test_eval_error(self):
        rc, out, err = run(["eval", "error('kaboom')"])
        self.assertEqual(rc, 3)
        self.assertEqual(err.splitlines(), ["halo: eval:1: kaboom"])

    def test_eval_syntax_error(self):
        rc, out, err = run(["eval", "x = = 1"])
        self.assertEqual(rc, 3)
        self.assertRegex(err, r"eval:1: .*near '='")
        self.assertEqual(len(err.splitlines()), 1, err)

    def test_exec_args(self):
        path = self.script("local a, b = ...\nreturn a, b, arg[1], arg[2], #arg, arg[0]\n")
        rc, out, err = run(["exec", path, "first", "second"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), ["first", "second", "first", "second", "2", path])

    def test_exec_flags_after_script_are_args(self):
        path = self.script("return select('#', ...), ...\n")
        rc, out, err = run(["exec", path, "--timeout", "x"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), ["2", "--timeout", "x"])

    def test_exec_error_names_file_and_line(self):
        path = self.script("local x = 1\nlocal y = nil\nreturn y.field\n")
        rc, out, err = run(["exec", path])
        self.assertEqual(rc, 3)
        self.assertRegex(err, re.escape(path) + r":3: attempt to index a nil value")

    def test_eval_sees_the_stack(self):
        stack = self.script("return { url = env('HALO_TEST_URL', 'http://default'), replicas = 2 }\n", "stack.lua")
        rc, out, err = run(["eval", "--stack", stack, "stack.url, stack.replicas"],
                           env={"HALO_TEST_URL": "http://127.0.0.1:9"})
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), ["http://127.0.0.1:9", "2"])


class PrintTest(HaloTestCase):
    """print in a check, t:log without a format, and print in eval show the
    same text: values tab-joined as tostring gives them, a NUL as \\0."""

    WANT = "a\t1\tnil\tx\\0y"

    def test_print_t_log_and_eval_agree(self):
        d = self.checks_dir({"01-print.lua": (
            'return { title = "prints", run = function(t)\n'
            '  print("a", 1, nil, "x\\0y")\n'
            '  t:log("a", 1, nil, "x\\0y")\n'
            '  t:log("formatted %d of %s", 3, "4")\n'
            'end }\n')})
        report = run_json(["--checks", d])
        lines = logs(report["checks"][0])
        self.assertEqual(lines, [self.WANT, self.WANT, "formatted 3 of 4"])
        rc, out, err = run(["eval", 'print("a", 1, nil, "x\\0y")'])
        self.assertEqual((rc, out), (0, self.WANT + "\n"), err)


class StackFileTest(HaloTestCase):
    """A bad stack file: exit 2 and one line naming the file (and line)."""

    def stack(self, source):
        path = self.tmp_path("stack.lua")
        with open(path, "w") as f:
            f.write(source)
        return path

    def both(self, path, pattern):
        for args in (["run", "--checks", BASIC, "--stack", path], ["eval", "--stack", path, "1"]):
            with self.subTest(command=args[0]):
                res = run(args)
                self.assertUsageError(res, pattern)
                self.assertNotIn("start:", res.err)

    def test_syntax_error(self):
        path = self.stack("return {\n  url = 'http://x',\n  replicas = = 2,\n}\n")
        self.both(path, re.escape(path) + r":3: .*near '='")

    def test_returns_non_table(self):
        path = self.stack("local url = 'http://x'\nreturn url\n")
        self.both(path, re.escape(path) + r".*must return a table.*string")

    def test_runtime_error(self):
        path = self.stack("local replicas = nil\nreturn { first = replicas[1] }\n")
        self.both(path, re.escape(path) + r":2: attempt to index a nil value")

    def test_unset_secret(self):
        path = self.stack("return {\n  url = 'http://x',\n  key = secret('HALO_TEST_SURELY_UNSET_SECRET'),\n}\n")
        self.both(path, re.escape(path) + r":3: .*HALO_TEST_SURELY_UNSET_SECRET.*not set")

    def test_good_stack_reaches_checks(self):
        path = self.stack("return { url = env('HALO_TEST_URL', 'http://default') }\n")
        rep = run_json(["--checks", BASIC, "--stack", path, "2"], env={"HALO_TEST_URL": "http://127.0.0.1:8"})
        c = self.assertCheck(rep, 2, "PASS")
        self.assertEqual(c["evidence"]["stack url"], "http://127.0.0.1:8")

    # Regression test (fixed engine bug): with a stack file, the end of the
    # facts script started the checks inside gather_facts, and the run then
    # walked them again from the first: every deferred check (and every
    # ERROR before the run) was reported twice.
    def test_with_a_stack_each_check_is_reported_once(self):
        path = self.stack("return { url = 'http://127.0.0.1:8' }\n")
        res = run(["run", "--checks", BASIC, "--stack", path, "--defer", "1"])
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(len(re.findall(r"(?m)^- DEFERRED +\[1\]", res.err)), 1, res.err)
        for check_id in ("2", "3"):
            self.assertEqual(len(re.findall(rf"(?m)^\[{check_id}\] start:", res.err)), 1, res.err)
            self.assertEqual(len(re.findall(rf"(?m)^. PASS +\[{check_id}\]", res.err)), 1, res.err)


class SelectionAndOutputTest(HaloTestCase):
    def test_out_file(self):
        path = self.tmp_path("report.txt")
        rc, out, err = run(["run", "--checks", BASIC, "--out", path])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "")
        self.assertIn(f"report written to {path}", err)
        with open(path) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^3 checks: 3 passed, 0 failed, 0 errors, 0 N/A, 0 deferred in ")

    def test_out_file_json(self):
        path = self.tmp_path("report.json")
        rc, out, err = run(["run", "--checks", BASIC, "--format", "json", "--out", path])
        self.assertEqual(rc, 0, err)
        with open(path) as f:
            rep = parse_report(f.read())
        self.assertEqual(rep.ids(), [1, 2, 3])

    def test_tag_filter(self):
        self.assertEqual(run_json(["--checks", BASIC, "--tag", "web"]).ids(), [2])
        self.assertEqual(run_json(["--checks", BASIC, "--tag", "db", "--tag", "slow"]).ids(), [1, 2])
        self.assertEqual(run_json(["--checks", BASIC, "--tag", "db,web"]).ids(), [1, 2])

    def test_tag_matching_nothing(self):
        rep = run_json(["--checks", BASIC, "--tag", "nothing-has-this"])
        self.assertEqual(rep.ids(), [])
        self.assertEqual(rep.result.rc, 0)
        self.assertIn("no checks", rep.result.err)

    def test_positional_ids(self):
        rep = run_json(["--checks", BASIC, "3", "1"])
        self.assertEqual(rep.ids(), [1, 3], "selected checks run in id order")
        self.assertEqual([c["evidence"]["ran"] for c in rep["checks"]], ["alpha", "gamma"])

    def test_ids_and_tags_together(self):
        self.assertEqual(run_json(["--checks", BASIC, "1", "2", "--tag", "web"]).ids(), [2])

    def test_timeout_override(self):
        rep = run_json(["--checks", fixture("cli-timeout"), "--timeout", "0.5", "--grace", "1"])
        c = self.assertCheck(rep, 1, "ERROR", r"^timeout: the check exceeded its 0\.5 s limit at .+:\d+ \(in step 'sleep'\)$")
        self.assertLess(c["duration_ms"], 3000)
        self.assertLess(rep.result.seconds, 4)


class ParallelTest(HaloTestCase):
    def test_parallel_runs_checks_together(self):
        rep = run_json(["--checks", fixture("cli-parallel"), "--parallel", "2"])
        self.assertSummary(rep, **{"pass": 2})
        a, b = (interval(c) for c in rep["checks"])
        print(f"\n  --parallel 2, two 1 s sleepers: {rep.result.seconds:.2f} s")
        self.assertTrue(overlap(a, b), f"not concurrent: {a} {b}")
        self.assertLess(rep.result.seconds, 1.9, "total time is not less than the sum")

    def test_default_runs_one_at_a_time(self):
        rep = run_json(["--checks", fixture("cli-parallel")])
        a, b = (interval(c) for c in rep["checks"])
        self.assertFalse(overlap(a, b), f"overlap without --parallel: {a} {b}")
        self.assertGreaterEqual(rep.result.seconds, 2)

    def test_exclusive_runs_alone(self):
        """Check 2 has the tag "exclusive", check 5 says exclusive = true:
        each runs alone; the others run side by side."""
        rep = run_json(["--checks", fixture("cli-exclusive"), "--parallel", "3"])
        self.assertSummary(rep, **{"pass": 5})
        spans = {c["id"]: interval(c) for c in rep["checks"]}
        for alone in (2, 5):
            for other in set(spans) - {alone}:
                self.assertFalse(overlap(spans[alone], spans[other]),
                                 f"exclusive check {alone} {spans[alone]} overlaps check {other} {spans[other]}")
        # the parallelism still holds for the others
        self.assertTrue(overlap(spans[3], spans[4]), f"3 and 4 did not run together: {spans}")


if __name__ == "__main__":
    unittest.main()
