"""`python -m conformance --baseline`, end to end with real runs, as CI uses it.

The baseline is a real report of the reference; the candidate build is a canary (the reference
counting `iterations` once per group, tests/conformance/canaries.py), so the gate must fail the
candidate naming ITER-1 as a regression, and pass the reference rerun against the same baseline.
Three subprocesses on the iterations checks only, with the ci profile (derandomized, no database).
"""

import re

from tests.conformance.conformance_subprocess import run_conformance

SELECT = ["-p", "no:logging", "-k", "iterations"]
CANARY = "tests.conformance.canaries:CountsEachGroup"


def requirement_ids_in(text):
    return re.findall(r"\b[A-Z]+-\d+\b", text)


def test_the_gate_fails_a_regressed_candidate_and_passes_an_unchanged_rerun(tmp_path):
    baseline_run = run_conformance("reference", SELECT, tmp_path / "baseline")
    assert baseline_run.returncode == 0, baseline_run.describe()
    baseline = tmp_path / "baseline" / "reference-cpu.partial.json"  # -k: a partial run's report
    assert baseline.exists(), baseline_run.describe()
    assert baseline_run.report["requirements"]["ITER-1"]["status"] == "passed"

    candidate = run_conformance(CANARY, [*SELECT, "--baseline", str(baseline)], tmp_path / "candidate")
    assert candidate.returncode == 1, candidate.describe()  # 1: failed checks and a regression; 2 would be a refusal
    out = candidate.output
    gate = out[out.index("Conformance gate FAILED"):]
    assert "note: implementation differs: baseline 'reference'" in gate, candidate.describe()
    regressions = gate[gate.index("REGRESSIONS"):gate.index("IMPROVEMENTS") if "IMPROVEMENTS" in gate else None]
    # ITER-1 is the first requirement the gate names, and it is named as a regression, with its check.
    assert requirement_ids_in(gate)[0] == "ITER-1", gate
    assert "ITER-1: passed -> failed" in regressions, gate
    assert "test_iterations.py::test_counter_advances_once_per_step: passed -> failed" in regressions, gate
    # Runs as printed: the interpreter and PYTHONPATH of the run, quoted node ids (test_runner.py runs one).
    assert "reproduce: PYTHONPATH=" in regressions and f"-m conformance --impl {CANARY} " in regressions, gate
    # The update command names the file this run wrote.
    written = tmp_path / "candidate" / "tests.conformance.canaries_CountsEachGroup-cpu.partial.json"
    assert written.exists()
    assert str(written) in gate.splitlines()[2], gate  # "  current:  <path> (created ...)"

    rerun = run_conformance("reference", [*SELECT, "--baseline", str(baseline)], tmp_path / "rerun")
    assert rerun.returncode == 0, rerun.describe()
    assert "Conformance gate passed: no regression (reference on cpu, profile ci)." in rerun.output, rerun.describe()
    assert "REGRESSIONS" not in rerun.output


def test_a_baseline_the_gate_cannot_use_is_refused_before_the_suite_runs(tmp_path):
    missing = tmp_path / "no-such-baseline.json"
    run = run_conformance("reference", [*SELECT, "--baseline", str(missing)], tmp_path / "runs")
    assert run.returncode == 2, run.describe()
    assert f"error: --baseline: {missing}: cannot read" in run.output, run.describe()
    assert run.report is None  # refused before any check ran

    # A baseline in the directory the run writes to would be overwritten before the comparison.
    (tmp_path / "runs").mkdir()
    own = tmp_path / "runs" / "reference-cpu.json"
    own.write_text("{}", encoding="utf-8")
    run = run_conformance("reference", [*SELECT, "--baseline", str(own)], tmp_path / "runs")
    assert run.returncode == 2, run.describe()
    assert "is the file this run writes its report to" in run.output, run.describe()
    assert own.read_text(encoding="utf-8") == "{}"
