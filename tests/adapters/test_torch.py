"""Fast checks of the bundled torchrec adapter (adapters/torchrec.py).

They pin down what the adapter builds and what torchrec does with it, deviations from the spec
included (each is named with its SPEC id), so that a torchrec release that changes them shows here.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch extra is not installed")
pytest.importorskip("torchrec", reason="torchrec is not installed (see the torchrec install notes in adapters/torchrec.py)")

from adapters import protocol  # noqa: E402
from adapters.protocol import (  # noqa: E402
    CAPABILITIES,
    Clip,
    CompositeSpec,
    DeviceUnavailable,
    Group,
    Schedule,
    Sparse,
    SubOptimizer,
    Unsupported,
    VariableSpec,
)
from adapters.torchrec import SPARSE_KINDS, TorchrecAdapter, make_torch_optimizer, schedule_value  # noqa: E402

F32 = np.float32


@pytest.fixture(scope="module")
def adapter():
    return protocol.load_adapter(TorchrecAdapter)


def _variables(seed=0):
    rng = np.random.default_rng(seed)
    # Two variables share a name on purpose (SPEC ROUTE-1).
    return [
        VariableSpec("w", rng.normal(size=(4, 3)).astype(F32)),
        VariableSpec("w", rng.normal(size=(3,)).astype(F32)),
        VariableSpec("b", rng.normal(size=(2,)).astype(F32)),
    ]


ADAM = SubOptimizer(
    "adam",
    Schedule("exponential_decay", {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5}),
    {"amsgrad": True},
)
NESTEROV = SubOptimizer("sgd", 0.05, {"momentum": 0.9, "nesterov": True})
SPEC = CompositeSpec((Group(ADAM, (0, 2)), Group(NESTEROV, (1,))))


def _steps(variables, seed=1):
    """Dense steps in which group 1 (variable 1) is absent twice and given None once."""
    rng = np.random.default_rng(seed)

    def g(i):
        return rng.normal(size=variables[i].value.shape).astype(F32)

    return [
        [(0, g(0)), (1, g(1)), (2, g(2))],
        [(1, g(1))],
        [(2, g(2)), (0, g(0))],
        [(0, g(0)), (1, None), (2, g(2))],
        [(1, g(1)), (2, g(2)), (0, g(0))],
    ]


def _run_standalone(adapter, sub, variables, group, steps):
    """The oracle: `sub` alone on `group`, stepped only where the group got a gradient (SPEC ROUTE-9)."""
    position = {v: k for k, v in enumerate(group)}
    inst = adapter.standalone(sub, [variables[i] for i in group])
    for pairs in steps:
        mine = [(position[i], g) for i, g in pairs if i in position and g is not None]
        if mine:
            inst.step(mine)
    return inst


def test_adapter_declares_known_capabilities_and_kinds(adapter):
    assert set(adapter.unsupported()) <= set(CAPABILITIES)
    assert all(reason for reason in adapter.unsupported().values())
    assert "ftrl" not in adapter.optimizer_kinds()
    assert set(adapter.optimizer_kinds()) <= set(protocol.OPTIMIZER_KINDS)
    assert adapter.info()["version"] == __import__("torchrec").__version__


def test_composite_matches_each_sub_optimizer_alone(adapter):
    variables = _variables()
    steps = _steps(variables)
    composite = adapter.composite(SPEC, variables)
    for pairs in steps:
        composite.step(pairs)
    got = composite.variables()
    for group in SPEC.groups:
        alone = _run_standalone(adapter, group.optimizer, variables, group.variables, steps).variables()
        for k, i in enumerate(group.variables):
            # Same torch kernels on the same values: bit-for-bit equal.
            np.testing.assert_array_equal(got[i], alone[k])
    assert not all(np.array_equal(g, v.value) for g, v in zip(got, variables))


def test_lambda_lr_follows_the_schedule_with_the_groups_own_steps(adapter):
    schedule = Schedule("piecewise_constant", {"boundaries": [1, 2], "values": [1.0, 0.5, 0.25]})
    sub = SubOptimizer("sgd", schedule)
    variables = [VariableSpec("a", np.zeros(1, F32)), VariableSpec("b", np.zeros(1, F32))]
    composite = adapter.composite(CompositeSpec((Group(sub, (0,)), Group(SubOptimizer("sgd", 1.0), (1,)))), variables)
    one = np.ones(1, F32)
    # Group 0 is absent on steps 2 and 3: its schedule must not advance there (SPEC ITER-3).
    for pairs in ([(0, one), (1, one)], [(1, one)], [(1, one)], [(0, one)], [(0, one)], [(0, one)]):
        composite.step(pairs)
    expected = -sum(schedule_value(schedule, t) for t in range(4))
    assert composite.variables()[0][0] == pytest.approx(expected, rel=1e-6)
    assert [schedule_value(schedule, t) for t in range(4)] == [1.0, 1.0, 0.5, 0.25]


def test_none_and_absent_gradients_leave_the_group_untouched(adapter):
    variables = _variables()
    composite = adapter.composite(SPEC, variables)
    g0 = np.ones((4, 3), F32)
    composite.step([(0, g0), (1, None)])  # Variable 1 None, variable 2 absent.
    after = composite.variables()
    np.testing.assert_array_equal(after[1], variables[1].value)
    np.testing.assert_array_equal(after[2], variables[2].value)
    assert not np.array_equal(after[0], variables[0].value)
    # Only variable 0 has state: Adam's step, exp_avg, exp_avg_sq, max_exp_avg_sq.
    assert [s.shape for s in composite.state()] == [(), (4, 3), (4, 3), (4, 3)]
    # Adam's group stepped with variable 2 absent: torch counted variable 0's step only, and keeps no
    # count of the optimizer's own steps.
    with pytest.raises(Unsupported, match=r"per parameter.*counts \[0, 1\]"):
        composite.sub_iterations()


def test_sub_iterations_count_per_group(adapter):
    variables = _variables()
    spec = CompositeSpec((Group(ADAM, (0, 2)), Group(SubOptimizer("adagrad", 0.1), (1,))))
    composite = adapter.composite(spec, variables)
    assert composite.sub_iterations() == [0, 0]
    for pairs in _steps(variables):
        composite.step(pairs)
    assert composite.sub_iterations() == [4, 3]
    with pytest.raises(Unsupported, match="no step counter"):
        composite.iterations()
    composite.step([(0, np.ones((4, 3), F32))])  # Group 0 steps without variable 2.
    with pytest.raises(Unsupported, match="keeps a step count per parameter"):
        composite.sub_iterations()
    sgd = adapter.composite(CompositeSpec((Group(NESTEROV, (0, 1, 2)),)), variables)
    with pytest.raises(Unsupported, match="SGD keeps no step count"):
        sgd.sub_iterations()


def test_all_none_step_is_silently_ignored_by_torchrec(adapter):
    """SPEC ROUTE-3 deviation: torchrec does not raise when every gradient is None."""
    variables = _variables()
    composite = adapter.composite(SPEC, variables)
    composite.step([(0, None), (1, None)])
    assert composite.state() == []
    for got, v in zip(composite.variables(), variables):
        np.testing.assert_array_equal(got, v.value)


def test_unlisted_and_doubly_listed_variables_are_not_refused(adapter):
    """SPEC ROUTE-4 deviation: torchrec ignores an unlisted gradient and steps a doubly listed variable twice."""
    variables = [VariableSpec("a", np.zeros(2, F32)), VariableSpec("b", np.zeros(2, F32)), VariableSpec("c", np.zeros(2, F32))]
    sgd = SubOptimizer("sgd", 1.0)
    composite = adapter.composite(CompositeSpec((Group(sgd, (0, 1)), Group(sgd, (1,)))), variables)
    one = np.ones(2, F32)
    composite.step([(0, one), (1, one), (2, one)])  # Variable 2 is in no entry.
    a, b, c = composite.variables()
    np.testing.assert_array_equal(a, -one)
    np.testing.assert_array_equal(b, -2 * one)
    np.testing.assert_array_equal(c, np.zeros(2, F32))


def test_bad_gradient_shape_raises_before_anything_changes(adapter):
    variables = _variables()
    composite = adapter.composite(SPEC, variables)
    with pytest.raises(protocol.Refused, match="RuntimeError: .*size"):
        composite.step([(0, np.ones((4, 3), F32)), (1, np.ones((4,), F32))])
    for got, v in zip(composite.variables(), variables):
        np.testing.assert_array_equal(got, v.value)
    assert composite.state() == []
    assert all(p.grad is None for p in composite._params)


def test_global_clipping_against_numpy(adapter):
    """CLIP-1 with torch's clip_grad_norm_: scale c / (norm + 1e-6), relative error <= 1e-6 / c."""
    rng = np.random.default_rng(3)
    shapes = [(5,), (2, 3), (4,)]
    variables = [VariableSpec(f"v{i}", np.zeros(s, F32)) for i, s in enumerate(shapes)]
    grads = [rng.normal(scale=3.0, size=s).astype(F32) for s in shapes]
    c, cv = 1.0, 4.0
    spec = CompositeSpec(
        (Group(SubOptimizer("sgd", 1.0), (0, 2)), Group(SubOptimizer("sgd", 1.0), (1,))),
        Clip(clipvalue=cv, global_clipnorm=c),
    )
    composite = adapter.composite(spec, variables)
    composite.step(list(enumerate(grads)))
    clipped = [np.clip(g.astype(np.float64), -cv, cv) for g in grads]
    norm = np.sqrt(sum(np.sum(g**2) for g in clipped))
    assert norm > c
    for got, g in zip(composite.variables(), clipped):
        np.testing.assert_allclose(got, -g * c / max(norm, c), rtol=2e-6, atol=0)


def test_sub_optimizer_global_clipnorm_clips_inside_its_group(adapter):
    variables = [VariableSpec("a", np.zeros(2, F32)), VariableSpec("b", np.zeros(2, F32))]
    clipped = SubOptimizer("sgd", 1.0, clip=Clip(global_clipnorm=1.0))
    spec = CompositeSpec((Group(clipped, (0,)), Group(SubOptimizer("sgd", 1.0), (1,))))
    composite = adapter.composite(spec, variables)
    grad = np.array([3.0, 4.0], F32)
    composite.step([(0, grad), (1, grad)])
    a, b = composite.variables()
    np.testing.assert_allclose(a, -grad / 5.0, rtol=2e-6)
    np.testing.assert_array_equal(b, -grad)


def test_sub_clipvalue_crashes_when_its_group_gets_no_gradient(adapter):
    """torchrec bug, SPEC ROUTE-7/ATOM-1 deviation: CombinedOptimizer steps every entry, and a
    GradientClippingOptimizer(VALUE) over parameters without gradients raises inside
    torch.nn.utils.clip_grad_value_, after the entries before it were already updated."""
    variables = [VariableSpec("a", np.zeros(2, F32)), VariableSpec("b", np.zeros(2, F32))]
    spec = CompositeSpec((Group(SubOptimizer("sgd", 1.0), (0,)), Group(SubOptimizer("sgd", 1.0, clip=Clip(clipvalue=0.5)), (1,))))
    composite = adapter.composite(spec, variables)
    with pytest.raises(protocol.Refused, match="RuntimeError: .*empty"):
        composite.step([(0, np.ones(2, F32))])
    np.testing.assert_array_equal(composite.variables()[0], -np.ones(2, F32))


def test_clipnorm_is_unsupported_by_torchrec(adapter):
    with pytest.raises(Unsupported, match="per-tensor"):
        adapter.composite(CompositeSpec((Group(SubOptimizer("sgd", 1.0), (0,)),), Clip(clipnorm=1.0)), _variables())


def test_an_entry_without_variables_is_unsupported(adapter):
    spec = CompositeSpec((Group(ADAM, (0, 1, 2)), Group(NESTEROV, ())))
    with pytest.raises(Unsupported, match="empty parameter list"):
        adapter.composite(spec, _variables())
    with pytest.raises(ValueError, match="empty parameter list"):  # What torch itself says.
        torch.optim.SGD([], lr=0.1)


def test_empty_composite_is_accepted_by_torchrec(adapter):
    """SPEC CTOR-2 deviation: CombinedOptimizer([]) builds, and steps do nothing."""
    variables = _variables()
    composite = adapter.composite(CompositeSpec(()), variables)
    composite.step([(0, np.ones((4, 3), F32))])
    np.testing.assert_array_equal(composite.variables()[0], variables[0].value)


def test_sparse_gradients_with_repeated_indices_match_the_standalone(adapter):
    variables = [VariableSpec("table", np.arange(12, dtype=F32).reshape(4, 3)), VariableSpec("b", np.zeros(2, F32))]
    spec = CompositeSpec((Group(SubOptimizer("adagrad", 0.1), (0,)), Group(SubOptimizer("adam", 0.1), (1,))))
    sparse = Sparse(np.array([2, 0, 2], np.int64), np.ones((3, 3), F32))
    composite = adapter.composite(spec, variables)
    composite.step([(0, sparse), (1, np.ones(2, F32))])
    composite.step([(0, sparse)])
    alone = adapter.standalone(spec.groups[0].optimizer, variables[:1])
    dense = np.zeros((4, 3), F32)
    np.add.at(dense, sparse.indices, sparse.values)
    alone.step([(0, dense)])
    alone.step([(0, dense)])
    np.testing.assert_allclose(composite.variables()[0], alone.variables()[0], rtol=1e-6)
    np.testing.assert_array_equal(composite.variables()[0][[1, 3]], variables[0].value[[1, 3]])
    with pytest.raises(Unsupported, match="Adam does not support sparse"):
        composite.step([(1, Sparse(np.array([0], np.int64), np.ones(1, F32)))])


@pytest.mark.parametrize("kind", ["adam", "rmsprop", "adamax", "nadam"])
def test_kinds_declared_dense_only_really_refuse_sparse(kind):
    """Keeps SPARSE_KINDS honest: torch itself refuses sparse gradients for the other kinds."""
    assert kind not in SPARSE_KINDS
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer, _ = make_torch_optimizer(SubOptimizer(kind, 0.1), [param])
    param.grad = torch.sparse_coo_tensor(torch.tensor([[0]]), torch.ones(1), (3,))
    with pytest.raises(RuntimeError, match="does not support sparse"):
        optimizer.step()


def test_state_round_trip_then_identical_training(adapter):
    """state()/set_state() carry the torch optimizers' state; schedulers' positions are not in it."""
    spec = CompositeSpec((Group(SubOptimizer("adam", 0.1), (0, 2)), Group(NESTEROV, (1,))))
    variables = _variables()
    steps = _steps(variables)
    source = adapter.composite(spec, variables)
    for pairs in steps[:3]:
        source.step(pairs)
    # Same starting variables: the target starts from the source's current values.
    current = [VariableSpec(v.name, value) for v, value in zip(variables, source.variables())]
    target = adapter.composite(spec, current)
    target.step(steps[0])  # torchrec loads state only into an optimizer that has state ...
    with torch.no_grad():  # ... and that step moved the variables: put them back.
        for p, value in zip(target._params, source.variables()):
            p.copy_(torch.from_numpy(value))
    target.set_state(source.state())
    for a, b in zip(target.state(), source.state()):
        np.testing.assert_array_equal(a, b)
    for pairs in steps[3:]:
        source.step(pairs)
        target.step(pairs)
    for a, b in zip(target.variables(), source.variables()):
        np.testing.assert_array_equal(a, b)


def test_set_state_count_mismatch_raises_but_is_not_atomic(adapter):
    """SPEC ATOM-3/WEIGHT-2 deviation: torchrec writes earlier entries before it finds the mismatch."""
    variables = _variables()
    adam = SubOptimizer("adam", 0.1)
    composite = adapter.composite(CompositeSpec((Group(adam, (0, 2)), Group(adam, (1,)))), variables)
    composite.step(_steps(variables)[0])
    before = composite.state()
    bumped = [s + 1 for s in before]
    with pytest.raises(protocol.Refused, match="ValueError: .*Different state size"):
        composite.set_state(bumped[:-1])
    after = composite.state()
    np.testing.assert_array_equal(after[0], bumped[0])  # Entry 0 was already written.
    np.testing.assert_array_equal(after[-1], before[-1])
    # Dropping a whole variable's state is caught before anything is written.
    with pytest.raises(protocol.Refused, match="ValueError: .*Different parameter count"):
        composite.set_state([s + 2 for s in before][:-3])
    np.testing.assert_array_equal(composite.state()[0], bumped[0])


def test_checkpoint_restores_state_and_schedule(adapter, tmp_path):
    variables = _variables()
    steps = _steps(variables)
    source = adapter.composite(SPEC, variables)
    for pairs in steps[:3]:
        source.step(pairs)
    path = source.save(str(tmp_path))
    restored = adapter.composite(SPEC, variables)
    restored.restore(path)
    for pairs in steps[3:]:
        source.step(pairs)
        restored.step(pairs)
    for a, b in zip(restored.variables(), source.variables()):
        np.testing.assert_array_equal(a, b)


def test_materialize_only_where_torch_has_state_without_a_step(adapter):
    variables = _variables()
    with pytest.raises(Unsupported, match="lazily"):
        adapter.composite(SPEC, variables).materialize()
    adagrad = adapter.composite(CompositeSpec((Group(SubOptimizer("adagrad", 0.1, {"initial_accumulator_value": 0.5}), (0, 1, 2)),)), variables)
    adagrad.materialize()  # torch's Adagrad creates its state in __init__.
    state = adagrad.state()
    assert [s.shape for s in state] == [(), (4, 3), (), (3,), (), (2,)]
    np.testing.assert_array_equal(state[1], np.full((4, 3), 0.5, F32))


def test_devices(adapter):
    if torch.cuda.is_available():
        adapter.set_device("gpu")
        adapter.set_device("cpu")
    else:
        with pytest.raises(DeviceUnavailable, match="gpu"):
            adapter.set_device("gpu")
    with pytest.raises(Unsupported, match="one process per replica"):
        adapter.set_device("replicas:2")
    with pytest.raises(Unsupported):
        adapter.from_config({}, _variables(), [[0]])
