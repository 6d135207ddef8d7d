"""Weight order (SPEC WEIGHT-*): the state list, its order, and moving it into a twin."""

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from adapters.protocol import VariableSpec
from conformance import checks
from conformance import strategies as cs
from conformance.situations import STEP


@pytest.mark.broad
@pytest.mark.requirement("WEIGHT-1", "WEIGHT-2", "ROUTE-5")
@pytest.mark.needs("state")
@pytest.mark.uses(*STEP, "composite_counter")
@pytest.mark.relies_on("steps", "sub_counters")  # The sub-optimizers' state holds their counters.
@given(data=st.data())
def test_state_is_counter_then_each_sub_state_in_entry_order(impl, data):
    """WEIGHT-1: state = [composite counter] + optimizers[0] state + optimizers[1] state + ...
    Where the composite counter deviates (ITER-1), its value is taken from the implementation: the
    order and the sub-optimizers' state are still checked."""
    case = data.draw(cs.cases(impl.caps), label="case")
    instance, oracle = checks.run_case(impl, case)
    counter = len(case.steps) if impl.allows("composite_counter") else checks.composite_counter(instance)
    expected = [np.asarray(counter, np.int64)] + oracle.state()
    checks.assert_arrays_close(checks.all_state(instance), expected, checks.tolerance_for(impl, case.spec.clip),
                               "state (counter first, then each sub-optimizer's state in entry order)")


def _twin(impl, case, instance):
    """A fresh composite of the same structure over the instance's current variable values."""
    current = tuple(VariableSpec(v.name, value) for v, value in zip(case.variables, instance.variables()))
    with checks.applicability():
        return impl.adapter.composite(case.spec, current)


@pytest.mark.requirement("WEIGHT-3")
@pytest.mark.needs("state")
@pytest.mark.owns("state_transfer")
@pytest.mark.uses(*STEP)
@given(data=st.data())
def test_state_moves_into_a_twin_and_training_continues(impl, data):
    """WEIGHT-3: set_state(state()) into a same-structured twin; both then train identically."""
    case = data.draw(cs.cases(impl.caps, min_steps=2, max_steps=5), label="case")
    split = data.draw(st.integers(1, len(case.steps) - 1), label="steps before the transfer")
    instance, _ = checks.build(impl, case)
    with checks.applicability():
        instance.materialize()
        for pairs in case.steps[:split]:
            instance.step(pairs)
        twin = _twin(impl, case, instance)
        twin.materialize()
        twin.set_state(instance.state())
        for pairs in case.steps[split:]:
            instance.step(pairs)
            twin.step(pairs)
    checks.assert_arrays_close(twin.variables(), instance.variables(), impl.tolerance("exact"),
                               "twin's variables after continuing")
    assert checks.composite_counter(twin) == checks.composite_counter(instance)


@pytest.mark.requirement("WEIGHT-2", "ATOM-3")
@pytest.mark.needs("state")
@pytest.mark.uses(*STEP)
@given(data=st.data(), fault=st.sampled_from(["one value short", "one value extra", "a value of the wrong shape"]))
def test_set_state_refuses_a_mismatch_and_writes_nothing(impl, data, fault):
    """WEIGHT-2/ATOM-3: a wrong count or shape raises ValueError (a wrong shape: naming its position),
    and nothing is written."""
    case = data.draw(cs.cases(impl.caps), label="case")
    instance = checks.run_steps(impl, case)
    state = checks.all_state(instance)
    # A state with no value (a port whose sub-optimizers hold nothing yet) has none to leave out or misshape.
    assume(state or fault == "one value extra")
    # Values that differ from the current ones, so a partial write would show.
    bad = [np.asarray(v) + np.ones_like(v) for v in state]
    mentions = []
    if fault == "one value short":
        bad = bad[:-1]
    elif fault == "one value extra":
        bad = bad + [np.zeros(3, np.float32)]
    else:
        position = data.draw(st.integers(0, len(bad) - 1), label="position of the wrong shape")
        bad[position] = np.zeros(np.asarray(bad[position]).shape + (2,), np.float32)
        mentions = [checks.names(position)]
    before = checks.snapshot(instance)
    checks.expect_raises(impl, lambda: instance.set_state(bad), f"set_state with {fault}", error=ValueError,
                         mentions=mentions)
    checks.assert_unchanged(before, checks.snapshot(instance), f"a refused set_state ({fault})", requirement="ATOM-3")
