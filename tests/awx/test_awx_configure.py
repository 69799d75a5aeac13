"""playbooks/awx_configure.yml against the AWX fake: creates every object, then changes nothing; AWX's refusals of a
broken survey or credential type surface with a message naming the field; job templates point at playbooks AWX
would list for this repository; every survey variable is an option of a role argument spec."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from awx_testlib import REPO, Awx, FakeAWX, ansible_playbook
from awx_fake.validators import project_playbooks

EXPECTED = {
    "credential_types": {"Kubeconfig file", "Hugging Face token"},
    "credentials": {"GKE AI | GCP service account", "GKE AI | cluster", "GKE AI | Hugging Face"},
    "execution_environments": {"GKE AI | execution environment"},
    "projects": {"GKE AI | inference gateway"},
    "inventories": {"GKE AI | controller"},
    "hosts": {"localhost"},
    "job_templates": {"GKE AI | deploy", "GKE AI | status", "GKE AI | scale down", "GKE AI | teardown"},
}
WRITES = ("POST", "PATCH", "PUT", "DELETE")


def _argument_spec_options() -> dict:
    """Every option of every role's argument specs (any entry point): name -> its spec."""
    options = {}
    for path in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        for entry in (yaml.safe_load(path.read_text())["argument_specs"] or {}).values():
            for name, spec in (entry.get("options") or {}).items():
                options[name] = spec
    return options


@dataclasses.dataclass
class Configured:
    awx: Awx
    first: object
    second: object
    state_after_first: dict
    writes_by_second: list


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    """One fake AWX configured twice by playbooks/awx_configure.yml; shared by this module's tests."""
    fake = FakeAWX(str(REPO)).start()
    try:
        awx = Awx(fake, tmp_path_factory.mktemp("awx"))
        first = awx.configure()
        assert first.rc == 0, first.failure()
        state = awx.state()
        before = len(awx.requests())
        second = awx.configure()
        writes = [r for r in awx.requests()[before:] if r["method"] in WRITES]
        yield Configured(awx, first, second, state, writes)
    finally:
        fake.stop()


def test_first_run_creates_every_object_second_run_changes_nothing(configured):
    for resource, names in EXPECTED.items():
        have = {o["name"] for o in configured.state_after_first["objects"][resource]}
        assert names <= have, (resource, names - have)
    assert configured.first.stats["changed"] == 7, configured.first.changed_tasks()
    assert configured.second.rc == 0, configured.second.failure()
    assert configured.second.stats["changed"] == 0, configured.second.changed_tasks()
    assert not configured.writes_by_second, "the second run wrote to AWX: %s" % configured.writes_by_second


def test_objects_are_configured_as_documented(configured):
    state = configured.awx.state()
    objects = {r: {o["name"]: o for o in objs} for r, objs in state["objects"].items()}
    by_id = {r: {o["id"]: o for o in objs} for r, objs in state["objects"].items()}

    kubeconfig = objects["credential_types"]["Kubeconfig file"]
    assert kubeconfig["kind"] == "cloud"
    assert kubeconfig["injectors"] == {  # reached AWX untemplated
        "file": {"template.kubeconfig": "{{ kubeconfig }}"},
        "env": {"K8S_AUTH_KUBECONFIG": "{{ tower.filename.kubeconfig }}", "KUBECONFIG": "{{ tower.filename.kubeconfig }}"},
    }
    assert objects["credential_types"]["Hugging Face token"]["injectors"] == {"env": {"HF_TOKEN": "{{ hf_token }}"}}

    gcp = objects["credentials"]["GKE AI | GCP service account"]
    assert by_id["credential_types"][gcp["credential_type"]]["name"] == "Google Compute Engine"
    assert gcp["inputs"]["username"] == "deployer@my-project.iam.gserviceaccount.com"
    assert gcp["inputs"]["project"] == "my-project"

    project = objects["projects"]["GKE AI | inference gateway"]
    assert project["scm_type"] == "git" and project["scm_url"].endswith("inference_gateway.git")
    assert by_id["execution_environments"][project["default_environment"]]["image"] == "registry.example.com/gke-ai-ee:0.1.0"

    host = objects["hosts"]["localhost"]
    assert json.loads(host["variables"]) == {"ansible_connection": "local",
                                             "ansible_python_interpreter": "{{ ansible_playbook_python }}"}

    for name in EXPECTED["job_templates"]:
        jt = objects["job_templates"][name]
        assert jt["use_fact_cache"] is False, name  # ansible-core 2.19 on AWX 24.6.1
        assert jt["ask_variables_on_launch"] is False and jt["survey_enabled"] is True, name
        assert jt["allow_simultaneous"] is False, name
        assert by_id["execution_environments"][jt["execution_environment"]]["name"] == "GKE AI | execution environment"
        creds = {by_id["credentials"][i]["name"] for i in state["associations"]["job_templates/%d/credentials" % jt["id"]]}
        assert {"GKE AI | GCP service account", "GKE AI | cluster"} <= creds, name
        assert ("GKE AI | Hugging Face" in creds) == (name == "GKE AI | deploy"), name
    assert objects["job_templates"]["GKE AI | deploy"]["ask_tags_on_launch"] is True
    assert objects["job_templates"]["GKE AI | deploy"]["playbook"] == "playbooks/site.yml"


def test_job_templates_point_at_playbooks_awx_lists_for_this_repository(configured):
    awx = configured.awx
    project = awx.objects("projects")["GKE AI | inference gateway"]
    listed = project_playbooks(str(REPO))  # what AWX would list after a project sync of this checkout
    assert not [p for p in listed if p.startswith(("collections/", "playbooks/collections/"))], "followed the links"
    for jt in awx.objects("job_templates").values():
        assert jt["project"] == project["id"]
        assert jt["playbook"] in listed, jt["playbook"]
        assert (REPO / jt["playbook"]).is_file()


def test_every_survey_variable_is_a_role_argument_with_a_matching_type(configured):
    options = _argument_spec_options()
    specs = configured.awx.state()["survey_specs"]
    assert len(specs) == len(EXPECTED["job_templates"])
    seen = set()
    for spec in specs.values():
        for question in spec["spec"]:
            var = question["variable"]
            seen.add(var)
            assert var in options, "survey variable %s is in no roles/*/meta/argument_specs.yml" % var
            arg = options[var]
            if question["type"] == "integer":
                assert arg["type"] == "int", var
            elif question["type"] == "multiselect":
                assert arg["type"] == "list" and arg.get("elements") == "str", var
                assert not question.get("required"), var  # blank = every model
            elif question["type"] == "multiplechoice" and set(question["choices"]) <= {"true", "false"}:
                assert arg["type"] == "bool", var
            else:
                assert arg.get("type", "str") == "str", var
                if "choices" in arg:
                    assert set(question["choices"]) <= set(arg["choices"]), var
            if not question["required"]:
                assert "default" not in question, "%s: optional questions send nothing when left blank" % var
    assert {"infgw_select_models", "infgw_replicas", "infgw_gateway_class", "infgw_cloud_armor_enabled",
            "infgw_profile"} <= seen


BROKEN_SURVEYS = [
    # (id, change to awx_gke_ai_questions, text AWX's refusal contains)
    ("required-not-boolean", {"replicas": {"required": "no"}}, "'required' in survey question 3 expected to be boolean."),
    ("choices-missing", {"gateway_class": {"choices": None}}, "Survey question 5 of type multiplechoice must specify choices."),
    ("duplicate-variable", {"profile": {"variable": "infgw_namespace"}}, "'variable' 'infgw_namespace' duplicated in survey question 1."),
    ("integer-default-not-integer", {"replicas": {"default": "two"}}, "Default value two in survey question 3 expected to be integer."),
    ("default-not-a-choice", {"profile": {"default": "v9.9.9"}}, "Default choice must be answered from the choices listed."),
    ("unknown-type", {"namespace": {"type": "string"}}, "'string' in survey question 0 is not one of"),
]


@pytest.mark.parametrize("change, expected", [pytest.param(c, e, id=i) for i, c, e in BROKEN_SURVEYS])
def test_broken_survey_spec_fails_naming_the_field(configured, tmp_path, change, expected):
    """On the configured AWX, the job templates again with one question broken: AWX refuses, nothing changes."""
    awx = configured.awx
    specs_before = awx.state()["survey_specs"]
    questions = yaml.safe_load((REPO / "playbooks/awx/vars/questions.yml").read_text())["awx_gke_ai_questions"]
    for key, fields in change.items():
        for field, value in fields.items():
            if value is None:
                questions[key].pop(field)
            else:
                questions[key][field] = value
    # The questions file templates its defaults; keep them untemplated strings for the extra vars file.
    extra = tmp_path / "questions.yml"
    extra.write_text(yaml.safe_dump({"awx_gke_ai_questions": questions}))
    run = awx.configure("--tags", "job_templates", extra_files=[extra])
    assert run.rc != 0
    message = run.failure()
    assert "Failed to update survey: " + expected in message, message
    assert awx.state()["survey_specs"] == specs_before


BROKEN_INJECTORS = [
    ("undefined-input", """
- name: Hugging Face token
  description: broken
  kind: cloud
  inputs: {fields: [{id: hf_token, label: Token, type: string, secret: true}], required: [hf_token]}
  injectors: {env: {HF_TOKEN: !unsafe '{{ hf_tokn }}'}}
""", "HF_TOKEN uses an undefined field ('hf_tokn' is undefined)"),
    ("env-name-invalid", """
- name: Hugging Face token
  description: broken
  kind: cloud
  inputs: {fields: [{id: hf_token, label: Token, type: string, secret: true}]}
  injectors: {env: {HF-TOKEN: !unsafe '{{ hf_token }}'}}
""", "'HF-TOKEN' does not match any of the regexes"),
    ("env-ansible-prefix", """
- name: Hugging Face token
  description: broken
  kind: cloud
  inputs: {fields: [{id: hf_token, label: Token, type: string, secret: true}]}
  injectors: {env: {ANSIBLE_HF_TOKEN: !unsafe '{{ hf_token }}'}}
""", "Environment variable ANSIBLE_HF_TOKEN may affect Ansible configuration"),
    ("input-id-invalid", """
- name: Hugging Face token
  description: broken
  kind: cloud
  inputs: {fields: [{id: hf-token, label: Token, type: string, secret: true}]}
  injectors: {env: {HF_TOKEN: !unsafe '{{ hf_token }}'}}
""", "hf-token is an invalid variable name"),
    ("file-without-file-injector", """
- name: Kubeconfig file
  description: broken
  kind: cloud
  inputs: {fields: [{id: kubeconfig, label: Kubeconfig, type: string, secret: true}]}
  injectors: {env: {KUBECONFIG: !unsafe '{{ tower.filename.kubeconfig }}'}}
""", "KUBECONFIG uses an undefined field ('awx.main.fields.ExplodingNamespace object' has no attribute 'kubeconfig')"),
    ("secret-on-boolean", """
- name: Kubeconfig file
  description: broken
  kind: cloud
  inputs: {fields: [{id: insecure, label: Insecure, type: boolean, secret: true}]}
  injectors: {}
""", "secret not allowed for boolean type (insecure)"),
    ("kind-not-custom", """
- name: Kubeconfig file
  description: broken
  kind: ssh
  inputs: {fields: [{id: kubeconfig, label: Kubeconfig, type: string}]}
  injectors: {}
""", "'kind': [\"Must be 'cloud' or 'net', not ssh\"]"),
]


@pytest.mark.parametrize("types, expected", [pytest.param(t, e, id=i) for i, t, e in BROKEN_INJECTORS])
def test_broken_credential_type_fails_naming_the_field(awx, types, expected):
    extra = awx.tmp_path / "types.yml"
    extra.write_text("awx_gke_ai_credential_types:\n" + types.replace("\n", "\n  "))
    run = awx.configure("--tags", "credential_types", extra_files=[extra], secrets=False)
    assert run.rc != 0
    message = run.failure()
    assert "Unable to create credential type" in message and expected in message, message
    assert not [t for t in awx.objects("credential_types").values() if t["description"] == "broken"]
    assert not awx.objects("job_templates")


def test_basic_auth_as_the_modules_send_it(awx):
    """With a username and password, awx.awx 24.6.1 gets a token (POST /api/v2/tokens/, Basic) and deletes it."""
    basic = {"CONTROLLER_OAUTH_TOKEN": "", "CONTROLLER_USERNAME": "admin", "CONTROLLER_PASSWORD": "password"}
    run = awx.configure("--tags", "credential_types", env=basic)
    assert run.rc == 0, run.failure()
    assert run.stats["changed"] == 1
    tokens = [r for r in awx.requests() if r["path"].startswith("/api/v2/tokens/")]
    assert tokens and {r["method"] for r in tokens} == {"POST", "DELETE"}
    bad = awx.configure("--tags", "credential_types", env=dict(basic, CONTROLLER_PASSWORD="wrong"))
    assert bad.rc != 0 and "Failed to get token" in bad.failure(), bad.failure()


def test_missing_settings_fail_before_any_api_call(awx):
    run = ansible_playbook(REPO / "playbooks" / "awx_configure.yml", env=awx.env)
    assert run.rc != 0 and "Set awx_gke_ai_scm_url" in run.failure()
    assert not [r for r in awx.requests() if r["path"].startswith("/api/")]
