"""The checks halo ships rest on the contract, not on the stand-in's
conveniences (docs/writing-checks.md, "What a verdict may rest on"): no
check under scripts/checks/ names a health endpoint, a header naming the
replica, or the digest the stand-in prints on a rendered page. Where a
check needs to know when a replica is ready or back behind the LB, it asks
scripts/lib/pulp.lua's steering helpers (wait_ready, wait_rejoined), whose
answers never decide a verdict; they are the only places in the lib that
may read those things.

A cheap guard, not the proof: the proof is test_checks_strict.py, which
runs every check against a stand-in that offers none of them. This test
fails at once, without a stack, when a check starts leaning on one.

Run: cd tests/engine && HALO_SOURCE=../.. python3 -m unittest -v test_contract_only
"""
import os
import re
import unittest

from halotest import SOURCE

CHECKS = os.path.join(SOURCE, "scripts", "checks")
PULP = os.path.join(SOURCE, "scripts", "lib", "pulp.lua")

# what a verdict must not rest on, as it would appear in a check's source
CONVENIENCES = {
    r"(?i)x-served-by": "the header naming the replica",
    r"(?i)x-upstream": "the LB's header naming the upstream",
    r"(?i)x-asset-sha256": "the stand-in's digest header",
    r"/health\b": "a health endpoint",
    r"sha256:": "the digest the stand-in prints on the page",
}
# the pulp.lua functions that may steer with them
STEERING = {"Endpoint:health", "Endpoint:ready", "M.wait_ready", "M.wait_rejoined"}


def code_lines(path):
    """(number, line) of the Lua code, comments dropped."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            yield n, line.split("--", 1)[0]


class ContractOnlyTest(unittest.TestCase):
    def test_checks_name_no_convenience(self):
        files = sorted(f for f in os.listdir(CHECKS) if f.endswith(".lua"))
        self.assertGreaterEqual(len(files), 6)
        found = []
        for name in files:
            for n, code in code_lines(os.path.join(CHECKS, name)):
                for pattern, what in CONVENIENCES.items():
                    if re.search(pattern, code):
                        found.append(f"scripts/checks/{name}:{n}: {what}: {code.strip()}")
        self.assertEqual(found, [], "checks that lean on a convenience of the stand-in")

    def test_pulp_reads_them_only_to_steer(self):
        function, found = None, []
        for n, code in code_lines(PULP):
            m = re.match(r"^\s*function\s+([\w.:]+)", code)
            if m:
                function = m.group(1)
            for pattern, what in CONVENIENCES.items():
                if re.search(pattern, code) and function not in STEERING:
                    found.append(f"scripts/lib/pulp.lua:{n} in {function}: {what}: {code.strip()}")
        self.assertEqual(found, [], "pulp.lua reads a convenience outside its steering helpers")

    def test_the_guard_bites(self):
        """The patterns find what they are for (a guard that cannot fail is
        no guard)."""
        samples = ['res.headers["x-served-by"] == "api2"', 'lb:call("GET", "/health")',
                   'pdf:find("sha256: " .. digest)', 'h["X-Asset-Sha256"]', 'res.headers["X-Upstream"]']
        for sample in samples:
            self.assertTrue(any(re.search(p, sample) for p in CONVENIENCES), sample)
        self.assertFalse(any(re.search(p, 'pulp.replica(stack, "api1"):call("GET", "/templates")')
                             for p in CONVENIENCES))


if __name__ == "__main__":
    unittest.main()
