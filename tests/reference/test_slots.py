"""SLOT: slot access is delegated to the owning sub-optimizer; the composite owns none."""

import numpy as np
import pytest
import tensorflow as tf

from reference import CompositeOptimizer
from ref_helpers import Rig, adam, assert_matches_oracle, momentum, tfrs_composite_class

requirement = pytest.mark.requirement

A = np.array([1.0, 2.0], np.float32)
B = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
GROUPS = [(adam(0.1), [A]), (momentum(0.1), [B])]
STEP = [(0, A), (1, B)]


@requirement("SLOT-1")
def test_get_slot_returns_the_owners_slot():
    """SLOT-1: `get_slot(var, name)` is the very slot variable the owning sub-optimizer holds."""
    rig = Rig(GROUPS)
    rig.apply(STEP)
    a, b = rig.variables
    adam_opt, sgd_opt = rig.sub_optimizers
    assert rig.composite.get_slot(a, "m") is adam_opt.get_slot(a, "m")
    assert rig.composite.get_slot(a, "v") is adam_opt.get_slot(a, "v")
    assert rig.composite.get_slot(b, "momentum") is sgd_opt.get_slot(b, "momentum")


@requirement("SLOT-1")
def test_get_slot_key_errors():
    """SLOT-1: `KeyError` for a variable no entry lists (naming it) and for a slot its owner lacks."""
    rig = Rig(GROUPS)
    rig.apply(STEP)
    stray = tf.Variable(A, name="stray_slot_var")
    with pytest.raises(KeyError, match="stray_slot_var"):
        rig.composite.get_slot(stray, "m")
    with pytest.raises(KeyError):
        rig.composite.get_slot(rig.variables[1], "m")  # momentum's variable has no "m"
    with pytest.raises(KeyError):
        rig.composite.get_slot(rig.variables[0], "momentum")


@requirement("SLOT-1")
def test_tfrs_get_slot_is_not_delegated():
    """SLOT-1 TFRS note: TFRS's own (empty) slot table raises KeyError for every variable."""
    rig = Rig(GROUPS, composite_cls=tfrs_composite_class())
    rig.apply(STEP)
    assert rig.sub_optimizers[0].get_slot(rig.variables[0], "m") is not None
    with pytest.raises(KeyError):
        rig.composite.get_slot(rig.variables[0], "m")


@requirement("SLOT-2")
def test_add_slot_creates_in_owner():
    """SLOT-2: `add_slot` creates the slot in the owning sub-optimizer, which then sees it."""
    rig = Rig(GROUPS)
    b = rig.variables[1]
    slot = rig.composite.add_slot(b, "extra", initializer="ones")
    assert rig.sub_optimizers[1].get_slot(b, "extra") is slot
    assert rig.composite.get_slot(b, "extra") is slot
    np.testing.assert_array_equal(slot.numpy(), np.ones_like(B))
    assert "extra" in rig.sub_optimizers[1].get_slot_names()
    assert rig.composite.get_slot_names() == []
    assert not rig.composite._weights  # nothing created in the composite itself


@requirement("SLOT-2")
def test_add_slot_before_training_is_used_by_the_owner():
    """SLOT-2: a slot added through the composite before training is the one the sub-optimizer
    then updates: training matches the sub-optimizer alone."""
    rig = Rig(GROUPS)
    alone = rig.oracle()
    b = rig.variables[1]
    slot = rig.composite.add_slot(b, "momentum")
    alone.sub_optimizers[1].add_slot(alone.variables[1], "momentum")
    for _ in range(2):
        rig.apply(STEP)
        alone.apply(STEP)
    assert_matches_oracle(rig, alone)
    assert rig.sub_optimizers[1].get_slot(b, "momentum") is slot
    assert not np.array_equal(slot.numpy(), np.zeros_like(B))


@requirement("SLOT-2")
def test_add_slot_for_unlisted_variable_is_value_error():
    """SLOT-2: `add_slot` for a variable no entry lists is a ValueError naming it."""
    rig = Rig(GROUPS)
    stray = tf.Variable(A, name="stray_add_slot")
    with pytest.raises(ValueError, match="stray_add_slot"):
        rig.composite.add_slot(stray, "m")
    assert all(not o._weights for o in rig.sub_optimizers)


@requirement("SLOT-2")
def test_tfrs_add_slot_lands_in_the_composite():
    """SLOT-2 TFRS note: TFRS creates the slot in the composite, where no sub-optimizer sees it."""
    rig = Rig(GROUPS, composite_cls=tfrs_composite_class())
    b = rig.variables[1]
    slot = rig.composite.add_slot(b, "extra")
    assert rig.composite.get_slot(b, "extra") is slot
    with pytest.raises(KeyError):
        rig.sub_optimizers[1].get_slot(b, "extra")


@requirement("SLOT-3")
def test_get_slot_names_is_empty():
    """SLOT-3: `get_slot_names()` is `[]` even when every sub-optimizer has slots."""
    rig = Rig(GROUPS)
    rig.apply(STEP)
    assert rig.sub_optimizers[0].get_slot_names() == ["m", "v"]
    assert rig.composite.get_slot_names() == []


class SlotReportingComposite(CompositeOptimizer):
    """The mistake SLOT-3 forbids: the composite reports its sub-optimizers' slots as its own."""

    def get_slot_names(self):
        return sorted({name for o in self.optimizers for name in o.get_slot_names()})


@requirement("SLOT-3", "CKPT-1")
def test_reporting_sub_optimizer_slots_breaks_checkpoint_save(tmp_path):
    """SLOT-3: a composite whose `get_slot_names` reports its sub-optimizers' slot names makes
    `tf.train.Checkpoint.save` fail ("re-used as a dependency"); the reference saves fine (CKPT-1)."""
    broken = Rig(GROUPS, composite_cls=SlotReportingComposite)
    broken.apply(STEP)
    with pytest.raises(Exception, match="re-used as a dependency"):
        tf.train.Checkpoint(optimizer=broken.composite, variables=broken.variables).save(str(tmp_path / "broken"))
    rig = Rig(GROUPS)
    rig.apply(STEP)
    path = tf.train.Checkpoint(optimizer=rig.composite, variables=rig.variables).save(str(tmp_path / "ok"))
    assert "variables/0/.OPTIMIZER_SLOT/optimizer/Optimizer0/m/.ATTRIBUTES/VARIABLE_VALUE" in dict(
        tf.train.list_variables(path))
