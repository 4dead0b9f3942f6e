#!/usr/bin/env python3
"""Parses the reports report_test wrote with real parsers, so "valid JSON",
"well-formed XML" and "a TAP plan that adds up" are checked by something
other than the code that wrote them.

usage: check_report_formats.py json|junit|tap|all DIR
"""
import json
import re
import sys
import xml.dom.minidom
from pathlib import Path

# The sample run in report_test.c: one check of every status plus a second
# PASS with a named id.
EXPECTED = {"pass": 2, "fail": 1, "error": 1, "na": 1, "deferred": 1}
TOTAL = sum(EXPECTED.values())
STATUS_KEY = {"PASS": "pass", "FAIL": "fail", "ERROR": "error", "N/A": "na", "DEFERRED": "deferred"}


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def check_json(out_dir):
    # Decoding the bytes strictly also proves the document is valid UTF-8.
    doc = json.loads((out_dir / "report.json").read_bytes().decode("utf-8"))
    check(set(doc) >= {"checks", "summary", "started_at", "duration_ms", "stack", "interrupted"},
          f"top-level keys: {sorted(doc)}")
    summary = doc["summary"]
    for key, want in EXPECTED.items():
        check(summary[key] == want, f"summary.{key} = {summary[key]}, want {want}")
    checks = doc["checks"]
    check(len(checks) == TOTAL, f"{len(checks)} checks")
    seen = dict.fromkeys(EXPECTED, 0)
    for c in checks:
        check(set(c) >= {"id", "title", "status", "duration_ms", "message", "evidence", "steps",
                         "file", "tags", "failures", "logs"}, f"check keys: {sorted(c)}")
        seen[STATUS_KEY[c["status"]]] += 1
        check(isinstance(c["id"], int) or not c["id"].isdigit(), f"numeric id as string: {c['id']!r}")
        check(isinstance(c["evidence"], dict), "evidence is an object")
        for step in c["steps"]:
            check(set(step) >= {"name", "duration_ms", "status"}, f"step keys: {sorted(step)}")
        for log in c["logs"]:
            check(set(log) >= {"at_ms", "level", "text"}, f"log keys: {sorted(log)}")
        if c["status"] == "PASS":
            check(c["message"] is None, "PASS has a null message")
    check(seen == EXPECTED, f"statuses {seen} disagree with the summary")
    first = checks[0]
    check(first["id"] == 1 and first["title"].endswith("\u00fcber \u2713"), "UTF-8 title survives")
    check(first["evidence"]["note"] == 'he said "hi"\nthen \u00e9 \U0001F600', "decoded evidence")
    check(first["evidence"]["bytes"] == 535381, "numeric evidence stays a number")
    check(first["evidence"]["replicas"] == ["api1", "api2"], "array evidence")
    check(list(first["evidence"]) == ["bytes", "note", "replicas", "ratio", "url"], "evidence order")
    check(first["evidence"]["url"] == 'http://lb:8080/ "as is"', "text evidence stays text")
    check(list(checks[1]["evidence"].items()) == [("seen by", 'api1 #1, api2: "both"'), ("executions", 2)],
          "evidence of the failed check, in order")
    check(checks[1]["message"] == 'expected <200> & "ok"\tgot 500', "message escaping")
    check(len(checks[1]["failures"]) == 2, "both failure lines")
    check(checks[-1]["id"] == "failover", "named id is a string")


def check_junit(out_dir):
    dom = xml.dom.minidom.parse(str(out_dir / "report.xml"))
    suite = dom.getElementsByTagName("testsuite")[0]
    cases = suite.getElementsByTagName("testcase")
    counts = {
        "tests": len(cases),
        "failures": len(suite.getElementsByTagName("failure")),
        "errors": len(suite.getElementsByTagName("error")),
        "skipped": len(suite.getElementsByTagName("skipped")),
    }
    want = {"tests": TOTAL, "failures": EXPECTED["fail"], "errors": EXPECTED["error"],
            "skipped": EXPECTED["na"] + EXPECTED["deferred"]}
    check(counts == want, f"elements {counts}, want {want}")
    for element in (suite, dom.documentElement):
        for name, value in want.items():
            check(element.getAttribute(name) == str(value),
                  f"<{element.tagName}> {name}={element.getAttribute(name)!r}, want {value}")
    failure = suite.getElementsByTagName("failure")[0]
    # Attribute-value normalisation turns the tab into a space.
    check(failure.getAttribute("message") == 'expected <200> & "ok" got 500', "failure message")
    check(failure.firstChild.data.count("\n") == 2, "every failure line in the body")
    for case in cases:
        check(case.getAttribute("classname") == "halo.checks", "classname")
        float(case.getAttribute("time"))


def check_tap(out_dir):
    lines = (out_dir / "report.tap").read_text(encoding="utf-8").splitlines()
    check(lines[0] == "TAP version 13", f"first line {lines[0]!r}")
    plan = re.fullmatch(r"1\.\.(\d+)", lines[1])
    check(plan and int(plan.group(1)) == TOTAL, f"plan line {lines[1]!r}")
    points = [m for m in (re.match(r"(not )?ok (\d+) - (.*)", line) for line in lines) if m]
    check([int(m.group(2)) for m in points] == list(range(1, TOTAL + 1)), "test points numbered 1..N")
    failed = sum(1 for m in points if m.group(1))
    check(failed == EXPECTED["fail"] + EXPECTED["error"], f"{failed} not ok")
    skipped = sum(1 for m in points if re.search(r"(?<!\\)# SKIP", m.group(3)))
    check(skipped == EXPECTED["na"] + EXPECTED["deferred"], f"{skipped} skipped")
    check_yaml_blocks(lines)


def check_yaml_blocks(lines):
    """Every diagnostic block is YAML; parsed when PyYAML is installed."""
    blocks, current = [], None
    for line in lines:
        if line == "  ---":
            current = []
        elif line == "  ..." and current is not None:
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line[2:])
    check(current is None, "unterminated YAML block")
    check(len(blocks) == EXPECTED["fail"] + EXPECTED["error"], f"{len(blocks)} YAML blocks")
    try:
        import yaml
    except ImportError:
        return
    statuses = [yaml.safe_load(block)["status"] for block in blocks]
    check(statuses == ["FAIL", "ERROR"], f"YAML statuses {statuses}")
    check(yaml.safe_load(blocks[0])["message"] == 'expected <200> & "ok"\tgot 500', "YAML message")
    evidence = yaml.safe_load(blocks[0])["evidence"]
    check(list(evidence.items()) == [("seen by", 'api1 #1, api2: "both"'), ("executions", "2")],
          f"YAML evidence in order: {evidence}")


CHECKS = {"json": check_json, "junit": check_junit, "tap": check_tap}


def main(argv):
    if len(argv) != 3 or argv[1] not in (*CHECKS, "all"):
        sys.exit(__doc__)
    out_dir = Path(argv[2])
    for name in CHECKS if argv[1] == "all" else [argv[1]]:
        try:
            CHECKS[name](out_dir)
        except (AssertionError, ValueError, KeyError, IndexError) as e:
            sys.exit(f"{name}: {type(e).__name__}: {e}")
        print(f"{name}: ok")


if __name__ == "__main__":
    main(sys.argv)
