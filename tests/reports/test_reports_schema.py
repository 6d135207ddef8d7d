"""Schema 2: per-requirement verdicts (`requirements_section`), their counts, validation of both
schema versions, and the verdicts of a schema-1 report (derived from its checks)."""

import pytest

from reports import schema
from reports.schema import requirement_verdicts, requirements_section, validate, verdict_counts
from synthetic_reports import check, make_report, spec_of, tfrs_report

SPEC = spec_of(["ROUTE-1", "ROUTE-4", "ROUTE-7", "ROUTE-9", "ITER-1", "ITER-3", "ATOM-1", "CLIP-1", "SLOT-1"])


def section(*checks):
    return requirements_section(list(checks), SPEC)


def test_every_spec_requirement_gets_an_entry_and_an_uncited_one_is_untested():
    out = section(check("t.py::a", "ROUTE-1"))
    assert list(out) == ["ATOM-1", "CLIP-1", "ITER-1", "ITER-3", "ROUTE-1", "ROUTE-4", "ROUTE-7", "ROUTE-9", "SLOT-1"]
    assert out["SLOT-1"] == {
        "verdict": "untested", "status": None, "checks": [], "blocked_by": [],
        "reason": "no check cites it in this run",
        "area": "slots", "scope": "tf_keras", "text": "Requirement SLOT-1.",
    }
    assert set(out["ROUTE-1"]) == {"verdict", "status", "checks", "blocked_by", "reason", "area", "scope", "text"}


def test_complies_when_a_check_passed():
    out = section(check("t.py::b", "ROUTE-1"), check("t.py::a", "ROUTE-1", examples_run=3),
                  check("t.py::c", "ROUTE-1", schema.NOT_APPLICABLE, reason="no sparse"))
    entry = out["ROUTE-1"]
    assert (entry["verdict"], entry["status"], entry["checks"]) == ("complies", "passed", ["t.py::a", "t.py::b", "t.py::c"])
    assert entry["reason"] == "2 checks passed"
    assert section(check("t.py::a", "ROUTE-1", schema.UNEXPECTED_PASS))["ROUTE-1"]["verdict"] == "complies"


def test_complies_names_the_situations_left_out_of_its_cases():
    out = section(check("t.py::a", "ROUTE-1", avoided=[{"situation": "absent groups", "requirement": "ROUTE-7"}]))
    assert out["ROUTE-1"]["verdict"] == "complies"
    assert out["ROUTE-1"]["reason"] == "1 check passed; cases without absent groups (ROUTE-7 deviates)"


def test_a_failed_check_deviates_its_first_requirement_by_default():
    out = section(check("t.py::a", ["ROUTE-9", "ATOM-1"], schema.FAILED, message="\nAssertionError: differs\n  more"))
    assert out["ROUTE-9"]["verdict"] == "deviates"
    assert out["ROUTE-9"]["status"] == "failed"
    assert out["ROUTE-9"]["reason"] == "t.py::a: AssertionError: differs"
    # The other cited requirement is not charged: untested, and says where the failure went.
    assert out["ATOM-1"]["verdict"] == "untested"
    assert out["ATOM-1"]["status"] == "failed"  # the gating status still fails it
    assert out["ATOM-1"]["reason"] == "its only failing check is charged to ROUTE-9"


def test_a_failed_check_charged_to_another_requirement_does_not_make_this_one_deviate():
    failing = check("t.py::a", ["ROUTE-9", "ROUTE-7"], schema.FAILED, charged=["ROUTE-7"], message="boom")
    out = section(failing)
    assert out["ROUTE-7"]["verdict"] == "deviates"
    assert out["ROUTE-9"]["verdict"] == "untested"
    assert out["ROUTE-9"]["reason"] == "its only failing check is charged to ROUTE-7"
    # With a passing check beside it, it complies (and the reason says where the failure went).
    out = section(failing, check("t.py::b", "ROUTE-9"))
    assert out["ROUTE-9"]["verdict"] == "complies"
    assert out["ROUTE-9"]["reason"] == "1 check passed; 1 failed, charged to ROUTE-7"
    # Charged to a requirement the check does not cite: that one does not deviate through it.
    assert section(check("t.py::a", "ROUTE-9", schema.FAILED, charged=["ITER-1"]))["ITER-1"]["verdict"] == "untested"


def test_an_expected_failure_deviates_with_its_expectations_reason():
    out = section(check("t.py::a", "ITER-1", schema.EXPECTED_FAILURE, reason="TFRS counts the first optimizer."),
                  check("t.py::b", "ITER-1"))
    assert out["ITER-1"]["verdict"] == "deviates"  # expectations decide exit codes, never verdicts
    assert out["ITER-1"]["status"] == "expected_failure"
    assert out["ITER-1"]["reason"] == "t.py::a: expected failure: TFRS counts the first optimizer."


def test_blocked_when_no_check_ran_and_one_was_blocked():
    blocked = check("t.py::a", "ITER-3", schema.BLOCKED, blocked_by=["ROUTE-7"], reason="needs absent groups")
    out = section(blocked, check("t.py::b", "ITER-3", schema.BLOCKED, blocked_by=["ROUTE-4", "ROUTE-7"]),
                  check("t.py::c", "ITER-3", schema.NOT_APPLICABLE, reason="x"))
    entry = out["ITER-3"]
    assert (entry["verdict"], entry["status"], entry["blocked_by"]) == ("blocked", "blocked", ["ROUTE-4", "ROUTE-7"])
    assert entry["reason"] == "t.py::a blocked by ROUTE-7: needs absent groups (and 1 other check)"
    assert schema.BLOCKED not in schema.FAILING
    # A passing check outweighs a blocked one (and the gating status is the pass).
    out = section(blocked, check("t.py::b", "ITER-3"))
    assert (out["ITER-3"]["verdict"], out["ITER-3"]["status"], out["ITER-3"]["blocked_by"]) == ("complies", "passed", [])
    assert out["ITER-3"]["reason"] == "1 check passed; 1 blocked by ROUTE-7"


def test_not_applicable_only_when_every_citing_check_is():
    out = section(check("t.py::a", "CLIP-1", schema.NOT_APPLICABLE, reason="no clip settings"))
    assert (out["CLIP-1"]["verdict"], out["CLIP-1"]["status"], out["CLIP-1"]["reason"]) == (
        "not_applicable", "not_applicable", "no clip settings")
    out = section(check("t.py::a", "CLIP-1", schema.NOT_APPLICABLE, reason="r"), check("t.py::b", "CLIP-1", schema.ERROR, message="E"))
    assert out["CLIP-1"]["verdict"] == "untested"


def test_only_errored_checks_leave_a_requirement_untested():
    out = section(check("t.py::a", "ROUTE-4", schema.ERROR, message="RuntimeError: adapter crashed\ntrace"))
    assert (out["ROUTE-4"]["verdict"], out["ROUTE-4"]["status"]) == ("untested", "error")
    assert out["ROUTE-4"]["reason"] == "1 check errored (no verdict): t.py::a: RuntimeError: adapter crashed"


def test_an_errored_check_leaves_its_requirement_untested_even_beside_passes():
    out = section(check("t.py::a", "ATOM-1", schema.ERROR, message="HarnessError: adapter"), check("t.py::b", "ATOM-1"))
    assert out["ATOM-1"]["verdict"] == "untested"
    assert out["ATOM-1"]["reason"] == "1 check errored (no verdict): t.py::a: HarnessError: adapter; 1 check passed"


def test_a_pass_that_left_a_requirement_unverified_counts_as_blocked_for_it():
    passed = check("t.py::a", ["ROUTE-9", "ITER-3"],
                   unverified=[{"requirement": "ITER-3", "blocked_by": "ITER-1", "reason": "ITER-3 left unchecked"}])
    out = section(passed)
    assert out["ROUTE-9"]["verdict"] == "complies"
    assert (out["ITER-3"]["verdict"], out["ITER-3"]["blocked_by"]) == ("blocked", ["ITER-1"])


def test_deviates_outweighs_a_pass_and_names_the_first_charging_check():
    out = section(check("t.py::z", "ROUTE-9", schema.FAILED, message="late"), check("t.py::b", "ROUTE-9"),
                  check("t.py::c", "ROUTE-9", schema.FAILED, message="early"))
    assert out["ROUTE-9"]["verdict"] == "deviates"
    assert out["ROUTE-9"]["reason"] == "t.py::c: early"


def test_verdict_counts_have_every_verdict():
    out = section(check("t.py::a", "ROUTE-1"), check("t.py::b", "ROUTE-9", schema.FAILED))
    assert verdict_counts(out) == {"complies": 1, "deviates": 1, "blocked": 0, "not_applicable": 0, "untested": 7}


def test_validate_accepts_both_versions_and_refuses_others():
    validate(make_report())
    validate(make_report(schema_version=1))
    validate(tfrs_report())
    validate(tfrs_report(schema_version=1))
    report = make_report()
    report["schema_version"] = 3
    with pytest.raises(ValueError, match=r"Unsupported report schema_version 3; expected one of \[1, 2\]"):
        validate(report)


def test_validate_checks_the_schema_2_fields():
    blocked = make_report([check("t.py::a", "ROUTE-1", schema.BLOCKED, blocked_by=["ROUTE-7"])])
    validate(blocked)
    report = make_report()
    del report["verdicts"]
    with pytest.raises(ValueError, match="lacks 'verdicts'"):
        validate(report)
    report = make_report()
    report["requirements"]["ROUTE-1"]["verdict"] = "fine"
    with pytest.raises(ValueError, match="Requirement 'ROUTE-1' has unknown verdict 'fine'"):
        validate(report)
    report = make_report()
    report["checks"][0].update(status=schema.BLOCKED)
    with pytest.raises(ValueError, match="blocked exactly when it names what blocked it"):
        validate(report)
    report = make_report()
    report["checks"][0].update(blocked_by=["ROUTE-7"])
    with pytest.raises(ValueError, match="blocked exactly when it names what blocked it"):
        validate(report)
    report = make_report()
    report["checks"][0].update(charged=["ROUTE-7"])
    with pytest.raises(ValueError, match="is passed but charged to"):
        validate(report)
    report = make_report()
    report["checks"][0].update(avoided=["absent groups"])
    with pytest.raises(ValueError, match="'avoided' must be a list"):
        validate(report)
    # Schema 1 knows no blocked status.
    v1 = make_report(schema_version=1)
    v1["checks"][0]["status"] = schema.BLOCKED
    with pytest.raises(ValueError, match="unknown status 'blocked'"):
        validate(v1)


def test_the_verdicts_of_a_schema_1_report_are_derived_from_its_checks():
    v1, v2 = tfrs_report(schema_version=1), tfrs_report()
    assert "verdict" not in v1["requirements"]["ITER-1"] and "verdicts" not in v1
    derived = requirement_verdicts(v1)
    assert list(derived) == list(v1["requirements"])  # the listed requirements, no more
    assert {rid: e["verdict"] for rid, e in derived.items()} == {
        "ATOM-1": "complies", "CLIP-1": "not_applicable", "CONF-1": "complies", "CTOR-1": "complies",
        "CTOR-2": "complies", "ITER-1": "deviates", "ROUTE-1": "complies", "ROUTE-4": "complies",
        "ROUTE-8": "untested", "ROUTE-9": "deviates", "SLOT-1": "untested",
    }
    assert derived["SLOT-1"]["reason"] == "no check cites it in this run"
    assert derived["ITER-1"]["text"] == v1["requirements"]["ITER-1"]["text"]
    # A schema-2 report's verdicts are its own.
    assert requirement_verdicts(v2) == v2["requirements"]
    assert requirement_verdicts(v2)["ROUTE-1"]["verdict"] == "blocked"
