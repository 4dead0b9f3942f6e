"""halo installed (issue 17, items 1-3): `cmake --install` lays out a prefix
that works wherever it is copied to, from any directory; the man page and
the bash completion are generated from the CLI's table and say every
option it has; `cpack -G DEB` makes a package whose Depends was computed
from the shared libraries, which installs with dpkg -i, runs from $HOME
(version, man page, completion, a new check linted and run, the six checks
on the installed reference stack) and leaves nothing after dpkg --purge.

Installed and ManAndCompletion are quick (ctest e2e.test_install);
DebianPackage runs cpack with dpkg-shlibdeps and a stack (ctest
e2e.test_install_deb_with_html_report, beside test_html_report)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from halotest import HALO, SOURCE

BUILD = os.path.dirname(HALO)
ENV = {k: v for k, v in os.environ.items() if k not in ("HALO_HOME", "HALO_PLUGIN_DIR")}


def sh(args, cwd=None, check=True, env=None):
    p = subprocess.run(args, cwd=cwd, env=env or ENV, capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def complete(completion, words, cwd, env=None):
    """COMPREPLY of the completion script for the words typed so far (the
    last is the one under the cursor), as bash computes it on Tab."""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
              '_halo; printf "%s\\n" "${COMPREPLY[@]}"')
    out = sh(["bash", "-c", script, "bash", completion, *words], cwd=cwd, env=env).stdout
    return [w for w in out.split("\n") if w]


def table_options():
    """Every option spelling in the CLI's table (engine/run/cli.c)."""
    with open(os.path.join(SOURCE, "engine", "run", "cli.c")) as f:
        text = f.read()
    table = text[text.index("const option_def cli_options[]"):]
    table = table[:table.index("\n};")]
    return sorted(set(re.findall(r'"(--[a-z-]+)"', table)))


def table_commands():
    with open(os.path.join(SOURCE, "engine", "run", "cli.c")) as f:
        text = f.read()
    table = text[text.index("const command_def cli_commands[]"):]
    table = table[:table.index("\n};")]
    return re.findall(r'^\s*\{"([a-z]+)", C_', table, re.M)


class Installed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="halo-install-")
        first = os.path.join(cls.tmp, "first")
        sh(["cmake", "--install", BUILD, "--prefix", first])
        # relocatable: the prefix moved after installing still works
        cls.prefix = os.path.join(cls.tmp, "moved", "elsewhere")
        os.makedirs(os.path.dirname(cls.prefix))
        shutil.move(first, cls.prefix)
        cls.halo = os.path.join(cls.prefix, "bin", "halo")
        cls.cwd = os.path.join(cls.tmp, "cwd")
        os.mkdir(cls.cwd)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def halo_in(self, *args, check=True):
        return sh([self.halo, *args], cwd=self.cwd, check=check)

    def test_layout(self):
        p = self.prefix
        for rel in ["bin/halo", "lib/halo/halo_http.so", "lib/halo/halo_sql.so",
                    "share/halo/checks/01-shared-asset.lua", "share/halo/faults",
                    "share/halo/lib/pulp.lua", "share/halo/examples/checks",
                    "share/halo/stacks/reference/up", "share/halo/stacks/reference/down",
                    "share/halo/stacks/reference/docker-compose.yml",
                    "share/halo/stacks/reference/stack.lua", "share/halo/stacks/reference/stack-multi.lua",
                    "share/halo/stacks/reference/api/pulp_standin.py",
                    "share/halo/stacks/reference/nginx/nginx.conf.template",
                    "share/halo/tools/setup.sh", "share/halo/tools/docker-up.sh",
                    "share/halo/stacks/reference/settings-file.sh",
                    "share/halo/types/halo/check.lua", "share/halo/types/halo/http.lua",
                    "share/halo/checks/.luarc.json", "share/halo/faults/.luarc.json",
                    "share/man/man1/halo.1", "share/bash-completion/completions/halo"]:
            self.assertTrue(os.path.exists(os.path.join(p, rel)), rel)
        # the installed checks' .luarc.json finds the installed types
        with open(os.path.join(p, "share/halo/checks/.luarc.json")) as f:
            library = json.load(f)["workspace.library"]
        self.assertTrue(all(os.path.isdir(os.path.join(p, "share/halo/checks", d)) for d in library), library)
        for rel in ["bin/halo", "share/halo/stacks/reference/up", "share/halo/tools/setup.sh"]:
            self.assertTrue(os.access(os.path.join(p, rel), os.X_OK), rel)
        # the stack's up finds the tools and the halo beside it, as in the source tree
        up = os.path.join(p, "share/halo/stacks/reference")
        self.assertTrue(os.path.exists(os.path.join(up, "../../tools/setup.sh")))
        self.assertTrue(os.path.exists(os.path.join(up, "../../../../bin/halo")))
        self.assertEqual([n for n in os.listdir(up) if n.startswith(".env")], [])

    def test_version_and_help(self):
        self.assertRegex(self.halo_in("version").stdout, r"^halo \d+\.\d+\.\d+")
        self.assertIn("http", self.halo_in("help", "modules").stdout)
        run_help = self.halo_in("help", "run").stdout
        self.assertIn("checks = \"DIR\"", run_help)
        self.assertIn("./scripts/checks", run_help)

    def test_list_finds_the_installed_checks_from_any_directory(self):
        out = self.halo_in("list").stdout
        for i in range(1, 7):
            self.assertRegex(out, r"(?m)^%d\s" % i)

    def test_plugins_and_lib_come_from_the_prefix_not_the_build(self):
        out = self.halo_in("eval", 'return type(require "http"), type(require "sql"), type(require "pulp")').stdout
        self.assertEqual(out.split(), ["table", "table", "table"])
        # a copy without its sql plugin fails to load it, naming the copy:
        # an installed halo never falls back to the build tree
        copy = os.path.join(self.tmp, "copy")
        shutil.copytree(self.prefix, copy, symlinks=True)
        os.remove(os.path.join(copy, "lib", "halo", "halo_sql.so"))
        p = sh([os.path.join(copy, "bin", "halo"), "eval", 'return require "sql"'], cwd=self.cwd, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(os.path.join(copy, "lib", "halo", "halo_sql.so"), p.stderr + p.stdout)
        shutil.rmtree(copy)

    def test_checks_rule(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        os.makedirs(os.path.join(d, "mine"))
        with open(os.path.join(d, "mine", "01-only.lua"), "w") as f:
            f.write('return { title = "the stack file\'s checks", run = function(t) end }\n')
        with open(os.path.join(d, "stack.lua"), "w") as f:
            f.write('return { checks = "mine" }\n')
        # the stack file's checks = "DIR", relative to the stack file, from another cwd
        out = self.halo_in("list", "--stack", os.path.join(d, "stack.lua")).stdout
        self.assertIn("the stack file's checks", out)
        self.assertNotRegex(out, r"(?m)^6\s")
        # --checks wins over it
        out = self.halo_in("list", "--stack", os.path.join(d, "stack.lua"),
                           "--checks", os.path.join(self.prefix, "share/halo/faults")).stdout
        self.assertNotIn("the stack file's checks", out)
        self.assertRegex(out, r"(?m)^7\s")
        # a run uses the same rule
        rep = self.halo_in("run", "--stack", os.path.join(d, "stack.lua"), "--format", "json").stdout
        self.assertIn("the stack file's checks", rep)
        # ./scripts/checks in the cwd wins over the installed checks
        os.makedirs(os.path.join(d, "scripts", "checks"))
        shutil.copy(os.path.join(d, "mine", "01-only.lua"), os.path.join(d, "scripts", "checks"))
        out = sh([self.halo, "list"], cwd=d).stdout
        self.assertIn("the stack file's checks", out)
        # a checks key that is not a string is the stack file's error
        with open(os.path.join(d, "bad.lua"), "w") as f:
            f.write('return { checks = 5 }\n')
        p = self.halo_in("run", "--stack", os.path.join(d, "bad.lua"), check=False)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("checks must be a directory name", p.stderr + p.stdout)


class ManAndCompletion(unittest.TestCase):
    def setUp(self):
        self.man = os.path.join(BUILD, "halo.1")
        self.completion = os.path.join(BUILD, "halo.bash")
        for f in (self.man, self.completion):
            self.assertTrue(os.path.exists(f), f + ": the build makes it after linking halo")

    def render(self):
        if shutil.which("man"):
            return sh(["man", "-l", self.man], env=dict(ENV, MANWIDTH="100", MANPAGER="cat", PAGER="cat")).stdout
        if shutil.which("groff"):
            return sh(["groff", "-man", "-Tutf8", "-P-cbou", self.man]).stdout
        self.skipTest("neither man nor groff is installed (tools/setup.sh installs man-db)")

    def test_the_generated_files_are_what_halo_prints(self):
        with open(self.man) as f:
            self.assertEqual(f.read(), sh([HALO, "help", "--man"]).stdout)
        with open(self.completion) as f:
            self.assertEqual(f.read(), sh([HALO, "help", "--completion", "bash"]).stdout)

    def test_man_page_renders_every_command_and_option(self):
        text = self.render()
        text = re.sub(r".\x08", "", text).replace("\u2010", "-").replace("\u2212", "-")
        self.assertIn("HALO(1)", text)
        for cmd in table_commands() + ["version", "help"]:
            self.assertRegex(text, r"\b%s\b" % cmd)
        for opt in table_options():
            self.assertIn(opt, text)
        if shutil.which("groff"):
            warn = sh(["groff", "-man", "-ww", "-z", self.man]).stderr
            self.assertEqual(warn, "")

    def test_help_lists_every_command_of_the_table(self):
        text = sh([HALO, "help"]).stdout
        listed = re.findall(r"(?m)^  ([a-z]+)\b", text)
        self.assertEqual(listed, table_commands() + ["version", "help"])

    def complete(self, *words):
        return complete(self.completion, words, cwd=SOURCE)

    def test_completion(self):
        self.assertEqual(self.complete(HALO, "run", "--st"), ["--stack"])
        self.assertEqual(sorted(self.complete(HALO, "")), sorted(table_commands() + ["version", "help"]))
        self.assertIn("--dry-run", self.complete(HALO, "cleanup", "--"))
        self.assertNotIn("--dry-run", self.complete(HALO, "run", "--"))
        # check ids from `halo list` (the source tree's scripts/checks here)
        self.assertEqual(self.complete(HALO, "run", ""), ["1", "2", "3", "4", "5", "6"])
        faults = os.path.join(SOURCE, "scripts", "faults")
        self.assertIn("7", self.complete(HALO, "run", "--checks", faults, ""))
        self.assertIn("modules", self.complete(HALO, "help", "mo"))

    def test_every_option_of_the_table_is_in_the_completion(self):
        with open(self.completion) as f:
            text = f.read()
        for opt in table_options():
            self.assertRegex(text, r"[\" ]%s[\" )|]" % re.escape(opt), opt)


@unittest.skipUnless(shutil.which("cpack") and shutil.which("dpkg-shlibdeps") and shutil.which("dpkg-deb"),
                     "cpack, dpkg-shlibdeps (package dpkg-dev) or dpkg-deb missing: tools/setup.sh installs them")
class DebianPackage(unittest.TestCase):
    """The .deb as built (inspected), and as an operator uses it: dpkg -i,
    then halo from $HOME with only the installed files, dpkg --purge."""

    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="halo-deb-")
        sh(["cpack", "-G", "DEB", "-B", cls.out], cwd=BUILD)
        cls.debs = [n for n in os.listdir(cls.out) if n.endswith(".deb")]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def test_deb(self):
        self.assertEqual(len(self.debs), 1, self.debs)
        self.assertRegex(self.debs[0], r"^halo_\d+\.\d+\.\d+_[a-z0-9]+\.deb$")
        deb = os.path.join(self.out, self.debs[0])
        info = sh(["dpkg-deb", "-I", deb]).stdout
        depends = re.search(r"(?m)^ Depends: (.*)$", info).group(1)
        for lib in ("liblua5.4", "libcurl", "libpq"):
            self.assertIn(lib, depends)
        # the reference stack's needs are not dependencies of halo
        for pkg in ("docker", "nginx", "postgresql"):
            self.assertNotIn(pkg, depends)
        self.assertIn("docker.io", re.search(r"(?m)^ Recommends: (.*)$", info).group(1))
        self.assertIn("nginx", re.search(r"(?m)^ Suggests: (.*)$", info).group(1))
        files = sh(["dpkg-deb", "-c", deb]).stdout
        for path in ("./usr/bin/halo", "./usr/lib/halo/halo_http.so", "./usr/lib/halo/halo_sql.so",
                     "./usr/share/halo/checks/01-shared-asset.lua", "./usr/share/man/man1/halo.1",
                     "./usr/share/bash-completion/completions/halo",
                     "./usr/share/halo/stacks/reference/up", "./usr/share/halo/types/halo/http.lua",
                     "./usr/share/halo/checks/.luarc.json"):
            self.assertIn(path, files)
        self.assertNotIn(".env", files)

    def test_installed_used_and_purged(self):
        """dpkg -i; from a new $HOME, with no source tree or build in
        sight: halo version, man halo, the six checks on the installed
        reference stack (--up --down: single-tenant, 1-4 and 6 PASS, 5
        N/A); dpkg --purge removes every file the package installed and
        every directory it made, and the run left nothing under /usr."""
        if os.geteuid() != 0:
            self.skipTest("dpkg -i needs root (CI runs as root)")
        if os.path.exists("/usr/bin/halo") or subprocess.run(["dpkg", "-s", "halo"], capture_output=True).returncode == 0:
            self.skipTest("a halo is already installed here: not replacing it")
        import dockerenv
        from refstack import RefStack
        deb = os.path.join(self.out, self.debs[0])
        stack = RefStack("halotest-deb")
        home = tempfile.mkdtemp(prefix="halo-home-")
        self.addCleanup(shutil.rmtree, home, True)
        # last registered, first run: the stack goes before the package
        self.addCleanup(lambda: sh(["dpkg", "--purge", "halo"], check=False))
        dockerenv.ensure_docker()
        sh(["dpkg", "-i", deb])
        self.addCleanup(dockerenv.remove_project, stack.project)
        listed = sh(["dpkg", "-L", "halo"]).stdout.split("\n")
        listed = [f for f in listed if f.startswith("/")]
        env = {k: v for k, v in stack.env().items() if k not in ("HALO_HOME", "HALO_PLUGIN_DIR", "PROXY_BIN")}
        env.update(HOME=home, PATH="/usr/sbin:/usr/bin:/sbin:/bin", MANPAGER="cat", MANWIDTH="100")
        env.pop("XDG_STATE_HOME", None)

        def installed(args, timeout=300):
            p = subprocess.run(args, cwd=home, env=env, capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
            return p

        p = installed(["halo", "version"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"halo \d+\.\d+\.\d+")
        p = installed(["man", "halo"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("halo run", p.stdout)
        # Tab completion as bash loads it for the installed halo
        self.assertEqual(complete("/usr/share/bash-completion/completions/halo", ["halo", "run", "--st"],
                                  cwd=home, env=env), ["--stack"])
        # a check of the operator's own: scaffolded in ./checks, linted, run
        p = installed(["halo", "new", "check", "disk-full"])
        self.assertEqual((p.returncode, p.stdout), (0, "checks/01-disk-full.lua\n"), p.stderr)
        self.assertEqual(installed(["halo", "lint", "--checks", "checks"]).returncode, 0)
        p = installed(["halo", "run", "--checks", "checks"])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("1 passed", p.stdout)

        report = os.path.join(home, "run.json")
        p = installed(["halo", "run", "--stack", "/usr/share/halo/stacks/reference/stack.lua", "--up", "--down",
                       "--parallel", "4", "--format", "json", "--out", report], timeout=900)
        statuses = {}
        if os.path.exists(report):
            with open(report) as f:
                statuses = {c["id"]: c["status"] for c in json.load(f)["checks"]}
        self.assertEqual(statuses, {1: "PASS", 2: "PASS", 3: "PASS", 4: "PASS", 5: "N/A", 6: "PASS"},
                         f"exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        # the stack's settings lived in the user's state directory, and --down forgot them
        self.assertFalse(os.path.exists(os.path.join(home, ".local/state/halo/stacks/halotest-deb.env")))
        self.assertEqual(os.listdir("/usr/share/halo/stacks/reference").count(".env.halotest-deb"), 0)

        sh(["dpkg", "--purge", "halo"])
        left = [f for f in listed if os.path.lexists(f) and not os.path.isdir(f)]
        self.assertEqual(left, [], "files of the package left after dpkg --purge")
        for d in ("/usr/share/halo", "/usr/lib/halo", "/usr/share/doc/halo"):
            self.assertFalse(os.path.exists(d), f"{d} left after dpkg --purge")


if __name__ == "__main__":
    unittest.main()
