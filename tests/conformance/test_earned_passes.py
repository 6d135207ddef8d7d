"""Passes are earned by the implementation, and failures are charged to what it breaks.

- An exception of the adapter's own code is an error of the run, never the implementation's refusal
  (adapters/protocol.py, version 2: `implementation_call()` / `Refused`).
- The stateful test's bad calls reach the implementation: one that ignores a gradient for an
  unlisted variable fails it.
- The suite reads counters and state per entry: an implementation whose `optimizers` also holds a
  default optimizer fails only the requirement that default breaks (ROUTE-4); a port whose
  sub-optimizers always hold a counter, even over no variables, passes (the oracle asks what a
  sub-optimizer alone holds).

Each runs the suite in a subprocess, as `python -m conformance` runs for users (test_canaries.py);
the one-fault canaries of tests/conformance/canaries.py are also run by test_canaries.py.
"""

import pathlib

import pytest

from conformance_subprocess import run_conformance

TOY_PORT = pathlib.Path(__file__).resolve().parents[1] / "adapters" / "toy_port"

# Checks that read sub-optimizer counters, state, config and checkpoints, plus ROUTE-4's own.
PER_ENTRY_CHECKS = ("unlisted_variable_raises or sub_counters or absent_group or steps_equal or same_named or "
                    "state_is_counter or set_state_refuses or from_config or restored_checkpoint or tfrs_page or "
                    "model_fit or slots_are_delegated or tfrs_layout")
STATEFUL = "interleaved_operations"


def test_an_adapter_error_is_reported_as_an_error_not_a_refusal(tmp_path):
    impl = "tests.conformance.canaries:SnapshotBugAdapter"
    run = run_conformance(impl, ["-q", "-p", "no:logging", "-k", "doubly_listed_variable_is_refused"], tmp_path)
    assert run.returncode != 0, run.describe()
    [check] = [c for c in run.report["checks"] if c["id"].endswith("test_doubly_listed_variable_is_refused")]
    assert check["status"] == "error", check
    assert "AttributeError" in check["message"] and "not a verdict on the implementation" in check["message"], check


def test_stateful_bad_calls_reach_the_implementation(tmp_path):
    run = run_conformance("tests.conformance.canaries:AcceptsUnlisted", ["-q", "-p", "no:logging", "-k", STATEFUL],
                          tmp_path)
    assert run.returncode != 0, f"a port that ignores unlisted variables passed the stateful test\n{run.describe()}"
    [check] = run.checks_with("failed")
    # Run alone, with ROUTE-4's own check not run first, the rule's refusal is charged to ROUTE-4.
    assert check["charged"] == ["ROUTE-4"], check
    assert "a gradient for a variable no entry lists: the call succeeded" in check["message"], check


def test_an_extra_default_optimizer_fails_only_route_4(tmp_path):
    run = run_conformance("tests.conformance.canaries:DefaultOptimizerForUnlisted",
                          ["-q", "-p", "no:logging", "-k", PER_ENTRY_CHECKS], tmp_path)
    failed = run.checks_with("failed", "error")
    assert [c["id"] for c in failed] == ["test_errors.py::test_unlisted_variable_raises_names_it_and_changes_nothing"], (
        run.describe())
    assert "ROUTE-4" in failed[0]["requirements"]
    passed = {c["id"].split("::")[1] for c in run.checks_with("passed")}
    for name in ("test_sub_counters_count_only_their_own_steps", "test_absent_group_is_not_stepped",
                 "test_steps_equal_sub_optimizers_alone", "test_state_is_counter_then_each_sub_state_in_entry_order",
                 "test_public_api_of_the_tfrs_page_is_present", "test_works_in_model_fit",
                 "test_restored_checkpoint_resumes_identically", "test_from_config_rebuilds_an_identical_optimizer"):
        assert name in passed, f"{name} did not pass\n{run.describe()}"


def test_sub_state_held_for_an_empty_group_is_not_a_failure(tmp_path):
    run = run_conformance("tests.conformance.always_counting_port:AlwaysCountingToyAdapter",
                          ["-q", "-p", "no:logging", "-k", "state_is_counter or set_state_refuses or state_moves "
                           "or steps_equal or sub_counters"], tmp_path, pythonpath=[TOY_PORT])
    assert run.returncode == 0, run.describe()
    passed = {c["id"].split("::")[1] for c in run.checks_with("passed")}
    assert {"test_state_is_counter_then_each_sub_state_in_entry_order",
            "test_set_state_refuses_a_mismatch_and_writes_nothing"} <= passed, run.describe()


@pytest.mark.parametrize("select", [PER_ENTRY_CHECKS, STATEFUL])
def test_reference_passes_the_same_checks(tmp_path, select):
    run = run_conformance("reference", ["-q", "-p", "no:logging", "-k", select], tmp_path)
    assert run.returncode == 0, run.describe()
    assert run.checks_with("passed") and not run.checks_with("failed", "error", "not_applicable"), run.describe()
