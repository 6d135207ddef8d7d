"""Every failure is charged to the requirement it breaks, and to nothing else (SPEC; conformance/situations.py).

Each case runs the WHOLE suite, as a port author would (`python -m conformance`, ci profile), against
an implementation with one fault of a pattern that used to fail many requirements at once:

- a crash in one situation only (a Nadam entry whose group is absent);
- an extra optimizer in `optimizers` (a default one for unlisted variables);
- sub-optimizers that always hold a counter (a legitimate port: no deviation at all);
- a refusal with the wrong exception type;
- unlisted variables silently dropped;
- a config-only bug (learning rates lost in `get_config`);
- var lists read once, at the first step;
- routing by name: ROUTE-1, and ROUTE-4 too, since the same owner map by name accepts a doubly
  listed variable (the drop-in API checks' variables named alike are left out once ROUTE-1 deviates).

The requirements the report shows as deviating must be exactly the one the fault breaks: this test
fails the day a check charges a fault to a requirement whose own check passes, or a check stops
avoiding a situation another requirement owns. Blocked checks are allowed (they give no verdict).
"""

import pathlib

import pytest

from conformance_subprocess import run_conformance

TOY_PORT = pathlib.Path(__file__).resolve().parents[1] / "adapters" / "toy_port"

ONE_FAULT = [
    pytest.param("tests.conformance.canaries:NadamCrashesWhenGroupAbsent", {"ROUTE-7"}, id="crash-in-one-situation"),
    pytest.param("tests.conformance.canaries:DefaultOptimizerForUnlisted", {"ROUTE-4"}, id="extra-optimizer"),
    pytest.param("tests.conformance.always_counting_port:AlwaysCountingToyAdapter", set(), id="always-present-sub-state"),
    pytest.param("tests.conformance.canaries:UnlistedRefusedWithRuntimeError", {"ROUTE-4"}, id="wrong-exception"),
    pytest.param("tests.conformance.canaries:AcceptsUnlisted", {"ROUTE-4"}, id="unlisted-dropped"),
    pytest.param("tests.conformance.canaries:ConfigDropsLearningRate", {"CONF-4"}, id="config-only-bug"),
    pytest.param("tests.conformance.canaries:ReadsVarListsOnce", {"ROUTE-1"}, id="var-lists-read-once"),
    pytest.param("tests.conformance.canaries:RoutesByName", {"ROUTE-1", "ROUTE-4"}, id="routes-by-name"),
]


def deviating(report) -> set:
    """The requirements the report says the implementation deviates on."""
    if "requirements" in report and all("verdict" in e for e in report["requirements"].values()):
        return {rid for rid, entry in report["requirements"].items() if entry["verdict"] == "deviates"}
    return {r for c in report["checks"] if c["status"] in ("failed", "expected_failure") for r in c["charged"]}


@pytest.mark.parametrize("impl,breaks", ONE_FAULT)
def test_one_fault_is_charged_to_exactly_its_requirement(impl, breaks, tmp_path):
    run = run_conformance(impl, ["-q", "-p", "no:logging"], tmp_path, pythonpath=[TOY_PORT], timeout=900)
    assert run.report is not None, run.describe()
    assert not run.checks_with("error"), run.describe()
    assert run.returncode == (1 if breaks else 0), run.describe()
    charged = {c["id"]: c["charged"] for c in run.checks_with("failed")}
    assert deviating(run.report) == breaks, (
        f"{impl} breaks {sorted(breaks) or 'nothing'}, but the report charges {charged}\n{run.describe()}")


def test_an_adapter_error_charges_no_requirement(tmp_path):
    """Refusal by the harness: an adapter whose own code raises (over a port that accepts a doubly
    listed variable) makes its checks errors, never a pass and never a deviation of the port."""
    run = run_conformance("tests.conformance.canaries:SnapshotBugAdapter", ["-q", "-p", "no:logging"], tmp_path, timeout=900)
    assert run.report is not None, run.describe()
    [doubly] = [c for c in run.report["checks"] if c["id"].endswith("test_doubly_listed_variable_is_refused")]
    assert doubly["status"] == "error", doubly
    assert "ROUTE-4" not in deviating(run.report), run.describe()

