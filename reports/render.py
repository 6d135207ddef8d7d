"""Render conformance reports (schema 1 or 2, see `reports.schema`) as Markdown and as one HTML page.

    render_markdown(reports) -> str   # CI job summary / PR comment
    render_html(reports) -> str       # a static page: no script, no external resource

Contract:

- Input: a list of reports, each accepted by `reports.schema.validate` (else `ValueError`), with an
  implementation name and a known status (schema 2: or null) for every requirement (else
  `ValueError` naming it). The order of the list does not matter: runs are sorted by
  (implementation, device, profile) and requirements by area and number (`ATOM-2` < `ATOM-10` <
  `CLIP-1`).
- The document leads with each run's *verdicts* (`verdict_line`: "tfrs · cpu: complies with 23,
  deviates on 14 (ROUTE-2, ...), blocked 1 (ITER-3 by ROUTE-7), not applicable 3, untested 2").
  The *gating* status (does the run pass under its expectations file, i.e. its exit code;
  `gating_line`) comes after, separately: an expectations file decides exit codes, never verdicts.
- Verdicts are the reports' own (schema 2) or derived from the checks of a schema-1 report by the
  same rules (`schema.requirement_verdicts`).
- The matrix has one row per requirement found in any report and one column per run, keyed by
  (implementation, device); when two runs share that pair their profile joins the key, and two runs
  sharing all three are refused (`ValueError`): one cell cannot hold two results.
- A cell shows the requirement's verdict in that run (`VERDICT_LEGEND`), or *missing* when the run's
  report does not list it (a schema-1 report lists only the requirements its checks cite), followed
  by a gating marker (`GATING_MARKERS`) when the gating status says more than the verdict: 🟡 for a
  deviation excused by the expectations file, for instance.
- Output is a pure function of the reports (no clock, no environment), so a committed rendering
  regenerates byte for byte. It also leaves out what changes from one run to the next when the
  verdicts do not: the reports' `created` and `duration_s`, and, in free text (messages, examples,
  reasons), memory addresses, durations, timestamps and the directories of absolute paths
  (`stable_text`). The JSON keeps them all.
- Every string taken from a report is escaped: `html.escape(s, quote=True)` in HTML text and
  attributes alike; in Markdown, HTML-escaped with the table/emphasis/link characters
  backslash-escaped, while free text (messages, examples) goes in code fences longer than any
  backtick run it contains, where Markdown shows it literally.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from reports import schema
from reports.schema import requirement_sort_key  # noqa: F401  (imported from here by older code)

# Display order of check statuses, best first; schema.STATUSES is worst-first for aggregation.
DISPLAY_ORDER = (
    schema.PASSED,
    schema.FAILED,
    schema.ERROR,
    schema.EXPECTED_FAILURE,
    schema.UNEXPECTED_PASS,
    schema.BLOCKED,
    schema.NOT_APPLICABLE,
)
MISSING = "missing"  # the run's report does not list the requirement
NO_CHECK = "no_check"  # listed, but no check cites it

# state -> (symbol, label, meaning). Symbols and labels both, so colour is never the only signal.
LEGEND = {
    schema.PASSED: ("✅", "passed", "every applicable check passed"),
    schema.FAILED: ("❌", "failed", "a check found behaviour that differs from the spec"),
    schema.ERROR: ("💥", "error", "a check could not run to a verdict (adapter or harness error)"),
    schema.EXPECTED_FAILURE: (
        "🟡",
        "expected failure",
        "a known, documented difference, listed in the implementation's expectations file",
    ),
    schema.UNEXPECTED_PASS: (
        "🔵",
        "unexpected pass",
        "listed as an expected failure but passed: the expectations entry is stale",
    ),
    schema.BLOCKED: (
        "⛔",
        "blocked",
        "could not run without a situation whose owning requirement deviates (named); neither pass nor fail",
    ),
    schema.NOT_APPLICABLE: (
        "➖",
        "not applicable",
        "the implementation's API cannot express the situation (reason given); not a pass",
    ),
    NO_CHECK: ("∅", "no check", "the report lists the requirement but no check cites it"),
    MISSING: ("—", "missing", "the run's report does not list this requirement"),
}
STATE_ORDER = DISPLAY_ORDER + (NO_CHECK, MISSING)

# verdict -> (symbol, label, meaning): the matrix cells. MISSING: the run's report lacks the row.
VERDICT_LEGEND = {
    schema.COMPLIES: ("✅", "complies", "a check citing it passed, and no check found a deviation charged to it"),
    schema.DEVIATES: (
        "❌",
        "deviates",
        "a check found behaviour that differs from the spec, charged to this requirement "
        "(an expected failure still deviates)",
    ),
    schema.VERDICT_BLOCKED: (
        "⛔",
        "blocked",
        "its checks could not run: a situation they need belongs to a requirement that deviates (named)",
    ),
    schema.VERDICT_NOT_APPLICABLE: (
        "➖",
        "not applicable",
        "the implementation's API cannot express the situation (reason given); not a pass",
    ),
    schema.UNTESTED: ("∅", "untested", "no check reached a verdict on it in this run (none cites it, or they errored)"),
    MISSING: ("—", "missing", "the run's report does not list this requirement"),
}
VERDICT_ORDER = schema.VERDICTS + (MISSING,)

# Gating status -> (marker, meaning), shown after a cell's verdict symbol when the requirement's
# gating status says more than its verdict (`gating_marker`).
GATING_MARKERS = {
    schema.EXPECTED_FAILURE: ("🟡", "expected failure: a failing check (charged here or elsewhere) excused by the expectations file"),
    schema.UNEXPECTED_PASS: ("🔵", "unexpected pass: a stale expectations entry"),
    schema.ERROR: ("💥", "a citing check errored (fails the run)"),
    schema.FAILED: ("❗", "a citing check failed, its failure charged to another requirement (fails the run)"),
}
# The gating status that goes without saying for each verdict (no marker).
_NATURAL_STATUS = {
    schema.COMPLIES: schema.PASSED,
    schema.DEVIATES: schema.FAILED,
    schema.VERDICT_BLOCKED: schema.BLOCKED,
    schema.VERDICT_NOT_APPLICABLE: schema.NOT_APPLICABLE,
    schema.UNTESTED: None,
}

# Light backgrounds, dark text: readable in print and for the colour-blind thanks to the symbols.
COLOURS = {
    schema.PASSED: "#c9ecc9",
    schema.FAILED: "#f6b8b3",
    schema.ERROR: "#dcb3ea",
    schema.EXPECTED_FAILURE: "#fbe7a1",
    schema.UNEXPECTED_PASS: "#b6daf7",
    schema.BLOCKED: "#f9d3a5",
    schema.NOT_APPLICABLE: "#e4e4e4",
    NO_CHECK: "#ffffff",
    MISSING: "#ffffff",
}
VERDICT_COLOURS = {
    schema.COMPLIES: "#c9ecc9",
    schema.DEVIATES: "#f6b8b3",
    schema.VERDICT_BLOCKED: "#f9d3a5",
    schema.VERDICT_NOT_APPLICABLE: "#e4e4e4",
    schema.UNTESTED: "#ffffff",
    MISSING: "#ffffff",
}

# Free text longer than this is cut in renderings (the JSON report keeps it whole): a PR comment
# holds at most 65536 characters.
MAX_TEXT_LINES = 40
MAX_TEXT_CHARS = 4000
MAX_TITLE_CHARS = 600


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Run:
    """One report, with the key and label of its matrix column and its requirements' verdicts."""

    report: Mapping
    name: str
    device: str
    profile: str
    label: str
    verdicts: Mapping  # schema.requirement_verdicts(report)

    @property
    def key(self) -> tuple:
        return (self.name, self.device, self.profile)

    def checks_by_id(self) -> dict:
        return {check["id"]: check for check in self.report["checks"]}

    def checks_of(self, requirement: str) -> list:
        """The checks citing `requirement` (by either side of the report's cross-reference), by id."""
        by_id = self.checks_by_id()
        entry = self.report["requirements"].get(requirement, {})
        ids = set(entry.get("checks") or ())
        ids.update(c["id"] for c in self.report["checks"] if requirement in (c.get("requirements") or ()))
        return [by_id[i] for i in sorted(ids) if i in by_id]

    def state(self, requirement: str) -> str:
        """The requirement's gating status in this run, or MISSING / NO_CHECK."""
        entry = self.report["requirements"].get(requirement)
        if entry is None:
            return MISSING
        if not self.checks_of(requirement) or entry.get("status") is None:
            return NO_CHECK
        return entry["status"]

    def verdict(self, requirement: str) -> str:
        """The requirement's verdict in this run, or MISSING."""
        entry = self.verdicts.get(requirement)
        return MISSING if entry is None else entry["verdict"]

    def gating_status(self, requirement: str):
        """The requirement's gating status (None: untested or missing)."""
        return (self.verdicts.get(requirement) or {}).get("status")

    def reason(self, requirement: str) -> str:
        entry = self.verdicts.get(requirement)
        return VERDICT_LEGEND[MISSING][2] if entry is None else str(entry.get("reason") or "")


def _check_report(report: Mapping, index: int) -> None:
    """schema.validate plus what rendering relies on, each error naming the report and the field."""
    try:
        schema.validate(report)
    except ValueError as exc:
        raise ValueError(f"Report #{index}: {exc}") from None
    impl = report["implementation"]
    if not isinstance(impl, Mapping) or not isinstance(impl.get("name"), str) or not impl["name"]:
        raise ValueError(f"Report #{index}: 'implementation' must be a mapping with a non-empty 'name'.")
    for key in ("device", "profile"):
        if not isinstance(report[key], str):
            raise ValueError(f"Report #{index}: {key!r} must be a string, got {report[key]!r}.")
    if not isinstance(report["requirements"], Mapping):
        raise ValueError(f"Report #{index}: 'requirements' must be a mapping of requirement id to entry.")
    allowed = schema.STATUSES + ((None,) if report["schema_version"] >= 2 else ())
    for rid, entry in report["requirements"].items():
        if not isinstance(entry, Mapping) or entry.get("status") not in allowed:
            status = entry.get("status") if isinstance(entry, Mapping) else entry
            raise ValueError(f"Report #{index}: requirement {rid!r} has unknown status {status!r}.")
    for check in report["checks"]:
        if not isinstance(check.get("id"), str):
            raise ValueError(f"Report #{index}: a check has no string 'id': {check!r}.")


def runs_of(reports: Sequence[Mapping]) -> list:
    """The reports as matrix columns, sorted, labelled `name · device` (`· profile` when needed)."""
    for index, report in enumerate(reports):
        _check_report(report, index)
    keyed = sorted(
        ((r["implementation"]["name"], r["device"], r["profile"]), r) for r in reports
    )
    seen = {}
    for key, report in keyed:
        if key in seen:
            raise ValueError(
                f"Two reports for implementation {key[0]!r} on device {key[1]!r} with profile {key[2]!r} "
                f"(created {seen[key].get('created')!r} and {report.get('created')!r}); "
                "pass one report per implementation, device and profile."
            )
        seen[key] = report
    pair_counts = {}
    for (name, device, _), _ in keyed:
        pair_counts[(name, device)] = pair_counts.get((name, device), 0) + 1
    runs = []
    for (name, device, profile), report in keyed:
        label = f"{name} · {device}"
        if pair_counts[(name, device)] > 1:
            label += f" · {profile}"
        stable = _stable_report(report)
        runs.append(Run(stable, name, device, profile, label, schema.requirement_verdicts(stable)))
    return runs


# What differs between two runs with the same verdicts, in the free text of checks. Order matters:
# temporary paths go whole before the directories of other absolute paths are cut.
_VOLATILE = (
    # Memory addresses in reprs: <object at 0x7f3a5c2b1d60>.
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "0x…"),
    # ISO timestamps, e.g. 2026-11-24T12:00:00.123+00:00.
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<timestamp>"),
    # Durations: 12.5ms, 3 s, 0.25 seconds (a number directly followed by a unit of time).
    (re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)? ?(?:ns|us|µs|ms|s|sec|secs|seconds?|minutes?)\b"), "<duration>"),
    # Per-run temporary files and directories.
    (re.compile(r"(?:/tmp|/var/folders/[^\s/]+/[^\s/]+/T)/[^\s'\":,()<>]*"), "<tmp>"),
    # The machine-specific directories of absolute paths: keep from the package (or site-packages) on.
    (re.compile(
        r"(?<![\w./-])(?:[A-Za-z]:)?[/\\](?:[^\s/\\:'\"()<>,]+[/\\])*?"
        r"(?=(?:site-packages|dist-packages|conformance|adapters|reference|reports|tests)[/\\])"
    ), ""),
)
_FREE_TEXT = ("reason", "message", "example")


def stable_text(text: str) -> str:
    """`text` without what changes between runs whose verdicts do not: memory addresses (`0x…`),
    timestamps, durations, temporary paths, and the directories in front of a package in absolute
    paths (`/work/main/conformance/x.py` -> `conformance/x.py`)."""
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def _stable_report(report: Mapping) -> dict:
    """A copy of `report` whose checks' free text and requirements' reasons went through
    `stable_text` (the input is not changed)."""
    checks = [
        {**c, **{f: stable_text(str(c[f])) for f in _FREE_TEXT if c.get(f) is not None}} for c in report["checks"]
    ]
    requirements = {
        rid: {**entry, "reason": stable_text(str(entry["reason"]))} if entry.get("reason") is not None else entry
        for rid, entry in report["requirements"].items()
    }
    return {**report, "checks": checks, "requirements": requirements}


def requirement_ids(runs: Iterable[Run]) -> list:
    ids = set()
    for run in runs:
        ids.update(run.report["requirements"])
    return sorted(ids, key=requirement_sort_key)


def requirement_info(runs: Sequence[Run], requirement: str) -> dict:
    """Area, scope and text of a requirement, from the first run (in sorted order) that lists it."""
    for run in runs:
        entry = run.report["requirements"].get(requirement)
        if entry is not None:
            return {k: entry.get(k) for k in ("area", "scope", "text")}
    return {"area": None, "scope": None, "text": None}


def area_counts(report: Mapping) -> dict:
    """{area: {status: number of checks}}, every status present (zeros included)."""
    counts = {}
    for check in report["checks"]:
        area = str(check.get("area") or "(none)")
        counts.setdefault(area, {s: 0 for s in DISPLAY_ORDER})[check["status"]] += 1
    return {area: counts[area] for area in sorted(counts)}


def is_failing(report: Mapping) -> bool:
    return any(c["status"] in schema.FAILING for c in report["checks"])


def _clip(text, max_lines=MAX_TEXT_LINES, max_chars=MAX_TEXT_CHARS) -> str:
    text = str(text).rstrip("\n")
    lines = text.split("\n")
    cut = len(lines) > max_lines or len(text) > max_chars
    if cut:
        text = "\n".join(lines[:max_lines])[:max_chars]
        text += "\n… (cut; the JSON report has it whole)"
    return text


def _plural(n: int, word: str, plural: str = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _ids(ids: Iterable[str]) -> list:
    return sorted(ids, key=requirement_sort_key)


def verdict_text(run: Run) -> str:
    """The run's verdicts in one line, without its label: "complies with 23, deviates on 14
    (ROUTE-2, ROUTE-4, ...), blocked 1 (ITER-3 by ROUTE-7), not applicable 3, untested 2" (counts
    that are zero left out, complies always shown; every deviating and blocked id named)."""
    by = {v: [] for v in schema.VERDICTS}
    for rid in _ids(run.verdicts):
        by[run.verdicts[rid]["verdict"]].append(rid)
    parts = [f"complies with {len(by[schema.COMPLIES])}"]
    if by[schema.DEVIATES]:
        parts.append(f"deviates on {len(by[schema.DEVIATES])} ({', '.join(by[schema.DEVIATES])})")
    if by[schema.VERDICT_BLOCKED]:
        blocked = [
            f"{rid} by {' and '.join(_ids(run.verdicts[rid].get('blocked_by') or ())) or 'an unnamed requirement'}"
            for rid in by[schema.VERDICT_BLOCKED]
        ]
        parts.append(f"blocked {len(blocked)} ({', '.join(blocked)})")
    if by[schema.VERDICT_NOT_APPLICABLE]:
        parts.append(f"not applicable {len(by[schema.VERDICT_NOT_APPLICABLE])}")
    if by[schema.UNTESTED]:
        parts.append(f"untested {len(by[schema.UNTESTED])}")
    return ", ".join(parts)


def verdict_line(run: Run) -> str:
    """"tfrs · cpu: complies with 23, deviates on 14 (...), ..." (`verdict_text` after the label)."""
    return f"{run.label}: {verdict_text(run)}"


def gating_line(run: Run) -> str:
    """Whether the run passes under its expectations file (its exit code), in one line:
    "passes under its expectations", "passes (no expectations file)" or "FAILING: 2 unexpected
    failures, 1 error", then any unexpected passes (stale expectations entries)."""
    counts = schema.summarize(run.report["checks"])
    expectations = bool(run.report.get("expectations"))
    failing = []
    if counts[schema.FAILED]:
        failing.append(_plural(counts[schema.FAILED], "unexpected failure" if expectations else "failed check"))
    if counts[schema.ERROR]:
        failing.append(_plural(counts[schema.ERROR], "error"))
    if failing:
        text = "FAILING: " + ", ".join(failing)
    else:
        text = "passes under its expectations" if expectations else "passes (no expectations file)"
    if counts[schema.UNEXPECTED_PASS]:
        text += "; " + _plural(counts[schema.UNEXPECTED_PASS], "unexpected pass", "unexpected passes")
        text += " (stale expectations entries to remove)"
    return text


def gating_marker(run: Run, requirement: str) -> str:
    """The gating marker after a cell's verdict symbol ('' when the status goes without saying)."""
    verdict, status = run.verdict(requirement), run.gating_status(requirement)
    if verdict == MISSING or status == _NATURAL_STATUS.get(verdict) or status not in GATING_MARKERS:
        return ""
    return GATING_MARKERS[status][0]


def _summary_line(report: Mapping) -> str:
    counts = schema.summarize(report["checks"])
    return ", ".join(f"{counts[s]} {LEGEND[s][1]}" for s in DISPLAY_ORDER if counts[s])


def _frameworks(report: Mapping) -> str:
    frameworks = report.get("frameworks") or {}
    return ", ".join(f"{k} {frameworks[k]}" for k in sorted(frameworks)) or "(none listed)"


def _run_fields(run: Run) -> list:
    """(label, value) pairs of a run's header, values as plain (unescaped) strings."""
    r, impl = run.report, run.report["implementation"]
    fields = [
        ("Implementation", f"{impl['name']} ({impl.get('implementation') or 'no description'})"),
        ("Version", impl.get("version")),
        ("Device", r["device"]),
        ("Profile", r["profile"]),
        ("Spec version", r.get("spec_version")),
        ("Suite version", r.get("suite_version")),
        ("Frameworks", _frameworks(r)),
        ("Hypothesis seed", "random" if r.get("seed") is None else r.get("seed")),
        ("Command", r.get("command")),
        ("Expectations", r.get("expectations") or "none"),
    ]
    return [(label, "" if value is None else str(value)) for label, value in fields]


def _summary_mismatch(report: Mapping):
    """A note when the report's stored summary (or verdict counts) disagrees with its checks (or
    requirements): we render the checks and requirements."""
    stored = report.get("summary") or {}
    computed = schema.summarize(report["checks"])
    if any(stored.get(s, 0) != computed[s] for s in schema.STATUSES):
        return (
            f"The report's summary {dict(sorted(stored.items()))} disagrees with its checks "
            f"{dict(sorted(computed.items()))}; the counts shown are the checks'."
        )
    if report.get("schema_version", 1) >= 2:
        stored = report.get("verdicts") or {}
        computed = schema.verdict_counts(report["requirements"])
        if any(stored.get(v, 0) != computed[v] for v in schema.VERDICTS):
            return (
                f"The report's verdict counts {dict(sorted(stored.items()))} disagree with its requirements "
                f"{dict(sorted(computed.items()))}; the verdicts shown are the requirements'."
            )
    return None


def _failures(run: Run, statuses=schema.FAILING) -> list:
    return sorted((c for c in run.report["checks"] if c["status"] in statuses), key=lambda c: c["id"])


# --------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*\[\]|])")


def md_text(value) -> str:
    """Report text for Markdown prose or a table cell: one line, HTML-escaped (`<`, `>`, `&`; quotes
    are harmless outside attributes, and we put report data in none), specials backslash-escaped."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def md_code(value) -> str:
    """Report text as inline code (outside tables): one line, delimited by more backticks than it
    contains, so Markdown shows it literally."""
    text = " ".join(str(value).split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_block(value, info="text") -> str:
    """Report text as a fenced code block longer than any backtick run inside it."""
    text = _clip(value)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]], align=None) -> list:
    align = align or ["---"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _md_symbol(state: str) -> str:
    return LEGEND[state][0]


def _md_cell(run: Run, requirement: str) -> str:
    return VERDICT_LEGEND[run.verdict(requirement)][0] + gating_marker(run, requirement)


def _gating_summary(runs: Sequence[Run]) -> str:
    failing = [run for run in runs if is_failing(run.report)]
    if failing:
        return (f"{len(failing)} of {_plural(len(runs), 'run')} failing "
                "(a failed or errored check that no expectations entry excuses)")
    every = "the run passes" if len(runs) == 1 else f"all {len(runs)} runs pass"
    return f"{every} under the expectations given (no failed or errored check)"


def _blocked_checks(runs: Sequence[Run]) -> list:
    return [(run, c) for run in runs for c in _failures(run, {schema.BLOCKED})]


def render_markdown(reports: Sequence[Mapping]) -> str:
    """Markdown for a CI job summary or PR comment: each run's verdicts first, then its gating
    status, run headers with their check counts by area and status, the requirements ×
    (implementation, device) matrix of verdicts, then every failure with its reason, minimal failing
    example and reproduce command, and the blocked checks with what blocked them."""
    runs = runs_of(reports)
    out = ["# Composite optimizer conformance", ""]
    if not runs:
        return "\n".join(out + ["No reports given.", ""])
    out += ["## Verdicts", ""]
    out += [f"- **{md_text(run.label)}:** {md_text(verdict_text(run))}" for run in runs]
    out += [
        "",
        "What each run found, requirement by requirement: an expected failure still *deviates*. "
        "Gating, below, is only whether a run passes under its expectations file (its exit code).",
        "",
        f"**Gating:** {md_text(_gating_summary(runs))}.",
        "",
    ]
    out += [f"- {md_text(run.label)}: {md_text(gating_line(run))}" for run in runs]
    out.append("")

    out += ["## Runs", ""]
    for run in runs:
        out += [f"### {md_text(run.label)}", ""]
        out += [f"- **{label}:** {md_code(value) if label == 'Command' else md_text(value)}" for label, value in _run_fields(run)]
        out += [
            f"- **Verdicts:** {md_text(verdict_text(run))}",
            f"- **Gating:** {md_text(gating_line(run))}; checks: {md_text(_summary_line(run.report)) or 'none'}",
            "",
        ]
        mismatch = _summary_mismatch(run.report)
        if mismatch:
            out += [f"> **Warning:** {md_text(mismatch)}", ""]
        counts = area_counts(run.report)
        header = ["Area"] + [f"{LEGEND[s][0]} {LEGEND[s][1]}" for s in DISPLAY_ORDER] + ["Total"]
        rows = [[md_text(area)] + [str(c[s]) for s in DISPLAY_ORDER] + [str(sum(c.values()))] for area, c in counts.items()]
        totals = schema.summarize(run.report["checks"])
        rows.append(["**Total**"] + [f"**{totals[s]}**" for s in DISPLAY_ORDER] + [f"**{sum(totals.values())}**"])
        out += [f"Checks by area and status ({md_text(run.label)}):", ""]
        out += _md_table(header, rows, ["---"] + ["---:"] * (len(header) - 1))
        out.append("")
        if run.verdicts:
            out += [f"<details><summary>Verdicts of {md_text(run.label)}, each with its reason</summary>", ""]
            for rid in _ids(run.verdicts):
                verdict = run.verdict(rid)
                out.append(f"- {VERDICT_LEGEND[verdict][0]} **{md_text(rid)}** {VERDICT_LEGEND[verdict][1]}: {md_text(run.reason(rid))}")
            out += ["", "</details>", ""]

    out += ["## Requirements matrix", ""]
    out += ["Verdicts: " + " · ".join(f"{VERDICT_LEGEND[v][0]} {VERDICT_LEGEND[v][1]}" for v in VERDICT_ORDER), ""]
    out += ["Gating markers, after the verdict when the gating status says more: "
            + " · ".join(f"{marker} {meaning}" for marker, meaning in GATING_MARKERS.values()), ""]
    ids = requirement_ids(runs)
    header = ["Requirement", "Scope"] + [md_text(run.label) for run in runs]
    rows = []
    for rid in ids:
        info = requirement_info(runs, rid)
        rows.append([f"**{md_text(rid)}**", md_text(info["scope"] or "")] + [_md_cell(run, rid) for run in runs])
    out += _md_table(header, rows, ["---", "---"] + [":---:"] * len(runs))
    out.append("")

    out += ["## Failures", ""]
    any_failure = False
    for run in runs:
        for check in _failures(run):
            any_failure = True
            out += _md_check(run, check)
    if not any_failure:
        out += ["None: no check failed or errored.", ""]

    blocked = _blocked_checks(runs)
    if blocked:
        out += ["## Blocked checks", "", "Neither passed nor failed: each needs a situation whose owning requirement deviates.", ""]
        for run, check in blocked:
            out.append(
                f"- {LEGEND[schema.BLOCKED][0]} {md_text(run.label)}: {md_code(check['id'])}"
                f" ({md_text(', '.join(check.get('requirements') or []))}) blocked by"
                f" {md_text(', '.join(check.get('blocked_by') or []) or 'an unnamed requirement')}:"
                f" {md_text(check.get('reason') or 'no reason given')}"
            )
        out.append("")

    stale = [(run, c) for run in runs for c in _failures(run, {schema.UNEXPECTED_PASS})]
    if stale:
        out += ["## Unexpected passes", "", "Listed as expected failures but passed: remove their expectations entries.", ""]
        for run, check in stale:
            out += [
                f"- {md_text(run.label)}: {md_code(check['id'])} ({md_text(', '.join(check.get('requirements') or []))}),"
                f" expectations file {md_code(run.report.get('expectations') or '(none)')}"
            ]
        out.append("")

    excused = [(run, c) for run in runs for c in _failures(run, {schema.EXPECTED_FAILURE, schema.NOT_APPLICABLE})]
    if excused:
        out += ["## Expected failures and not-applicable checks", ""]
        out += ["<details><summary>" + f"{len(excused)} checks, each with its reason" + "</summary>", ""]
        for run, check in excused:
            out.append(
                f"- {LEGEND[check['status']][0]} {md_text(run.label)}: {md_code(check['id'])}"
                f" ({md_text(', '.join(check.get('requirements') or []))}): {md_text(check.get('reason') or 'no reason given')}"
            )
        out += ["", "</details>", ""]
    return "\n".join(out)


def _avoided_text(check: Mapping) -> str:
    return "; ".join(f"{a.get('situation')} ({a.get('requirement')} deviates)" for a in check.get("avoided") or ())


def _md_check(run: Run, check: Mapping) -> list:
    status = check["status"]
    reqs = ", ".join(check.get("requirements") or []) or "(none)"
    out = [f"### {LEGEND[status][0]} {md_text(reqs)} · {md_text(run.label)}", ""]
    out.append(f"- **Check:** {md_code(check['id'])} ({LEGEND[status][1]})")
    if check.get("charged"):
        out.append(f"- **Charged to:** {md_text(', '.join(check['charged']))}")
    if check.get("reason"):
        out.append(f"- **Reason:** {md_text(check['reason'])}")
    if check.get("avoided"):
        out.append(f"- **Cases left out:** {md_text(_avoided_text(check))}")
    if check.get("examples_run") is not None:
        out.append(f"- **Examples run:** {md_text(check['examples_run'])}")
    out.append(f"- **Reproduce:** {md_code(check['reproduce']) if check.get('reproduce') else 'no command recorded'}")
    out.append("")
    if check.get("message"):
        out += ["Message:", "", md_block(check["message"]), ""]
    if check.get("example"):
        out += ["Minimal failing example:", "", md_block(check["example"]), ""]
    return out


# --------------------------------------------------------------------------- HTML


def escape_html(value) -> str:
    """Escape report data for HTML text or a quoted attribute value."""
    return html.escape(str(value), quote=True)


_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1f2328; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #b0b7bf; padding: 0.25em 0.5em; vertical-align: top; }
table.runs th { text-align: left; background: #f3f4f6; }
table.matrix thead th { position: sticky; top: 0; background: #f3f4f6; z-index: 1; }
table.matrix th.req { text-align: left; white-space: nowrap; }
table.matrix td.cell { text-align: center; min-width: 5em; }
td.cell details { text-align: left; }
td.cell summary { cursor: pointer; text-align: center; list-style: none; }
td.cell details[open] { min-width: 28em; }
pre { white-space: pre-wrap; word-break: break-word; background: #f6f8fa; padding: 0.4em; margin: 0.2em 0; }
dl { margin: 0.3em 0; } dt { font-weight: 600; } dd { margin: 0 0 0.3em 1em; }
ul.checks { padding-left: 1.2em; margin: 0.3em 0; }
.legend span.swatch { display: inline-block; min-width: 1.6em; text-align: center; border: 1px solid #b0b7bf; }
.status-missing, .status-no_check, .verdict-missing, .verdict-untested { border-style: dashed; color: #6e7781; }
.warning { background: #fff4ce; padding: 0.4em; }
ul.verdicts li, ul.gating li { margin: 0.2em 0; }
p.reason { margin: 0.2em 0; }
"""


def _css() -> str:
    colours = "\n".join(f".status-{state} {{ background: {COLOURS[state]}; }}" for state in STATE_ORDER)
    colours += "\n" + "\n".join(f".verdict-{v} {{ background: {VERDICT_COLOURS[v]}; }}" for v in VERDICT_ORDER)
    return _CSS + colours + "\n"


def _html_check_details(check: Mapping) -> str:
    """One check as a list item: status, then reason, message, example and reproduce command."""
    status = check["status"]
    parts = [f'<li class="status-{status}"><code>{escape_html(check["id"])}</code> {LEGEND[status][0]} {escape_html(LEGEND[status][1])}']
    if check.get("examples_run") is not None:
        parts.append(f" ({escape_html(check['examples_run'])} examples)")
    rows = []
    if check.get("blocked_by"):
        rows.append(("Blocked by", escape_html(", ".join(check["blocked_by"]))))
    if check.get("charged"):
        rows.append(("Charged to", escape_html(", ".join(check["charged"]))))
    if check.get("reason"):
        rows.append(("Reason", f"{escape_html(check['reason'])}"))
    if check.get("avoided"):
        rows.append(("Cases left out", escape_html(_avoided_text(check))))
    if check.get("message"):
        rows.append(("Message", f"<pre>{escape_html(_clip(check['message']))}</pre>"))
    if check.get("example"):
        rows.append(("Minimal failing example", f"<pre>{escape_html(_clip(check['example']))}</pre>"))
    if check.get("reproduce"):
        rows.append(("Reproduce", f"<code>{escape_html(check['reproduce'])}</code>"))
    if rows:
        parts.append("<dl>" + "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows) + "</dl>")
    parts.append("</li>")
    return "".join(parts)


def _title(run: Run, requirement: str, verdict: str, checks: Sequence[Mapping]) -> str:
    """The plain-text hover explanation of a cell (escaped by the caller)."""
    status = run.gating_status(requirement)
    gating = f" (gating status: {LEGEND[status][1]})" if status in LEGEND else ""
    lines = [f"{requirement} · {run.label}: {VERDICT_LEGEND[verdict][1]}{gating}"]
    if verdict == MISSING:
        lines.append("The report of this run does not list this requirement.")
    else:
        lines.append(run.reason(requirement))
        if not checks:
            lines.append("No check cites this requirement in this run.")
    for check in checks:
        lines.append(f"{check['id']}: {LEGEND[check['status']][1]}")
        for field, label in (("reason", "reason"), ("message", "message"), ("example", "example")):
            if check.get(field):
                lines.append(f"  {label}: {_clip(check[field], max_lines=6, max_chars=MAX_TITLE_CHARS)}")
    return "\n".join(lines)


def _html_cell(run: Run, requirement: str) -> str:
    verdict = run.verdict(requirement)
    status = run.gating_status(requirement)
    checks = run.checks_of(requirement)
    symbol, label, meaning = VERDICT_LEGEND[verdict]
    marker = gating_marker(run, requirement)
    if marker:
        label += f"; {LEGEND[status][1]}"
    body = f'<p class="reason">{escape_html(run.reason(requirement) if verdict != MISSING else meaning + ".")}</p>'
    if checks:
        body += '<ul class="checks">' + "".join(_html_check_details(c) for c in checks) + "</ul>"
    return (
        f'<td class="cell verdict-{verdict}" data-verdict="{verdict}" data-status="{status or "none"}"'
        f' title="{escape_html(_title(run, requirement, verdict, checks))}">'
        f'<details><summary aria-label="{escape_html(label)}">{symbol}{marker}</summary>{body}</details></td>'
    )


def render_html(reports: Sequence[Mapping]) -> str:
    """One self-contained HTML page: each run's verdicts, then its gating status, the runs, the
    requirements matrix (cells coloured by verdict, explained on hover by their title and on click by
    a <details>), the failures and the blocked checks."""
    runs = runs_of(reports)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><title>Composite optimizer conformance</title>',
        f"<style>{_css()}</style></head>",
        "<body>",
        "<h1>Composite optimizer conformance</h1>",
    ]
    if not runs:
        out += ["<p>No reports given.</p>", "</body>", "</html>", ""]
        return "\n".join(out)

    out += ["<h2>Verdicts</h2>", '<ul class="verdicts">']
    out += [f"<li><strong>{escape_html(run.label)}:</strong> {escape_html(verdict_text(run))}</li>" for run in runs]
    out += [
        "</ul>",
        "<p>What each run found, requirement by requirement: an expected failure still <em>deviates</em>. "
        "Gating, below, is only whether a run passes under its expectations file (its exit code).</p>",
        f'<p class="gating"><strong>Gating:</strong> {escape_html(_gating_summary(runs))}.</p>',
        '<ul class="gating">',
    ]
    out += [
        f'<li class="status-{schema.FAILED if is_failing(run.report) else schema.PASSED}">'
        f"{escape_html(run.label)}: {escape_html(gating_line(run))}</li>"
        for run in runs
    ]
    out.append("</ul>")

    out += ['<h2>Runs</h2>', '<table class="runs">']
    fields = [_run_fields(run) for run in runs]
    out.append("<thead><tr><th></th>" + "".join(f'<th scope="col">{escape_html(run.label)}</th>' for run in runs) + "</tr></thead><tbody>")
    for i, (label, _) in enumerate(fields[0]):
        cells = "".join(f"<td>{f'<code>{escape_html(f[i][1])}</code>' if label == 'Command' else escape_html(f[i][1])}</td>" for f in fields)
        out.append(f'<tr><th scope="row">{label}</th>{cells}</tr>')
    out.append('<tr><th scope="row">Verdicts</th>' + "".join(f"<td>{escape_html(verdict_text(run))}</td>" for run in runs) + "</tr>")
    out.append(
        '<tr><th scope="row">Gating</th>'
        + "".join(
            f'<td class="status-{schema.FAILED if is_failing(run.report) else schema.PASSED}">'
            f"{escape_html(gating_line(run))}; checks: {escape_html(_summary_line(run.report) or 'none')}</td>"
            for run in runs
        )
        + "</tr></tbody></table>"
    )
    for run in runs:
        mismatch = _summary_mismatch(run.report)
        if mismatch:
            out.append(f'<p class="warning">{escape_html(run.label)}: {escape_html(mismatch)}</p>')

    out += ["<h2>Checks by area and status</h2>"]
    for run in runs:
        out.append(f'<table class="summary"><caption>{escape_html(run.label)}</caption><thead><tr><th scope="col">Area</th>')
        out.append("".join(f'<th scope="col" class="status-{s}">{LEGEND[s][0]} {escape_html(LEGEND[s][1])}</th>' for s in DISPLAY_ORDER) + '<th scope="col">Total</th></tr></thead><tbody>')
        for area, c in area_counts(run.report).items():
            out.append(f'<tr><th scope="row">{escape_html(area)}</th>' + "".join(f"<td>{c[s]}</td>" for s in DISPLAY_ORDER) + f"<td>{sum(c.values())}</td></tr>")
        totals = schema.summarize(run.report["checks"])
        out.append('<tr><th scope="row">Total</th>' + "".join(f"<td>{totals[s]}</td>" for s in DISPLAY_ORDER) + f"<td>{sum(totals.values())}</td></tr></tbody></table>")

    out += ["<h2>Requirements matrix</h2>", '<p class="legend">Verdicts: ']
    out.append(" ".join(f'<span class="swatch verdict-{v}" title="{escape_html(VERDICT_LEGEND[v][2])}">{VERDICT_LEGEND[v][0]}</span> {escape_html(VERDICT_LEGEND[v][1])}' for v in VERDICT_ORDER))
    out += ["</p>", '<p class="legend">Gating markers, after the verdict when the gating status says more: ']
    out.append(" ".join(f"{marker} {escape_html(meaning)}" for marker, meaning in GATING_MARKERS.values()))
    out += ["</p>", "<p>Hover a cell for its verdict's reason; click it for each check's reason, message, failing example and reproduce command.</p>"]
    out.append('<table class="matrix"><thead><tr><th scope="col">Requirement</th>')
    out.append("".join(
        f'<th scope="col" class="col" data-implementation="{escape_html(run.name)}" data-device="{escape_html(run.device)}" data-profile="{escape_html(run.profile)}">{escape_html(run.label)}</th>'
        for run in runs
    ) + "</tr></thead><tbody>")
    for rid in requirement_ids(runs):
        info = requirement_info(runs, rid)
        title = f"{rid} ({info['area'] or 'no area'}, {info['scope'] or 'no scope'}): {info['text'] or ''}"
        out.append(
            f'<tr data-requirement="{escape_html(rid)}"><th scope="row" class="req" title="{escape_html(title)}">{escape_html(rid)}</th>'
            + "".join(_html_cell(run, rid) for run in runs)
            + "</tr>"
        )
    out.append("</tbody></table>")

    out.append("<h2>Failures</h2>")
    failures = [(run, c) for run in runs for c in _failures(run)]
    if failures:
        out.append('<ul class="checks failures">')
        for run, check in failures:
            reqs = ", ".join(check.get("requirements") or []) or "(none)"
            out.append(f"<li><strong>{escape_html(reqs)} · {escape_html(run.label)}</strong><ul>{_html_check_details(check)}</ul></li>")
        out.append("</ul>")
    else:
        out.append("<p>None: no check failed or errored.</p>")
    blocked = _blocked_checks(runs)
    if blocked:
        out += ["<h2>Blocked checks</h2>", "<p>Neither passed nor failed: each needs a situation whose owning requirement deviates.</p>"]
        out.append('<ul class="checks blocked">')
        for run, check in blocked:
            reqs = ", ".join(check.get("requirements") or []) or "(none)"
            out.append(f"<li><strong>{escape_html(reqs)} · {escape_html(run.label)}</strong><ul>{_html_check_details(check)}</ul></li>")
        out.append("</ul>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
