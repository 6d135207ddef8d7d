"""Synthetic reports (schema 2, or schema 1 when asked) for the report tooling's tests, and a small
HTML tree parser.

Reports are built from checks; requirements (verdicts and statuses), verdict counts and the summary
are derived with `reports.schema` exactly as the runner derives them, so every report here passes
`schema.validate`. In a schema-2 report the "spec" is every requirement a check cites plus
`uncovered`; in a schema-1 report `uncovered` requirements are listed with no citing check.

`python tests/reports/synthetic_reports.py` rewrites tests/reports/fixtures/*.json from `FIXTURES`
(a test checks the committed files match).
"""

from __future__ import annotations

import copy
import json
import pathlib
import sys
from html.parser import HTMLParser

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # when run as a script
    sys.path.insert(0, str(ROOT))

from reports import schema  # noqa: E402

FIXTURE_DIR = pathlib.Path(__file__).resolve().parent / "fixtures"

AREAS = {"CTOR": "construction", "ROUTE": "routing", "ATOM": "atomicity", "ITER": "iterations",
         "CLIP": "clipping", "CONF": "config", "SLOT": "slots"}
SCOPES = {"CTOR-1": "tf_keras", "CONF-1": "tf_keras", "SLOT-1": "tf_keras"}
TEXTS = {
    "CTOR-1": "The constructor is CompositeOptimizer(optimizers_and_vars, name, **kwargs).",
    "CTOR-2": "An empty or None list of entries is refused with ValueError.",
    "ROUTE-1": "Every step calls each entry's var_callable afresh and matches variables by identity.",
    "ROUTE-4": "A variable listed by two entries is a ValueError naming the variable and both indices.",
    "ROUTE-8": "Sparse gradients reach the sub-optimizer as sparse gradients.",
    "ROUTE-9": "The central property: the same effect as each sub-optimizer alone on its group.",
    "ATOM-1": "Every error of a step is raised before anything changes.",
    "ITER-1": "iterations advances by exactly 1 for each step that applies a gradient.",
    "CLIP-1": "Composite clipping acts on the gradients of all groups together.",
    "CONF-1": "get_config() returns a JSON-serialisable dict.",
}


def check(check_id, requirements, status=schema.PASSED, **fields):
    """One check; its area is that of its first requirement. Without `reproduce`, make_report gives
    it `python -m conformance --impl NAME -k TEST`."""
    requirements = [requirements] if isinstance(requirements, str) else list(requirements)
    out = {
        "id": check_id,
        "area": AREAS[requirements[0].split("-")[0]],
        "requirements": requirements,
        "status": status,
        "reason": None,
        "message": None,
        "example": None,
        "examples_run": None,
        "duration_s": 0.01,
        "charged": [],
        "blocked_by": [],
        "avoided": [],
    }
    out.update(fields)
    return out


V2_CHECK_FIELDS = ("charged", "blocked_by", "avoided")


def good_checks():
    """A run in which every check passes (ATOM-1's check also cites ROUTE-4)."""
    return [
        check("test_ctor.py::test_constructor_signature", "CTOR-1"),
        check("test_ctor.py::test_empty_entries_refused", "CTOR-2"),
        check("test_routing.py::test_identity_routing", "ROUTE-1"),
        check("test_routing.py::test_sparse_routing", "ROUTE-8"),
        check("test_routing.py::test_central_property", "ROUTE-9", examples_run=200),
        check("test_routing.py::test_central_property_compiled", "ROUTE-9", examples_run=50),
        check("test_atom.py::test_errors_change_nothing", ["ATOM-1", "ROUTE-4"], examples_run=100),
        check("test_iter.py::test_iterations_advance_once", "ITER-1"),
        check("test_clip.py::test_global_clipnorm_across_groups", "CLIP-1"),
        check("test_conf.py::test_get_config_json", "CONF-1"),
    ]


def spec_of(requirement_ids):
    """{id: {area, scope, text}} as the runner passes SPEC.md to `schema.requirements_section`."""
    return {
        rid: {"area": AREAS[rid.split("-")[0]], "scope": SCOPES.get(rid, "semantic"), "text": TEXTS.get(rid, f"Requirement {rid}.")}
        for rid in requirement_ids
    }


def make_report(checks=None, *, name="reference", device="cpu", profile="ci", expectations=None,
                created="2026-11-24T12:00:00+00:00", uncovered=(), schema_version=schema.SCHEMA_VERSION):
    """A valid report of `checks` (default: good_checks()). `uncovered`: requirement ids of the spec
    that no check cites (schema 2: untested entries; schema 1: listed with no citing check)."""
    checks = copy.deepcopy(good_checks() if checks is None else checks)
    for c in checks:
        c.setdefault("reproduce", f"python -m conformance --impl {name} -k {c['id'].split('::')[-1]}")
        for field in V2_CHECK_FIELDS:
            if schema_version == 1:
                c.pop(field, None)
            else:
                c.setdefault(field, [])
    cited = {}
    for c in checks:
        for rid in c["requirements"]:
            cited.setdefault(rid, []).append(c)
    if schema_version == 1:
        requirements = _v1_requirements(cited, uncovered)
    else:
        requirements = schema.requirements_section(checks, spec_of(set(cited) | set(uncovered)))
    report = {
        "schema_version": schema_version,
        "suite_version": "0.1.0",
        "spec_version": "1.0",
        "implementation": {"name": name, "implementation": f"{name}.CompositeOptimizer", "version": "0.1.0"},
        "frameworks": {"tensorflow": "2.21.0", "tf_keras": "2.21.0"},
        "device": device,
        "profile": profile,
        "seed": 0,
        "created": created,
        "command": f"python -m conformance --impl {name}",
        "expectations": expectations,
        "summary": schema.summarize(checks),
        "checks": checks,
        "requirements": requirements,
    }
    if schema_version == 1:
        report["summary"] = {s: n for s, n in report["summary"].items() if s in schema.V1_STATUSES}
    else:
        report["verdicts"] = schema.verdict_counts(requirements)
    schema.validate(report)
    return report


def _v1_requirements(cited, uncovered):
    """A schema-1 report's requirements object (what the runner wrote before schema 2)."""
    requirements = {}
    for rid in sorted(set(cited) | set(uncovered)):
        cs = cited.get(rid, [])
        requirements[rid] = {
            # A listed requirement with no citing check has no status (requirement_status refuses
            # one); such a report still needs one to be valid, and the renderer must show "no check"
            # whatever it is, so it gets the status most likely to pass for an excuse.
            "status": schema.requirement_status(c["status"] for c in cs) if cs else schema.NOT_APPLICABLE,
            "area": AREAS[rid.split("-")[0]],
            "scope": SCOPES.get(rid, "semantic"),
            "text": TEXTS.get(rid, f"Requirement {rid}."),
            "checks": [c["id"] for c in cs],
        }
    return requirements


def with_checks(report, changes):
    """A copy of `report` with checks changed ({id: {field: value}}; None removes the check) and
    requirements and summary derived again."""
    checks = []
    for c in report["checks"]:
        if c["id"] in changes and changes[c["id"]] is None:
            continue
        checks.append({**c, **changes.get(c["id"], {})})
    uncovered = [rid for rid, entry in report["requirements"].items() if not entry["checks"]]
    return make_report(
        checks,
        name=report["implementation"]["name"],
        device=report["device"],
        profile=report["profile"],
        expectations=report["expectations"],
        created=report["created"],
        uncovered=uncovered,
        schema_version=report["schema_version"],
    )


def tfrs_report(*, device="cpu", schema_version=schema.SCHEMA_VERSION):
    """A port with every kind of result: failure (with a minimal example), expected failures,
    not applicable, an unexpected pass, an error, and a requirement no check cites; in schema 2 also
    a check blocked by the failing requirement (ROUTE-1 by ROUTE-9) and a passing check whose cases
    left out a situation owned by it (ATOM-1)."""
    checks = good_checks()
    changes = {
        "test_routing.py::test_central_property": dict(
            status=schema.FAILED,
            message="AssertionError: variables differ after step 2\n  max abs diff 0.125",
            example="steps=[[(0, array([1.0]))], [(1, None)]]",
            examples_run=17,
        ),
        "test_iter.py::test_iterations_advance_once": dict(
            status=schema.EXPECTED_FAILURE, reason="TFRS: iterations is the first sub-optimizer's counter (ITER-1)."
        ),
        "test_clip.py::test_global_clipnorm_across_groups": dict(
            status=schema.NOT_APPLICABLE, reason="TFRS has no clip settings (CTOR-1)."
        ),
        "test_conf.py::test_get_config_json": dict(status=schema.UNEXPECTED_PASS, reason="TFRS: get_config raises."),
        "test_routing.py::test_sparse_routing": dict(
            status=schema.ERROR, message="RuntimeError: adapter crashed while building IndexedSlices"
        ),
    }
    if schema_version >= 2:
        changes["test_routing.py::test_identity_routing"] = dict(
            status=schema.BLOCKED, blocked_by=["ROUTE-9"],
            reason="needs steps in which a group has no gradient, a situation of ROUTE-9, which deviates",
        )
        changes["test_atom.py::test_errors_change_nothing"] = dict(
            avoided=[{"situation": "absent groups", "requirement": "ROUTE-9"}],
        )
    checks = [{**c, **changes.get(c["id"], {})} for c in checks]
    return make_report(checks, name="tfrs", device=device, expectations="adapters/expectations/tfrs.toml",
                       uncovered=["SLOT-1"], schema_version=schema_version)


FIXTURES = {
    "reference-cpu.json": lambda: make_report(),
    "tfrs-cpu.json": tfrs_report,
    # A report of schema version 1, as the runner wrote before verdicts: still read and rendered.
    "tfrs-gpu.schema1.json": lambda: tfrs_report(device="gpu", schema_version=1),
}


def fixture_text(name):
    return json.dumps(FIXTURES[name](), indent=2, sort_keys=True) + "\n"


# --------------------------------------------------------------------------- HTML tree

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "source", "wbr", "area", "base", "embed"}


class Element:
    def __init__(self, tag, attrs):
        self.tag, self.attrs, self.children = tag, dict(attrs), []

    @property
    def classes(self):
        return set((self.attrs.get("class") or "").split())

    def iter(self, tag=None, cls=None):
        for child in self.children:
            if isinstance(child, Element):
                if (tag is None or child.tag == tag) and (cls is None or cls in child.classes):
                    yield child
                yield from child.iter(tag, cls)

    def find(self, tag=None, cls=None):
        return next(self.iter(tag, cls))

    def elements(self, tag=None):
        """Direct children that are elements."""
        return [c for c in self.children if isinstance(c, Element) and (tag is None or c.tag == tag)]

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class TreeBuilder(HTMLParser):
    """html.parser into Element trees, recording every mis-nested or unclosed tag as an error."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]
        self.errors = []

    def handle_starttag(self, tag, attrs):
        element = Element(tag, attrs)
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Element(tag, attrs))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if self.stack[-1].tag != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1].tag}>")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.stack[-1].children.append(data)

    def close(self):
        super().close()
        if len(self.stack) != 1:
            self.errors.append(f"unclosed: {[e.tag for e in self.stack[1:]]}")


def parse_html(text):
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root, builder.errors


if __name__ == "__main__":
    FIXTURE_DIR.mkdir(exist_ok=True)
    for fixture_name in FIXTURES:
        (FIXTURE_DIR / fixture_name).write_text(fixture_text(fixture_name), encoding="utf-8")
        print(FIXTURE_DIR / fixture_name)
