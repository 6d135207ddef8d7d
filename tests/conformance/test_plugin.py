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


@pytest.mark.parametrize("device", ["replicas:2", "ps:2"])
def test_a_first_pass_on_several_devices_runs_the_device_checks_first(device):
    """-x's first pass on replicas, workers or parameter servers starts with the checks that exist
    for the device (DIST-*): there each example costs about a second, and a fault only the device
    shows would otherwise wait for every other check's first examples."""
    import importlib
    import pathlib
    import subprocess
    import sys
    import warnings

    with warnings.catch_warnings():  # The suite's markers are registered by its plugin, not loaded here.
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        test_distribution = importlib.import_module("conformance.tests.test_distribution")

    def collected(*extra):
        done = subprocess.run([sys.executable, "-m", "conformance", "--collect-only", "-q", "-p", "no:cacheprovider",
                               "--device", device, *extra], capture_output=True, text=True, timeout=300,
                              cwd=pathlib.Path(conformance_tests.__file__).parents[1])
        return [line for line in done.stdout.splitlines() if "::" in line]

    device_checks = {name for name in dir(test_distribution) if name.startswith("test_")
                     and any(m.name == "needs" and {"replicas", "parameter_servers"} & set(m.args)
                             for m in getattr(getattr(test_distribution, name), "pytestmark", []))}
    first_pass, full_pass = collected("--first-pass"), collected()
    assert len(device_checks) >= 3 and sorted(first_pass) == sorted(full_pass)
    head = first_pass[:len(device_checks)]
    assert {line.rsplit("::", 1)[1] for line in head} == device_checks, head
    assert full_pass[:len(device_checks)] != head, "the full pass keeps the owners-first order"


@pytest.mark.parametrize("device,first_pass,unshrunk", [
    ("ps:2", True, True), ("workers:2", True, True),
    ("replicas:2", True, False), ("cpu", True, False), ("ps:2", False, False)])
def test_only_a_first_pass_on_several_processes_reports_failures_unshrunk(device, first_pass, unshrunk):
    """There each example is a round trip through the cluster: -x's first pass reports what it finds
    as found, so it stops within seconds; every other run shrinks (and says which it did)."""
    from types import SimpleNamespace

    from conformance.plugin import _first_pass_unshrunk

    options = {"--first-pass": first_pass, "--device": device}
    assert _first_pass_unshrunk(SimpleNamespace(getoption=options.__getitem__)) is unshrunk
