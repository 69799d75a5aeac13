# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_loadtest_report.py: the report document, the A/B comparison, the text summary,
# and the HTML page: self-contained (no script, nothing fetched), rendered in headless Chromium (Debian's chromium;
# `make unit` installs it), every chart laid out with its marks, and every number the page shows equal to the JSON.
from __future__ import annotations

import copy
import html.parser
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _loadtest as lt
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _loadtest_report as rl

FIXTURES = Path(__file__).parent / "fixtures" / "loadtest"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--window-size=1280,2400"]


def perf_run(name, route, slower=1.0):
    """A run of the inference-perf fixture (two stages, with 503s), its latencies scaled by ``slower``."""
    stages, entries = lt.read_inference_perf(str(FIXTURES / "inference-perf"))
    origin = min(e["start_time"] for e in entries) - 12.0
    records = lt.inference_perf_requests(entries, origin)
    for stage in stages:
        for dist in stage["latency"].values():
            for key in list(dist or {}):
                dist[key] *= slower
    return {"name": name, "tool": "inference_perf", "labels": {"route": route},
            "target": {"url": "http://127.0.0.2", "host": "api.example.com", "model": "google/gemma-3-1b-it"},
            "workload": {"preset": "walkthrough", "rates": [2, 4], "stage_duration": 3},
            "started": 1000.0, "ended": 1027.0, "duration_s": 27.0, "exit_code": 0, "capped": False,
            "stages": stages, "totals": lt.totals(stages), "timeline": lt.status_timeline(records, 1.0, 27.0),
            "samples": {"interval_s": 2.0, "replicas": [[0.0, 1, 1], [8.0, 2, 1], [12.0, 2, 2], [26.0, 2, 2]],
                        "kv_cache": [[5.0, 0.12], [15.0, 0.48], [25.0, 0.3]], "errors": {}}}


def hey_run(name):
    records = lt.parse_hey_csv((FIXTURES / "hey.csv").read_text())
    stage = lt.hey_stage(records, 2.0, missing=1)
    return {"name": name, "tool": "hey", "labels": {"route": "service"},
            "target": {"url": "http://10.96.0.7:8000", "host": None, "model": "google/gemma-3-1b-it"},
            "workload": {"concurrency": 2, "requests": 8, "rate": None, "duration": None},
            "started": 0.0, "ended": 2.0, "duration_s": 2.0, "exit_code": 0, "capped": False,
            "stages": [stage], "totals": lt.totals([stage]), "timeline": lt.status_timeline(records, 1.0, 2.0),
            "samples": {"interval_s": 2.0, "replicas": [], "kv_cache": [],
                        "errors": {"kv_cache": {"count": 2, "last": "GcpError: HTTP 403 monitoring.timeSeries.list"}}}}


@pytest.fixture
def report():
    return rl.build_report([perf_run("pool", "pool"), perf_run("service", "service", slower=1.5)], title="A/B test",
                           ab=("pool", "service"), generated="2026-12-04T12:00:00+00:00")


# --------------------------------------------------------------------------- the document

def test_comparison_lines_up_each_stage_and_metric(report):
    comp = report["comparison"]
    assert comp["a"] == "pool" and comp["b"] == "service"
    ttft = [r for r in comp["rows"] if r["metric"] == "TTFT p50"]
    assert [r["stage"] for r in ttft] == [0, 1] and [r["rate_a"] for r in ttft] == [2.0, 4.0]
    a, b = report["runs"][0]["stages"][1], report["runs"][1]["stages"][1]
    assert ttft[1]["a"] == a["latency"]["ttft"]["p50"] and ttft[1]["b"] == b["latency"]["ttft"]["p50"]
    assert ttft[1]["b_over_a"] == pytest.approx(1.5)
    failures = [r for r in comp["rows"] if r["metric"] == "failures"]
    assert failures[1]["a"] == failures[1]["b"] == 2 and failures[1]["b_over_a"] == pytest.approx(1.0)
    stripped = rl.comparison([perf_run("a", "pool"), dict(perf_run("b", "service"), stages=[
        dict(stage, failures=0) for stage in perf_run("b", "service")["stages"]])], "b", "a")
    assert [r["b_over_a"] for r in stripped["rows"] if r["metric"] == "failures"] == [None, None]  # 0 in A: no ratio


def test_build_report_refuses_what_cannot_be_reported():
    run = perf_run("pool", "pool")
    with pytest.raises(rl.ReportError, match="no runs"):
        rl.build_report([])
    with pytest.raises(rl.ReportError, match="unique"):
        rl.build_report([run, copy.deepcopy(run)])
    with pytest.raises(rl.ReportError, match="names run 'service', which is not among the runs \\(pool\\)"):
        rl.build_report([run], ab=("pool", "service"))


def test_text_summary_names_each_run_stage_and_the_ab_result(report):
    lines = rl.text_summary(report)
    totals = report["runs"][0]["totals"]
    assert totals["failures"] == totals["status_codes"]["503"] >= 2
    assert lines[0] == "pool (inference_perf, route pool): %d requests, %d failed (503: %d)" % (
        totals["requests"], totals["failures"], totals["failures"])
    assert lines[1].startswith("  2 QPS, e2e p50 ") and "TTFT p50" in lines[1] and "ITL p50" in lines[1]
    assert "  replicas 1→2 (max 2); KV-cache max 48%" in lines
    ab = [line for line in lines if line.startswith("A/B stage 1: TTFT p50")]
    assert ab and ab[0].endswith("(×1.50)")
    hey = rl.text_summary(rl.build_report([hey_run("service")]))
    assert hey[0] == "service (hey, route service): 7 requests, 3 failed (429: 1, 503: 1, no-response: 1)"
    assert "  kv_cache not sampled: GcpError: HTTP 403 monitoring.timeSeries.list" in hey


def test_formatting():
    assert rl.fmt_seconds(0.2053) == "205.3 ms" and rl.fmt_seconds(4.2) == "4.200 s" and rl.fmt_seconds(None) == "–"
    assert rl.fmt_number(12345) == "12345" and rl.fmt_number(2.0) == "2" and rl.fmt_number(35.35) == "35.4"
    assert rl.fmt_number(0.5, "s") == "500.0 ms" and rl.fmt_ratio(1.234) == "×1.23"


# --------------------------------------------------------------------------- the page, statically

def test_the_page_is_self_contained(report):
    page = rl.render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script|<link|<img|<iframe|\bsrc\s*=|\bhref\s*=|url\(|@import", page, re.I)
    # the only URLs are the SVG namespace and the targets shown as text
    urls = set(re.findall(r"https?://[^\s\"<)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://127.0.0.2"}, urls


def test_empty_samples_say_why(report):
    hey = hey_run("service")
    page = rl.render_html(rl.build_report([hey]))
    assert 'data-chart="kv-cache-over-time"><figcaption>' in page
    assert "GcpError: HTTP 403 monitoring.timeSeries.list (2 failed samples)" in page
    assert "not sampled" in page  # the replicas
    assert 'data-chart="ttft-vs-qps"' not in page  # hey measures no TTFT: no empty TTFT chart either


# --------------------------------------------------------------------------- the page in Chromium

PROBE = """
<script>
(function () {
  var out = {charts: [], cells: []};
  document.querySelectorAll('svg[data-chart]').forEach(function (svg) {
    var box = svg.getBoundingClientRect(), drawn = 0;
    svg.querySelectorAll('circle, rect').forEach(function (mark) {
      var b = mark.getBBox();
      if (b.width > 0 && b.height >= 0 && (mark.tagName === 'circle' || b.height > 0)) { drawn++; }
    });
    out.charts.push({id: svg.dataset.chart, width: box.width, height: box.height, marks: +svg.dataset.marks,
                     drawn: drawn, lines: svg.querySelectorAll('polyline.series').length});
  });
  document.querySelectorAll('[data-key]').forEach(function (el) {
    out.cells.push({key: el.dataset.key, value: el.dataset.value, text: el.innerText, shown: el.offsetWidth > 0});
  });
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


class _Probe(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.inside, self.text = False, ""

    def handle_starttag(self, tag, attrs):
        self.inside = self.inside or (tag == "pre" and ("id", "probe") in attrs)

    def handle_endtag(self, tag):
        if tag == "pre":
            self.inside = False

    def handle_data(self, data):
        if self.inside:
            self.text += data


@pytest.fixture(scope="module")
def chromium():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        pytest.fail("chromium is needed for the HTML report test: apt-get install -y chromium (make unit does)",
                    pytrace=False)
    return binary


def render_in_chromium(chromium, page, tmp_path):
    """What Chromium laid out: each chart's box and drawn marks, each data-key element's text."""
    path = tmp_path / "report.html"
    path.write_text(page.replace("</body>", PROBE + "</body>"))
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, "--user-data-dir=%s" % (tmp_path / "profile"),
                           "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    parser = _Probe()
    parser.feed(proc.stdout)
    assert parser.text, "the probe did not run: %s" % proc.stdout[:500]
    return json.loads(parser.text)


def _path(key):
    return [int(part) if part.isdigit() else part for part in key.split(".")]


def _number_shown(text):
    """(value, absolute tolerance) of a number as the page shows it."""
    text = text.strip().replace("\u202f", " ")
    for pattern, scale in ((r"^(-?[\d.]+) ms$", 1e-3), (r"^(-?[\d.]+) s$", 1.0), (r"^(-?[\d.]+)%$", 1e-2),
                           (r"^×(-?[\d.]+)$", 1.0), (r"^(-?[\d.]+)$", 1.0)):
        match = re.match(pattern, text)
        if match:
            digits = match.group(1)
            decimals = len(digits.split(".")[1]) if "." in digits else 0
            return float(digits) * scale, 0.5 * 10 ** -decimals * scale
    raise AssertionError("not a number: %r" % text)


def test_the_page_renders_in_chromium_and_its_numbers_are_the_jsons(chromium, report, tmp_path):
    data = json.loads(json.dumps(report))  # what report.json holds
    seen = render_in_chromium(chromium, rl.render_html(report), tmp_path)

    charts = {c["id"]: c for c in seen["charts"]}
    assert {"e2e-vs-qps", "ttft-vs-qps", "itl-vs-qps", "throughput-vs-qps", "tokens-vs-qps", "outcomes-pool",
            "outcomes-service", "replicas-over-time", "kv-cache-over-time", "ab-ratio"} <= set(charts)
    for chart in charts.values():
        assert chart["width"] > 400 and chart["height"] > 150, chart
        assert chart["marks"] > 0 and chart["drawn"] == chart["marks"], chart  # every point and bar laid out
    assert charts["ttft-vs-qps"]["lines"] == 6  # p50, p90, p99 of both runs
    assert charts["outcomes-pool"]["marks"] == sum(1 for series in data["runs"][0]["timeline"]["codes"].values()
                                                   for count in series if count)

    cells = seen["cells"]
    keys = {cell["key"] for cell in cells}
    for i in range(2):
        for j in range(2):
            for metric in ("e2e", "ttft", "itl"):
                for pct in ("p50", "p90", "p99"):
                    assert "runs.%d.stages.%d.latency.%s.%s" % (i, j, metric, pct) in keys
    assert sum(1 for key in keys if key.startswith("comparison.rows.")) == 4 * len(data["comparison"]["rows"])  # rate, A, B, B / A
    checked = 0
    for cell in cells:
        assert cell["shown"], cell
        expected = data
        for part in _path(cell["key"]):
            expected = expected[part]
        if expected is None:
            assert cell["text"] == "–" and cell["value"] == ""
            continue
        if isinstance(expected, str):
            assert cell["text"] == expected
            continue
        assert float(cell["value"]) == expected, cell  # the exact value rides along
        value, tolerance = _number_shown(cell["text"])
        assert abs(value - expected) <= tolerance * 1.0001, cell
        checked += 1
    assert checked > 100
