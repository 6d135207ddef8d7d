"""WEIGHT: the order of the composite's state, and moving it with get/set_weights.

(Mismatched `set_weights` calls are in test_atomicity.py, ATOM-3.)
"""

import numpy as np
import pytest
import tensorflow as tf

from ref_helpers import Rig, adagrad, adam, assert_close, momentum, sgd, tfrs_composite_class

requirement = pytest.mark.requirement

A = np.array([1.0, 2.0], np.float32)
B = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
GROUPS = [(adam(0.1), [A, B]), (sgd(0.1), [A]), (momentum(0.1), [B])]
STEP = [(0, A), (1, B), (2, A * 2), (3, B * -1)]


def _identities(variables):
    return [v.ref() for v in variables]


@requirement("WEIGHT-1")
def test_weights_are_composite_counter_then_each_sub_optimizers_weights():
    """WEIGHT-1: `weights` and `variables()` are `[iterations] + optimizers[0].weights + ...`,
    the composite counter first, each sub-optimizer's counter then slots in creation order."""
    rig = Rig(GROUPS)
    rig.apply(STEP)
    composite, subs = rig.composite, rig.sub_optimizers
    expected = [composite.iterations] + [w for o in subs for w in o.weights]
    assert _identities(composite.weights) == _identities(expected)
    assert _identities(composite.variables()) == _identities(expected)
    adam_weights = subs[0].weights
    a, b = rig.variables[:2]
    assert _identities(adam_weights) == _identities(
        [subs[0].iterations, subs[0].get_slot(a, "m"), subs[0].get_slot(b, "m"),
         subs[0].get_slot(a, "v"), subs[0].get_slot(b, "v")])
    assert composite.weights[0] is composite.iterations and composite.weights[0] is not subs[0].iterations


@requirement("WEIGHT-1")
def test_tfrs_weights_omit_composite_counter():
    """WEIGHT-1 TFRS note: TFRS's list starts with `optimizers[0].weights`."""
    rig = Rig(GROUPS, composite_cls=tfrs_composite_class())
    rig.apply(STEP)
    assert _identities(rig.composite.weights) == _identities([w for o in rig.sub_optimizers for w in o.weights])


@requirement("WEIGHT-2")
def test_get_weights_values_in_weights_order():
    """WEIGHT-2: `get_weights()` returns the values of `weights`, in that order."""
    rig = Rig(GROUPS)
    for _ in range(3):
        rig.apply(STEP)
    rig.apply(STEP[:1])
    values = rig.composite.get_weights()
    assert len(values) == len(rig.composite.weights)
    for value, variable in zip(values, rig.composite.weights):
        np.testing.assert_array_equal(value, variable.numpy())
    assert values[0] == 4 and values[1] == 4 and values[6] == 3  # composite, Adam, SGD counters


@requirement("WEIGHT-2")
def test_set_weights_writes_every_position():
    """WEIGHT-2: `set_weights` writes each value to the variable at its position (arrays, tensors,
    Python scalars and nested lists accepted)."""
    rig = Rig(GROUPS)
    rig.apply(STEP)
    new = [np.asarray(w) + i + 1 for i, w in enumerate(rig.composite.get_weights())]
    rig.composite.set_weights([tf.constant(x) if i % 2 else x for i, x in enumerate(new)])
    for value, variable in zip(new, rig.composite.weights):
        np.testing.assert_array_equal(value, variable.numpy())
    # Plain Python values (scalars, nested lists) are checked by the shape numpy gives them.
    as_lists = [np.asarray(w) * 2 for w in rig.composite.get_weights()]
    rig.composite.set_weights([x.tolist() for x in as_lists])
    for value, variable in zip(as_lists, rig.composite.weights):
        np.testing.assert_array_equal(value, variable.numpy())


@requirement("WEIGHT-3", "ITER-3")
def test_set_weights_transfers_the_full_state():
    """WEIGHT-3: `set_weights(get_weights())` into a composite of the same structure (whose
    sub-optimizers have made their weights) moves every counter and slot: both then train alike,
    each sub-optimizer's schedule state following its own counter (ITER-3)."""
    source = Rig(GROUPS)
    for k in range(3):
        source.apply(STEP if k != 1 else STEP[:2])
    target = Rig(GROUPS)
    target.apply(STEP)  # creates the weights, with different values
    for mine, theirs in zip(target.variables, source.variables):
        mine.assign(theirs)
    target.composite.set_weights(source.composite.get_weights())
    assert target.composite.iterations.numpy() == 3
    for _ in range(2):
        source.apply(STEP[1:])
        target.apply(STEP[1:])
    for mine, theirs in zip(target.variables, source.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    for mine, theirs in zip(target.composite.get_weights(), source.composite.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


@requirement("WEIGHT-3")
def test_set_weights_transfer_changes_results():
    """WEIGHT-3 (sensitivity): without the transfer the target would train differently."""
    source = Rig([(adagrad(0.5), [A])])
    for _ in range(3):
        source.apply([(0, A)])
    target = Rig([(adagrad(0.5), [A])])
    target.apply([(0, A * 0)])
    target.variables[0].assign(source.variables[0])
    untransferred = target.variables[0].numpy().copy()
    target.composite.set_weights(source.composite.get_weights())
    source.apply([(0, A)])
    target.apply([(0, A)])
    assert_close(target.variables[0].numpy(), source.variables[0].numpy())
    assert not np.allclose(untransferred - 0.5 * A / np.sqrt(0.1 + A * A), target.variables[0].numpy())


@requirement("WEIGHT-2", "ATOM-3")
def test_tfrs_set_weights_mismatch_does_not_name_the_position():
    """WEIGHT-2 / ATOM-3 TFRS note: TFRS (tf_keras' own `set_weights`) also writes nothing on a
    shape mismatch, but its message gives the two shapes, not the position."""
    rig = Rig(GROUPS, composite_cls=tfrs_composite_class())
    rig.apply(STEP)
    values = rig.composite.get_weights()
    bad = [v + 1 for v in values]
    bad[2] = np.zeros(5, np.float32)
    with pytest.raises(ValueError) as info:
        rig.composite.set_weights(bad)
    assert "value 2" not in str(info.value) and "(5,)" in str(info.value)
    for value, variable in zip(values, rig.composite.weights):
        np.testing.assert_array_equal(value, variable.numpy())


@requirement("WEIGHT-3")
def test_tfrs_transfer_carries_its_iterations():
    """WEIGHT-3 TFRS note: TFRS has no composite counter; its `iterations` (optimizers[0]'s) moves
    with that sub-optimizer's weights."""
    source = Rig(GROUPS, composite_cls=tfrs_composite_class())
    for _ in range(3):
        source.apply(STEP)
    target = Rig(GROUPS, composite_cls=tfrs_composite_class())
    target.apply(STEP)
    target.composite.set_weights(source.composite.get_weights())
    assert target.composite.iterations.numpy() == 3
    assert target.composite.weights[0] is target.sub_optimizers[0].iterations


@requirement("WEIGHT-1", "CKPT-1")
def test_order_follows_each_sub_optimizers_own_weights_after_a_restore(tmp_path):
    """WEIGHT-1: each sub-optimizer's part is in its own `weights` order. After a checkpoint
    restore into fresh optimizers, tf_keras creates the slots before the counter and lists
    them first; the composite follows (CKPT-1 restores the values either way)."""
    source = Rig(GROUPS)
    source.apply(STEP)
    path = tf.train.Checkpoint(optimizer=source.composite, variables=source.variables).save(str(tmp_path / "c"))
    target = Rig(GROUPS)
    tf.train.Checkpoint(optimizer=target.composite, variables=target.variables).restore(path)
    adam_opt = target.sub_optimizers[0]
    counter = adam_opt.iterations  # created now, restored from the checkpoint on creation
    assert counter.numpy() == 1
    slots = [adam_opt.get_slot(v, s) for s in ("m", "v") for v in target.variables[:2]]
    assert adam_opt.weights[-1] is counter  # tf_keras' own order here: slots (as restored), then counter
    assert set(_identities(adam_opt.weights[:-1])) == set(_identities(slots))
    assert _identities(target.composite.weights) == _identities(
        [target.composite.iterations] + [w for o in target.sub_optimizers for w in o.weights])
