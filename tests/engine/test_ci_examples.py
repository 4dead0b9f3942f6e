"""The CI examples (examples/ci/, issue 17 item 6): each parses as the CI
reads it, publishes the JUnit report the halo command in it writes, runs
only commands the README documents, and that halo command, run verbatim
in a directory laid out as the examples expect (stack.lua, checks/), writes
a JUnit report with one testcase per check, a failure where a check FAILs,
and the md and HTML reports beside it, with no secret in any of them."""
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

import yaml

from halotest import HALO, SOURCE, halo_env

CI = os.path.join(SOURCE, "examples", "ci")
KEY = "ci-example-admin-key-5Tq"


def load(name):
    with open(os.path.join(CI, name)) as f:
        return yaml.safe_load(f)


def readme():
    with open(os.path.join(SOURCE, "README.md")) as f:
        return f.read()


def documented(command):
    """A command as the README gives it: sudo is the runner's business."""
    return re.sub(r"^sudo\s+", "", command.strip())


def github_commands():
    doc = load("github-actions.yml")
    steps = [step for job in doc["jobs"].values() for step in job["steps"]]
    return doc, steps, [s["run"] for s in steps if "run" in s]


def gitlab_commands():
    doc = load("gitlab-ci.yml")
    return doc, doc["ha-checks"]["script"]


def halo_command(commands):
    found = [c for c in commands if documented(c).startswith("halo ")]
    assert len(found) == 1, found
    return documented(found[0])


def junit_out(command):
    return re.search(r"--out (\S+)", command).group(1)


class Examples(unittest.TestCase):
    def test_github_actions(self):
        doc, steps, commands = github_commands()
        # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on"
        self.assertTrue("on" in doc or True in doc)
        job = doc["jobs"]["ha-checks"]
        self.assertIn("runs-on", job)
        for step in steps:
            self.assertTrue(("run" in step) != ("uses" in step), step)
        published = [s for s in steps if s.get("uses", "").startswith("mikepenz/action-junit-report@")]
        self.assertEqual(len(published), 1)
        self.assertEqual(published[0]["if"], "always()")
        self.assertEqual(published[0]["with"]["report_paths"], junit_out(halo_command(commands)))
        kept = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")][0]
        self.assertIn(junit_out(halo_command(commands)), kept["with"]["path"].split())

    def test_gitlab_ci(self):
        doc, commands = gitlab_commands()
        job = doc["ha-checks"]
        self.assertEqual(job["artifacts"]["when"], "always")
        self.assertEqual(job["artifacts"]["reports"]["junit"], junit_out(halo_command(commands)))

    def test_commands_are_the_readme_s(self):
        text = readme()
        _, _, github = github_commands()
        _, gitlab = gitlab_commands()
        for command in github + gitlab:
            self.assertIn(documented(command), text, "a command of examples/ci the README does not document")
        self.assertEqual(halo_command(github), halo_command(gitlab))

    def test_the_halo_command_as_written(self):
        _, _, commands = github_commands()
        argv = shlex.split(halo_command(commands))
        work = tempfile.mkdtemp(prefix="halo-ci-")
        self.addCleanup(shutil.rmtree, work, True)
        os.mkdir(os.path.join(work, "checks"))
        with open(os.path.join(work, "stack.lua"), "w") as f:
            f.write('return { name = "a CI job\'s stack", lb = "http://127.0.0.1:9",\n'
                    '         keys = { admin = secret("API_KEY_ADMIN") } }\n')
        with open(os.path.join(work, "checks", "01-passes.lua"), "w") as f:
            f.write('return { title = "holds", run = function(t, stack)\n'
                    '  t:expect(#stack.keys.admin > 0, "no key") end }\n')
        with open(os.path.join(work, "checks", "02-fails.lua"), "w") as f:
            f.write('return { title = "breaks", run = function(t, stack)\n'
                    '  t:expect(false, "the replica said %s", stack.keys.admin) end }\n')
        p = subprocess.run([HALO] + argv[1:], cwd=work, env=halo_env({"API_KEY_ADMIN": KEY}),
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 1, p.stderr)    # a FAIL fails the job
        outputs = {}
        for name in (junit_out(halo_command(commands)), "halo-run-log.md", "halo-report.html"):
            with open(os.path.join(work, name)) as f:
                outputs[name] = f.read()
        for name, text in list(outputs.items()) + [("stdout", p.stdout), ("stderr", p.stderr)]:
            self.assertNotIn(KEY, text, f"the stack's secret in {name}")
        suite = ET.fromstring(outputs["halo-junit.xml"])
        cases = suite.iter("testcase")
        by_name = {c.get("name"): c for c in cases}
        self.assertEqual(len(by_name), 2, list(by_name))
        failed = [n for n, c in by_name.items() if c.find("failure") is not None]
        self.assertEqual(len(failed), 1, failed)
        self.assertIn("breaks", failed[0])
        self.assertIn("<html", outputs["halo-report.html"].lower())
        self.assertIn("breaks", outputs["halo-run-log.md"])


if __name__ == "__main__":
    unittest.main()
