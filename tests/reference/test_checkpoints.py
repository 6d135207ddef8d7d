"""CKPT: tf.train.Checkpoint round trips, and restoring TFRS's checkpoints into the reference."""

import numpy as np
import pytest
import tensorflow as tf

from ref_helpers import Rig, adagrad, adam, momentum, tfrs_composite_class

requirement = pytest.mark.requirement

INITS = [np.array([1.0, -2.0], np.float32), np.array([[0.5, 1.5], [2.0, -1.0], [0.1, 0.2]], np.float32),
         np.array([3.0], np.float32)]
GROUPS = [(adam(0.1), INITS[:2]), (momentum(0.1, 0.9), INITS[2:]), (adagrad(0.3), INITS[:1])]
STEPS = [
    [(0, INITS[0]), (1, INITS[1]), (2, INITS[2]), (3, INITS[0] * 2)],
    [(0, -INITS[0]), (3, INITS[0])],                          # group 1 absent
    [(1, INITS[1] * 0.5), (2, INITS[2] * -1)],                # groups 0 (partly) and 1; group 2 absent
]
MORE = [[(0, INITS[0] * 0.3), (1, INITS[1] - 1), (2, INITS[2]), (3, -INITS[0])], [(2, INITS[2] * 4)]]


def _save(rig, path):
    return tf.train.Checkpoint(optimizer=rig.composite, variables=rig.variables).save(path)


def _restore(rig, path):
    tf.train.Checkpoint(optimizer=rig.composite, variables=rig.variables).restore(path)


def _slots(rig):
    """Every slot value, addressed by (entry, variable number, slot name): independent of order."""
    out = {}
    offset = 0
    for index, (optimizer, group) in enumerate(zip(rig.sub_optimizers, rig.groups)):
        for k, variable in enumerate(group):
            for name in optimizer.get_slot_names():
                out[(index, offset + k, name)] = optimizer.get_slot(variable, name).numpy()
        offset += len(group)
    return out


def _assert_same_training_state(mine, theirs):
    for k, (a, b) in enumerate(zip(mine.variables, theirs.variables)):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"variable {k}")
    assert [o.iterations.numpy() for o in mine.sub_optimizers] == [o.iterations.numpy() for o in theirs.sub_optimizers]
    my_slots, their_slots = _slots(mine), _slots(theirs)
    assert my_slots.keys() == their_slots.keys()
    for key in my_slots:
        np.testing.assert_array_equal(my_slots[key], their_slots[key], err_msg=str(key))


@requirement("CKPT-1", "CTOR-5")
@pytest.mark.parametrize("warm", [False, True], ids=["into-fresh", "into-trained"])
def test_round_trip_then_training_continues_identically(tmp_path, warm):
    """CKPT-1: a checkpoint restores the composite counter and every sub-optimizer's counter and
    slots (into a fresh composite, or over one that has trained); training then continues
    exactly as the original does. The sub-optimizers are found under CTOR-5's names."""
    original = Rig(GROUPS)
    for step in STEPS:
        original.apply(step)
    path = _save(original, str(tmp_path / "ckpt"))
    restored = Rig(GROUPS)
    if warm:
        for step in MORE:
            restored.apply(step)
    _restore(restored, path)
    assert restored.composite.iterations.numpy() == len(STEPS)
    _assert_same_training_state(restored, original)
    for step in MORE:
        original.apply(step)
        restored.apply(step)
    _assert_same_training_state(restored, original)
    assert restored.composite.iterations.numpy() == original.composite.iterations.numpy() == len(STEPS) + len(MORE)


@requirement("CKPT-2", "CTOR-5")
@pytest.mark.parametrize("warm", [False, True], ids=["into-fresh", "into-trained"])
def test_tfrs_checkpoint_restores_into_reference(tmp_path, warm):
    """CKPT-2: a checkpoint written by TFRS's CompositeOptimizer restores its sub-optimizers'
    counters and slots into the reference, entry by entry (CTOR-5's `OptimizerN` names); both then
    train identically."""
    tfrs_rig = Rig(GROUPS, composite_cls=tfrs_composite_class())
    for step in STEPS:
        tfrs_rig.apply(step)
    assert [o.iterations.numpy() for o in tfrs_rig.sub_optimizers] == [3, 2, 2]
    path = _save(tfrs_rig, str(tmp_path / "tfrs"))
    reference = Rig(GROUPS)
    if warm:
        for step in MORE:
            reference.apply(step)
    _restore(reference, path)
    _assert_same_training_state(reference, tfrs_rig)
    for step in MORE:
        tfrs_rig.apply(step)
        reference.apply(step)
    _assert_same_training_state(reference, tfrs_rig)


@requirement("CKPT-1")
def test_restore_changes_the_outcome(tmp_path):
    """CKPT-1 (sensitivity): a composite that skips the restore ends elsewhere."""
    original = Rig(GROUPS)
    for step in STEPS:
        original.apply(step)
    path = _save(original, str(tmp_path / "ckpt"))
    restored, unrestored = Rig(GROUPS), Rig(GROUPS)
    _restore(restored, path)
    for mine, theirs in zip(unrestored.variables, original.variables):
        mine.assign(theirs)
    for step in MORE:
        for rig in (original, restored, unrestored):
            rig.apply(step)
    np.testing.assert_array_equal(restored.variables[0].numpy(), original.variables[0].numpy())
    assert not np.allclose(unrestored.variables[0].numpy(), original.variables[0].numpy())
