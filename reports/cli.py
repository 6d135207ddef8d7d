"""Command line for reports: rendering (`python -m conformance report ...`) and the baseline gate.

    python -m conformance report [--markdown OUT.md] [--html OUT.html] REPORT.json [REPORT.json ...]

renders the reports (Markdown to stdout when no output is named). `main(argv)` takes the arguments
after `report`. `gate(baseline_path, current_report)` is what the runner calls for `--baseline`.

Exit codes: 0 done (rendering succeeds whatever the reports' results), 1 regression (gate only),
2 unusable input (a file that cannot be read, is not JSON, or is not a report of schema version 1
or 2), with a message on stderr naming the file and what is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Mapping, Optional, Sequence, TextIO, Union

from reports import schema
from reports.gate import compare
from reports.render import render_html, render_markdown

PathLike = Union[str, "os.PathLike[str]"]


class ReportError(ValueError):
    """A report file that cannot be used; the message names the file."""


def load_report(path: PathLike) -> dict:
    """Read and validate one JSON report, or raise ReportError naming the file and the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
    except OSError as exc:
        raise ReportError(f"{os.fspath(path)}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{os.fspath(path)}: not JSON: {exc}") from None
    if not isinstance(report, dict):
        raise ReportError(f"{os.fspath(path)}: not a report (a JSON object), got {type(report).__name__}")
    try:
        schema.validate(report)
    except ValueError as exc:
        raise ReportError(f"{os.fspath(path)}: {exc}") from None
    return report


def _write(path: str, text: str) -> None:
    # newline="\n": the same bytes on every platform, so committed renderings stay reproducible.
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance report",
        description="Render conformance JSON reports as Markdown (CI summary, PR comment) and/or one static HTML page.",
    )
    parser.add_argument("reports", nargs="+", metavar="REPORT.json", help="reports written by `python -m conformance`")
    parser.add_argument("--markdown", metavar="OUT.md", help="write Markdown here")
    parser.add_argument("--html", metavar="OUT.html", help="write the HTML page here")
    return parser


def main(argv: Optional[Sequence[str]] = None, *, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None) -> int:
    """`python -m conformance report ARGS`: `argv` is ARGS (the arguments after `report`)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        reports = [load_report(path) for path in args.reports]
        markdown = render_markdown(reports) if args.markdown or not args.html else None
        page = render_html(reports) if args.html else None
    except ValueError as exc:  # ReportError, or reports that cannot share a matrix
        print(f"error: {exc}", file=stderr)
        return 2
    if args.markdown:
        _write(args.markdown, markdown)
    if args.html:
        _write(args.html, page)
    if not args.markdown and not args.html:
        stdout.write(markdown)
    return 0


def gate(
    baseline_path: PathLike,
    current_report: Union[Mapping, PathLike],
    *,
    current_path: Optional[PathLike] = None,
    stdout: Optional[TextIO] = None,
    stderr: Optional[TextIO] = None,
) -> int:
    """Compare a run with its baseline and print the verdict; return 0, 1 (regression) or 2 (bad input).

    `current_report` is the run's report (a dict) or the path of its JSON. `current_path`, where the
    runner wrote that JSON, lets the printed update command name the exact file (it defaults to
    `current_report` when that is a path).
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        baseline = load_report(baseline_path)
        if isinstance(current_report, Mapping):
            current = dict(current_report)
            try:
                schema.validate(current)
            except ValueError as exc:
                raise ReportError(f"current report: {exc}") from None
        else:
            current = load_report(current_report)
            current_path = current_report if current_path is None else current_path
        result = compare(
            baseline,
            current,
            baseline_path=os.fspath(baseline_path),
            current_path=None if current_path is None else os.fspath(current_path),
        )
    except ValueError as exc:
        print(f"error: baseline gate: {exc}", file=stderr)
        return 2
    stdout.write(result.format())
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
