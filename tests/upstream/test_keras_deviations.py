"""Direct reproductions of Keras 3 `MultiOptimizer`'s deviations (adapters/expectations/keras*.toml).

Each test drives `keras.optimizers.MultiOptimizer` with plain Keras, no suite or adapter code, and
asserts what Keras does instead of what SPEC says: it fails the day Keras stops deviating, and the
expectations entries it backs must then go. Keras fixes its backend at first import from
KERAS_BACKEND, so this file runs once per backend, in `nox -s "conformance(impl='keras')"`
(tensorflow), `keras-jax` and `keras-torch`; every deviation here is the same on the three.

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


@pytest.mark.requirement("WEIGHT-3")
def test_set_weights_fails_when_an_entry_has_no_variables():
    """SPEC WEIGHT-3: "`set_weights(get_weights())` moves the full state into a composite of the same
    structure". A sub-optimizer with no variables (here the default optimizer, every variable being keyed)
    is never built, yet MultiOptimizer.set_weights calls its set_weights (it holds iteration and
    learning_rate from __init__), which raises "...an optimizer that has not yet been built": the
    composite cannot take even its own state back."""
    a = variable("a", [1.0, 2.0])
    optimizer_map = keras.optimizers.OptimizerMap(default_optimizer=keras.optimizers.SGD(0.1))
    optimizer_map[a.path] = keras.optimizers.Adam(0.1)
    composite = keras.optimizers.MultiOptimizer(optimizer_map)
    composite.build([a])
    composite.apply([tensor([1.0, 1.0])], [a])
    with pytest.raises(ValueError, match="has not yet been built"):
        composite.set_weights(values(composite.variables))
