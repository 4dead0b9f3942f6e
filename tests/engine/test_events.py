"""The worker's events and statuses as one table each: engine/core/events.def
and engine/core/status.h. Every kind the engine emits, every emitter the
check context calls and every status it names is in its table; evidence
reaches every report format in the order the check recorded it."""
import json
import os
import re
import unittest
import xml.etree.ElementTree as ET

from halotest import SOURCE, HaloTestCase, run

ENGINE = os.path.join(SOURCE, "engine")


def read(rel):
    with open(os.path.join(ENGINE, rel), encoding="utf-8") as f:
        return f.read()


def event_table():
    """{NAME: (kind, nfields, fields)} from core/events.def."""
    rows = re.findall(r'^EVENT\((\w+), "([^"]+)", (\d+), "([^"]*)",', read("core/events.def"), re.M)
    return {name: (kind, int(n), fields) for name, kind, n, fields in rows}


def status_table():
    """{NAME: printed name} from core/status.h."""
    return dict(re.findall(r'STATUS\((\w+), "([^"]+)",', read("core/status.h")))


def engine_sources():
    for dirpath, _, names in os.walk(ENGINE):
        for name in names:
            if name.endswith((".c", ".lua")):
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    yield os.path.relpath(path, ENGINE), f.read()


class Tables(unittest.TestCase):
    def test_the_event_table_is_well_formed(self):
        table = event_table()
        self.assertGreaterEqual(len(table), 10)
        kinds = [kind for kind, _, _ in table.values()]
        self.assertEqual(len(kinds), len(set(kinds)), "a kind on the pipe names one event")
        for name, (kind, n, fields) in table.items():
            self.assertEqual(len(fields.split()), n, f"{name}: {n} fields, named {fields!r}")
            self.assertNotRegex(kind, r"[\t\n%]", f"{name}: the kind must survive the line format")

    def test_every_kind_emitted_by_name_is_in_the_table(self):
        kinds = {kind for kind, _, _ in event_table().values()}
        found = 0
        for rel, text in engine_sources():
            for kind in re.findall(r'(?:events_emit|internal\.event)\(\s*"([^"]+)"', text):
                found += 1
                self.assertIn(kind, kinds, f"engine/{rel} emits {kind!r}, which core/events.def lacks")
        self.assertGreater(found, 0)

    def test_the_context_emits_only_what_the_table_has(self):
        names = {name.lower(): n for name, (_, n, _) in event_table().items()}
        context = re.sub(r"--[^\n]*", "", read("check/context.lua"))
        used = re.findall(r"\bemit\.(\w+)\(", context)
        self.assertIn("step_end", used)
        for name in used:
            self.assertIn(name, names, f"check/context.lua calls emit.{name}, which core/events.def lacks")
        self.assertNotRegex(context, r'\bemit\(\s*"', "no event by string from the context")
        statuses = status_table()
        for name in re.findall(r"\bstatus\.(\w+)", context):
            self.assertIn(name, statuses, f"check/context.lua names status.{name}")

    def test_no_status_or_kind_compared_by_name(self):
        # "error" is a log level as well as a kind
        kinds = [kind for kind, _, _ in event_table().values() if kind != "error"]
        for rel, text in engine_sources():
            if not rel.endswith(".c"):
                continue
            for m in re.finditer(r'strcmp\([^;]*"(PASS|FAIL|ERROR|N/A|DEFERRED|PENDING)"', text):
                self.fail(f"engine/{rel} compares a status by its name: {m.group(0)}")
            if rel.startswith("run/"):
                for kind in kinds:
                    if f'"{kind}") == 0' in text:
                        self.fail(f"engine/{rel}: event {kind} dispatched by strcmp, not by its enum")

    def test_the_architecture_documents_the_events(self):
        with open(os.path.join(SOURCE, "docs", "architecture.md"), encoding="utf-8") as f:
            doc = f.read()
        self.assertIn("## Worker events", doc)
        self.assertIn("engine/core/events.def", doc)


ORDER_CHECK = """
return {
  title = "evidence in order",
  run = function(t)
    t:evidence("zeta", "first recorded")
    t:evidence("alpha", { b = 1, a = 2 })
    t:evidence("mid", 42)
    t:evidence("zeta", "recorded again, keeps its place")
    t:evidence("beta", "text \\"as is\\"")
    t:fail("so that TAP shows the evidence too")
  end,
}
"""
KEYS = ["zeta", "alpha", "mid", "beta"]


class OverLongRecords(HaloTestCase):
    """A request whose URL is 300 KB (a check building a huge query string):
    its --history record is one line of JSON with the URL cut and saying
    so, and every report still parses."""

    def test_a_huge_url_is_cut_in_the_record(self):
        checks = self.checks_dir({"1-huge.lua": """
            local http = require "http"
            return { title = "huge url", run = function(t)
              local _, err = http.get("http://127.0.0.1:9/?q=" .. string.rep("a", 300000), { timeout = 2 })
              t:expect(err ~= nil, "port 9 answered")
            end }
        """})
        history = self.tmp_path("history.jsonl")
        res = run(["run", "--checks", checks, "--format", "json", "--history", history])
        self.assertEqual(res.rc, 0, res)
        json.loads(res.out)
        with open(history, encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
        urls = [r["url"] for r in records if r.get("type") == "request"]
        self.assertEqual(len(urls), 1, records)
        self.assertLess(len(urls[0]), 9000)
        self.assertRegex(urls[0], r"^http://127\.0\.0\.1:9/\?q=a+… \[cut: 300\d\d\d bytes in all\]$")


class EvidenceOrder(HaloTestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.dir = tempfile.mkdtemp(prefix="halo-test-")
        with open(os.path.join(cls.dir, "1-order.lua"), "w") as f:
            f.write(ORDER_CHECK)

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.dir, True)

    def report(self, fmt, *extra):
        res = run(["run", "--checks", self.dir, "--format", fmt, *extra])
        self.assertEqual(res.rc, 1, res)
        return res.out

    def assertInOrder(self, text, needles, what):
        at = [text.find(n) for n in needles]
        self.assertNotIn(-1, at, f"{what}: {needles} in {text}")
        self.assertEqual(at, sorted(at), f"{what}: not in the order recorded: {text}")

    def test_json(self):
        c = json.loads(self.report("json"))["checks"][0]
        self.assertEqual(list(c["evidence"].items()),
                         [("zeta", "recorded again, keeps its place"), ("alpha", {"a": 2, "b": 1}), ("mid", 42),
                          ("beta", 'text "as is"')])

    def test_text_md_junit_tap(self):
        self.assertInOrder(self.report("text", "--verbose"), [f"      {k}: " for k in KEYS], "text")
        self.assertInOrder(self.report("md"), [f"    {k}: " for k in KEYS], "md")
        out = ET.fromstring(self.report("junit")).find(".//system-out").text
        self.assertInOrder(out, [f"{k}: " for k in KEYS], "junit")
        self.assertIn('beta: text "as is"\n', out)
        self.assertInOrder(self.report("tap"), [f'    "{k}": ' for k in KEYS], "tap")

    def test_html(self):
        html = self.report("html")
        table = html[html.index('<table class="evidence">'):]
        self.assertInOrder(table, [f"<tr><th>{k}</th>" for k in KEYS], "html")


if __name__ == "__main__":
    unittest.main()
