"""The adapter protocol is enough on its own: a pure-numpy port, outside the repository.

tests/adapters/toy_port/ holds a toy composite (numpy SGD and momentum SGD sub-optimizers, its
own step counter, composite clipping) and an adapter for it written only against
adapters/protocol.py. The test copies both into a temporary directory, so nothing of the port
is importable from the repository, and runs `python -m conformance --impl toyadapter:ToyAdapter`
there, as a port author would. The toy follows the spec, so every check it can express passes;
what it cannot express (sparse gradients, a compiler, replicas, the tf_keras API, var lists that
change between steps) is reported
not applicable with the adapter's reason. No framework is imported along the way.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
TOY = pathlib.Path(__file__).resolve().parent / "toy_port"


def test_numpy_toy_port_runs_through_the_protocol_alone(tmp_path):
    port = tmp_path / "port"
    port.mkdir()
    for name in ("toycomposite.py", "toyadapter.py"):
        shutil.copy(TOY / name, port / name)
    reports, imported = tmp_path / "reports", tmp_path / "imported_frameworks.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(port), str(REPO)]),
           "TOY_IMPORTED_FRAMEWORKS": str(imported)}
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "--impl", "toyadapter:ToyAdapter", "--profile", "dev",
         "-p", "no:logging", "--report-dir", str(reports), "--hypothesis-seed=0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, output

    report = json.loads((reports / "toyadapter_ToyAdapter-cpu.json").read_text(encoding="utf-8"))
    assert report["implementation"]["implementation"] == "toycomposite.ToyComposite"
    by_status = {}
    for check in report["checks"]:
        by_status.setdefault(check["status"], []).append(check)
    assert set(by_status) <= {"passed", "not_applicable"}, {s: [c["id"] for c in cs] for s, cs in by_status.items()}
    passed = {c["id"] for c in by_status["passed"]}
    for check in ("test_routing.py::test_steps_equal_sub_optimizers_alone",
                  "test_routing.py::test_absent_group_is_not_stepped",
                  "test_routing.py::test_none_gradients_are_dropped_without_error",
                  "test_iterations.py::test_counter_advances_once_per_step",
                  "test_iterations.py::test_sub_counters_count_only_their_own_steps",
                  "test_clipping.py::test_composite_clipping_matches_an_independent_computation",
                  "test_clipping.py::test_global_clipnorm_spans_all_groups",
                  "test_errors.py::test_unlisted_variable_raises_names_it_and_changes_nothing",
                  "test_weight_order.py::test_state_moves_into_a_twin_and_training_continues",
                  "test_checkpoints.py::test_restored_checkpoint_resumes_identically",
                  "test_config_roundtrip.py::test_from_config_rebuilds_an_identical_optimizer"):
        assert check in passed, f"{check} did not pass:\n{output}"
    # Generated checks really ran examples (a check that ran none passes vacuously).
    assert all(c["examples_run"] for c in by_status["passed"] if c["area"] != "stateful"), by_status["passed"]
    not_applicable = by_status["not_applicable"]
    assert {c["id"] for c in not_applicable if c["area"] != "tf_keras_api"} == {
        "test_routing.py::test_sparse_gradients_reach_the_sub_optimizer_sparse",
        "test_routing.py::test_var_lists_are_read_every_step",
        "test_iterations.py::test_compiled_steps_count_once_and_match",
        "test_distribution.py::test_replicas_behave_like_one_device_with_summed_gradients",
        "test_distribution.py::test_replicas_clip_the_summed_gradients",
        "test_distribution.py::test_partitioned_variables_train_like_unpartitioned_ones",
        "test_distribution.py::test_asynchronous_steps_count_once_each",
        # The toy offers SGD only: the one-kind checks of the other kinds.
        *(f"test_routing.py::test_one_kind_steps_like_itself_alone[{kind}]"
          for kind in ("adam", "adagrad", "rmsprop", "adamax", "nadam", "ftrl")),
    }
    for check in not_applicable:  # Each with the adapter's own reason.
        assert check["reason"] and "toy" in check["reason"], check
    assert json.loads(imported.read_text()) == [], "the run imported a framework the toy does not use"
