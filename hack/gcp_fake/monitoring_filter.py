"""Cloud Monitoring's filter language (https://cloud.google.com/monitoring/api/v3/filters), as far as the
metrics path uses it: what the custom-metrics-stackdriver-adapter sends, and what a person types.

    expression := term { (AND | OR) term }        (AND binds tighter than OR; juxtaposition is AND)
    term       := NOT term | '(' expression ')' | selector op value
    selector   := project | metric.type | resource.type | metric.label(s).KEY | resource.label(s).KEY
                  | metadata.system_labels.KEY | metadata.user_labels.KEY | metric.labels | resource.labels
    op         := '=' | '!=' | '>' | '<' | '>=' | '<=' | ':'
    value      := "string" | 'string' | number | bare-word | one_of(v, ...) | starts_with(s) | ends_with(s)
                  | has_substring(s) | monitoring.regex.full_match(re)

`selector : value` is "has": a label map has the key, a string contains the value. A label a series does not
carry compares as absent: `=` is false, `!=` is true. parse() raises FilterError with Google's wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FUNCTIONS = ("one_of", "starts_with", "ends_with", "has_substring", "monitoring.regex.full_match")
_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|=|<|>|:|\(|\)|,)
                        |(?P<word>[A-Za-z0-9_.\-/+@*]+))""", re.VERBOSE)
_SELECTOR = re.compile(r"^(project|metric\.type|resource\.type|(metric|resource)\.labels?(\.[A-Za-z0-9_./-]+)?"
                       r"|metadata\.(system|user)_labels(\.[A-Za-z0-9_./-]+)?)$")


class FilterError(ValueError):
    pass


@dataclass
class Compare:
    selector: str
    op: str
    value: object  # str, float, or ("fn", name, [args])


@dataclass
class Not:
    term: object


@dataclass
class And:
    terms: list


@dataclass
class Or:
    terms: list


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def tokenize(text: str) -> list:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos}")
        pos = m.end()
        if m.group("str") is not None:
            out.append(("str", _unquote(m.group("str"))))
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        else:
            out.append(("word", m.group("word")))
    return out


class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0):
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else (None, None)

    def take(self):
        tok = self.peek()
        self.pos += 1
        return tok

    def expect(self, kind, value=None):
        tok = self.take()
        if tok[0] != kind or (value is not None and tok[1] != value):
            raise FilterError(f"expected {value or kind}, found {tok[1]!r}" if tok[0] else
                              f"expected {value or kind} at the end of the filter")
        return tok

    def parse(self):
        if not self.tokens:
            raise FilterError("the filter is empty")
        expr = self.expression()
        if self.peek()[0] is not None:
            raise FilterError(f"unexpected {self.peek()[1]!r}")
        return expr

    def expression(self):
        terms = [self.conjunction()]
        while self.peek() == ("word", "OR"):
            self.take()
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else Or(terms)

    def conjunction(self):
        terms = [self.term()]
        while True:
            tok = self.peek()
            if tok == ("word", "AND"):
                self.take()
                terms.append(self.term())
            elif tok[0] is not None and tok != ("word", "OR") and tok != ("op", ")"):
                terms.append(self.term())  # juxtaposition is AND
            else:
                break
        return terms[0] if len(terms) == 1 else And(terms)

    def term(self):
        tok = self.peek()
        if tok == ("word", "NOT") or tok == ("op", "-"):
            self.take()
            return Not(self.term())
        if tok == ("op", "("):
            self.take()
            inner = self.expression()
            self.expect("op", ")")
            return inner
        kind, selector = self.take()
        if kind != "word":
            raise FilterError(f"expected a selector, found {selector!r}" if kind else "expected a selector")
        if not _SELECTOR.match(selector):
            raise FilterError(f"the filter contains an unknown selector {selector!r}")
        op = self.expect("op")[1]
        if op not in ("=", "!=", ">", "<", ">=", "<=", ":"):
            raise FilterError(f"expected a comparison after {selector}, found {op!r}")
        return Compare(selector, op, self.value())

    def value(self):
        kind, text = self.take()
        if kind == "str":
            return text
        if kind != "word":
            raise FilterError(f"expected a value, found {text!r}" if kind else "expected a value")
        if text in FUNCTIONS and self.peek() == ("op", "("):
            self.take()
            args = []
            if self.peek() != ("op", ")"):
                args.append(self.value())
                while self.peek() == ("op", ","):
                    self.take()
                    args.append(self.value())
            self.expect("op", ")")
            if text != "one_of" and len(args) != 1:
                raise FilterError(f"{text}() takes one argument")
            if text == "one_of" and not args:
                raise FilterError("one_of() needs at least one argument")
            if text == "one_of" and len(args) > 100:
                raise FilterError("one_of() takes at most 100 arguments")
            if text == "monitoring.regex.full_match":
                try:
                    re.compile(str(args[0]))
                except re.error as exc:
                    raise FilterError(f"invalid regular expression {args[0]!r}: {exc}") from None
            return ("fn", text, args)
        try:
            return float(text) if re.fullmatch(r"-?\d+(\.\d+)?", text) else text
        except ValueError:
            return text


def parse(text: str):
    return _Parser(text).parse()


# --------------------------------------------------------------------------- evaluation

def _lookup(selector: str, obj: dict):
    """The value a selector names in {metric: {type, labels}, resource: {type, labels}, project}; None if absent."""
    if selector == "project":
        return obj.get("project")
    if selector == "metric.type":
        return obj["metric"]["type"]
    if selector == "resource.type":
        return obj["resource"]["type"]
    parts = selector.split(".", 2)
    if parts[0] == "metadata":
        labels = {}
        return labels if len(parts) == 2 else labels.get(parts[2])
    labels = obj[parts[0]].get("labels") or {}
    return labels if len(parts) == 2 else labels.get(parts[2])


def _compare(actual, op: str, expected) -> bool:
    if isinstance(expected, tuple):  # a function
        _fn, name, args = expected
        if actual is None or isinstance(actual, dict):
            matched = False
        elif name == "one_of":
            matched = any(_equal(actual, a) for a in args)
        elif name == "starts_with":
            matched = str(actual).startswith(str(args[0]))
        elif name == "ends_with":
            matched = str(actual).endswith(str(args[0]))
        elif name == "has_substring":
            matched = str(args[0]) in str(actual)
        else:
            matched = re.fullmatch(str(args[0]), str(actual)) is not None
        if op == "=":
            return matched
        if op == "!=":
            return not matched
        raise FilterError(f"{name}() can only be compared with = or !=")
    if op == ":":
        if isinstance(actual, dict):
            return str(expected) in actual
        return actual is not None and str(expected) in str(actual)
    if actual is None or isinstance(actual, dict):
        return op == "!="
    if op == "=":
        return _equal(actual, expected)
    if op == "!=":
        return not _equal(actual, expected)
    try:
        a, b = float(actual), float(expected)
    except (TypeError, ValueError):
        a, b = str(actual), str(expected)
    return {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]


def _equal(actual, expected) -> bool:
    if isinstance(expected, float):
        try:
            return float(actual) == expected
        except (TypeError, ValueError):
            return False
    return str(actual) == str(expected)


def matches(expr, obj: dict) -> bool:
    if isinstance(expr, Compare):
        return _compare(_lookup(expr.selector, obj), expr.op, expr.value)
    if isinstance(expr, Not):
        return not matches(expr.term, obj)
    if isinstance(expr, And):
        return all(matches(t, obj) for t in expr.terms)
    return any(matches(t, obj) for t in expr.terms)


def metric_types(expr) -> list:
    """The metric types a filter pins with `metric.type = "..."` in its top-level conjunction."""
    terms = expr.terms if isinstance(expr, And) else [expr]
    return [t.value for t in terms if isinstance(t, Compare) and t.selector == "metric.type" and t.op == "="
            and isinstance(t.value, str)]


def selectors(expr) -> set:
    if isinstance(expr, Compare):
        return {expr.selector}
    if isinstance(expr, Not):
        return selectors(expr.term)
    out = set()
    for t in expr.terms:
        out |= selectors(t)
    return out
