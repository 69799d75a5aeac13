"""Cloud Monitoring dashboards v1 (projects.dashboards create/get/list/patch/delete), as the API behaves:

* bodies are checked against monitoring v1's discovery document (discovery.py, document key monitoring@v1), and
  against the rules its descriptions state: displayName required, exactly one layout, mosaic columns 1..48 with
  every tile inside them (xPos + width <= columns, width and height >= 1), one content per widget;
* a dashboard's name is projects/<project NUMBER>/dashboards/<id>, as Google writes it whichever form the request
  used; the id comes from the body's name on create (a custom id) or is generated;
* every write gives a new etag; patch replaces the whole dashboard, and a patch carrying an etag other than the
  current one is refused with 409 ABORTED (optimistic concurrency), without an etag it wins;
* create of an existing id is 409 ALREADY_EXISTS; get, patch and delete of an unknown one are 404;
* list pages with pageSize / pageToken.

State lives in world.dashboards ({id: dashboard}) and is cleared by /_fake/reset.
"""

from __future__ import annotations

import copy
import re
import secrets

from .errors import GoogleError, invalid, permission_denied
from .world import PROJECT, PROJECT_NUMBER, SEEDERS, Call, handler

ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
CONTENT_KINDS = ("alertChart", "blank", "collapsibleGroup", "errorReportingPanel", "filterControl", "incidentList",
                 "logsPanel", "pieChart", "scorecard", "sectionHeader", "singleViewGroup", "text", "timeSeriesTable",
                 "treemap", "xyChart")
LAYOUTS = ("mosaicLayout", "gridLayout", "rowLayout", "columnLayout")


def seed(world) -> None:
    world.dashboards = {}


SEEDERS.append(seed)


def _project(call: Call, permission: str) -> None:
    project = call.params.get("projectsId")
    if project not in (PROJECT, PROJECT_NUMBER):
        raise permission_denied(permission, f"projects/{project}")


def _name(dashboard_id: str) -> str:
    return f"projects/{PROJECT_NUMBER}/dashboards/{dashboard_id}"


def _existing(call: Call, permission: str) -> tuple[str, dict]:
    _project(call, permission)
    dashboard_id = call.params["dashboardsId"]
    current = call.world.dashboards.get(dashboard_id)
    if current is None:
        raise GoogleError(404, f"Requested entity was not found. (dashboard {_name(dashboard_id)})", reason="notFound")
    return dashboard_id, current


def check_dashboard(body: dict) -> list:
    """What the API refuses in a dashboard that its schema alone allows."""
    problems = []
    if not body.get("displayName"):
        problems.append("Field displayName is required.")
    layouts = [k for k in LAYOUTS if body.get(k) is not None]
    if len(layouts) > 1:
        problems.append(f"A dashboard has one layout; got {', '.join(layouts)}.")
    mosaic = body.get("mosaicLayout")
    if mosaic is not None:
        columns = mosaic.get("columns") or 0
        if not 1 <= columns <= 48:
            problems.append(f"Field mosaicLayout.columns had an invalid value of {columns}: it must be between 1 and 48.")
        for i, tile in enumerate(mosaic.get("tiles") or []):
            where = f"mosaicLayout.tiles[{i}]"
            x, y = tile.get("xPos") or 0, tile.get("yPos") or 0
            width, height = tile.get("width") or 0, tile.get("height") or 0
            if width < 1 or height < 1:
                problems.append(f"{where}: tiles must have a width and a height of at least 1.")
            if x < 0 or y < 0:
                problems.append(f"{where}: x_pos and y_pos cannot be negative.")
            if columns and x + width > columns:
                problems.append(f"{where}: the tile (x_pos {x}, width {width}) does not fit in {columns} columns.")
            problems.extend(_check_widget(tile.get("widget"), f"{where}.widget"))
    for kind in ("gridLayout", "rowLayout", "columnLayout"):
        layout = body.get(kind) or {}
        for group_key in ("widgets", "rows", "columns"):
            for i, group in enumerate(layout.get(group_key) or []):
                if group_key == "widgets":
                    problems.extend(_check_widget(group, f"{kind}.widgets[{i}]"))
                    continue
                for j, widget in enumerate(group.get("widgets") or []):
                    problems.extend(_check_widget(widget, f"{kind}.{group_key}[{i}].widgets[{j}]"))
    return problems


def _check_widget(widget, where: str) -> list:
    if widget is None:
        return [f"{where} is required."]
    kinds = [k for k in CONTENT_KINDS if widget.get(k) is not None]
    if len(kinds) != 1:
        return [f"{where}: a widget has exactly one content (xyChart, scorecard, text...); got "
                f"{', '.join(kinds) or 'none'}."]
    problems = []
    chart = widget.get("xyChart")
    if chart is not None:
        if not chart.get("dataSets"):
            problems.append(f"{where}.xyChart: at least one data set is required.")
        for i, data_set in enumerate(chart.get("dataSets") or []):
            query = data_set.get("timeSeriesQuery") or {}
            sources = [k for k in ("timeSeriesFilter", "timeSeriesFilterRatio", "timeSeriesQueryLanguage",
                                   "prometheusQuery", "opsAnalyticsQuery", "traceQuery") if query.get(k)]
            if len(sources) != 1:
                problems.append(f"{where}.xyChart.dataSets[{i}].timeSeriesQuery: exactly one query is required.")
            ts_filter = query.get("timeSeriesFilter")
            if ts_filter is not None and "metric.type" not in (ts_filter.get("filter") or ""):
                problems.append(f"{where}.xyChart.dataSets[{i}]: the filter must name a metric.type.")
    return problems


def _stored(dashboard_id: str, body: dict) -> dict:
    out = copy.deepcopy(body)
    out["name"] = _name(dashboard_id)
    out["etag"] = secrets.token_hex(16)
    return out


def _validate(body: dict) -> None:
    problems = check_dashboard(body)
    if problems:
        raise invalid(" ".join(problems))


def _body_id(call: Call, body: dict) -> str | None:
    """The id a body's name asks for (projects/<project>/dashboards/<id>), or None; 400 when malformed."""
    name = body.get("name")
    if not name:
        return None
    m = re.fullmatch(r"projects/([^/]+)/dashboards/([^/]+)", name)
    if not m or not ID.match(m.group(2)):
        raise invalid(f"Field name had an invalid value of \"{name}\": expected projects/<project>/dashboards/<id> "
                      "with an id of letters, digits, '-' and '_'.")
    if m.group(1) not in (PROJECT, PROJECT_NUMBER, call.params.get("projectsId")):
        raise invalid(f"Field name had an invalid value of \"{name}\": its project is not the parent's.")
    return m.group(2)


@handler("monitoring.projects.dashboards.create")
def create(call: Call):
    _project(call, "monitoring.dashboards.create")
    body = dict(call.body or {})
    if body.get("etag"):
        raise invalid("Field etag must not be set when creating a dashboard.")
    dashboard_id = _body_id(call, body) or secrets.token_hex(8)
    _validate(body)
    if dashboard_id in call.world.dashboards:
        raise GoogleError(409, f"Requested entity already exists: dashboard {_name(dashboard_id)}",
                          reason="alreadyExists")
    stored = _stored(dashboard_id, body)
    if not call.query.get("validateOnly"):
        call.world.dashboards[dashboard_id] = stored
    return copy.deepcopy(stored)


@handler("monitoring.projects.dashboards.get")
def get(call: Call):
    return copy.deepcopy(_existing(call, "monitoring.dashboards.get")[1])


@handler("monitoring.projects.dashboards.list")
def list_dashboards(call: Call):
    _project(call, "monitoring.dashboards.list")
    items = [copy.deepcopy(d) for _, d in sorted(call.world.dashboards.items())]
    size = int(call.query.get("pageSize") or 1000)
    if size <= 0 or size > 1000:
        size = 1000
    start = int(call.query.get("pageToken") or 0) if str(call.query.get("pageToken") or "0").isdigit() else None
    if start is None:
        raise invalid(f"Field page_token had an invalid value of \"{call.query.get('pageToken')}\".")
    page = items[start:start + size]
    out = {"dashboards": page}
    if start + size < len(items):
        out["nextPageToken"] = str(start + size)
    return out


@handler("monitoring.projects.dashboards.patch")
def patch(call: Call):
    dashboard_id, current = _existing(call, "monitoring.dashboards.update")
    body = dict(call.body or {})
    asked = _body_id(call, body)
    if asked is not None and asked != dashboard_id:
        raise invalid(f"Field name had an invalid value of \"{body['name']}\": it is not the dashboard of the URL.")
    if body.get("etag") and body["etag"] != current["etag"]:
        raise GoogleError(409, f"Etag mismatch: dashboard {_name(dashboard_id)} was changed since etag "
                               f"{body['etag']} was read (current etag {current['etag']}).", status="ABORTED",
                          reason="aborted")
    _validate(body)
    stored = _stored(dashboard_id, body)
    if not call.query.get("validateOnly"):
        call.world.dashboards[dashboard_id] = stored
    return copy.deepcopy(stored)


@handler("monitoring.projects.dashboards.delete")
def delete(call: Call):
    dashboard_id, _ = _existing(call, "monitoring.dashboards.delete")
    del call.world.dashboards[dashboard_id]
    return {}
