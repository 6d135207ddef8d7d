"""What the command line names, checked before any check runs (`python -m conformance` exits 2 on
the first mistake, with one line naming the bad value and what would be accepted).

Everything here is cheap: no framework is imported (a bundled adapter's frameworks and a port's
module are only looked up; load_impl, which imports a port, runs where the checks run), and the
suite's checks are read from their source, not imported.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import pathlib
import tomllib
from typing import Dict, Set


def check_impl(spec: str, *, load: bool = True) -> None:
    """ValueError unless `spec` is a bundled adapter whose frameworks are installed, or a MODULE:ATTR
    whose module is on the path and, with `load`, imports and names an adapter or a tf_keras legacy
    optimizer class (load_impl). Without `load` nothing is imported: the runner leaves that to the
    process that runs the checks (conformance/plugin.py), so a run imports the port's framework once."""
    from adapters import BUNDLED, FRAMEWORKS

    if spec in BUNDLED:
        missing = [name for name in FRAMEWORKS.get(spec, ()) if importlib.util.find_spec(name) is None]
        if missing:
            raise ValueError(f"--impl {spec}: needs {', '.join(missing)}, not installed in this environment; "
                             f"run it with nox -s \"conformance(impl='{spec}')\" or pip install "
                             f"'composite-optimizer-conformance[{EXTRAS.get(spec, spec)}]'")
        return
    if ":" not in spec:
        raise ValueError(f"--impl {spec!r}: neither a bundled adapter ({', '.join(sorted(BUNDLED))}) nor MODULE:ATTR")
    module_name, _, attr = spec.partition(":")
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ValueError(f"--impl {spec}: no module named {module_name!r} on the Python path "
                         "(set PYTHONPATH to the directory that holds it)")
    if load:
        load_impl(spec)


def load_impl(spec: str):
    """The adapter that MODULE:ATTR `spec` names; ValueError, in one line, if importing the module,
    finding ATTR or building the adapter fails."""
    from adapters import resolve
    from conformance.isolation import quiet_stderr

    try:
        with quiet_stderr():  # Its framework's start-up notices; the worker's run shows what matters.
            return resolve(spec)
    except AttributeError as exc:
        raise ValueError(f"--impl {spec}: {exc}") from None
    except TypeError as exc:  # load_adapter: not an adapter
        raise ValueError(f"--impl {spec}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed to import or build: say so, in one line.
        raise ValueError(f"--impl {spec}: importing or building it raised {type(exc).__name__}: {exc}") from None


# Bundled adapter -> the pyproject extra that installs its frameworks (noxfile.IMPL_EXTRAS names them all).
EXTRAS = {"tfrs": "tfrs", "optax": "jax", "keras": "keras", "keras-jax": "keras,jax", "keras-torch": "keras,torch",
          "torchrec": "torchrec"}


def check_device_present(spec: str, device: str) -> None:
    """DeviceUnavailable (from the adapter) unless the device is present. Imports the framework, so
    it is called only for devices that may be absent (gpu, tpu)."""
    from adapters import resolve

    resolve(spec).set_device(device)


def check_expectations(path: str, tests: pathlib.Path) -> None:
    """ValueError naming the file (and line) unless it is a TOML expectations file whose every entry
    names an existing check and gives a reason."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ValueError(f"--expectations {path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"--expectations {path}: not valid TOML: {exc}") from None
    entries = data.get("expected_failure", [])
    if not isinstance(entries, list):
        raise ValueError(f"--expectations {path}: `expected_failure` must be an array of tables ([[expected_failure]])")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("check") or not entry.get("reason"):
            raise ValueError(f"--expectations {path}: [[expected_failure]] #{index + 1} needs `check` and `reason`: {entry}")
        check_exists(entry["check"], tests, what=f"--expectations {path}: [[expected_failure]] #{index + 1}")


def check_exists(check: str, tests: pathlib.Path, *, what: str) -> None:
    """ValueError unless `check` (file::name, optionally [params]) names a check of the suite."""
    file_name, sep, name = check.partition("::")
    known = check_names(tests)
    if not sep or file_name not in known:
        raise ValueError(f"{what}: {check!r} is not a check id (file::name, e.g. "
                         f"test_routing.py::test_steps_equal_sub_optimizers_alone); files: {', '.join(sorted(known))}")
    function = name.split("[", 1)[0]
    if function not in known[file_name]:
        raise ValueError(f"{what}: {file_name} has no check {function!r}")


@functools.lru_cache(maxsize=None)
def check_names(tests: pathlib.Path) -> Dict[str, Set[str]]:
    """file name -> the names of the check functions it defines, read from the source."""
    names = {}
    for path in sorted(tests.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names[path.name] = {node.name for node in ast.walk(tree)
                            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.startswith(("test", "Test"))}
        # Stateful machines are collected under the name they are bound to: TestX = Machine.TestCase.
        names[path.name] |= {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                             for target in node.targets if isinstance(target, ast.Name) and target.id.startswith("test")}
    return names


def node_id(check: str, tests: pathlib.Path) -> str:
    """The pytest node id of a check id (file::name[params])."""
    return str(tests / check)


def check_selection(pytest_args: list) -> None:
    """ValueError naming a `-k` or `-m` expression pytest could not parse. pytest parses them in the
    worker processes, where a mistake would end the run as an internal error, not a usage error."""
    from _pytest.mark.expression import Expression  # Guarded by tests/conformance/test_runner.py.

    for flag, expression in _selection_expressions(pytest_args):
        try:
            Expression.compile(expression)
        except Exception as exc:  # noqa: BLE001 - SyntaxError since pytest 8.4, ParseError before.
            raise ValueError(f"{flag} {expression!r}: not a valid expression: {exc}") from None


def _selection_expressions(pytest_args: list):
    args = iter(pytest_args)
    for arg in args:
        for flag in ("-k", "-m"):
            if arg == flag:
                yield flag, next(args, "")
            elif arg.startswith(flag) and not arg.startswith("--"):
                yield flag, arg[len(flag):]


def check_avoid(pytest_args: list) -> None:
    """ValueError naming a `--avoid` situation that conformance/situations.py does not define."""
    from conformance import situations

    args = iter(pytest_args)
    for arg in args:
        value = next(args, "") if arg == "--avoid" else arg.split("=", 1)[1] if arg.startswith("--avoid=") else None
        if value is None:
            continue
        unknown = [name for name in (n.strip() for n in value.split(",")) if name and name not in situations.SITUATIONS]
        if unknown:
            raise ValueError(f"--avoid {value!r}: unknown situation(s) {', '.join(unknown)}; "
                             f"known: {', '.join(situations.SITUATIONS)}")
