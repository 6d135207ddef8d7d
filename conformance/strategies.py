"""Hypothesis strategies for composite-optimizer cases, composed from small named pieces.

Every strategy takes a `Capabilities` so that it only generates what the implementation's
API can express (an optax port gets no `None` gradients, a torch port no Ftrl). What it can
express is generated in full: a case the port gets wrong is a failure, never filtered out.

The pieces, smallest first:
  variable_shapes, variable_names, gradient_values      -> variables and dense gradients
  sparse_gradients                                      -> IndexedSlices-like gradients
  learning_rates (floats and schedules), sub_optimizers -> what each entry runs
  clip_settings / invalid_clip_settings                 -> composite and sub-optimizer clipping
  layouts                                               -> variables and their groups
  steps                                                 -> one call's (index, gradient) pairs
  cases                                                 -> all of the above, ready to run
  cases_with_changing_groups                            -> entries whose var lists change between steps
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence, Tuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from adapters.protocol import (
    OPTIMIZER_KINDS,
    Clip,
    CompositeSpec,
    Group,
    Schedule,
    Sparse,
    Step,
    SubOptimizer,
    VariableSpec,
)


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What the implementation can express; derived from the adapter once per session."""

    kinds: Tuple[str, ...] = tuple(OPTIMIZER_KINDS)
    none_gradient: bool = True
    absent_variables: bool = True
    sparse_gradient: bool = True
    sub_clipping: bool = True
    composite_clipping: bool = True
    empty_groups: bool = True


Groups = Tuple[Tuple[int, ...], ...]  # Each entry's variable indices.


@dataclasses.dataclass(frozen=True)
class Case:
    """A composite, its variables' initial values, and a sequence of good steps.

    `regroupings[t]`, where given and not None, is what the entries' var lists return from step t
    (0-based) on (SPEC ROUTE-1); without it they return `spec.groups` throughout.
    """

    spec: CompositeSpec
    variables: Tuple[VariableSpec, ...]
    steps: Tuple[Step, ...]
    regroupings: Tuple[Optional[Groups], ...] = ()

    def owner(self) -> dict:
        """Variable index -> entry index (of `spec.groups`)."""
        return {i: k for k, group in enumerate(self.spec.groups) for i in group.variables}

    def groups_before_step(self, t: int) -> Optional[Groups]:
        return self.regroupings[t] if t < len(self.regroupings) else None

    def universes(self) -> Optional[Groups]:
        """Every variable each entry lists at some step, in first-listed order; None without regroupings."""
        if not any(g is not None for g in self.regroupings):
            return None
        universes = [list(g.variables) for g in self.spec.groups]
        for groups in self.regroupings:
            for k, group in enumerate(groups or ()):
                universes[k] += [i for i in group if i not in universes[k]]
        return tuple(tuple(u) for u in universes)


# --------------------------------------------------------------------------- variables

variable_shapes = st.sampled_from([(), (1,), (3,), (4,), (2, 3), (3, 2)])
# Names are unique by default; ROUTE-1's own check gives every variable the same name, so a port
# that routes by name fails that check, not every check.
variable_names = st.sampled_from(["kernel", "bias", "embedding"])
_finite32 = st.floats(-3.0, 3.0, width=32, allow_subnormal=False)


def gradient_values(shape) -> st.SearchStrategy:
    return hnp.arrays(np.float32, shape, elements=_finite32)


def variable_specs(shape, name: str = None) -> st.SearchStrategy:
    return st.builds(VariableSpec, name=st.just(name) if name else variable_names, value=gradient_values(shape))


@st.composite
def sparse_gradients(draw, shape) -> Sparse:
    """Rows of a rank>=1 variable; indices unique or repeated (repeats add up, ROUTE-8)."""
    rows = shape[0]
    unique = draw(st.booleans())
    indices = draw(st.lists(st.integers(0, rows - 1), min_size=1, max_size=4, unique=unique))
    values = draw(gradient_values((len(indices),) + tuple(shape[1:])))
    return Sparse(np.asarray(indices, np.int64), values)


# --------------------------------------------------------------------------- sub-optimizers


def schedules() -> st.SearchStrategy:
    lr = st.floats(0.01, 0.5)
    return st.one_of(
        st.builds(
            lambda lr0, steps, rate, stair: Schedule(
                "exponential_decay",
                {"initial_learning_rate": lr0, "decay_steps": steps, "decay_rate": rate, "staircase": stair},
            ),
            lr,
            st.integers(1, 4),
            st.floats(0.3, 0.99),
            st.booleans(),
        ),
        st.builds(
            lambda a, b, c: Schedule("piecewise_constant", {"boundaries": [1, 2], "values": [a, b, c]}),
            lr,
            lr,
            lr,
        ),
        st.builds(
            lambda lr0, steps, rate: Schedule(
                "inverse_time_decay", {"initial_learning_rate": lr0, "decay_steps": steps, "decay_rate": rate}
            ),
            lr,
            st.integers(1, 4),
            st.floats(0.1, 2.0),
        ),
    )


def learning_rates(kind: str) -> st.SearchStrategy:
    constant = st.floats(0.001, 0.5)
    if kind == "nadam":  # tf_keras' legacy Nadam refuses schedules; so do other ports'.
        return constant
    return st.one_of(constant, schedules())


_beta_1 = st.floats(0.5, 0.95)
_beta_2 = st.floats(0.9, 0.999)
_epsilon = st.sampled_from([1e-7, 1e-5, 1e-3])
_HYPER = {
    "sgd": st.fixed_dictionaries({"momentum": st.sampled_from([0.0, 0.5, 0.9]), "nesterov": st.booleans()}),
    "adam": st.fixed_dictionaries(
        {"beta_1": _beta_1, "beta_2": _beta_2, "epsilon": _epsilon, "amsgrad": st.booleans()}
    ),
    "adagrad": st.fixed_dictionaries({"initial_accumulator_value": st.floats(0.01, 0.5), "epsilon": _epsilon}),
    "rmsprop": st.fixed_dictionaries(
        {
            "rho": st.floats(0.5, 0.95),
            "momentum": st.sampled_from([0.0, 0.5]),
            "epsilon": _epsilon,
            "centered": st.booleans(),
        }
    ),
    "adamax": st.fixed_dictionaries({"beta_1": _beta_1, "beta_2": _beta_2, "epsilon": _epsilon}),
    "nadam": st.fixed_dictionaries({"beta_1": _beta_1, "beta_2": _beta_2, "epsilon": _epsilon}),
    "ftrl": st.fixed_dictionaries(
        {
            "learning_rate_power": st.sampled_from([-0.5, -0.25]),
            "initial_accumulator_value": st.floats(0.05, 0.5),
            "l1_regularization_strength": st.sampled_from([0.0, 0.01]),
            "l2_regularization_strength": st.sampled_from([0.0, 0.1]),
            "beta": st.sampled_from([0.0, 0.5]),
        }
    ),
}

_clip_value = st.floats(0.05, 5.0)


def clip_settings(allowed: bool = True) -> st.SearchStrategy:
    """Every allowed combination (CLIP-1): any of the three, but never clipnorm with global_clipnorm."""
    if not allowed:
        return st.just(Clip())
    norm = st.one_of(
        st.just({}),
        st.builds(lambda c: {"clipnorm": c}, _clip_value),
        st.builds(lambda c: {"global_clipnorm": c}, _clip_value),
    )
    value = st.one_of(st.just({}), st.builds(lambda c: {"clipvalue": c}, _clip_value))
    return st.builds(lambda n, v: Clip(**n, **v), norm, value)


def some_clip_settings() -> st.SearchStrategy:
    """Allowed clip settings with at least one set. The first branch, hypothesis' simplest and so
    its first examples, sets a norm and clipvalue both: CLIP-1's order of the stages shows only
    where two of them act, and a -x first pass runs 3 examples."""
    norm = st.one_of(st.builds(lambda c: {"global_clipnorm": c}, _clip_value),  # The one that spans groups.
                     st.builds(lambda c: {"clipnorm": c}, _clip_value))
    two_stages = st.builds(lambda n, v: Clip(**n, clipvalue=v), norm, _clip_value)
    return st.one_of(two_stages, clip_settings().filter(lambda clip: clip != Clip()))


def invalid_clip_settings() -> st.SearchStrategy:
    """Clip settings that must be refused (CTOR-4): a bad value, or clipnorm with global_clipnorm."""
    bad_value = st.sampled_from([0.0, -1.0, -0.5, math.inf, -math.inf, math.nan, "1.0", True])
    one_bad = st.builds(
        lambda key, bad: Clip(**{key: bad}), st.sampled_from(["clipvalue", "clipnorm", "global_clipnorm"]), bad_value
    )
    both_norms = st.builds(lambda a, b: Clip(clipnorm=a, global_clipnorm=b), _clip_value, _clip_value)
    return st.one_of(one_bad, both_norms)


@st.composite
def sub_optimizers(draw, caps: Capabilities) -> SubOptimizer:
    kind = draw(st.sampled_from(caps.kinds))
    clip = Clip()
    if caps.sub_clipping and draw(st.integers(0, 4)) == 0:  # Mostly unclipped; CLIP-3 sometimes.
        clip = draw(some_clip_settings())
    return SubOptimizer(kind, draw(learning_rates(kind)), draw(_HYPER[kind]), clip)


# --------------------------------------------------------------------------- layouts and steps


@st.composite
def layouts(draw, caps: Capabilities, *, min_groups=1, max_groups=4, max_variables=6, orphans=False):
    """Variables and their groups. Groups may be empty (where `caps.empty_groups`); with `orphans`,
    some variables are in none."""
    n_groups = draw(st.integers(min_groups, max_groups))
    n_vars = draw(st.integers(n_groups if not caps.empty_groups else 1, max(max_variables, n_groups)))
    variables, owners = [], []
    for index in range(n_vars):
        base = draw(variable_names)
        variables.append(draw(variable_shapes.flatmap(lambda shape: variable_specs(shape, f"{base}_{index}"))))
        choices = list(range(n_groups)) + ([None] if orphans else [])
        # Without empty groups, the first variables go one to each group, the rest anywhere.
        owners.append(index if index < n_groups and not caps.empty_groups else draw(st.sampled_from(choices)))
    if all(owner is None for owner in owners):
        owners[0] = 0
    groups = tuple(
        Group(draw(sub_optimizers(caps)), tuple(i for i, owner in enumerate(owners) if owner == k))
        for k in range(n_groups)
    )
    return variables, groups


@st.composite
def steps(draw, caps: Capabilities, variables: Sequence[VariableSpec], groups: Sequence[Sequence[int]]) -> Step:
    """One good call: pairs over the groups' variables in a generated order.

    A variable is absent, present with `None`, dense, or sparse, as `caps` allows. Every group
    present in the call has at least one real gradient: a group given *only* `None` is ROUTE-2's
    own case (test_none_gradients_are_dropped_without_error), kept out of the other checks so that
    a port which gets ROUTE-2 wrong fails that check, not every check.
    """
    owner = {i: k for k, group in enumerate(groups) for i in group}
    order = draw(st.permutations(sorted(owner)))
    pairs = []
    for i in order:
        shape = variables[i].value.shape
        options = ["dense"]
        if caps.absent_variables:
            options.append("absent")
        if caps.none_gradient:
            options.append("none")
        if caps.sparse_gradient and len(shape) >= 1:
            options.append("sparse")
        choice = draw(st.sampled_from(options))
        if choice == "dense":
            pairs.append((i, draw(gradient_values(shape))))
        elif choice == "none":
            pairs.append((i, None))
        elif choice == "sparse":
            pairs.append((i, draw(sparse_gradients(shape))))
    if not any(g is not None for _, g in pairs):  # A good step applies at least one gradient.
        i = order[0]
        pairs = [(j, g) for j, g in pairs if j != i] + [(i, None)]
    for k in {owner[i] for i, _ in pairs}:
        if all(g is None for i, g in pairs if owner[i] == k):
            position = next(p for p, (i, _) in enumerate(pairs) if owner[i] == k)
            i = pairs[position][0]
            pairs[position] = (i, draw(gradient_values(variables[i].value.shape)))
    return tuple(pairs)


@st.composite
def cases(
    draw,
    caps: Capabilities,
    *,
    clip: Optional[st.SearchStrategy] = None,
    min_groups: int = 1,
    max_groups: int = 4,
    min_steps: int = 1,
    max_steps: int = 4,
) -> Case:
    """A composite over generated variables and groups, and 1..max_steps good steps.

    Composite clipping is off unless `clip` is given: the clipping checks (CLIP-*) give it, so a
    port that lacks it fails those checks alone, not every check of every area.
    """
    variables, groups = draw(layouts(caps, min_groups=min_groups, max_groups=max_groups))
    if clip is None:
        clip = st.just(Clip())
    spec = CompositeSpec(groups=groups, clip=draw(clip))
    n_steps = draw(st.integers(min_steps, max_steps))
    layout = [g.variables for g in groups]
    return Case(spec, tuple(variables), tuple(draw(steps(caps, variables, layout)) for _ in range(n_steps)))


@st.composite
def cases_with_changing_groups(draw, caps: Capabilities) -> Case:
    """A case whose entries' var lists change between steps (SPEC ROUTE-1): before a generated step,
    some variables listed by no entry so far are listed from then on (a layer built after the first
    step), and some listed ones move to another entry. Every step is a good step for the groups of
    that moment."""
    variables, groups = draw(layouts(caps, min_groups=2, max_groups=3, orphans=True))
    n_steps = draw(st.integers(2, 4))
    first = draw(st.integers(1, n_steps - 1))  # The first step before which the var lists change.
    current = [list(g.variables) for g in groups]
    layout_of_step, regroupings = [], []
    for t in range(n_steps):
        regrouped = None
        if t == first or (t > first and draw(st.booleans())):
            owners = {i: k for k, group in enumerate(current) for i in group}
            moved = {}
            for i in range(len(variables)):
                if i not in owners:  # Not listed yet: maybe listed from now on.
                    if draw(st.booleans()):
                        moved[i] = draw(st.integers(0, len(current) - 1))
                elif draw(st.integers(0, 2)) == 0:
                    moved[i] = draw(st.sampled_from([k for k in range(len(current)) if k != owners[i]]))
            if not moved:  # Something changes at `first`: the first listed variable moves on.
                i = min(owners)
                moved[i] = (owners[i] + 1) % len(current)
            if not caps.empty_groups:  # No move may leave a group empty: one of its variables stays.
                for k, group in enumerate(current):
                    if group and all(i in moved for i in group):
                        del moved[group[0]]
            current = [[i for i in group if i not in moved] for group in current]
            for i, k in moved.items():
                current[k].append(i)
            regrouped = tuple(tuple(group) for group in current)
        regroupings.append(regrouped)
        layout_of_step.append(tuple(tuple(group) for group in current))
    good_steps = tuple(draw(steps(caps, variables, layout)) for layout in layout_of_step)
    return Case(CompositeSpec(groups=groups), tuple(variables), good_steps, tuple(regroupings))
