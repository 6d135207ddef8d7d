"""`python -m conformance` as a CI pipeline meets it: exit codes, bad input, ports that hang or
crash, reports that are never silently lost, and reproduce commands that run as printed.

Each test runs the suite in a subprocess, as a user does (tests/conformance/conformance_subprocess.py).
"""

import json
import os
import pathlib
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import misbehaving
from conformance_subprocess import REPO, run_conformance

MISBEHAVING = "tests.conformance.misbehaving:{}"
# The checks the misbehaving canaries run: their one bad check and its neighbours in the same area.
AREA = ["-k", "tf_keras_api"]


def _cli(*args, cwd=REPO, env=None):
    """`python -m conformance ARGS` expected to stop before any check: (exit code, stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "conformance", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})
    return done.returncode, done.stdout, done.stderr


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("args, names", [
    (["--device", "banana"], "'banana'"),
    (["--device", "replicas:0"], "'replicas:0'"),
    (["--device", "replicas:abc"], "'replicas:abc'"),
    (["--device=cpu:2"], "'cpu:2'"),
    (["--impl", "doesnotexist"], "'doesnotexist'"),
    (["--impl", "os:path"], "os:path"),
    (["--impl", "mymodule:Nope"], "'mymodule'"),
    (["--impl", "os:Nope"], "'Nope'"),
    # The port is loaded where the checks run: a worker of one or two, or the runner's own process.
    (["--impl", "os:Nope", "-n", "2"], "'Nope'"),
    (["--impl", "os:Nope", "-p", "no:xdist"], "'Nope'"),
    (["--timeout", "0"], "--timeout 0"),
    (["--check", "test_routing.py::test_nope"], "'test_nope'"),
    (["--avoid", "absent_group,teleportation"], "teleportation"),
    (["-k", "("], "-k '('"),
    (["--profile", "fast"], "'fast'"),
    (["--bogus-option"], "--bogus-option"),
])
def test_usage_errors_exit_2_in_one_line_before_any_check(tmp_path, args, names):
    code, out, err = _cli(*args, "--report-dir", str(tmp_path / "runs"))
    assert code == 2, (code, out[-2000:], err[-2000:])
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert 1 <= len(lines) <= 2 and any(names in line for line in lines), err
    assert "INTERNALERROR" not in out + err and "Traceback" not in out + err, out + err
    assert not (tmp_path / "runs").exists(), "a refused run wrote reports"


@pytest.mark.parametrize("module, says", [
    ("import os\nos.abort()\n", "loading it killed the process: Aborted (signal SIGABRT); it was at File"),
    ("import time\ntime.sleep(600)\n", "loading it did not finish within the per-check limit (--timeout); it was at File"),
], ids=["crashes", "hangs"])
def test_a_port_that_kills_or_hangs_its_loading_is_refused_saying_so(tmp_path, module, says):
    """The port is loaded by the worker that runs the checks: its death or hang there ends the run
    as the usage error it is, naming where the port was, not as workers restarted in vain."""
    (tmp_path / "loadsbadly.py").write_text(module, encoding="utf-8")
    code, out, err = _cli("--impl", "loadsbadly:Port", "--timeout", "5", "--report-dir", str(tmp_path / "runs"),
                          env={"PYTHONPATH": str(tmp_path)})
    assert code == 2, (code, out[-2000:], err[-2000:])
    lines = [line for line in err.splitlines() if line.startswith("conformance: error:")]
    assert len(lines) == 1 and "--impl loadsbadly:Port: " + says in lines[0] and "loadsbadly.py" in lines[0], err
    assert "replacing crashed worker" not in out + err and "INTERNALERROR" not in out + err, out + err
    assert not (tmp_path / "runs").exists(), "a refused run wrote reports"


def test_expectations_file_missing_or_malformed_is_named_with_its_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[expected_failure]]\ncheck = "unterminated\n', encoding="utf-8")
    for path, says in ((tmp_path / "missing.toml", "cannot read"), (bad, "line 2")):
        code, out, err = _cli("--expectations", str(path), "--report-dir", str(tmp_path / "runs"))
        assert code == 2 and str(path) in err and says in err, (code, err)
        assert "INTERNALERROR" not in out + err


def test_baseline_of_another_spec_version_is_refused_before_any_check(tmp_path):
    baseline = json.loads((REPO / "tests/reports/fixtures/reference-cpu.json").read_text(encoding="utf-8"))
    baseline["spec_version"] = "0.9"
    path = tmp_path / "old.json"
    path.write_text(json.dumps(baseline), encoding="utf-8")
    code, out, err = _cli("--baseline", str(path), "--report-dir", str(tmp_path / "runs"))
    assert code == 2 and "spec 0.9" in err, (code, err)
    assert "passed" not in out and not (tmp_path / "runs").exists()


def test_device_all_runs_the_present_devices_and_says_which_are_absent(tmp_path):
    run = run_conformance("reference", ["--device=all", "--check", "test_iterations.py::test_empty_call_is_not_a_step",
                                        "--profile", "dev"], tmp_path, timeout=300)
    if "no gpu here" not in run.output:
        pytest.skip("this machine has a GPU: --device all runs it too")
    assert run.returncode == 0, run.describe()
    assert "no tpu here, not run" in run.output, run.describe()
    assert (tmp_path / "reference-cpu.partial.json").exists(), run.describe()


# --------------------------------------------------------------------------- ports that hang or crash


@pytest.mark.parametrize("canary, says", [
    ("Hangs", "timed out: the check ran past its limit of 8 s"),
    ("HangsHoldingTheGil", "inside native code that never returned to Python"),
    ("Aborts", "died: Aborted (signal SIGABRT)"),
])
def test_a_hanging_or_crashing_port_costs_one_check_and_the_reports_are_complete(tmp_path, canary, says):
    run = run_conformance(MISBEHAVING.format(canary), ["--timeout", "8", *AREA], tmp_path, timeout=400)
    assert run.returncode == 1, run.describe()
    report = run.report
    assert report is not None, run.describe()
    errors = run.checks_with("error")
    assert [c["id"] for c in errors] == [misbehaving.CHECK], run.describe()
    message = errors[0]["message"]
    assert says in message and "misbehaving.py" in message, message
    if canary == "Hangs":  # The watchdog saw the check's frame: the example it was running.
        assert "example being run: case=Case(" in message, message
    others = [c for c in report["checks"] if c["id"] != misbehaving.CHECK]
    assert len(others) == 15 and all(c["status"] == "passed" for c in others), run.describe()
    suite = ET.parse(tmp_path / f"{report_stem(run)}.xml").getroot().find("testsuite")
    assert suite.get("tests") == "16" and int(suite.get("errors")) + int(suite.get("failures")) == 1, \
        ET.tostring(suite)[:500]


def report_stem(run) -> str:
    from conformance import run_name

    stem = run_name(run.impl, run.device)
    return f"{stem}.partial" if run.report.get("partial") else stem


# --------------------------------------------------------------------------- reports never lost


def test_a_partial_run_does_not_replace_a_full_runs_report(tmp_path):
    full = tmp_path / "reference-cpu.json"
    full.write_text('{"a full run": true}', encoding="utf-8")
    run = run_conformance("reference", ["-k", "empty_call", "--profile", "dev"], tmp_path)
    assert run.returncode == 0, run.describe()
    assert full.read_text(encoding="utf-8") == '{"a full run": true}'
    partial = json.loads((tmp_path / "reference-cpu.partial.json").read_text(encoding="utf-8"))
    assert partial["partial"] is True and "-k 'empty_call'" in partial["partial_reason"], partial["partial_reason"]
    assert (tmp_path / "reference-cpu.partial.xml").exists()

    run = run_conformance("reference", ["-k", "empty_call", "--profile", "dev", "--replace-report"], tmp_path)
    assert run.returncode == 0 and json.loads(full.read_text(encoding="utf-8"))["partial"] is True, run.describe()


def test_a_selection_that_matches_no_check_is_a_usage_error_and_touches_no_report(tmp_path):
    full = tmp_path / "reference-cpu.xml"
    full.write_text("a full run's JUnit", encoding="utf-8")
    run = run_conformance("reference", ["-k", "no_check_is_called_this"], tmp_path)
    assert run.returncode == 2 and "matches no check" in run.output, run.describe()
    assert [p.name for p in tmp_path.iterdir()] == ["reference-cpu.xml"] and full.read_text() == "a full run's JUnit"


def test_stopping_at_the_first_failure_is_marked_partial(tmp_path):
    run = run_conformance("tests.conformance.canaries:DropsLastGroup", ["-x", "--profile", "dev"], tmp_path)
    assert run.returncode == 1, run.describe()
    report = json.loads((tmp_path / "tests.conformance.canaries_DropsLastGroup-cpu.partial.json").read_text())
    assert report["partial"] and "selected checks ran" in report["partial_reason"], report["partial_reason"]
    assert not (tmp_path / "tests.conformance.canaries_DropsLastGroup-cpu.json").exists()


def test_x_stops_in_a_first_pass_of_few_examples_over_every_check(tmp_path):
    """-x: a first pass of FIRST_PASS_EXAMPLES examples over every check, so a fault that only a check
    late in the order sees (a doubly listed variable accepted) stops the run without every earlier
    check running its full count first."""
    from conformance.plugin import FIRST_PASS_EXAMPLES

    run = run_conformance("tests.conformance.canaries:AcceptsDoublyListed", ["-x"], tmp_path)
    assert run.returncode == 1, run.describe()
    report = run.report
    assert report["partial_reason"].startswith("first pass"), report["partial_reason"]
    assert [c["id"] for c in run.checks_with("failed")] == ["test_errors.py::test_doubly_listed_variable_is_refused"]
    # Every check, those whose count is a share of the profile's included; a failing one also shrinks.
    passed = [c for c in report["checks"] if c["status"] == "passed" and c["examples_run"] is not None]
    assert all(c["examples_run"] <= FIRST_PASS_EXAMPLES for c in passed), [(c["id"], c["examples_run"]) for c in passed]
    assert max(c["examples_run"] or 0 for c in report["checks"]) >= FIRST_PASS_EXAMPLES


def test_x_on_a_passing_implementation_runs_the_full_pass_after_the_first(tmp_path):
    run = run_conformance("reference", ["-x", "-k", "test_sub_counters or test_empty_call"], tmp_path)
    assert run.returncode == 0, run.describe()
    assert not run.report["partial_reason"].startswith("first pass"), run.report["partial_reason"]
    assert {c["examples_run"] for c in run.report["checks"]} == {50}, run.describe()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference-cpu.partial.json", "reference-cpu.partial.xml"]


def test_the_projects_own_tests_write_no_report_into_reports_runs(tmp_path):
    """tests/conftest.py points $CONFORMANCE_REPORT_DIR away from reports/runs/, which is the
    default; a collect-only run writes no report at all (it used to leave an empty JUnit file)."""
    assert os.environ["CONFORMANCE_REPORT_DIR"] and "reports" not in pathlib.Path(os.environ["CONFORMANCE_REPORT_DIR"]).parts[-2:]
    runs = tmp_path / "reports" / "runs"
    runs.mkdir(parents=True)
    (runs / "reference-cpu.xml").write_text("the user's", encoding="utf-8")
    env = {"PYTHONPATH": str(REPO), "CONFORMANCE_REPORT_DIR": ""}
    done = subprocess.run([sys.executable, "-m", "conformance", "--collect-only", "-q", "--report-dir", str(runs)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert [p.name for p in runs.iterdir()] == ["reference-cpu.xml"] and (runs / "reference-cpu.xml").read_text() == "the user's"


# --------------------------------------------------------------------------- reproduce commands


def test_reproduce_command_of_a_parametrized_check_runs_as_printed(tmp_path):
    check = "test_tf_keras_api.py::test_malformed_entries_are_refused_naming_the_index[same optimizer twice]"
    run = run_conformance("tfrs", ["--check", check], tmp_path / "first")
    assert run.returncode == 1, run.describe()
    [failed] = run.checks_with("failed")
    command = failed["reproduce"]
    assert command.startswith("PYTHONPATH=") and "--impl tfrs" in command and shlex.quote(check) in command, command
    # As a user pastes it: a shell, in the repository, with another report directory.
    done = subprocess.run(["bash", "-c", f"{command} --report-dir {shlex.quote(str(tmp_path / 'again'))}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    again = json.loads((tmp_path / "again" / "tfrs-cpu.partial.json").read_text(encoding="utf-8"))
    assert done.returncode == 1 and [c["id"] for c in again["checks"]] == [check], done.stdout[-2000:]
    assert again["checks"][0]["status"] == "failed"


# --------------------------------------------------------------------------- output


def test_framework_start_up_noise_is_not_repeated(tmp_path):
    run = run_conformance("reference", ["-k", "empty_call", "--profile", "dev"], tmp_path)
    assert run.returncode == 0, run.describe()
    for notice in ("cudart_stub", "oneDNN custom operations"):
        assert run.output.count(notice) <= 1, run.output[:3000]


# --------------------------------------------------------------------------- several workers


def test_two_workers_give_the_verdicts_and_examples_of_one(tmp_path):
    """-n 2 (pytest-xdist) merges both workers' results into one report: the same checks, verdicts
    and example counts as one worker (the ci profile is derandomized)."""
    subset = ["-k", "iterations or weight_order or distribution"]
    one = run_conformance("reference", subset, tmp_path / "one")
    two = run_conformance("reference", [*subset, "-n", "2"], tmp_path / "two")
    assert one.returncode == 0 and two.returncode == 0, one.describe() + two.describe()
    assert "2 workers" in two.output, two.describe()

    def verdicts(run):
        return {c["id"]: (c["status"], c["examples_run"]) for c in run.report["checks"]}

    assert verdicts(one) == verdicts(two) and len(verdicts(one)) >= 9, (verdicts(one), verdicts(two))
    assert (tmp_path / "two" / "reference-cpu.partial.xml").exists()
