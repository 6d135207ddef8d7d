"""DIST, ITER-4: two replicas on two logical CPUs (configured in tests/conftest.py).

N replicas fed per-replica gradients g_r must equal one device fed sum_r g_r, with
`global_clipnorm` and `iterations` included. The gradients are chosen so that the
global norm of the sum exceeds the clip threshold on some steps and not on others,
and one group is momentum SGD (not scale-invariant): summing twice, or averaging,
would change the result.
"""

import numpy as np
import pytest
import tensorflow as tf

from ref_helpers import Rig, adam, assert_close, momentum, tfrs_composite_class

requirement = pytest.mark.requirement

REPLICAS = 2
INITS = [np.array([1.0, -2.0], np.float32), np.array([[0.5, 1.5], [2.0, -1.0]], np.float32)]
GROUPS = [(momentum(0.1, 0.9), INITS[:1]), (adam(0.05), INITS[1:])]
CLIP = 3.0
# Per step: which variables get gradients, and each replica's gradient for them.
STEPS = [
    ((0, 1), [[np.array([2.0, 1.0]), np.array([[1.0, 0.0], [0.5, 2.0]])],
              [np.array([1.0, -1.0]), np.array([[0.0, 1.0], [1.5, 1.0]])]]),    # sum's norm > 3: clipped
    ((0, 1), [[np.array([0.1, 0.2]), np.array([[0.1, 0.0], [0.2, 0.1]])],
              [np.array([0.3, -0.1]), np.array([[0.0, 0.3], [0.1, 0.2]])]]),    # small: unclipped
    ((0,), [[np.array([0.5, 0.5])], [np.array([-0.2, 0.4])]]),                  # group 1 absent
]


_STRATEGIES = []


def _strategy():
    """One MirroredStrategy for the whole process: several instances reuse the same
    collective group and instance keys, and TensorFlow then aborts the collectives
    ("Shape mismatch in the collective instance")."""
    if not _STRATEGIES:
        cpus = tf.config.list_logical_devices("CPU")
        assert len(cpus) >= REPLICAS, (
            "tests/conftest.py could not split the CPU into two logical devices "
            f"(TensorFlow initialised before pytest_configure?); found {cpus}")
        _STRATEGIES.append(tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(REPLICAS)]))
    return _STRATEGIES[0]


def _run(composite_cls, clip, tf_function, aggregate):
    strategy = _strategy()
    with strategy.scope():
        mirrored = Rig(GROUPS, composite_cls=composite_cls, **clip)
    single = Rig(GROUPS, composite_cls=composite_cls, **clip)

    def replica_step(which, grads):
        if not aggregate:  # the caller aggregates (DIST-1's second case)
            grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
        variables = [mirrored.variables[k] for k in which]
        mirrored.composite.apply_gradients(list(zip(grads, variables)), experimental_aggregate_gradients=aggregate)

    def step(which, grads):
        strategy.run(replica_step, args=(which, grads))

    if tf_function:
        step = tf.function(step)
    for which, per_replica in STEPS:
        grads = strategy.experimental_distribute_values_from_function(
            lambda context, per_replica=per_replica: [tf.constant(g, tf.float32)
                                                      for g in per_replica[context.replica_id_in_sync_group]])
        step(which, grads)
        single.apply([(k, np.sum([r[i] for r in per_replica], axis=0).astype(np.float32))
                      for i, k in enumerate(which)])
    return mirrored, single


CASES = {
    "reference-tf.function": dict(clip=dict(global_clipnorm=CLIP), tf_function=True, aggregate=True),
    "reference-eager": dict(clip=dict(global_clipnorm=CLIP), tf_function=False, aggregate=True),
    "reference-caller-aggregates": dict(clip=dict(global_clipnorm=CLIP), tf_function=True, aggregate=False),
}


@requirement("DIST-1", "ITER-4", "CLIP-1")
@pytest.mark.parametrize("case", list(CASES))
def test_replicas_equal_one_device_fed_the_sum(case):
    """DIST-1, ITER-4, CLIP-1: two replicas equal one device fed the summed gradients, global_clipnorm
    included; `iterations` advances by 1 per step (not 2); every replica's copy agrees."""
    from reference import CompositeOptimizer

    mirrored, single = _run(CompositeOptimizer, **CASES[case])
    for k, (mine, theirs) in enumerate(zip(mirrored.variables, single.variables)):
        for replica, component in enumerate(mine.values):
            assert_close(component.numpy(), theirs.numpy(), err_msg=f"variable {k}, replica {replica}")
    assert mirrored.composite.iterations.numpy() == len(STEPS) == single.composite.iterations.numpy()
    assert [o.iterations.numpy() for o in mirrored.sub_optimizers] == [3, 2]
    for mine, theirs in zip(mirrored.composite.get_weights(), single.composite.get_weights()):
        assert_close(mine, theirs)


@requirement("DIST-1", "CLIP-1")
def test_clipping_is_active_in_these_steps():
    """DIST-1, CLIP-1 (sensitivity): without the clip setting the same replicas end elsewhere, so the
    comparison above does exercise clipping of the summed gradients."""
    from reference import CompositeOptimizer

    clipped, _ = _run(CompositeOptimizer, dict(global_clipnorm=CLIP), tf_function=True, aggregate=True)
    unclipped, single = _run(CompositeOptimizer, {}, tf_function=True, aggregate=True)
    assert not np.allclose(clipped.variables[0].values[0].numpy(), unclipped.variables[0].values[0].numpy())
    assert_close(unclipped.variables[0].values[0].numpy(), single.variables[0].numpy())


@requirement("DIST-1", "ITER-4")
def test_tfrs_replicas_equal_one_device_without_clipping():
    """DIST-1 / ITER-4 TFRS note: without clipping TFRS complies (each sub-optimizer sums its own group)."""
    mirrored, single = _run(tfrs_composite_class(), {}, tf_function=True, aggregate=True)
    for mine, theirs in zip(mirrored.variables, single.variables):
        assert_close(mine.values[1].numpy(), theirs.numpy())
    assert mirrored.composite.iterations.numpy() == len(STEPS)
