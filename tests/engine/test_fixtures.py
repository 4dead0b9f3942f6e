"""What a check creates through scripts/lib/pulp.lua is gone when the run
ends, however it ends: on the reference stack (its own compose project,
halotest-fixtures, multi-tenant so tenants exist), a check makes a tenant,
templates (the default tenant, the new tenant, one through an editor
token), an asset and a schedule, and then

  * ends normally: the automatic undo removes each once, and a fixture the
    check deleted itself is not deleted again (the audit log counts the
    deletes); nothing stays journalled;
  * gets Ctrl-C: the worker's own undo removes them;
  * gets Ctrl-C twice (cleanup cut short) or overruns its hard deadline: the
    runner restores the dead worker's journal;
  * is killed with kill -9 (runner and worker): the journal holds each
    removal, the key named ("keys.admin"), never given; `halo cleanup
    --dry-run` lists them and changes nothing; `halo cleanup` removes them
    and forgets the journal;
  * is interrupted (Ctrl-C, or kill -9 and `halo cleanup`) at random
    moments of a check that creates and deletes fixtures in a loop.

Every time the tables hold what they held before (rows), the replicas run
with their keys (keys), the containers run healthy (containers), and no
secret of the stack file is in the journal or any output. Each test has its
own XDG_STATE_HOME (the journal directory).

UndoModuleTest holds the undo module to its word without Docker, against
small recording HTTP servers on 127.0.0.1: what it refuses to register (a
secret's value anywhere in the record, a key for an origin the stack file
does not name), cancel, settle, find, and `halo cleanup` refusing to send a
key where a tampered journal points. HALO_TEST_SEED fixes the random
moments, HALO_TEST_ROUNDS says how many (8).
"""
import glob
import http.server
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import textwrap
import threading
import time
import unittest

from halotest import HALO, SOURCE, HaloTestCase, Running, halo_env, kill_9_run, logs, parse_report
from refstack import ADMIN, EDITOR, STACK_MULTI, UP, RefStack, http_get

PROJECT = "halotest-fixtures"
S = RefStack(PROJECT)
MODE = {"MULTI_TENANT_ENABLED": "true"}
LIB = os.path.join(SOURCE, "scripts", "lib")
SECRETS = [ADMIN, EDITOR, "halo-test-editor-token-secret"]
TABLES = ["tenants", "templates", "assets", "schedules", "schedule_executions"]

# Makes one of each fixture and says what it made; {extra} runs after that,
# then it naps in a step (where the signals find it).
MAKER = """
local pulp, time, undo = require "pulp", require "time", require "undo"
return {{ title = "makes fixtures", timeout = {timeout}, run = function(t, stack)
  {defer}
  local lb = pulp.lb(stack)
  local tenant = pulp.unique("halo-fx-tenant")
  assert(lb:create_tenant(tenant))
  local key = pulp.unique("halo-fx-template")
  assert(lb:put_template(key, pulp.plain_template("fixture")))
  assert(lb:with{{ key = stack.keys.admin, tenant = tenant }}:put_template(key .. "-t", pulp.plain_template("t")))
  local token = assert(pulp.replica(stack, "api1", {{ key = stack.keys.editor }}):mint_editor_token{{ actor = "halo-fx" }})
  assert(pulp.replica(stack, "api2", {{ token = token }}):put_template(key .. "-tok", pulp.plain_template("tok")))
  local asset = pulp.unique("halo-fx-asset") .. ".bin"
  assert(lb:upload_asset(asset, "fixture bytes", "application/octet-stream"))
  local sid = assert(lb:create_schedule{{ template = key, cron = "*/2 * * * * *", name = key }})
  t:evidence("made", {{ tenant = tenant, template = key, asset = asset, schedule = sid }})
  {extra}
  t:log("pending %d removals", #undo.pending())
  t:log("fixtures made")
  t:step("nap", {nap})
end }}
"""

# Creates and deletes fixtures in a loop for a while: interrupted at a
# random moment, it may be anywhere (a request in flight, a removal being
# registered or cancelled, the journal being written).
CHURN = """
local pulp, time = require "pulp", require "time"
return { title = "churns fixtures", timeout = 60, run = function(t, stack)
  local lb = pulp.lb(stack)
  t:log("churn starts")
  for i = 1, 12 do
    local tenant = pulp.unique("halo-fx-tenant")
    assert(lb:create_tenant(tenant))
    local key = pulp.unique("halo-fx-template")
    assert(lb:put_template(key, pulp.plain_template("churn")))
    assert(lb:with{ key = stack.keys.admin, tenant = tenant }:put_template(key .. "-t", pulp.plain_template("t")))
    local asset = pulp.unique("halo-fx-asset") .. ".bin"
    assert(lb:upload_asset(asset, "churn bytes " .. i, "application/octet-stream"))
    local sid = assert(lb:create_schedule{ template = key, cron = "*/2 * * * * *", name = key })
    if i % 2 == 0 then
      assert(lb:delete_schedule(sid))
      assert(lb:delete_asset(asset))
      assert(lb:delete_template(key))
      assert(lb:delete_tenant(tenant))
    end
  end
  t:log("churn done")
  t:step("nap", time.sleep, 30)
end }
"""


def maker(nap="time.sleep, 60", extra="", defer="", timeout=120):
    return MAKER.format(nap=nap, extra=extra, defer=defer, timeout=timeout)


class FixturesTest(HaloTestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO} (set HALO_BIN)")
        cls.t0 = time.monotonic()
        S.open()
        p = S.script(UP, MODE)
        if p.returncode != 0:
            S.close()
            raise AssertionError(f"tests/stack/up failed:\n{p.stdout}\n{p.stderr}")

    @classmethod
    def tearDownClass(cls):
        S.close()
        print(f"\n[test_fixtures] whole run {time.monotonic() - cls.t0:.1f} s", flush=True)

    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="halo-state-")
        self.addCleanup(shutil.rmtree, self.state, True)
        self.outputs = {}   # name -> text, searched for secrets at the end of each test
        self.before = self.rows()
        self.addCleanup(self.heal)

    def heal(self):
        """Whatever a failed test left: the rows it made go, so the next
        test starts from the same tables."""
        S.psql("DELETE FROM tenants WHERE id LIKE 'halo-fx%'; DELETE FROM templates WHERE key LIKE 'halo-fx%'; "
               "DELETE FROM assets WHERE filename LIKE 'halo-fx%'; DELETE FROM schedules WHERE name LIKE 'halo-fx%'")

    # ---- helpers -------------------------------------------------------------------

    def env(self):
        return S.env(dict(MODE, XDG_STATE_HOME=self.state))

    def runs_dir(self):
        return os.path.join(self.state, "halo", "runs")

    def journals(self):
        return sorted(glob.glob(os.path.join(self.runs_dir(), "*.json")))

    def journal_entries(self):
        entries = []
        for path in self.journals():
            with open(path, encoding="utf-8") as f:
                text = f.read()
            self.outputs[os.path.basename(path)] = text
            entries += json.loads(text)["entries"]
        return entries

    def rows(self):
        """Rows per table, and every row a test's check made (by name)."""
        counts = dict(S.psql(" UNION ALL ".join(f"SELECT '{t}', count(*)::text FROM {t}" for t in TABLES)))
        named = S.psql("SELECT 'template ' || tenant_id || '/' || key FROM templates WHERE key LIKE 'halo-fx%' "
                       "UNION ALL SELECT 'asset ' || filename FROM assets WHERE filename LIKE 'halo-fx%' "
                       "UNION ALL SELECT 'schedule ' || name FROM schedules WHERE name LIKE 'halo-fx%' "
                       "UNION ALL SELECT 'tenant ' || id FROM tenants WHERE id LIKE 'halo-fx%'")
        return counts, sorted(r[0] for r in named)

    def deletes_of(self, target):
        return int(S.psql(f"SELECT count(*) FROM audit_log WHERE action LIKE '%.delete' AND target = '{target}'")[0][0])

    def assertLeftAsFound(self, what):
        counts, named = self.rows()
        self.assertEqual(named, [], f"{what}: rows the check created are left")
        self.assertEqual(counts, self.before[0], f"{what}: the tables hold other rows than before")
        for svc in ("api1", "api2"):
            env = S.container_env(svc)
            self.assertEqual((env.get("API_KEY_ADMIN"), env.get("API_KEY_EDITOR")), (ADMIN, EDITOR),
                             f"{what}: {svc}'s keys changed")
            port = S.api1_port if svc == "api1" else S.api2_port
            self.assertEqual(http_get(f"http://127.0.0.1:{port}/templates", {"x-api-key": ADMIN})[0], 200, svc)
        self.assertEqual(S.not_up(), {}, f"{what}: services not up as they were")
        self.assertEqual(self.journals(), [], f"{what}: a journal is left")

    def assertNoSecrets(self):
        for name, text in self.outputs.items():
            for secret in SECRETS:
                self.assertNotIn(secret, text, f"a secret of the stack file is in {name}")

    def start(self, source, name="1-fixtures.lua", grace=10):
        d = self.checks_dir({name: source})
        out = self.tmp_path("report.json")
        history = self.tmp_path("history.jsonl")
        h = Running(["run", "--checks", d, "--stack", STACK_MULTI, "--lib", LIB, "--grace", str(grace), "-v",
                     "--format", "json", "--out", out, "--history", history], cwd=SOURCE, env=self.env())
        self.addCleanup(h.kill)
        h.report_path, h.history_path = out, history
        return h

    def finished(self, h, res):
        """The run's outputs, kept for the secret search; its report."""
        self.outputs["stdout"], self.outputs["stderr"] = res.out, res.err
        for path in (h.report_path, h.history_path):
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    self.outputs[os.path.basename(path)] = f.read()
        with open(h.report_path, encoding="utf-8") as f:
            return parse_report(f.read(), res)

    def kill_9(self, h):
        """kill -9 of the runner and of each worker's process group, as a
        crash of the machine would end them."""
        kill_9_run(h)
        self.outputs["stderr"] = h.stderr
        self.assertEqual(h.leftovers(), [], "processes left after kill -9")

    def cleanup_cmd(self, *args):
        p = subprocess.run([HALO, "cleanup"] + list(args), capture_output=True, text=True,
                           env=halo_env(self.env()), cwd=tempfile.gettempdir(), timeout=180,
                           stdin=subprocess.DEVNULL)
        n = sum(1 for k in self.outputs if k.startswith("cleanup"))
        self.outputs[f"cleanup {n} stdout"], self.outputs[f"cleanup {n} stderr"] = p.stdout, p.stderr
        return p

    # ---- the tests -------------------------------------------------------------------

    def test_normal_end_removes_each_once(self):
        """The undo removes what the check left, once; what it deleted itself
        is not deleted again; nothing stays journalled."""
        h = self.start(maker(nap="time.sleep, 0.1", extra="""
  assert(lb:delete_asset(asset))          -- the check's own delete: cancels the removal
  t:log("after own delete %d", #undo.pending())"""))
        res = h.finish(timeout=60)
        rep = self.finished(h, res)
        self.assertExit(res, 0)
        self.assertCheck(rep, 1, "PASS")
        made = rep.check(1)["evidence"]["made"]
        made = json.loads(made) if isinstance(made, str) else made
        self.assertLogsInOrder(rep.check(1), ["after own delete 5", "pending 5 removals"])
        self.assertLeftAsFound("after a normal end")
        for target in (made["tenant"], made["template"], made["template"] + "-t", made["template"] + "-tok",
                       made["asset"], made["schedule"]):
            self.assertEqual(self.deletes_of(target), 1, f"{target} deleted once")
        self.assertNoSecrets()

    def test_kill_9_then_halo_cleanup(self):
        h = self.start(maker())
        h.wait_for_stderr(r"\[1\] step: nap", timeout=60)
        entries = self.journal_entries()
        self.assertEqual(len(entries), 6, entries)
        for e in entries:
            self.assertEqual((e["undo"], e["method"], e["auth"]), ("http", "DELETE",
                             {"secret": "keys.admin", "header": "x-api-key"}), e)
            self.assertEqual(e["stack"], os.path.realpath(STACK_MULTI))
            self.assertTrue(e["url"].startswith(S.lb + "/"), e)
        in_tenant = [e for e in entries if e.get("headers")]
        self.assertEqual(len(in_tenant), 1, "only the template in the new tenant names its tenant")
        made = self.rows()[1]
        self.assertEqual(len(made), 6, made)

        self.kill_9(h)
        self.assertEqual(self.rows()[1], made, "kill -9 removed something")
        self.assertEqual(len(self.journals()), 1)

        dry = self.cleanup_cmd("--dry-run")
        self.assertEqual(dry.returncode, 0, dry.stdout + dry.stderr)
        self.assertEqual(len([l for l in dry.stdout.splitlines() if "(gone) left: DELETE " in l]), 6, dry.stdout)
        self.assertEqual(self.rows()[1], made, "--dry-run removed something")

        p = self.cleanup_cmd()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(len([l for l in lines if l.endswith(": HTTP 204")]), 6, p.stdout)
        # newest first: the schedule before its template, the tenant last
        order = [l.split(": DELETE ", 1)[1].split()[0] for l in lines]
        self.assertEqual((order[0], order[-1]), ("schedule", "tenant"), p.stdout)
        self.assertLeftAsFound("after kill -9 and halo cleanup")
        again = self.cleanup_cmd()
        self.assertEqual((again.returncode, again.stdout), (0, "nothing left behind by a killed run\n"))
        self.assertNoSecrets()

    def test_sigint_mid_check(self):
        """Ctrl-C: the worker's own undo removes the fixtures."""
        h = self.start(maker())
        h.wait_for_stderr(r"\[1\] step: nap", timeout=60)
        self.assertEqual(len(self.journal_entries()), 6)
        h.send(signal.SIGINT)
        res = h.finish(timeout=60)
        rep = self.finished(h, res)
        self.assertExit(res, 130)
        self.assertCheck(rep, 1, "ERROR", r"^interrupted")
        self.assertNotIn("runner undo", "\n".join(logs(rep.check(1))))
        self.assertLeftAsFound("after Ctrl-C")
        self.assertNoSecrets()

    def test_second_sigint_runner_restores_the_journal(self):
        """Ctrl-C twice while a slow defer runs: the runner kills the worker
        and restores its journal itself."""
        h = self.start(maker(defer='t:defer(function() t:log("slow defer") time.sleep(20) end)'))
        h.wait_for_stderr(r"\[1\] step: nap", timeout=60)
        h.send(signal.SIGINT)
        h.wait_for_stderr(r"slow defer")
        h.send(signal.SIGINT)
        res = h.finish(timeout=60)
        rep = self.finished(h, res)
        self.assertExit(res, 130)
        self.assertCheck(rep, 1, "ERROR", r"interrupted twice")
        removed = [l for l in logs(rep.check(1)) if l.startswith("runner undo: DELETE ")]
        self.assertEqual(len(removed), 6, logs(rep.check(1)))
        self.assertLeftAsFound("after a second Ctrl-C")
        self.assertNoSecrets()

    def test_hard_deadline_runner_restores_the_journal(self):
        """A check stuck in C past timeout + grace: the runner kills it and
        removes what it made."""
        h = self.start(maker(timeout=3, nap='function() return string.rep("a", 30000):find(string.rep("a*", 30) .. "b") end'),
                       grace=2)
        res = h.finish(timeout=60)
        rep = self.finished(h, res)
        self.assertCheck(rep, 1, "ERROR", r"^hard deadline")
        removed = [l for l in logs(rep.check(1)) if l.startswith("runner undo: DELETE ")]
        self.assertEqual(len(removed), 6, logs(rep.check(1)))
        self.assertLeftAsFound("after the hard deadline")
        self.assertNoSecrets()

    def test_random_interrupts(self):
        """Ctrl-C, or kill -9 then `halo cleanup`, at random moments of a
        check that creates and deletes fixtures: the stack as found, every
        time."""
        seed = int(os.environ.get("HALO_TEST_SEED") or time.time())
        rnd = random.Random(seed)
        # how long the churn takes here: the moments are drawn from it
        h = self.start(CHURN, name="1-churn.lua")
        h.wait_for_stderr(r"churn starts", timeout=60)
        t0 = time.monotonic()
        h.wait_for_stderr(r"churn done", timeout=60)
        churn = time.monotonic() - t0
        h.send(signal.SIGINT)
        self.assertExit(h.finish(timeout=60), 130)
        self.assertLeftAsFound("Ctrl-C after the churn")
        print(f"\n[test_fixtures] random interrupts within the {churn:.2f} s churn, HALO_TEST_SEED={seed}",
              flush=True)
        for i in range(int(os.environ.get("HALO_TEST_ROUNDS") or 8)):
            how = "kill -9" if i % 2 == 0 else "Ctrl-C"
            delay = rnd.uniform(0, churn)
            with self.subTest(round=i, how=how, delay=round(delay, 3), seed=seed):
                h = self.start(CHURN, name=f"{i + 2}-churn.lua")
                h.wait_for_stderr(r"churn starts", timeout=60)
                time.sleep(delay)
                if how == "kill -9":
                    self.kill_9(h)
                    p = self.cleanup_cmd()
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                else:
                    h.send(signal.SIGINT)
                    res = h.finish(timeout=60)
                    self.finished(h, res)
                    self.assertIn(res.rc, (0, 130), res.err[-2000:])
                    p = self.cleanup_cmd()
                    self.assertEqual(p.stdout, "nothing left behind by a killed run\n", "Ctrl-C left a journal")
                self.assertLeftAsFound(f"round {i} ({how} after {delay:.3f} s, HALO_TEST_SEED={seed})")
        self.assertNoSecrets()


class Recorder:
    """An HTTP server on 127.0.0.1 that records every request (method, path,
    headers) and answers from `replies` (path -> statuses, one per request,
    the last repeated; default 204), or `lists` (path -> JSON for a GET)."""

    def __init__(self):
        self.requests, self.replies, self.lists = [], {}, {}
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_one(self):
                recorder.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.command == "GET" and self.path in recorder.lists:
                    body, status = json.dumps(recorder.lists[self.path]).encode(), 200
                else:
                    statuses = recorder.replies.get(self.path, [204])
                    status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                    body = b"" if status == 204 else b'{"error":"x"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_DELETE = do_PUT = do_POST = handle_one

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def deletes(self):
        return [(path, headers.get("x-api-key")) for method, path, headers in self.requests if method == "DELETE"]


FX_KEY = "fx-admin-key-value-31337"


class UndoModuleTest(HaloTestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="halo-state-")
        self.addCleanup(shutil.rmtree, self.state, True)
        self.target, self.foreign = Recorder(), Recorder()
        self.addCleanup(self.target.stop)
        self.addCleanup(self.foreign.stop)
        self.stack = self.tmp_path("stack.lua")
        with open(self.stack, "w") as f:
            f.write(f'return {{ lb = "{self.target.url}", keys = {{ admin = secret("FX_ADMIN", "{FX_KEY}") }} }}\n')
        self.outputs = []

    def env(self):
        return {"XDG_STATE_HOME": self.state}

    def journals(self):
        return sorted(glob.glob(os.path.join(self.state, "halo", "runs", "*.json")))

    def halo(self, *args, timeout=60):
        p = subprocess.run([HALO] + list(args), capture_output=True, text=True, env=halo_env(self.env()),
                           timeout=timeout, stdin=subprocess.DEVNULL)
        self.outputs += [p.stdout, p.stderr]
        return p

    def tearDown(self):
        for text in self.outputs:
            self.assertNotIn(FX_KEY, text, "the key is in an output")

    def test_refusals(self):
        cases = {
            'auth = { value = stack.keys.admin }': r"unknown option 'auth.value' \(auth names a secret of the stack file",
            'auth = { secret = "keys.nope" }': r"the stack file has no keys.nope",
            'headers = { ["x-api-key"] = stack.keys.admin }': r"header x-api-key holds a secret: name it in auth",
            'url = stack.lb .. "/x?key=" .. stack.keys.admin': r"url holds a secret",
            'url = FOREIGN .. "/x", auth = { secret = "keys.admin" }': r"the stack file names no URL at http://127.0.0.1:\d+",
            'url = "file:///etc/passwd"': r"url must be an http or https URL",
            'find = { url = stack.lb .. "/x" , where = { name = "n" } }': r"url must hold \{id\}",
            'expect = { 999 }': r"expect\[1\] is not an HTTP status",
        }
        for spec, pattern in cases.items():
            with self.subTest(spec=spec):
                code = (f'local FOREIGN = "{self.foreign.url}"\n'
                        f'undo.http{{ url = stack.lb .. "/thing", {spec} }}')
                p = self.halo("eval", "--stack", self.stack, code)
                self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
                self.assertRegex(p.stderr, r"bad argument #1 to 'http' \(.*" + pattern)
        self.assertEqual(self.target.requests + self.foreign.requests, [])
        self.assertEqual(self.journals(), [])

    def test_end_of_run_cancel_settle_find(self):
        self.target.replies["/late"] = [404, 404, 204]          # a creation the server finishes late
        self.target.lists["/things"] = [{"id": "a1", "name": "mine"}, {"id": "b2", "name": "theirs"}]
        code = """
          local a = undo.http{ url = stack.lb .. "/kept", auth = { secret = "keys.admin" }, what = "kept" }
          local b = undo.http{ url = stack.lb .. "/cancelled", auth = { secret = "keys.admin" } }
          local c = undo.http{ url = stack.lb .. "/late", auth = { secret = "keys.admin" }, settle = 3 }
          local d = undo.http{ url = stack.lb .. "/things/{id}", auth = { secret = "keys.admin", header = "authorization",
                                                                          prefix = "Key " },
                               find = { url = stack.lb .. "/things", where = { name = "mine" } } }
          local e = undo.http{ url = stack.lb .. "/already-gone", settle = 2 }
          assert(b:cancel() and not b:cancel())
          assert(e:created())
          return #undo.pending()
        """
        self.target.replies["/already-gone"] = [404]
        p = self.halo("eval", "--stack", self.stack, code)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "4"), p.stderr)
        deletes = self.target.deletes()
        # newest first; each once; /late asked until it was there; the key sent by value, never journalled
        self.assertEqual([d[0] for d in deletes], ["/already-gone", "/things/a1", "/late", "/late", "/late", "/kept"])
        self.assertEqual(deletes[-1][1], FX_KEY)
        auth = [h.get("authorization") for m, path, h in self.target.requests if path == "/things/a1"]
        self.assertEqual(auth, ["Key " + FX_KEY])
        self.assertEqual(self.journals(), [])

    def test_journal_while_running_and_cleanup_after_kill_9(self):
        script = self.tmp_path("make.lua")
        with open(script, "w") as f:
            f.write(textwrap.dedent(f"""\
                local time = require "time"
                undo.http{{ url = stack.lb .. "/a", auth = {{ secret = "keys.admin" }}, what = "fixture a",
                            headers = {{ ["x-tenant-id"] = "t1" }} }}
                undo.http{{ url = stack.lb .. "/b", auth = {{ secret = "keys.admin" }} }}:cancel()
                undo.http{{ url = stack.lb .. "/c", auth = {{ secret = "keys.admin" }}, what = "fixture c" }}
                print("registered")
                time.sleep(60)
            """))
        h = Running(["exec", "--stack", self.stack, script], env=self.env())
        self.addCleanup(h.kill)
        deadline = time.monotonic() + 15
        while "registered" not in h.stdout and time.monotonic() < deadline:
            time.sleep(0.05)
        [path] = self.journals()
        with open(path) as f:
            text = f.read()
        self.outputs.append(text)
        entries = json.loads(text)["entries"]
        self.assertEqual(sorted(e["what"] for e in entries), ["fixture a", "fixture c"])
        for e in entries:
            self.assertEqual((e["undo"], e["method"], e["auth"], e["stack"]),
                             ("http", "DELETE", {"secret": "keys.admin", "header": "x-api-key"},
                              os.path.realpath(self.stack)))
        os.kill(h.pid, signal.SIGKILL)
        h.proc.wait(10)
        self.assertEqual(self.target.requests, [])

        # a tampered entry: its URL moved to another origin
        tampered = json.loads(text)
        for e in tampered["entries"]:
            if e["what"] == "fixture c":
                e["url"] = self.foreign.url + "/c"
        with open(path, "w") as f:
            json.dump(tampered, f)
        p = self.halo("cleanup")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"could not DELETE fixture c .*refusing to send keys.admin to http://127.0.0.1:\d+: "
                                   r"the stack file names no URL there")
        self.assertRegex(p.stdout, r"DELETE fixture a: HTTP 204")
        self.assertEqual(self.foreign.requests, [], "the key went where the stack file does not point")
        self.assertEqual(self.target.deletes(), [("/a", FX_KEY)])
        self.assertEqual([h.get("x-tenant-id") for m, path, h in self.target.requests], ["t1"])
        self.assertEqual(len(self.journals()), 1, "the journal is kept while something is not restored")

        # put right: the next cleanup finishes it and forgets the journal
        with open(path, "w") as f:
            f.write(text)
        p = self.halo("cleanup")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual([d[0] for d in self.target.deletes()], ["/a", "/c", "/a"])
        self.assertEqual(self.journals(), [])


if __name__ == "__main__":
    unittest.main()
