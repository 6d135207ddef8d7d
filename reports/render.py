"""Render conformance reports (schema 1, see `reports.schema`) as Markdown and as one HTML page.

    render_markdown(reports) -> str   # CI job summary / PR comment
    render_html(reports) -> str       # a static page: no script, no external resource

Contract:

- Input: a list of reports, each accepted by `reports.schema.validate` (else `ValueError`), with an
  implementation name and a known status for every requirement (else `ValueError` naming it).
  The order of the list does not matter: runs are sorted by (implementation, device, profile) and
  requirements by area and number (`ATOM-2` < `ATOM-10` < `CLIP-1`).
- The matrix has one row per requirement found in any report and one column per run, keyed by
  (implementation, device); when two runs share that pair their profile joins the key, and two runs
  sharing all three are refused (`ValueError`): one cell cannot hold two results.
- A cell shows the requirement's status in that run, except two states that are not statuses:
  *missing* (the run's report does not list the requirement) and *no check* (the report lists it
  but no check cites it; whatever status such an entry carries, it is untested, and showing it as
  not applicable would pass it off as a reasoned exclusion; `schema.requirement_status([])` refuses).
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

# Display order, best first; schema.STATUSES is worst-first for aggregation.
DISPLAY_ORDER = (
    schema.PASSED,
    schema.FAILED,
    schema.ERROR,
    schema.EXPECTED_FAILURE,
    schema.UNEXPECTED_PASS,
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
    schema.NOT_APPLICABLE: (
        "➖",
        "not applicable",
        "the implementation's API cannot express the situation (reason given); not a pass",
    ),
    NO_CHECK: ("∅", "no check", "the report lists the requirement but no check cites it"),
    MISSING: ("—", "missing", "the run's report does not list this requirement"),
}
STATE_ORDER = DISPLAY_ORDER + (NO_CHECK, MISSING)

# Light backgrounds, dark text: readable in print and for the colour-blind thanks to the symbols.
COLOURS = {
    schema.PASSED: "#c9ecc9",
    schema.FAILED: "#f6b8b3",
    schema.ERROR: "#dcb3ea",
    schema.EXPECTED_FAILURE: "#fbe7a1",
    schema.UNEXPECTED_PASS: "#b6daf7",
    schema.NOT_APPLICABLE: "#e4e4e4",
    NO_CHECK: "#ffffff",
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
    """One report, with the key and label of its matrix column."""

    report: Mapping
    name: str
    device: str
    profile: str
    label: str

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
        """The requirement's status in this run, or MISSING / NO_CHECK."""
        entry = self.report["requirements"].get(requirement)
        if entry is None:
            return MISSING
        if not self.checks_of(requirement):
            return NO_CHECK
        return entry["status"]


def requirement_sort_key(requirement_id: str) -> tuple:
    """`AREA-N` sorts by area, then N as a number; any other id sorts by its text."""
    prefix, _, number = requirement_id.rpartition("-")
    if prefix and number.isdigit():
        return (prefix, int(number), requirement_id)
    return (requirement_id, -1, requirement_id)


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
    for rid, entry in report["requirements"].items():
        if not isinstance(entry, Mapping) or entry.get("status") not in schema.STATUSES:
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
        runs.append(Run(_stable_report(report), name, device, profile, label))
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
    """A copy of `report` whose checks' free text went through `stable_text` (the input is not changed)."""
    checks = [
        {**c, **{f: stable_text(str(c[f])) for f in _FREE_TEXT if c.get(f) is not None}} for c in report["checks"]
    ]
    return {**report, "checks": checks}


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
    """A note when the report's stored summary disagrees with its checks (we render the checks)."""
    stored = report.get("summary") or {}
    computed = schema.summarize(report["checks"])
    if any(stored.get(s, 0) != computed[s] for s in schema.STATUSES):
        return (
            f"The report's summary {dict(sorted(stored.items()))} disagrees with its checks "
            f"{dict(sorted(computed.items()))}; the counts shown are the checks'."
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


def render_markdown(reports: Sequence[Mapping]) -> str:
    """Markdown for a CI job summary or PR comment: run headers with their check counts by area and
    status, the requirements × (implementation, device) matrix, then every failure with its reason,
    minimal failing example and reproduce command."""
    runs = runs_of(reports)
    out = ["# Composite optimizer conformance", ""]
    if not runs:
        return "\n".join(out + ["No reports given.", ""])
    failing = [run for run in runs if is_failing(run.report)]
    verdict = (
        f"**{len(failing)} of {len(runs)} runs failing**: " + ", ".join(md_text(r.label) for r in failing)
        if failing
        else f"**All {len(runs)} runs pass** (no failed or error check)."
    )
    out += [verdict, ""]

    out += ["## Runs", ""]
    for run in runs:
        out += [f"### {md_text(run.label)}", ""]
        out += [f"- **{label}:** {md_code(value) if label == 'Command' else md_text(value)}" for label, value in _run_fields(run)]
        out += [f"- **Result:** {'FAILING' if is_failing(run.report) else 'passing'} ({md_text(_summary_line(run.report)) or 'no checks'})", ""]
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

    out += ["## Requirements matrix", ""]
    out += ["Legend: " + " · ".join(f"{LEGEND[s][0]} {LEGEND[s][1]}" for s in STATE_ORDER), ""]
    ids = requirement_ids(runs)
    header = ["Requirement", "Scope"] + [md_text(run.label) for run in runs]
    rows = []
    for rid in ids:
        info = requirement_info(runs, rid)
        rows.append(
            [f"**{md_text(rid)}**", md_text(info["scope"] or "")]
            + [_md_symbol(run.state(rid)) for run in runs]
        )
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


def _md_check(run: Run, check: Mapping) -> list:
    status = check["status"]
    reqs = ", ".join(check.get("requirements") or []) or "(none)"
    out = [f"### {LEGEND[status][0]} {md_text(reqs)} · {md_text(run.label)}", ""]
    out.append(f"- **Check:** {md_code(check['id'])} ({LEGEND[status][1]})")
    if check.get("reason"):
        out.append(f"- **Reason:** {md_text(check['reason'])}")
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
.status-missing, .status-no_check { border-style: dashed; color: #6e7781; }
.warning { background: #fff4ce; padding: 0.4em; }
"""


def _css() -> str:
    colours = "\n".join(f".status-{state} {{ background: {COLOURS[state]}; }}" for state in STATE_ORDER)
    return _CSS + colours + "\n"


def _html_check_details(check: Mapping) -> str:
    """One check as a list item: status, then reason, message, example and reproduce command."""
    status = check["status"]
    parts = [f'<li class="status-{status}"><code>{escape_html(check["id"])}</code> {LEGEND[status][0]} {escape_html(LEGEND[status][1])}']
    if check.get("examples_run") is not None:
        parts.append(f" ({escape_html(check['examples_run'])} examples)")
    rows = []
    if check.get("reason"):
        rows.append(("Reason", f"{escape_html(check['reason'])}"))
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


def _title(run: Run, requirement: str, state: str, checks: Sequence[Mapping]) -> str:
    """The plain-text hover explanation of a cell (escaped by the caller)."""
    lines = [f"{requirement} · {run.label}: {LEGEND[state][1]}"]
    if state == MISSING:
        lines.append("The report of this run does not list this requirement.")
    elif state == NO_CHECK:
        lines.append("The report lists this requirement, but no check cites it.")
    for check in checks:
        lines.append(f"{check['id']}: {LEGEND[check['status']][1]}")
        for field, label in (("reason", "reason"), ("message", "message"), ("example", "example")):
            if check.get(field):
                lines.append(f"  {label}: {_clip(check[field], max_lines=6, max_chars=MAX_TITLE_CHARS)}")
    return "\n".join(lines)


def _html_cell(run: Run, requirement: str) -> str:
    state = run.state(requirement)
    checks = run.checks_of(requirement)
    symbol, label, meaning = LEGEND[state]
    body = (
        '<ul class="checks">' + "".join(_html_check_details(c) for c in checks) + "</ul>"
        if checks
        else f"<p>{escape_html(meaning)}.</p>"
    )
    return (
        f'<td class="cell status-{state}" data-status="{state}" title="{escape_html(_title(run, requirement, state, checks))}">'
        f'<details><summary aria-label="{escape_html(label)}">{symbol}</summary>{body}</details></td>'
    )


def render_html(reports: Sequence[Mapping]) -> str:
    """One self-contained HTML page: the runs, the requirements matrix (cells coloured by status,
    explained on hover by their title and on click by a <details>), and the failures."""
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

    out += ['<h2>Runs</h2>', '<table class="runs">']
    fields = [_run_fields(run) for run in runs]
    out.append("<thead><tr><th></th>" + "".join(f'<th scope="col">{escape_html(run.label)}</th>' for run in runs) + "</tr></thead><tbody>")
    for i, (label, _) in enumerate(fields[0]):
        cells = "".join(f"<td>{f'<code>{escape_html(f[i][1])}</code>' if label == 'Command' else escape_html(f[i][1])}</td>" for f in fields)
        out.append(f'<tr><th scope="row">{label}</th>{cells}</tr>')
    out.append(
        '<tr><th scope="row">Result</th>'
        + "".join(
            f'<td class="status-{schema.FAILED if is_failing(run.report) else schema.PASSED}">'
            f"{'FAILING' if is_failing(run.report) else 'passing'}: {escape_html(_summary_line(run.report) or 'no checks')}</td>"
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

    out += ["<h2>Requirements matrix</h2>", '<p class="legend">']
    out.append(" ".join(f'<span class="swatch status-{s}" title="{escape_html(LEGEND[s][2])}">{LEGEND[s][0]}</span> {escape_html(LEGEND[s][1])}' for s in STATE_ORDER))
    out += ["</p>", "<p>Hover a cell for its explanation; click it for each check's reason, message, failing example and reproduce command.</p>"]
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
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
