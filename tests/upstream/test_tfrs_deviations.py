"""Direct reproductions of TFRS 0.7.7's deviations (adapters/expectations/tfrs.toml, and the device
files tfrs.workers.toml and tfrs.ps.toml).

Each test drives `tfrs.experimental.optimizers.CompositeOptimizer` with plain TensorFlow and
tf_keras, no suite or adapter code, and asserts what TFRS does instead of what SPEC says: it fails
the day TFRS stops deviating, and the expectations entry it backs must then go. Run by
`nox -s "conformance(impl='tfrs')"` before the suite (tests/conftest.py sets TF_USE_LEGACY_KERAS=1).
"""

import numpy as np
import pytest

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

CompositeOptimizer = tfrs.experimental.optimizers.CompositeOptimizer
legacy = tf_keras.optimizers.legacy


def two_groups(first=None, second=None):
    """A composite of two entries (SGD(0.1) each unless given) over variables a and b."""
    a = tf.Variable([1.0, 2.0], name="a")
    b = tf.Variable([3.0, 4.0], name="b")
    composite = CompositeOptimizer([(first or legacy.SGD(0.1), lambda: [a]), (second or legacy.SGD(0.1), lambda: [b])])
    return composite, a, b


@pytest.mark.requirement("CTOR-1", "CLIP-1", "CLIP-2", "DIST-1")
@pytest.mark.parametrize("setting", ["clipnorm", "clipvalue", "global_clipnorm"])
def test_constructor_refuses_clip_settings(setting):
    """SPEC CTOR-1: "`kwargs` accepts `clipnorm`, `clipvalue` and `global_clipnorm`"; CLIP-1/2 and
    DIST-1 clip through them. TFRS's __init__ takes only `name`: every clip setting is a TypeError,
    so no composite clipping exists on any device."""
    a = tf.Variable([1.0, 2.0])
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{setting}'"):
        CompositeOptimizer([(legacy.SGD(0.1), lambda: [a])], **{setting: 1.0})


@pytest.mark.requirement("CONF-1", "CONF-2", "CONF-4")
def test_get_config_raises_not_implemented():
    """SPEC CONF-1: "`get_config()` returns a JSON-serialisable dict"; CONF-4: "`from_config(get_config())`
    yields an optimizer with an equal config". TFRS raises NotImplementedError for every composite."""
    composite, _, _ = two_groups()
    with pytest.raises(NotImplementedError, match="cannot be serialized"):
        composite.get_config()


@pytest.mark.requirement("ITER-1")
def test_iterations_is_the_first_sub_optimizers_counter():
    """SPEC ITER-1: "`iterations` is the composite's own int64 counter. It advances by exactly 1 for each
    step that applies at least one gradient". TFRS returns optimizers[0].iterations, which stays at 0
    on a step that reaches only group 1."""
    composite, a, b = two_groups()
    composite.apply_gradients([(tf.constant([1.0, 1.0]), b)])
    np.testing.assert_allclose(b.numpy(), [2.9, 3.9], rtol=1e-6)  # The step happened...
    assert int(composite.optimizers[1].iterations.numpy()) == 1
    assert int(composite.iterations.numpy()) == 0  # ...but the composite's counter did not advance.
    assert composite.iterations is composite.optimizers[0].iterations


@pytest.mark.requirement("ROUTE-2", "ATOM-1")
def test_group_of_none_gradients_raises_after_earlier_groups_were_updated():
    """SPEC ROUTE-2: "a `None` gradient never raises on its own, whichever group it is in". TFRS hands
    each group to its sub-optimizer in turn: a group whose gradients are all None raises tf_keras'
    ValueError "No gradients provided for any variable", after group 0 was already updated (ATOM-1)."""
    composite, a, b = two_groups()
    with pytest.raises(ValueError, match="No gradients provided for any variable"):
        composite.apply_gradients([(tf.constant([1.0, 1.0]), a), (None, b)])
    np.testing.assert_allclose(a.numpy(), np.array([1.0, 2.0]) - 0.1, rtol=1e-6)  # Group 0 stepped.
    np.testing.assert_allclose(b.numpy(), [3.0, 4.0])


@pytest.mark.requirement("ATOM-1")
def test_wrong_shaped_gradient_raises_after_earlier_groups_were_updated():
    """SPEC ATOM-1: "Every error of a step is raised before anything changes". TFRS applies groups one
    after another: a wrong-shaped gradient in group 1 raises from its kernel after group 0 was updated."""
    composite, a, b = two_groups()
    with pytest.raises(tf.errors.InvalidArgumentError):
        composite.apply_gradients([(tf.constant([1.0, 1.0]), a), (tf.constant([1.0, 1.0, 1.0]), b)])
    np.testing.assert_allclose(a.numpy(), np.array([1.0, 2.0]) - 0.1, rtol=1e-6)


@pytest.mark.requirement("ATOM-2")
def test_wrong_shaped_gradient_is_not_a_value_error():
    """SPEC ATOM-2: "A dense gradient whose shape does not match its variable ... is a `ValueError` naming
    the variable, raised before anything changes". TFRS checks no shape: the sub-optimizer's kernel
    raises InvalidArgumentError (not a ValueError), naming the shapes, not the variable."""
    composite, a, _ = two_groups()
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        composite.apply_gradients([(tf.constant([1.0, 1.0, 1.0]), a)])
    assert not isinstance(raised.value, ValueError)
    assert "do not have the same shape" in str(raised.value)
    assert "'a" not in str(raised.value)


@pytest.mark.requirement("INTEG-1")
def test_apply_gradients_returns_none():
    """SPEC INTEG-1: "`apply_gradients` returns what tf_keras' own optimizers return: the counter's
    `assign_add` ..., never `None`". TFRS's apply_gradients returns None (tf_keras' SGD does not)."""
    composite, a, _ = two_groups()
    assert composite.apply_gradients([(tf.constant([1.0, 1.0]), a)]) is None
    assert legacy.SGD(0.1).apply_gradients([(tf.constant([1.0, 1.0]), a)]) is not None


@pytest.mark.requirement("CTOR-3")
@pytest.mark.parametrize("fault", ["not a pair", "not callable", "same optimizer twice"])
def test_malformed_entries_are_accepted_at_construction(fault):
    """SPEC CTOR-3: "An entry that is not an (optimizer, callable) pair ... or a second element that is not
    callable is a `TypeError` whose message names the entry's index ... The same optimizer instance in
    two entries is a `ValueError` naming both indices". TFRS constructs all of these without complaint."""
    a, b = tf.Variable([1.0]), tf.Variable([2.0])
    first = legacy.SGD(0.1)
    bad = {
        "not a pair": (legacy.SGD(0.1),),
        "not callable": (legacy.SGD(0.1), [b]),
        "same optimizer twice": (first, lambda: [b]),
    }[fault]
    CompositeOptimizer([(first, lambda: [a]), bad])  # Accepted: this test fails the day it raises.


@pytest.mark.requirement("CTOR-3")
def test_non_optimizer_entry_error_does_not_name_the_index():
    """SPEC CTOR-3: "a sub-optimizer that is not a `tf_keras.optimizers.legacy.Optimizer` ... is a
    `TypeError` whose message names the entry's index (`optimizers_and_vars[2]`)". TFRS's TypeError
    comes from checkpoint tracking and names the type, not the entry."""
    a, b = tf.Variable([1.0]), tf.Variable([2.0])
    with pytest.raises(TypeError, match="can only be used to track objects of type Trackable") as raised:
        CompositeOptimizer([(legacy.SGD(0.1), lambda: [a]), ("sgd", lambda: [b])])
    assert "[1]" not in str(raised.value)


@pytest.mark.requirement("SLOT-1", "SLOT-2")
def test_slots_are_not_delegated_to_the_owning_sub_optimizer():
    """SPEC SLOT-1: "`get_slot(var, name)` returns the slot held by the sub-optimizer that owns `var`";
    SLOT-2: "`add_slot` ... creates the slot in the owning sub-optimizer". TFRS uses the composite's own
    slot table: get_slot raises KeyError for a slot Adam holds, and add_slot creates it in the composite."""
    composite, a, b = two_groups(first=legacy.Adam(0.1))
    composite.apply_gradients([(tf.constant([1.0, 1.0]), a)])
    assert composite.optimizers[0].get_slot(a, "m") is not None
    with pytest.raises(KeyError):
        composite.get_slot(a, "m")
    slot = composite.add_slot(b, "extra")
    assert composite.get_slot(b, "extra") is slot
    with pytest.raises(KeyError):
        composite.optimizers[1].get_slot(b, "extra")


@pytest.mark.requirement("WEIGHT-1")
def test_weights_omit_the_composite_counter():
    """SPEC WEIGHT-1: "`weights` and `variables()` are `[composite iterations] + optimizers[0].weights +
    optimizers[1].weights + ...`". TFRS's list is only the sub-optimizers' weights, starting with
    optimizers[0]'s own counter."""
    composite, a, b = two_groups(first=legacy.Adam(0.1))
    composite.apply_gradients([(tf.constant([1.0, 1.0]), a), (tf.constant([1.0, 1.0]), b)])
    expected = composite.optimizers[0].weights + composite.optimizers[1].weights
    assert [w.ref() for w in composite.weights] == [w.ref() for w in expected]
    assert [w.ref() for w in composite.variables()] == [w.ref() for w in expected]


@pytest.mark.requirement("CTOR-4")
def test_invalid_clip_value_is_a_type_error_not_a_value_error():
    """SPEC CTOR-4: "A clip setting that is not a positive finite number ... is refused with
    `ValueError`". TFRS has no clip settings: a negative clipnorm is refused as an unexpected keyword
    (TypeError), whatever its value."""
    a = tf.Variable([1.0, 2.0])
    with pytest.raises(TypeError, match="unexpected keyword argument 'clipnorm'"):
        CompositeOptimizer([(legacy.SGD(0.1), lambda: [a])], clipnorm=-1.0)


@pytest.mark.requirement("ROUTE-4")
def test_overlap_message_names_the_optimizers_not_the_entry_indices():
    """SPEC ROUTE-4: "A variable listed by two entries is a `ValueError` naming the variable and both
    entry indices". TFRS's ValueError names the variable and the two optimizers' reprs, no index."""
    shared = tf.Variable([1.0, 2.0], name="shared")
    composite = CompositeOptimizer([(legacy.SGD(0.1), lambda: [shared]), (legacy.SGD(0.1), lambda: [shared])])
    with pytest.raises(ValueError, match="handled both by <tf_keras") as info:
        composite.apply_gradients([(tf.constant([1.0, 1.0]), shared)])
    message = str(info.value)
    assert "shared" in message and not any(f"[{i}]" in message or f" {i} " in message for i in (0, 1)), message


@pytest.mark.requirement("WEIGHT-2")
def test_set_weights_shape_error_gives_shapes_not_the_position():
    """SPEC WEIGHT-2: on a mismatch `set_weights` "raises `ValueError` naming the position and writes
    nothing". TFRS (tf_keras' own set_weights) writes nothing, but its message gives only the two shapes."""
    composite, a, b = two_groups(first=legacy.Adam(0.1))
    composite.apply_gradients([(tf.constant([1.0, 1.0]), a), (tf.constant([1.0, 1.0]), b)])
    values = composite.get_weights()
    values[0] = np.zeros(2, np.float32)  # Position 0 holds a scalar counter.
    with pytest.raises(ValueError, match=r"^Optimizer weight shape \(\) not compatible with provided weight shape \(2,\)\.$"):
        composite.set_weights(values)


@pytest.mark.requirement("DIST-2")
def test_a_partitioned_table_listed_whole_cannot_be_routed():
    """SPEC DIST-2: "a group may list a partitioned variable (a `ShardedVariable`) whole or by its
    shards". TFRS matches by `var.ref()`, which a ShardedVariable lacks: the step raises
    AttributeError. (The ShardedVariable is built directly from its two shards, as
    ParameterServerStrategy's variable_partitioner builds it, without a cluster.)"""
    from tensorflow.python.distribute.sharded_variable import ShardedVariable

    shards = [tf.Variable([[1.0], [2.0]]), tf.Variable([[3.0], [4.0]])]
    table = ShardedVariable(shards, name="table")
    composite = CompositeOptimizer([(legacy.SGD(0.1), lambda: [table])])
    with pytest.raises(AttributeError, match="'ShardedVariable' object has no attribute 'ref'"):
        composite.apply_gradients([(tf.ones((2, 1)), shards[0]), (tf.ones((2, 1)), shards[1])])


@pytest.mark.requirement("DIST-2", "CLIP-3")
def test_sub_optimizer_clipnorm_clips_each_shard_by_its_own_norm():
    """SPEC DIST-2: a sub-optimizer's own `clipnorm` "spans all shards of a partitioned variable" (the
    variable's norm, as if it were not partitioned). TFRS hands the shards' gradients to the
    sub-optimizer one by one, and tf_keras clips each by that shard's norm."""
    from tensorflow.python.distribute.sharded_variable import ShardedVariable

    shards = [tf.Variable([[0.0], [0.0]]), tf.Variable([[0.0], [0.0]])]
    table = ShardedVariable(shards, name="table")
    composite = CompositeOptimizer([(legacy.SGD(1.0, clipnorm=1.0), lambda: table.variables)])
    grads = [tf.constant([[3.0], [4.0]]), tf.constant([[0.0], [0.0]])]  # Norm 5 in shard 0, 0 in shard 1.
    composite.apply_gradients(list(zip(grads, shards)))
    # Whole-variable norm 5 -> both factor 1/5; here shard 0 is clipped by its own norm (also 5) ...
    np.testing.assert_allclose(shards[0].numpy().ravel(), [-0.6, -0.8], rtol=1e-6)
    shards[0].assign([[0.0], [0.0]])
    grads = [tf.constant([[3.0], [0.0]]), tf.constant([[4.0], [0.0]])]  # Norm 3 and 4; the variable's is 5.
    composite.apply_gradients(list(zip(grads, shards)))
    # ... and with the norm split across shards each is clipped to 1 on its own: [-1, -1], not [-0.6, -0.8].
    np.testing.assert_allclose([shards[0].numpy()[0, 0], shards[1].numpy()[0, 0]], [-1.0, -1.0], rtol=1e-6)
