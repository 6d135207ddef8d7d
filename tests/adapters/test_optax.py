"""Fast checks of the bundled optax adapter (adapters/optax_partition.py).

They pin down how the adapter drives `optax.partition`, including the known optax
difference the conformance suite reports (an entry without variables still counts its steps). Steps are
compiled with jax.jit unless a test is about eager steps: eager JAX compiles every
primitive on first use, seconds per new set of shapes.
"""

import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="the optax adapter needs the `jax` extra (pip install .[jax])")
pytest.importorskip("optax", reason="the optax adapter needs the `jax` extra (pip install .[jax])")

from adapters import protocol  # noqa: E402
from adapters.optax_partition import OptaxAdapter  # noqa: E402
from adapters.protocol import Clip, CompositeSpec, Group, SubOptimizer, Unsupported, VariableSpec  # noqa: E402

# Composite vs the standalone oracle, float32: observed max abs difference 4.8e-7 (jit vs eager,
# composite clipping vs clipping in numpy); eager without composite clipping is bitwise equal.
RTOL, ATOL = 1e-5, 1e-6

ADAM = SubOptimizer("adam", 0.1, {"beta_1": 0.8})
# A schedule gives optax.sgd a step counter (constant for the first 100 steps: lr 0.05).
SGD_MOMENTUM = SubOptimizer(
    "sgd", protocol.Schedule("piecewise_constant", {"boundaries": [100], "values": [0.05, 0.01]}), {"momentum": 0.9}
)
SHAPES = [(3,), (2, 2), (4,)]


def _variables():
    rng = np.random.default_rng(7)
    return [VariableSpec(f"v{i}", rng.normal(size=shape).astype(np.float32)) for i, shape in enumerate(SHAPES)]


def _gradients(seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype(np.float32) for shape in SHAPES]


@pytest.fixture(scope="module")
def adapter():
    return OptaxAdapter()


def _two_entries(clip=Clip()):
    # Entry 0: Adam on variables 0 and 2; entry 1: SGD with momentum on variable 1.
    return CompositeSpec((Group(ADAM, (0, 2)), Group(SGD_MOMENTUM, (1,))), clip=clip)


def test_protocol_and_declared_capabilities(adapter):
    assert protocol.load_adapter(OptaxAdapter).framework == "jax"
    assert set(adapter.unsupported()) <= set(protocol.CAPABILITIES)
    assert {"none_gradient", "sparse_gradient", "config", "replicas"} <= set(adapter.unsupported())
    assert "ftrl" not in adapter.optimizer_kinds()
    assert set(adapter.optimizer_kinds()) < set(protocol.OPTIMIZER_KINDS)


def test_module_does_not_import_tensorflow():
    code = "import sys, adapters.optax_partition; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.requirement("ROUTE-5", "ROUTE-9")
@pytest.mark.parametrize("compiled", [True, False], ids=["jit", "eager"])
def test_composite_matches_standalone_when_every_group_steps(adapter, compiled):
    composite = adapter.composite(_two_entries(), _variables())
    variables = _variables()
    adam = adapter.standalone(ADAM, [variables[0], variables[2]])
    sgd = adapter.standalone(SGD_MOMENTUM, [variables[1]])
    for seed in range(4):
        g = _gradients(seed)
        composite.step([(2, g[2]), (0, g[0]), (1, g[1])], compiled=compiled)
        adam.step([(0, g[0]), (1, g[2])], compiled=compiled)
        sgd.step([(0, g[1])], compiled=compiled)
    got = composite.variables()
    np.testing.assert_allclose(got[0], adam.variables()[0], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got[2], adam.variables()[1], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got[1], sgd.variables()[0], rtol=RTOL, atol=ATOL)
    assert composite.sub_iterations() == [adam.iterations(), sgd.iterations()] == [4, 4]


@pytest.mark.requirement("CLIP-1", "CLIP-2")
def test_composite_global_clipnorm_clips_all_groups_together(adapter):
    c = 0.5
    composite = adapter.composite(_two_entries(Clip(global_clipnorm=c)), _variables())
    variables = _variables()
    adam = adapter.standalone(ADAM, [variables[0], variables[2]])
    sgd = adapter.standalone(SGD_MOMENTUM, [variables[1]])
    for seed in range(3):
        g = _gradients(seed)
        scale = c / max(np.sqrt(sum(float(np.sum(x.astype(np.float64) ** 2)) for x in g)), c)
        clipped = [(x * scale).astype(np.float32) for x in g]
        composite.step(list(enumerate(g)), compiled=True)
        adam.step([(0, clipped[0]), (1, clipped[2])], compiled=True)
        sgd.step([(0, clipped[1])], compiled=True)
    got = composite.variables()
    np.testing.assert_allclose(got[0], adam.variables()[0], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got[1], sgd.variables()[0], rtol=RTOL, atol=ATOL)


@pytest.mark.requirement("ROUTE-7", "ITER-3")
def test_absent_variables_are_unsupported_and_empty_entries_still_count(adapter):
    """A step cannot leave out a listed variable: a JAX gradient pytree has an array for every
    parameter, and a zero is a gradient optax applies (so "absent_variables" is unsupported).
    An entry with no variables is expressible, and optax.partition still counts its steps (ROUTE-7 /
    ITER-3: the spec says it is never called)."""
    assert "absent_variables" in adapter.unsupported()
    composite = adapter.composite(_two_entries(), _variables())
    g = _gradients(0)
    with pytest.raises(Unsupported, match=r"variables \[1\] are absent"):
        composite.step([(0, g[0]), (2, g[2])], compiled=True)
    with pytest.raises(Unsupported, match="absent"):
        composite.step([], compiled=True)  # The empty call (ROUTE-3) has no optax form either.
    assert composite.state() == []  # Nothing reached optax.
    with_empty = adapter.composite(CompositeSpec((Group(ADAM, (0, 1, 2)), Group(ADAM, ()))), _variables())
    with_empty.step(list(enumerate(g)), compiled=True)
    with_empty.step(list(enumerate(g)), compiled=True)
    assert with_empty.sub_iterations() == [2, 2]  # The spec says [2, 0].


@pytest.mark.requirement("ITER-1", "ITER-3")
def test_counters(adapter):
    composite = adapter.composite(_two_entries(), _variables())
    with pytest.raises(Unsupported, match="no composite step counter"):
        composite.iterations()
    # optax.sgd with a constant learning rate keeps no count in its state.
    constant_sgd = adapter.composite(CompositeSpec((Group(ADAM, (0, 2)), Group(SubOptimizer("sgd", 0.1), (1,)))),
                                     _variables())
    with pytest.raises(Unsupported, match="entry 1's optax.sgd keeps no step counter"):
        constant_sgd.sub_iterations()
    scheduled = SubOptimizer("sgd", protocol.Schedule("inverse_time_decay", {
        "initial_learning_rate": 0.1, "decay_rate": 1.0, "decay_steps": 1}))
    standalone = adapter.standalone(scheduled, _variables()[:1])
    assert standalone.iterations() == 0
    standalone.step([(0, np.ones(3, np.float32))], compiled=True)
    standalone.step([(0, np.ones(3, np.float32))], compiled=True)
    assert standalone.sub_iterations() == [2]
    # lr(0) = 0.1, lr(1) = 0.05: the schedule runs on the sub-transform's own count.
    np.testing.assert_allclose(standalone.variables()[0], _variables()[0].value - 0.15, rtol=RTOL, atol=ATOL)


@pytest.mark.requirement("WEIGHT-1", "WEIGHT-2", "WEIGHT-3", "ATOM-3")
def test_state_round_trip_and_bad_set_state(adapter):
    original = adapter.composite(_two_entries(), _variables())
    for seed in range(2):
        original.step(list(enumerate(_gradients(seed))), compiled=True)
    copy = adapter.composite(_two_entries(), [VariableSpec(v.name, value) for v, value in
                                              zip(_variables(), original.variables())])
    assert copy.state() == []  # optax state exists once initialised.
    copy.materialize()
    # Adam: count, mu x2, nu x2; SGD: momentum trace, the schedule's count.
    assert [s.shape for s in copy.state()] == [(), (3,), (4,), (3,), (4,), (2, 2), ()]
    copy.set_state(original.state())
    for a, b in zip(copy.state(), original.state()):
        np.testing.assert_array_equal(a, b)
    g = _gradients(5)
    original.step(list(enumerate(g)), compiled=True)
    copy.step(list(enumerate(g)), compiled=True)
    for a, b in zip(copy.variables(), original.variables()):
        np.testing.assert_array_equal(a, b)

    kept = copy.state()
    # optax has no call that writes a state: a list that does not fit is not optax's to refuse.
    with pytest.raises(Unsupported, match="no call that writes an optimizer state"):
        copy.set_state(kept[:-1])
    with pytest.raises(Unsupported, match="no call that writes an optimizer state"):
        copy.set_state([kept[0], np.zeros(4, np.float32)] + kept[2:])
    for a, b in zip(copy.state(), kept):
        np.testing.assert_array_equal(a, b)


@pytest.mark.requirement("CKPT-1")
def test_checkpoint_round_trip(adapter, tmp_path):
    original = adapter.composite(_two_entries(), _variables())
    original.step(list(enumerate(_gradients(0))), compiled=True)
    path = original.save(str(tmp_path))
    restored = adapter.composite(_two_entries(), _variables())
    restored.restore(path)
    g = _gradients(1)
    original.step(list(enumerate(g)), compiled=True)
    restored.step(list(enumerate(g)), compiled=True)
    for a, b in zip(restored.variables(), original.variables()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.requirement("ROUTE-4", "ATOM-1")
def test_grouping_errors(adapter):
    doubly = CompositeSpec((Group(ADAM, (0, 1)), Group(SGD_MOMENTUM, (1, 2))))
    with pytest.raises(Unsupported, match="variable 1 is listed by entries 0 and 1"):
        adapter.composite(doubly, _variables())
    # Variable 2 is listed by no entry: optax refuses to initialise, whether it has a gradient (absent,
    # it gets the zero jax.grad gives a parameter the loss does not use) or not.
    unlisted = adapter.composite(CompositeSpec((Group(ADAM, (0, 1)),)), _variables())
    for pairs in ([(0, _gradients(0)[0]), (1, _gradients(0)[1])], list(enumerate(_gradients(0)))):
        with pytest.raises(protocol.Refused, match="ValueError: .*no corresponding transformation"):
            unlisted.step(pairs, compiled=True)
    np.testing.assert_array_equal(unlisted.variables()[0], _variables()[0].value)


@pytest.mark.requirement("ATOM-2")
def test_mismatched_gradient_shape_broadcasts_into_the_variable(adapter):
    """ATOM-2 difference: optax does not check shapes, and a broadcastable gradient reshapes the variable."""
    composite = adapter.composite(_two_entries(), _variables())
    g = _gradients(0)
    composite.step([(0, np.ones((2, 3), np.float32)), (1, g[1]), (2, g[2])], compiled=True)
    assert composite.variables()[0].shape == (2, 3)
    with pytest.raises(protocol.Refused, match="TypeError: .*incompatible shapes"):
        composite.step([(0, np.ones((2, 3), np.float32)), (1, g[1]), (2, np.ones(5, np.float32))], compiled=True)


def test_unsupported_inputs(adapter):
    composite = adapter.composite(_two_entries(), _variables())
    with pytest.raises(Unsupported):
        composite.step([(0, None)])
    with pytest.raises(Unsupported):
        composite.step([(0, protocol.Sparse(np.array([0]), np.ones((1,), np.float32)))])
    with pytest.raises(Unsupported):
        composite.config()


def test_device(adapter):
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    if gpus:
        adapter.set_device("gpu")
        try:
            composite = adapter.composite(_two_entries(), _variables())
            composite.step(list(enumerate(_gradients(0))), compiled=True)
            assert composite.sub_iterations() == [1, 1]
        finally:
            adapter.set_device("cpu")
    else:
        with pytest.raises(protocol.DeviceUnavailable, match="gpu"):
            adapter.set_device("gpu")
    with pytest.raises(Unsupported, match="aggregate across replicas"):
        adapter.set_device("replicas:2")
