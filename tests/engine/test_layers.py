"""The engine's shape: layers, no include cycle, no file past 700 lines,
the include graph in docs/architecture.md current (tools/layers.py), and
one table of modules that the files in engine/mod/, `halo help modules`,
`require` and docs/modules.md all agree with."""
import os
import re
import subprocess
import sys
import unittest

from halotest import HALO, SOURCE, run


class Layers(unittest.TestCase):
    def test_rules_hold(self):
        r = subprocess.run([sys.executable, os.path.join(SOURCE, "tools", "layers.py")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, "tools/layers.py found:\n" + r.stdout + r.stderr)

    def broken_copy(self, appends):
        """tools/layers.py on a scratch copy of the tree with lines appended
        to some of its files."""
        import shutil
        import tempfile
        with tempfile.TemporaryDirectory() as scratch:
            for part in ("engine", "tools", "docs"):
                shutil.copytree(os.path.join(SOURCE, part), os.path.join(scratch, part))
            for rel, line in appends:
                with open(os.path.join(scratch, "engine", rel), "a") as f:
                    f.write("\n" + line + "\n")
            r = subprocess.run([sys.executable, os.path.join(scratch, "tools", "layers.py")],
                               capture_output=True, text=True)
            return r.returncode, r.stdout

    def test_an_include_from_below_is_caught(self):
        rc, out = self.broken_copy([("core/util.c", '#include "run/runner.h"')])
        self.assertEqual(rc, 1)
        self.assertIn("engine/core/util.c: includes run/runner.h, of the run layer above core", out)

    def test_a_cycle_is_caught(self):
        rc, out = self.broken_copy([("core/loop.h", '#include "core/sched.h"'),
                                    ("core/sched.h", '#include "core/loop.h"')])
        self.assertEqual(rc, 1)
        self.assertRegex(out, r"include cycle: (core/loop -> core/sched -> core/loop|core/sched -> core/loop -> core/sched)")

    def test_a_long_file_is_caught(self):
        rc, out = self.broken_copy([("core/loop.c", "\n" * 800)])
        self.assertEqual(rc, 1)
        self.assertRegex(out, r"engine/core/loop.c: \d+ lines, over 700")


class ExportedNames(unittest.TestCase):
    """halo exports its functions to the plugins (ENABLE_EXPORTS), so a
    function of halo's named like one of a library it links takes that
    library's calls: run/output.c's write_history once answered libedit's
    own call from the REPL, and the REPL crashed on its first line."""

    def test_no_function_of_halo_shadows_a_linked_librarys(self):
        import shutil
        if not shutil.which("nm") or not shutil.which("ldd"):
            self.skipTest("binutils not installed")
        build = os.path.dirname(HALO)
        binaries = [HALO] + [os.path.join(build, n) for n in os.listdir(build) if n.startswith("halo_") and n.endswith(".so")]
        ours = set()
        for line in subprocess.run(["nm", "-D", "--defined-only", HALO], capture_output=True, text=True).stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "T":
                ours.add(parts[2])
        self.assertGreater(len(ours), 100, "nm found too few of halo's functions to mean anything")
        libs = set()
        for b in binaries:
            for line in subprocess.run(["ldd", b], capture_output=True, text=True).stdout.splitlines():
                if "=>" in line and len(line.split()) >= 3 and line.split()[2].startswith("/"):
                    libs.add(line.split()[2])
        theirs = {}
        for lib in sorted(libs):
            for line in subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True).stdout.splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] in ("T", "W", "i"):
                    theirs.setdefault(parts[2].split("@")[0], lib)
        clashes = {name: theirs[name] for name in ours if name in theirs}
        self.assertEqual(clashes, {}, "functions of halo named like a linked library's")


def module_table():
    with open(os.path.join(SOURCE, "engine", "mod", "modules.c")) as f:
        text = f.read()
    return re.findall(r'\{"([a-z_]+)", (\w+), ([01]), (NULL|"[^"]*"), "([^"]*)"\}', text)


class ModuleTable(unittest.TestCase):
    def test_every_module_file_is_listed_and_every_entry_has_a_file(self):
        table = module_table()
        self.assertGreaterEqual(len(table), 10)
        mod = os.path.join(SOURCE, "engine", "mod")
        files = set()
        for name in os.listdir(mod):
            stem, ext = os.path.splitext(name)
            if name in ("modules.c", "modules.h") or ext == ".h":
                continue
            files.add(stem)
        listed = {name for name, *_ in table}
        self.assertEqual(files - listed, set(), "files in engine/mod/ that no table entry names")
        for name, open_fn, plugin, source, _ in table:
            if source != "NULL":
                self.assertEqual(source, f'"mod/{name}"')
                self.assertTrue(os.path.exists(os.path.join(mod, name + ".lua")), name)
            elif plugin == "1":
                self.assertTrue(os.path.exists(os.path.join(mod, name + ".c"))
                                or os.path.isdir(os.path.join(mod, name)), name)

    def test_help_require_and_docs_agree_with_the_table(self):
        table = module_table()
        rc, out, err = run(["help", "modules"])
        self.assertEqual(rc, 0, err)
        with open(os.path.join(SOURCE, "docs", "modules.md")) as f:
            docs = f.read()
        names = [name for name, *_ in table]
        for name, _, _, _, summary in table:
            self.assertRegex(out, rf"(?m)^  {name} +{re.escape(summary)}$")
            self.assertRegex(docs, rf"(?m)^## {name}$", f"docs/modules.md has no section for {name}")
        code = "local n = 0 for _, m in ipairs{%s} do assert(require(m)) n = n + 1 end return n" % \
            ", ".join(f'"{n}"' for n in names)
        rc, out, err = run(["eval", code])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), str(len(names)))
        rc, out, err = run(["eval", 'return require "nosuch"'])
        self.assertNotEqual(rc, 0)
        self.assertIn("not a host module (" + ", ".join(names) + ")", err)


if __name__ == "__main__":
    unittest.main()
