"""The JSON report written by every `python -m conformance` run (schema version 1).

A report is one run: one implementation on one device with one profile.

    {
      "schema_version": 1,
      "suite_version": "0.1.0",          # conformance package version
      "spec_version": "1.0",             # reference/SPEC.md version
      "implementation": {"name": "reference", "implementation": "...", "version": "..."},
      "frameworks": {"tensorflow": "2.21.0", ...},   # from the adapter's info()
      "device": "cpu",
      "profile": "ci",
      "seed": 0,                         # hypothesis seed (null when random)
      "created": "2026-11-24T12:00:00+00:00",
      "command": "python -m conformance --impl reference",
      "expectations": "adapters/expectations/tfrs.toml" | null,
      "summary": {"passed": 0, "failed": 0, "expected_failure": 0, "unexpected_pass": 0,
                  "not_applicable": 0, "error": 0},
      "checks": [ CHECK, ... ],
      "requirements": {"ROUTE-1": {"status": STATUS, "area": "routing", "scope": "semantic",
                                   "text": "...", "checks": ["<check id>", ...]}, ...}
    }

    CHECK = {
      "id": "test_routing.py::test_central_property",   # stable: file::test name
      "area": "routing",
      "requirements": ["ROUTE-9"],
      "status": STATUS,
      "reason": str | null,        # why not applicable / why expected to fail
      "message": str | null,       # the failure, first lines
      "example": str | null,       # hypothesis' minimal failing example
      "reproduce": str | null,     # a command that reruns just this check
      "examples_run": int | null,  # hypothesis examples executed
      "duration_s": float
    }
"""

from __future__ import annotations

from typing import Iterable, Mapping

SCHEMA_VERSION = 1

PASSED = "passed"
FAILED = "failed"
EXPECTED_FAILURE = "expected_failure"
UNEXPECTED_PASS = "unexpected_pass"
NOT_APPLICABLE = "not_applicable"
ERROR = "error"
BLOCKED = "blocked"

# Worst first: a requirement takes the worst status among its checks, except that
# not-applicable checks only count when every check of the requirement is one.
STATUSES = (ERROR, FAILED, UNEXPECTED_PASS, EXPECTED_FAILURE, PASSED, BLOCKED, NOT_APPLICABLE)

# Statuses that make a run fail (its exit code is non-zero).
FAILING = frozenset({ERROR, FAILED})


def requirement_status(check_statuses: Iterable[str]) -> str:
    """The status of a requirement from the statuses of the checks that cite it.

    The worst status among the applicable checks (`STATUSES` order); NOT_APPLICABLE only when every
    check is. No check at all is a `ValueError`: an untested requirement has no status, and calling
    it not applicable would pass it off as a reasoned exclusion.
    """
    statuses = list(check_statuses)
    if not statuses:
        raise ValueError("A requirement that no check cites has no status (it is untested, not 'not_applicable').")
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise ValueError(f"Unknown check status(es) {unknown}; expected one of {list(STATUSES)}.")
    applicable = [s for s in statuses if s != NOT_APPLICABLE]
    if not applicable:
        return NOT_APPLICABLE
    return min(applicable, key=STATUSES.index)


def summarize(checks: Iterable[Mapping]) -> dict:
    summary = {status: 0 for status in STATUSES}
    for check in checks:
        summary[check["status"]] += 1
    return summary


def validate(report: Mapping) -> None:
    """Raise ValueError if `report` is not a schema-1 report."""
    if report.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"Unsupported report schema_version {report.get('schema_version')!r}; expected {SCHEMA_VERSION}.")
    for key in ("implementation", "device", "profile", "summary", "checks", "requirements"):
        if key not in report:
            raise ValueError(f"Report lacks {key!r}.")
    for check in report["checks"]:
        if check.get("status") not in STATUSES:
            raise ValueError(f"Check {check.get('id')!r} has unknown status {check.get('status')!r}.")
