"""Shared steps of the conformance tests: build, run against the oracle, compare, snapshot.

Every comparison names what differs (which variable, after which step) so that a failure
reads as a statement about the spec, next to hypothesis' minimal example.
"""

from __future__ import annotations

import contextlib
import re
from typing import List, Sequence

import numpy as np

from adapters.protocol import Clip, Refused, Unsupported
from conformance.harness import harness_errors
from conformance.oracle import Oracle


@contextlib.contextmanager
def applicability():
    """Around calls through the adapter. An adapter's `Unsupported`: inside a generated example,
    that example is rejected and its reason counted (the check is not applicable only if every
    example was); outside one, the check is not applicable. Either way the report shows the
    adapter's reason. Any other exception that is neither the implementation's (`Refused`) nor a
    check's assertion is the adapter's or the suite's own: a HarnessError (conformance/harness.py)."""
    from hypothesis import reject
    from hypothesis.control import currently_in_test_context

    from conformance.plugin import not_applicable, note_unsupported

    try:
        with harness_errors():
            yield
    except Unsupported as exc:
        if currently_in_test_context():
            note_unsupported(str(exc))
            reject()
        not_applicable(str(exc))


@contextlib.contextmanager
def charged_to(requirement: str):
    """A failed assertion inside is charged to `requirement` (the report's `charged`), not to the
    check's first cited one; the innermost `charged_to` wins."""
    import pytest

    try:
        yield
    except (Exception, pytest.fail.Exception) as exc:  # An assertion, pytest.raises' miss, an uncaught refusal.
        if getattr(exc, "conformance_requirement", None) is None:
            exc.conformance_requirement = requirement
        raise


def examples_share(divisor: int) -> int:
    """`max_examples` for a check whose examples cost more (or prove more) each: 1/divisor of the
    profile's count, at least 5, and never more than the profile's count itself (a -x first pass
    runs 3 examples a property, every check included)."""
    from hypothesis import settings

    count = settings.default.max_examples
    return min(count, max(5, count // divisor))


def tf_keras_port(impl) -> bool:
    """Whether the implementation is a tf_keras drop-in, whose exception types and messages SPEC names."""
    return "tf_keras_api" not in impl.unsupported


def assert_arrays_close(actual: Sequence, expected: Sequence, tol, what: str) -> None:
    rtol, atol = tol
    assert len(actual) == len(expected), f"{what}: {len(actual)} arrays, expected {len(expected)}"
    for index, (a, e) in enumerate(zip(actual, expected)):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape, f"{what}[{index}]: shape {a.shape}, expected {e.shape}"
        if not np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
            worst = float(np.max(np.abs(a.astype(np.float64) - e) - atol - rtol * np.abs(e)))
            raise AssertionError(
                f"{what}[{index}] differs beyond rtol={rtol}, atol={atol} (worst excess {worst:.3g}):\n"
                f"  got      {np.array2string(a, precision=8)}\n  expected {np.array2string(e, precision=8)}"
            )


def tolerance_for(impl, clip: Clip, compiled: bool = False):
    """Exact unless the oracle recomputed the composite's clipping independently, or the step ran
    compiled against an eager oracle (a compiler may fuse and reorder float arithmetic)."""
    return impl.tolerance("exact" if clip == Clip() and not compiled else "recomputed")


def build(impl, case):
    """The composite under test and its oracle, over the same initial values."""
    with applicability():
        instance = impl.adapter.composite(case.spec, case.variables)
        return instance, Oracle(impl.adapter, case.spec, case.variables, universes=case.universes())


def step_and_compare(impl, case, instance, oracle, pairs, step_number: int, *, compiled=False) -> None:
    """One step on both; then variables and, where the check reads sub-optimizer counters (situation
    `sub_counters`, ITER-3's) and the port exposes them, each sub-optimizer's counter must agree.
    Variables are compared first, so a port that keeps no per-entry counter still has its values checked.

    A counter mismatch is the check's own, like any failure in a situation it uses: the counters are
    read only where ITER-3's owner has complied (else the check leaves `sub_counters` out), so a
    mismatch here is the check's situation at work (in a routing check, the counter shows *which*
    sub-optimizer stepped a variable, where two identical sub-optimizers give identical values)."""
    with applicability():
        instance.step(pairs, compiled=compiled)
        oracle.step(pairs)
        got_variables = instance.variables()
    assert_arrays_close(got_variables, oracle.variables(), tolerance_for(impl, case.spec.clip, compiled),
                        f"variables after step {step_number}")
    if not impl.allows("sub_counters"):
        return
    try:
        with harness_errors():
            got_counters, expected_counters = instance.sub_iterations(), oracle.sub_iterations()
    except Unsupported:
        return  # No per-entry counters to compare; ITER-3's own check reports that as not applicable.
    assert got_counters == expected_counters, (
        f"sub-optimizer counters after step {step_number}: {got_counters}, expected {expected_counters} "
        "(each advances only on steps where its group gets a gradient)"
    )


def run_case(impl, case, *, compiled=False):
    """Build, then every step of the case compared with the oracle (`step_and_compare`).
    Returns (instance, oracle)."""
    instance, oracle = build(impl, case)
    for number, pairs in enumerate(case.steps, 1):
        groups = case.groups_before_step(number - 1)
        if groups is not None:  # The entries' callables return other variables from this step on.
            with applicability():
                instance.regroup(groups)
            oracle.regroup(groups)
        step_and_compare(impl, case, instance, oracle, pairs, number, compiled=compiled)
    return instance, oracle


def run_steps(impl, case):
    """Build, then every step of the case, compared with nothing: for checks whose subject comes after."""
    with applicability():
        instance = impl.adapter.composite(case.spec, case.variables)
        for pairs in case.steps:
            instance.step(pairs)
    return instance


def snapshot(instance) -> dict:
    """Everything a failed call must leave untouched (ATOM-1)."""
    with applicability():
        snap = {"variables": instance.variables(), "sub_iterations": instance.sub_iterations()}
        try:
            snap["iterations"] = instance.iterations()
        except Unsupported:
            snap["iterations"] = None
        try:
            snap["state"] = instance.state()
        except Unsupported:
            snap["state"] = None
    return snap


def assert_unchanged(before: dict, after: dict, what: str, requirement: str = "ATOM-1") -> None:
    """Nothing changed: a refused call's atomicity, charged to `requirement` (ATOM-1 for steps)."""
    with charged_to(requirement):
        _assert_unchanged(before, after, what)


def _assert_unchanged(before: dict, after: dict, what: str) -> None:
    assert before["iterations"] == after["iterations"], (
        f"{what} changed the composite counter: {before['iterations']} -> {after['iterations']}")
    assert before["sub_iterations"] == after["sub_iterations"], (
        f"{what} changed sub-optimizer counters: {before['sub_iterations']} -> {after['sub_iterations']}")
    assert_arrays_close(after["variables"], before["variables"], (0, 0), f"{what}: variables")
    if before["state"] is not None:
        assert_arrays_close(after["state"], before["state"], (0, 0), f"{what}: optimizer state")


def expect_raises(impl, call, what: str, *, error: type = None, mentions: Sequence[str] = ()) -> BaseException:
    """`call()` must be refused by the implementation itself; returns the implementation's exception.

    Only a `Refused` counts (adapters/protocol.py): an exception of the adapter or the suite is a
    HarnessError, reported as an error. For a tf_keras port, the exception must also be an `error`
    and its message must match each regular expression of `mentions`: the type and what the message
    names, where SPEC states them. Those are the tf_keras API's (SPEC "scope"); a port to another
    framework need only refuse. `Unsupported` means not applicable.
    """
    try:
        with applicability():
            call()
    except Refused as refused:
        exc = refused.exception
    else:
        raise AssertionError(f"{what}: the call succeeded, but the spec says it must raise")
    if tf_keras_port(impl):
        if error is not None:
            assert isinstance(exc, error), (
                f"{what}: refused with {type(exc).__name__}: {exc}; the spec says {error.__name__}")
        for pattern in mentions:
            assert re.search(pattern, str(exc)), (
                f"{what}: the {type(exc).__name__} does not name what the spec says it names "
                f"(/{pattern}/): {exc}")
    return exc


def names(value) -> str:
    """A `mentions` pattern for `value` as a whole word or index (`2` not in `12`, `kernel_1` not in `kernel_10`)."""
    return rf"(?<![\w.]){re.escape(str(value))}(?![\w])"


def sub_counters(instance) -> List[int]:
    with applicability():
        return instance.sub_iterations()


def composite_counter(instance) -> int:
    with applicability():
        return instance.iterations()


def all_state(instance) -> List[np.ndarray]:
    with applicability():
        return instance.state()
