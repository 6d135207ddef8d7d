"""The conformance plugin's reliance on hypothesis internals, checked so an upgrade cannot
silently change how long (and how reproducibly) a failing check shrinks."""

import pytest
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


def test_owners_of_a_situation_run_before_the_checks_that_need_it():
    """The plugin orders the checks so that every owner of a situation (conformance/situations.py)
    runs before each check that uses or relies on it; the focused owners come first of all (so `-x`
    stops a fault that only a focused check sees early)."""
    import importlib
    import pathlib
    import warnings
    import subprocess
    import sys

    from conformance import situations

    tests_dir = pathlib.Path(conformance_tests.__file__).parent
    done = subprocess.run([sys.executable, "-m", "conformance", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, timeout=300, cwd=tests_dir.parents[1])
    ids = [f"{line.split('::')[0].rsplit('/', 1)[-1]}::{line.split('::', 1)[1]}" for line in done.stdout.splitlines()
           if "::" in line]
    assert len(ids) > 40, done.stdout[-2000:]

    def declaration(check):
        module, name = check.split("::")
        with warnings.catch_warnings():  # The suite's markers are registered by its plugin, not loaded here.
            warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
            module = importlib.import_module(f"conformance.tests.{module[:-3]}")
        function = getattr(module, name.split("[")[0])
        marks = getattr(function, "pytestmark", [])
        names = lambda kind: tuple(n for m in marks if m.name == kind for n in m.args)  # noqa: E731
        owns = names("owns")
        if name.startswith("test_one_kind_steps_like_itself_alone["):
            owns += (f"kind:{name.split('[')[1][:-1]}",)
        return situations.Declaration(owns, names("uses"), names("relies_on"))

    declarations = {check: declaration(check) for check in ids}
    position = {check: i for i, check in enumerate(ids)}
    for check, declared in declarations.items():
        for needed in declared.needed():
            owners = [c for c, d in declarations.items() if needed in d.owns and c != check]
            late = [c for c in owners if position[c] > position[check]]
            assert not late, f"{check} needs {needed!r}, whose owners {late} run after it"
    assert all(declarations[c].owns for c in ids[:7]), f"the focused kind checks do not come first: {ids[:7]}"
