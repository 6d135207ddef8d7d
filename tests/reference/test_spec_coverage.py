"""Every requirement in reference/SPEC.md is cited by at least one test here, and every
test here cites only ids that exist, in its marker and in its docstring."""

import importlib
import inspect
import pathlib
import re

HERE = pathlib.Path(__file__).resolve().parent
SPEC = HERE.parents[1] / "reference" / "SPEC.md"
# A requirement line: `- **ROUTE-1** (semantic) ...`. A withdrawn one keeps its line
# but says so in place of its scope, and needs no test.
REQUIREMENT_LINE = re.compile(r"^- \*\*([A-Z]+-\d+)\*\* \(([^)]*)\)", re.MULTILINE)


def spec_requirements():
    """{id: scope} for every requirement line of SPEC.md."""
    found = REQUIREMENT_LINE.findall(SPEC.read_text(encoding="utf-8"))
    ids = [rid for rid, _ in found]
    assert len(ids) == len(set(ids)), f"duplicate ids in SPEC.md: {sorted(i for i in ids if ids.count(i) > 1)}"
    return dict(found)


def cited_requirements():
    """{test name: [ids]} from the `requirement` markers of every test in tests/reference."""
    citations = {}
    for path in sorted(HERE.glob("test_*.py")):
        if path.stem == pathlib.Path(__file__).stem:
            continue
        module = importlib.import_module(path.stem)  # the module pytest already imported
        for name, obj in vars(module).items():
            if name.startswith("test") and inspect.isfunction(obj):
                marks = [m for m in getattr(obj, "pytestmark", []) if m.name == "requirement"]
                citations[f"{path.stem}::{name}"] = ([rid for m in marks for rid in m.args], obj.__doc__ or "")
    return citations


def test_every_spec_requirement_is_cited():
    """Each SPEC.md id (not withdrawn) has at least one test citing it."""
    requirements = spec_requirements()
    assert len(requirements) >= 40, f"parsed only {len(requirements)} requirements from {SPEC}"
    cited = {rid for ids, _ in cited_requirements().values() for rid in ids}
    missing = sorted(rid for rid, scope in requirements.items() if "withdrawn" not in scope and rid not in cited)
    assert not missing, f"requirements with no test citing them: {missing}"


def test_every_test_cites_existing_ids_in_marker_and_docstring():
    """No test without a requirement marker, no cited id missing from SPEC.md, and every cited
    id also named in the test's docstring. (This module's own tests check SPEC.md itself.)"""
    requirements = spec_requirements()
    problems = []
    for test, (ids, doc) in cited_requirements().items():
        if not ids:
            problems.append(f"{test}: no @pytest.mark.requirement")
        for rid in ids:
            if rid not in requirements:
                problems.append(f"{test}: cites {rid}, which SPEC.md does not define")
            if rid not in doc:
                problems.append(f"{test}: cites {rid} but its docstring does not name it")
    assert not problems, "\n".join(problems)
