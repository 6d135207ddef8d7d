"""DIST-2, DIST-3: tf_keras `Model.fit` under ParameterServerStrategy (2 parameter servers, local
processes) with a partitioned embedding trains with the reference composite.

Each run is its own process (tests/reference/ps_training.py): a process holds one cluster.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import ps_training
from ref_helpers import assert_close

REPO = pathlib.Path(__file__).resolve().parents[2]


def _train(workers: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests" / "reference")])}
    done = subprocess.run([sys.executable, str(REPO / "tests" / "reference" / "ps_training.py"), str(workers)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"exit code {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def _one_process():
    """The oracle: the same model, data and steps in this process, without a strategy."""
    import tf_keras

    model, optimizer = ps_training.build()
    history = model.fit(ps_training.dataset(), epochs=ps_training.EPOCHS, steps_per_epoch=ps_training.STEPS_PER_EPOCH,
                        verbose=0)
    return model, optimizer, history


@pytest.mark.requirement("DIST-2", "ROUTE-9")
def test_fit_on_one_worker_equals_one_process():
    """DIST-2: with one worker the steps run in order, so training the partitioned embedding (listed
    whole; Model.fit's gradients name its shards) equals one process's unpartitioned training;
    ROUTE-9: SGD on the table, Adam on the dense layer, as each alone."""
    got = _train(workers=1)
    model, optimizer, history = _one_process()
    assert got["table_type"] == "ShardedVariable" and len(got["shard_devices"]) == 2, got
    assert any("part_0" in name for name in got["trained_names"]), got["trained_names"]
    assert_close(got["table"], ps_training.table_of(model), rtol=1e-5, atol=1e-6, err_msg="embedding table")
    for got_weight, weight in zip(got["dense"], ps_training.dense_of(model)):
        assert_close(got_weight, weight, rtol=1e-5, atol=1e-6, err_msg="dense layer")
    assert got["iterations"] == int(optimizer.iterations.numpy()) == ps_training.EPOCHS * ps_training.STEPS_PER_EPOCH
    assert_close(got["loss"], history.history["loss"], rtol=1e-5, atol=1e-6, err_msg="loss per epoch")


@pytest.mark.requirement("DIST-3", "ITER-1", "ITER-3")
def test_fit_on_two_asynchronous_workers_counts_every_step_once():
    """DIST-3: two workers step asynchronously: ITER-1 the composite counts each of the
    epochs x steps scheduled steps once, ITER-3 so does each sub-optimizer; the loss falls, rows
    no step looked up are untouched by SGD, the others and the dense layer move."""
    got = _train(workers=2)
    steps = ps_training.EPOCHS * ps_training.STEPS_PER_EPOCH
    assert got["iterations"] == steps and got["sub_iterations"] == [steps, steps], got
    assert got["loss"][-1] < got["loss"][0], got["loss"]
    table = np.asarray(got["table"])
    np.testing.assert_array_equal(table[6:], ps_training.TABLE[6:])
    assert np.all(np.abs(table[:6] - ps_training.TABLE[:6]).sum(axis=1) > 0), table
    assert not np.allclose(got["dense"][0], ps_training.KERNEL)
