"""The docker module's clock skew (p:skew, libfaketime), resource limits
(c:update) and stop with a signal (c:stop{ signal = }), against the real
daemon: each is seen to take effect, undone at the end of the check (also
when it fails), and restored by `halo cleanup` after a kill -9.

The target is the compose project of tests/docker/ as "dockerfaults-<random>"
with a free 127.0.0.1 port (dockerenv.Project), brought up with an env file
that the stack file names (compose.env_file), so that halo's recreates and
`halo cleanup`'s plain `up` get the same port. Its web service answers
GET /time with its own time.time(): how a skew is seen from outside.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \
     python3 -m unittest -v test_docker_faults
"""
import glob
import json
import os
import signal
import tempfile
import textwrap
import time
import unittest
import urllib.request

import dockerenv
from halotest import HALO, HaloTestCase, Running, journal_entries, kill_9_run, run, run_json
from test_docker import result_of, PRELUDE

FAKETIME_LIB_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"

_shared = {}


def project():
    """The shared project, up and healthy; removed in the module cleanup
    (registered before `up`, so a failed up is removed too)."""
    if "project" not in _shared:
        p = dockerenv.Project(prefix="dockerfaults")
        unittest.addModuleCleanup(p.down)
        d = tempfile.mkdtemp(prefix="halo-dockerfaults-")
        unittest.addModuleCleanup(lambda: __import__("shutil").rmtree(d, True))
        p.env_file = os.path.join(d, "env")
        with open(p.env_file, "w") as f:
            f.write(f"HALOTEST_WEB_PORT={p.port}\n")
        p.up()
        _shared["project"] = p
        unittest.addModuleCleanup(_shared.pop, "project", None)
    return _shared["project"]


def host_info():
    out = dockerenv._docker("info", "--format", "{{json .}}").stdout
    info = json.loads(out)
    return info["NCPU"], info["MemTotal"]


def env_of(inspect):
    return dict(kv.split("=", 1) for kv in inspect["Config"]["Env"] or [])


class FaultsCase(HaloTestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO} (set HALO_BIN)")
        dockerenv.ensure_docker()
        if not glob.glob(FAKETIME_LIB_GLOB):
            raise unittest.SkipTest("no libfaketime on this host (tools/setup.sh installs the Debian package)")
        cls.project = project()

    def setUp(self):
        p = self.project
        if "FAKETIME" in env_of(p.inspect("web")):   # a test before this one failed half way
            p.compose("up", "-d", "--no-deps", "web")
        st = p.state("web")
        if not st.get("Running"):
            dockerenv._docker("start", p.container_id("web"))
        p.wait_healthy("web")
        self.state = tempfile.mkdtemp(prefix="halo-dockerfaults-state-")
        self.addCleanup(__import__("shutil").rmtree, self.state, True)
        self.stack = self.write_stack()

    def write_stack(self, allow_faults=True, extra=""):
        p = self.project
        path = self.tmp_path("stack.lua")
        with open(path, "w") as f:
            f.write(f"return {{ allow_faults = {str(allow_faults).lower()},\n"
                    f"  compose = {{ project = {json.dumps(p.name)}, files = {{ {json.dumps(dockerenv.COMPOSE_FILE)} }},\n"
                    f"              env_file = {json.dumps(p.env_file)} }},\n"
                    f"  web = {json.dumps(p.base)}, {extra} }}\n")
        return path

    def env(self):
        return {"XDG_STATE_HOME": self.state}

    def journals(self):
        return sorted(glob.glob(os.path.join(self.state, "halo", "runs", "*.json")))

    def run_check(self, source, timeout=180):
        checks = self.checks_dir({"01-fault.lua": textwrap.dedent(source)})
        # a skew's heal recreates the service and waits for it: on a busy
        # host longer than the default 10 s cleanup grace
        return run_json(["--checks", checks, "--stack", self.stack, "--grace", "60"], env=self.env(),
                        timeout=timeout)

    def exec_lua(self, code, stack=None, timeout=120):
        path = self.tmp_path("script.lua")
        with open(path, "w") as f:
            f.write(PRELUDE + textwrap.dedent(code))
        return run(["exec", "--stack", stack or self.stack, path], env=self.env(), timeout=timeout)

    def web_skew(self):
        """The web service's clock minus ours, in seconds."""
        t0 = time.time()
        with urllib.request.urlopen(self.project.base + "/time", timeout=5) as r:
            theirs = float(r.read())
        return theirs - (t0 + time.time()) / 2

    def assertHealed(self, what):
        p = self.project
        env = env_of(p.inspect("web"))
        self.assertNotIn("FAKETIME", env, f"{what}: web still has libfaketime")
        self.assertNotIn("LD_PRELOAD", env, what)
        p.wait_healthy("web")
        self.assertLess(abs(self.web_skew()), 1.0, f"{what}: web's clock is still off")


class SkewTest(FaultsCase):

    def test_skew_in_a_check_that_fails_is_healed(self):
        self.assertLess(abs(self.web_skew()), 1.0, "web's clock is off before the test")
        rep = self.run_check("""
            local docker, http, time = require "docker", require "http", require "time"
            return {
              title = "skew, then boom", timeout = 120,
              run = function(t, stack)
                local s = assert(docker.compose():skew{ service = "web", offset = 30 })
                local res = assert(http.get(stack.web .. "/time"))
                t:evidence("skew", tonumber(res.body) - time.now())
                t:evidence("spec", tostring(s))
                error("boom")
              end,
            }
        """)
        c = self.assertCheck(rep, 1, "ERROR", r"boom")
        skew = float(c["evidence"]["skew"])
        self.assertTrue(28 < skew < 32, f"the clock seen during the check is off by {skew} s, not ~30")
        self.assertEqual(c["evidence"]["spec"], "skew +30s of web")
        actions = [a["action"] for a in c["actions"]]
        self.assertIn("skew +30s", actions)
        skew_action = next(a for a in c["actions"] if a["action"] == "skew +30s")
        self.assertEqual(skew_action["service"], "web")
        self.assertIsNone(skew_action.get("undo"), "a skew is no container fault the runner replays by id")
        # healed after the skew: a plain `compose up` of web, then healthy
        self.assertEqual(actions[-2:], ["compose up", "healthy"], actions)
        self.assertHealed("after the failed check")
        self.assertEqual(self.journals(), [], "a journal is left")

    def test_skew_with_rate_heal_is_idempotent(self):
        res = self.exec_lua("""
            local docker, http, time = require "docker", require "http", require "time"
            local function off() return tonumber(assert(http.get(stack.web .. "/time")).body) - time.now() end
            local s = assert(docker.compose():skew{ service = "web", offset = -10, rate = 2 })
            local a = off()
            time.sleep(1.5)
            local b = off()
            local h1 = { s:heal() }
            local h2 = { s:heal() }
            emit{ a = a, b = b, h1 = h1, h2 = h2, c = off(), spec = s.spec }
        """)
        self.assertEqual(res.rc, 0, repr(res))
        r = result_of(res)
        self.assertEqual(r["spec"], "-10s x2")
        # started 10 s behind, then twice as fast: behind by less each second
        self.assertTrue(-10.5 < r["a"] < -4, r)
        self.assertTrue(1.0 < r["b"] - r["a"] < 2.5, f"the clock did not run twice as fast: {r}")
        self.assertEqual((r["h1"], r["h2"]), ([True], [True]))
        self.assertLess(abs(r["c"]), 1.0, r)
        self.assertHealed("after heal()")

    def test_missing_library_refusal_and_misuse(self):
        before = self.project.container_id("web")
        no_lib = self.write_stack(extra='docker = { faketime = "/nonexistent/libfaketime.so.1" }')
        res = self.exec_lua("""
            local p = docker.compose()
            local ok, err = p:skew{ service = "web", offset = 5 }
            local out = { ok = ok == nil, kind = err and err.kind, message = err and err.message }
            out.typo = select(2, pcall(p.skew, p, { service = "web", ofset = 5 }))
            out.nothing = select(2, pcall(p.skew, p, { service = "web" }))
            local web = assert(docker.container{ service = "web" })
            out.bad_memory = select(2, pcall(web.update, web, { memory = "lots" }))
            out.no_limit = select(2, pcall(web.update, web, {}))
            out.bad_signal = select(2, pcall(web.stop, web, { signal = 15 }))
            emit(out)
        """, stack=no_lib)
        self.assertEqual(res.rc, 0, repr(res))
        r = result_of(res)
        self.assertTrue(r["ok"])
        self.assertEqual(r["kind"], "docker")
        self.assertIn("no libfaketime at /nonexistent/libfaketime.so.1", r["message"])
        self.assertIn("unknown option 'ofset'", r["typo"])
        self.assertIn("give offset, rate or both", r["nothing"])
        self.assertIn('memory must be bytes or a size such as "256m", not "lots"', r["bad_memory"])
        self.assertIn("give cpus, memory, memory_swap or pids", r["no_limit"])
        self.assertIn("signal must be a name", r["bad_signal"])

        # eval and exec act for the operator (faults always allowed): the
        # refusal is a check's
        refused = self.write_stack(allow_faults=False)
        self.stack = refused
        rep = self.run_check("""
            local docker = require "docker"
            return { title = "not allowed", timeout = 30, run = function(t, stack)
              local ok, e1 = pcall(function() return docker.compose():skew{ service = "web", offset = 5 } end)
              local web = assert(docker.container{ service = "web" })
              local ok2, e2 = pcall(web.update, web, { cpus = 0.5 })
              t:evidence("skew", tostring(e1))
              t:evidence("update", tostring(e2))
            end }
        """)
        c = self.assertCheck(rep, 1, "PASS")
        self.assertIn("refusing to skew the clock of service web", c["evidence"]["skew"])
        self.assertIn("refusing to update the limits of", c["evidence"]["update"])
        self.assertEqual(self.project.container_id("web"), before, "web was recreated")
        self.assertNotIn("FAKETIME", env_of(self.project.inspect("web")))


class LimitsAndStopTest(FaultsCase):

    def test_update_shows_in_inspect_and_is_restored_after_the_check(self):
        ncpu, memtotal = host_info()
        hc0 = self.project.inspect("web")["HostConfig"]
        rep = self.run_check("""
            local docker = require "docker"
            return { title = "squeeze web", timeout = 60, run = function(t, stack)
              local web = assert(docker.container{ service = "web" })
              local l = assert(web:update{ cpus = 0.5, memory = "64m", pids = 64 })
              local hc = web:inspect().HostConfig
              t:evidence("during", { NanoCpus = hc.NanoCpus, Memory = hc.Memory, MemorySwap = hc.MemorySwap,
                                     PidsLimit = hc.PidsLimit })
              t:evidence("before", l.before)
            end }
        """)
        c = self.assertCheck(rep, 1, "PASS")
        during = c["evidence"]["during"]
        during = json.loads(during) if isinstance(during, str) else during
        self.assertEqual((during["NanoCpus"], during["Memory"], during["PidsLimit"]), (500000000, 64 << 20, 64))
        actions = [a["action"] for a in c["actions"]]
        self.assertEqual(actions, ["update cpus=0.5 memory=64m pids=64", "update restored"])
        self.assertEqual(during["MemorySwap"], 128 << 20, "memory+swap: twice memory, as docker run's default")
        hc = self.project.inspect("web")["HostConfig"]
        self.assertEqual((hc0["NanoCpus"], hc0["Memory"]), (0, 0), "the test expects a web without limits")
        # a limit the container did not have cannot be removed through the
        # Engine API (0 means "unchanged"): it is set to the whole host
        self.assertEqual(hc["NanoCpus"], ncpu * 10**9)
        self.assertEqual(hc["Memory"], memtotal)
        self.assertEqual(hc["MemorySwap"], 2 * memtotal)
        self.assertIn(hc["PidsLimit"], (0, None, -1))
        self.assertEqual(self.journals(), [])
        self.assertEqual(self.project.get("/health")[0], 200)

    def test_stop_with_a_signal_is_recorded_and_undone(self):
        before = self.project.state("web")["StartedAt"]
        rep = self.run_check("""
            local docker = require "docker"
            return { title = "stop with SIGINT", timeout = 60, run = function(t, stack)
              local web = assert(docker.container{ service = "web" })
              assert(web:stop{ signal = "SIGINT", timeout = 5 })
              local st = web:inspect().State
              t:evidence("status", st.Status)
              t:evidence("exit", st.ExitCode)
            end }
        """)
        c = self.assertCheck(rep, 1, "PASS")
        self.assertEqual(c["evidence"]["status"], "exited")
        # web.py exits 0 on SIGINT at once; after SIGKILL it would be 137
        self.assertEqual(c["evidence"]["exit"], 0)
        self.assertEqual(c["actions"][0]["action"], "stop SIGINT")
        self.assertEqual(c["actions"][0].get("undo"), "start")
        self.assertIn("start", [a["action"] for a in c["actions"][1:]])
        st = self.project.state("web")
        self.assertTrue(st["Running"], f"the stopped container was not started again: {st}")
        self.assertNotEqual(st["StartedAt"], before)


class CleanupTest(FaultsCase):

    def test_kill_9_mid_check_then_halo_cleanup(self):
        ncpu, _ = host_info()
        checks = self.checks_dir({"01-hang.lua": textwrap.dedent("""
            local docker, time = require "docker", require "time"
            return { title = "skew, squeeze, hang", timeout = 120, run = function(t, stack)
              assert(docker.compose():skew{ service = "web", offset = 20 })
              local logger = assert(docker.container{ service = "logger" })
              assert(logger:update{ cpus = 0.5, pids = 32 })
              t:log("faulted")
              time.sleep(100)
            end }
        """)})
        h = Running(["run", "--checks", checks, "--stack", self.stack, "-v"], env=self.env())
        self.addCleanup(h.kill)
        h.wait_for_stderr(r"faulted", timeout=90)
        entries = journal_entries(self.journals())
        kinds = sorted(e["undo"] for e in entries)
        self.assertEqual(kinds, ["compose up", "update"], entries)
        upd = next(e for e in entries if e["undo"] == "update")
        self.assertEqual(upd["limits"], {"NanoCpus": ncpu * 10**9, "PidsLimit": 0})

        # as a crash of the machine would end them: the runner and every
        # process under it at once, none left to undo anything
        kill_9_run(h)
        p = self.project
        self.assertIn("FAKETIME", env_of(p.inspect("web")), "kill -9 undid the skew?")
        self.assertEqual(p.inspect("logger")["HostConfig"]["NanoCpus"], 500000000)
        self.assertEqual(len(self.journals()), 1)

        dry = run(["cleanup", "--dry-run"], env=self.env(), timeout=60)
        self.assertEqual(dry.rc, 0, repr(dry))
        self.assertRegex(dry.out, r"left: recreate service web of project dockerfaults-\w+ with its own configuration")
        self.assertRegex(dry.out, r"left: restore the resource limits of container \S+logger")
        res = run(["cleanup"], env=self.env(), timeout=180)
        self.assertEqual(res.rc, 0, repr(res))
        self.assertIn("recreated web with its own configuration", res.out)
        self.assertRegex(res.out, r"restored the limits of \S+logger")
        self.assertHealed("after halo cleanup")
        hc = p.inspect("logger")["HostConfig"]
        self.assertEqual((hc["NanoCpus"], hc["PidsLimit"] or 0), (ncpu * 10**9, 0))
        self.assertEqual(self.journals(), [])
        again = run(["cleanup"], env=self.env(), timeout=60)
        self.assertEqual((again.rc, again.out), (0, "nothing left behind by a killed run\n"))

    def test_runner_killed_then_halo_cleanup(self):
        """Only the runner gets SIGKILL: its worker, orphaned, is asked to
        stop by `halo cleanup` and heals the skew itself on the way out."""
        checks = self.checks_dir({"01-hang.lua": textwrap.dedent("""
            local docker, time = require "docker", require "time"
            return { title = "skew, hang", timeout = 120, run = function(t)
              assert(docker.compose():skew{ service = "web", offset = -15 })
              t:log("faulted")
              time.sleep(100)
            end }
        """)})
        h = Running(["run", "--checks", checks, "--stack", self.stack, "-v", "--grace", "30"], env=self.env())
        self.addCleanup(h.kill)
        h.wait_for_stderr(r"faulted", timeout=90)
        os.kill(h.pid, signal.SIGKILL)
        h.proc.wait(10)
        self.assertLess(self.web_skew(), -13, "the skew is gone before halo cleanup")
        res = run(["cleanup"], env=self.env(), timeout=180)
        self.assertEqual(res.rc, 0, repr(res))
        self.assertRegex(res.out, r"outlived its runner")
        self.assertHealed("after the orphan was stopped by halo cleanup")
        self.assertEqual(self.journals(), [])


if __name__ == "__main__":
    unittest.main()
