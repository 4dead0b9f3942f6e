"""The swarm backend end to end: the docker module's swarm part
(engine/mod/docker/swarm.lua) and the six HA checks (scripts/checks/) on
the reference stack deployed on the two-node loopback swarm
(tests/stack/swarm/, tests/swarm/README.md), through tests/stack/stack-swarm.lua.

SwarmModule (`halo eval`/`halo run` on the deployed stack):
- d:services{} lists exactly <stack>_api, _db, _lb; the api has 2 running
  tasks on node1 and node2 (the halo.node label); t:container() of each
  task is the container the swarm says, on that node's own daemon socket;
- misuse raises a clear error and changes nothing (docker.daemon with an
  http:// host or an unknown option, s:update{ bogus = 1 },
  update.order = "sideways");
- s:update{ env = } takes effect on both tasks and is undone when the eval
  ends: the spec is the deployed one again and the service converged;
- a kill of a task's container: the eval ends only once the swarm replaced
  it (2 running tasks on 2 nodes, a new task in that slot);
- kill -9 of a `halo run` whose check had updated the service: the spec
  stays changed, the journal names it, `halo cleanup` restores it;
- n:drain{} of node2 moves its task to node1 and is undone at the end (node2
  active; the swarm does not move a replica back by itself, so the test
  replaces the moved one and the spread puts it on node2: 2 tasks on 2
  nodes again) -- only when no other stack runs on the swarm (a drain would
  stop that stack's tasks too).

SwarmChecks (`halo run --stack tests/stack/stack-swarm.lua`):
- healthy single-tenant: 1, 2, 3, 4, 6 PASS and 5 N/A; multi-tenant: all
  six PASS;
- every fault switch of test_checks.FAULTS makes its own check FAIL with
  the message test_checks expects. To save CI time (a new FAULT_* value
  rolls the api service, ~30 s, and every run of check 6 takes ~100 s)
  switches whose checks are disjoint are deployed together (FAULT_GROUPS:
  3 deployments for 8 switches); the checks no switch of the group is for
  must still give their healthy status (test_checks runs each switch alone);
- check 12 (scripts/faults, a node is lost): on the healthy stack node2 is
  marked down, its replica runs on node1, no request through the LB fails,
  and node2 comes back with the replicas spread again; with
  FAULT_API_ONE_PER_NODE=1 (deployed with the first fault group) it FAILs:
  the lost node's replica stays pending;
- after every run: no secret of the stack in any output or report, no row
  a check created, the api service's environment as deployed, both nodes
  ready and active, 2 running api tasks on 2 nodes, both replicas serving
  the original admin key.

Every run's wall time is printed ([test_swarm] lines), never asserted.

The stack is swarm stack "halotest-swarm" on free 127.0.0.1 ports (a random
API_PORT_PREFIX in 2000..2999 whose PREFIX1/PREFIX2 are free), deployed with
tests/stack/swarm/up and removed with tests/stack/swarm/down on every path.
The swarm (tools/swarm-up, idempotent) is left up: it may be shared.
SWARM_TEST_STACK names another stack (two runs side by side); SWARM_DIR
another swarm.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \
     python3 -m unittest -v test_swarm
"""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
import time
import unittest

from halotest import HALO, SOURCE, Running, halo_env, journal_entries, kill_9_run, write_checks
from swarmstack import ADMIN, DOWN, EDITOR, STACK, SWARM_DIR, TOKEN_SECRET, UP, SwarmStack
from test_checks import CHECKS, FAULTS, HEALTHY_MULTI, HEALTHY_SINGLE, ChecksHarness, run_with_reports
from refstack import http_get

NAME = os.environ.get("SWARM_TEST_STACK") or "halotest-swarm"  # two runs side by side: another name
S = SwarmStack(NAME)
DB_PASSWORD = "halo-url-pw-8Rw3"
SECRETS = [ADMIN, EDITOR, TOKEN_SECRET, DB_PASSWORD]

# Fault switches deployed together: (multi-tenant?, switches, check ids run).
# Each check id is the target of at most one switch of its group.
FAULT_GROUPS = [
    (False, ["FAULT_TOKEN_SECRET_PER_REPLICA", "FAULT_READY_BEFORE_SERVING"], [1, 2, 3, 4, 5, 6]),
    (False, ["FAULT_LB_NO_FAILOVER", "FAULT_ASSETS_LOCAL", "FAULT_SCHEDULE_EVERY_REPLICA", "FAULT_PREVIOUS_KEYS_LATE"],
     [1, 2, 3, 4, 5, 6]),
    (True, ["FAULT_TENANT_CACHE_FOREVER", "FAULT_PREVIOUS_KEY_AS_API_KEY"], [1, 2, 3, 5, 6]),
]
# Check 12 (scripts/faults: a node is lost) and the swarm's own switch for
# it, deployed with the first group (the six checks do not mind one replica
# per node: a kill is replaced on the same node, a roll is stop-first).
FAULTS_DIR = os.path.join(SOURCE, "scripts", "faults")
NODE_FAULT = "FAULT_API_ONE_PER_NODE"
NODE_FAULT_GROUP = 0
NODE_LOST_FAIL = (r"the service did not have all its replicas running \d+ s after node2 was lost: its replicas were "
                  r"not run on the nodes left \(.*\(no node\) \(pending\): api[12]")


def log(text):
    print(f"\n[test_swarm] {text}", flush=True)


_module = {}


def deployed(settings=None):
    """tests/stack/swarm/up with these settings (nothing else: an earlier
    switch is turned off again); the api's environment afterwards."""
    p = S.script(UP, settings)
    if p.returncode != 0:
        raise AssertionError(f"tests/stack/swarm/up {settings or {}} failed:\n{p.stdout[-4000:]}\n{p.stderr[-2000:]}")
    log(f"tests/stack/swarm/up {' '.join(f'{k}={v}' for k, v in (settings or {}).items()) or '(healthy)'}: "
        f"{p.seconds:.1f} s")
    _module["settings"] = dict(settings or {})
    _module["api env"] = S.api_env()
    return _module["api env"]


def setUpModule():
    _module["t0"] = time.monotonic()
    S.open()  # or SkipTest
    unittest.addModuleCleanup(S.close)


def tearDownModule():
    if "t0" in _module:
        log(f"whole suite {time.monotonic() - _module['t0']:.1f} s")


def load_tests(loader, tests, pattern):
    """The module's fast tests first, on the healthy stack the checks start on."""
    suite = unittest.TestSuite()
    for cls in (SwarmModule, SwarmChecks):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


class SwarmCase(unittest.TestCase):
    maxDiff = None
    refstack = S   # for ChecksHarness.rows
    settings = {}  # the deployment the class's tests start on

    @classmethod
    def setUpClass(cls):
        if _module.get("settings") != cls.settings:
            deployed(cls.settings)
        S.wait_converged(120)
        cls.t_start = time.monotonic()

    @classmethod
    def tearDownClass(cls):
        log(f"{cls.__name__}: {time.monotonic() - cls.t_start:.1f} s")

    def setUp(self):
        self.state_dir = tempfile.mkdtemp(prefix="halo-swarm-state-")
        self.addCleanup(shutil.rmtree, self.state_dir, True)

    def halo_env(self, extra=None):
        env = halo_env(S.env(dict(_module.get("settings", {}), **(extra or {}))))
        env["XDG_STATE_HOME"] = self.state_dir
        return env

    def expected_state(self):
        return {"nodes": {"node1": ("ready", "active"), "node2": ("ready", "active")},
                "api running tasks": 2, "api nodes": ["node1", "node2"], "api update": None,
                "api env": _module["api env"]}

    def assertAsFound(self, what):
        self.assertEqual(S.state(), self.expected_state(), f"the swarm is not as found after {what}")

    def journals(self):
        return sorted(glob.glob(os.path.join(self.state_dir, "halo", "runs", "*.json")))

    def start_check(self, source, says):
        """`halo run` of one check (source) on the stack, going on once its
        output says `says` (a regex)."""
        checks = write_checks({"01-check.lua": textwrap.dedent(source)})
        self.addCleanup(shutil.rmtree, checks, True)
        h = Running(["run", "--checks", checks, "--stack", STACK, "-v"], cwd=SOURCE, env=self.halo_env())
        self.addCleanup(h.kill)
        h.wait_for_stderr(says, timeout=120)
        return h

    def eval(self, code, timeout=300, what=None):
        """halo eval on the stack; --grace: a service's restore at the end
        rolls both tasks (stop-first), ~20 s, more than the default 10 s."""
        t0 = time.monotonic()
        p = subprocess.run([HALO, "eval", "--stack", STACK, "--grace", "180", textwrap.dedent(code)],
                                         capture_output=True, text=True, env=self.halo_env(), cwd=SOURCE,
                                         timeout=timeout, stdin=subprocess.DEVNULL)
        p.seconds = time.monotonic() - t0
        if what:
            log(f"{what}: {p.seconds:.1f} s")
        return p

    def eval_json(self, code, timeout=300, what=None):
        p = self.eval(code, timeout, what)
        self.assertEqual(p.returncode, 0, f"halo eval failed:\n{p.stdout}\n{p.stderr}")
        return json.loads(p.stdout)


# The manager and the api service, in every eval
PRELUDE = """
local d = docker.daemon{ host = stack.swarm.manager }
local s = assert(d:service("api"))
"""


class SwarmModule(SwarmCase):
    """The docker module's swarm part on the deployed stack."""

    def test_01_services_tasks_nodes_containers(self):
        got = self.eval_json(PRELUDE + """
            local out = { services = {}, tasks = {}, nodes = {} }
            for _, x in ipairs(assert(d:services{})) do out.services[#out.services + 1] = x.name end
            for _, n in ipairs(assert(d:nodes())) do
              out.nodes[n.id] = { name = n.name, state = n.state, availability = n.availability }
            end
            for _, t in ipairs(assert(s:tasks{ desired = "running" })) do
              local c = assert(t:container())
              out.tasks[#out.tasks + 1] = { id = t.id, slot = t.slot, node = t.node_id, state = t.state,
                                            container = t.container_id, c_id = c.id, c_host = c.ep.host,
                                            c_task = c.task, c_service = c.service }
            end
            local only = assert(s:tasks{ slot = 2 })
            out.slot2 = #only > 0 and only[1].slot or false
            return json.encode(out)""", what="services, tasks, nodes, containers")
        self.assertEqual(got["services"], [f"{NAME}_api", f"{NAME}_db", f"{NAME}_lb"])
        nodes = S.nodes()
        self.assertEqual({i: n["name"] for i, n in got["nodes"].items()},
                         {n["id"]: label for label, n in nodes.items()}, "node names are the halo.node labels")
        tasks = got["tasks"]
        self.assertEqual(len(tasks), 2, tasks)
        self.assertEqual(sorted(t["slot"] for t in tasks), [1, 2])
        self.assertEqual([t["state"] for t in tasks], ["running", "running"])
        on = sorted(got["nodes"][t["node"]]["name"] for t in tasks)
        self.assertEqual(on, ["node1", "node2"], "one api task on each node")
        self.assertEqual(got["slot2"], 2)
        self.assertEqual(sorted(t["id"] for t in tasks), sorted(t["id"] for t in S.tasks("api")))
        for t in tasks:
            label = got["nodes"][t["node"]]["name"]
            n = label[-1]
            other = "2" if n == "1" else "1"
            self.assertEqual(t["c_id"], t["container"])
            self.assertEqual(t["c_host"], f"unix://{SWARM_DIR}/node{n}.sock", f"the container of {t['id']}")
            self.assertEqual((t["c_task"], t["c_service"]), (t["id"], f"{NAME}_api"))
            # the container is on that node's daemon, and not on the other's
            raw = json.loads(S.docker(n, "inspect", "--type", "container", t["c_id"]).stdout)[0]
            self.assertEqual(raw["Config"]["Labels"]["com.docker.swarm.task.id"], t["id"])
            self.assertTrue(raw["State"]["Running"])
            self.assertNotEqual(S.docker(other, "inspect", "--type", "container", t["c_id"], check=False).returncode, 0)

    def test_02_misuse_raises_clear_errors(self):
        before = S.service("api")
        cases = [
            ('docker.daemon{ host = "http://x" }', r"bad argument #1 to 'daemon' \(host 'http://x' is neither "
                                                   r"unix:///path nor tcp://host:port\)"),
            ('docker.daemon{ host = stack.swarm.manager, bogus = 1 }',
             r"bad argument #1 to 'daemon' \(unknown option 'bogus'; known: host, tls\)"),
            (PRELUDE + 's:update{ bogus = 1 }', r"eval:4: bad argument #1 to 'update' \(unknown option 'bogus'"),
            (PRELUDE + 's:update{ update = { order = "sideways" } }',
             r"eval:4: bad argument #1 to 'update' \(update\.order is \"stop-first\" or \"start-first\"\)"),
            (PRELUDE + 's:update{ update = { speed = 2 } }',
             r"eval:4: bad argument #1 to 'update' \(unknown update setting 'speed'"),
            (PRELUDE + 's:update{ env = { HALO_TEST_MARK = "1" }, original = true }',
             r"eval:4: bad argument #1 to 'update' \(env or original, not both\)"),
            (PRELUDE + 'assert(d:node("node2")):stop{ bogus = 1 }', r"eval:4: bad argument #1 to 'stop' \(unknown option 'bogus'"),
            (PRELUDE + 'assert(d:node("node2")):stop{ timeout = "soon" }',
             r"eval:4: bad argument #1 to 'stop' \(timeout must be a positive number of seconds\)"),
            (PRELUDE + 'assert(d:node("node2")):start{ timeout = -1 }',
             r"eval:4: bad argument #1 to 'start' \(timeout must be a positive number of seconds\)"),
        ]
        for code, pattern in cases:
            with self.subTest(code=code.strip().splitlines()[-1]):
                p = self.eval(code)
                self.assertEqual(p.returncode, 3, f"{p.stdout}\n{p.stderr}")
                # the message blames the caller's line (eval:4: the update), not the module
                self.assertRegex(p.stderr, "^halo: (eval:1: )?" + pattern)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        after = S.service("api")
        self.assertEqual(after["Version"]["Index"], before["Version"]["Index"], "a refused call changed the service")
        self.assertAsFound("the refused calls")

    def test_03_update_undone_at_the_end(self):
        before = {t["slot"]: t["id"] for t in S.tasks("api")}
        got = self.eval_json(PRELUDE + """
            assert(s:update{ env = { HALO_TEST_MARK = "1" }, update = { parallelism = 1, order = "stop-first" } })
            local took = assert(s:converge{ timeout = 150 })
            local marked = {}
            for _, t in ipairs(assert(s:tasks{})) do
              local has = false
              for _, kv in ipairs(t.env or {}) do if kv == "HALO_TEST_MARK=1" then has = true end end
              marked[#marked + 1] = has
            end
            return json.encode({ spec = assert(s:env()).HALO_TEST_MARK, marked = marked, took = took })""",
            what="update, converge, undo at the end")
        log(f"  update converged in {got['took']:.1f} s")
        self.assertEqual(got["spec"], "1")
        self.assertEqual(got["marked"], [True, True], "both running tasks carry the new environment")
        env = S.api_env()
        self.assertFalse(any(e.startswith("HALO_TEST_MARK") for e in env), env)
        self.assertAsFound("an update undone at the eval's end")
        self.assertEqual(self.journals(), [], "the undo's journal entry is left")
        after = {t["slot"]: t["id"] for t in S.tasks("api")}
        for slot in (1, 2):
            self.assertNotEqual(after[slot], before[slot], f"slot {slot} was never replaced")
        for t in S.tasks("api"):
            cenv = json.loads(S.docker(t["node"][-1], "inspect", "--type", "container", t["container"]).stdout)[0]
            self.assertNotIn("HALO_TEST_MARK=1", cenv["Config"]["Env"], "a task still runs with the mark")

    def test_04_killed_task_replaced_before_the_end(self):
        got = self.eval_json(PRELUDE + """
            local t = assert(s:tasks{ slot = 2 })[1]
            local c = assert(t:container())
            assert(c:kill())
            return json.encode({ task = t.id, container = c.id, host = c.ep.host })""",
            what="kill of slot 2's container, the eval waiting for its replacement")
        self.assertAsFound("a kill")
        self.assertEqual(self.journals(), [])
        tasks = {t["slot"]: t for t in S.tasks("api")}
        self.assertNotEqual(tasks[2]["id"], got["task"], "slot 2 still runs the killed task")
        n = re.search(r"node(\d)\.sock$", got["host"]).group(1)
        old = S.docker(n, "inspect", "--type", "container", "-f", "{{.State.Running}}", got["container"], check=False)
        self.assertNotEqual(old.stdout.strip(), "true", "the killed container runs again (started by halo?)")
        status, _, _ = http_get(f"http://127.0.0.1:{S.api_ports[1]}/templates", {"x-api-key": ADMIN})
        self.assertEqual(status, 200, "the replacement in slot 2 does not serve")

    def test_04_killed_container_found_on_its_node_replaced_before_the_end(self):
        # the container found on node2's own daemon, not through its task:
        # the end asks the stack's manager (not the default daemon, which
        # is not in the swarm) for the service's replicas
        t = next(t for t in S.tasks("api") if t["node"] == "node2")
        got = self.eval_json(f"""
            local c = assert(docker.daemon{{ host = stack.swarm.nodes.node2 }}:container("{t['container']}"))
            assert(c:kill())
            return json.encode({{ task = c.task }})""",
            what="kill of node2's api container found on node2's daemon")
        self.assertEqual(got["task"], t["id"])
        self.assertAsFound("a kill on node2's daemon")
        self.assertNotIn(t["id"], [x["id"] for x in S.tasks("api")], "the killed task still runs")

    def test_05_halo_cleanup_after_kill_9(self):
        t0 = time.monotonic()
        h = self.start_check("""
            local docker, time = require "docker", require "time"
            return { title = "update, then hang", timeout = 300, run = function(t, stack)
              local d = docker.daemon{ host = stack.swarm.manager }
              local s = assert(d:service("api"))
              assert(s:update{ env = { HALO_TEST_MARK = "1" } })
              t:log("updated")
              time.sleep(250)
            end }
        """, r"updated")
        entries = journal_entries(self.journals())
        specs = [e for e in entries if e.get("undo") == "service spec"]
        self.assertEqual(len(specs), 1, entries)
        self.assertEqual((specs[0]["name"], specs[0]["host"]), (f"{NAME}_api", S.manager))
        self.assertNotIn("HALO_TEST_MARK=1", specs[0]["spec"]["TaskTemplate"]["ContainerSpec"]["Env"])
        kill_9_run(h)
        self.assertIn("HALO_TEST_MARK=1", S.api_env(), "kill -9 undid the update?")
        res = subprocess.run([HALO, "cleanup"], capture_output=True, text=True, cwd=SOURCE,
                                           env=self.halo_env(), timeout=300)
        log(f"update, kill -9, halo cleanup: {time.monotonic() - t0:.1f} s; cleanup says: "
            + " / ".join(res.stdout.strip().splitlines()))
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn(f"restored the spec of {NAME}_api", res.stdout)
        self.assertAsFound("halo cleanup")
        self.assertEqual(self.journals(), [])
        again = subprocess.run([HALO, "cleanup"], capture_output=True, text=True, cwd=SOURCE,
                                             env=self.halo_env(), timeout=60)
        self.assertEqual((again.returncode, again.stdout), (0, "nothing left behind by a killed run\n"))

    def spread_back(self, keep):
        """node2 back: the swarm moves no replica back by itself; the one
        moved to node1 (not task `keep`) is killed, and its replacement
        goes to node2."""
        moved = [t for t in S.tasks("api") if t["state"] == "running" and t["id"] != keep and t["node"] == "node1"]
        self.assertEqual(len(moved), 1, f"tasks: {S.tasks('api')}")
        S.docker(1, "kill", moved[0]["container"])
        waited = S.wait_converged(120)
        log(f"  2 api tasks on 2 nodes again {waited:.1f} s after the moved one was replaced")

    def converge_after_node2_back(self, keep):
        """Once node2's daemon is back, its replica is replaced on node2, or
        (moved to node1 while node2 was down) spread back; a task counts
        as running only with its container running on its node."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            running = []
            for t in S.tasks("api"):
                node = 1 if t["node"] == "node1" else 2
                if t["state"] == "running" and t["container"] and S.docker(
                        node, "inspect", "-f", "{{.State.Running}}", t["container"], check=False).stdout.strip() == "true":
                    running.append(t)
            if len(running) == 2 and {t["node"] for t in running} == {"node1", "node2"}:
                return S.wait_converged(120)
            if len(running) == 2:
                return self.spread_back(keep)
            time.sleep(0.5)
        raise AssertionError(f"api tasks not running again 120 s after node2 came back: {S.tasks('api')}")

    def node2_daemon(self):
        return subprocess.run([os.path.join(SOURCE, "tools", "swarm-node"), "--swarm-dir", SWARM_DIR, "status", "node2"],
                              capture_output=True, text=True, timeout=30).stdout.strip()

    def test_07_stopped_node_started_at_the_end_and_by_cleanup(self):
        """node:stop() (swarm.node_control stop) is undone at the end (the
        node started and ready), and after a kill -9 by `halo cleanup`,
        from the journal; node2's replica, moved while it was down, is
        spread back by the test."""
        first = {t["node"]: t["id"] for t in S.tasks("api")}
        got = self.eval_json(PRELUDE + """
            local n = assert(d:node("node2"))
            assert(n:stop())
            return json.encode({ state = assert(d:node("node2")).state })""", what="node2 stopped, started at the end")
        self.assertIn(got["state"], ("ready", "down"))  # the manager may not have noticed yet
        self.assertTrue(self.node2_daemon().startswith("up"), "node2's daemon was not started again")
        self.assertEqual(S.nodes()["node2"]["state"], "ready")
        self.converge_after_node2_back(first["node1"])

        t0 = time.monotonic()
        second = {t["node"]: t["id"] for t in S.tasks("api")}
        h = self.start_check("""
            local docker, time = require "docker", require "time"
            return { title = "stop node2, then hang", faults = true, timeout = 300, run = function(t, stack)
              local d = docker.daemon{ host = stack.swarm.manager }
              assert(assert(d:node("node2")):stop())
              t:log("stopped")
              time.sleep(250)
            end }
        """, r"stopped")
        entries = journal_entries(self.journals())
        stopped = [e for e in entries if e.get("undo") == "node stopped"]
        self.assertEqual([(e["name"], e["host"], e["control"][-1]) for e in stopped], [("node2", S.manager, SWARM_DIR)])
        kill_9_run(h)
        self.assertEqual(self.node2_daemon(), "down", "kill -9 started node2 again?")
        res = subprocess.run([HALO, "cleanup"], capture_output=True, text=True, cwd=SOURCE, env=self.halo_env(),
                             timeout=300)
        log(f"node2 stopped, kill -9, halo cleanup: {time.monotonic() - t0:.1f} s; cleanup says: "
            + " / ".join(res.stdout.strip().splitlines()))
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("started node node2 again", res.stdout)
        self.assertTrue(self.node2_daemon().startswith("up"))
        self.assertEqual(self.journals(), [])
        self.converge_after_node2_back(second["node1"])
        self.assertAsFound("a node stopped and started again")

    def test_06_drain_undone_at_the_end(self):
        others = [n for n in S.docker(1, "service", "ls", "--format", "{{.Name}}").stdout.split()
                  if not n.startswith(NAME + "_")]
        if others:
            self.skipTest(f"other services run on the shared swarm ({', '.join(others)}): draining node2 would "
                          "move their tasks too")
        before = {t["node"]: t["id"] for t in S.tasks("api")}
        got = self.eval_json(PRELUDE + """
            local n = assert(d:node("node2"))
            assert(n:drain{})
            -- node2's task is stopped and its slot runs on node1 instead
            -- (the api spreads over the nodes, no more than that)
            local t0, on2, running = time.mono(), nil, nil
            repeat
              time.sleep(0.5)
              on2, running = 0, 0
              for _, t in ipairs(assert(s:tasks{ desired = "running" })) do
                if t.state == "running" then
                  running = running + 1
                  if t.node_id == n.id then on2 = on2 + 1 end
                end
              end
            until (running == 2 and on2 == 0) or time.mono() - t0 > 60
            return json.encode({ running = running, on2 = on2, after = time.mono() - t0,
                                 availability = assert(d:node("node2")).availability })""",
            what="drain of node2, undone at the end")
        self.assertEqual((got["running"], got["on2"], got["availability"]), (2, 0, "drain"))
        log(f"  node2's task moved to node1 {got['after']:.1f} s after the drain")
        self.assertEqual(S.nodes()["node2"]["availability"], "active", "node2 was not made active again")
        # node2 is active again; the swarm does not move a replica back by
        # itself: the moved one is replaced, and the spread puts it on node2
        self.spread_back(before["node1"])
        after = {t["node"]: t["id"] for t in S.tasks("api")}
        self.assertEqual(after["node1"], before["node1"], "node1's task was replaced")
        self.assertNotEqual(after["node2"], before["node2"], "node2 runs the task the drain stopped")
        self.assertAsFound("a drain")


class SwarmChecks(SwarmCase):
    """The six checks on the swarm, healthy and with each fault switch."""

    def halo_run(self, ids, what, checks=CHECKS):
        env = self.halo_env()
        env["DATABASE_URL"] = f"postgres://pulp:{DB_PASSWORD}@127.0.0.1:{S.db_port}/pulp"
        p, report, _, seconds = run_with_reports(self, ["--checks", checks, "--stack", STACK]
                                                 + [str(i) for i in ids], env, SECRETS)
        log(f"{what}: {seconds:.1f} s wall; "
            + ", ".join(f"{c['id']} {c['status']} {c['duration_ms'] / 1000:.1f}s" for c in report["checks"]))
        return p, report

    def run_on(self, ids, expected, messages, what, checks=CHECKS):
        before = ChecksHarness.rows(self)
        p, report = self.halo_run(ids, what, checks)
        # one pattern per call: a check may be the target of one switch only
        for check_id, pattern in messages.items():
            ChecksHarness.assertStatuses(self, p, report, expected, {check_id: pattern})
        ChecksHarness.assertStatuses(self, p, report, expected)
        counts, named = ChecksHarness.rows(self)
        self.assertEqual(named, [], "rows the checks created are left")
        self.assertEqual(counts, before[0], "the checks changed how many rows the tables hold")
        self.assertAsFound(what)
        for port in S.api_ports:
            deadline = time.monotonic() + 15   # FAULT_READY_BEFORE_SERVING: 503s for a while
            while True:
                status, _, _ = http_get(f"http://127.0.0.1:{port}/templates", {"x-api-key": ADMIN})
                if status != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            self.assertEqual(status, 200, f"the replica on :{port} refuses the original admin key")
        return report

    def redeploy(self, settings):
        if _module.get("settings") != settings:
            deployed(settings)

    def test_01_healthy_single_tenant(self):
        self.redeploy({})
        report = self.run_on(range(1, 7), HEALTHY_SINGLE, {}, "healthy single-tenant, all six")
        checks = {c["id"]: c for c in report["checks"]}
        self.assertEqual(checks[5]["message"], "single-tenant stack (MULTI_TENANT_ENABLED is not true)")
        self.assertEqual(checks[4]["evidence"]["failures"], 0)
        self.assertEqual(sorted(checks[4]["evidence"]["restarted replicas"]), ["api1", "api2"])

    def test_01_node_lost_then_back(self):
        # check 12 on the healthy stack: node2 stopped, its replica run on node1,
        # the LB serving meanwhile; node2 back and the replicas spread again
        self.redeploy({})
        report = self.run_on([12], {12: "PASS"}, {}, "healthy, check 12 (a node is lost)", checks=FAULTS_DIR)
        ev = report["checks"][0]["evidence"]
        self.assertRegex(ev["before"], r"node1 \(ready\): api[12]; node2 \(ready\): api[12]")
        self.assertRegex(ev["after"], r"node1 \(ready\): api1, api2; node2 \(down\): -")
        self.assertLess(float(ev["marked down after (s)"]), 60)
        self.assertLess(float(ev["replicas running again after (s)"]), 60)
        self.assertEqual(ev["requests through the LB"]["failures"], 0)
        self.assertGreater(ev["requests through the LB"]["sent"], 100)

    def test_02_fault_groups_cover_every_switch(self):
        switches = [f for _, group, _ in FAULT_GROUPS for f in group]
        self.assertEqual(sorted(switches), sorted(FAULTS), "every switch of test_checks.FAULTS, each once")
        for multi, group, ids in FAULT_GROUPS:
            targets = [i for f in group for i in FAULTS[f][1]]
            self.assertEqual(len(targets), len(set(targets)), f"{group}: two switches for one check")
            self.assertLessEqual(set(targets), set(ids), f"{group}: a switch's check is not run")
            for f in group:   # a single-tenant switch's check fails the same way on a multi-tenant stack
                if FAULTS[f][0]:
                    self.assertTrue(multi, f"{f} needs a multi-tenant stack")

    def fault_group(self, n):
        multi, group, ids = FAULT_GROUPS[n]
        settings = {f: "1" for f in group}
        if n == NODE_FAULT_GROUP:
            settings[NODE_FAULT] = "1"
        if multi:
            settings["MULTI_TENANT_ENABLED"] = "true"
        self.redeploy(settings)
        lb_env = S.service("lb")["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []
        for f in group:
            self.assertIn(f"{f}=1", lb_env if f.startswith("FAULT_LB_") else _module["api env"],
                          f"the stack does not run with {f}")
        healthy = HEALTHY_MULTI if multi else HEALTHY_SINGLE
        messages = {i: pattern for f in group for i, pattern in FAULTS[f][1].items()}
        expected = {i: ("FAIL" if i in messages else healthy[i]) for i in ids}
        self.run_on(ids, expected, messages, f"{'multi' if multi else 'single'}-tenant, {' + '.join(group)}")

    def test_03_faults_token_secret_and_ready_before_serving(self):
        self.fault_group(0)

    def test_03_node_lost_with_one_replica_per_node(self):
        # FAULT_API_ONE_PER_NODE (deployed with the first group): the lost
        # node's replica has nowhere to go, and check 12 says so
        if _module.get("settings", {}).get(NODE_FAULT) != "1":   # run alone (-k): deploy it first
            multi, group, _ = FAULT_GROUPS[NODE_FAULT_GROUP]
            self.redeploy(dict({f: "1" for f in group}, **{NODE_FAULT: "1"},
                               **({"MULTI_TENANT_ENABLED": "true"} if multi else {})))
        self.run_on([12], {12: "FAIL"}, {12: NODE_LOST_FAIL}, f"{NODE_FAULT}, check 12", checks=FAULTS_DIR)

    def test_04_faults_lb_no_failover_assets_local_schedule_every_replica_previous_keys_late(self):
        self.fault_group(1)

    def test_06_healthy_multi_tenant(self):
        # checks 1-5: tenancy is check 5's. Check 6 (three rolling updates,
        # 90 s on the swarm) PASSes on a healthy swarm in test_01, and on a
        # multi-tenant stack in test_checks; here it would only add time
        self.redeploy({"MULTI_TENANT_ENABLED": "true"})
        self.run_on(range(1, 6), {i: HEALTHY_MULTI[i] for i in range(1, 6)}, {}, "healthy multi-tenant, checks 1-5")

    def test_07_faults_tenant_cache_forever_and_previous_key_as_api_key(self):
        self.fault_group(2)


if __name__ == "__main__":
    unittest.main()
