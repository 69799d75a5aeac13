"""A small stateful fake of AWX 24.6.1's /api/v2, for the awx.awx modules playbooks/awx_configure.yml uses.

Not AWX: it stores objects in memory and answers exactly what awx.awx 24.6.1's controller_api module_utils and the
organization, credential_type, credential, execution_environment, project, inventory, host and job_template modules
call (lookups by name, POST, PATCH, associations, survey_spec, a project's playbooks). It is strict where AWX is:

* survey specs, credential type inputs and injectors, credential inputs (validators.py, AWX's rules and messages);
* a job template's playbook must be one AWX would list for the project (the checkout given as project_dir);
* one credential per credential type on a job template, and only kinds AWX allows there;
* foreign keys must exist, names are unique per organization (per inventory for hosts);

and stricter where AWX (Django REST framework) is lenient: a top-level field AWX does not have is a 400 naming the
field, where AWX would silently drop it, so that a typo in the playbook fails the tests instead of passing unseen.

Authentication: `Authorization: Bearer <token>` (awx.awx's controller_oauthtoken), or HTTP Basic with the configured
user, as the modules send it for POST /api/v2/tokens/ when given a username and password. Every response carries
X-API-Product-Name: AWX and X-API-Product-Version: 24.6.1, which the modules check.

Test helpers outside /api: GET /_fake/state (every object), GET /_fake/requests (the request log), POST /_fake/reset.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import validators

VERSION = '24.6.1'
CREATED = '2026-01-01T00:00:00.000000Z'

ASK_FIELDS = (
    'ask_scm_branch_on_launch', 'ask_diff_mode_on_launch', 'ask_variables_on_launch', 'ask_limit_on_launch',
    'ask_tags_on_launch', 'ask_skip_tags_on_launch', 'ask_job_type_on_launch', 'ask_verbosity_on_launch',
    'ask_inventory_on_launch', 'ask_credential_on_launch', 'ask_execution_environment_on_launch',
    'ask_forks_on_launch', 'ask_instance_groups_on_launch', 'ask_job_slice_count_on_launch',
    'ask_labels_on_launch', 'ask_timeout_on_launch',
)

# Per resource: the object's type, its writable fields with AWX's defaults, foreign keys, fields AWX accepts but
# ignores (read-only) or never returns (write-only), required fields and what makes a name unique.
RESOURCES = {
    'organizations': dict(
        type='organization',
        fields={'name': None, 'description': '', 'max_hosts': 0, 'custom_virtualenv': None, 'default_environment': None},
        fks={'default_environment': 'execution_environments'}, required=('name',), unique=('name',)),
    'credential_types': dict(
        type='credential_type',
        fields={'name': None, 'description': '', 'kind': None, 'inputs': {}, 'injectors': {}},
        read_only={'managed': False, 'namespace': None}, required=('name', 'kind'), unique=('name', 'kind')),
    'credentials': dict(
        type='credential',
        fields={'name': None, 'description': '', 'organization': None, 'credential_type': None, 'inputs': {}},
        fks={'organization': 'organizations', 'credential_type': 'credential_types'},
        write_only=('user', 'team'), required=('name', 'credential_type'), unique=('name', 'organization', 'credential_type')),
    'execution_environments': dict(
        type='execution_environment',
        fields={'name': None, 'description': '', 'organization': None, 'image': None, 'credential': None, 'pull': ''},
        fks={'organization': 'organizations', 'credential': 'credentials'}, read_only={'managed': False},
        required=('name', 'image'), unique=('name',), choices={'pull': ('', 'always', 'missing', 'never')}),
    'projects': dict(
        type='project',
        fields={'name': None, 'description': '', 'local_path': '', 'scm_type': '', 'scm_url': '', 'scm_branch': '',
                'scm_refspec': '', 'scm_clean': False, 'scm_track_submodules': False, 'scm_delete_on_update': False,
                'credential': None, 'timeout': 0, 'organization': None, 'scm_update_on_launch': False,
                'scm_update_cache_timeout': 0, 'allow_override': False, 'custom_virtualenv': None,
                'default_environment': None, 'signature_validation_credential': None},
        fks={'credential': 'credentials', 'organization': 'organizations', 'default_environment': 'execution_environments',
             'signature_validation_credential': 'credentials'},
        read_only={'scm_revision': ''}, required=('name',), unique=('name', 'organization'),
        choices={'scm_type': ('', 'git', 'svn', 'insights', 'archive')}),
    'inventories': dict(
        type='inventory',
        fields={'name': None, 'description': '', 'organization': None, 'kind': '', 'host_filter': None, 'variables': '',
                'prevent_instance_group_fallback': False},
        fks={'organization': 'organizations'}, required=('name', 'organization'), unique=('name', 'organization'),
        choices={'kind': ('', 'smart', 'constructed')}),
    'hosts': dict(
        type='host',
        fields={'name': None, 'description': '', 'inventory': None, 'enabled': True, 'instance_id': '', 'variables': ''},
        fks={'inventory': 'inventories'}, required=('name', 'inventory'), unique=('name', 'inventory')),
    'job_templates': dict(
        type='job_template',
        fields=dict({
            'name': None, 'description': '', 'job_type': 'run', 'inventory': None, 'project': None, 'playbook': '',
            'scm_branch': '', 'forks': 0, 'limit': '', 'verbosity': 0, 'extra_vars': '', 'job_tags': '',
            'force_handlers': False, 'skip_tags': '', 'start_at_task': '', 'timeout': 0, 'use_fact_cache': False,
            'organization': None, 'execution_environment': None, 'host_config_key': '', 'survey_enabled': False,
            'become_enabled': False, 'diff_mode': False, 'allow_simultaneous': False, 'custom_virtualenv': None,
            'job_slice_count': 1, 'webhook_service': '', 'webhook_credential': None,
            'prevent_instance_group_fallback': False,
        }, **{field: False for field in ASK_FIELDS}),
        fks={'inventory': 'inventories', 'project': 'projects', 'organization': 'organizations',
             'execution_environment': 'execution_environments', 'webhook_credential': 'credentials'},
        required=('name', 'playbook'), unique=('name', 'organization'),
        choices={'job_type': ('run', 'check'), 'verbosity': (0, 1, 2, 3, 4, 5), 'webhook_service': ('', 'github', 'gitlab')}),
}

# Sub-lists of associated objects: parent resource -> {relation: resource of the members}.
ASSOCIATIONS = {
    'job_templates': {'credentials': 'credentials', 'labels': 'labels', 'instance_groups': 'instance_groups'},
    'inventories': {'instance_groups': 'instance_groups'},
}

BOOL_FIELDS = {'scm_clean', 'scm_track_submodules', 'scm_delete_on_update', 'scm_update_on_launch', 'allow_override',
               'prevent_instance_group_fallback', 'enabled', 'force_handlers', 'use_fact_cache', 'survey_enabled',
               'become_enabled', 'diff_mode', 'allow_simultaneous', *ASK_FIELDS}
INT_FIELDS = {'max_hosts', 'timeout', 'scm_update_cache_timeout', 'forks', 'verbosity', 'job_slice_count'}
JSON_FIELDS = {'inputs', 'injectors'}


def _managed_types():
    """The built-in credential types the collection's job templates use (AWX 24.6.1 definitions, trimmed to inputs)."""
    return [
        dict(name='Google Compute Engine', kind='cloud', namespace='gce', managed=True, inputs={
            'fields': [
                {'id': 'username', 'label': 'Service Account Email Address', 'type': 'string'},
                {'id': 'project', 'label': 'Project', 'type': 'string'},
                {'id': 'ssh_key_data', 'label': 'RSA Private Key', 'type': 'string', 'format': 'ssh_private_key',
                 'secret': True, 'multiline': True},
            ],
            'required': ['username', 'ssh_key_data'],
        }),
        dict(name='OpenShift or Kubernetes API Bearer Token', kind='kubernetes', namespace='kubernetes_bearer_token',
             managed=True, inputs={
                 'fields': [
                     {'id': 'host', 'label': 'OpenShift or Kubernetes API Endpoint', 'type': 'string'},
                     {'id': 'bearer_token', 'label': 'API authentication bearer token', 'type': 'string', 'secret': True},
                     {'id': 'verify_ssl', 'label': 'Verify SSL', 'type': 'boolean', 'default': True},
                     {'id': 'ssl_ca_cert', 'label': 'Certificate Authority data', 'type': 'string', 'secret': True,
                      'multiline': True},
                 ],
                 'required': ['host', 'bearer_token'],
             }),
        dict(name='Source Control', kind='scm', namespace='scm', managed=True, inputs={
            'fields': [
                {'id': 'username', 'label': 'Username', 'type': 'string'},
                {'id': 'password', 'label': 'Password', 'type': 'string', 'secret': True},
                {'id': 'ssh_key_data', 'label': 'SCM Private Key', 'type': 'string', 'format': 'ssh_private_key',
                 'secret': True, 'multiline': True},
            ],
        }),
        dict(name='Container Registry', kind='registry', namespace='registry', managed=True, inputs={
            'fields': [
                {'id': 'host', 'label': 'Authentication URL', 'type': 'string'},
                {'id': 'username', 'label': 'Username', 'type': 'string'},
                {'id': 'password', 'label': 'Password or Token', 'type': 'string', 'secret': True},
                {'id': 'verify_ssl', 'label': 'Verify SSL', 'type': 'boolean', 'default': True},
            ],
            'required': ['host'],
        }),
        dict(name='Machine', kind='ssh', namespace='ssh', managed=True, inputs={
            'fields': [
                {'id': 'username', 'label': 'Username', 'type': 'string'},
                {'id': 'password', 'label': 'Password', 'type': 'string', 'secret': True},
            ],
        }),
    ]


class State:
    """Every object, by resource and id, plus associations, survey specs and issued tokens."""

    def __init__(self, project_dir, username, password, token):
        self.lock = threading.RLock()
        self.project_dir = project_dir
        self.username, self.password, self.token = username, password, token
        self.reset()

    def reset(self):
        with self.lock:
            self.objects = {name: {} for name in list(RESOURCES) + ['labels', 'instance_groups']}
            self.associations = {}
            self.survey_specs = {}
            self.tokens = {}
            self.next_id = 1
            self.requests = []
            self.add('organizations', {'name': 'Default', 'description': 'The default organization for Ansible Automation Platform'})
            self.add('instance_groups', {'name': 'default'})
            for managed in _managed_types():
                self.add('credential_types', dict(managed, description='', injectors={}))

    def add(self, resource, data):
        obj_id = self.next_id
        self.next_id += 1
        spec = RESOURCES.get(resource, {'type': resource.rstrip('s'), 'fields': {'name': None}})
        obj = {'id': obj_id, 'type': spec['type'], 'created': CREATED, 'modified': CREATED}
        obj.update(copy.deepcopy(spec['fields']))
        obj.update(copy.deepcopy(spec.get('read_only', {})))
        obj.update(data)
        self.objects[resource][obj_id] = obj
        return obj

    def url(self, resource, obj_id):
        return '/api/v2/{0}/{1}/'.format(resource, obj_id)

    def render(self, resource, obj):
        """The object as the API shows it: related links, secrets masked, write-only fields dropped."""
        out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in RESOURCES.get(resource, {}).get('write_only', ())}
        url = self.url(resource, obj['id'])
        out['url'] = url
        related = {}
        for relation in ASSOCIATIONS.get(resource, {}):
            related[relation] = url + relation + '/'
        if resource == 'job_templates':
            related.update(survey_spec=url + 'survey_spec/', launch=url + 'launch/')
        if resource == 'projects':
            related.update(playbooks=url + 'playbooks/', update=url + 'update/')
        out['related'] = related
        out['summary_fields'] = {}
        if resource == 'credentials':
            ctype = self.objects['credential_types'].get(obj['credential_type'], {})
            secret_ids = {f['id'] for f in ctype.get('inputs', {}).get('fields', []) if f.get('secret')}
            out['inputs'] = {k: (validators.ENCRYPTED if k in secret_ids and v != '' else v) for k, v in obj['inputs'].items()}
            out['kind'] = ctype.get('namespace') or ctype.get('kind')
            out['cloud'] = ctype.get('kind') == 'cloud'
        return out


class FakeAWX:
    """Run the fake on 127.0.0.1 in a background thread: `with FakeAWX(project_dir) as awx: awx.url`."""

    def __init__(self, project_dir, port=0, username='admin', password='password', token=None):
        self.state = State(project_dir, username, password, token or secrets.token_hex(16))
        self.server = ThreadingHTTPServer(('127.0.0.1', port), _handler(self.state))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name='awx-fake', daemon=True)

    @property
    def url(self):
        return 'http://127.0.0.1:{0}'.format(self.server.server_address[1])

    @property
    def token(self):
        return self.state.token

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(body)
        self.status, self.body = status, body


def _coerce(resource, field, value):
    """DRF's field parsing, for the types the modules send; raises ApiError with DRF's messages."""
    if field in BOOL_FIELDS and not isinstance(value, bool):
        raise ApiError(400, {field: ['Must be a valid boolean.']})
    if field in INT_FIELDS and (isinstance(value, bool) or not isinstance(value, int)):
        raise ApiError(400, {field: ['A valid integer is required.']})
    if field in JSON_FIELDS and not isinstance(value, dict):
        raise ApiError(400, {field: ['{0} provided, expected dict'.format(type(value).__name__)]})
    choices = RESOURCES[resource].get('choices', {}).get(field)
    if choices is not None:
        if value is None and field == 'kind':
            value = ''  # the inventory module sends kind: null when not given; AWX stores ''
        if value not in choices:
            raise ApiError(400, {field: ['"{0}" is not a valid choice.'.format(value)]})
    if field in ('variables', 'extra_vars') and value is not None and not isinstance(value, str):
        raise ApiError(400, {field: ['Not a valid string.']})
    return value


def _handler(state):
    class Handler(BaseHTTPRequestHandler):
        server_version = 'awx-fake/' + VERSION
        protocol_version = 'HTTP/1.1'

        def log_message(self, *args):  # quiet; the request log is in /_fake/requests
            pass

        # ------------------------------------------------------------------ plumbing
        def _send(self, status, body=None):
            payload = b'' if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(payload)))
            self.send_header('X-API-Product-Name', 'AWX')
            self.send_header('X-API-Product-Version', VERSION)
            self.end_headers()
            self.wfile.write(payload)
            with state.lock:
                state.requests.append({'method': self.command, 'path': self.path, 'status': status})

        def _body(self):
            length = int(self.headers.get('Content-Length') or 0)
            raw = self.rfile.read(length) if length else b''
            if not raw:
                return {}
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise ApiError(400, {'detail': 'JSON parse error - {0}'.format(exc)})

        def _authenticated(self):
            header = self.headers.get('Authorization', '')
            if header.startswith('Bearer '):
                token = header[len('Bearer '):]
                return token == state.token or token in {t['token'] for t in state.tokens.values()}
            if header.startswith('Basic '):
                try:
                    user, _, password = base64.b64decode(header[len('Basic '):]).decode().partition(':')
                except ValueError:
                    return False
                return (user, password) == (state.username, state.password)
            return False

        def do_GET(self):
            self._dispatch('GET')

        def do_POST(self):
            self._dispatch('POST')

        def do_PATCH(self):
            self._dispatch('PATCH')

        def do_PUT(self):
            self._dispatch('PUT')

        def do_DELETE(self):
            self._dispatch('DELETE')

        def _dispatch(self, method):
            parts = urlsplit(self.path)
            try:
                body = self._body() if method in ('POST', 'PATCH', 'PUT') else None
                if parts.path.startswith('/_fake/'):
                    return self._send(*self._fake(method, parts.path))
                if parts.path == '/api/v2/ping/' and method == 'GET':
                    return self._send(200, {'ha': False, 'version': VERSION, 'active_node': 'awx-fake', 'install_uuid': 'fake',
                                            'instances': [], 'instance_groups': []})
                if parts.path in ('/api/', '/api/v2/') and method == 'GET':
                    return self._send(200, {name: '/api/v2/{0}/'.format(name) for name in RESOURCES})
                if not self._authenticated():
                    return self._send(401, {'detail': 'Authentication credentials were not provided.'})
                with state.lock:
                    status, payload = self._api(method, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)), body)
                return self._send(status, payload)
            except ApiError as exc:
                return self._send(exc.status, exc.body)

        def _fake(self, method, path):
            with state.lock:
                if path == '/_fake/state' and method == 'GET':
                    return 200, {'objects': {r: list(objs.values()) for r, objs in state.objects.items()},
                                 'associations': {'{0}/{1}/{2}'.format(*k): sorted(v) for k, v in state.associations.items()},
                                 'survey_specs': {str(k): v for k, v in state.survey_specs.items()}}
                if path == '/_fake/requests' and method == 'GET':
                    return 200, list(state.requests)
                if path == '/_fake/reset' and method == 'POST':
                    state.reset()
                    return 200, {}
            return 404, {'detail': 'Not found.'}

        # ------------------------------------------------------------------ the API
        def _api(self, method, path, query, body):
            match = re.fullmatch(r'/api/v2/([a-z_]+)/(?:(\d+)/(?:([a-z_]+)/)?)?', path)
            if not match:
                return 404, {'detail': 'Not found.'}
            resource, obj_id, sub = match.group(1), match.group(2), match.group(3)
            if resource == 'me' and obj_id is None and method == 'GET':
                return 200, {'count': 1, 'next': None, 'previous': None,
                             'results': [{'id': 1, 'type': 'user', 'username': state.username, 'is_superuser': True}]}
            if resource == 'config' and obj_id is None and method == 'GET':
                return 200, {'version': VERSION, 'ansible_version': '2.19.14', 'license_info': {}}
            if resource == 'tokens':
                return self._tokens(method, obj_id)
            if resource not in state.objects:
                return 404, {'detail': 'Not found.'}
            if resource not in RESOURCES and method != 'GET':
                return 405, {'detail': 'Method "{0}" not allowed.'.format(method)}
            if obj_id is None:
                if method == 'GET':
                    return 200, self._list(resource, query)
                if method == 'POST':
                    return 201, state.render(resource, self._create(resource, body))
                return 405, {'detail': 'Method "{0}" not allowed.'.format(method)}
            obj = state.objects[resource].get(int(obj_id))
            if obj is None:
                return 404, {'detail': 'Not found.'}
            if sub is None:
                if method == 'GET':
                    return 200, state.render(resource, obj)
                if method in ('PATCH', 'PUT'):
                    return 200, state.render(resource, self._update(resource, obj, body))
                if method == 'DELETE':
                    del state.objects[resource][obj['id']]
                    return 204, None
                return 405, {'detail': 'Method "{0}" not allowed.'.format(method)}
            if resource == 'job_templates' and sub == 'survey_spec':
                return self._survey(method, obj, body)
            if resource == 'projects' and sub == 'playbooks' and method == 'GET':
                return 200, self._playbooks(obj)
            if sub in ASSOCIATIONS.get(resource, {}):
                return self._association(method, resource, obj, sub, body)
            return 404, {'detail': 'Not found.'}

        def _tokens(self, method, obj_id):
            header = self.headers.get('Authorization', '')
            if not header.startswith('Basic ') or not self._authenticated():
                return 401, {'detail': 'Invalid username/password.'}
            if method == 'POST' and obj_id is None:
                token_id = state.next_id
                state.next_id += 1
                state.tokens[token_id] = {'id': token_id, 'token': secrets.token_hex(16)}
                return 201, dict(state.tokens[token_id], type='o_auth2_access_token', scope='write')
            if method == 'DELETE' and obj_id is not None and int(obj_id) in state.tokens:
                del state.tokens[int(obj_id)]
                return 204, None
            return 404, {'detail': 'Not found.'}

        def _list(self, resource, query):
            fields = set(RESOURCES.get(resource, {}).get('fields', {'name': None})) | {'id'}
            results = list(state.objects[resource].values())
            ors = []
            for key, value in query.items():
                if key in ('page_size', 'page', 'order_by'):
                    continue
                name = key[len('or__'):] if key.startswith('or__') else key
                if name not in fields:
                    raise ApiError(400, {'detail': "Cannot resolve keyword '{0}' into field.".format(name)})
                if key.startswith('or__'):
                    ors.append((name, value))
                else:
                    results = [o for o in results if str(o.get(name)) == value]
            if ors:
                results = [o for o in results if any(str(o.get(n)) == v for n, v in ors)]
            return {'count': len(results), 'next': None, 'previous': None,
                    'results': [state.render(resource, o) for o in sorted(results, key=lambda o: o['id'])]}

        def _check_fields(self, resource, body, creating):
            spec = RESOURCES[resource]
            if not isinstance(body, dict):
                raise ApiError(400, {'detail': 'Invalid data. Expected a dictionary, but got {0}.'.format(type(body).__name__)})
            allowed = set(spec['fields']) | set(spec.get('read_only', {})) | set(spec.get('write_only', ()))
            unknown = sorted(set(body) - allowed)
            if unknown:
                # AWX (Django REST framework) would drop these silently; the fake refuses them so typos surface.
                raise ApiError(400, {field: ['Unknown field: {0} has no field {1!r} in AWX {2}.'.format(resource, field, VERSION)]
                                     for field in unknown})
            data = {}
            for field, value in body.items():
                if field in spec.get('read_only', {}) or field in spec.get('write_only', ()):
                    continue
                if field in spec.get('fks', {}):
                    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                              or value not in state.objects[spec['fks'][field]]):
                        raise ApiError(400, {field: ['Invalid pk "{0}" - object does not exist.'.format(value)]})
                else:
                    value = _coerce(resource, field, value)
                data[field] = value
            if creating:
                missing = [f for f in spec.get('required', ()) if data.get(f) in (None, '')]
                if missing:
                    raise ApiError(400, {f: ['This field is required.'] for f in missing})
            return data

        def _validate(self, resource, obj, old):
            """Cross-field checks on the object as it would be stored (AWX's serializer validate methods)."""
            spec = RESOURCES[resource]
            if obj.get('name') in (None, ''):
                raise ApiError(400, {'name': ['This field may not be blank.']})
            key = tuple(obj.get(f) for f in spec['unique'])
            for other in state.objects[resource].values():
                if other['id'] != obj.get('id') and tuple(other.get(f) for f in spec['unique']) == key:
                    label = ' and '.join(f.replace('_', ' ').capitalize() for f in spec['unique'])
                    raise ApiError(400, {'__all__': ['{0} with this {1} already exists.'.format(
                        spec['type'].replace('_', ' ').capitalize(), label)]})
            if resource == 'credential_types':
                if old is not None and old.get('managed'):
                    raise ApiError(403, {'detail': 'Modifications not allowed for managed credential types'})
                problem = validators.validate_credential_type(obj.get('kind'), obj.get('inputs'), obj.get('injectors'))
                if problem:
                    raise ApiError(400, problem)
            if resource == 'credentials':
                if obj.get('organization') is None and old is None and not (self._body_cache or {}).get('user') \
                        and not (self._body_cache or {}).get('team'):
                    raise ApiError(400, {'detail': "Missing 'user', 'team', or 'organization'."})
                ctype = state.objects['credential_types'][obj['credential_type']]
                inputs = dict(obj.get('inputs') or {})
                for k, v in list(inputs.items()):
                    if v == validators.ENCRYPTED and old is not None and k in old.get('inputs', {}):
                        inputs[k] = old['inputs'][k]  # AWX keeps the stored secret
                problem = validators.validate_credential_inputs(ctype, inputs)
                if problem:
                    raise ApiError(400, problem)
                obj['inputs'] = inputs
            if resource == 'projects' and obj.get('scm_type') and not obj.get('scm_url'):
                raise ApiError(400, {'scm_url': ['SCM URL is required.']})
            if resource == 'job_templates':
                if obj.get('project') is None:
                    raise ApiError(400, {'project': ['Job Templates must have a project assigned.']})
                if obj.get('inventory') is None and not obj.get('ask_inventory_on_launch'):
                    raise ApiError(400, {'inventory': ['Job Template must provide \'inventory\' or allow prompting for it.']})
                project = state.objects['projects'][obj['project']]
                if obj.get('playbook') not in self._playbooks(project):
                    raise ApiError(400, {'playbook': ['Playbook not found for project.']})
                obj['organization'] = project.get('organization')
                if obj.get('extra_vars'):
                    try:
                        json.loads(obj['extra_vars'])
                    except ValueError:
                        raise ApiError(400, {'extra_vars': ['Cannot parse as JSON or YAML.']})

        def _create(self, resource, body):
            self._body_cache = body
            data = self._check_fields(resource, body, creating=True)
            candidate = copy.deepcopy(RESOURCES[resource]['fields'])
            candidate.update(data)
            self._validate(resource, candidate, None)
            return state.add(resource, candidate)

        def _update(self, resource, obj, body):
            self._body_cache = body
            data = self._check_fields(resource, body, creating=False)
            candidate = copy.deepcopy(obj)
            candidate.update(data)
            self._validate(resource, candidate, obj)
            obj.clear()
            obj.update(candidate)
            return obj

        def _playbooks(self, project):
            if not project.get('scm_type') and not project.get('local_path'):
                return []
            return validators.project_playbooks(state.project_dir)

        def _survey(self, method, job_template, body):
            jt_id = job_template['id']
            if method == 'GET':
                return 200, validators.display_survey_spec(state.survey_specs.get(jt_id, {}))
            if method == 'POST':
                spec = copy.deepcopy(body)
                problem = validators.validate_survey_spec(spec, state.survey_specs.get(jt_id, {}))
                if problem:
                    return 400, problem
                state.survey_specs[jt_id] = spec
                return 200, None
            if method == 'DELETE':
                state.survey_specs.pop(jt_id, None)
                return 200, None
            return 405, {'detail': 'Method "{0}" not allowed.'.format(method)}

        def _association(self, method, resource, obj, relation, body):
            key = (resource, obj['id'], relation)
            members = state.associations.setdefault(key, [])
            target = ASSOCIATIONS[resource][relation]
            if method == 'GET':
                results = [state.render(target, state.objects[target][i]) for i in members if i in state.objects[target]]
                return 200, {'count': len(results), 'next': None, 'previous': None, 'results': results}
            if method != 'POST':
                return 405, {'detail': 'Method "{0}" not allowed.'.format(method)}
            member_id = body.get('id') if isinstance(body, dict) else None
            if not isinstance(member_id, int) or member_id not in state.objects[target]:
                return 400, {'msg': '"id" field must be an integer of an existing object.'}
            if body.get('disassociate'):
                if member_id in members:
                    members.remove(member_id)
                return 204, None
            if member_id in members:
                return 204, None
            if resource == 'job_templates' and relation == 'credentials':
                credential = state.objects['credentials'][member_id]
                ctype = state.objects['credential_types'][credential['credential_type']]
                for other in members:
                    other_type = state.objects['credentials'][other]['credential_type']
                    if other_type == credential['credential_type'] and ctype['kind'] != 'vault':
                        return 400, {'error': 'Cannot assign multiple {0} credentials.'.format(ctype['name'])}
                if ctype['kind'] not in ('ssh', 'vault', 'cloud', 'net', 'kubernetes'):
                    return 400, {'error': 'Cannot assign a Credential of kind `{0}`.'.format(ctype['kind'])}
            members.append(member_id)
            return 204, None

    Handler._body_cache = None
    return Handler
