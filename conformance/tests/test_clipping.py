"""Clipping (SPEC CLIP-*): the composite clips all groups' gradients together."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.protocol import Clip, CompositeSpec, Group
from conformance import checks
from conformance import strategies as cs
from conformance.situations import STEP


@pytest.mark.broad
@pytest.mark.requirement("CLIP-1", "CLIP-3")
@pytest.mark.needs("composite_clipping")
@pytest.mark.owns("composite_clipping")
@pytest.mark.uses(*STEP, "sub_counters")
@pytest.mark.relies_on("steps")
@given(data=st.data())
def test_composite_clipping_matches_an_independent_computation(impl, data):
    """CLIP-1: clipvalue, then clipnorm, then global_clipnorm over every group; CLIP-3: sub clips after."""
    checks.run_case(impl, data.draw(cs.cases(impl.caps, clip=cs.some_clip_settings()), label="case"))


@pytest.mark.requirement("CLIP-2", "CLIP-1")
@pytest.mark.needs("composite_clipping")
@pytest.mark.uses(*STEP, "sub_counters")
@pytest.mark.relies_on("steps", "composite_clipping")  # A port that does not clip at all fails CLIP-1 alone.
@given(data=st.data(), c=st.floats(0.05, 0.5))
def test_global_clipnorm_spans_all_groups(impl, data, c):
    """CLIP-2: with several groups, the global norm is taken over all of them (not per group)."""
    case = data.draw(cs.cases(impl.caps, min_groups=2, clip=st.just(Clip(global_clipnorm=c))), label="case")
    checks.run_case(impl, case)


@pytest.mark.requirement("CLIP-2")
@pytest.mark.needs("composite_clipping", "sub_clipping")
@pytest.mark.relies_on("composite_clipping")
@given(data=st.data(), c=st.floats(0.05, 2.0))
def test_one_entry_global_clipnorm_equals_the_sub_optimizer_alone(impl, data, c):
    """CLIP-2: a one-entry composite with global_clipnorm=c is its sub-optimizer alone with global_clipnorm=c."""
    case = data.draw(cs.cases(impl.caps, min_groups=1, max_groups=1, clip=st.just(Clip())), label="case")
    group = case.spec.groups[0]
    sub = dataclasses.replace(group.optimizer, clip=Clip(global_clipnorm=c))
    listed = list(group.variables)
    with checks.applicability():
        composite = impl.adapter.composite(
            CompositeSpec((Group(dataclasses.replace(sub, clip=Clip()), group.variables),), Clip(global_clipnorm=c)),
            case.variables)
        alone = impl.adapter.standalone(sub, [case.variables[i] for i in listed])
    for number, pairs in enumerate(case.steps, 1):
        with checks.applicability():
            composite.step(pairs)
            alone.step([(listed.index(i), g) for i, g in pairs])
        got = [composite.variables()[i] for i in listed]
        checks.assert_arrays_close(got, alone.variables(), impl.tolerance("exact"), f"variables after step {number}")


@pytest.mark.requirement("CLIP-3")
@pytest.mark.needs("sub_clipping")
@pytest.mark.owns("sub_clipping")
@settings(max_examples=checks.examples_share(2))  # Every entry clips: half the count suffices.
@given(data=st.data())
def test_sub_optimizers_clip_their_own_group(impl, data):
    """CLIP-3: every entry's sub-optimizer has its own clip settings, which apply inside its group
    as they do for the sub-optimizer alone (no composite clipping here: CLIP-1's check combines them)."""
    case = data.draw(cs.cases(impl.caps), label="case")
    groups = tuple(Group(dataclasses.replace(g.optimizer, clip=data.draw(cs.some_clip_settings(), label=f"clip of entry {k}")),
                         g.variables) for k, g in enumerate(case.spec.groups))
    checks.run_case(impl, dataclasses.replace(case, spec=dataclasses.replace(case.spec, groups=groups)))
