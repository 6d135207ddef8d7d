"""Direct reproductions of torchrec `CombinedOptimizer`'s deviations (adapters/expectations/torchrec.toml).

Each test drives torchrec with plain torch, no suite or adapter code, and asserts what torchrec does
instead of what SPEC says: it fails the day torchrec stops deviating, and the expectations entries it
backs must then go. Run by `nox -s "conformance(impl='torchrec')"` before the suite.

A composite is written as torchrec users write one: `KeyedOptimizerWrapper({name: param}, factory)` per
entry, combined by `CombinedOptimizer([(key, entry), ...])`, an entry's own clip setting being a
`GradientClippingOptimizer` around it. A step sets `.grad` of the parameters that have a gradient
(None for the others, as autograd leaves unused parameters) and calls `step()`.
"""

import numpy as np
import pytest
import torch
from torchrec.optim.clipping import GradientClipping, GradientClippingOptimizer
from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizerWrapper


def parameter(value):
    return torch.nn.Parameter(torch.tensor(value, dtype=torch.float32))


def entry(params: dict, make=lambda ps: torch.optim.SGD(ps, lr=0.1)):
    return KeyedOptimizerWrapper(params, make)


def value(p):
    return p.detach().numpy().copy()


@pytest.mark.requirement("ROUTE-7", "ROUTE-2", "ROUTE-3", "ATOM-1", "ITER-2")
def test_value_clipped_entry_without_gradient_raises_after_earlier_entries_stepped():
    """SPEC ROUTE-7: "A sub-optimizer whose group gets no gradient in a step is not called"; ROUTE-2: "a
    `None` gradient never raises on its own"; ROUTE-3: "An empty `grads_and_vars` is a no-op"; ATOM-1: a
    call that raises changes nothing; ITER-2: "A call that raises does not advance any counter".
    CombinedOptimizer steps every entry; an entry with its own clipvalue (GradientClippingOptimizer(VALUE))
    calls torch.nn.utils.clip_grad_value_ on all its parameters, an empty gradient list when none of them
    has a gradient, which raises RuntimeError: after the entries before it were already stepped (their
    parameters moved, Adam's step count advanced), and also on a call with no gradient at all."""
    a, b = parameter([1.0, 2.0]), parameter([3.0, 4.0])
    adam = entry({"a": a}, lambda ps: torch.optim.Adam(ps, lr=0.1))
    clipped = GradientClippingOptimizer(entry({"b": b}), GradientClipping.VALUE, max_gradient=1.0)
    combined = CombinedOptimizer([("group_0", adam), ("group_1", clipped)])

    a.grad = torch.ones(2)  # b.grad stays None: group 1 gets no gradient.
    with pytest.raises(RuntimeError, match="nested_tensorlist"):
        combined.step()
    np.testing.assert_allclose(value(a), np.array([1.0, 2.0]) - 0.1, rtol=1e-5)  # Group 0 stepped.
    assert int(combined.state_dict()["state"]["group_0.a"]["step"]) == 1  # Its count advanced.
    np.testing.assert_array_equal(value(b), [3.0, 4.0])

    a.grad = None  # No gradient at all: the empty call.
    with pytest.raises(RuntimeError, match="nested_tensorlist"):
        combined.step()


@pytest.mark.requirement("ROUTE-3")
def test_step_with_every_gradient_none_is_accepted_silently():
    """SPEC ROUTE-3: "If every gradient of a non-empty call is `None`, the call raises `ValueError`." torch
    optimizers skip parameters whose .grad is None, so a step where none has a gradient does nothing and
    raises nothing."""
    a, b = parameter([1.0, 2.0]), parameter([3.0, 4.0])
    combined = CombinedOptimizer([("group_0", entry({"a": a})), ("group_1", entry({"b": b}))])
    combined.step()  # Every .grad is None.
    np.testing.assert_array_equal([value(a), value(b)], [[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.requirement("ROUTE-4")
def test_gradient_on_a_parameter_no_entry_holds_is_ignored():
    """SPEC ROUTE-4: "A variable with a gradient that no entry lists is a `ValueError` naming the variable."
    CombinedOptimizer steps only its entries' parameters and never looks at others: the stranger's gradient
    is ignored silently."""
    a, stranger = parameter([1.0, 2.0]), parameter([5.0])
    combined = CombinedOptimizer([("group_0", entry({"a": a}))])
    a.grad, stranger.grad = torch.ones(2), torch.ones(1)
    combined.step()
    np.testing.assert_allclose(value(a), np.array([1.0, 2.0]) - 0.1, rtol=1e-6)
    np.testing.assert_array_equal(value(stranger), [5.0])


@pytest.mark.requirement("ROUTE-4")
def test_parameter_in_two_entries_is_stepped_by_both():
    """SPEC ROUTE-4: "A variable listed by two entries is a `ValueError` naming the variable and both entry
    indices." CombinedOptimizer accepts one parameter in two entries; both then update it every step."""
    x = parameter([1.0])
    combined = CombinedOptimizer([("group_0", entry({"x": x})), ("group_1", entry({"x": x}))])
    x.grad = torch.ones(1)
    combined.step()
    np.testing.assert_allclose(value(x), [1.0 - 0.1 - 0.1], rtol=1e-6)


@pytest.mark.requirement("CTOR-2")
def test_combined_optimizer_without_entries_is_accepted():
    """SPEC CTOR-2: "An empty or `None` list of entries is refused with `ValueError`." CombinedOptimizer([])
    is built, and its step() does nothing."""
    combined = CombinedOptimizer([])
    combined.step()
    assert combined.state_dict()["state"] == {}


@pytest.mark.requirement("CTOR-4")
@pytest.mark.parametrize("bound", [0.0, -1.0, float("inf"), float("nan")])
@pytest.mark.parametrize("clipping", [GradientClipping.VALUE, GradientClipping.NORM])
def test_clip_bound_is_not_validated(clipping, bound):
    """SPEC CTOR-4: "A clip setting that is not a positive finite number (zero, negative, `inf`, `nan`...)
    is refused with `ValueError`". GradientClippingOptimizer accepts any max_gradient, and steps with it."""
    a = parameter([1.0, 2.0])
    clipped = GradientClippingOptimizer(entry({"a": a}), clipping, max_gradient=bound)
    a.grad = torch.ones(2)
    clipped.step()  # No error: this test fails the day torchrec refuses the bound.


@pytest.mark.requirement("ATOM-3")
@pytest.mark.parametrize("fault", ["one value short", "a value of the wrong shape"])
def test_load_state_dict_writes_before_finding_a_mismatch(fault):
    """SPEC ATOM-3: "`set_weights` with the wrong number of values, or any value of the wrong shape, raises
    `ValueError` and writes nothing". KeyedOptimizer.load_state_dict checks and copies parameter by
    parameter, in place: a state missing a value for the second parameter, or holding one of the wrong
    shape there, is refused only after the first parameter's state was overwritten."""
    a, b = parameter([1.0, 2.0]), parameter([3.0, 4.0])
    combined = CombinedOptimizer([("group_0", entry({"a": a, "b": b}, lambda ps: torch.optim.Adam(ps, lr=0.1)))])
    a.grad, b.grad = torch.ones(2), torch.ones(2)
    combined.step()
    saved = combined.state_dict()
    saved["state"]["group_0.a"] = {k: v.clone() + 5 for k, v in saved["state"]["group_0.a"].items()}
    if fault == "one value short":
        del saved["state"]["group_0.b"]["exp_avg_sq"]
        refusal = (ValueError, "Different state size")
    else:
        saved["state"]["group_0.b"]["exp_avg"] = torch.zeros(2, 2)
        refusal = (RuntimeError, "doesn't match the broadcast shape")
    with pytest.raises(refusal[0], match=refusal[1]):
        combined.load_state_dict(saved)
    assert float(combined.state_dict()["state"]["group_0.a"]["step"]) == 6.0  # 1 + 5: written anyway.


@pytest.mark.requirement("WEIGHT-3")
def test_schedule_position_is_not_in_the_state():
    """SPEC WEIGHT-3: "`set_weights(get_weights())` moves the full state into a composite of the same
    structure ...; training then continues exactly as the original does." torch keeps a learning-rate
    schedule's position in its LRScheduler, outside the optimizer's state_dict (and SGD keeps no step
    count), so a twin given the whole state_dict restarts its schedule at step 0."""

    def build(x):
        sgd = {}

        def make(ps):
            sgd["optimizer"] = torch.optim.SGD(ps, lr=1.0)
            return sgd["optimizer"]

        combined = CombinedOptimizer([("group_0", entry({"x": x}, make))])
        combined.save_param_groups(True)  # The state_dict then carries lr too.
        return combined, torch.optim.lr_scheduler.LambdaLR(sgd["optimizer"], lambda t: 0.5**t)

    x = parameter([0.0])
    original, original_schedule = build(x)
    for _ in range(3):
        x.grad = torch.ones(1)
        original.step()
        original_schedule.step()
    twin_x = parameter(value(x))
    twin, twin_schedule = build(twin_x)
    twin.load_state_dict(original.state_dict())
    for p, combined, schedule in ((x, original, original_schedule), (twin_x, twin, twin_schedule)):
        for _ in range(2):
            p.grad = torch.ones(1)
            combined.step()
            schedule.step()
    # Original lrs 1, .5, .25 | .125, .0625; the twin's: .125 (loaded) then .5 (its schedule at step 1).
    np.testing.assert_allclose(value(x), [-(1 + 0.5 + 0.25 + 0.125 + 0.0625)], rtol=1e-6)
    np.testing.assert_allclose(value(twin_x), [-(1 + 0.5 + 0.25 + 0.125 + 0.5)], rtol=1e-6)


@pytest.mark.requirement("CKPT-1")
def test_checkpoint_of_a_partly_stepped_optimizer_is_refused():
    """SPEC CKPT-1: checkpointing "round-trips the composite's counter and every sub-optimizer's state;
    training resumed from a restored checkpoint continues exactly as the original does."
    KeyedOptimizer.load_state_dict needs state for exactly the parameters that have state: torch creates
    it only for parameters that got a gradient, torchrec's init_state() for all of them, so a checkpoint
    taken before every parameter had a gradient loads into neither a fresh optimizer nor an initialised one."""
    adam = lambda ps: torch.optim.Adam(ps, lr=0.1)  # noqa: E731
    a, b = parameter([1.0, 2.0]), parameter([3.0, 4.0])
    original = CombinedOptimizer([("group_0", entry({"a": a, "b": b}, adam))])
    a.grad = torch.ones(2)  # Only a has a gradient before the checkpoint.
    original.step()
    checkpoint = original.state_dict()

    fresh = CombinedOptimizer([("group_0", entry({"a": parameter([1.0, 2.0]), "b": parameter([3.0, 4.0])}, adam))])
    with pytest.raises(ValueError, match="Different parameter count: 0 vs 1"):
        fresh.load_state_dict(checkpoint)
    fresh.init_state()
    with pytest.raises(ValueError, match="Different parameter count: 2 vs 1"):
        fresh.load_state_dict(checkpoint)


@pytest.mark.requirement("WEIGHT-1")
def test_state_has_no_composite_counter():
    """SPEC WEIGHT-1: the state is "`[composite iterations] + optimizers[0].weights + ...`". CombinedOptimizer
    keeps no counter of its own: its state_dict holds only each entry's per-parameter torch state."""
    a, b = parameter([1.0, 2.0]), parameter([3.0, 4.0])
    adam = lambda ps: torch.optim.Adam(ps, lr=0.1)  # noqa: E731
    combined = CombinedOptimizer([("group_0", entry({"a": a}, adam)), ("group_1", entry({"b": b}, adam))])
    a.grad, b.grad = torch.ones(2), torch.ones(2)
    combined.step()
    combined.step()
    state = combined.state_dict()["state"]
    assert sorted(state) == ["group_0.a", "group_1.b"]
    assert all(sorted(s) == ["exp_avg", "exp_avg_sq", "step"] for s in state.values())
