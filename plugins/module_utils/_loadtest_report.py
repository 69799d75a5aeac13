# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The load test report: runs (``_loadtest``'s shape) into one JSON document, a self-contained HTML page and a
short text summary.

The HTML has no script and loads nothing: the plots are inline SVG drawn here. Every number the page shows sits in
an element with ``data-key`` (its path in the JSON document, like ``runs.0.stages.1.latency.ttft.p50``) and
``data-value`` (the JSON value), so that a test, or a person with the browser's inspector, can check the page
against the JSON.
"""

from __future__ import annotations

import datetime
import html
import math

SCHEMA = "gke_ai.inference_gateway/loadtest-report/v1"
PALETTE = ("#1a73e8", "#d93025", "#188038", "#f29900", "#9334e6", "#12b5cb", "#e52592", "#5f6368")
LATENCIES = (("e2e", "end-to-end latency"), ("ttft", "time to first token"), ("itl", "inter-token latency"),
             ("ttfb", "time to first byte"))
# (label, path in a stage, unit) of the numbers the A/B comparison lines up
COMPARED = (
    ("e2e p50", ("latency", "e2e", "p50"), "s"),
    ("e2e p90", ("latency", "e2e", "p90"), "s"),
    ("e2e p99", ("latency", "e2e", "p99"), "s"),
    ("TTFT p50", ("latency", "ttft", "p50"), "s"),
    ("TTFT p99", ("latency", "ttft", "p99"), "s"),
    ("ITL p50", ("latency", "itl", "p50"), "s"),
    ("ITL p99", ("latency", "itl", "p99"), "s"),
    ("requests/s", ("throughput", "requests_per_s"), "/s"),
    ("output tokens/s", ("throughput", "output_tokens_per_s"), "/s"),
    ("failures", ("failures",), ""),
)


class ReportError(Exception):
    """Runs that cannot make a report."""


def _get(data, path):
    for key in path:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return None
        if data is None:
            return None
    return data


def _rate(stage):
    """The stage's x on QPS axes: the rate asked for, or the rate achieved when none was (hey without -q)."""
    return stage.get("requested_rate") if stage.get("requested_rate") is not None else stage.get("achieved_rate")


# --------------------------------------------------------------------------- the document


def comparison(runs, a_name, b_name):
    """The A/B rows: for each stage both runs have (the same position in the sweep), each COMPARED number of A
    and B and B / A. Stage rates that differ are reported as they are (the same workload gives the same rates)."""
    by_name = dict((run["name"], run) for run in runs)
    for name in (a_name, b_name):
        if name not in by_name:
            raise ReportError("the A/B comparison names run %r, which is not among the runs (%s)"
                              % (name, ", ".join(sorted(by_name)) or "none"))
    a, b = by_name[a_name], by_name[b_name]
    rows = []
    for index in range(min(len(a["stages"]), len(b["stages"]))):
        sa, sb = a["stages"][index], b["stages"][index]
        for label, path, unit in COMPARED:
            va, vb = _get(sa, path), _get(sb, path)
            if va is None and vb is None:
                continue
            ratio = vb / va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and va else None
            rows.append({"stage": index, "rate_a": _rate(sa), "rate_b": _rate(sb), "metric": label, "unit": unit,
                         "a": va, "b": vb, "b_over_a": ratio})
    return {"a": a_name, "b": b_name, "rows": rows}


def build_report(runs, title="Load test", ab=None, generated=None):
    """The report document. ``ab`` is ``(a run name, b run name)`` or None."""
    if not runs:
        raise ReportError("no runs to report")
    names = [run["name"] for run in runs]
    if len(set(names)) != len(names):
        raise ReportError("run names must be unique, got %s" % ", ".join(names))
    generated = generated or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    return {
        "schema": SCHEMA,
        "title": title,
        "generated": generated,
        "runs": runs,
        "comparison": comparison(runs, ab[0], ab[1]) if ab else None,
    }


# --------------------------------------------------------------------------- formatting


def fmt_seconds(value):
    if value is None:
        return "–"
    if abs(value) < 1.0:
        return "%.1f ms" % (value * 1000.0)
    return "%.3f s" % value


def fmt_number(value, unit=""):
    if value is None:
        return "–"
    if unit == "s":
        return fmt_seconds(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1000:
        text = "%d" % value
    elif abs(value) >= 100:
        text = "%.1f" % value
    else:
        text = "%.3g" % value
    return text + (" " + unit if unit and unit != "/s" else "")


def fmt_ratio(value):
    return "–" if value is None else "×%.2f" % value


def _cell(key, value, text, tag="td"):
    """An element showing ``text`` for ``value``, found again by the JSON path ``key``."""
    shown = "" if value is None else repr(value) if isinstance(value, float) else str(value)
    return '<%s data-key="%s" data-value="%s">%s</%s>' % (
        tag, html.escape(key), html.escape(shown), html.escape(text), tag)


# --------------------------------------------------------------------------- SVG


def _nice_ticks(low, high, count=5):
    """About ``count`` round tick values covering [low, high]."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / float(count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _tick_text(value, unit):
    if unit == "s":
        return fmt_seconds(value).replace(" ", "\u202f")
    if unit == "%":
        return "%g%%" % round(value * 100, 6)
    return "%g" % round(value, 6)


class Svg(object):
    """One chart: a plot area with axes, in a fixed viewBox that scales with the page."""

    W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 300, 70, 20, 40, 46

    def __init__(self, chart_id, title, x_label, y_label, x_range, y_range, x_unit="", y_unit="", y_from_zero=True):
        self.id = chart_id
        self.title = title
        self.parts = []
        xlo, xhi = x_range
        ylo, yhi = y_range
        if y_from_zero:
            ylo = min(0.0, ylo)
        self.xt = _nice_ticks(xlo, xhi)
        self.yt = _nice_ticks(ylo, yhi)
        self.x0, self.x1, self.y0, self.y1 = self.xt[0], self.xt[-1], self.yt[0], self.yt[-1]
        self.x_label, self.y_label, self.x_unit, self.y_unit = x_label, y_label, x_unit, y_unit
        self.legend = []
        self.count = 0

    def x(self, value):
        span = (self.x1 - self.x0) or 1.0
        return self.LEFT + (value - self.x0) / span * (self.W - self.LEFT - self.RIGHT)

    def y(self, value):
        span = (self.y1 - self.y0) or 1.0
        return self.H - self.BOTTOM - (value - self.y0) / span * (self.H - self.TOP - self.BOTTOM)

    def line(self, name, points, color, dash=False, y_unit=None, markers=None):
        """A polyline through ``points``, with a marker (and its tooltip) on each of ``markers`` (the points)."""
        points = sorted((x, y) for x, y in points if x is not None and y is not None)
        if not points:
            return
        markers = points if markers is None else markers
        self.legend.append((name, color, dash))
        self.parts.append(lambda: '<polyline class="series" data-series="%s" fill="none" stroke="%s" '
                          'stroke-width="2"%s points="%s"/>' % (
                              html.escape(name), color, _dash(dash),
                              " ".join("%.1f,%.1f" % (self.x(x), self.y(y)) for x, y in points)))
        for x, y in markers:
            self.count += 1
            self.parts.append(lambda x=x, y=y: '<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s at %s'
                              '</title></circle>' % (self.x(x), self.y(y), color, html.escape(name),
                                                     html.escape(_tick_text(y, y_unit or self.y_unit)),
                                                     html.escape(_tick_text(x, self.x_unit))))

    def steps(self, name, points, color, dash=False):
        """A step line (a value holds until the next sample), for replica counts."""
        points = sorted((x, y) for x, y in points if x is not None and y is not None)
        stepped = []
        for i, (x, y) in enumerate(points):
            if i:
                stepped.append((x, points[i - 1][1]))
            stepped.append((x, y))
        self.line(name, stepped, color, dash, markers=points)

    def add_bar(self, name, x, width, bottom, top, color):
        self.count += 1
        self.parts.append(lambda: '<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %g at %s'
                          '</title></rect>' % (self.x(x), self.y(top), max(1.0, self.x(x + width) - self.x(x) - 1),
                                               max(0.0, self.y(bottom) - self.y(top)), color, html.escape(name),
                                               top - bottom, html.escape(_tick_text(x, self.x_unit))))

    def _legend_places(self):
        """Where each legend entry goes: rows under the title, wrapped at the plot's width."""
        places, x, y = [], self.LEFT, 34
        for name, _color, _dash in self.legend:
            width = 28 + 6 * len(name)
            if x + width > self.W - self.RIGHT and x > self.LEFT:
                x, y = self.LEFT, y + 15
            places.append((x, y))
            x += width
        return places

    def render(self):
        rows = len(set(y for _x, y in self._legend_places()))
        self.TOP = 30 + 15 * rows  # the plot starts under the legend (y() reads TOP)
        out = ['<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="%s" data-marks="%d" '
               'viewBox="0 0 %d %d" role="img" aria-label="%s">' % (self.id, self.count, self.W, self.H,
                                                                    html.escape(self.title)),
               '<text x="%d" y="18" class="title">%s</text>' % (self.LEFT, html.escape(self.title))]
        for tick in self.yt:
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>' % (
                self.LEFT, self.W - self.RIGHT, self.y(tick), self.y(tick)))
            out.append('<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>' % (
                self.LEFT - 6, self.y(tick) + 4, html.escape(_tick_text(tick, self.y_unit))))
        for tick in self.xt:
            out.append('<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>' % (
                self.x(tick), self.H - self.BOTTOM + 16, html.escape(_tick_text(tick, self.x_unit))))
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" class="axis"/>' % (
            self.LEFT, self.W - self.RIGHT, self.H - self.BOTTOM, self.H - self.BOTTOM))
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" class="axis"/>' % (
            self.LEFT, self.LEFT, self.TOP, self.H - self.BOTTOM))
        out.append('<text x="%.1f" y="%d" class="label" text-anchor="middle">%s</text>' % (
            (self.LEFT + self.W - self.RIGHT) / 2.0, self.H - 8, html.escape(self.x_label)))
        out.append('<text transform="translate(14 %.1f) rotate(-90)" class="label" text-anchor="middle">%s</text>'
                   % ((self.TOP + self.H - self.BOTTOM) / 2.0, html.escape(self.y_label)))
        out.extend(part() for part in self.parts)
        for (x, y), (name, color, dash) in zip(self._legend_places(), self.legend):
            out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"%s/>' % (
                x, x + 16, y - 4, y - 4, color, _dash(dash)))
            out.append('<text x="%d" y="%d" class="legend">%s</text>' % (x + 20, y, html.escape(name)))
        out.append("</svg>")
        return "\n".join(out)


def _dash(dash):
    """The stroke pattern of a line: solid (False), dotted ("dot") or dashed (True)."""
    if not dash:
        return ""
    return ' stroke-dasharray="%s"' % ("2 3" if dash == "dot" else "6 4")


def _empty(chart_id, title, why):
    return ('<figure class="empty" data-chart="%s"><figcaption>%s</figcaption><p>%s</p></figure>'
            % (chart_id, html.escape(title), html.escape(why)))


def _figure(svg):
    return '<figure>%s</figure>' % svg.render() if svg.count else _empty(svg.id, svg.title, "no data")


def _range(values, default=(0.0, 1.0)):
    values = [v for v in values if v is not None]
    return (min(values), max(values)) if values else default


def _color(index):
    return PALETTE[index % len(PALETTE)]


def chart_latency_vs_qps(runs, key, label):
    """p50 (solid) and p99 (dashed) of one latency against the stages' QPS, one color per run."""
    xs, ys = [], []
    for run in runs:
        for stage in run["stages"]:
            dist = _get(stage, ("latency", key)) or {}
            if dist.get("p50") is not None:
                xs.append(_rate(stage))
                ys += [dist.get("p50"), dist.get("p90"), dist.get("p99")]
    svg = Svg("%s-vs-qps" % key, "%s against QPS (p50, p90 dotted, p99 dashed)" % label.capitalize(), "QPS",
              label, _range(xs), _range(ys), y_unit="s")
    for i, run in enumerate(runs):
        for pct, dash in (("p50", False), ("p90", "dot"), ("p99", True)):
            points = [(_rate(s), _get(s, ("latency", key, pct))) for s in run["stages"]]
            svg.line("%s %s" % (run["name"], pct), points, _color(i), dash=dash)
    return _figure(svg)


def chart_throughput(runs):
    xs, ys = [], []
    for run in runs:
        for stage in run["stages"]:
            xs.append(_rate(stage))
            ys.append(_get(stage, ("throughput", "requests_per_s")))
    svg = Svg("throughput-vs-qps", "Successful requests per second against QPS", "QPS", "requests/s",
              _range(xs), _range(ys))
    for i, run in enumerate(runs):
        svg.line(run["name"], [(_rate(s), _get(s, ("throughput", "requests_per_s"))) for s in run["stages"]],
                 _color(i))
    return _figure(svg)


def chart_tokens(runs):
    xs, ys = [], []
    for run in runs:
        for stage in run["stages"]:
            if _get(stage, ("throughput", "output_tokens_per_s")) is not None:
                xs.append(_rate(stage))
                ys.append(_get(stage, ("throughput", "output_tokens_per_s")))
    svg = Svg("tokens-vs-qps", "Output tokens per second against QPS", "QPS", "tokens/s", _range(xs), _range(ys))
    for i, run in enumerate(runs):
        svg.line(run["name"], [(_rate(s), _get(s, ("throughput", "output_tokens_per_s"))) for s in run["stages"]],
                 _color(i))
    return _figure(svg)


OUTCOME_COLORS = {"200": "#188038", "429": "#f29900", "503": "#d93025", "no-response": "#5f6368"}


def chart_outcomes(run):
    """Requests started per second of the run, stacked by outcome (HTTP status or error)."""
    timeline = run.get("timeline") or {}
    t = timeline.get("t") or []
    codes = timeline.get("codes") or {}
    width = timeline.get("bucket_s") or 1.0
    totals = [sum(series[i] for series in codes.values()) for i in range(len(t))]
    svg = Svg("outcomes-%s" % run["name"], "%s: requests per second by outcome" % run["name"],
              "seconds since the start", "requests", (0.0, (t[-1] + width) if t else 1.0), _range(totals))
    others = [c for c in codes if c not in OUTCOME_COLORS]
    colors = dict(OUTCOME_COLORS, **dict((c, _color(i + 4)) for i, c in enumerate(others)))
    bottoms = [0] * len(t)
    for code in sorted(codes):
        series = codes[code]
        for i, count in enumerate(series):
            if count:
                svg.add_bar(code, t[i], width, bottoms[i], bottoms[i] + count, colors[code])
                bottoms[i] += count
        if any(series):
            svg.legend.append((code, colors[code], False))
    return _figure(svg)


def chart_replicas(runs):
    points = [row for run in runs for row in (run.get("samples") or {}).get("replicas") or []]
    svg = Svg("replicas-over-time", "Model server replicas (desired solid, ready dashed)", "seconds since the start",
              "replicas", _range([0.0] + [row[0] for row in points]),
              _range([v for row in points for v in row[1:] if v is not None], (0.0, 1.0)))
    for i, run in enumerate(runs):
        rows = [row for row in (run.get("samples") or {}).get("replicas") or [] if row[1] is not None]
        svg.steps("%s desired" % run["name"], [(row[0], row[1]) for row in rows], _color(i))
        svg.steps("%s ready" % run["name"], [(row[0], row[2]) for row in rows], _color(i), dash=True)
    if not svg.count:
        return _empty(svg.id, svg.title, _sample_errors(runs, "replicas") or "not sampled")
    return _figure(svg)


def chart_kv_cache(runs):
    points = [row for run in runs for row in (run.get("samples") or {}).get("kv_cache") or []]
    svg = Svg("kv-cache-over-time", "Pool average KV-cache use (Cloud Monitoring)", "seconds since the start",
              "KV-cache use", _range([0.0] + [row[0] for row in points]),
              (0.0, max([row[1] for row in points] + [0.1])), y_unit="%")
    for i, run in enumerate(runs):
        svg.line(run["name"], [(row[0], row[1]) for row in (run.get("samples") or {}).get("kv_cache") or []],
                 _color(i), y_unit="%")
    if not svg.count:
        return _empty(svg.id, svg.title, _sample_errors(runs, "kv_cache") or "not sampled")
    return _figure(svg)


PANEL_UNITS = {"10^2.%": "%", "s": "s"}


def chart_panel(runs, index):
    """Panel ``index`` of the stack's dashboard (``run.panels``, read back from Cloud Monitoring over each run), one
    line per run and series, with the panel's thresholds (the HPA targets) as dotted lines."""
    panels = [(run, run["panels"][index]) for run in runs if len(run.get("panels") or []) > index]
    if not panels:
        return ""
    first = panels[0][1]
    unit = PANEL_UNITS.get(first["unit"], "")
    points = [p for _run, panel in panels for line in panel["series"] for p in line["points"]]
    levels = [t["value"] for _run, panel in panels for t in panel.get("thresholds") or []]
    svg = Svg("panel-%s" % first["id"], "%s (dashboard panel, Cloud Monitoring)" % first["title"],
              "seconds since the run's start", first["unit"], _range([0.0] + [p[0] for p in points]),
              _range([p[1] for p in points] + levels, (0.0, 1.0)), y_unit=unit)
    color = 0
    for run, panel in panels:
        for line in panel["series"]:
            svg.line("%s %s" % (run["name"], line["legend"]), [tuple(p) for p in line["points"]], _color(color),
                     y_unit=unit)
            color += 1
    for threshold in first.get("thresholds") or []:  # a dotted guide across the plot, not a series
        svg.legend.append((threshold["label"], PALETTE[7], "dot"))
        svg.parts.append(lambda value=threshold["value"]: '<line class="guide" x1="%d" x2="%d" y1="%.1f" y2="%.1f" '
                         'stroke="%s"%s/>' % (svg.LEFT, svg.W - svg.RIGHT, svg.y(value), svg.y(value), PALETTE[7],
                                              _dash("dot")))
    errors = sorted(set("%s: %s" % (run["name"], error) for run, panel in panels for error in panel["errors"]))
    if not svg.count:
        return _empty(svg.id, svg.title, ("not available: " + "; ".join(errors)) if errors
                      else "no data in the run's window")
    note = '<p class="meta">not available: %s</p>' % html.escape("; ".join(errors)) if errors else ""
    return '<figure>%s%s</figure>' % (svg.render(), note)


def chart_panels(runs):
    """Every panel of the dashboard, in its order."""
    count = max([len(run.get("panels") or []) for run in runs] + [0])
    return "".join(chart_panel(runs, i) for i in range(count))


def chart_ab(report):
    """B / A of each compared latency, one bar per metric and stage (below 1: B is faster)."""
    comp = report.get("comparison")
    rows = [row for row in (comp or {}).get("rows") or [] if row["unit"] == "s" and row["b_over_a"] is not None]
    if not rows:
        return ""
    svg = Svg("ab-ratio", "%s / %s latency ratio per metric (below 1: %s is faster)" % (comp["b"], comp["a"],
                                                                                        comp["b"]),
              "metric (stage)", "ratio", (0.0, float(len(rows))), (0.0, max(r["b_over_a"] for r in rows) * 1.1))
    for i, row in enumerate(rows):
        color = _color(1) if row["b_over_a"] > 1.05 else _color(2) if row["b_over_a"] < 0.95 else PALETTE[7]
        svg.add_bar("%s (stage %d)" % (row["metric"], row["stage"]), i + 0.15, 0.7, 0.0, row["b_over_a"], color)
    svg.parts.append(lambda: '<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#202124" stroke-dasharray="3 3"/>'
                     % (svg.LEFT, svg.W - svg.RIGHT, svg.y(1.0), svg.y(1.0)))
    svg.xt, svg.x0, svg.x1, svg.BOTTOM = [], 0.0, float(len(rows)), 78  # room for the slanted metric names
    for i, row in enumerate(rows):
        svg.parts.append(lambda i=i, row=row: '<text x="%.1f" y="%d" class="tick" text-anchor="end" '
                         'transform="rotate(-30 %.1f %d)">%s</text>' % (
                             svg.x(i + 0.5), svg.H - svg.BOTTOM + 12, svg.x(i + 0.5), svg.H - svg.BOTTOM + 12,
                             html.escape("%s/%d" % (row["metric"], row["stage"]))))
    svg.x_label = ""
    return _figure(svg)


def _sample_errors(runs, name):
    errors = ["%s: %s (%d failed samples)" % (run["name"], error["last"], error["count"])
              for run in runs for key, error in ((run.get("samples") or {}).get("errors") or {}).items()
              if key == name]
    return "; ".join(errors)


# --------------------------------------------------------------------------- tables


def _runs_table(report):
    head = ("<tr><th>run</th><th>tool</th><th>route</th><th>target</th><th>model</th><th>workload</th>"
            "<th>duration</th><th>requests</th><th>failures</th><th>error rate</th><th>outcomes</th></tr>")
    rows = []
    for i, run in enumerate(report["runs"]):
        target = run["target"]["url"] + (" (Host %s)" % run["target"]["host"] if run["target"].get("host") else "")
        workload = run.get("workload") or {}
        if run["tool"] == "hey":
            what = "hey -c %s %s" % (workload.get("concurrency"), "-n %s" % workload.get("requests")
                                     if workload.get("requests") else "-z %ss" % workload.get("duration"))
            if workload.get("rate"):
                what += " at %s QPS" % workload.get("rate")
        else:
            what = "%s, %s × %ss" % (workload.get("preset"), "/".join("%g" % r for r in workload.get("rates") or []),
                                     workload.get("stage_duration"))
        outcomes = ", ".join("%s: %s" % (code, count) for code, count in run["totals"]["status_codes"].items())
        prefix = "runs.%d." % i
        rows.append("<tr>%s<td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>%s%s%s%s<td>%s</td></tr>" % (
            _cell(prefix + "name", run["name"], run["name"], "th"), html.escape(run["tool"]),
            html.escape(str((run.get("labels") or {}).get("route", ""))), html.escape(target),
            html.escape(run["target"]["model"]), html.escape(what) + (" (capped)" if run.get("capped") else ""),
            _cell(prefix + "duration_s", run["duration_s"], fmt_seconds(run["duration_s"])),
            _cell(prefix + "totals.requests", run["totals"]["requests"], fmt_number(run["totals"]["requests"])),
            _cell(prefix + "totals.failures", run["totals"]["failures"], fmt_number(run["totals"]["failures"])),
            _cell(prefix + "totals.error_rate", run["totals"]["error_rate"],
                  "–" if run["totals"]["error_rate"] is None else "%.2f%%" % (run["totals"]["error_rate"] * 100)),
            html.escape(outcomes)))
    return '<table class="runs">%s%s</table>' % (head, "".join(rows))


def _stages_table(report):
    cols = [("requested QPS", ("requested_rate",), ""), ("achieved QPS", ("achieved_rate",), ""),
            ("requests", ("requests",), ""), ("failures", ("failures",), ""),
            ("req/s", ("throughput", "requests_per_s"), ""), ("out tok/s", ("throughput", "output_tokens_per_s"), "")]
    for key, _label in LATENCIES:
        for pct in ("p50", "p90", "p99"):
            cols.append(("%s %s" % (key.upper() if key != "e2e" else "e2e", pct), ("latency", key, pct), "s"))
    shown = [c for c in cols if any(_get(s, c[1]) is not None for r in report["runs"] for s in r["stages"])
             or c[1][0] != "latency"]
    head = "<tr><th>run</th><th>stage</th>%s</tr>" % "".join("<th>%s</th>" % html.escape(c[0]) for c in shown)
    rows = []
    for i, run in enumerate(report["runs"]):
        for j, stage in enumerate(run["stages"]):
            cells = "".join(_cell("runs.%d.stages.%d.%s" % (i, j, ".".join(path)), _get(stage, path),
                                  fmt_number(_get(stage, path), unit)) for _l, path, unit in shown)
            rows.append("<tr><th>%s</th><td>%d</td>%s</tr>" % (html.escape(run["name"]), stage["index"], cells))
    return '<table class="stages">%s%s</table>' % (head, "".join(rows))


def _comparison_table(report):
    comp = report.get("comparison")
    if not comp:
        return ""
    head = ("<tr><th>stage</th><th>QPS</th><th>metric</th><th>A: %s</th><th>B: %s</th><th>B / A</th></tr>"
            % (html.escape(comp["a"]), html.escape(comp["b"])))
    rows = []
    for k, row in enumerate(comp["rows"]):
        key = "comparison.rows.%d." % k
        rows.append("<tr><td>%d</td>%s<td>%s</td>%s%s%s</tr>" % (
            row["stage"], _cell(key + "rate_a", row["rate_a"], fmt_number(row["rate_a"])), html.escape(row["metric"]),
            _cell(key + "a", row["a"], fmt_number(row["a"], row["unit"])),
            _cell(key + "b", row["b"], fmt_number(row["b"], row["unit"])),
            _cell(key + "b_over_a", row["b_over_a"], fmt_ratio(row["b_over_a"]))))
    return ('<section id="ab"><h2>A/B: %s against %s</h2><div class="pair">%s<table class="ab">%s%s</table></div>'
            '</section>' % (html.escape(comp["a"]), html.escape(comp["b"]), chart_ab(report), head, "".join(rows)))


# --------------------------------------------------------------------------- the page

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#202124;max-width:1400px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dadce0}
.meta{color:#5f6368;font-size:13px}table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #dadce0;padding:3px 7px;text-align:right;white-space:nowrap}th{background:#f1f3f4}
td:nth-child(-n+2){text-align:left}.runs td{text-align:left}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:12px}
figure{margin:0;border:1px solid #dadce0;border-radius:6px;padding:6px;background:#fff}
figure.empty{color:#5f6368;font-size:13px;padding:16px}figure.empty figcaption{font-weight:600;color:#202124}
svg.chart{width:100%;height:auto;display:block}svg .title{font-size:14px;font-weight:600;fill:#202124}
svg .tick{font-size:11px;fill:#5f6368}svg .label{font-size:12px;fill:#3c4043}svg .legend{font-size:11px;fill:#3c4043}
svg .grid{stroke:#e8eaed}svg .axis{stroke:#5f6368}.pair{display:grid;grid-template-columns:minmax(420px,1fr) auto;
gap:12px;align-items:start}
"""


def render_html(report):
    """The self-contained page (no script, no external resource)."""
    runs = report["runs"]
    measured = set(key for key, _label in LATENCIES for r in runs for s in r["stages"]
                   if _get(s, ("latency", key, "p50")) is not None)
    qps = [chart_latency_vs_qps(runs, key, label) for key, label in LATENCIES if key in measured]
    qps += [chart_throughput(runs)]
    if any(_get(s, ("throughput", "output_tokens_per_s")) is not None for r in runs for s in r["stages"]):
        qps.append(chart_tokens(runs))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
        "<title>%s</title><style>%s</style></head><body>" % (html.escape(report["title"]), CSS),
        "<h1>%s</h1>" % html.escape(report["title"]),
        '<p class="meta">generated %s · %s · every number is also in report.json</p>' % (
            html.escape(report["generated"]), html.escape(report["schema"])),
        '<section id="runs"><h2>Runs</h2>%s</section>' % _runs_table(report),
        _comparison_table(report),
        '<section id="stages"><h2>Per stage</h2>%s</section>' % _stages_table(report),
        '<section id="qps"><h2>Latency and throughput against QPS</h2><div class="grid2">%s</div></section>'
        % "".join(qps),
        '<section id="outcomes"><h2>Outcomes over time</h2><div class="grid2">%s</div></section>'
        % "".join(chart_outcomes(run) for run in runs),
        '<section id="cluster"><h2>Replicas and KV-cache use over time</h2><div class="grid2">%s%s</div></section>'
        % (chart_replicas(runs), chart_kv_cache(runs)),
        ('<section id="dashboard"><h2>The dashboard\'s panels over each run (Cloud Monitoring)</h2>'
         '<div class="grid2">%s</div></section>' % chart_panels(runs)) if any(r.get("panels") for r in runs) else "",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


# --------------------------------------------------------------------------- text


def _stage_line(stage):
    bits = ["%s QPS" % fmt_number(_rate(stage))]
    for key, label in (("e2e", "e2e"), ("ttft", "TTFT"), ("itl", "ITL")):
        dist = _get(stage, ("latency", key))
        if dist:
            bits.append("%s p50 %s p99 %s" % (label, fmt_seconds(dist["p50"]), fmt_seconds(dist["p99"])))
    bits.append("%s req/s" % fmt_number(_get(stage, ("throughput", "requests_per_s"))))
    if stage.get("failures"):
        bits.append("%d failed" % stage["failures"])
    return ", ".join(bits)


def text_summary(report):
    """A few lines for the playbook's output."""
    lines = []
    for run in report["runs"]:
        t = run["totals"]
        lines.append("%s (%s%s): %d requests, %d failed%s%s" % (
            run["name"], run["tool"], ", route %s" % run["labels"]["route"] if (run.get("labels") or {}).get("route")
            else "", t["requests"], t["failures"],
            " (%s)" % ", ".join("%s: %s" % kv for kv in t["status_codes"].items() if kv[0] != "200")
            if t["failures"] else "", ", CAPPED at the time cap" if run.get("capped") else ""))
        for stage in run["stages"]:
            lines.append("  " + _stage_line(stage))
        samples = run.get("samples") or {}
        replicas = [row[1] for row in samples.get("replicas") or [] if row[1] is not None]
        kv = [row[1] for row in samples.get("kv_cache") or []]
        if replicas or kv:
            lines.append("  %s%s" % ("replicas %d→%d (max %d)" % (replicas[0], replicas[-1], max(replicas))
                                     if replicas else "",
                                     "%sKV-cache max %.0f%%" % ("; " if replicas else "", max(kv) * 100) if kv else ""))
        for name, error in sorted((samples.get("errors") or {}).items()):
            lines.append("  %s not sampled: %s" % (name, error["last"]))
    comp = report.get("comparison")
    if comp:
        picked = [row for row in comp["rows"] if row["metric"] in ("e2e p50", "TTFT p50", "ITL p50", "e2e p99")]
        for row in picked:
            lines.append("A/B stage %d: %s %s %s vs %s %s (%s)" % (
                row["stage"], row["metric"], comp["a"], fmt_number(row["a"], row["unit"]), comp["b"],
                fmt_number(row["b"], row["unit"]), fmt_ratio(row["b_over_a"])))
    return lines
