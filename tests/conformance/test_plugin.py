"""The conformance plugin's reliance on hypothesis internals, checked so an upgrade cannot
silently change how long (and how reproducibly) a failing check shrinks."""

from hypothesis.internal.conjecture import engine

from conformance import tests as conformance_tests
from conformance.plugin import SHRINK_LIMITS


def test_shrink_limits_reach_hypothesis():
    """plugin.pytest_configure sets these two module constants; both must still exist and be read."""
    assert isinstance(engine.MAX_SHRINKS, int) and isinstance(engine.MAX_SHRINKING_SECONDS, (int, float))
    source = open(engine.__file__, encoding="utf-8").read()
    assert "self.shrinks >= MAX_SHRINKS" in source
    assert "MAX_SHRINKING_SECONDS" in source
    assert all(shrinks > 0 and seconds > 0 for shrinks, seconds in SHRINK_LIMITS.values())


def test_broad_checks_run_first_in_file_order():
    """The plugin puts every check marked `broad` before the others (so `-x` rejects early), the
    two that need replicas first of all, keeping file order within each part."""
    import ast
    import pathlib
    import subprocess
    import sys

    tests_dir = pathlib.Path(conformance_tests.__file__).parent
    broad = set()
    for path in sorted(tests_dir.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Attribute) and d.attr == "broad" for d in node.decorator_list):
                broad.add(f"{path.name}::{node.name}")
    assert broad, "no check is marked broad"
    done = subprocess.run([sys.executable, "-m", "conformance", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, timeout=300, cwd=tests_dir.parents[1])
    ids = [line.split("[")[0] for line in done.stdout.splitlines() if "::" in line]
    ids = list(dict.fromkeys(ids))  # Parametrized checks appear once per case.
    assert set(ids[:len(broad)]) == broad, done.stdout[-2000:]
    assert all("test_distribution.py" in i for i in ids[:2]), "the broad checks that need replicas come first"
    rest = ids[len(broad):]
    assert rest == sorted(rest, key=lambda i: i.split("::")[0]), "the other checks left file order"
