# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The k8s_converge action: runs on the controller, no module process (documentation: plugins/modules/k8s_converge.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._k8s_converge import (
    ConvergeError,
    Converger,
    rendered_step,
    slim,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._render import (
    RenderError,
    dump_yaml,
    numbered_path,
    write_text,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._kube_http import (
    KubeConnectionError,
    open_client,
)
from ansible_collections.gke_ai.inference_gateway.plugins.plugin_utils._k8s_connection import connection_options

display = Display()

CONNECTION_SPEC = dict(
    kubeconfig=dict(type="raw", no_log=True),
    context=dict(type="str"),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
    validate_certs=dict(type="bool", aliases=["verify_ssl"]),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"]),
    client_cert=dict(type="path", aliases=["cert_file"]),
    client_key=dict(type="path", aliases=["key_file"]),
    proxy=dict(type="str"),
    no_proxy=dict(type="str"),
    proxy_headers=dict(type="dict"),
    persist_config=dict(type="bool"),
    impersonate_user=dict(type="str"),
    impersonate_groups=dict(type="list", elements="str"),
)
ARGUMENT_SPEC = dict(
    objects=dict(type="list", elements="raw", default=[]),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    field_manager=dict(type="str", required=True),
    namespace=dict(type="str"),
    applyset=dict(type="str"),
    prune=dict(type="bool", default=True),
    take_ownership_from=dict(type="list", elements="str", default=[]),
    adopt_from=dict(type="list", elements="str", default=[]),
    keep_newer=dict(type="dict", options=dict(annotation=dict(type="str", required=True),
                                              version=dict(type="str", required=True))),
    only_existing=dict(type="bool", default=False),
    autoscaler_selector=dict(type="str"),
    select=dict(type="list", elements="dict", default=[]),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=300),
    wait_sleep=dict(type="float", default=2),
    wait_titles=dict(type="dict", default={}),
    delete_timeout=dict(type="int", default=300),
    render_dir=dict(type="path"),
    **CONNECTION_SPEC
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _validated, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            required_if=[("state", "absent", ("applyset", "namespace"))],
            required_by={"applyset": ("namespace",)},
        )
        # Ansible hands plugins tagged and lazy containers: plain JSON values from here on.
        objects = [obj for obj in json.loads(json.dumps(args["objects"], default=str)) if obj]
        for obj in objects:
            if not isinstance(obj, dict) or not obj.get("apiVersion") or not obj.get("kind") \
                    or not (obj.get("metadata") or {}).get("name"):
                raise AnsibleActionFail("objects: every object needs apiVersion, kind and metadata.name, got %s"
                                        % _describe(obj))
        if args["render_dir"]:
            return self._render(result, objects, args)
        try:
            own = {name: args[name] for name in CONNECTION_SPEC if args.get(name) is not None}
            client = open_client(connection_options(self, ("kubernetes.core.k8s",), own))
        except KubeConnectionError as error:
            raise AnsibleActionFail(to_native(error))
        converger = Converger(client, args["field_manager"], args["namespace"], check_mode=self._task.check_mode,
                              diff=self._task.diff, log=self._progress)
        items, selected = [], []
        try:
            if args["state"] == "absent":
                converger.remove(args["applyset"], args["delete_timeout"])
            else:
                items, selected = converger.run(
                    objects, applyset=args["applyset"], prune=args["prune"],
                    take_ownership_from=args["take_ownership_from"], only_existing=args["only_existing"],
                    autoscaler_selector=args["autoscaler_selector"], adopt_from=args["adopt_from"],
                    keep_newer=args["keep_newer"],
                    select=json.loads(json.dumps(args["select"], default=str)))
                if args["wait"] and not self._task.check_mode:
                    converger.wait(items, args["wait_timeout"], args["wait_sleep"], args["wait_titles"])
        except ConvergeError as error:
            result.update(failed=True, msg=to_native(error), changed=converger.changed, **converger.report)
            return result
        finally:
            client.close()
        result.update(converger.report)
        result.update(
            changed=converger.changed,
            msg=_summary(converger.report, self._task.check_mode),
            objects=[slim(item.current) for item in items if item.current],
            selected=[[slim(obj) for obj in found] for found in selected],
        )
        if self._task.diff and converger.diffs:
            result["diff"] = converger.diffs
        return result

    def _render(self, result, objects, args):
        """Render mode: the step's objects, as it would apply them to an empty cluster, into one numbered YAML
        file of ``render_dir``; no connection, no wait. Empty steps write nothing."""
        if args["state"] == "absent":
            raise AnsibleActionFail("render_dir: render mode writes what a step applies; state=absent has nothing"
                                    " to render")
        report = Converger(None, args["field_manager"], args["namespace"]).report
        result.update(report, changed=False, objects=[], selected=[[] for _query in args["select"]], rendered=None)
        try:
            ordered = rendered_step(objects, args["namespace"], args["applyset"])
            if not ordered:
                result["msg"] = "nothing to render"
                return result
            path = numbered_path(args["render_dir"], self._step_name(args, ordered), ".yaml")
            write_text(path, dump_yaml(ordered), private=any(obj["kind"] == "Secret" for obj in ordered))
        except (ConvergeError, RenderError) as error:
            raise AnsibleActionFail(to_native(error))
        result.update(rendered=path, objects=[slim(obj) for obj in ordered],
                      msg="rendered %d object(s) to %s (apply with field manager %s)"
                          % (len(ordered), path, args["field_manager"]))
        return result

    def _step_name(self, args, objects):
        if args["applyset"]:
            return args["applyset"]
        role = self._task._role.get_name(include_role_fqcn=False) if self._task._role else "k8s"
        return "%s-%s" % (role, objects[-1]["kind"])

    @staticmethod
    def _progress(text):
        display.display("k8s_converge: %s" % text, stderr=True)  # stdout may be a machine-read callback


def _describe(obj):
    if not isinstance(obj, dict):
        return type(obj).__name__
    return "%s %s" % (obj.get("kind") or "(no kind)", (obj.get("metadata") or {}).get("name") or "(no name)")


_VERBS = (("created", "created", "would create"), ("updated", "changed", "would change"),
          ("pruned", "deleted", "would delete"), ("released", "deleted", "would delete"),
          ("handed_over", "handed over", "would hand over"), ("taken_over", "took over", "would take over"),
          ("adopted", "adopted", "would adopt"))


def _summary(report, check_mode):
    """One line of what the step did (or would do)."""
    parts = ["%s %s" % (would if check_mode else did, ", ".join(report[key]))
             for key, did, would in _VERBS if report[key]] or ["nothing to change"]
    if report.get("kept"):
        parts.append("kept " + ", ".join(report["kept"]))
    return "; ".join(parts)
