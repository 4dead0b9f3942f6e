"""Secrets from the stack file never appear in any output.

tests/fixtures/secrets/stack.lua reads HALO_TEST_TOKEN and HALO_TEST_DBPASS
with secret() (the second inside a postgres:// URL) and HALO_TEST_PLAIN_URL
with env() (its password is redacted because URL passwords are). The checks
in tests/fixtures/secrets/checks/ push those values into every kind of
output a check has. The test sets the variables to fresh random values with
'/', '+', '=', quotes, '%', '<', '&' and a backslash in them, runs the
directory in every format, with and without -v, to stdout and with --out,
and looks for the values in stdout, stderr and the report file.

A value can be disguised by escaping ('/' as '\\/' in JSON, '&' as '&amp;'
in XML, '"' as '\\"' by %q), so the test looks for the random alphanumeric
runs inside each value, which no escaping changes.

Tests marked expectedFailure reproduce engine bugs (each says "ENGINE BUG")
and assert the correct behaviour; a "Regression test" comment marks a bug
found the same way and fixed since.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \
     python3 -m unittest -v test_secrets
"""
import os
import random
import shutil
import string
import tempfile
import unittest

from sandboxtest import by_id, checks_dir, fixture, halo, halo_json, script

FORMATS = ["text", "json", "junit", "tap", "md"]


def _run(n):
    return "".join(random.SystemRandom().choice(string.ascii_letters + string.digits) for _ in range(n))


def make_secrets():
    """Fresh values for one test class. Each has alphanumeric runs that
    must never show up anywhere, however the value was escaped."""
    frag = {k: [_run(10), _run(8)] for k in ("token", "dbpass", "plain")}
    token = f"Tk/{frag['token'][0]}+\"%<&>'\\{frag['token'][1]}="
    dbpass = f"Db/{frag['dbpass'][0]}+{frag['dbpass'][1]}=="
    plainpw = f"Pw{frag['plain'][0]}+{frag['plain'][1]}="  # no '/': a URL's userinfo cannot hold one
    env = {
        "HALO_TEST_TOKEN": token,
        "HALO_TEST_DBPASS": dbpass,
        "HALO_TEST_PLAIN_URL": f"postgres://u:{plainpw}@host.invalid:5432/db",
    }
    values = {"token": token, "dbpass": dbpass, "plainpw": plainpw}
    fragments = [f for pair in frag.values() for f in pair]
    return env, values, fragments


STACK = os.path.join(fixture("secrets"), "stack.lua")
CHECKS = os.path.join(fixture("secrets"), "checks")

# id -> status of the checks in tests/fixtures/secrets/checks/
STATUSES = {1: "PASS", 2: "PASS", 3: "FAIL", 4: "ERROR", 5: "PASS", 6: "ERROR", 7: "N/A",
            8: "ERROR", 9: "FAIL", 10: "ERROR", 11: "ERROR", 12: "N/A", 13: "FAIL"}


class SecretTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env, cls.values, cls.fragments = make_secrets()

    def assertNoSecret(self, text, where):
        for name, value in self.values.items():
            self.assertNotIn(value, text, f"{where}: the {name} value appears")
        for frag in self.fragments:
            self.assertNotIn(frag, text, f"{where}: part of a secret ({frag}) appears")

    def assertRedacted(self, text, where):
        self.assertNoSecret(text, where)
        self.assertIn("***", text, f"{where}: no *** where the secrets were")


class ReportsInEveryFormat(SecretTestCase):
    def run_format(self, fmt, verbose=False, out=None):
        args = ["run", "--checks", CHECKS, "--stack", STACK, "--format", fmt]
        if verbose:
            args.append("-v")
        if out:
            args += ["--out", out]
        return halo(args, env=self.env)

    def test_stdout_and_stderr_in_every_format_with_and_without_v(self):
        for fmt in FORMATS:
            for verbose in (False, True):
                with self.subTest(format=fmt, verbose=verbose):
                    r = self.run_format(fmt, verbose)
                    self.assertEqual(r.rc, 3, r)
                    where = f"--format {fmt}{' -v' if verbose else ''}"
                    self.assertNoSecret(r.err, where + " stderr")
                    self.assertRedacted(r.out, where + " stdout")
                    # the parts of the URLs that are not secret are still shown
                    self.assertIn("127.0.0.1:5432", r.out, where)
                    if verbose:
                        self.assertIn("***", r.err, where + " stderr (live log lines)")

    def test_out_file_in_every_format(self):
        for fmt in FORMATS:
            for verbose in (False, True):
                with self.subTest(format=fmt, verbose=verbose):
                    d = tempfile.mkdtemp(prefix="halo-secrets-")
                    self.addCleanup(shutil.rmtree, d, True)
                    out = os.path.join(d, "report." + fmt)
                    r = self.run_format(fmt, verbose, out)
                    self.assertEqual(r.rc, 3, r)
                    with open(out, encoding="utf-8") as f:
                        written = f.read()
                    where = f"--format {fmt} --out{' -v' if verbose else ''}"
                    self.assertRedacted(written, where + " file")
                    self.assertNoSecret(r.out, where + " stdout")
                    self.assertNoSecret(r.err, where + " stderr")

    def test_json_report_shows_stars_where_each_secret_was(self):
        r, report = halo_json(["run", "--checks", CHECKS, "--stack", STACK], env=self.env)
        checks = by_id(report)
        self.assertEqual({cid: c["status"] for cid, c in checks.items()}, STATUSES)
        self.assertNoSecret(r.out + r.err, "json")
        msg = {cid: c["message"] or "" for cid, c in checks.items()}
        self.assertRegex(msg[3], r"token \*\*\* was refused by postgres://app:\*\*\*@127\.0\.0\.1:5432/db")
        self.assertRegex(msg[4], r"postgres://app:\*\*\*@127\.0\.0\.1:5432/db with token \*\*\*$")
        self.assertRegex(msg[6], r"refused: \*\*\*")
        self.assertEqual(msg[7], "not applicable to postgres://app:***@127.0.0.1:5432/db / ***")
        self.assertRegex(msg[8], r"cleanup of postgres://u:\*\*\*@host\.invalid:5432/db failed with \*\*\*")
        self.assertRegex(msg[9], r"token \*\*\* rejected")
        self.assertRegex(msg[10], r"10-error-object\.lua:5: object holding \*\*\*$")
        self.assertRegex(msg[11], r"background task \d+ failed: .*background saw postgres://app:\*\*\*@")
        self.assertEqual(msg[12], "needs a stack other than ***")
        self.assertRegex(msg[13], r"replica postgres://u:\*\*\*@host\.invalid:5432/db is down")
        logs = [entry["text"] for entry in checks[1]["logs"]]
        # t:log with several arguments is print: tab-joined
        self.assertEqual(logs, ["token\t***", "connecting to postgres://app:***@127.0.0.1:5432/db now",
                                "replica\tpostgres://u:***@host.invalid:5432/db"])
        ev = checks[5]["evidence"]
        self.assertEqual(ev["token"], "***")
        self.assertEqual(ev["nested"], {"conn": {"url": "postgres://app:***@127.0.0.1:5432/db",
                                                 "list": ["***", "postgres://u:***@host.invalid:5432/db"]}})
        self.assertEqual(ev["keyed"], {"***": "value", "postgres://u:***@host.invalid:5432/db": True})
        self.assertEqual(ev["token as key ***"], 1)
        self.assertEqual(checks[13]["evidence"], {"host part": "host.invalid:5432/db"})
        steps = [s["name"] for s in checks[6]["steps"]]
        self.assertEqual(steps, ["login with ***", "open postgres://app:***@127.0.0.1:5432/db"])

    def test_long_log_line_is_cut_after_redaction(self):
        # Regression test (fixed engine bug): worker.c host_emit cuts a field at FIELD_MAX (256 KiB)
        # *before* worker_emit redacts it, so a secret straddling the cut is
        # no longer whole and its first characters go out in clear. Repro: a
        # check doing t:log(("x"):rep(256*1024 - 12) .. stack.token), run
        # with -v, shows "xxx<first 12 chars of the token>… [cut: ... bytes in all]".
        d = checks_dir(self, {"01-long.lua": r'''
return { run = function(t, stack)
  t:log(("x"):rep(256 * 1024 - 2) .. stack.token .. " tail")
end }
'''})
        r = halo(["run", "--checks", d, "--stack", STACK, "--format", "json", "-v"], env=self.env)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("cut", r.out)
        self.assertNoSecret(r.out + r.err, "long line")
        self.assertNotIn(self.values["token"][:12], r.out + r.err,
                         "the first 12 characters of the token appear")

    def test_hard_deadline_message_names_the_step_redacted(self):
        # The runner kills a worker stuck in C and names its last step; the
        # step name it kept is the redacted one.
        d = checks_dir(self, {"01-stuck.lua": r'''
return { timeout = 1, run = function(t, stack)
  t:step("login with " .. stack.token, function()
    local s = ("a"):rep(30)
    s:find(("a*"):rep(30) .. "b")
  end)
end }
'''})
        r, report = halo_json(["run", "--checks", d, "--stack", STACK, "--grace", "1", "-v"], env=self.env)
        self.assertEqual(r.rc, 3, r)
        check = report["checks"][0]
        self.assertRegex(check["message"], r"^hard deadline: .* \(in step 'login with \*\*\*'\)$")
        self.assertNoSecret(r.out + r.err, "hard deadline")

    def test_host_panic_does_not_print_a_secret(self):
        # Regression test for an engine bug these tests found (fixed since):
        # worker.c calls control.classify(err) with an unprotected
        # lua_call, and classify compares err == ENDED, which runs the error
        # object's own __eq. An __eq that raises makes the error unprotected:
        # sandbox.c panic() writes "halo: unprotected Lua error: <message>" to
        # stderr *unredacted* and aborts the worker (its defers never run).
        # Repro: a check doing
        #   error(setmetatable({}, { __eq = function() error("leak " .. stack.token, 0) end }))
        # prints "halo: unprotected Lua error: leak <the token>" on stderr.
        d = checks_dir(self, {"01-eq.lua": r'''
return { run = function(t, stack)
  error(setmetatable({}, { __eq = function() error("leak " .. stack.token, 0) end }))
end }
'''})
        r = halo(["run", "--checks", d, "--stack", STACK], env=self.env)
        self.assertEqual(r.rc, 3, r)
        self.assertNoSecret(r.out + r.err, "panic")


ECHO_CHECK = """
local http, json = require "http", require "json"
return { title = "a server echoes the key back", run = function(t, stack)
  local res = assert(http.request{ method = "POST", url = BASE .. "/echo", query = { key = stack.token },
                                   headers = { ["x-api-key"] = stack.token }, body = "token=" .. stack.token })
  t:log("echoed: " .. res.body)
  t:evidence("echo", res:json())
  t:evidence("raw", res.body)
  t:expect(false, "the server said %s", res.body)
  error("echoed " .. res.body)
end }
"""


class SecretsEchoedByAServer(SecretTestCase):
    """A server that sends the key back (in a body, a header dump, an error
    page): halo's every output still shows *** — logs, evidence, failure
    and error messages, each report format, and the request history."""

    def test_every_output(self):
        from httptest import EdgeServer
        server = EdgeServer()
        self.addCleanup(server.stop)
        d = checks_dir(self, {"1-echo.lua": ECHO_CHECK.replace("BASE", repr(server.url("")))})
        tmp = tempfile.mkdtemp(prefix="halo-secrets-")
        self.addCleanup(shutil.rmtree, tmp, True)
        reports = [a for fmt in FORMATS for a in ("--report", f"{fmt}:{tmp}/report.{fmt}")]
        r = halo(["run", "--checks", d, "--stack", STACK, "-v", "--history", f"{tmp}/history.jsonl"] + reports,
                 env=self.env)
        self.assertEqual(r.rc, 3, r)
        self.assertRedacted(r.out, "stdout")
        self.assertRedacted(r.err, "stderr")
        for name in sorted(os.listdir(tmp)):
            with open(os.path.join(tmp, name), encoding="utf-8") as f:
                text = f.read()
            self.assertNoSecret(text, name)
        with open(f"{tmp}/report.json", encoding="utf-8") as f:
            self.assertIn("x-api-key", f.read(), "the echo is in the report (redacted), not dropped")


class StackFileErrors(SecretTestCase):
    def test_run_with_a_stack_file_failing_with_a_secret(self):
        bad = os.path.join(fixture("secrets"), "stack-error.lua")
        r = halo(["run", "--checks", CHECKS, "--stack", bad], env=self.env)
        self.assertEqual(r.rc, 2, r)
        self.assertRegex(r.err, r"stack-error\.lua:4: the token \*\*\* was rejected by the stack file")
        self.assertNoSecret(r.out + r.err, "run with a failing stack file")

    def test_eval_with_a_stack_file_failing_with_a_secret(self):
        bad = os.path.join(fixture("secrets"), "stack-error.lua")
        for verbose in ([], ["-v"]):
            with self.subTest(verbose=verbose):
                r = halo(["eval"] + verbose + ["--stack", bad, "1"], env=self.env)
                self.assertEqual(r.rc, 2, r)
                self.assertRegex(r.err, r"the token \*\*\* was rejected")
                self.assertNoSecret(r.out + r.err, "eval with a failing stack file")


class EvalAndExec(SecretTestCase):
    def eval(self, code, *flags):
        return halo(["eval", *flags, "--stack", STACK, code], env=self.env)

    def test_eval_prints_a_secret_as_stars(self):
        r = self.eval("return stack.token")
        self.assertEqual((r.rc, r.out), (0, "***\n"), r)
        self.assertNoSecret(r.err, "stderr")

    def test_eval_prints_urls_with_their_passwords_as_stars(self):
        r = self.eval("stack.db_url")
        self.assertEqual((r.rc, r.out), (0, "postgres://app:***@127.0.0.1:5432/db\n"), r)
        r = self.eval("stack.replicas")
        self.assertEqual(r.rc, 0, r)
        self.assertIn('url = "postgres://u:***@host.invalid:5432/db"', r.out)
        self.assertRedacted(r.out, "eval of a table holding a URL")

    def test_print_in_eval_is_redacted(self):
        r = self.eval("print(stack.token, stack.db_url, stack.plain_url)")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split("\t")[0], "***")
        self.assertRedacted(r.out, "print")

    def test_eval_error_with_a_secret_is_redacted(self):
        for flags in ([], ["-v"]):
            with self.subTest(flags=flags):
                r = self.eval("error('bad token ' .. stack.token .. ' for ' .. stack.db_url)", *flags)
                self.assertEqual(r.rc, 3, r)
                self.assertRegex(r.err, r"eval:1: bad token \*\*\* for postgres://app:\*\*\*@")
                self.assertNoSecret(r.out + r.err, "eval error")

    def test_exec_failure_in_a_background_task_is_redacted(self):
        path = script(self, "task.spawn(function() error('bg ' .. stack.token) end)\ntime.sleep(0.01)\n")
        r = halo(["exec", "--stack", STACK, path], env=self.env)
        self.assertEqual(r.rc, 3, r)
        self.assertRegex(r.err, r"background task \d+ failed: .*bg \*\*\*")
        self.assertNoSecret(r.out + r.err, "exec background failure")

    def test_eval_of_a_table_holding_a_secret(self):
        # Regression test (fixed engine bug): pretty.lua prints strings inside tables with %q, which
        # escapes '"' and '\', and adhoc.c redacts the *printed* text. A
        # secret with a quote or a backslash no longer matches and is printed
        # in clear, escaped. Repro:
        #   HALO_TEST_TOKEN='ab"cd' halo eval --stack tests/fixtures/secrets/stack.lua 'return stack'
        #   -> token = "ab\"cd",
        r = self.eval("return stack")
        self.assertEqual(r.rc, 0, r)
        self.assertRedacted(r.out, "eval of the stack table")


class MadeSecret(unittest.TestCase):
    """t:secret(v): a value a check makes up (check 6's new admin key) is
    hidden from every output from then on, as the stack file's are."""

    CHECK = """return { title = "makes a key", run = function(t, stack)
  local key = t:secret(stack.made)
  t:log("made %s", key)
  t:evidence("key", { new = key })
  t:step("recreate with " .. key, function() end)
  t:expect(false, "the key %s was refused", key)
end }
"""
    MISUSE = """return { run = function(t)
  local ok, err = pcall(t.secret, t, "abc")
  t:log("short: %s", err)
  ok, err = pcall(t.secret, t, 12345)
  t:log("number: %s", err)
  t:secret(nil)
end }
"""

    def test_every_output_hides_it(self):
        made = "made-" + _run(24)
        stack = script(self, 'return { made = env("HALO_TEST_MADE") }\n', "stack.lua")
        checks = checks_dir(self, {"01-made.lua": self.CHECK})
        for fmt in FORMATS:
            with self.subTest(format=fmt):
                r = halo(["run", "-v", "--checks", checks, "--stack", stack, "--format", fmt],
                         env={"HALO_TEST_MADE": made})
                self.assertEqual(r.rc, 1, r)
                self.assertNotIn(made[5:], r.out + r.err, f"--format {fmt}")
                self.assertIn("***", r.out, f"--format {fmt}")
        r, report = halo_json(["run", "--checks", checks, "--stack", stack], env={"HALO_TEST_MADE": made})
        check = by_id(report)[1]
        self.assertRegex(check["message"], r"01-made\.lua:6: the key \*\*\* was refused$")
        self.assertEqual(check["evidence"]["key"], {"new": "***"})
        self.assertEqual([s["name"] for s in check["steps"]], ["recreate with ***"])

    def test_misuse_raises_at_the_line(self):
        checks = checks_dir(self, {"01-misuse.lua": self.MISUSE})
        r, report = halo_json(["run", "--checks", checks])
        check = by_id(report)[1]
        self.assertEqual(check["status"], "ERROR")
        self.assertRegex(check["message"], r"01-misuse\.lua:6: bad argument #1 to 'secret' \(string expected, got nil\)")
        logs = [e["text"] for e in check["logs"]]
        self.assertRegex(logs[0], r"short: .*bad argument #1 to 'secret' \(halo cannot keep a secret shorter than 4 ")
        self.assertRegex(logs[1], r"number: .*\(string expected, got number\)")


if __name__ == "__main__":
    unittest.main()
