"""What AWX 24.6.1 rejects, re-implemented for the fake: survey specs, credential type inputs and injectors,
credential inputs, and the project playbook scan.

Rules and messages follow AWX 24.6.1 (Apache-2.0): awx/api/views/__init__.py JobTemplateSurveySpec._validate_spec_data,
awx/main/fields.py CredentialTypeInputField / CredentialTypeInjectorField / JSONSchemaField, awx/main/constants.py
(SURVEY_TYPE_MAPPING, ENV_BLOCKLIST), awx/main/utils/ansible.py (could_be_playbook, skip_directory). Written anew
from reading them; no AWX code is copied. Each function returns None when AWX would accept, or the JSON body of
AWX's 400 response.
"""

from __future__ import annotations

import codecs
import os
import re

import jsonschema
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

SURVEY_TYPE_MAPPING = {
    'text': str, 'textarea': str, 'password': str, 'multiplechoice': str, 'multiselect': str,
    'integer': int, 'float': (float, int),
}

ENV_BLOCKLIST = frozenset((
    'VIRTUAL_ENV', 'PATH', 'PYTHONPATH', 'JOB_ID', 'INVENTORY_ID', 'INVENTORY_SOURCE_ID', 'INVENTORY_UPDATE_ID',
    'AD_HOC_COMMAND_ID', 'REST_API_URL', 'REST_API_TOKEN', 'MAX_EVENT_RES', 'CALLBACK_QUEUE', 'CALLBACK_CONNECTION',
    'CACHE', 'JOB_CALLBACK_DEBUG', 'INVENTORY_HOSTVARS', 'AWX_HOST', 'PROJECT_REVISION', 'SUPERVISOR_CONFIG_PATH',
))

ENCRYPTED = '$encrypted$'


def _error(msg):
    return {'error': msg}


def validate_survey_spec(spec, old_spec=None):
    """AWX's survey_spec POST checks, in AWX's order; normalizes `spec` in place as AWX does before storing."""
    old_spec = old_spec or {}
    if not isinstance(spec, dict):
        return _error("Field 'name' is missing from survey spec.")
    problem = None
    for field, expect, label in (('name', str, 'string'), ('description', str, 'string'), ('spec', list, 'list of items')):
        if field not in spec:
            problem = "Field '{0}' is missing from survey spec.".format(field)
        elif not isinstance(spec[field], expect):
            problem = "Expected {0} for field '{1}', received {2} type.".format(label, field, type(spec[field]).__name__)
    if isinstance(spec.get('spec'), list) and not spec['spec']:
        problem = "'spec' doesn't contain any items."
    if problem:
        return _error(problem)

    old_items = {item.get('variable'): item for item in old_spec.get('spec', []) if isinstance(item, dict)}
    variables = set()
    for idx, item in enumerate(spec['spec']):
        if not isinstance(item, dict):
            return _error('Survey question {0} is not a json object.'.format(idx))
        for field in ('type', 'question_name', 'variable', 'required'):
            if field not in item:
                return _error("'{0}' missing from survey question {1}".format(field, idx))
            expect, label = (bool, 'boolean') if field == 'required' else (str, 'string')
            if not isinstance(item[field], expect):
                return _error("'{0}' in survey question {1} expected to be {2}.".format(field, idx, label))
        if item['variable'] in variables:
            return _error("'variable' '{0}' duplicated in survey question {1}.".format(item['variable'], idx))
        variables.add(item['variable'])
        qtype = item['type']
        if qtype not in SURVEY_TYPE_MAPPING:
            return _error("'{0}' in survey question {1} is not one of '{2}' allowed question types.".format(
                qtype, idx, ', '.join(SURVEY_TYPE_MAPPING)))
        if 'default' in item and item['default'] != '' and not isinstance(item['default'], SURVEY_TYPE_MAPPING[qtype]):
            label = qtype if qtype in ('integer', 'float') else 'string'
            return _error('Default value {0} in survey question {1} expected to be {2}.'.format(item['default'], idx, label))
        for key in ('min', 'max'):
            if key in item and item[key] is not None and not isinstance(item[key], int):
                return _error('The {0} limit in survey question {1} expected to be integer.'.format(key, idx))
        if qtype in ('multiselect', 'multiplechoice'):
            if 'choices' not in item:
                return _error('Survey question {0} of type {1} must specify choices.'.format(idx, qtype))
            if isinstance(item['choices'], str):
                item['choices'] = '\n'.join(c for c in item['choices'].splitlines() if c.strip() != '')
            if 'default' in item:
                if isinstance(item['default'], str):
                    item['default'] = '\n'.join(c for c in item['default'].splitlines() if c.strip() != '')
                    defaults = item['default'].splitlines()
                else:
                    defaults = item['default']
                if qtype == 'multiplechoice' and len(defaults) > 1:
                    return _error('Multiple Choice (Single Select) can only have one default value.')
                if any(d not in item['choices'] for d in defaults):
                    return _error('Default choice must be answered from the choices listed.')
        if isinstance(item.get('default'), str) and item['default'].startswith(ENCRYPTED):
            if qtype != 'password':
                return _error('$encrypted$ is a reserved keyword for password question defaults, '
                              'survey question {0} is type {1}.'.format(idx, qtype))
            old_default = old_items.get(item['variable'], {}).get('default')
            if not (isinstance(old_default, str) and (old_default.startswith(ENCRYPTED) or old_default == '')):
                return _error('$encrypted$ is a reserved keyword, may not be used for new default in position {0}.'.format(idx))
            item['default'] = old_default
        elif qtype == 'password' and 'default' in item:
            item['default'] = ENCRYPTED + item['default']  # the fake's "encryption": shown as $encrypted$ on GET
    return None


def display_survey_spec(spec):
    """GET survey_spec: password defaults come back as $encrypted$."""
    if not spec:
        return {}
    out = dict(spec, spec=[dict(item) for item in spec.get('spec', [])])
    for item in out['spec']:
        if item.get('type') == 'password' and isinstance(item.get('default'), str) and item['default'].startswith(ENCRYPTED):
            item['default'] = ENCRYPTED
    return out


INPUTS_SCHEMA = {
    'type': 'object',
    'additionalProperties': False,
    'properties': {
        'required': {'type': 'array', 'items': {'type': 'string'}},
        'fields': {
            'type': 'array',
            'items': {
                'type': 'object',
                'properties': {
                    'type': {'enum': ['string', 'boolean']},
                    'format': {'enum': ['ssh_private_key', 'url']},
                    'choices': {'type': 'array', 'minItems': 1, 'items': {'type': 'string'}, 'uniqueItems': True},
                    'id': {'type': 'string', 'pattern': '^[a-zA-Z_]+[a-zA-Z0-9_]*$', 'error': '{instance} is an invalid variable name'},
                    'label': {'type': 'string'},
                    'help_text': {'type': 'string'},
                    'multiline': {'type': 'boolean'},
                    'secret': {'type': 'boolean'},
                    'ask_at_runtime': {'type': 'boolean'},
                    'default': {},
                },
                'additionalProperties': False,
                'required': ['id', 'label'],
            },
        },
    },
}

INJECTORS_SCHEMA = {
    'type': 'object',
    'additionalProperties': False,
    'properties': {
        'file': {
            'type': 'object',
            'patternProperties': {r'^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$': {'type': 'string'}},
            'additionalProperties': False,
        },
        'env': {
            'type': 'object',
            'patternProperties': {'^[a-zA-Z_]+[a-zA-Z0-9_]*$': {'type': 'string', 'pattern': '^[\x00-\x7F]*$'}},
            'additionalProperties': False,
        },
        'extra_vars': {
            'type': 'object',
            'patternProperties': {
                r'^[a-zA-Z_\{\}]+[a-zA-Z0-9_\{\}]*$': {'anyOf': [{'type': 'string'}, {'type': 'array'}, {'$ref': '#/properties/extra_vars'}]},
            },
            'additionalProperties': False,
        },
    },
}


def _schema_messages(schema, value):
    """JSONSchemaField.validate's messages (Draft 4, with AWX's rewording of pattern/type/additionalProperties errors)."""
    messages = []
    for error in jsonschema.Draft4Validator(schema).iter_errors(value):
        message = error.message
        if error.validator == 'pattern' and 'error' in error.schema:
            message = error.schema['error'].format(instance=error.instance)
        elif error.validator == 'type':
            expected = 'dict' if error.validator_value == 'object' else error.validator_value
            if error.path:
                message = '{0} provided in relative path {1}, expected {2}'.format(type(error.instance).__name__, list(error.path), expected)
            else:
                message = '{0} provided, expected {1}'.format(type(error.instance).__name__, expected)
        elif error.validator == 'additionalProperties':
            message = 'Schema validation error in relative path {0} ({1})'.format(list(error.path), error.message)
        messages.append(message)
    return messages


def _inputs_problem(inputs):
    """CredentialTypeInputField.validate: the message of the first problem, or None. Fills in type: string as AWX does."""
    messages = _schema_messages(INPUTS_SCHEMA, inputs)
    if messages:
        return messages
    ids = set()
    for field in inputs.get('fields', []):
        if field['id'] == 'tower':
            return ['"tower" is a reserved field name']
        if field['id'] in ids:
            return ['field IDs must be unique ({0})'.format(field['id'])]
        ids.add(field['id'])
        field.setdefault('type', 'string')
        if 'default' in field and type(field['default']) is not {'string': str, 'boolean': bool}[field['type']]:
            return ['{0} is not a {1}'.format(field['default'], field['type'])]
        for key in ('choices', 'multiline', 'format', 'secret'):
            if key in field and field['type'] != 'string':
                return ['{0} not allowed for {1} type ({2})'.format(key, field['type'], field['id'])]
    return None


class ExplodingNamespace:
    """`tower.filename` before any file injector is named. Jinja's message for a missing attribute names the
    object's type, so this one carries AWX's module and class name, and the messages are AWX's."""

    def __str__(self):
        raise UndefinedError('Must define unnamed file injector in order to reference `tower.filename`.')


ExplodingNamespace.__module__ = 'awx.main.fields'


class TowerNamespace:
    def __init__(self):
        self.filename = ExplodingNamespace()

    def __str__(self):
        raise UndefinedError('Cannot directly reference reserved `tower` namespace container.')


TowerNamespace.__module__ = 'awx.main.fields'


def validate_credential_type(kind, inputs, injectors):
    """CredentialTypeSerializer.validate plus the inputs and injectors fields: None or {field: [messages]}."""
    if kind is not None and kind not in ('cloud', 'net'):
        return {'kind': ["Must be 'cloud' or 'net', not {0}".format(kind)]}
    inputs = inputs if inputs is not None else {}
    injectors = injectors if injectors is not None else {}
    if isinstance(inputs, dict) and 'dependencies' in inputs:
        return {'inputs': ["'dependencies' is not supported for custom credentials."]}
    problem = _inputs_problem(inputs) if isinstance(inputs, dict) else ['{0} provided, expected dict'.format(type(inputs).__name__)]
    if problem:
        return {'inputs': problem}
    for field in inputs.get('fields', []):
        if field.get('ask_at_runtime', False):
            return {'inputs': ["'ask_at_runtime' is not supported for custom credentials."]}
    messages = _schema_messages(INJECTORS_SCHEMA, injectors)
    if messages:
        return {'injectors': messages}

    namespace = {field['id']: 'EXAMPLE' for field in inputs.get('fields', [])}
    tower = TowerNamespace()
    namespace['tower'] = tower
    templates = [key for key in injectors.get('file', {}) if key.startswith('template')]
    if 'template' in templates:
        tower.filename = 'EXAMPLE_FILENAME'
        if len(templates) > 1:
            return {'injectors': ['Must use multi-file syntax when injecting multiple files']}
    else:
        for name in templates:
            setattr(tower.filename, name.split('.')[1], 'EXAMPLE_FILENAME')

    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)

    def check(type_, key, template):
        try:
            env.from_string(template).render(namespace)
        except UndefinedError as exc:
            return '{0} uses an undefined field ({1})'.format(key, exc)
        except SecurityError as exc:
            return 'Encountered unsafe code execution: {0}'.format(exc)
        except TemplateSyntaxError as exc:
            return 'Syntax error rendering template for {0} inside of {1} ({2})'.format(key, type_, exc)
        return None

    def check_extra_vars(key, node):
        if isinstance(node, dict):
            for k, v in node.items():
                found = check('extra_vars', 'a key' if key is None else key, k) or check_extra_vars(k if key is None else '{0}.{1}'.format(key, k), v)
                if found:
                    return found
        elif isinstance(node, list):
            for i, x in enumerate(node):
                found = check_extra_vars('{0}[{1}]'.format(key, i), x)
                if found:
                    return found
        else:
            return check('extra_vars', key, node)
        return None

    for type_, injector in injectors.items():
        if type_ == 'env':
            for var in injector:
                if var.startswith('ANSIBLE_'):
                    return {'injectors': ['Environment variable {0} may affect Ansible configuration so its use is not allowed in credentials.'.format(var)]}
                if var in ENV_BLOCKLIST:
                    return {'injectors': ['Environment variable {0} is not allowed to be used in credentials.'.format(var)]}
        if type_ == 'extra_vars':
            found = check_extra_vars(None, injector)
        else:
            found = next(filter(None, (check(type_, key, tmpl) for key, tmpl in injector.items())), None)
        if found:
            return {'injectors': [found]}
    return None


def validate_credential_inputs(credential_type, inputs):
    """CredentialInputField: keys must be fields of the type, secrets strings, choices respected. None or {inputs: {...}}."""
    fields = {field['id']: field for field in credential_type.get('inputs', {}).get('fields', [])}
    if not isinstance(inputs, dict):
        return {'inputs': ['{0} provided, expected dict'.format(type(inputs).__name__)]}
    errors = {}
    for key, value in inputs.items():
        field = fields.get(key)
        if field is None:
            errors[key] = ['Additional properties are not allowed ({0!r} was unexpected)'.format(key)]
        elif value == ENCRYPTED:
            errors[key] = ['$encrypted$ is a reserved keyword, and cannot be used for {0}.'.format(key)]
        elif field.get('type', 'string') == 'boolean' and not isinstance(value, bool):
            errors[key] = ['{0!r} is not of type {1!r}'.format(value, 'boolean')]
        elif field.get('type', 'string') == 'string' and not isinstance(value, str):
            errors[key] = ['{0!r} is not of type {1!r}'.format(value, 'string')]
        elif 'choices' in field and value not in field['choices']:
            errors[key] = ['{0!r} is not one of {1!r}'.format(value, field['choices'])]
        elif field.get('format') == 'ssh_private_key' and '-----BEGIN' not in value:
            errors[key] = ['Invalid certificate or key: {0}...'.format(value[:20])]
    return {'inputs': errors} if errors else None


PLAYBOOK_RE = re.compile(r'^\s*?-?\s*?(?:hosts|(ansible\.builtin\.)?include|(ansible\.builtin\.)?import_playbook):\s*?.*?$')


def _skip_directory(relative):
    parts = relative.split(os.sep)
    return ('roles' in parts or 'tasks' in parts or 'group_vars' in parts or 'host_vars' in parts
            or any(part.startswith('.') and part != '.' for part in parts))


def project_playbooks(project_path):
    """Project.playbooks: the files AWX offers as a job template's playbook. Links are not followed
    (AWX_SHOW_PLAYBOOK_LINKS is false by default). Directories are judged relative to the project
    (AWX splits the absolute path; the difference only matters for checkouts under such names)."""
    results = []
    for dirpath, _dirnames, filenames in os.walk(project_path, followlinks=False):
        if _skip_directory(os.path.relpath(dirpath, project_path)):
            continue
        for filename in filenames:
            if os.path.splitext(filename)[-1] not in ('.yml', '.yaml'):
                continue
            path = os.path.join(dirpath, filename)
            try:
                with codecs.open(path, 'r', encoding='utf-8', errors='ignore') as handle:
                    matched = any(PLAYBOOK_RE.match(line) or (n == 0 and line.startswith('$ANSIBLE_VAULT;'))
                                  for n, line in enumerate(handle))
            except IOError:
                continue
            if matched:
                results.append(os.path.relpath(path, project_path))
    return sorted(results, key=str.lower)
