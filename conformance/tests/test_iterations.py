"""Iterations (SPEC ITER-*): one composite step counts once; sub-optimizers count their own."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.protocol import Refused
from conformance import checks
from conformance import strategies as cs
from conformance.plugin import unverified
from conformance.situations import STEP


@pytest.mark.broad
@pytest.mark.requirement("ITER-1")
@pytest.mark.owns("composite_counter")
@pytest.mark.uses(*STEP)
@given(data=st.data())
def test_counter_advances_once_per_step(impl, data):
    """ITER-1: the composite counter equals the number of steps, however many groups took part."""
    case = data.draw(cs.cases(impl.caps, max_steps=5), label="case")
    instance, _ = checks.build(impl, case)
    checks.composite_counter(instance)  # A port without one: not applicable before any step.
    for number, pairs in enumerate(case.steps, 1):
        with checks.applicability():
            instance.step(pairs)
        assert checks.composite_counter(instance) == number, (
            f"composite counter is {checks.composite_counter(instance)} after {number} steps")


@pytest.mark.requirement("ROUTE-9", "ITER-1")
@pytest.mark.needs("compiled_step")
@pytest.mark.uses(*STEP, "sub_counters", "composite_counter")
@pytest.mark.relies_on("steps")
@settings(max_examples=checks.examples_share(5))  # Each example traces its step anew.
@given(data=st.data())
def test_compiled_steps_count_once_and_match(impl, data):
    """ROUTE-9 and ITER-1 inside the framework's compiler (tf.function, jax.jit): same values, same counts."""
    case = data.draw(cs.cases(impl.caps, max_groups=3, max_steps=3), label="case")
    instance, oracle = checks.build(impl, case)
    for number, pairs in enumerate(case.steps, 1):
        checks.step_and_compare(impl, case, instance, oracle, pairs, number, compiled=True)
        if not impl.allows("composite_counter"):
            unverified("ITER-1", "composite_counter")
        else:
            with checks.charged_to("ITER-1"):
                assert checks.composite_counter(instance) == number, (
                    f"composite counter {checks.composite_counter(instance)} after {number} compiled steps")


@pytest.mark.requirement("ITER-3")
@pytest.mark.owns("sub_counters")
@pytest.mark.uses(*STEP)
@given(data=st.data())
def test_sub_counters_count_only_their_own_steps(impl, data):
    """ITER-3: each sub-optimizer's counter equals the steps in which its group got a gradient."""
    case = data.draw(cs.cases(impl.caps, min_groups=2, max_steps=5), label="case")
    owner = case.owner()
    instance, _ = checks.build(impl, case)
    expected = [0] * len(case.spec.groups)
    for pairs in case.steps:
        with checks.applicability():
            instance.step(pairs)
        for k in {owner[i] for i, g in pairs if g is not None}:
            expected[k] += 1
        got = checks.sub_counters(instance)
        assert got == expected, f"sub-optimizer counters {got}, expected {expected}"


@pytest.mark.requirement("ITER-2", "ROUTE-3")
@pytest.mark.uses(*STEP)
@pytest.mark.relies_on("absent_group")  # An empty call leaves every group without a gradient.
@given(data=st.data())
def test_empty_call_is_not_a_step(impl, data):
    """ROUTE-3/ITER-2: an empty grads_and_vars changes nothing and does not count."""
    case = data.draw(cs.cases(impl.caps, max_steps=2), label="case")
    instance = checks.run_steps(impl, case)
    before = checks.snapshot(instance)
    try:
        with checks.applicability():
            instance.step(())
    except Refused as refused:  # ROUTE-3: an empty call is a no-op, not an error.
        with checks.charged_to("ROUTE-3"):
            raise AssertionError(f"an empty call raised {refused}; the spec says it is a no-op") from None
    checks.assert_unchanged(before, checks.snapshot(instance), "an empty call", requirement="ITER-2")
