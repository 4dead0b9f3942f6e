"""The six HA checks against the reference stack's strict mode: the same
runs as test_checks.py (healthy single- and multi-tenant, every fault
switch, nothing left behind), with the stand-in offering nothing beyond the
contract (STANDIN_STRICT=1: no X-Served-By or X-Upstream, no digest or
filename on the rendered page, compressed PDF streams with the PNG as an
image XObject, lists in random order, bare error bodies, another key
fingerprint) and check 6 cutting over as the report did, every replica at
once (ROTATION_MODE=together). A check whose verdict rests on a
convenience of the stand-in, not on the contract, fails here.

Its own compose project and ports, so it may run beside test_checks.py.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \\
     python3 -m unittest -v test_checks_strict
"""
import unittest

import test_checks
from refstack import RefStack


class StrictChecksTest(test_checks.ChecksTest):
    refstack = RefStack("halotest-strict")
    mode = {"STANDIN_STRICT": "1", "ROTATION_MODE": "together"}
    asset_form = r"^as the PNG's compressed image data \(IDAT\)"

    def test_02_example_check(self):
        self.skipTest("the example checks are docs/writing-checks.md's, run in test_checks")

    def test_19_kill_9_of_the_runner_during_checks_4_and_6(self):
        self.skipTest("the runner's own death, not the contract: test_checks runs it")

    def test_20_full_run_under_valgrind(self):
        self.skipTest("memory, not the contract: test_checks runs it")


if __name__ == "__main__":
    unittest.main()
