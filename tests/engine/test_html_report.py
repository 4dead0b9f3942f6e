"""The HTML report (--format html, --report html:FILE) of real runs on the
reference stack (tests/stack/), read as XML and opened in a real browser.

- A healthy run of checks 1, 2 and 4, check 4 with FAULT_LB_NO_FAILOVER=1
  (requests through the LB fail with 502 while a replica is down) and
  check 2 with FAULT_SCHEDULE_EVERY_REPLICA=1 (both replicas fire every
  tick), each with an HTML report and a markdown entry that links it.
- Each page is well-formed XML (xml.etree, once the doctype is stripped) and
  self-contained: no script, no stylesheet link, nothing fetched from a URL.
- Check 4 has its timeline, with an action marker per kill, start and
  healthy; the longest failure window is shaded in the faulty run and not
  in the healthy one; check 2 has its chart of fire times per replica
  (chart evidence, docs/writing-checks.md "Charts"), with no double fire
  when healthy and a band marked ×2 under the fault.
- Debian's chromium (headless) opens every page with no console error; its
  screenshot shows the failure window's colour in the faulty run only.
- Without the stack: a check of 50 000 requests against
  tests/servers/edge_server.py draws buckets and stays under a few MB; a
  double fire is marked ×2; text that looks like markup stays text; the
  charts of tests/fixtures/html-chart (a time repeated across lanes, and
  within a lane) are drawn from the chart evidence alone: rewording the
  check's other evidence changes nothing in them, and text evidence alone
  draws none; a malformed chart makes the check ERROR saying what is wrong;
  the text and md reports show a chart as one line of JSON, kind first.

Sizes and times are printed ([test_html_report] lines), not asserted beyond
the size limit. With HALO_HTML_SCREENSHOT=PATH the faulty run's check 4 is
also saved there as a PNG (docs/html-report.png is made that way).

The stack runs as compose project "halotest-html" on four free 127.0.0.1
ports, brought up with tests/stack/up and taken down at the end.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \
     python3 -m unittest -v test_html_report
"""
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET
import zlib

from halotest import FIXTURES, HALO, SOURCE, halo_env
from httptest import EdgeServer
from refstack import STACK, UP, RefStack, RefStackTestCase

PROJECT = "halotest-html"
S = RefStack(PROJECT)
CHECKS = os.path.join(SOURCE, "scripts", "checks")
XHTML, SVG = "{http://www.w3.org/1999/xhtml}", "{http://www.w3.org/2000/svg}"
SHADE = (0xFA, 0xDB, 0xC8)  # the failure window's fill (engine/report/html_timeline.lua)
OK_GREEN = (0x00, 0x9E, 0x73)
CHROMIUM = "/usr/bin/chromium"
MARKS_MAX = 3000            # past this many requests a timeline draws buckets


def log(text):
    print(f"\n[test_html_report] {text}", flush=True)


# ---- the page as XML ----------------------------------------------------------------

def parse_page(text):
    """The page as an ElementTree root; the doctype is all that is not XML."""
    if not text.startswith("<!DOCTYPE html>"):
        raise AssertionError(f"the page does not start with <!DOCTYPE html>: {text[:80]!r}")
    return ET.fromstring(text[len("<!DOCTYPE html>"):])


def classes(el):
    return el.get("class", "").split()


def by_class(root, cls):
    return [el for el in root.iter() if cls in classes(el)]


def text_of(el):
    return "".join(el.itertext())


def check_section(root, check_id):
    found = [el for el in root.iter(XHTML + "section") if el.get("id") == f"check-{check_id}"]
    if len(found) != 1:
        raise AssertionError(f"{len(found)} sections with id check-{check_id}")
    return found[0]


def marks(el, outcome):
    """The request marks (or buckets) of one outcome in el, not the legend's."""
    return [m for m in el.iter() if outcome in classes(m) and ({"req", "bucket"} & set(classes(m)))]


def event_charts(el):
    """The charts of chart evidence in el (engine/report/html_chart.lua)."""
    return [svg for svg in el.iter(SVG + "svg") if "events-chart" in classes(svg)]


def chart_titled(sec, title):
    """The chart whose heading (an <h3> right before it) is `title`."""
    children = list(sec)
    found = [children[i + 1] for i, el in enumerate(children[:-1])
             if el.tag == XHTML + "h3" and text_of(el) == title and "events-chart" in classes(children[i + 1])]
    if len(found) != 1:
        raise AssertionError(f"{len(found)} charts headed {title!r}")
    return found[0]


def marker_labels(el):
    """The visible labels of the action markers in el."""
    return [m.find(SVG + "text").text for m in by_class(el, "action-marker")]


# ---- PNG, decoded and encoded in pure Python ------------------------------------------

def _add_bytes(a, b, low7, high1):
    """a + b byte by byte, mod 256, on whole rows at once (bits 0-6 are
    added, bit 7 is the carry into it xor the two bits 7)."""
    return ((a & low7) + (b & low7)) ^ ((a ^ b) & high1)


def png_pixels(path):
    """(width, height, rows): rows as bytes of RGB triples. 8-bit RGB or
    RGBA, not interlaced; every filter type (0-4) undone."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError(f"{path} is not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise AssertionError(f"PNG kind not handled: depth {depth}, colour type {colour}, interlace {interlace}")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    low7, high1 = int.from_bytes(b"\x7f" * stride, "big"), int.from_bytes(b"\x80" * stride, "big")
    rows, prev = [], bytearray(stride)
    for y in range(height):
        filt = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if filt == 2:  # Up, the common one: all at once
            line = bytearray(_add_bytes(int.from_bytes(line, "big"), int.from_bytes(prev, "big"), low7,
                                        high1).to_bytes(stride, "big"))
        elif filt == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif filt == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif filt == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif filt != 0:
            raise AssertionError(f"row {y}: unknown PNG filter {filt}")
        prev = line
        if bpp == 4:  # drop alpha
            rgb = bytearray(width * 3)
            rgb[0::3], rgb[1::3], rgb[2::3] = line[0::4], line[1::4], line[2::4]
            rows.append(bytes(rgb))
        else:
            rows.append(bytes(line))
    return width, height, rows


def _pixels_of(row, rgb):
    """Where in row (RGB bytes) a pixel of colour rgb is."""
    needle = bytes(rgb)
    start = row.find(needle)
    while start != -1:
        if start % 3 == 0:  # a whole pixel, not the end of one and the start of the next
            yield start
        start = row.find(needle, start + 1)


def count_colour(rows, rgb):
    return sum(1 for row in rows for _ in _pixels_of(row, rgb))


def rows_with_colour(rows, rgb):
    return [y for y, row in enumerate(rows) if next(_pixels_of(row, rgb), None) is not None]


def write_png(path, width, rows):
    """8-bit RGB, each row filtered with Up (screenshots are mostly flat)."""
    raw, prev = bytearray(), bytes(len(rows[0]))
    for row in rows:
        raw.append(2)
        raw.extend((a - b) & 0xFF for a, b in zip(row, prev))
        prev = row

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))


# ---- the browser ------------------------------------------------------------------------

def ensure_chromium():
    """Debian's chromium, installed when missing (as root); else SkipTest."""
    if os.access(CHROMIUM, os.X_OK):
        return
    if os.geteuid() == 0:
        p = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True,
                           timeout=900, stdin=subprocess.DEVNULL)
        if p.returncode == 0 and os.access(CHROMIUM, os.X_OK):
            return
        raise unittest.SkipTest(f"chromium is not installed and apt-get install -y chromium failed: "
                                f"{p.stderr.strip()[-300:]}")
    raise unittest.SkipTest("chromium is not installed (/usr/bin/chromium) and this is not root")


def chromium(html, *mode, window="1400,2400"):
    """Headless chromium on file://html with a fresh profile; returns (the
    completed process, seconds)."""
    profile = tempfile.mkdtemp(prefix="halo-chromium-")
    try:
        t0 = time.monotonic()
        p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--no-first-run", "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                            f"--window-size={window}"] + list(mode) + ["file://" + html],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, errors="replace")
        return p, time.monotonic() - t0
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(stderr):
    """Chromium logs every console message as INFO:CONSOLE, whatever its
    level (console.error included); a page with no script should log none,
    so each one counts, and so does an uncaught exception."""
    return [l for l in stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l]


class PageAssertions:
    """Assertions every HTML report must pass, whatever the run."""

    def assertWellFormedPage(self, text, what):
        try:
            root = parse_page(text)
        except ET.ParseError as e:
            line = text.splitlines()[e.position[0] - 1] if e.position[0] <= len(text.splitlines()) else ""
            self.fail(f"{what}: not well-formed XML: {e}\n{line[max(0, e.position[1] - 200):e.position[1] + 200]}")
        self.assertEqual(root.tag, XHTML + "html", what)
        return root

    def assertSelfContained(self, text, root, what):
        for el in root.iter():
            for attr in ("src", "href", "{http://www.w3.org/1999/xlink}href"):
                value = el.get(attr)
                if value is not None:
                    self.assertTrue(value.startswith("#"), f"{what}: {el.tag} {attr}={value!r} leaves the page")
        self.assertNotRegex(text, r"(?i)<script", f"{what} has a script")
        self.assertNotRegex(text, r"(?i)<link\b", f"{what} links a resource")
        self.assertNotRegex(text, r"(?i)@import|url\(", f"{what}'s styles load something")
        self.assertNotRegex(text, r"(?i)(src|href)\s*=\s*[\"']?\s*(https?:|file:|//)", what)

    def assertBrowserRenders(self, html, screenshot, what, window="1400,2400"):
        """Chromium shows the page (a screenshot) with no console error, and
        its DOM has every check section. Returns the screenshot's rows."""
        ensure_chromium()
        p, shot_s = chromium(html, f"--screenshot={screenshot}", window=window)
        self.assertEqual(console_errors(p.stderr), [], f"{what}: console errors")
        self.assertTrue(os.path.exists(screenshot), f"{what}: no screenshot (rc {p.returncode}):\n{p.stderr[-2000:]}")
        d, dom_s = chromium(html, "--dump-dom", window=window)
        self.assertEqual(console_errors(d.stderr), [], f"{what}: console errors")
        self.assertIn('class="check"', d.stdout, f"{what}: the DOM has no check section")
        self.assertIn("<svg", d.stdout, f"{what}: the DOM has no SVG")
        width, height, rows = png_pixels(screenshot)
        log(f"{what}: chromium screenshot {width}x{height} in {shot_s:.1f} s, --dump-dom in {dom_s:.1f} s "
            f"({len(d.stdout) // 1024} KB of DOM)")
        return rows


# ---- on the reference stack ----------------------------------------------------------

class StackReports(PageAssertions, RefStackTestCase):
    refstack = S
    runs = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(prefix="halo-html-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)
        super().tearDownClass()

    def run_once(self, name, ids, settings=None):
        """`halo run IDS --report html:… --report md:…` on the stack brought
        up with `settings`, once per name; returns what it wrote."""
        if name in self.runs:
            return self.runs[name]
        up = S.script(UP, settings)
        self.assertEqual(up.returncode, 0, f"tests/stack/up {settings} failed:\n{up.stdout}\n{up.stderr}")
        html, md, js = (os.path.join(self.dir, f"{name}.{ext}") for ext in ("html", "md", "json"))
        t0 = time.monotonic()
        p = subprocess.run([HALO, "run"] + [str(i) for i in ids] +
                           ["--checks", CHECKS, "--stack", STACK, "--parallel", "4",
                            "--report", f"html:{html}", "--report", f"md:{md}", "--report", f"json:{js}"],
                           capture_output=True, text=True, env=halo_env(S.env(settings)), cwd=SOURCE, timeout=600,
                           stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - t0
        for path in (html, md, js):
            self.assertTrue(os.path.exists(path), f"{name}: halo wrote no {path} (rc {p.returncode}):\n{p.stderr}")
        with open(html, encoding="utf-8") as f:
            text = f.read()
        with open(md, encoding="utf-8") as f:
            entry = f.read()
        with open(js, encoding="utf-8") as f:
            report = json.load(f)
        requests = sum(c["requests"] for c in report["checks"])
        log(f"{name}: halo run {' '.join(map(str, ids))} in {seconds:.1f} s (reports written in "
            f"{seconds - report['duration_ms'] / 1000:.1f} s); HTML {len(text) // 1024} KB for {requests} requests; "
            + ", ".join(f"{c['id']} {c['status']}" for c in report["checks"]))
        self.runs[name] = run = {"p": p, "html": html, "text": text, "md": entry, "report": report}
        return run

    # Check 4 at 20 requests/s through the LB, not the stack file's 200: few
    # enough requests for one mark each (past MARKS_MAX the timeline draws
    # buckets, which test_50k_requests_in_buckets covers).
    def healthy(self):
        return self.run_once("healthy", [1, 2, 4], {"FAILOVER_RATE": "20"})

    def faulty(self):
        return self.run_once("faulty", [4], {"FAULT_LB_NO_FAILOVER": "1", "FAILOVER_RATE": "20"})

    def double_fire(self):
        return self.run_once("double-fire", [2], {"FAULT_SCHEDULE_EVERY_REPLICA": "1"})

    def assertStatuses(self, run, expected):
        got = {c["id"]: c["status"] for c in run["report"]["checks"]}
        detail = "\n".join(f"  {c['id']} {c['status']}: {c.get('message')}" for c in run["report"]["checks"])
        self.assertEqual(got, expected, f"statuses:\n{detail}\n{run['p'].stderr[-3000:]}")

    def assertCheck4Timeline(self, root):
        sec = check_section(root, 4)
        timelines = [el for el in sec.iter(SVG + "svg") if "timeline" in classes(el)]
        self.assertEqual(len(timelines), 1, "check 4 has one timeline")
        labels = marker_labels(timelines[0])
        for want in ("kill api1", "start api1", "api1 healthy", "kill api2", "start api2", "api2 healthy"):
            self.assertIn(want, labels, f"check 4's action markers: {labels}")
        marks = by_class(timelines[0], "req")
        self.assertGreater(len(marks), 100, "one mark per request")
        for m in marks[:50]:
            self.assertIsNotNone(m.find(SVG + "title"), "every mark has a title")
        self.assertRegex(m.find(SVG + "title").text, r"^GET http://127\.0\.0\.1:\d+/templates → ")
        return timelines[0]

    # ---- the pages -----------------------------------------------------------------

    def test_10_healthy_run(self):
        """1, 2, 4 PASS; check 4's timeline with its markers and no failure
        window; check 2's chart of fire times without a double fire."""
        run = self.healthy()
        self.assertStatuses(run, {1: "PASS", 2: "PASS", 4: "PASS"})
        self.assertEqual(run["p"].returncode, 0, run["p"].stderr[-2000:])
        root = self.assertWellFormedPage(run["text"], "healthy")
        self.assertSelfContained(run["text"], root, "healthy")
        timeline = self.assertCheck4Timeline(root)
        self.assertEqual(by_class(timeline, "failure-window"), [], "a healthy check 4 has no failure window")
        self.assertEqual(marks(timeline, "server-error"), [], "no 5xx")
        self.assertEqual(marks(timeline, "conn-error"), [], "no connection error")
        sec2 = check_section(root, 2)
        self.assertEqual(len(event_charts(sec2)), 1, "check 2 has one chart")
        chart = chart_titled(sec2, "Fire times per replica")
        self.assertGreaterEqual(len(by_class(chart, "event")), 3, "a mark per fire time")
        self.assertEqual(by_class(chart, "repeat"), [], "no double fire")
        self.assertEqual([el.text for el in chart.iter(SVG + "text") if "row-label" in classes(el)], ["api1", "api2"],
                         "a row per replica of the stack file")
        summary = text_of(root.find(f"{XHTML}body"))
        for want in ("Operator", "halo-tests", "App version", "1.0.0-standin", "PostgreSQL", "Host OS", "Run time"):
            self.assertIn(want, summary)
        for check_id in (1, 2, 4):
            badge = by_class(check_section(root, check_id), "badge")[0]
            self.assertEqual(classes(badge), ["badge", "pass"])
            self.assertIn("PASS", text_of(badge), "a badge says its status in words")

    def test_11_faulty_run(self):
        """FAULT_LB_NO_FAILOVER: check 4 FAILs; its 502s are marked, the
        longest failure window is shaded, and its message is there in full."""
        run = self.faulty()
        self.assertStatuses(run, {4: "FAIL"})
        root = self.assertWellFormedPage(run["text"], "faulty")
        self.assertSelfContained(run["text"], root, "faulty")
        timeline = self.assertCheck4Timeline(root)
        windows = by_class(timeline, "failure-window")
        self.assertEqual(len(windows), 1, "the longest failure window, shaded")
        self.assertEqual(windows[0].tag, SVG + "rect")
        x1 = float(windows[0].get("x"))
        x2 = x1 + float(windows[0].get("width"))
        inside = [m for m in marks(timeline, "server-error") if x1 <= float(m.get("x")) + 3.5 <= x2]
        self.assertGreater(len(inside), 0, "the window is where 502s are")
        self.assertGreater(len(marks(timeline, "server-error")), 0, "the 502s are marked")
        message = run["report"]["checks"][0]["message"]
        self.assertIn(message, text_of(check_section(root, 4)), "the failure message, in full")
        self.assertIn("requests through the LB failed while a replica was down", message)

    def test_13_double_fire_run(self):
        """FAULT_SCHEDULE_EVERY_REPLICA: check 2 FAILs; its chart marks each
        fire time both replicas recorded with a band ×2."""
        run = self.double_fire()
        self.assertStatuses(run, {2: "FAIL"})
        root = self.assertWellFormedPage(run["text"], "double-fire")
        self.assertSelfContained(run["text"], root, "double-fire")
        chart = chart_titled(check_section(root, 2), "Fire times per replica")
        bands = by_class(chart, "repeat")
        self.assertGreater(len(bands), 0, "the double fires are marked")
        for band in bands:
            self.assertEqual(band.find(SVG + "text").text, "×2")
            self.assertRegex(band.find(SVG + "title").text, r"^double fire: 2 events at .* UTC \(api1, api2\)$")
        self.assertGreaterEqual(len(by_class(chart, "event")), 2 * len(bands))
        self.assertIn("fired 2 times", run["report"]["checks"][0]["message"])

    def test_12_md_links_the_html(self):
        for run in (self.healthy(), self.faulty()):
            name = os.path.basename(run["html"])
            self.assertIn(f"Report with timelines: [{name}]({name})  \n", run["md"])

    # ---- in a browser ---------------------------------------------------------------

    def test_20_browser_healthy(self):
        """No console error; no pixel of the failure window's colour on the
        whole page (a window tall enough for all of it)."""
        run = self.healthy()
        rows = self.assertBrowserRenders(run["html"], os.path.join(self.dir, "healthy.png"), "healthy",
                                         window="1400,9000")
        self.assertGreater(count_colour(rows, OK_GREEN), 100, "the requests are drawn")
        self.assertEqual(count_colour(rows, SHADE), 0, "the healthy run shows a failure window")

    def test_21_browser_faulty(self):
        run = self.faulty()
        shot = os.path.join(self.dir, "faulty.png")
        rows = self.assertBrowserRenders(run["html"], shot, "faulty")
        shaded = count_colour(rows, SHADE)
        log(f"faulty: {shaded} pixels of the failure window's colour")
        self.assertGreater(shaded, 500, "the faulty run's failure window is not visible")
        if os.environ.get("HALO_HTML_SCREENSHOT"):
            self.save_check4(rows, os.environ["HALO_HTML_SCREENSHOT"])

    def save_check4(self, rows, path):
        """Check 4's section, from its border (the first row mostly of the
        section's #ccc) to below its timeline's caption, for the docs."""
        width = len(rows[0]) // 3
        top = next(y for y, row in enumerate(rows) if count_colour([row], (0xCC, 0xCC, 0xCC)) > width // 2)
        bottom = min(len(rows), rows_with_colour(rows, SHADE)[-1] + 110)
        write_png(path, width, rows[max(0, top - 12):bottom])
        log(f"screenshot for the docs: {path}, {width}x{bottom - max(0, top - 12)}, "
            f"{os.path.getsize(path) // 1024} KB")


# ---- without the stack -----------------------------------------------------------------

MANY = """
local http = require "http"
local task = require "task"
return {
  title = "Fifty thousand requests",
  timeout = 300,
  run = function(t, stack)
    -- four tasks, 12 500 requests each: every 50th a 502, every 97th a 404
    local function worker()
      for i = 1, 12500 do
        local path = (i % 50 == 0) and "/status/502" or (i % 97 == 0) and "/status/404" or "/ok"
        http.get(stack.base .. path)
      end
    end
    local tasks = {}
    for w = 1, 4 do tasks[w] = task.spawn(worker) end
    for _, tk in ipairs(tasks) do tk:join() end
  end,
}
"""

SCHEDULE = """
local http = require "http"
return {
  title = "Schedule fires exactly once across replicas <&> \\"quoted\\"",
  run = function(t, stack)
    http.get(stack.base .. "/ok")
    t:evidence("fire times", { chart = "events", title = "Fire times per replica <&>", repeats = "double fire",
                               events = { { at = "2026-12-01T19:01:04.000Z", lane = "api2" },
                                          { at = "2026-12-01T19:01:06.000Z", lane = "api1" },
                                          { at = "2026-12-01T19:01:06.000Z", lane = "api2", label = "<i>late</i>" },
                                          { at = "2026-12-01T19:01:08.000Z", lane = "api1" } } })
    t:evidence("markup", "<b>not bold</b> & </section>")
    t:expect(false, "fire time 2026-12-01T19:01:06.000Z fired 2 times (by api1, api2)\\n<second line> & more")
  end,
}
"""


class SyntheticReports(PageAssertions, unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO} (set HALO_BIN)")
        cls.edge = EdgeServer()
        cls.dir = tempfile.mkdtemp(prefix="halo-html-synthetic-")
        with open(os.path.join(cls.dir, "stack.lua"), "w") as f:
            f.write(f'return {{ base = "{cls.edge.base}" }}\n')

    @classmethod
    def tearDownClass(cls):
        cls.edge.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_check(self, name, source):
        checks = os.path.join(self.dir, name)
        os.makedirs(checks)
        with open(os.path.join(checks, "01-check.lua"), "w") as f:
            f.write(source)
        html, js = os.path.join(self.dir, f"{name}.html"), os.path.join(self.dir, f"{name}.json")
        t0 = time.monotonic()
        p = subprocess.run([HALO, "run", "--checks", checks, "--stack", os.path.join(self.dir, "stack.lua"),
                            "--format", "html", "--out", html, "--report", f"json:{js}"], capture_output=True,
                           text=True, env=halo_env(), cwd=self.dir, timeout=300, stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - t0
        self.assertTrue(os.path.exists(html), f"no HTML (rc {p.returncode}):\n{p.stderr}")
        with open(html, encoding="utf-8") as f:
            text = f.read()
        with open(js, encoding="utf-8") as f:
            run_s = json.load(f)["duration_ms"] / 1000
        log(f"{name}: halo run in {seconds:.1f} s, of which writing the reports {seconds - run_s:.1f} s; "
            f"HTML {len(text) / 1e6:.2f} MB")
        return p, html, text

    def test_50k_requests_in_buckets(self):
        p, html, text = self.run_check("50k", MANY)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertLess(len(text), 3_000_000, "the page stays under a few MB")
        root = self.assertWellFormedPage(text, "50k")
        self.assertSelfContained(text, root, "50k")
        timeline = [el for el in root.iter(SVG + "svg") if "timeline" in classes(el)]
        self.assertEqual(len(timeline), 1)
        buckets = by_class(timeline[0], "bucket")
        self.assertGreater(len(buckets), 100, "drawn as buckets")
        self.assertEqual(by_class(timeline[0], "req"), [], "no mark per request past a few thousand")
        self.assertEqual({c for b in buckets for c in classes(b)} - {"bucket"},
                         {"ok", "client-error", "server-error"})
        counted = 0
        for b in buckets:
            title = b.find(SVG + "title").text
            counted += int(re.match(r"(\d+) × ", title).group(1))
        self.assertEqual(counted, 50000, "every request is in a bucket, and its title counts it")
        self.assertLessEqual(len(buckets), 3 * 1200 // 2, "a bucket per column and outcome at most")
        self.assertBrowserRenders(html, os.path.join(self.dir, "many.png"), "50k")

    def test_double_fire_and_escaping(self):
        p, html, text = self.run_check("schedule", SCHEDULE)
        self.assertEqual(p.returncode, 1, p.stderr[-2000:])
        root = self.assertWellFormedPage(text, "schedule")
        sec = check_section(root, 1)
        chart = chart_titled(sec, "Fire times per replica <&>")
        doubles = by_class(chart, "repeat")
        self.assertEqual(len(doubles), 1, "one fire time recorded twice")
        self.assertEqual(doubles[0].find(SVG + "text").text, "×2")
        self.assertIn("19:01:06", doubles[0].find(SVG + "title").text)
        self.assertEqual(len(by_class(chart, "event")), 4, "a mark per fire time and replica")
        self.assertIn("<i>late</i>", "".join(text_of(m) for m in by_class(chart, "event")))
        body = text_of(sec)
        self.assertIn('Schedule fires exactly once across replicas <&> "quoted"', body)
        self.assertIn("<b>not bold</b> & </section>", body)
        self.assertIn("fired 2 times (by api1, api2)\n<second line> & more", body)
        self.assertEqual(list(sec.iter(XHTML + "b")), [], "evidence is text, not markup")
        self.assertEqual([el for el in sec.iter() if el.tag.endswith("}i")], [], "a label is text, not markup")
        self.assertEqual([el for el in sec.iter(SVG + "rect") if "failure-window" in classes(el)], [],
                         "no request failed")
        self.assertBrowserRenders(html, os.path.join(self.dir, "schedule.png"), "schedule")


    # ---- chart evidence (tests/fixtures/html-chart) -----------------------------------

    def run_chart_fixture(self, name, reword=None):
        """The fixture's check, its source passed through `reword`, run with
        `halo run --checks DIR --format html`; returns the page's root."""
        with open(os.path.join(FIXTURES, "html-chart", "01-chart-evidence.lua"), encoding="utf-8") as f:
            source = f.read()
        checks = os.path.join(self.dir, name)
        os.makedirs(checks)
        with open(os.path.join(checks, "01-chart-evidence.lua"), "w", encoding="utf-8") as f:
            f.write(reword(source) if reword else source)
        html = os.path.join(self.dir, f"{name}.html")
        p = subprocess.run([HALO, "run", "--checks", checks, "--format", "html", "--out", html],
                           capture_output=True, text=True, env=halo_env(), cwd=self.dir, timeout=120,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        with open(html, encoding="utf-8") as f:
            text = f.read()
        root = self.assertWellFormedPage(text, name)
        self.assertSelfContained(text, root, name)
        return root, html

    def test_chart_evidence(self):
        """Fire times per replica: a band ×2 across the lanes where two
        replicas fired at one instant (written as Z, +01:00 and seconds since
        1970 alike); a row for a listed lane with no event. Kills and starts
        on the check's clock: a shape per kind, with a legend, and a band
        ×2 only in the lane where one replica started twice at once."""
        root, html = self.run_chart_fixture("chart")
        sec = check_section(root, 1)
        self.assertEqual(len(event_charts(sec)), 2)
        fires = chart_titled(sec, "Fire times per replica")
        self.assertEqual([el.text for el in fires.iter(SVG + "text") if "row-label" in classes(el)],
                         ["api1", "api2", "api3"], "a row per lane, in the order given")
        self.assertEqual(len(by_class(fires, "event")), 4)
        bands = by_class(fires, "repeat")
        self.assertEqual(len(bands), 1, "one time repeated")
        self.assertEqual(bands[0].find(SVG + "text").text, "×2")
        self.assertEqual(bands[0].find(SVG + "title").text,
                         "double fire: 2 events at 2026-12-01 19:01:06 UTC (api1, api2)")
        self.assertIn("4 events in 3 lanes; double fire at 1 time", text_of(sec), "the caption")

        actions = chart_titled(sec, "Kills and starts <per replica>")
        kills = [m for m in by_class(actions, "event") if "k1" in classes(m)]
        starts = [m for m in by_class(actions, "event") if "k2" in classes(m)]
        self.assertEqual((len(kills), len(starts)), (2, 3), "a class (shape and colour) per kind")
        self.assertEqual({m.tag for m in kills} & {m.tag for m in starts}, set(), "kinds differ in shape")
        legend = " ".join(el.text or "" for el in actions.iter(SVG + "text"))
        for want in ("kill (2)", "start (3)", "double start (1)", "seconds since the check started"):
            self.assertIn(want, legend)
        bands = by_class(actions, "repeat")
        self.assertEqual(len(bands), 1, "4.25 s is in two lanes, so no repeat within a lane; 9 s twice in api2")
        self.assertEqual(bands[0].find(SVG + "title").text, "double start: 2 events at 9 s (api2, api2)")
        self.assertLess(float(bands[0].find(SVG + "rect").get("height")), 40, "the band is the lane's, not the chart's")
        evidence = [el for el in sec.iter(XHTML + "table") if "evidence" in classes(el)][0]
        self.assertIn("drawn above: Fire times per replica", text_of(evidence))
        self.assertBrowserRenders(html, os.path.join(self.dir, "chart.png"), "chart")

    def test_chart_ignores_evidence_wording(self):
        """The charts come from the chart evidence alone: reworded text
        evidence leaves them as they were, and text evidence alone (the
        lines the report used to parse) draws no chart."""
        def charts(root):
            return [ET.tostring(c, encoding="unicode") for c in event_charts(check_section(root, 1))]

        before, _ = self.run_chart_fixture("chart-before")

        def reword(source):
            out = source.replace('"executions (API)"', '"Executions seen through the API"')
            out = out.replace('"schedule_executions"', '"rows of schedule_executions"')
            out = re.sub(r"(\d\d:\d\d:\d\d)(?:\.000)?Z  x(\d)  ", r"\1 UTC, \2 times, by ", out)
            out = re.sub(r'"(2026-12-01T[\d:.]+Z) (api\d)"', r'"\2 ran the tick of \1"', out)
            self.assertNotEqual(out, source)
            return out
        after, _ = self.run_chart_fixture("chart-reworded", reword)
        self.assertIn("Executions seen through the API", text_of(check_section(after, 1)))
        self.assertIn("ran the tick of", text_of(check_section(after, 1)))
        self.assertEqual(charts(after), charts(before), "rewording other evidence changed a chart")

        def text_only(source):
            return re.sub(r'\n    t:evidence\("(fire times|replica actions)".*?\n    }\)', "", source, flags=re.S)
        plain, _ = self.run_chart_fixture("chart-text-only", text_only)
        self.assertIn("schedule_executions", text_of(check_section(plain, 1)))
        self.assertEqual(charts(plain), [], "no chart without chart evidence")

    def test_chart_in_text_and_md(self):
        """The text (-v) and md reports show a chart as one line of JSON,
        what it is first and its events last."""
        checks = os.path.join(FIXTURES, "html-chart")
        for args in (["-v"], ["--format", "md"]):
            p = subprocess.run([HALO, "run", "--checks", checks] + args, capture_output=True, text=True,
                               env=halo_env(), cwd=self.dir, timeout=120, stdin=subprocess.DEVNULL)
            self.assertEqual(p.returncode, 0, p.stderr[-2000:])
            lines = [l.strip() for l in p.stdout.splitlines() if l.strip().startswith("fire times:")]
            self.assertEqual(len(lines), 1, p.stdout)
            self.assertTrue(lines[0].startswith('fire times: {"chart":"events","title":"Fire times per replica",'
                                                '"repeats":"double fire","lanes":["api1","api2","api3"],'
                                                '"events":[{"at":"2026-12-01T19:01:04.000Z","lane":"api2"},'),
                            lines[0])

    def test_malformed_chart_is_an_error(self):
        """A chart the report could not draw is the check's ERROR, with
        what is wrong, not a chart silently missing. A `chart` key other
        than "events" is the check's own data."""
        for value, why in (('{ chart = "events", events = { { at = "yesterday", lane = "api1" } } }',
                            "events[1].at must be an ISO-8601 time"),
                           ('{ chart = "events", ["repeat"] = "double fire", events = {} }',
                            "unknown key 'repeat' in a chart"),
                           ('{ chart = "events", events = { { at = "2026-13-01T19:01:04Z", lane = "api1" } } }',
                            "events[1].at must be an ISO-8601 time"),
                           ('{ chart = "events", events = { { at = 1e300, lane = "api1" } } }',
                            "events[1].at must be an ISO-8601 time"),
                           ('{ chart = "events", events = { { at = 0, lane = {} } } }',
                            "events[1].lane must be a string or a number"),
                           ('{ chart = "events", clock = "elapsed", events = { { at = "2026-12-01T19:01:04Z" } } }',
                            "events[1].at must be seconds since the check started")):
            with self.subTest(value=value):
                source = ('return { title = "bad chart", run = function(t)\n'
                          f'  t:evidence("chart", {value})\nend }}\n')
                checks = tempfile.mkdtemp(dir=self.dir)
                with open(os.path.join(checks, "01-bad.lua"), "w") as f:
                    f.write(source)
                p = subprocess.run([HALO, "run", "--checks", checks, "--format", "json"], capture_output=True,
                                   text=True, env=halo_env(), cwd=self.dir, timeout=120, stdin=subprocess.DEVNULL)
                check = json.loads(p.stdout)["checks"][0]
                self.assertEqual(check["status"], "ERROR", check)
                self.assertIn("01-bad.lua:2: bad argument #2 to 'evidence' (" + why, check["message"])
        checks = tempfile.mkdtemp(dir=self.dir)
        with open(os.path.join(checks, "01-data.lua"), "w") as f:
            f.write('return { title = "data", run = function(t) t:evidence("helm", { chart = "pulp-1.2", n = 1 }) end }\n')
        p = subprocess.run([HALO, "run", "--checks", checks, "--format", "html"], capture_output=True, text=True,
                           env=halo_env(), cwd=self.dir, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        sec = check_section(parse_page(p.stdout), 1)
        self.assertEqual(event_charts(sec), [])
        self.assertIn("pulp-1.2", text_of(sec))
        self.assertNotIn("not drawn", text_of(sec))


if __name__ == "__main__":
    unittest.main()
