#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: loadtest_report
short_description: Turn load test runs into a JSON report, a self-contained HTML report and a text summary
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Reads the runs M(gke_ai.inference_gateway.loadtest_run) wrote and writes O(output_dir)/C(report.json) (every
    run, and the A/B comparison) and O(output_dir)/C(report.html).
  - The HTML page is self-contained (inline SVG, no script, nothing loaded from the network), so it can be
    archived or attached as it is. It shows the runs, the A/B comparison side by side (a table and the B/A ratio
    of each latency), a table per QPS stage, latency percentiles (end-to-end, and time to first token and
    inter-token latency where streamed) and throughput against QPS, the requests per second by outcome (HTTP
    status or error) over time for each run, and the model server replicas and the pool's KV-cache use over time.
  - Every number on the page carries its JSON path (C(data-key)) and value (C(data-value)).
options:
  runs:
    description: The run files (O(output_dir) of loadtest_run plus C(<name>.json)), in the order to show them.
    type: list
    elements: path
    required: true
  output_dir:
    description: Where C(report.json) and C(report.html) are written.
    type: path
    required: true
  title:
    description: The report's title.
    type: str
    default: Load test
  ab:
    description: Two run names to compare, A (typically the InferencePool route) and B (the model Service).
    type: dict
    suboptions:
      a:
        description: The run A.
        type: str
        required: true
      b:
        description: The run B.
        type: str
        required: true
extends_documentation_fragment:
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.local_files
seealso:
  - module: gke_ai.inference_gateway.loadtest_run
"""

EXAMPLES = r"""
- name: Report the pool and Service runs side by side
  gke_ai.inference_gateway.loadtest_report:
    runs: [/tmp/loadtest/pool.json, /tmp/loadtest/service.json]
    output_dir: /tmp/loadtest
    title: gemma-3-1b, walkthrough workload
    ab: {a: pool, b: service}
  register: report

- name: Show the summary
  ansible.builtin.debug:
    msg: "{{ report.summary }}"
"""

RETURN = r"""
summary:
  description: A few lines for the playbook's output (per run and stage, and the A/B comparison).
  returned: always
  type: list
  elements: str
json:
  description: Path of report.json.
  returned: always
  type: str
html:
  description: Path of report.html.
  returned: always
  type: str
comparison:
  description: The A/B rows (stage, metric, a, b, b_over_a), when O(ab) is given.
  returned: when ab is given
  type: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _loadtest_report as report_lib


def load_runs(paths):
    runs = []
    for path in paths:
        try:
            with open(path) as stream:
                runs.append(json.load(stream))
        except (OSError, ValueError) as error:
            raise report_lib.ReportError("cannot read the run %s: %s" % (path, error))
    return runs


def main():
    module = AnsibleModule(argument_spec=dict(
        runs=dict(type="list", elements="path", required=True),
        output_dir=dict(type="path", required=True),
        title=dict(type="str", default="Load test"),
        ab=dict(type="dict", options=dict(a=dict(type="str", required=True), b=dict(type="str", required=True))),
    ), supports_check_mode=True)
    params = module.params
    paths = {"json": os.path.join(params["output_dir"], "report.json"),
             "html": os.path.join(params["output_dir"], "report.html")}
    try:
        if module.check_mode:
            missing = [p for p in params["runs"] if not os.path.isfile(p)]
            module.exit_json(changed=True, summary=["would report %d runs (%s)" % (
                len(params["runs"]), "not yet written: %s" % ", ".join(missing) if missing else "all present")],
                **paths)
        ab = (params["ab"]["a"], params["ab"]["b"]) if params["ab"] else None
        report = report_lib.build_report(load_runs(params["runs"]), title=params["title"], ab=ab)
        page = report_lib.render_html(report)
    except report_lib.ReportError as error:
        module.fail_json(msg=str(error))
    os.makedirs(params["output_dir"], exist_ok=True)
    with open(paths["json"], "w") as stream:
        json.dump(report, stream, indent=1, sort_keys=True)
    with open(paths["html"], "w") as stream:
        stream.write(page)
    result = dict(changed=True, summary=report_lib.text_summary(report) + ["report: %s" % paths["html"]], **paths)
    if report["comparison"]:
        result["comparison"] = report["comparison"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
