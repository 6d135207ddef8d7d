"""Errors and atomicity (SPEC CTOR-2, CTOR-4, ROUTE-3, ROUTE-4, ATOM-*): refuse bad input, change nothing."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.protocol import CompositeSpec, Group, VariableSpec
from conformance import checks
from conformance import strategies as cs
from conformance.situations import STEP

ORPHAN = "orphan_variable"


@pytest.mark.requirement("CTOR-4")
@pytest.mark.needs("composite_clipping")
@given(data=st.data(), clip=cs.invalid_clip_settings())
def test_invalid_clip_settings_are_refused(impl, data, clip):
    """CTOR-4: non-positive, non-finite or non-numeric clip values, or clipnorm with global_clipnorm."""
    case = data.draw(cs.cases(impl.caps, max_steps=1), label="case")
    spec = dataclasses.replace(case.spec, clip=clip)
    checks.expect_raises(impl, lambda: impl.adapter.composite(spec, case.variables), f"a composite with {clip}",
                         error=ValueError)


@pytest.mark.requirement("CTOR-2")
@given(variables=st.lists(cs.variable_shapes.flatmap(cs.variable_specs), min_size=1, max_size=3))
def test_empty_entry_list_is_refused(impl, variables):
    """CTOR-2: a composite of no entries is refused."""
    checks.expect_raises(impl, lambda: impl.adapter.composite(CompositeSpec(groups=()), variables), "an empty composite",
                         error=ValueError)


def _after_good_steps(impl, data, **kwargs):
    case = data.draw(cs.cases(impl.caps, max_steps=2, **kwargs), label="case")
    return case, checks.run_steps(impl, case)


def _bad_call_changes_nothing(impl, case, instance, bad_pairs, what, mentions=()):
    """The call is refused with ValueError (for tf_keras ports: naming `mentions`; charged to the
    check's requirement), changes nothing, and the optimizer then goes on exactly as a twin that never
    saw the call (ATOM-1). The twin, not the oracle: atomicity is checked whatever ROUTE-9 says."""
    before = checks.snapshot(instance)
    error = checks.expect_raises(impl, lambda: instance.step(bad_pairs), what, error=ValueError, mentions=mentions)
    checks.assert_unchanged(before, checks.snapshot(instance), f"{what} (which raised {type(error).__name__})")
    twin = checks.run_steps(impl, case)
    with checks.applicability():
        instance.step(case.steps[0])
        twin.step(case.steps[0])
    with checks.charged_to("ATOM-1"):
        checks.assert_arrays_close(instance.variables(), twin.variables(), impl.tolerance("exact"),
                                   f"variables of the next step after {what}, against a twin that never saw it")
    return error


def _every_group_then(case, data, last):
    """A call with a gradient for every listed variable, in generated order, then `last`."""
    listed = [i for g in case.spec.groups for i in g.variables]
    order = data.draw(st.permutations(listed), label="order of the good pairs")
    return tuple((i, data.draw(cs.gradient_values(case.variables[i].value.shape))) for i in order) + (last,)


@pytest.mark.requirement("ROUTE-3", "ATOM-1", "ITER-2")
@pytest.mark.needs("none_gradient")
@pytest.mark.owns("all_none_call", "refused_call_atomic")
@pytest.mark.uses(*STEP)
@given(data=st.data())
def test_all_none_call_raises_and_changes_nothing(impl, data):
    """ROUTE-3: a call whose every gradient is None raises; ATOM-1: nothing changes."""
    case, instance = _after_good_steps(impl, data)
    bad = tuple((i, None) for g in case.spec.groups for i in g.variables)
    if not bad:  # Every group empty: no variable to give None.
        return
    _bad_call_changes_nothing(impl, case, instance, bad, "a call with only None gradients")


@pytest.mark.broad
@pytest.mark.requirement("ROUTE-4", "ATOM-1", "ITER-2")
@pytest.mark.needs("step_errors")
@pytest.mark.owns("unlisted_gradient", "refused_call_atomic")
@pytest.mark.uses(*STEP)
@given(data=st.data())
def test_unlisted_variable_raises_names_it_and_changes_nothing(impl, data):
    """ROUTE-4: a gradient for a variable no entry lists raises ValueError naming it; ATOM-1: nothing changes,
    even though every group's own gradients come first in the call."""
    case = data.draw(cs.cases(impl.caps, max_steps=2), label="case")
    orphan = len(case.variables)
    shape = data.draw(cs.variable_shapes, label="orphan shape")
    case = dataclasses.replace(case, variables=case.variables + (VariableSpec(ORPHAN, np.zeros(shape, np.float32)),))
    instance = checks.run_steps(impl, case)
    bad = _every_group_then(case, data, (orphan, np.ones(shape, np.float32)))
    _bad_call_changes_nothing(impl, case, instance, bad, "a gradient for an unlisted variable",
                              mentions=[checks.names(ORPHAN)])


@pytest.mark.requirement("ROUTE-4")
@pytest.mark.needs("step_errors")
@given(data=st.data())
def test_doubly_listed_variable_is_refused(impl, data):
    """ROUTE-4: a variable listed by two entries is refused (at construction or at the first step),
    with a ValueError naming the variable and both entry indices."""
    case = data.draw(cs.cases(impl.caps, min_groups=2, max_steps=1), label="case")
    owner = case.owner()
    i = data.draw(st.sampled_from(sorted(owner)), label="doubly listed variable")
    other = data.draw(st.sampled_from([k for k in range(len(case.spec.groups)) if k != owner[i]]), label="second entry")
    groups = list(case.spec.groups)
    groups[other] = Group(groups[other].optimizer, groups[other].variables + (i,))
    spec = dataclasses.replace(case.spec, groups=tuple(groups))

    def build_and_step():
        instance = impl.adapter.composite(spec, case.variables)
        before = checks.snapshot(instance)
        try:
            instance.step(case.steps[0])
        except Exception:
            checks.assert_unchanged(before, checks.snapshot(instance), "a refused step")
            raise

    first, second = sorted((owner[i], other))
    checks.expect_raises(impl, build_and_step, f"variable {i} listed by entries {first} and {second}", error=ValueError,
                         mentions=[checks.names(case.variables[i].name), rf"\[{first}\]", rf"\[{second}\]"])


@pytest.mark.requirement("ATOM-2", "ATOM-1")
@pytest.mark.needs("step_errors")
@pytest.mark.owns("refused_call_atomic")
@pytest.mark.uses(*STEP)
@given(data=st.data())
def test_wrong_gradient_shape_raises_and_changes_nothing(impl, data):
    """ATOM-2: a gradient of the wrong shape raises ValueError naming the variable before anything
    changes, wherever it is in the call."""
    case, instance = _after_good_steps(impl, data)
    listed = [i for g in case.spec.groups for i in g.variables]
    victim = data.draw(st.sampled_from(listed), label="variable given a wrong-shaped gradient")
    good = [pair for pair in _every_group_then(case, data, None)[:-1] if pair[0] != victim]
    wrong = np.ones(case.variables[victim].value.shape + (2,), np.float32)
    _bad_call_changes_nothing(impl, case, instance, tuple(good) + ((victim, wrong),),
                              "a gradient of the wrong shape", mentions=[checks.names(case.variables[victim].name)])
