"""luacheck (Debian: lua-check) over the repository's Lua, with the
globals .luacheckrc declares per file set: clean, so that a warning in a
check, a library or a test is seen the day it is written."""
import os
import shutil
import subprocess
import unittest

from halotest import SOURCE

LUACHECK = shutil.which("luacheck")


@unittest.skipUnless(LUACHECK, "luacheck is not installed (apt install lua-check; tools/setup.sh does)")
class Luacheck(unittest.TestCase):
    def test_clean(self):
        r = subprocess.run([LUACHECK, "--no-color", "--formatter", "plain", "scripts", "examples", "tests"],
                           cwd=SOURCE, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, "luacheck found (see .luacheckrc):\n" + r.stdout + r.stderr)

    def test_a_warning_is_caught(self):
        """The configuration does not silence what it is there to find."""
        r = subprocess.run([LUACHECK, "--no-color", "--formatter", "plain", "-"], cwd=SOURCE,
                           input="local unused = 1\nreturn undefined_global\n", capture_output=True, text=True,
                           timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unused variable 'unused'", r.stdout)
        self.assertIn("undefined variable 'undefined_global'", r.stdout)


if __name__ == "__main__":
    unittest.main()
