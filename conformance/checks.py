"""Shared steps of the conformance tests: build, run against the oracle, compare, snapshot.

Every comparison names what differs (which variable, after which step) so that a failure
reads as a statement about the spec, next to hypothesis' minimal example.
"""

from __future__ import annotations

import contextlib
from typing import List, Sequence

import numpy as np
from hypothesis.errors import UnsatisfiedAssumption

from adapters.protocol import Clip, Unsupported
from conformance.oracle import Oracle


@contextlib.contextmanager
def applicability():
    """An adapter's `Unsupported`: inside a generated example, that example is rejected and its
    reason counted (the check is not applicable only if every example was); outside one, the
    check is not applicable. Either way the report shows the adapter's reason."""
    from hypothesis import reject
    from hypothesis.control import currently_in_test_context

    from conformance.plugin import not_applicable, note_unsupported

    try:
        yield
    except Unsupported as exc:
        if currently_in_test_context():
            note_unsupported(str(exc))
            reject()
        not_applicable(str(exc))


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
        return impl.adapter.composite(case.spec, case.variables), Oracle(impl.adapter, case.spec, case.variables)


def step_and_compare(impl, case, instance, oracle, pairs, step_number: int, *, compiled=False) -> None:
    """One step on both; then variables (ROUTE-9) and, where the port exposes them, each
    sub-optimizer's counter (ITER-3) must agree. Variables are compared first, so a port that
    keeps no per-entry counter still has its values checked."""
    with applicability():
        instance.step(pairs, compiled=compiled)
        oracle.step(pairs)
        got_variables = instance.variables()
    assert_arrays_close(got_variables, oracle.variables(), tolerance_for(impl, case.spec.clip, compiled),
                        f"variables after step {step_number}")
    try:
        got_counters, expected_counters = instance.sub_iterations(), oracle.sub_iterations()
    except Unsupported:
        return  # No per-entry counters to compare; ITER-3's own check reports that as not applicable.
    assert got_counters == expected_counters, (
        f"sub-optimizer counters after step {step_number}: {got_counters}, expected {expected_counters} "
        "(each advances only on steps where its group gets a gradient)"
    )


def run_case(impl, case, *, compiled=False):
    """Build, then every step of the case compared with the oracle. Returns (instance, oracle)."""
    instance, oracle = build(impl, case)
    for number, pairs in enumerate(case.steps, 1):
        step_and_compare(impl, case, instance, oracle, pairs, number, compiled=compiled)
    return instance, oracle


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


def assert_unchanged(before: dict, after: dict, what: str) -> None:
    assert before["iterations"] == after["iterations"], (
        f"{what} changed the composite counter: {before['iterations']} -> {after['iterations']}")
    assert before["sub_iterations"] == after["sub_iterations"], (
        f"{what} changed sub-optimizer counters: {before['sub_iterations']} -> {after['sub_iterations']}")
    assert_arrays_close(after["variables"], before["variables"], (0, 0), f"{what}: variables")
    if before["state"] is not None:
        assert_arrays_close(after["state"], before["state"], (0, 0), f"{what}: optimizer state")


def expect_raises(call, what: str) -> BaseException:
    """`call()` must raise; returns the exception. `Unsupported` means not applicable."""
    try:
        with applicability():
            call()
    except (AssertionError, UnsatisfiedAssumption):  # A failure, or an example rejected as inexpressible.
        raise
    except Exception as exc:  # noqa: BLE001 - any exception type is a refusal here.
        return exc
    raise AssertionError(f"{what}: the call succeeded, but the spec says it must raise")


def sub_counters(instance) -> List[int]:
    with applicability():
        return instance.sub_iterations()


def composite_counter(instance) -> int:
    with applicability():
        return instance.iterations()


def all_state(instance) -> List[np.ndarray]:
    with applicability():
        return instance.state()
