"""Routing (SPEC ROUTE-*): which sub-optimizer gets which gradient, and nothing else."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.protocol import OPTIMIZER_KINDS, Group, VariableSpec
from conformance import checks
from conformance import strategies as cs
from conformance.plugin import not_applicable
from conformance.situations import STEP


# A tenth of the profile's examples each: one kind, dense gradients for every variable, nothing else.
@pytest.mark.requirement("ROUTE-9")
@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.owns(f"kind:{k}")) for k in OPTIMIZER_KINDS])
@settings(max_examples=checks.examples_share(10))
@given(data=st.data())
def test_one_kind_steps_like_itself_alone(impl, data, kind):
    """ROUTE-9 for one optimizer kind: composites whose entries all run `kind`, every variable given
    a dense gradient every step, equal each sub-optimizer alone. A kind the port gets wrong everywhere
    is found here, and every other check then draws the other kinds."""
    if kind not in impl.expressible.kinds:
        not_applicable(f"{impl.name} offers no {kind} sub-optimizer")
    checks.run_case(impl, data.draw(cs.cases(impl.caps), label="case"))


@pytest.mark.broad
@pytest.mark.requirement("ROUTE-9", "ROUTE-5")
@pytest.mark.owns("steps")
@pytest.mark.uses(*STEP, "sub_counters")
@given(data=st.data())
def test_steps_equal_sub_optimizers_alone(impl, data):
    """ROUTE-9: any sequence of steps equals each sub-optimizer run alone on its own group."""
    checks.run_case(impl, data.draw(cs.cases(impl.caps), label="case"))


@pytest.mark.broad
@pytest.mark.requirement("ROUTE-1")
@pytest.mark.owns("shared_names")
@pytest.mark.uses(*STEP, "sub_counters")
@pytest.mark.relies_on("steps")
@given(data=st.data())
def test_same_named_variables_route_by_identity(impl, data):
    """ROUTE-1: every variable is called "shared"; only identity can tell them apart."""
    case = data.draw(cs.cases(impl.caps, min_groups=2), label="case")
    renamed = tuple(VariableSpec("shared", v.value) for v in case.variables)
    checks.run_case(impl, dataclasses.replace(case, variables=renamed))


# Half the profile's examples: every example changes the var lists at least once, and the steps are
# those of ROUTE-9's broad check, which runs the full count on fixed lists.
@pytest.mark.requirement("ROUTE-1")
@pytest.mark.needs("changing_groups")
@pytest.mark.uses(*STEP, "sub_counters")
@pytest.mark.relies_on("steps")
@settings(max_examples=checks.examples_share(2))
@given(data=st.data())
def test_var_lists_are_read_every_step(impl, data):
    """ROUTE-1: each step calls the var-list callables afresh: a variable listed later (a layer built
    after the first step) is trained from then on, and one moved to another entry continues with that
    entry's sub-optimizer (fresh slots there), as the oracle computes."""
    checks.run_case(impl, data.draw(cs.cases_with_changing_groups(impl.caps), label="case"))


@pytest.mark.requirement("ROUTE-2")
@pytest.mark.needs("none_gradient")
@pytest.mark.owns("none_gradient")
@pytest.mark.uses("sub_clipping")
@given(data=st.data())
def test_none_gradients_are_dropped_without_error(impl, data):
    """ROUTE-2: a group whose every gradient is None is dropped, never raises, and is not stepped."""
    case = data.draw(cs.cases(impl.caps, min_groups=2), label="case")
    owner = case.owner()
    silent = data.draw(st.sampled_from(sorted(set(owner.values()))), label="group given only None")
    if all(k == silent for k in owner.values()):  # Someone else must apply a gradient.
        return
    steps = []
    for pairs in case.steps:
        pairs = [(i, None if owner[i] == silent else g) for i, g in pairs]
        pairs += [(i, None) for i in case.spec.groups[silent].variables if i not in {j for j, _ in pairs}]
        if not any(g is not None for _, g in pairs):
            i = next(i for i in owner if owner[i] != silent)
            pairs.append((i, data.draw(cs.gradient_values(case.variables[i].value.shape))))
        steps.append(tuple(pairs))
    checks.run_case(impl, dataclasses.replace(case, steps=tuple(steps)))


@pytest.mark.requirement("ROUTE-7")
@pytest.mark.owns("absent_group")
@pytest.mark.uses("sub_clipping")
@given(data=st.data())
def test_absent_group_is_not_stepped(impl, data):
    """ROUTE-7: a group with no gradient in a step is not called: counter and state unchanged. One
    entry's group is empty (never a gradient), and where the port can leave variables out of a step,
    another group gets gradients in the first step only."""
    case = data.draw(cs.cases(impl.caps, min_groups=1, max_groups=3, min_steps=2), label="case")
    # An entry whose group is empty: always where the port cannot leave variables out of a step,
    # else half the time (some ports cannot build an entry over no variables: not applicable then).
    groups = case.spec.groups
    if not impl.caps.absent_variables or data.draw(st.booleans(), label="with an entry whose group is empty"):
        groups += (Group(data.draw(cs.sub_optimizers(impl.caps), label="sub-optimizer of the empty group"), ()),)
    empty = len(groups) - 1 if len(groups) > len(case.spec.groups) else None
    owner = case.owner()
    absent = None
    if impl.caps.absent_variables and len(set(owner.values())) > 1:
        absent = data.draw(st.sampled_from(sorted(set(owner.values()))), label="group absent after step 1")
        steps = [case.steps[0]] + [tuple((i, g) for i, g in pairs if owner[i] != absent) for pairs in case.steps[1:]]
        case = dataclasses.replace(case, steps=tuple(pairs for pairs in steps if any(g is not None for _, g in pairs)))
    # A sub-optimizer that clips is the one most likely to trip over a step without gradients
    # (clipping an empty list): half the time the groups without gradients clip.
    if impl.caps.sub_clipping and data.draw(st.booleans(), label="the groups without gradients clip"):
        groups = tuple(Group(dataclasses.replace(g.optimizer, clip=data.draw(cs.some_clip_settings())), g.variables)
                       if k in (absent, empty) else g for k, g in enumerate(groups))
    case = dataclasses.replace(case, spec=dataclasses.replace(case.spec, groups=groups))
    instance, oracle = checks.run_case(impl, case)
    expected = {} if empty is None else {empty: 0}
    if absent is not None:
        expected[absent] = sum(1 for pairs in case.steps[:1] if any(owner[i] == absent and g is not None for i, g in pairs))
    got = checks.sub_counters(instance)
    for k, stepped in expected.items():
        assert got[k] == stepped, f"sub-optimizer {k} ran {got[k]} steps; its group had gradients in {stepped}"


@pytest.mark.requirement("ROUTE-8")
@pytest.mark.needs("sparse_gradient")
@pytest.mark.owns("sparse_gradient")
@pytest.mark.uses("sub_clipping")
@given(data=st.data())
def test_sparse_gradients_reach_the_sub_optimizer_sparse(impl, data):
    """ROUTE-8: sparse gradients (repeated indices too) are applied as sparse updates, not densified."""
    case = data.draw(cs.cases(impl.caps), label="case")
    steps = []
    for pairs in case.steps:
        sparse = []
        for i, g in pairs:
            shape = case.variables[i].value.shape
            if g is not None and len(shape) >= 1:
                g = data.draw(cs.sparse_gradients(shape), label=f"sparse gradient for variable {i}")
            sparse.append((i, g))
        steps.append(tuple(sparse))
    checks.run_case(impl, dataclasses.replace(case, steps=tuple(steps)))
