"""Direct reproductions of Keras 3 `MultiOptimizer`'s deviations (adapters/expectations/keras*.toml).

Each test drives `keras.optimizers.MultiOptimizer` with plain Keras, no suite or adapter code, and
asserts what Keras does instead of what SPEC says: it fails the day Keras stops deviating, and the
expectations entries it backs must then go. Keras fixes its backend at first import from
KERAS_BACKEND, so this file runs once per backend, in `nox -s "conformance(impl='keras')"`
(tensorflow), `keras-jax` and `keras-torch`; every deviation here is the same on the three, except
the one under a distribution strategy, which only the TensorFlow backend's run (on replicas) shows.

The composites are written as the Keras docs write them: an `OptimizerMap` whose keys are variable
paths (or regexes over them) and whose default optimizer takes every variable no key matches, built
over the model's variables (as `Model.fit` does) before the first step.
"""

import os

import keras
import numpy as np
import pytest

# The backend these reproductions run on is the session's, never a silent fallback.
assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow"), keras.backend.backend()

TENSORFLOW = keras.backend.backend() == "tensorflow"
if TENSORFLOW:  # Two logical CPUs for MirroredStrategy, as `--device replicas:2` makes them (adapters/keras3.py).
    import tensorflow as tf

    try:
        tf.config.set_logical_device_configuration(
            tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    except RuntimeError:  # TensorFlow already started (another module ran first): the test below says so.
        pass


def variable(name, value):
    return keras.Variable(np.asarray(value, np.float32), name=name)


def tensor(value):
    return keras.ops.convert_to_tensor(np.asarray(value, np.float32))


def values(variables):
    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in variables]


def two_groups(first, second):
    """MultiOptimizer: `first` for variable a (keyed by its path), `second` the default (variable b)."""
    a, b = variable("a", [1.0, 2.0]), variable("b", [3.0, 4.0])
    optimizer_map = keras.optimizers.OptimizerMap(default_optimizer=second)
    optimizer_map[a.path] = first
    composite = keras.optimizers.MultiOptimizer(optimizer_map)
    composite.build([a, b])
    return composite, a, b


@pytest.mark.requirement("ROUTE-7")
def test_step_leaving_a_group_out_raises_one_to_one():
    """SPEC ROUTE-7: "A sub-optimizer whose group gets no gradient in a step is not called: its own counter
    and slots stay unchanged". MultiOptimizer.apply refuses any call that does not give one gradient per
    variable it was built with: a step for group a alone raises ValueError ("Gradients must match
    trainable variables one-to-one") and nothing is applied."""
    composite, a, b = two_groups(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="Gradients must match trainable variables one-to-one"):
        composite.apply([tensor([1.0, 1.0])], [a])
    np.testing.assert_array_equal(values([a, b]), [[1.0, 2.0], [3.0, 4.0]])
    assert int(keras.ops.convert_to_numpy(composite.iterations)) == 0


@pytest.mark.requirement("ROUTE-2", "ROUTE-7", "ATOM-1")
def test_group_of_none_gradients_raises_after_earlier_groups_were_updated():
    """SPEC ROUTE-2: "a `None` gradient never raises on its own, whichever group it is in"; ROUTE-7: a
    sub-optimizer whose group gets no gradient is not called; ATOM-1: a call that raises changes nothing.
    MultiOptimizer hands every group to its sub-optimizer, even one whose gradients are all None (as
    Model.fit passes them for unused variables): that sub-optimizer raises "No gradients provided for any
    variable", after the groups before it were updated and without advancing the composite's counter."""
    composite, a, b = two_groups(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="No gradients provided for any variable"):
        composite.apply([tensor([1.0, 1.0]), None], [a, b])
    np.testing.assert_allclose(values([a])[0], np.array([1.0, 2.0]) - 0.1, rtol=1e-6)  # Group a stepped.
    np.testing.assert_array_equal(values([b])[0], [3.0, 4.0])
    assert int(keras.ops.convert_to_numpy(composite.iterations)) == 0


@pytest.mark.requirement("ROUTE-1")
def test_variables_with_the_same_path_are_routed_together():
    """SPEC ROUTE-1: each step "matches variables by identity (`v.ref()`), never by name: two different
    variables with the same name route independently". OptimizerMap routes by `variable.path`: two
    variables named alike (as variables created outside layers are) have the same path, so the key
    that names one takes the other too, and the default optimizer meant for it never sees it."""
    a, b = variable("kernel", [1.0, 2.0]), variable("kernel", [3.0, 4.0])
    assert a.path == b.path
    optimizer_map = keras.optimizers.OptimizerMap(default_optimizer=keras.optimizers.SGD(0.5))  # Meant for b.
    optimizer_map[a.path] = keras.optimizers.SGD(0.1)  # Meant for a.
    composite = keras.optimizers.MultiOptimizer(optimizer_map)
    composite.build([a, b])
    composite.apply([tensor([1.0, 1.0]), tensor([1.0, 1.0])], [a, b])
    np.testing.assert_allclose(values([b])[0], np.array([3.0, 4.0]) - 0.1, rtol=1e-6)  # SGD(0.1), not SGD(0.5).
    assert int(keras.ops.convert_to_numpy(optimizer_map.default_optimizer.iterations)) == 0


@pytest.mark.requirement("ROUTE-4")
def test_gradient_for_a_variable_no_key_lists_is_applied_by_the_default_optimizer():
    """SPEC ROUTE-4: "A variable with a gradient that no entry lists is a `ValueError` naming the variable".
    An OptimizerMap's default optimizer takes every variable of the build (Model.fit builds over all the
    model's trainable variables) that no key matches, so there is no unlisted variable: its gradient is
    applied silently by the default optimizer."""
    a, orphan = variable("a", [1.0, 2.0]), variable("orphan", [0.0, 0.0])
    optimizer_map = keras.optimizers.OptimizerMap(default_optimizer=keras.optimizers.SGD(0.5))
    optimizer_map[a.path] = keras.optimizers.SGD(0.1)
    composite = keras.optimizers.MultiOptimizer(optimizer_map)
    composite.build([a, orphan])
    composite.apply([tensor([1.0, 1.0]), tensor([1.0, 1.0])], [a, orphan])
    np.testing.assert_allclose(values([orphan])[0], [-0.5, -0.5], rtol=1e-6)
    assert int(keras.ops.convert_to_numpy(composite.iterations)) == 1


@pytest.mark.requirement("ROUTE-4")
def test_variable_matched_by_its_path_and_a_pattern_is_not_refused():
    """SPEC ROUTE-4: "A variable listed by two entries is a `ValueError` naming the variable and both entry
    indices". OptimizerMap resolves an overlap by precedence (an exact path before any regex, documented in
    OptimizerMap.__getitem__): a variable whose path is one key and matches another key's regex goes to the
    first silently; only two matching regexes raise."""
    a = variable("a", [1.0, 2.0])
    optimizer_map = keras.optimizers.OptimizerMap(default_optimizer=keras.optimizers.SGD(0.0))
    optimizer_map[a.path] = keras.optimizers.SGD(0.1)
    optimizer_map[".*"] = keras.optimizers.SGD(0.5)
    composite = keras.optimizers.MultiOptimizer(optimizer_map)
    composite.build([a])
    composite.apply([tensor([1.0, 1.0])], [a])
    np.testing.assert_allclose(values([a])[0], np.array([1.0, 2.0]) - 0.1, rtol=1e-6)  # The exact key's SGD(0.1).


@pytest.mark.requirement("DIST-1")
@pytest.mark.skipif(not TENSORFLOW, reason="the Keras adapters run replicas on the TensorFlow backend only")
def test_sub_optimizer_clips_each_replicas_gradient_before_the_sum():
    """SPEC DIST-1: "N replicas with per-replica gradients `g_r` behave exactly like one device fed `Σ_r g_r`,
    clipping and `iterations` included". Under MirroredStrategy, Optimizer.apply clips (clipnorm) in each
    replica and only then all-reduces (TensorFlow backend: `_backend_update_step`): a sub-optimizer with
    clipnorm=0.05 fed [-3, 0] on one replica and [-0.25, 0] on the other moves its variable by lr * 0.05
    twice, where one device fed the sum [-3.25, 0] moves it by lr * 0.05 once."""
    assert len(tf.config.list_logical_devices("CPU")) >= 2, "run this file alone: TensorFlow started before the CPU split"
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        composite, a, b = two_groups(keras.optimizers.SGD(0.1, clipnorm=0.05), keras.optimizers.SGD(0.1))
    per_replica = [([-3.0, 0.0], [0.0, 0.0]), ([-0.25, 0.0], [0.0, 0.0])]

    def replica_step(grads):
        composite.apply(list(grads), [a, b])

    with strategy.scope():
        grads = strategy.experimental_distribute_values_from_function(
            lambda ctx: tuple(tf.constant(g) for g in per_replica[ctx.replica_id_in_sync_group]))
        strategy.run(replica_step, args=(grads,))
    np.testing.assert_allclose(values([a])[0], [1.0 + 2 * 0.1 * 0.05, 2.0], rtol=1e-6)  # Each share clipped.
    assert not np.allclose(values([a])[0], [1.0 + 0.1 * 0.05, 2.0], rtol=1e-6)  # Not the sum clipped once.
    assert int(keras.ops.convert_to_numpy(composite.iterations)) == 1


@pytest.mark.requirement("ATOM-1")
def test_wrong_shaped_gradient_raises_after_earlier_groups_were_updated():
    """SPEC ATOM-1: "Every error of a step is raised before anything changes". MultiOptimizer.apply
    checks no shapes: it hands each group to its sub-optimizer in turn, so a gradient of the wrong
    shape for group b raises (the backend's own error) only after group a's sub-optimizer has updated
    a and advanced its own counter."""
    composite, a, b = two_groups(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    first = composite.optimizers[0]
    with pytest.raises(Exception):  # noqa: B017 - each backend raises its own type.
        composite.apply([tensor([1.0, 1.0]), tensor([[1.0, 1.0], [1.0, 1.0]])], [a, b])
    np.testing.assert_allclose(values([a])[0], np.array([1.0, 2.0]) - 0.1, rtol=1e-6)  # Group a stepped.
    assert int(keras.ops.convert_to_numpy(first.iterations)) == 1
    np.testing.assert_array_equal(values([b])[0], [3.0, 4.0])
    assert int(keras.ops.convert_to_numpy(composite.iterations)) == 0


@pytest.mark.requirement("ATOM-3", "WEIGHT-2")
def test_set_weights_with_a_wrong_shape_writes_the_values_before_it():
    """SPEC ATOM-3: `set_weights` with "any value of the wrong shape, raises `ValueError` and writes nothing";
    WEIGHT-2: it "checks the count and every shape before writing".
    MultiOptimizer.set_weights assigns its own variables, then each sub-optimizer's slice in turn, and
    Optimizer.set_weights checks each shape only as it gets there: a state whose last value has the wrong
    shape raises ValueError after every value before it was written."""
    composite, a, b = two_groups(keras.optimizers.SGD(0.1, momentum=0.9), keras.optimizers.SGD(0.1, momentum=0.9))
    composite.apply([tensor([1.0, 1.0]), tensor([1.0, 1.0])], [a, b])
    state = values(composite.variables)
    bad = [s + 1 for s in state]
    bad[-1] = np.zeros(state[-1].shape + (2,), np.float32)
    with pytest.raises(ValueError, match="not compatible with provided weight shape"):
        composite.set_weights(bad)
    now = values(composite.variables)
    for position, (value, expected) in enumerate(zip(now[:-1], bad[:-1])):
        np.testing.assert_allclose(value, expected, err_msg=f"state value {position} was written")
    np.testing.assert_allclose(now[-1], state[-1])


@pytest.mark.requirement("WEIGHT-2", "ATOM-3")
def test_set_weights_accepts_a_state_one_value_short():
    """SPEC WEIGHT-2: "`set_weights(values)` checks the count and every shape before writing; on any
    mismatch it raises `ValueError` naming the position and writes nothing". MultiOptimizer.set_weights
    hands each sub-optimizer a slice, and Optimizer.set_weights zips: a list one value short is accepted
    and written as far as it goes."""
    composite, a, b = two_groups(keras.optimizers.SGD(0.1, momentum=0.9), keras.optimizers.SGD(0.1, momentum=0.9))
    composite.apply([tensor([1.0, 1.0]), tensor([1.0, 1.0])], [a, b])
    state = values(composite.variables)
    shifted = [s + 1 for s in state[:-1]]  # One value short; every other value changed.
    composite.set_weights(shifted)
    now = values(composite.variables)
    for position, (value, expected) in enumerate(zip(now[:-1], shifted)):
        np.testing.assert_allclose(value, expected, err_msg=f"state value {position}")
    np.testing.assert_allclose(now[-1], state[-1])  # The missing last value kept its old one.


@pytest.mark.requirement("WEIGHT-1")
def test_state_holds_an_unused_composite_learning_rate():
    """SPEC WEIGHT-1: "`weights` and `variables()` are `[composite iterations] + optimizers[0].weights +
    optimizers[1].weights + ...`". MultiOptimizer.variables also holds the composite's own learning_rate
    (a 0.0 it never uses: MultiOptimizer passes learning_rate=0.0 to Optimizer.__init__) between its
    counter and the sub-optimizers' variables."""
    composite, a, b = two_groups(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.2))
    sub_variables = [v for sub in composite.optimizers for v in sub.variables]
    assert [v.path for v in composite.variables] == (
        [composite.iterations.path, composite.variables[1].path] + [v.path for v in sub_variables]
    )
    assert composite.variables[1].path.endswith("learning_rate")
    assert float(values(composite.variables[1:2])[0]) == 0.0
