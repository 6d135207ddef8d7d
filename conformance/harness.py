"""Errors of the adapter or the suite itself, told apart from the implementation's behaviour.

A check's verdict is about the implementation only when the implementation produced it: a
`Refused` (adapters/protocol.py) or a value the check compared. Any other exception raised while
the suite drives the adapter (an AttributeError in the adapter's own code, an IndexError while it
converts a step, the oracle failing) says nothing about the implementation: `harness_errors()`
turns it into a `HarnessError`, which the plugin reports as an error, never as a pass or a failure.
"""

from __future__ import annotations

import contextlib

from hypothesis.errors import HypothesisException, UnsatisfiedAssumption

from adapters.protocol import DeviceUnavailable, Refused, Unsupported


class HarnessError(Exception):
    """The adapter or the suite failed; the check has no verdict on the implementation."""


class OracleError(HarnessError):
    """The oracle (the framework's plain sub-optimizer, through `Adapter.standalone`) raised."""


# What passes through unchanged: verdicts (assertions, the implementation's refusals), the adapter's
# declared limits, and hypothesis' own control flow (rejected examples, health checks).
_NOT_HARNESS = (AssertionError, Refused, Unsupported, DeviceUnavailable, HarnessError, HypothesisException,
                UnsatisfiedAssumption)


@contextlib.contextmanager
def harness_errors(what: str = "the adapter or the suite"):
    """Any exception raised inside that is not a verdict or a declared limit becomes a HarnessError."""
    try:
        yield
    except _NOT_HARNESS:
        raise
    except Exception as exc:  # noqa: BLE001 - anything else is the harness's own failure.
        raise HarnessError(
            f"error in {what}, not a verdict on the implementation: {type(exc).__name__}: {exc}") from exc


@contextlib.contextmanager
def oracle_calls():
    """Around calls into the oracle: whatever it raises (a `Refused` too: adapters may mark their
    standalone calls like their composite's) is an OracleError."""
    try:
        yield
    except (AssertionError, Unsupported, HypothesisException, UnsatisfiedAssumption):
        raise
    except Exception as exc:  # noqa: BLE001
        inner = exc.exception if isinstance(exc, Refused) else exc
        raise OracleError(f"the oracle (the sub-optimizer alone, through Adapter.standalone) raised "
                          f"{type(inner).__name__}: {inner}") from exc


def is_harness_error(exc: BaseException) -> bool:
    """For the report: a HarnessError, or a group of exceptions that are all HarnessErrors."""
    from hypothesis.errors import InvalidArgument

    grouped = getattr(exc, "exceptions", None)  # An exception group (hypothesis: several distinct failures).
    if isinstance(grouped, (tuple, list)) and grouped:
        return all(is_harness_error(e) for e in grouped)
    # A strategy the check built wrongly (an empty range, say) is the suite's bug, not a verdict.
    return isinstance(exc, (HarnessError, InvalidArgument))
