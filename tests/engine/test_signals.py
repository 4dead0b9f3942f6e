"""Signals at any moment, and what a run killed outright leaves behind.

SIGINT and SIGTERM arrive while a check runs Lua (a CPU loop inside pcall),
while it waits in a primitive (time.sleep, an HTTP request to a server that
drips its answer), and while its defers run: every defer and every
automatic undo runs exactly once, the report is written with the check
ERROR "interrupted" and the rest "not run", and halo exits 130 / 143. On
the real Docker daemon: a container the check paused is unpaused by the
undo; a second SIGINT cuts teardown short, says which check's cleanup was
cut, and leaves the fault journalled, so `halo cleanup` restores it; a run
killed with SIGKILL (runner and worker both) is restored by `halo cleanup`
too, and a service recreated with other environment comes back with its
own, carrying the io.halo.run label meanwhile.

Each test has its own XDG_STATE_HOME (the journal directory).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
import unittest

import dockerenv
from halotest import HALO, HaloTestCase, Running, children_of, halo_env, is_alive, logs, parse_report, run
from httptest import EdgeServer

DEFER_LOGS = """
    t:defer(function() t:log("defer A ran") end)
    t:defer(function() t:log("defer B ran") end)
"""

CHECKS = {
    "cpu": """
return { title = "spins", timeout = 60, run = function(t)
""" + DEFER_LOGS + """
    t:step("spin", function() local n = 0; while true do pcall(function() n = n + 1 end) end end)
end }""",
    "sleep": """
local time = require "time"
return { title = "sleeps", timeout = 60, run = function(t)
""" + DEFER_LOGS + """
    t:step("spin", time.sleep, 30)
end }""",
    "http": """
local http = require "http"
return { title = "waits on a dripping server", timeout = 60, run = function(t)
""" + DEFER_LOGS + """
    t:step("spin", function() return http.get(BASE .. "/drip?size=100", { timeout = 50 }) end)
end }""",
    "defer": """
local time = require "time"
return { title = "interrupted in its defer", timeout = 60, run = function(t)
    t:defer(function() t:log("defer A ran") end)
    t:defer(function() t:log("defer B started"); time.sleep(2); t:log("defer B ran") end)
    t:log("spin")
end }""",
}

OTHER = """
return { title = "never runs", run = function(t) t:log("other ran") end }
"""


class RunnerDies(HaloTestCase):
    """Nothing outlives its run (issue 19): a worker is in a process group
    of its own, so a kill -9 of the runner (a CI timeout, the OOM killer, a
    closed terminal) misses it. It watches a lifeline the runner holds, and
    when the runner is gone it does what SIGTERM does: the check is
    cancelled, its defers run within the grace, and it exits."""

    def test_kill_9_of_the_runner_ends_its_worker_after_its_defers(self):
        state = tempfile.mkdtemp(prefix="halo-state-")
        self.addCleanup(shutil.rmtree, state, True)
        marker = self.tmp_path("defer-ran")
        stack = self.tmp_path("stack.lua")
        with open(stack, "w") as f:
            f.write("return { allow_exec = { \"touch\" }, marker = %s }\n" % json.dumps(marker))
        d = self.checks_dir({"1-sleeps.lua": textwrap.dedent("""
            local time, proc = require "time", require "proc"
            return { title = "sleeps", timeout = 60, run = function(t, stack)
              t:defer(function() assert(proc.run{ argv = { "touch", stack.marker } }) end)
              t:step("sleep", time.sleep, 30)
            end }
            """)})
        h = Running(["run", "--checks", d, "--stack", stack, "--grace", "10"], env={"XDG_STATE_HOME": state})
        try:
            h.wait_for_stderr(r"\[1\] start: sleeps")
            time.sleep(0.5)
            workers = h.workers()
            self.assertEqual(len(workers), 1, "no worker to orphan")
            worker = workers[0]
            os.kill(h.pid, signal.SIGKILL)
            h.proc.wait(5)
            started = time.monotonic()
            while is_alive(worker) and time.monotonic() - started < 10:
                time.sleep(0.02)
            took = time.monotonic() - started
            self.assertFalse(is_alive(worker), "the worker outlived its runner by 10 s")
            self.assertTrue(os.path.exists(marker), "the worker exited without running its defer")
            print(f"\n[test_signals] worker gone {took:.3f} s after kill -9 of its runner", flush=True)
        finally:
            h.kill()


class CleanupStopsOrphans(HaloTestCase):
    """`halo cleanup` never races a live injector (issue 19): a worker whose
    runner is gone is asked to stop (SIGTERM) and waited for before
    anything is restored; one whose runner lives is left alone."""

    def journal(self, state, worker, runner, runner_start):
        d = os.path.join(state, "halo", "runs")
        os.makedirs(d, exist_ok=True)
        with open(f"/proc/{worker.pid}/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        with open(os.path.join(d, f"{worker.pid}.json"), "w") as f:
            json.dump({"pid": worker.pid, "start": start, "in_worker": True, "runner": runner,
                       "runner_start": runner_start, "entries": []}, f)

    def test_an_orphaned_worker_is_stopped_before_cleanup_restores(self):
        state = tempfile.mkdtemp(prefix="halo-state-")
        self.addCleanup(shutil.rmtree, state, True)
        # a stand-in for a worker that outlived its runner: it ends on SIGTERM
        worker = subprocess.Popen(["sleep", "60"])
        self.addCleanup(worker.kill)
        dead = subprocess.Popen(["true"])
        dead.wait()
        self.journal(state, worker, dead.pid, 12345)
        p = subprocess.run([HALO, "cleanup"], capture_output=True, text=True, env=halo_env({"XDG_STATE_HOME": state}),
                           timeout=60)
        self.assertRegex(p.stdout, r"its worker %d outlived its runner: asking it to stop" % worker.pid)
        self.assertRegex(p.stdout, r"worker %d stopped after [\d.]+ s" % worker.pid)
        self.assertEqual(worker.wait(5), -signal.SIGTERM)

    def test_a_worker_of_a_live_runner_is_left_alone(self):
        state = tempfile.mkdtemp(prefix="halo-state-")
        self.addCleanup(shutil.rmtree, state, True)
        worker = subprocess.Popen(["sleep", "60"])
        self.addCleanup(worker.kill)
        with open(f"/proc/{os.getpid()}/stat") as f:
            me = int(f.read().rsplit(")", 1)[1].split()[19])
        self.journal(state, worker, os.getpid(), me)  # its "runner" is this test: alive
        p = subprocess.run([HALO, "cleanup"], capture_output=True, text=True, env=halo_env({"XDG_STATE_HOME": state}),
                           timeout=60)
        self.assertIn(f"run {worker.pid} is still going", p.stdout)
        self.assertIsNone(worker.poll(), "a live run's worker was stopped")


class CleanupOrder(HaloTestCase):
    """`halo cleanup` makes a drained swarm node active again, and starts a
    stopped one, before it restores a service's spec: the other way round,
    the restored service would run every task on the nodes left, and the
    node's return would move none back. Read from what cleanup says it
    could not do (the manager here does not answer), in order."""

    def test_swarm_nodes_before_services(self):
        state = tempfile.mkdtemp(prefix="halo-state-")
        self.addCleanup(shutil.rmtree, state, True)
        d = os.path.join(state, "halo", "runs")
        os.makedirs(d)
        dead = subprocess.Popen(["true"])
        dead.wait()
        manager = "unix://" + os.path.join(state, "no-manager.sock")
        # as a check journals them: the service updated first, a node
        # drained and another stopped after, a container killed on a node
        entries = [{"undo": "service spec", "id": "svc1", "name": "halo_api", "namespace": "halo", "host": manager,
                    "spec": {"Name": "halo_api"}},
                   {"undo": "node availability", "id": "node2id", "name": "node2", "availability": "active",
                    "host": manager},
                   {"undo": "node stopped", "id": "node3id", "name": "node3", "control": ["/bin/false"],
                    "host": manager},
                   {"undo": "start", "id": "c0ffee", "container": "halo_api.1", "namespace": "halo",
                    "host": manager}]
        journal = os.path.join(d, f"{dead.pid}.json")
        with open(journal, "w") as f:
            json.dump({"pid": dead.pid, "start": 1, "entries": entries}, f)
        p = subprocess.run([HALO, "cleanup"], capture_output=True, text=True, env=halo_env({"XDG_STATE_HOME": state}),
                           timeout=60)
        said = [l for l in p.stdout.splitlines() if "could not" in l]
        self.assertEqual(len(said), 4, p.stdout + p.stderr)
        self.assertIn("make swarm node node2 active again", said[0])
        self.assertRegex(said[1], r"start swarm node node3 again: .*start of node node3 \(swarm.node_control\) "
                                  r"ended with exit 1")
        self.assertIn("restore the spec of swarm service halo_api", said[2])
        # a daemon that does not answer is not a container gone: kept for the next cleanup
        self.assertIn("start container halo_api.1", said[3])
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(os.path.exists(journal), "the journal of what could not be restored is gone")


class OneRunPerStack(HaloTestCase):
    """Two runs injecting faults into one stack make each other's verdicts
    meaningless (issue 19): the second refuses, naming the first; runs
    that only read share the stack; --force overrides."""

    def test_a_second_injecting_run_refuses_and_names_the_first(self):
        state = tempfile.mkdtemp(prefix="halo-state-")
        self.addCleanup(shutil.rmtree, state, True)
        env = {"XDG_STATE_HOME": state}
        stack = self.tmp_path("stack.lua")
        with open(stack, "w") as f:
            f.write("return { allow_faults = true }\n")
        faulty = self.checks_dir({"1-faulty.lua": textwrap.dedent("""
            local time = require "time"
            return { title = "injects", faults = true, run = function(t) time.sleep(3) end }
            """)})
        reading = self.checks_dir({"1-reads.lua": 'return { title = "reads", run = function(t) end }\n'})
        first = Running(["run", "--checks", faulty, "--stack", stack], env=env)
        try:
            first.wait_for_stderr(r"\[1\] start: injects")
            rc, out, err = run(["run", "--checks", faulty, "--stack", stack], env=env)
            self.assertEqual(rc, 2, err)
            self.assertRegex(err, r"another run is injecting faults into \S*stack\.lua \(pid %d, started "
                                  r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d, command halo run --checks " % first.pid)
            self.assertIn("--force", err)
            rc, out, err = run(["run", "--checks", reading, "--stack", stack], env=env)
            self.assertEqual(rc, 0, "a run that only reads was refused: " + err)
            rc, out, err = run(["run", "--checks", faulty, "--stack", stack, "--force"], env=env, timeout=30)
            self.assertEqual(rc, 0, err)
            self.assertEqual(first.finish(timeout=30).rc, 0)
        finally:
            first.kill()
        # the lock went with the first run
        rc, out, err = run(["run", "--checks", faulty, "--stack", stack], env=env, timeout=30)
        self.assertEqual(rc, 0, err)


class SignalsTest(HaloTestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="halo-state-")
        self.addCleanup(shutil.rmtree, self.state, True)
        self.servers = []

    def env(self):
        return {"XDG_STATE_HOME": self.state}

    def server(self):
        server = EdgeServer()
        self.addCleanup(server.stop)
        self.servers.append(server.proc.pid)
        return server.url("")

    def interrupt(self, kind, sig, rc, base=""):
        source = CHECKS[kind].replace("BASE", json.dumps(base))
        d = self.checks_dir({"1-target.lua": source, "2-other.lua": OTHER})
        out = self.tmp_path("report.json")
        h = Running(["run", "--checks", d, "--format", "json", "--out", out, "--grace", "10", "-v"],
                    env=self.env())
        try:
            h.wait_for_stderr(r"\[1\] (step|info): spin")
            if kind == "defer":
                h.wait_for_stderr(r"defer B started")
            else:
                time.sleep(0.3)
            h.send(sig)
            res = h.finish(timeout=30)
        finally:
            h.kill()
        self.assertExit(res, rc)
        with open(out) as f:
            rep = parse_report(f.read(), res)
        self.assertTrue(rep["interrupted"])
        c = rep.check(1)
        lines = logs(c)
        self.assertEqual(lines.count("defer A ran"), 1, lines)
        self.assertEqual(lines.count("defer B ran"), 1, lines)
        if kind != "defer":
            self.assertCheck(rep, 1, "ERROR", r"^interrupted\b")
        self.assertCheck(rep, 2, "ERROR", r"not run")
        self.assertNotIn("other ran", logs(rep.check(2)))
        self.assertTookLess(res.seconds, 15)
        # (the test's own HTTP server is not halo's)
        left = [p for p in h.leftovers() if p not in self.servers]
        self.assertEqual(left, [], "processes left behind by halo")
        self.assertEqual(os.listdir(os.path.join(self.state, "halo", "runs")) if os.path.isdir(
            os.path.join(self.state, "halo", "runs")) else [], [], "a journal is left")
        return rep

    def test_sigint_in_lua(self):
        self.interrupt("cpu", signal.SIGINT, 130)

    def test_sigterm_in_lua(self):
        self.interrupt("cpu", signal.SIGTERM, 143)

    def test_sigint_in_sleep(self):
        self.interrupt("sleep", signal.SIGINT, 130)

    def test_sigterm_in_sleep(self):
        self.interrupt("sleep", signal.SIGTERM, 143)

    def test_sigint_in_http(self):
        self.interrupt("http", signal.SIGINT, 130, self.server())

    def test_sigterm_in_http(self):
        self.interrupt("http", signal.SIGTERM, 143, self.server())

    def test_sigint_in_a_defer(self):
        self.interrupt("defer", signal.SIGINT, 130)

    def test_sigterm_in_a_defer(self):
        self.interrupt("defer", signal.SIGTERM, 143)


class DockerSignalsTest(HaloTestCase):
    @classmethod
    def setUpClass(cls):
        dockerenv.ensure_docker()
        cls.project = dockerenv.Project()
        cls.project.up()

    @classmethod
    def tearDownClass(cls):
        cls.project.down()

    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="halo-state-")
        self.addCleanup(shutil.rmtree, self.state, True)
        self.stack = self.tmp_path("stack.lua")
        with open(self.stack, "w") as f:
            f.write(f'return {{ allow_faults = true, compose = {{ project = "{self.project.name}", files = {{ "{dockerenv.COMPOSE_FILE}" }} }} }}\n')
        # whatever a test leaves, the next one finds the container running
        self.addCleanup(self.heal)

    def heal(self):
        self.project.up(wait_healthy=False)     # a recreated web has its own configuration again
        state = self.project.inspect("web")["State"]
        if state["Paused"]:
            subprocess.run(["docker", "unpause", self.project.container_id("web")], capture_output=True)
        elif not state["Running"]:
            subprocess.run(["docker", "start", self.project.container_id("web")], capture_output=True)
        self.project.wait_running("web")

    def env(self):
        # compose reads the web port from the environment: halo run and
        # halo cleanup both get it, as an operator's shell would have it
        return {"XDG_STATE_HOME": self.state, "HALOTEST_WEB_PORT": str(self.project.port)}

    def journals(self):
        d = os.path.join(self.state, "halo", "runs")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def cleanup_cmd(self, *args):
        p = subprocess.run([HALO, "cleanup"] + list(args), capture_output=True, text=True,
                           env=halo_env(self.env()), timeout=120)
        return p

    def start_pausing_check(self, defer_sleep=0, extra=""):
        d = self.checks_dir({"1-pause.lua": textwrap.dedent(f"""\
            local docker, time = require "docker", require "time"
            return {{ title = "pauses web", timeout = 120, run = function(t)
              {"t:defer(function() t:log('slow defer'); time.sleep(%d) end)" % defer_sleep if defer_sleep else ""}
              local web = assert(docker.container{{ service = "web" }})
              assert(web:pause())
              {extra}
              t:step("nap", time.sleep, 60)
            end }}
        """)})
        out = self.tmp_path("report.json")
        h = Running(["run", "--checks", d, "--stack", self.stack, "--format", "json", "--out", out,
                     "--grace", "30", "-v"], env=self.env())
        self.addCleanup(h.kill)
        h.wait_for_stderr(r"\[1\] step: nap", timeout=60)
        return h, out

    def test_sigint_unpauses(self):
        h, out = self.start_pausing_check()
        self.assertTrue(self.project.inspect("web")["State"]["Paused"])
        self.assertEqual(len(self.journals()), 1, "the pause is journalled while the run goes on")
        h.send(signal.SIGINT)
        res = h.finish(timeout=60)
        self.assertExit(res, 130)
        self.assertFalse(self.project.inspect("web")["State"]["Paused"])
        self.assertEqual(self.journals(), [])
        self.assertNoLeftovers(h)

    def test_second_sigint_cuts_teardown_short(self):
        h, out = self.start_pausing_check(defer_sleep=20)
        h.send(signal.SIGINT)
        h.wait_for_stderr(r"slow defer")
        h.send(signal.SIGINT)
        res = h.finish(timeout=30)
        self.assertExit(res, 130)
        # says what was left undone
        self.assertRegex(res.err, r"cleanup of check 1 cut short .*what it changed may not be undone")
        with open(out) as f:
            rep = parse_report(f.read(), res)
        self.assertCheck(rep, 1, "ERROR", r"interrupted twice")
        # the runner replays the undo of the worker it killed, and forgets its journal
        self.assertFalse(self.project.inspect("web")["State"]["Paused"])
        self.assertEqual(self.journals(), [])
        self.assertTookLess(res.seconds, 15)

    def test_kill_9_of_runner_and_worker(self):
        h, out = self.start_pausing_check()
        workers = children_of(h.pid)
        self.assertTrue(workers)
        os.kill(h.pid, signal.SIGKILL)
        for w in workers:
            os.killpg(w, signal.SIGKILL)
        h.proc.wait(10)
        time.sleep(0.5)
        self.assertTrue(self.project.inspect("web")["State"]["Paused"])
        self.assertEqual(len(self.journals()), 1)
        dry = self.cleanup_cmd("--dry-run")
        self.assertEqual(dry.returncode, 0, dry.stderr)
        self.assertRegex(dry.stdout, r"run \d+ \(gone\) left: unpause container \S*web\S* \(project ")
        self.assertTrue(self.project.inspect("web")["State"]["Paused"], "--dry-run changed something")
        p = self.cleanup_cmd()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"unpaused \S+web")
        self.assertFalse(self.project.inspect("web")["State"]["Paused"])
        self.assertEqual(self.journals(), [])
        again = self.cleanup_cmd()
        self.assertEqual((again.returncode, again.stdout), (0, "nothing left behind by a killed run\n"))

    def test_cleanup_leaves_a_live_run_alone(self):
        h, out = self.start_pausing_check()
        p = self.cleanup_cmd()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"run \d+ is still going")
        self.assertTrue(self.project.inspect("web")["State"]["Paused"])
        h.send(signal.SIGTERM)
        self.assertExit(h.finish(timeout=60), 143)
        self.assertFalse(self.project.inspect("web")["State"]["Paused"])

    def test_recreated_service_is_labelled_and_restored(self):
        d = self.checks_dir({"1-recreate.lua": textwrap.dedent(f"""\
            local docker, time = require "docker", require "time"
            return {{ title = "recreates web", timeout = 120, run = function(t, stack)
              local compose = docker.compose{{ files = stack.compose.files, project = stack.compose.project }}
              assert(compose:up{{ services = {{ "web" }}, no_deps = true, env = {{ web = {{ HALO_MARK = "rotated" }} }} }})
              t:step("nap", time.sleep, 60)
            end }}
        """)})
        h = Running(["run", "--checks", d, "--stack", self.stack, "-v"], env=self.env())
        self.addCleanup(h.kill)
        h.wait_for_stderr(r"\[1\] step: nap", timeout=90)
        info = self.project.inspect("web")
        self.assertIn("HALO_MARK=rotated", info["Config"]["Env"])
        self.assertEqual(info["Config"]["Labels"].get("io.halo.run"), str(h.pid))
        workers = children_of(h.pid)
        os.kill(h.pid, signal.SIGKILL)
        for w in workers:
            os.killpg(w, signal.SIGKILL)
        h.proc.wait(10)
        p = self.cleanup_cmd()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"recreated web with its own configuration")
        info = self.project.inspect("web")
        self.assertNotIn("HALO_MARK=rotated", info["Config"]["Env"])
        self.assertNotIn("io.halo.run", info["Config"]["Labels"])
        self.assertEqual(self.journals(), [])


if __name__ == "__main__":
    unittest.main()
