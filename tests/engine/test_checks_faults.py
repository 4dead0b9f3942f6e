"""The checks beyond the report (scripts/faults/) end to end on the
reference stack, wired through halo's fault proxy: `halo run --checks
scripts/faults` as an operator runs it.

- Healthy single-tenant stack: 7 to 11 PASS (10 without its tenant part);
  multi-tenant, 10 with it.
- Each fault switch: the check that exists to catch it FAILs with a message
  saying what broke.
- After every run: no row a check created, the replicas healthy with their
  original settings, every proxy link healed and listening, no replica
  left with a skewed clock, no output holding a secret.

Its own compose project and ports, so it runs beside test_checks.py and
test_checks_strict.py (side_by_side.py). Each run's wall time is printed.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \\
     python3 -m unittest -v test_checks_faults
"""
import json
import os
import unittest

from halotest import SOURCE
from refstack import STACK_MULTI, RefStack, http_get
from test_checks import ChecksHarness

FAULT_CHECKS = os.path.join(SOURCE, "scripts", "faults")
# check 12 (a node is lost) needs replicas on more than one node: N/A on
# this one-machine stack (test_swarm.py runs it on the swarm)
HEALTHY = {**{i: "PASS" for i in range(7, 12)}, 12: "N/A"}

# fault switch -> {check id: message pattern of its FAIL}
FAULTS = {
    "FAULT_READY_IGNORES_DB": {
        7: r"api1's /health/ready still said HTTP 200 [\d.]+ s after its database link was cut: a readiness "
           r"that ignores the database keeps a replica that cannot serve in rotation"},
    "FAULT_DB_NO_RECONNECT": {
        8: r"api[12] did not serve GET /templates within \d+ s of PostgreSQL being back \(last answer: HTTP 503\): "
           r"it does not reconnect after losing its database connections"},
    "FAULT_LB_NO_UPSTREAM_TIMEOUT": {
        9: r"[1-9]\d* of \d+ requests through the LB failed while api1 was silent \(budget 0; clients wait 9 s, "
           r"the LB's upstream timeout is 5 s\): the LB keeps waiting on a replica that accepts and never answers"},
    "FAULT_FIRE_TIME_LOCAL_CLOCK": {
        10: r"fire time \S+ was recorded [\d.]+ s before it came \(by api1\): a replica fires by its own clock"},
    "FAULT_SHUTDOWN_DROPS_INFLIGHT": {
        11: r"[1-9]\d* of 8 renders in flight failed when api1 was stopped \(first: HTTP 502\): it drops requests "
            r"in flight instead of finishing them"},
}


class FaultChecksTest(ChecksHarness):
    refstack = RefStack("halotest-faults")
    # every path through the fault proxy's links, for `up` and halo alike
    mode = {"PROXY_LINKS": "1", "LB_UPSTREAM_TIMEOUT_S": "5"}

    def links(self):
        status, _, body = http_get(f"http://127.0.0.1:{self.refstack.proxy_port}/links")
        self.assertEqual(status, 200, body)
        return json.loads(body)["links"]

    def assertHealed(self):
        links = self.links()
        self.assertEqual(sorted(l["name"] for l in links), ["api1-db", "api2-db", "lb-api1", "lb-api2"])
        for link in links:
            self.assertEqual(link["faults"], [], f"link {link['name']} still has faults")
            self.assertTrue(link["listening"], f"link {link['name']} is not listening")
        for svc in ("api1", "api2"):
            env = self.refstack.container_env(svc)
            self.assertNotIn("FAKETIME", env, f"{svc} still runs with a skewed clock")

    def run_faults(self, ids, expected, messages=None, what="run"):
        before = self.rows()
        p, report, md = self.halo_run(*[str(i) for i in ids], checks=FAULT_CHECKS, what=what)
        self.assertStatuses(p, report, expected, messages)
        self.assertLeftAsFound(before)
        self.assertHealed()
        return p, report, md

    def test_01_healthy(self):
        """On the healthy stack every check beyond the report PASSes, with
        its evidence, under the directory's own heading."""
        self.up()
        p, report, md = self.run_faults([], HEALTHY, what="healthy, every check beyond the report")
        self.assertIn("\nChecks — Beyond the report: database, network, clock, shutdown and node faults:  \n", md)
        self.assertEqual(report["checks_title"], "Beyond the report: database, network, clock, shutdown and node faults")
        checks = {c["id"]: c for c in report["checks"]}
        ev7 = checks[7]["evidence"]
        self.assertLess(ev7["time to notice (s)"], 5)
        self.assertEqual(ev7["requests through the LB"]["failures"], 0)
        self.assertGreater(ev7["requests through the LB"]["sent"], 200)
        self.assertRegex(checks[8]["evidence"]["replicas"]["api2"], r"^serving [\d.]+ s after the database was back")
        ev9 = checks[9]["evidence"]
        self.assertGreaterEqual(ev9["LB gave up after (s)"], 4.5, "a request met the silent replica and waited")
        self.assertEqual(ev9["detection"]["chart"], "events")
        self.assertEqual(checks[10]["evidence"]["tenant archive"], "not checked: a single-tenant stack")
        self.assertGreaterEqual(len(checks[10]["evidence"]["schedule_executions"]), 3)
        self.assertGreater(checks[11]["evidence"]["connections from the LB open in api1 at the stop"], 0)
        # the faults and their heals are on the run's record, for the timeline
        actions = [json.loads(a) if isinstance(a, str) else a for a in checks[7].get("actions", [])]
        self.assertTrue(any("cut" in str(a.get("action")) for a in actions), actions)
        self.assertTrue(any("heal" in str(a.get("action")) for a in actions), actions)

    def test_02_clocks_apart_multi_tenant(self):
        """Multi-tenant, check 10 archives a tenant through the skewed
        replica too: the other one refuses its writes within TTL + skew."""
        self.addCleanup(self.up)
        self.up(MULTI_TENANT_ENABLED="true")
        before = self.rows()
        p, report, _ = self.halo_run("10", checks=FAULT_CHECKS, stack=STACK_MULTI, what="clocks apart, multi-tenant")
        self.assertStatuses(p, report, {10: "PASS"})
        self.assertLessEqual(float(report["checks"][0]["evidence"]["archive reached api2 after (s)"]), 1.5 + 5 + 0.5)
        self.assertLeftAsFound(before)
        self.assertHealed()

    def fault(self, variable):
        expected = FAULTS[variable]
        self.addCleanup(self.up)
        self.up(**{variable: "1"})
        self.run_faults(list(expected), {i: "FAIL" for i in expected}, expected, what=variable)

    def test_10_readiness_ignores_the_database(self):
        self.fault("FAULT_READY_IGNORES_DB")

    def test_11_never_reconnects(self):
        expected = FAULTS["FAULT_DB_NO_RECONNECT"]
        self.addCleanup(self.up)
        # the replicas stay broken after the FAIL: that is the fault
        self.up(FAULT_DB_NO_RECONNECT="1")
        before = self.rows()
        p, report, _ = self.halo_run("8", checks=FAULT_CHECKS, what="FAULT_DB_NO_RECONNECT")
        self.assertStatuses(p, report, {8: "FAIL"}, expected)
        self.assertHealed()
        self.refstack.compose(["up", "-d", "--force-recreate", "--no-deps", "api1", "api2"],
                              {"FAULT_DB_NO_RECONNECT": "1"})
        for svc in ("api1", "api2"):
            self.refstack.wait_healthy(svc)
        self.assertEqual(self.rows(), before)

    def test_12_lb_without_upstream_timeout(self):
        self.fault("FAULT_LB_NO_UPSTREAM_TIMEOUT")

    def test_13_fire_times_from_the_local_clock(self):
        self.fault("FAULT_FIRE_TIME_LOCAL_CLOCK")

    def test_14_shutdown_drops_requests_in_flight(self):
        self.fault("FAULT_SHUTDOWN_DROPS_INFLIGHT")


if __name__ == "__main__":
    unittest.main()
