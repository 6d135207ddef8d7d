"""The baseline gate: regressions fail the run and come first; improvements say how to accept them."""

import io
import json
import re

import pytest

from reports import schema
from reports.cli import gate
from reports.gate import compare
from synthetic_reports import check, good_checks, make_report, tfrs_report, with_checks

CENTRAL = "test_routing.py::test_central_property"
ITER = "test_iter.py::test_iterations_advance_once"


def requirement_ids_in(text):
    return re.findall(r"\b[A-Z]+-\d+\b", text)


def test_an_unchanged_report_passes_the_gate():
    baseline = make_report()
    result = compare(baseline, make_report(created="2026-11-25T00:00:00+00:00"))
    assert result.exit_code == 0
    assert result.regressions == result.improvements == result.excused == ()
    assert result.disappeared_checks == result.new_checks == ()
    text = result.format()
    assert text.startswith("Conformance gate passed: no regression (reference on cpu, profile ci).")
    assert "REGRESSIONS" not in text and "IMPROVEMENTS" not in text


def test_a_failed_requirement_that_passed_in_the_baseline_is_a_regression_named_first():
    baseline = with_checks(make_report(), {ITER: {"status": schema.FAILED}})
    current = with_checks(
        make_report(),
        {CENTRAL: {"status": schema.FAILED, "message": "AssertionError: variables differ", "example": "steps=[]"}},
    )  # ROUTE-9 regressed, ITER-1 improved
    result = compare(baseline, current, baseline_path="reports/baselines/reference-cpu.json")
    assert result.exit_code == 1
    assert [(c.requirement, c.baseline, c.current) for c in result.regressions] == [("ROUTE-9", "passed", "failed")]
    assert [(c.id, c.baseline, c.current) for c in result.regressions[0].checks] == [(CENTRAL, "passed", "failed")]
    assert [c.requirement for c in result.improvements] == ["ITER-1"]
    text = result.format()
    assert text.startswith("Conformance gate FAILED: 1 regression (reference on cpu, profile ci).")
    assert requirement_ids_in(text)[0] == "ROUTE-9"
    assert text.index("REGRESSIONS") < text.index("IMPROVEMENTS")
    regression = text[text.index("REGRESSIONS"):text.index("IMPROVEMENTS")]
    assert "ROUTE-9: passed -> failed" in regression
    assert f"{CENTRAL}: passed -> failed" in regression
    assert "message: AssertionError: variables differ" in regression
    assert "reproduce: python -m conformance --impl reference -k test_central_property" in regression


def test_an_error_is_a_regression_too():
    current = with_checks(make_report(), {ITER: {"status": schema.ERROR, "message": "RuntimeError"}})
    result = compare(make_report(), current)
    assert result.exit_code == 1
    assert [(c.requirement, c.current) for c in result.regressions] == [("ITER-1", "error")]


def test_a_check_that_breaks_under_an_already_failing_requirement_is_a_regression():
    # ROUTE-9 has two checks; the baseline already failed one of them, the current run fails both.
    compiled = "test_routing.py::test_central_property_compiled"
    baseline = with_checks(make_report(), {CENTRAL: {"status": schema.FAILED}})
    current = with_checks(make_report(), {CENTRAL: {"status": schema.FAILED}, compiled: {"status": schema.FAILED}})
    result = compare(baseline, current)
    assert result.exit_code == 1
    assert [(c.requirement, c.baseline, c.current) for c in result.regressions] == [("ROUTE-9", "failed", "failed")]
    assert [c.id for c in result.regressions[0].checks] == [compiled]


def test_a_check_citing_two_requirements_regresses_both():
    atom = "test_atom.py::test_errors_change_nothing"
    result = compare(make_report(), with_checks(make_report(), {atom: {"status": schema.FAILED}}))
    assert [c.requirement for c in result.regressions] == ["ATOM-1", "ROUTE-4"]


def test_improvements_are_listed_with_the_command_that_updates_the_baseline():
    baseline = with_checks(make_report(), {ITER: {"status": schema.FAILED}})
    result = compare(
        baseline,
        make_report(),
        baseline_path="reports/baselines/reference-cpu.json",
        current_path="reports/runs/reference-cpu-ci.json",
    )
    assert result.exit_code == 0
    assert [(c.requirement, c.baseline, c.current) for c in result.improvements] == [("ITER-1", "failed", "passed")]
    text = result.format()
    assert "IMPROVEMENTS" in text and "ITER-1: failed -> passed" in text
    assert "    python -m conformance --impl reference --device cpu --profile ci --report-dir reports/runs\n" in text
    assert "    cp reports/runs/reference-cpu-ci.json reports/baselines/reference-cpu.json\n" in text


def test_an_unexpected_pass_names_the_expectations_entry_to_remove():
    baseline = with_checks(tfrs_report(), {"test_conf.py::test_get_config_json": {"status": schema.EXPECTED_FAILURE}})
    current = tfrs_report()  # test_get_config_json: unexpected_pass
    result = compare(baseline, current, baseline_path="b.json")
    assert [(c.requirement, c.baseline, c.current) for c in result.improvements] == [
        ("CONF-1", "expected_failure", "unexpected_pass")
    ]
    text = result.format()
    assert "Remove these [[expected_failure]] entries from adapters/expectations/tfrs.toml (they pass now):" in text
    assert '    check = "test_conf.py::test_get_config_json"  (CONF-1)' in text
    assert ("python -m conformance --impl tfrs --device cpu --profile ci "
            "--expectations adapters/expectations/tfrs.toml --report-dir reports/runs") in text


def test_disappeared_and_excused_checks_are_reported_without_failing_the_gate():
    current = with_checks(
        make_report(),
        {CENTRAL: None, ITER: {"status": schema.EXPECTED_FAILURE, "reason": "declared after the fact"}},
    )
    result = compare(make_report(), current)
    assert result.exit_code == 0
    assert [c.id for c in result.disappeared_checks] == [CENTRAL]
    assert [(c.requirement, c.current) for c in result.excused] == [("ITER-1", "expected_failure")]
    text = result.format()
    assert f"DISAPPEARED CHECKS (in the baseline, absent now):\n  {CENTRAL}  (ROUTE-9; was passed)" in text
    assert "NEEDS REVIEW" in text and "ITER-1: passed -> expected_failure" in text


def test_the_update_command_reruns_the_recorded_impl_spec_device_and_profile():
    current = make_report(device="replicas:2", profile="thorough")
    current["command"] = "python -m conformance --impl my_port.adapter:MyAdapter --device replicas:2 --baseline b.json"
    baseline = with_checks(current, {ITER: {"status": schema.FAILED}})
    commands = compare(baseline, current, baseline_path="b.json").update_baseline_commands()
    assert commands == (
        "python -m conformance --impl my_port.adapter:MyAdapter --device replicas:2 --profile thorough --report-dir reports/runs",
        "cp 'reports/runs/<the report JSON that run writes>' b.json",
    )


def test_a_candidate_build_is_compared_with_the_previous_builds_report_and_noted():
    # CI compares a new build (another --impl) with the report of the last one: allowed, and said.
    current = with_checks(make_report(name="my_pkg:Candidate"), {ITER: {"status": schema.FAILED}})
    result = compare(make_report(), current)
    assert result.exit_code == 1
    assert [c.requirement for c in result.regressions] == ["ITER-1"]
    text = result.format()
    assert text.startswith("Conformance gate FAILED: 1 regression (my_pkg:Candidate on cpu, profile ci).")
    assert ("  note: implementation differs: baseline 'reference', current 'my_pkg:Candidate' "
            "(compared as a new build against the previous build's report).") in text


def test_a_baseline_of_another_spec_version_is_refused(tmp_path):
    current = make_report()
    current["spec_version"] = "2.0"
    with pytest.raises(ValueError, match=r"spec version '1\.0' but the current run is against '2\.0'; requirement ids"):
        compare(make_report(), current)
    err = io.StringIO()
    assert gate(write(tmp_path / "baseline.json", make_report()), current, stdout=io.StringIO(), stderr=err) == 2
    assert err.getvalue().startswith("error: baseline gate: The baseline is a report against spec version '1.0'")


def test_a_different_device_is_noted():
    result = compare(make_report(), make_report(device="gpu"))
    assert "device differs: baseline 'cpu', current 'gpu'." in result.format()


def write(path, report):
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def test_gate_reads_files_and_returns_the_exit_code(tmp_path):
    (tmp_path / "runs").mkdir()
    baseline = write(tmp_path / "baseline.json", make_report())
    regressed = write(tmp_path / "runs" / "current.json", with_checks(make_report(), {CENTRAL: {"status": schema.FAILED}}))
    out = io.StringIO()
    assert gate(baseline, regressed, stdout=out) == 1
    assert out.getvalue().startswith("Conformance gate FAILED: 1 regression")
    assert f"current:  {regressed} " in out.getvalue()  # a path given as the report is named as such

    out = io.StringIO()
    assert gate(baseline, make_report(), current_path=tmp_path / "runs" / "new.json", stdout=out) == 0
    assert "Conformance gate passed" in out.getvalue()

    old = write(tmp_path / "old.json", with_checks(make_report(), {ITER: {"status": schema.ERROR}}))
    out = io.StringIO()
    assert gate(old, make_report(), current_path=tmp_path / "runs" / "new.json", stdout=out) == 0
    assert f"cp {tmp_path}/runs/new.json {tmp_path}/old.json" in out.getvalue()
    assert f"--report-dir {tmp_path}/runs" in out.getvalue()


def test_gate_refuses_a_missing_or_invalid_baseline_clearly(tmp_path):
    err = io.StringIO()
    assert gate(tmp_path / "nope.json", make_report(), stdout=io.StringIO(), stderr=err) == 2
    assert f"{tmp_path}/nope.json: cannot read" in err.getvalue()
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 3}', encoding="utf-8")
    err = io.StringIO()
    assert gate(bad, make_report(), stdout=io.StringIO(), stderr=err) == 2
    assert f"{bad}: Unsupported report schema_version 3" in err.getvalue()


# --------------------------------------------------------------------------- schema versions, verdicts


@pytest.mark.parametrize("versions", [(1, 1), (1, 2), (2, 1), (2, 2)], ids=lambda v: f"v{v[0]}-to-v{v[1]}")
def test_either_schema_version_is_compared_with_either(versions):
    old, new = versions
    baseline = with_checks(make_report(schema_version=old), {ITER: {"status": schema.FAILED}})
    current = with_checks(make_report(schema_version=new), {CENTRAL: {"status": schema.FAILED, "message": "differs"}})
    result = compare(baseline, current)
    assert result.exit_code == 1
    assert [(c.requirement, c.baseline, c.current) for c in result.regressions] == [("ROUTE-9", "passed", "failed")]
    assert [(c.requirement, c.baseline, c.current) for c in result.improvements] == [("ITER-1", "failed", "passed")]
    assert result.disappeared_requirements == () and result.disappeared_checks == result.new_checks == ()
    assert [(c.requirement, c.baseline, c.current) for c in result.verdict_changes] == [
        ("ITER-1", "deviates", "complies"), ("ROUTE-9", "complies", "deviates"),
    ]
    line = result.format().rstrip("\n").splitlines()[-1]
    assert line.startswith("verdicts (informational, not gating")
    assert line.endswith("): ITER-1 deviates -> complies, ROUTE-9 complies -> deviates")
    derived = [w for w, v in (("baseline", old), ("current", new)) if v == 1]
    assert result.verdicts_derived == tuple(derived)
    assert ("derived from a schema-1 report" in line) == bool(derived)


def test_untested_requirements_of_a_schema_2_report_are_not_compared():
    # SLOT-1 is listed untested (status null) in both; in the v1 baseline it is absent.
    baseline = make_report(uncovered=["SLOT-1"])
    assert baseline["requirements"]["SLOT-1"]["status"] is None
    for old in (baseline, make_report(schema_version=1)):
        result = compare(old, make_report(uncovered=["SLOT-1"]))
        assert result.exit_code == 0 and result.format().startswith("Conformance gate passed")
        assert result.regressions == result.improvements == result.excused == ()
        assert result.disappeared_requirements == () and result.verdict_changes == ()
    # A requirement some check cited in the baseline and none cites now has disappeared.
    current = make_report([c for c in good_checks() if c["id"] != ITER], uncovered=["ITER-1", "SLOT-1"])
    result = compare(baseline, current)
    assert result.disappeared_requirements == ("ITER-1",)
    assert [(c.requirement, c.baseline, c.current) for c in result.verdict_changes] == [("ITER-1", "complies", "untested")]
    assert result.exit_code == 0


def test_a_blocked_check_that_passed_in_the_baseline_needs_review_but_is_no_regression():
    blocked = {"status": schema.BLOCKED, "blocked_by": ["ROUTE-9"], "reason": "needs absent groups"}
    for baseline in (make_report(), make_report(schema_version=1)):
        result = compare(baseline, with_checks(make_report(), {ITER: blocked}))
        assert result.exit_code == 0
        assert result.regressions == ()
        assert [(c.requirement, c.baseline, c.current) for c in result.excused] == [("ITER-1", "passed", "blocked")]
        text = result.format()
        assert "NEEDS REVIEW" in text and "ITER-1: passed -> blocked" in text
        assert f"{ITER}: passed -> blocked" in text
        assert text.rstrip("\n").splitlines()[-1].endswith("ITER-1 complies -> blocked")


def test_a_blocked_check_under_a_requirement_still_passing_needs_review_too():
    compiled = "test_routing.py::test_central_property_compiled"
    current = with_checks(make_report(), {compiled: {"status": schema.BLOCKED, "blocked_by": ["ROUTE-4"]}})
    result = compare(make_report(), current)
    assert result.exit_code == 0
    assert [(c.requirement, c.baseline, c.current) for c in result.excused] == [("ROUTE-9", "passed", "passed")]
    assert [(c.id, c.baseline, c.current) for c in result.excused[0].checks] == [(compiled, "passed", "blocked")]
    assert result.verdict_changes == ()  # ROUTE-9 still complies through its other check


def test_verdict_changes_never_change_the_exit_code():
    # ITER-1 deviates now, excused by an expectations entry: the gate passes and says so.
    current = with_checks(make_report(), {ITER: {"status": schema.EXPECTED_FAILURE, "reason": "known"}})
    result = compare(make_report(), current)
    assert result.exit_code == 0
    assert [(c.requirement, c.baseline, c.current) for c in result.verdict_changes] == [("ITER-1", "complies", "deviates")]
    text = result.format()
    assert text.startswith("Conformance gate passed")
    assert text.rstrip("\n").splitlines()[-1] == "verdicts (informational, not gating): ITER-1 complies -> deviates"
    # A failure charged elsewhere changes no verdict of the requirement it cites first, but still gates.
    atom = "test_atom.py::test_errors_change_nothing"
    current = with_checks(make_report(), {atom: {"status": schema.FAILED, "charged": ["ROUTE-4"]}})
    result = compare(make_report(), current)
    assert result.exit_code == 1
    assert [c.requirement for c in result.regressions] == ["ATOM-1", "ROUTE-4"]
    assert [(c.requirement, c.current) for c in result.verdict_changes] == [("ATOM-1", "untested"), ("ROUTE-4", "deviates")]
