"""The JSON report written by every `python -m conformance` run (schema version 2; version 1 is
still read, see below).

A report is one run: one implementation on one device with one profile.

    {
      "schema_version": 2,
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
                  "blocked": 0, "not_applicable": 0, "error": 0},
      "checks": [ CHECK, ... ],
      "requirements": {"ROUTE-1": REQUIREMENT, ...},   # EVERY requirement of the spec
      "verdicts": {"complies": 0, "deviates": 0, "blocked": 0, "not_applicable": 0, "untested": 0}
    }

    CHECK = {
      "id": "test_routing.py::test_central_property",   # stable: file::test name
      "area": "routing",
      "requirements": ["ROUTE-9"],                      # the requirements it cites
      "status": STATUS,
      "reason": str | null,        # why not applicable / expected to fail / blocked
      "message": str | null,       # the failure, first lines
      "example": str | null,       # hypothesis' minimal failing example
      "reproduce": str | null,     # a command that reruns just this check
      "examples_run": int | null,  # hypothesis examples executed
      "duration_s": float,
      "charged": ["ROUTE-7"],      # whose deviation its failure shows; non-empty only when the
                                   # status is failed or expected_failure (absent or empty: the
                                   # check's first cited requirement, requirements[0])
      "blocked_by": ["ROUTE-7"],   # non-empty iff the status is blocked
      "avoided": [{"situation": "absent_group", "requirement": "ROUTE-7", "reason": "..."}],
                                   # situations left out of its generated cases because their
                                   # owning requirement deviates (any status)
      "unverified": [{"requirement": "ITER-4", "blocked_by": "ITER-1", "reason": "..."}]
                                   # optional: cited requirements a passing check could not verify
                                   # (the assertion needs a situation whose owner deviates); each
                                   # counts as blocked for that requirement
    }

    REQUIREMENT = {
      "verdict": VERDICT,          # what the run found, whatever the expectations file says
      "status": STATUS | null,     # the gating status (`requirement_status` of its checks);
                                   # null when no check cites it
      "checks": ["<check id>", ...],  # the checks citing it, sorted
      "blocked_by": ["ROUTE-7"],   # verdict blocked: what its checks were blocked by; else []
      "reason": str,               # one line a reader can act on (see `requirements_section`)
      "area": "routing", "scope": "semantic" | "tf_keras", "text": "..."   # from SPEC.md
    }

STATUS is a check's (or a requirement's gating) status: passed, failed, expected_failure,
unexpected_pass, blocked, not_applicable, error. It decides the run's exit code together with the
expectations file: failed and error fail the run, expected_failure does not.

VERDICT is a requirement's conformance verdict: complies, deviates, blocked, not_applicable,
untested (`requirements_section` says how it follows from the checks). An expectations file
decides exit codes, never verdicts: an expected failure still *deviates*.

Schema version 1 (still accepted by `validate`, rendered and gated through `requirement_verdicts`)
differs in that: no check is blocked and checks have no `charged`, `blocked_by` or `avoided`; the
`requirements` object lists only the requirements some check cites, each with `status`, `area`,
`scope`, `text` and `checks` but no verdict; there is no `verdicts` object.
"""

from __future__ import annotations

import textwrap
from typing import Iterable, Mapping, Optional

SCHEMA_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)

PASSED = "passed"
FAILED = "failed"
EXPECTED_FAILURE = "expected_failure"
UNEXPECTED_PASS = "unexpected_pass"
BLOCKED = "blocked"  # could not run without a situation whose owning requirement deviates
NOT_APPLICABLE = "not_applicable"
ERROR = "error"

# Worst first: a requirement takes the worst status among its checks, except that not-applicable
# and blocked checks only count when no other check does (neither passes nor fails; blocked is
# shown when any check is, since it says more than not applicable).
STATUSES = (ERROR, FAILED, UNEXPECTED_PASS, EXPECTED_FAILURE, PASSED, BLOCKED, NOT_APPLICABLE)
V1_STATUSES = tuple(s for s in STATUSES if s != BLOCKED)

# Statuses that make a run fail (its exit code is non-zero).
FAILING = frozenset({ERROR, FAILED})
# Statuses whose check found a deviation (charged to its `charged` requirements).
DEVIATING = frozenset({FAILED, EXPECTED_FAILURE})
# Statuses of a check that ran and found the behaviour the spec asks for.
COMPLYING = frozenset({PASSED, UNEXPECTED_PASS})

COMPLIES = "complies"
DEVIATES = "deviates"
VERDICT_BLOCKED = "blocked"
VERDICT_NOT_APPLICABLE = "not_applicable"
UNTESTED = "untested"
VERDICTS = (COMPLIES, DEVIATES, VERDICT_BLOCKED, VERDICT_NOT_APPLICABLE, UNTESTED)


def requirement_sort_key(requirement_id: str) -> tuple:
    """`AREA-N` sorts by area, then N as a number; any other id sorts by its text."""
    prefix, _, number = requirement_id.rpartition("-")
    if prefix and number.isdigit():
        return (prefix, int(number), requirement_id)
    return (requirement_id, -1, requirement_id)


def requirement_status(check_statuses: Iterable[str]) -> str:
    """The gating status of a requirement from the statuses of the checks that cite it.

    The worst status among the checks that ran (`STATUSES` order); BLOCKED when none ran and some
    check was blocked; NOT_APPLICABLE when every check is. Neither blocked nor not applicable fails.
    No check at all is a `ValueError`: an untested requirement has no status, and calling it not
    applicable would pass it off as a reasoned exclusion.
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


# --------------------------------------------------------------------------- verdicts


def charged(check: Mapping) -> list:
    """The requirements a check's deviation is charged to: its `charged` list, or (absent or empty,
    as in schema 1) its first cited requirement. Empty unless the check failed or expectedly failed."""
    if check.get("status") not in DEVIATING:
        return []
    return list(check.get("charged") or (check.get("requirements") or [])[:1])


def first_line(text) -> str:
    """The first non-blank line of `text`, stripped ('' for None)."""
    for line in textwrap.dedent(str(text or "")).splitlines():
        if line.strip():
            return line.strip()
    return ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _deviation(check: Mapping) -> str:
    """What a deviating check found, in one line: an expected failure's expectations reason, else
    the first line of its message."""
    if check["status"] == EXPECTED_FAILURE:
        text = first_line(check.get("reason")) or first_line(check.get("message"))
        return f"{check['id']}: expected failure: {text or 'no reason given'}"
    return f"{check['id']}: {first_line(check.get('message')) or first_line(check.get('reason')) or 'failed (no message)'}"


def _avoided(checks: Iterable[Mapping]) -> list:
    """'cases without <situation> (<requirement> deviates)' for each distinct avoided situation."""
    seen = []
    for check in checks:
        for entry in check.get("avoided") or ():
            item = (str(entry.get("situation")), str(entry.get("requirement")))
            if item not in seen:
                seen.append(item)
    return [f"cases without {situation} ({requirement} deviates)" for situation, requirement in sorted(seen)]


def _join_ids(ids: Iterable[str]) -> str:
    return ", ".join(sorted(set(ids), key=requirement_sort_key))


def verdict_of(requirement: str, citing: Iterable[Mapping]) -> dict:
    """`verdict`, `blocked_by` and `reason` of `requirement` from the checks citing it.

    - deviates: a citing check that failed or expectedly failed is charged to it;
    - complies: else a citing check passed (or passed unexpectedly);
    - blocked: else a citing check was blocked (by a requirement that deviates);
    - not_applicable: else every citing check is not applicable;
    - untested: else (no citing check; only errors; only failures charged to other requirements).
    """
    checks = sorted(citing, key=lambda c: c["id"])
    # A passing check that could not verify this requirement (its assertions need a situation whose
    # owner deviates: `unverified`) counts as blocked for it.
    checks = [_as_blocked(c, unverified) if (unverified := _unverified(c, requirement)) else c for c in checks]
    deviating = [c for c in checks if requirement in charged(c)]
    passing = [c for c in checks if c["status"] in COMPLYING]
    blocked = [c for c in checks if c["status"] == BLOCKED]
    errored = [c for c in checks if c["status"] == ERROR]
    elsewhere = [c for c in checks if c["status"] in DEVIATING and requirement not in charged(c)]
    if deviating:
        return {"verdict": DEVIATES, "blocked_by": [], "reason": _deviation(deviating[0])}
    if passing and not errored:  # An errored check leaves its requirement unknown, whatever else passed.
        unexpected = sum(1 for c in passing if c["status"] == UNEXPECTED_PASS)
        parts = [_plural(len(passing), "check") + " passed"
                 + (f" ({unexpected} unexpectedly: a stale expectations entry)" if unexpected else "")]
        parts += _avoided(checks)
        if blocked:
            parts.append(f"{len(blocked)} blocked by {_join_ids(r for c in blocked for r in c.get('blocked_by') or ())}")
        if elsewhere:
            parts.append(f"{len(elsewhere)} failed, charged to {_join_ids(r for c in elsewhere for r in charged(c))}")
        return {"verdict": COMPLIES, "blocked_by": [], "reason": "; ".join(parts)}
    if blocked and not errored:
        blocked_by = sorted({r for c in blocked for r in c.get("blocked_by") or ()}, key=requirement_sort_key)
        first = blocked[0]
        reason = f"{first['id']} blocked by {_join_ids(first.get('blocked_by') or ()) or 'an unnamed requirement'}"
        if first_line(first.get("reason")):
            reason += f": {first_line(first.get('reason'))}"
        if len(blocked) > 1:
            reason += f" (and {_plural(len(blocked) - 1, 'other check')})"
        return {"verdict": VERDICT_BLOCKED, "blocked_by": blocked_by, "reason": reason}
    if checks and all(c["status"] == NOT_APPLICABLE for c in checks):
        return {"verdict": VERDICT_NOT_APPLICABLE, "blocked_by": [],
                "reason": first_line(checks[0].get("reason")) or "not applicable (no reason given)"}
    if not checks:
        reason = "no check cites it in this run"
    else:
        parts = []
        if errored:
            parts.append(f"{_plural(len(errored), 'check')} errored (no verdict): {errored[0]['id']}: "
                         f"{first_line(errored[0].get('message'))}".rstrip(": "))
        if passing:
            parts.append(f"{_plural(len(passing), 'check')} passed")
        if elsewhere:
            owners = _join_ids(r for c in elsewhere for r in charged(c))
            parts.append(f"its only failing check is charged to {owners}" if len(elsewhere) == 1
                         else f"its failing checks are charged to {owners}")
        reason = "; ".join(parts) or "no citing check reached a verdict"
    return {"verdict": UNTESTED, "blocked_by": [], "reason": reason}


def _unverified(check: Mapping, requirement: str) -> list:
    """The check's `unverified` entries for `requirement` (schema 2): left unchecked because a
    situation it needs deviates; only a passing check's count."""
    if check.get("status") not in COMPLYING:
        return []
    return [u for u in check.get("unverified") or () if u.get("requirement") == requirement]


def _as_blocked(check: Mapping, unverified: list) -> dict:
    return {**check, "status": BLOCKED, "blocked_by": sorted({u["blocked_by"] for u in unverified}),
            "reason": "; ".join(u.get("reason") or "" for u in unverified)}


def requirements_section(checks: Iterable[Mapping], spec: Mapping[str, Mapping]) -> dict:
    """The `requirements` object of a schema-2 report.

    `spec` maps every requirement id of SPEC.md to {"area", "scope", "text"}; every one gets an entry
    (an untested requirement shows as such), and so does any id a check cites that `spec` lacks
    (area, scope and text null). Each entry: verdict, status, checks, blocked_by, reason, area,
    scope, text (module docstring; `verdict_of` for the verdict and its reason).
    """
    checks = list(checks)
    citing = {}
    for check in checks:
        for rid in check.get("requirements") or ():
            citing.setdefault(rid, []).append(check)
    section = {}
    for rid in sorted(set(spec) | set(citing), key=requirement_sort_key):
        cs = citing.get(rid, [])
        info = spec.get(rid) or {}
        section[rid] = {
            **verdict_of(rid, cs),
            "status": requirement_status(c["status"] for c in cs) if cs else None,
            "checks": sorted(c["id"] for c in cs),
            "area": info.get("area"),
            "scope": info.get("scope"),
            "text": info.get("text"),
        }
    return section


def verdict_counts(requirements: Mapping[str, Mapping]) -> dict:
    """{verdict: number of requirements}, every verdict present (zeros included)."""
    counts = {verdict: 0 for verdict in VERDICTS}
    for entry in requirements.values():
        counts[entry["verdict"]] += 1
    return counts


def requirement_verdicts(report: Mapping) -> dict:
    """The `requirements` object of `report` with verdicts, for either schema version: a schema-2
    report's as stored; for schema 1, derived from its checks by the same rules (a failure charged
    to its check's first requirement), for the requirements the report lists."""
    if report.get("schema_version") == 1:
        spec = {rid: {k: (entry or {}).get(k) for k in ("area", "scope", "text")}
                for rid, entry in report["requirements"].items()}
        derived = requirements_section(report["checks"], {})
        # Only the listed requirements (schema 1 lists the cited ones; a listed one no check cites
        # is untested): a cited id the report does not list would be a fabricated row.
        out = {}
        for rid in sorted(spec, key=requirement_sort_key):
            entry = derived.get(rid) or {**verdict_of(rid, []), "status": None, "checks": []}
            out[rid] = {**entry, **spec[rid]}
        return out
    return {rid: dict(entry) for rid, entry in report["requirements"].items()}


# --------------------------------------------------------------------------- validation


def _validate_list_of_ids(check: Mapping, field: str) -> list:
    value = check.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"Check {check.get('id')!r}: {field!r} must be a list of requirement ids, got {value!r}.")
    return value


def validate(report: Mapping) -> None:
    """Raise ValueError if `report` is not a schema-1 or schema-2 report."""
    version = report.get("schema_version")
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"Unsupported report schema_version {version!r}; expected one of {list(SUPPORTED_VERSIONS)}."
        )
    keys = ("implementation", "device", "profile", "summary", "checks", "requirements")
    for key in keys + (("verdicts",) if version >= 2 else ()):
        if key not in report:
            raise ValueError(f"Report lacks {key!r}.")
    statuses = STATUSES if version >= 2 else V1_STATUSES
    for check in report["checks"]:
        if check.get("status") not in statuses:
            raise ValueError(f"Check {check.get('id')!r} has unknown status {check.get('status')!r}.")
        if version < 2:
            continue
        charged_ids = _validate_list_of_ids(check, "charged")
        if charged_ids and check["status"] not in DEVIATING:
            raise ValueError(f"Check {check.get('id')!r} is {check['status']} but charged to {charged_ids}.")
        blocked_by = _validate_list_of_ids(check, "blocked_by")
        if bool(blocked_by) != (check["status"] == BLOCKED):
            raise ValueError(
                f"Check {check.get('id')!r} is {check['status']} with blocked_by {blocked_by}: "
                "a check is blocked exactly when it names what blocked it."
            )
        avoided = check.get("avoided") or []
        if not isinstance(avoided, list) or not all(
            isinstance(a, Mapping) and isinstance(a.get("situation"), str) and isinstance(a.get("requirement"), str)
            for a in avoided
        ):
            raise ValueError(f"Check {check.get('id')!r}: 'avoided' must be a list of {{situation, requirement}}, got {avoided!r}.")
    if version >= 2:
        if not isinstance(report["requirements"], Mapping):
            raise ValueError("'requirements' must be a mapping of requirement id to entry.")
        for rid, entry in report["requirements"].items():
            if not isinstance(entry, Mapping) or entry.get("verdict") not in VERDICTS:
                verdict = entry.get("verdict") if isinstance(entry, Mapping) else entry
                raise ValueError(f"Requirement {rid!r} has unknown verdict {verdict!r}; expected one of {list(VERDICTS)}.")
            if entry.get("status") is not None and entry["status"] not in STATUSES:
                raise ValueError(f"Requirement {rid!r} has unknown status {entry['status']!r}.")
        if not isinstance(report["verdicts"], Mapping):
            raise ValueError("'verdicts' must be a mapping of verdict to count.")
