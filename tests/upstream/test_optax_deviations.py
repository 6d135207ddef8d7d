"""Direct reproductions of `optax.partition`'s deviations (adapters/expectations/optax.toml).

Each test drives optax with plain JAX, no suite or adapter code, and asserts what optax does instead of
what SPEC says: it fails the day optax stops deviating, and the expectations entries it backs must then
go. Run by `nox -s "conformance(impl='optax')"` before the suite.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest


def count(state, label):
    """The step count of entry `label`'s Adam (its ScaleByAdamState is the first of the chain's states)."""
    return int(state.inner_states[label].inner_state[0].count)


@pytest.mark.requirement("ROUTE-7", "ITER-3")
def test_entry_without_parameters_advances_its_count():
    """SPEC ROUTE-7: "A sub-optimizer whose group gets no gradient in a step is not called: its own counter
    and slots stay unchanged"; ITER-3: sub-optimizers' counters "advance only on steps where they are
    applied". optax.partition runs every entry's update on every step: an entry that owns no parameter at
    all, so never gets a gradient, counts every step."""
    params = {"a": jnp.array([1.0, 2.0])}
    tx = optax.partition({"used": optax.adam(0.1), "idle": optax.adam(0.1)}, {"a": "used"})
    state = tx.init(params)
    for _ in range(2):
        updates, state = tx.update({"a": jnp.ones(2)}, state, params)
        params = optax.apply_updates(params, updates)
    assert count(state, "used") == 2
    assert count(state, "idle") == 2


@pytest.mark.requirement("ROUTE-4")
def test_unlisted_parameter_error_does_not_name_it():
    """SPEC ROUTE-4: "A variable with a gradient that no entry lists is a `ValueError` naming the variable."
    optax.partition needs a transformation for every parameter: init raises "Some parameters have no
    corresponding transformation", whatever the gradients, listing labels and transform keys but not the
    parameter's path."""
    params = {"kernel": jnp.ones(2), "stray_bias": jnp.ones(2)}
    tx = optax.partition({"sgd": optax.sgd(0.1)}, {"kernel": "sgd", "stray_bias": "nobody"})
    with pytest.raises(ValueError, match="Some parameters have no corresponding transformation") as raised:
        tx.init(params)
    assert "stray_bias" not in str(raised.value)


@pytest.mark.requirement("CTOR-2")
def test_partition_without_entries_is_accepted():
    """SPEC CTOR-2: "An empty or `None` list of entries is refused with `ValueError`." optax.partition({}, ...)
    builds a transformation that initialises and updates an empty tree without complaint."""
    tx = optax.partition({}, [])
    state = tx.init([])
    updates, _ = tx.update([], state, [])
    assert updates == []


@pytest.mark.requirement("CTOR-4")
@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), float("nan")])
def test_clip_settings_are_not_validated(value):
    """SPEC CTOR-4: "A clip setting that is not a positive finite number (zero, negative, `inf`, `nan`...)
    is refused with `ValueError`". optax.clip and optax.clip_by_global_norm accept every value, when built and
    when applied."""
    grads = [jnp.array([3.0, -4.0])]
    for clip in (optax.clip(value), optax.clip_by_global_norm(value)):
        clip.update(grads, clip.init(grads))  # No error: this test fails the day optax refuses the value.


@pytest.mark.requirement("ATOM-2")
def test_wrong_shaped_gradient_is_broadcast_into_the_parameter():
    """SPEC ATOM-2: "A dense gradient whose shape does not match its variable ... is a `ValueError` naming
    the variable, raised before anything changes." optax checks no shapes: the update broadcasts, and
    optax.apply_updates adds it to the parameter, so a scalar parameter given a gradient of shape (2,)
    silently becomes a vector (a shape that does not broadcast fails in jax.numpy instead)."""
    params = [jnp.array(1.0), jnp.array([1.0, 2.0, 3.0])]
    tx = optax.partition({"a": optax.sgd(0.1, momentum=0.9), "b": optax.sgd(0.1)}, ["a", "b"])
    state = tx.init(params)
    updates, state = tx.update([jnp.ones(2), jnp.ones(3)], state, params)
    params = optax.apply_updates(params, updates)
    assert params[0].shape == (2,)
    np.testing.assert_allclose(np.asarray(params[0]), [0.9, 0.9], rtol=1e-6)
    assert state.inner_states["a"].inner_state[0].trace[0].shape == (2,)  # The momentum too.


@pytest.mark.requirement("WEIGHT-1")
def test_state_has_no_composite_counter():
    """SPEC WEIGHT-1: the state is "`[composite iterations] + optimizers[0].weights + ...`". optax.partition's
    state is only its entries' states (PartitionState.inner_states): nothing counts the composite's steps."""
    params = {"a": jnp.ones(2), "b": jnp.ones(2)}
    tx = optax.partition({"x": optax.adam(0.1), "y": optax.adam(0.1)}, {"a": "x", "b": "y"})
    state = tx.init(params)
    _, state = tx.update({"a": jnp.ones(2), "b": jnp.ones(2)}, state, params)
    assert isinstance(state, optax.transforms.PartitionState)
    assert state._fields == ("inner_states",)
    inner = [leaf for label in ("x", "y") for leaf in jax.tree_util.tree_leaves(state.inner_states[label])]
    whole = jax.tree_util.tree_leaves(state)
    assert len(whole) == len(inner) and all(w is i for w, i in zip(whole, inner))
