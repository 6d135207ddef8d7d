"""ITER: the composite's own counter, and the sub-optimizers' own counters.

(ITER-2's failing calls are in test_atomicity.py; ITER-4's replicas in test_distribution.py.)
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from ref_helpers import Rig, adam, assert_matches_oracle, legacy, sgd, tfrs_composite_class

requirement = pytest.mark.requirement

A = np.array([1.0, 2.0], np.float32)
B = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
# Which groups get a gradient on each step: both, only group 1, only group 0, both.
SCHEDULE = [(0, 1), (1,), (0,), (0, 1)]


def _step(which):
    grads = {0: A * 0.5, 1: B * 0.25}
    return [(k, grads[k]) for k in which]


@requirement("ITER-1")
def test_counter_advances_once_per_step_eagerly():
    """ITER-1: `iterations` is the composite's own int64 counter and advances by exactly 1 per
    step, however many groups take part."""
    rig = Rig([(sgd(), [A]), (adam(), [B])])
    counter = rig.composite.iterations
    assert counter.dtype == tf.int64 and counter.numpy() == 0
    assert all(counter is not o.iterations for o in rig.sub_optimizers)
    for expected, which in enumerate(SCHEDULE, start=1):
        rig.apply(_step(which))
        assert rig.composite.iterations.numpy() == expected
    assert [o.iterations.numpy() for o in rig.sub_optimizers] == [3, 3]


@requirement("ITER-1", "ITER-3")
def test_counter_advances_once_per_step_in_tf_function():
    """ITER-1: inside `tf.function` too (one function, retraced per group pattern); the
    sub-optimizers' counters advance only when their group is applied (ITER-3)."""
    rig = Rig([(sgd(), [A]), (adam(), [B])])
    alone = rig.oracle()

    @tf.function
    def step(which):
        rig.apply(_step(which))

    for expected, which in enumerate(SCHEDULE, start=1):
        step(which)
        alone.apply(_step(which))
        assert rig.composite.iterations.numpy() == expected
    assert [o.iterations.numpy() for o in rig.sub_optimizers] == [3, 3]
    assert_matches_oracle(rig, alone)


@requirement("ITER-1")
def test_tfrs_iterations_is_first_sub_optimizers_counter():
    """ITER-1 TFRS note: TFRS's `iterations` is optimizers[0]'s, so a step without group 0 does not count."""
    rig = Rig([(sgd(), [A]), (adam(), [B])], composite_cls=tfrs_composite_class())
    for which in SCHEDULE:
        rig.apply(_step(which))
    assert rig.composite.iterations is rig.sub_optimizers[0].iterations
    assert rig.composite.iterations.numpy() == 3  # four steps


@requirement("ITER-2")
def test_empty_call_does_not_create_or_advance_counters():
    """ITER-2: an empty call advances no counter (and on a fresh composite creates none)."""
    rig = Rig([(sgd(), [A]), (adam(), [B])])
    rig.composite.apply_gradients([])
    assert rig.composite._iterations is None
    assert all(o._iterations is None for o in rig.sub_optimizers)
    rig.apply(_step((0, 1)))
    rig.composite.apply_gradients(iter(()))
    assert rig.composite.iterations.numpy() == 1
    assert [o.iterations.numpy() for o in rig.sub_optimizers] == [1, 1]


@requirement("ITER-3")
def test_sub_optimizer_schedules_follow_their_own_counters():
    """ITER-3: a sub-optimizer's learning-rate schedule and Adam's bias correction follow its own
    counter (steps where its group was applied), not the composite's: identical to it used alone,
    and different from a run that counted every composite step."""
    schedule = tf_keras.optimizers.schedules.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.5)

    def decayed_sgd():
        return legacy.SGD(schedule)

    rig = Rig([(decayed_sgd, [A]), (adam(0.1), [B])])
    alone = rig.oracle()
    pattern = [(1,), (1,), (0, 1), (1,), (0,), (0, 1)]
    for which in pattern:
        rig.apply(_step(which))
        alone.apply(_step(which))
    assert_matches_oracle(rig, alone)
    # Counting composite steps instead: learning rates 0.5 * 0.5**t at t = 2, 4, 5, not t = 0, 1, 2.
    wrong = A.copy()
    for t, which in enumerate(pattern):
        if 0 in which:
            wrong = wrong - 0.5 * 0.5 ** t * (A * 0.5)
    assert not np.allclose(rig.variables[0].numpy(), wrong)
    assert rig.sub_optimizers[0].iterations.numpy() == 3 and rig.composite.iterations.numpy() == 6
