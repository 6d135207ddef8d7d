"""Regression gate: compare a run's report with a committed baseline report (usually of the same
implementation, or of the previous build of the one now under test).

    result = compare(baseline, current, baseline_path=..., current_path=...)
    print(result.format()); sys.exit(result.exit_code)

Definitions (statuses as in `reports.schema`; requirements keyed by id, checks by their stable id):

- A *regression* is a requirement that was `passed` in the baseline and is `failed` or `error` now,
  or one with a check that was `passed` in the baseline and is `failed` or `error` now (a check can
  regress under a requirement that was already failing or expected to fail; that still makes this
  run worse). Each regression lists those checks.
- An *improvement* is a requirement that was `failed`, `error` or `expected_failure` in the
  baseline and is `passed` or `unexpected_pass` now. `unexpected_pass` means the expectations file
  still lists a check that now passes: its entry is to be removed.
- *Excused* requirements were `passed` in the baseline and are `expected_failure`, `blocked` or
  `not_applicable` now, or have a check that was `passed` and is one of those now: not a
  regression (an expectation or capability was declared, or a requirement the check depends on
  deviates), but a difference to review, since that is how a regression could be hidden.
- Requirements that no check cites in one of the two reports (schema 2 lists them with a null
  status, schema 1 leaves them out) are not compared: they were not run. One that some check cited
  in the baseline and none cites now is listed as disappeared.
- *Verdict changes* (complies, deviates, blocked, ... per `reports.schema`) between the two reports
  are listed last, for information: the exit code follows the gating statuses above, never the
  verdicts. A schema-1 report's verdicts are derived from its checks (`schema.requirement_verdicts`).
- *Disappeared* checks (and requirements) are in the baseline and absent now; *new* checks the
  reverse. Neither changes the exit code; both are listed.

`GateResult.exit_code` is 1 iff there is a regression, else 0.

Either report may be of schema version 1 or 2. What may be compared: `compare` refuses (`ValueError`) reports of different spec versions, because
a requirement id means what that version of reference/SPEC.md says, so "ITER-1 passed, now fails"
across versions would compare two different requirements. Everything else is compared and noted
when it differs: the implementation (comparing a candidate build, e.g. `--impl my_pkg:Candidate`,
with the report of the previous build is exactly what CI does), the device and the profile.
"""

from __future__ import annotations

import json
import os
import shlex
import textwrap
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from reports import schema
from reports.schema import requirement_sort_key

BROKEN = frozenset({schema.FAILED, schema.ERROR})
WAS_NOT_PASSING = frozenset({schema.FAILED, schema.ERROR, schema.EXPECTED_FAILURE})
NOW_PASSING = frozenset({schema.PASSED, schema.UNEXPECTED_PASS})
EXCUSED = frozenset({schema.EXPECTED_FAILURE, schema.BLOCKED, schema.NOT_APPLICABLE})

# Where the runner writes reports when no --report-dir is given (reports/runs/ is git-ignored).
DEFAULT_REPORT_DIR = "reports/runs"


@dataclass(frozen=True)
class CheckChange:
    """One check's status in the baseline and now (None: absent from that report)."""

    id: str
    requirements: Tuple[str, ...]
    baseline: Optional[str]
    current: Optional[str]
    message: Optional[str] = None
    reproduce: Optional[str] = None


@dataclass(frozen=True)
class RequirementChange:
    """A requirement whose status changed, with the checks under it that changed."""

    requirement: str
    baseline: str
    current: str
    checks: Tuple[CheckChange, ...]


@dataclass(frozen=True)
class VerdictChange:
    """A requirement whose verdict differs between the baseline and now (informational)."""

    requirement: str
    baseline: str
    current: str


@dataclass(frozen=True)
class GateResult:
    implementation: str
    device: str
    profile: str
    regressions: Tuple[RequirementChange, ...]
    improvements: Tuple[RequirementChange, ...]
    excused: Tuple[RequirementChange, ...]
    disappeared_checks: Tuple[CheckChange, ...]
    disappeared_requirements: Tuple[str, ...]
    new_checks: Tuple[CheckChange, ...]
    notes: Tuple[str, ...] = ()
    expectations: Optional[str] = None
    baseline_path: Optional[str] = None
    current_path: Optional[str] = None
    baseline_created: Optional[str] = None
    current_created: Optional[str] = None
    impl_spec: Optional[str] = None  # the run's --impl argument when it differs from the name
    verdict_changes: Tuple[VerdictChange, ...] = ()
    verdicts_derived: Tuple[str, ...] = ()  # "baseline"/"current": verdicts derived from a schema-1 report

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def update_baseline_commands(self) -> Tuple[str, ...]:
        """The commands that rerun this implementation, device and profile and copy the new report
        over the baseline. Without `current_path` the report's file name is left as a placeholder."""
        report_dir = os.path.dirname(self.current_path) if self.current_path else DEFAULT_REPORT_DIR
        report_dir = report_dir or "."
        new_report = self.current_path or os.path.join(report_dir, "<the report JSON that run writes>")
        baseline = self.baseline_path or "<the baseline JSON>"
        run = ["python", "-m", "conformance", "--impl", self.impl_spec or self.implementation,
               "--device", self.device, "--profile", self.profile]
        if self.expectations:
            run += ["--expectations", self.expectations]
        run += ["--report-dir", report_dir]
        return (" ".join(_shell_word(word) for word in run), f"cp {_shell_word(new_report)} {_shell_word(baseline)}")

    def format(self) -> str:
        """Plain text for a terminal or CI log: the verdict, regressions first, then improvements
        (with the commands that accept them), then what needs review."""
        run = f"{self.implementation} on {self.device}, profile {self.profile}"
        if self.regressions:
            n = len(self.regressions)
            lines = [f"Conformance gate FAILED: {n} regression{'s' if n != 1 else ''} ({run})."]
        else:
            lines = [f"Conformance gate passed: no regression ({run})."]
        lines.append(f"  baseline: {self.baseline_path or '(in memory)'} (created {self.baseline_created or 'unknown'})")
        lines.append(f"  current:  {self.current_path or '(in memory)'} (created {self.current_created or 'unknown'})")
        lines += [f"  note: {note}" for note in self.notes]

        if self.regressions:
            lines += ["", "REGRESSIONS (passed in the baseline, failing now):"]
            for change in self.regressions:
                lines += _format_change(change, detail=True)

        if self.improvements:
            lines += ["", "IMPROVEMENTS (failing or expected to fail in the baseline, passing now):"]
            for change in self.improvements:
                lines += _format_change(change, detail=False)
            stale = [c for ch in self.improvements for c in ch.checks if c.current == schema.UNEXPECTED_PASS]
            if stale:
                where = self.expectations or "the implementation's expectations file"
                lines += ["", f"  Remove these [[expected_failure]] entries from {where} (they pass now):"]
                lines += [f"    check = {json.dumps(c.id)}  ({', '.join(c.requirements)})" for c in stale]
                lines.append("  then rerun and update the baseline:")
            else:
                lines += ["", "  Update the baseline to lock these in:"]
            lines += [f"    {command}" for command in self.update_baseline_commands()]

        if self.excused:
            lines += ["", "NEEDS REVIEW (passed in the baseline, excused now: an expectation or capability was declared, "
                      "or a check is blocked by a deviating requirement):"]
            for change in self.excused:
                lines += _format_change(change, detail=False)

        if self.disappeared_requirements:
            lines += ["", "DISAPPEARED REQUIREMENTS (in the baseline, absent now):"]
            lines += [f"  {rid}" for rid in self.disappeared_requirements]
        if self.disappeared_checks:
            lines += ["", "DISAPPEARED CHECKS (in the baseline, absent now):"]
            lines += [
                f"  {c.id}  ({', '.join(c.requirements) or 'no requirement'}; was {c.baseline})"
                for c in self.disappeared_checks
            ]
        if self.new_checks:
            lines += ["", "NEW CHECKS (absent from the baseline):"]
            lines += [f"  {c.id}  ({', '.join(c.requirements) or 'no requirement'}; {c.current})" for c in self.new_checks]
        if (self.disappeared_checks or self.new_checks) and not self.improvements:
            lines += ["", "  To record the current set of checks, update the baseline:"]
            lines += [f"    {command}" for command in self.update_baseline_commands()]
        if self.verdict_changes:
            derived = (f" ({' and '.join(self.verdicts_derived)} verdicts derived from a schema-1 report)"
                       if self.verdicts_derived else "")
            lines += ["", f"verdicts (informational, not gating{derived}): "
                      + ", ".join(f"{c.requirement} {c.baseline} -> {c.current}" for c in self.verdict_changes)]
        return "\n".join(lines) + "\n"


def _shell_word(text: str) -> str:
    """Quote for a POSIX shell only where needed (shlex leaves plain paths and names bare)."""
    return shlex.quote(text)


def _format_change(change: RequirementChange, detail: bool) -> list:
    lines = [f"  {change.requirement}: {change.baseline} -> {change.current}"]
    for check in change.checks:
        lines.append(f"    {check.id}: {check.baseline or 'absent'} -> {check.current or 'absent'}")
        if detail and check.message:
            first = textwrap.dedent(check.message).strip().splitlines()[:3]
            lines += [f"      message: {first[0]}"] + [f"               {line}" for line in first[1:]]
        if detail and check.reproduce:
            lines.append(f"      reproduce: {check.reproduce}")
    return lines


def _impl_spec(report: Mapping) -> Optional[str]:
    """The `--impl` argument of the run's recorded command (a bundled name or MODULE:ATTR)."""
    try:
        words = shlex.split(report.get("command") or "")
    except ValueError:
        return None
    for i, word in enumerate(words):
        if word == "--impl" and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--impl="):
            return word.split("=", 1)[1]
    return None


def _checks(report: Mapping) -> dict:
    return {c["id"]: c for c in report["checks"]}


def _change(check_id: str, old: Optional[Mapping], new: Optional[Mapping]) -> CheckChange:
    source = new if new is not None else old
    return CheckChange(
        id=check_id,
        requirements=tuple(source.get("requirements") or ()),
        baseline=old["status"] if old is not None else None,
        current=new["status"] if new is not None else None,
        message=(new or {}).get("message"),
        reproduce=(new or {}).get("reproduce"),
    )


def _cites(check: Optional[Mapping], requirement: str, report: Mapping) -> bool:
    if check is None:
        return False
    entry = report["requirements"].get(requirement) or {}
    return requirement in (check.get("requirements") or ()) or check["id"] in (entry.get("checks") or ())


def compare(
    baseline: Mapping,
    current: Mapping,
    *,
    baseline_path: Optional[str] = None,
    current_path: Optional[str] = None,
) -> GateResult:
    """Compare `current` with `baseline` (schema-1 or schema-2 reports, in any combination, against
    one spec version).

    The paths only make `format()` print exact commands; they are not read.
    """
    for which, report in (("baseline", baseline), ("current", current)):
        try:
            schema.validate(report)
        except ValueError as exc:
            raise ValueError(f"The {which} report is invalid: {exc}") from None
    if baseline.get("spec_version") != current.get("spec_version"):
        raise ValueError(
            f"The baseline is a report against spec version {baseline.get('spec_version')!r} but the current run "
            f"is against {current.get('spec_version')!r}; requirement ids are only comparable within one spec "
            "version. Rerun the baseline's implementation with this suite and commit that report as the baseline."
        )
    names = (baseline["implementation"].get("name"), current["implementation"].get("name"))
    notes = []
    if names[0] != names[1]:
        notes.append(
            f"implementation differs: baseline {names[0]!r}, current {names[1]!r} "
            "(compared as a new build against the previous build's report)."
        )
    for key in ("device", "profile"):
        if baseline.get(key) != current.get(key):
            notes.append(f"{key} differs: baseline {baseline.get(key)!r}, current {current.get(key)!r}.")

    old_checks, new_checks = _checks(baseline), _checks(current)
    old_reqs, new_reqs = _tested(baseline), _tested(current)

    regressions, improvements, excused = [], [], []
    for rid in sorted(set(old_reqs) & set(new_reqs), key=requirement_sort_key):
        was, now = old_reqs[rid]["status"], new_reqs[rid]["status"]
        ids = sorted(
            i for i in set(old_checks) | set(new_checks)
            if _cites(old_checks.get(i), rid, baseline) or _cites(new_checks.get(i), rid, current)
        )
        changed = [_change(i, old_checks.get(i), new_checks.get(i)) for i in ids]
        changed = [c for c in changed if c.baseline != c.current]
        broken = [c for c in changed if c.baseline == schema.PASSED and c.current in BROKEN]
        if (was == schema.PASSED and now in BROKEN) or broken:
            # Under a requirement that was passing, every check now broken is part of the story
            # (a new failing check included); otherwise only those that were passing.
            shown = [c for c in changed if c.current in BROKEN] if was == schema.PASSED else broken
            regressions.append(RequirementChange(rid, was, now, tuple(shown)))
        elif was in WAS_NOT_PASSING and now in NOW_PASSING:
            shown = [c for c in changed if c.current in NOW_PASSING]
            improvements.append(RequirementChange(rid, was, now, tuple(shown)))
        elif (was == schema.PASSED and now in EXCUSED) or any(
            c.baseline == schema.PASSED and c.current in EXCUSED for c in changed
        ):
            # A check that passed and is excused now (blocked, say) under a requirement that still
            # passes is no regression either, but the same kind of difference to review.
            shown = [c for c in changed if c.current in EXCUSED and (was == schema.PASSED or c.baseline == schema.PASSED)]
            excused.append(RequirementChange(rid, was, now, tuple(shown)))

    disappeared = tuple(_change(i, old_checks[i], None) for i in sorted(set(old_checks) - set(new_checks)))
    new = tuple(_change(i, None, new_checks[i]) for i in sorted(set(new_checks) - set(old_checks)))
    return GateResult(
        implementation=names[1],
        device=str(current.get("device")),
        profile=str(current.get("profile")),
        regressions=tuple(regressions),
        improvements=tuple(improvements),
        excused=tuple(excused),
        disappeared_checks=disappeared,
        disappeared_requirements=tuple(sorted(set(old_reqs) - set(new_reqs), key=requirement_sort_key)),
        new_checks=new,
        notes=tuple(notes),
        expectations=current.get("expectations"),
        baseline_path=None if baseline_path is None else str(baseline_path),
        current_path=None if current_path is None else str(current_path),
        baseline_created=baseline.get("created"),
        current_created=current.get("created"),
        impl_spec=_impl_spec(current),
        verdict_changes=_verdict_changes(baseline, current),
        verdicts_derived=tuple(
            which for which, report in (("baseline", baseline), ("current", current)) if report.get("schema_version") == 1
        ),
    )


def _tested(report: Mapping) -> dict:
    """The report's requirements that have a gating status (schema 2 lists untested ones with null)."""
    return {rid: entry for rid, entry in report["requirements"].items() if (entry or {}).get("status") is not None}


def _verdict_changes(baseline: Mapping, current: Mapping) -> tuple:
    """The requirements listed by both reports whose verdict differs, by id."""
    old, new = schema.requirement_verdicts(baseline), schema.requirement_verdicts(current)
    return tuple(
        VerdictChange(rid, old[rid]["verdict"], new[rid]["verdict"])
        for rid in sorted(set(old) & set(new), key=requirement_sort_key)
        if old[rid]["verdict"] != new[rid]["verdict"]
    )
