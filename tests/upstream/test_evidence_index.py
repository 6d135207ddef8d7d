"""Every published deviation names its direct reproduction (issue 13, item 4).

Each `[[expected_failure]]` of adapters/expectations/NAME.toml carries `evidence`: one test, or a
list, `tests/upstream/test_<library>_deviations.py::<function>`, that drives the library without the
suite and asserts the deviation (run in that adapter's nox session, see tests/upstream/conftest.py).
This file needs no framework: it reads the expectations and the reproductions' source (ast), never
imports them.
"""

import ast
import pathlib
import tomllib

import pytest

from adapters import BUNDLED

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXPECTATIONS = sorted((ROOT / "adapters" / "expectations").glob("*.toml"))


def reproduction_file(impl: str) -> str:
    """The reproductions of adapter `impl`'s library (keras-jax and keras-torch share Keras' file;
    a device's own file, tfrs.ps, shares its adapter's); noxfile.py's `_conformance_session` runs
    the same file for `impl`."""
    return f"tests/upstream/test_{impl.partition('.')[0].partition('-')[0]}_deviations.py"


def requirement_markers(path: pathlib.Path) -> dict:
    """test function name -> the ids of its `@pytest.mark.requirement(...)` decorators, read from source."""
    tests = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            ids = set()
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                        and decorator.func.attr == "requirement"):
                    ids.update(arg.value for arg in decorator.args)
            tests[node.name] = ids
    return tests


def entries():
    for path in EXPECTATIONS:
        for entry in tomllib.loads(path.read_text())["expected_failure"]:
            yield pytest.param(path.stem, entry, id=f"{path.name}::{entry['check']}")


def evidence_of(entry) -> list:
    evidence = entry.get("evidence")
    return [evidence] if isinstance(evidence, str) else list(evidence or [])


@pytest.mark.parametrize("impl", [path.stem for path in EXPECTATIONS])
def test_expectations_are_for_a_bundled_third_party_adapter_with_reproductions(impl):
    impl = impl.partition(".")[0]  # tfrs.ps.toml: tfrs on --device ps:W.
    assert impl in BUNDLED and impl != "reference", f"adapters/expectations/{impl}.toml names no third-party adapter"
    reproductions = ROOT / reproduction_file(impl)
    assert reproductions.is_file(), f"{impl}: its deviations need direct reproductions in {reproduction_file(impl)}"


@pytest.mark.parametrize("impl, entry", entries())
def test_each_expected_failure_names_a_reproduction_of_its_requirement(impl, entry):
    """`evidence` names existing tests of the library's own file, one of which reproduces a deviation from
    the requirement the entry is charged to (so a requirement shown as deviating has its reproduction)."""
    evidence = evidence_of(entry)
    assert evidence, f"{impl}.toml, {entry['check']}: no `evidence` (the direct reproduction of this deviation)"
    expected_file = reproduction_file(impl)
    charged = set()
    for name in evidence:
        file, _, function = name.partition("::")
        assert file == expected_file, f"{impl}.toml, {entry['check']}: evidence {name!r} is not in {expected_file}"
        tests = requirement_markers(ROOT / file)
        assert function in tests, f"{impl}.toml, {entry['check']}: {file} has no test {function!r}"
        charged |= tests[function]
    assert entry["requirement"] in charged, (
        f"{impl}.toml, {entry['check']}: charged to {entry['requirement']}, but its evidence {evidence} "
        f"reproduces deviations from {sorted(charged)} only"
    )


@pytest.mark.parametrize("file", sorted({reproduction_file(path.stem) for path in EXPECTATIONS}))
def test_each_reproduction_cites_requirements_and_backs_an_entry(file):
    """No reproduction without a requirement, and none that no published deviation relies on."""
    cited = {name.partition("::")[2] for path in EXPECTATIONS if reproduction_file(path.stem) == file
             for entry in tomllib.loads(path.read_text())["expected_failure"] for name in evidence_of(entry)}
    for function, ids in requirement_markers(ROOT / file).items():
        assert ids, f"{file}::{function} has no @pytest.mark.requirement"
        assert function in cited, f"{file}::{function} backs no expectations entry"
