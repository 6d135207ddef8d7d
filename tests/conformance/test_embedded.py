"""The checks inside a port's own pytest run, selected in the port's conftest.py (README
"Or from your own test suite"): same verdicts and reports as `python -m conformance`."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conformance_subprocess import REPO, run_conformance

CHECK = "test_routing.py::test_steps_equal_sub_optimizers_alone"


def _port(tmp_path, impl: str):
    """A port's repository: a conftest.py choosing `impl`, and one test of its own."""
    port = tmp_path / "port"
    port.mkdir()
    (port / "conftest.py").write_text(textwrap.dedent(f'''
        pytest_plugins = ["conformance.plugin"]


        def pytest_conformance_implementation(config):
            return {impl!r}
    '''), encoding="utf-8")
    (port / "test_port.py").write_text("def test_port_own():\n    assert True\n", encoding="utf-8")
    return port


def _pytest(port, *args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "1", *args],
                          cwd=port, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("impl, code", [("reference", 0), ("tests.conformance.canaries:DropsLastGroup", 1)])
def test_a_ports_own_pytest_run_gives_the_runners_verdict(tmp_path, impl, code):
    port = _port(tmp_path, impl)
    done = _pytest(port, "-k", "steps_equal_sub_optimizers_alone or port_own", "--profile", "dev", "--no-shrink",
                   "--report-dir", str(tmp_path / "embedded"))
    output = done.stdout[-3000:] + done.stderr[-2000:]
    assert done.returncode == code, output
    assert " 1 passed" in done.stdout.splitlines()[-1] or " 2 passed" in done.stdout.splitlines()[-1], output  # Its own test ran.
    [path] = (tmp_path / "embedded").glob("*.json")
    embedded = json.loads(path.read_text(encoding="utf-8"))
    assert [c["id"] for c in embedded["checks"]] == [CHECK], embedded["checks"]  # The port's own test is not a check.

    runner = run_conformance(impl, ["--check", CHECK, "--profile", "dev"], tmp_path / "runner")
    assert runner.returncode == code, runner.describe()
    assert embedded["checks"][0]["status"] == runner.report["checks"][0]["status"]
    assert embedded["checks"][0]["examples_run"] == runner.report["checks"][0]["examples_run"] or code == 1


def test_pyargs_runs_only_the_checks(tmp_path):
    port = _port(tmp_path, "reference")
    done = _pytest(port, "--pyargs", "conformance.tests", "-k", "empty_call", "--profile", "dev",
                   "--report-dir", str(tmp_path / "reports"), "-v")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "test_port_own" not in done.stdout and "test_empty_call_is_not_a_step" in done.stdout
