"""ATOM: every error of a step is raised before anything changes.

Each bad call puts the offending pair last, after pairs for every group, so a
composite that applied groups as it went would have changed them before raising.
State is compared bit for bit: variables, the composite's counter, and every
sub-optimizer's counter, slots and hyperparameter variables (none created either).
"""

import numpy as np
import pytest
import tensorflow as tf

from ref_helpers import Rig, adagrad, adam, assert_same_state, momentum, sgd, tfrs_composite_class

requirement = pytest.mark.requirement

A = np.array([1.0, 2.0], np.float32)
B = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
C = np.array([0.5], np.float32)
GOOD = [(0, A), (1, B), (2, C)]


def _rig(cls=None):
    kwargs = {"composite_cls": cls} if cls else {}
    return Rig([(adam(), [A]), (momentum(), [B]), (adagrad(), [C])], **kwargs)


def _all_none(rig):
    return [(None, v) for v in rig.variables], ValueError, ["No gradients provided", rig.variables[0].name]


def _overlap(rig):
    rig.groups[2].append(rig.variables[0])  # the callables are read afresh (ROUTE-1)
    return rig.pairs(GOOD), ValueError, [rig.variables[0].name, "optimizers_and_vars[0]", "optimizers_and_vars[2]"]


def _unlisted(rig):
    stray = tf.Variable(A, name="stray_var")
    return rig.pairs(GOOD) + [(tf.ones(2), stray)], ValueError, ["stray_var"]


def _not_a_pair(rig):
    return rig.pairs(GOOD) + [(tf.ones(2),)], TypeError, ["grads_and_vars[3]"]


def _triple(rig):
    return rig.pairs(GOOD) + [(tf.ones(2), rig.variables[0], None)], TypeError, ["grads_and_vars[3]"]


def _not_a_variable(rig):
    return rig.pairs(GOOD) + [(tf.ones(2), tf.constant(A))], TypeError, ["grads_and_vars[3]"]


def _dense_shape(rig):
    pairs = rig.pairs(GOOD[:2]) + [(tf.ones((2,)), rig.variables[2])]
    return pairs, ValueError, [rig.variables[2].name, "shape"]


def _sparse_row_shape(rig):
    table = rig.variables[1]
    bad = tf.IndexedSlices(tf.ones((1, 3)), tf.constant([0], tf.int64), tf.constant([3, 3], tf.int64))
    pairs = rig.pairs([(0, A), (2, C)]) + [(bad, table)]
    return pairs, ValueError, [table.name, "shape"]


CASES = {
    "all-none": _all_none,
    "overlap": _overlap,
    "unlisted": _unlisted,
    "not-a-pair": _not_a_pair,
    "triple": _triple,
    "not-a-variable": _not_a_variable,
    "dense-shape": _dense_shape,
    "sparse-row-shape": _sparse_row_shape,
}
REQUIREMENTS = {"all-none": "ROUTE-3", "overlap": "ROUTE-4", "unlisted": "ROUTE-4", "dense-shape": "ATOM-2",
                "sparse-row-shape": "ATOM-2"}


@requirement("ATOM-1", "ATOM-2", "ITER-2", "ROUTE-3", "ROUTE-4")
@pytest.mark.parametrize("warm", [True, False], ids=["after-a-step", "first-call"])
@pytest.mark.parametrize("case", list(CASES))
def test_error_raised_before_anything_changes(case, warm):
    """ATOM-1, ATOM-2: each error (ROUTE-3, ROUTE-4, malformed pair, bad shape) has its type and a
    message naming the culprit, and leaves every variable, slot and counter as it was (ITER-2);
    on a first call, no variable is even created."""
    rig = _rig()
    if warm:
        rig.apply(GOOD)
    pairs, error, fragments = CASES[case](rig)
    before = rig.state()
    with pytest.raises(error) as info:
        rig.composite.apply_gradients(pairs)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    assert_same_state(before, rig.state())
    # The composite still works after the refused call.
    if case == "overlap":
        rig.groups[2].pop()
    rig.apply(GOOD)
    assert rig.composite.iterations.numpy() == (2 if warm else 1)


@requirement("ATOM-1", "ITER-2")
def test_error_inside_tf_function_changes_nothing():
    """ATOM-1, ITER-2: inside `tf.function` the checks run at trace time; state and counters stay unchanged."""
    rig = _rig()
    rig.apply(GOOD)
    stray = tf.Variable(A, name="stray_in_function")
    before = rig.state()

    @tf.function
    def step():
        rig.composite.apply_gradients(rig.pairs(GOOD) + [(tf.ones(2), stray)])

    with pytest.raises(ValueError, match="stray_in_function"):
        step()
    assert_same_state(before, rig.state())


@requirement("ATOM-1", "ATOM-2", "ITER-2")
def test_tfrs_updates_earlier_groups_before_a_bad_shape():
    """ATOM-1 / ATOM-2 / ITER-2 TFRS note: TFRS applies the groups routed before the bad
    gradient's group, advancing their counters, then raises."""
    rig = _rig(tfrs_composite_class())
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
        rig.composite.apply_gradients(rig.pairs(GOOD[:2]) + [(tf.ones((2,)), rig.variables[2])])
    assert not np.array_equal(rig.variables[0].numpy(), A)
    assert rig.sub_optimizers[0].iterations.numpy() == 1


@requirement("ATOM-1", "ITER-2")
def test_tfrs_updates_earlier_groups_before_an_all_none_group():
    """ATOM-1 / ITER-2 TFRS note: a group with only `None` gradients raises after earlier groups stepped."""
    rig = _rig(tfrs_composite_class())
    with pytest.raises(ValueError):
        rig.apply([(0, A), (1, None)])
    assert rig.sub_optimizers[0].iterations.numpy() == 1


@requirement("ATOM-3", "WEIGHT-2")
@pytest.mark.parametrize("bad", ["too-few", "too-many", "wrong-shape-first", "wrong-shape-last", "scalar-for-slot"])
def test_set_weights_mismatch_writes_nothing(bad):
    """ATOM-3, WEIGHT-2: `set_weights` with the wrong count, or a wrong shape anywhere, is a
    ValueError (naming the position for a shape) and writes nothing, not even the values before it."""
    rig = Rig([(adam(), [A]), (sgd(0.1, momentum=0.5), [B])])
    rig.apply(GOOD[:2])
    rig.apply(GOOD[:2])
    weights = rig.composite.get_weights()
    new = [w + 1 for w in weights]
    position = None
    if bad == "too-few":
        new = new[:-1]
    elif bad == "too-many":
        new = new + [np.zeros(2)]
    elif bad == "wrong-shape-first":
        position, new[0] = 0, np.array([1, 2])
    elif bad == "wrong-shape-last":
        position = len(new) - 1
        new[position] = np.zeros((2, 3), np.float32)
    else:
        position = 2  # Adam's m slot for A
        assert weights[position].shape == (2,)
        new[position] = np.float32(1.0)
    before = rig.state()
    with pytest.raises(ValueError) as info:
        rig.composite.set_weights(new)
    if position is not None:
        assert f"value {position}" in str(info.value)
    else:
        assert str(len(weights)) in str(info.value) and str(len(new)) in str(info.value)
    assert_same_state(before, rig.state())
