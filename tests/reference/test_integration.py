"""INTEG: return values, LossScaleOptimizer inside tf.function, Model.compile/fit, public API."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from reference import CompositeOptimizer
from ref_helpers import Rig, adam, assert_close, assert_matches_oracle, legacy, momentum, named, tfrs_composite_class

requirement = pytest.mark.requirement

A = np.array([1.0, -2.0], np.float32)
B = np.array([[0.5, 1.5], [2.0, -1.0]], np.float32)
GROUPS = [(momentum(0.1, 0.9), [A]), (adam(0.05), [B])]


@requirement("INTEG-1")
def test_eager_return_matches_tf_keras():
    """INTEG-1: eagerly, `apply_gradients` returns what a tf_keras optimizer returns (the
    counter's `assign_add`), never `None`."""
    rig = Rig(GROUPS)
    returned = rig.apply([(0, A), (1, B)])
    variable = tf.Variable(A)
    plain = legacy.SGD(0.1).apply_gradients([(tf.ones(2), variable)])
    assert returned is not None and type(returned) is type(plain)
    assert int(returned.numpy()) == 1 == int(rig.composite.iterations.numpy())


@requirement("INTEG-1")
def test_tf_function_return_matches_tf_keras():
    """INTEG-1: inside `tf.function` it returns an op, as tf_keras' own optimizers do."""
    rig = Rig(GROUPS)
    variable = tf.Variable(A)
    plain = legacy.SGD(0.1)
    kinds = {}

    @tf.function
    def step():
        kinds["composite"] = type(rig.apply([(0, A), (1, B)]))
        kinds["plain"] = type(plain.apply_gradients([(tf.ones(2), variable)]))

    step()
    assert kinds["composite"] is kinds["plain"] is tf.Operation
    assert rig.composite.iterations.numpy() == 1


@requirement("INTEG-1")
def test_tfrs_returns_none():
    """INTEG-1 TFRS note: TFRS's `apply_gradients` returns `None`."""
    rig = Rig(GROUPS, composite_cls=tfrs_composite_class())
    assert rig.apply([(0, A), (1, B)]) is None


def _loss_scale_run(composite_cls, steps=3):
    """A composite wrapped in LossScaleOptimizer, stepping inside one tf.function."""
    rig = Rig(GROUPS, composite_cls=composite_cls)
    wrapped = tf_keras.mixed_precision.LossScaleOptimizer(rig.composite)
    x, y = rig.variables

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(x * x) + tf.reduce_sum(tf.sin(y))
            scaled = wrapped.get_scaled_loss(loss)
        grads = wrapped.get_unscaled_gradients(tape.gradient(scaled, [x, y]))
        wrapped.apply_gradients(zip(grads, [x, y]))

    for _ in range(steps):
        step()
    return rig, wrapped


@requirement("INTEG-2", "INTEG-1")
def test_loss_scale_optimizer_in_tf_function():
    """INTEG-2, INTEG-1: `LossScaleOptimizer(composite)` steps inside `tf.function` (its `tf.cond`
    needs INTEG-1's return), equal to the sub-optimizers alone fed the unscaled gradients."""
    rig, wrapped = _loss_scale_run(CompositeOptimizer)
    alone = rig.oracle()
    x, y = alone.variables
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(x * x) + tf.reduce_sum(tf.sin(y))
        gx, gy = tape.gradient(loss, [x, y])
        alone.sub_optimizers[0].apply_gradients([(gx, x)])
        alone.sub_optimizers[1].apply_gradients([(gy, y)])
    assert_matches_oracle(rig, alone)
    assert rig.composite.iterations.numpy() == 3 and wrapped.iterations.numpy() == 3


@requirement("INTEG-2", "INTEG-1")
def test_tfrs_fails_loss_scale_optimizer_in_tf_function():
    """INTEG-2 / INTEG-1 TFRS note: TFRS's `None` return breaks LossScaleOptimizer's `tf.cond`."""
    with pytest.raises(ValueError, match="branch outputs of cond must match"):
        _loss_scale_run(tfrs_composite_class(), steps=1)


def _dataset():
    rng = np.random.RandomState(0)
    x = rng.randn(32, 3).astype(np.float32)
    y = (x @ np.array([[0.5], [-0.3], [0.2]], np.float32) * 0.5).astype(np.float32)
    return x, y


def _model():
    tf_keras.utils.set_random_seed(1)
    inputs = tf_keras.Input((3,))
    hidden = tf_keras.layers.Dense(4, activation="tanh", name="hidden")(inputs)
    outputs = tf_keras.layers.Dense(1, name="head")(hidden)
    return tf_keras.Model(inputs, outputs)


def _model_composite(model):
    return CompositeOptimizer([
        (legacy.SGD(0.1, momentum=0.5), named("hidden_vars", model.get_layer("hidden").trainable_variables)),
        (legacy.Adam(0.02), named("head_vars", model.get_layer("head").trainable_variables)),
    ])


@requirement("INTEG-2", "ROUTE-9")
def test_model_compile_fit_matches_manual_training():
    """INTEG-2, ROUTE-9: as the optimizer of `Model.compile(...)`, `fit` trains exactly as a manual
    loop applying each sub-optimizer alone to its layer's variables."""
    x, y = _dataset()
    model = _model()
    composite = _model_composite(model)
    model.compile(optimizer=composite, loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert composite.iterations.numpy() == 8 and [o.iterations.numpy() for o in composite.optimizers] == [8, 8]

    oracle = _model()
    subs = [legacy.SGD(0.1, momentum=0.5), legacy.Adam(0.02)]
    layers = [oracle.get_layer("hidden"), oracle.get_layer("head")]
    mse = tf_keras.losses.MeanSquaredError()
    for _ in range(2):
        for start in range(0, 32, 8):
            with tf.GradientTape() as tape:
                loss = mse(y[start:start + 8], oracle(x[start:start + 8], training=True))
            grads = dict(zip([v.ref() for v in oracle.trainable_variables],
                             tape.gradient(loss, oracle.trainable_variables)))
            for sub, layer in zip(subs, layers):
                sub.apply_gradients([(grads[v.ref()], v) for v in layer.trainable_variables])
    for mine, theirs in zip(model.get_weights(), oracle.get_weights()):
        assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.fixture
def mixed_float16_policy():
    previous = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)


@requirement("INTEG-2")
def test_fit_under_mixed_float16(mixed_float16_policy):
    """INTEG-2: `fit` under the `mixed_float16` policy, where Keras wraps the composite in a
    LossScaleOptimizer inside its compiled train step, trains the model."""
    x, y = _dataset()
    model = _model()
    assert model.get_layer("hidden").compute_dtype == "float16"
    composite = _model_composite(model)
    model.compile(optimizer=composite, loss="mse")
    assert isinstance(model.optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
    assert model.optimizer.inner_optimizer is composite
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert composite.iterations.numpy() == 12
    applied = [o.iterations.numpy() for o in composite.optimizers]
    assert applied[0] == applied[1] and 1 <= applied[0] <= 12
    assert all(not np.array_equal(b, a) for b, a in zip(before, model.get_weights()))


@requirement("INTEG-2")
def test_policy_restored_after_mixed_precision_test():
    """INTEG-2 (hygiene): the global policy is float32 again outside the mixed-precision test."""
    assert tf_keras.mixed_precision.global_policy().name == "float32"


@requirement("INTEG-3")
def test_public_api_of_the_tfrs_page_is_present():
    """INTEG-3: every name on the TFRS API page is present and behaves as its kind says."""
    rig = Rig(GROUPS, clipvalue=2.0)
    composite = rig.composite
    for method in ("variables", "apply_gradients", "minimize", "get_config", "from_config", "get_weights",
                   "set_weights", "add_slot", "get_slot", "get_slot_names", "get_gradients", "get_updates"):
        assert callable(getattr(composite, method)), method
    assert composite.optimizers == rig.sub_optimizers
    assert composite.iterations.dtype == tf.int64
    assert isinstance(composite.weights, list) and isinstance(composite.variables(), list)
    assert (composite.clipnorm, composite.clipvalue, composite.global_clipnorm) == (None, 2.0, None)


@requirement("INTEG-3", "ROUTE-9")
def test_minimize_equals_apply_gradients():
    """INTEG-3, ROUTE-9: `minimize(loss, var_list)` computes the gradients and applies them like `apply_gradients`."""
    rig = Rig(GROUPS)
    alone = rig.oracle()
    x, y = rig.variables
    rig.composite.minimize(lambda: tf.reduce_sum(x * x) + tf.reduce_sum(y ** 3), [x, y])
    alone.apply([(0, 2 * A), (1, 3 * B ** 2)])
    assert_matches_oracle(rig, alone)
    assert rig.composite.iterations.numpy() == 1


@requirement("INTEG-3")
def test_get_updates_in_graph_mode():
    """INTEG-3: the legacy graph-mode `get_updates` builds the composite's update op."""
    with tf.Graph().as_default():
        x, y = tf.Variable(A), tf.Variable(B)
        composite = CompositeOptimizer([(legacy.SGD(0.1), named("x", [x])), (legacy.SGD(0.5), named("y", [y]))])
        loss = tf.reduce_sum(x * x) + tf.reduce_sum(y)
        updates = composite.get_updates(loss, [x, y])
        assert len(composite.get_gradients(loss, [x, y])) == 2
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(updates)
            new_x, new_y, count = session.run([x, y, composite.iterations])
    assert_close(new_x, A - 0.1 * 2 * A)
    assert_close(new_y, B - 0.5)
    assert count == 1


@requirement("INTEG-2")
def test_tfrs_fit_under_mixed_float16_fails(mixed_float16_policy):
    """INTEG-2 TFRS note: TFRS's composite cannot be used by `fit` under `mixed_float16`."""
    x, y = _dataset()
    model = _model()
    composite = tfrs_composite_class()([
        (legacy.SGD(0.1), named("hidden_vars", model.get_layer("hidden").trainable_variables)),
        (legacy.Adam(0.02), named("head_vars", model.get_layer("head").trainable_variables)),
    ])
    model.compile(optimizer=composite, loss="mse")
    with pytest.raises(ValueError, match="branch outputs of cond must match"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)


@requirement("INTEG-4")
def test_operations_interleave(tmp_path):
    """INTEG-4: steps, a refused call, the state moved into a twin, a config round trip and a
    checkpoint round trip, one after another: the counter counts the successful steps and the
    variables equal each sub-optimizer alone, stepped on the same gradients."""
    steps = [[(0, A), (1, B)], [(1, -B)], [(0, 0.5 * A)], [(0, -A), (1, 2 * B)]]
    alone = Rig(GROUPS).oracle()
    rig = Rig(GROUPS)
    composite, variables = rig.composite, rig.variables

    def step(number):
        composite.apply_gradients([(tf.constant(g), variables[k]) for k, g in steps[number]])
        alone.apply(steps[number])

    def check(successful):
        assert int(composite.iterations.numpy()) == successful
        for k, (mine, theirs) in enumerate(zip(variables, alone.variables)):
            assert_close(mine.numpy(), theirs.numpy(), err_msg=f"variable {k} after {successful} steps")

    step(0)
    with pytest.raises(ValueError):  # All None: refused, nothing changes (ROUTE-3, ATOM-1).
        composite.apply_gradients([(None, v) for v in variables])
    check(1)
    # The state moves into a twin of the same structure (WEIGHT-3), which trains on.
    twin = CompositeOptimizer([(momentum(0.1, 0.9)(), named("group0", variables[:1])),
                               (adam(0.05)(), named("group1", variables[1:]))])
    twin.apply_gradients([(tf.zeros_like(v), v) for v in variables])  # Creates its weights...
    twin.set_weights(composite.get_weights())  # ...which the original's then overwrite, counter included.
    composite = twin
    step(1)
    check(2)
    # A config round trip (CONF-4) carries the state over the same way.
    rebuilt = CompositeOptimizer.from_config(composite.get_config(), custom_objects={
        "group0": named("group0", variables[:1]), "group1": named("group1", variables[1:])})
    rebuilt.apply_gradients([(tf.zeros_like(v), v) for v in variables])
    rebuilt.set_weights(composite.get_weights())
    composite = rebuilt
    step(2)
    check(3)
    # A checkpoint round trip (CKPT-1) into a fresh composite.
    path = tf.train.Checkpoint(optimizer=composite, variables=variables).save(str(tmp_path / "ckpt"))
    restored = CompositeOptimizer([(momentum(0.1, 0.9)(), named("group0", variables[:1])),
                                   (adam(0.05)(), named("group1", variables[1:]))])
    tf.train.Checkpoint(optimizer=restored, variables=variables).restore(path)
    composite = restored
    step(3)
    check(4)
