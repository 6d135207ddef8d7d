"""`python -m conformance [--impl SPEC] [--device DEVICE] [--profile dev|ci|thorough]
[--report-dir DIR] [--expectations FILE] [--baseline REPORT.json] [PYTEST_ARGS...]`

Runs the conformance suite (conformance/tests) under pytest with the conformance plugin.
Arguments it does not know go to pytest (`-x`, `-k routing`). Exits 0 only if every
applicable check passes or is a listed expected failure (and, with --baseline, nothing
that passed in the baseline regressed).

`python -m conformance report [--markdown OUT.md] [--html OUT.html] REPORT.json ...`
renders reports (see reports/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

TESTS = pathlib.Path(__file__).resolve().parent / "tests"
DEVICES_FOR_ALL = ("cpu", "gpu", "tpu")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", default="reference", help="bundled adapter (reference, tfrs, ...) or MODULE:ATTR")
    parser.add_argument("--device", default="cpu", help="cpu (default), gpu, tpu, replicas:N or all")
    parser.add_argument("--profile", default="ci", choices=("dev", "ci", "thorough"))
    parser.add_argument("--report-dir", default=str(pathlib.Path("reports") / "runs"))
    parser.add_argument("--expectations", default=None, help="TOML file of expected failures")
    parser.add_argument("--baseline", default=None, help="a previous JSON report: fail on regressions from it")
    return parser


def run(args: argparse.Namespace, pytest_args: list) -> int:
    import pytest

    from conformance import run_name

    stem = run_name(args.impl, args.device)
    report_dir = pathlib.Path(args.report_dir)
    report_path = report_dir / f"{stem}.json"
    if args.baseline:
        code = _check_baseline(args.baseline, report_path)
        if code:
            return code
    argv = [
        str(TESTS), "-p", "conformance.plugin", "-p", "no:cacheprovider", "-o", "addopts=",
        "--rootdir", str(TESTS), "-o", "console_output_style=count",
        "--impl", args.impl, "--device", args.device, "--profile", args.profile,
        "--report-dir", str(report_dir), f"--junitxml={report_dir / (stem + '.xml')}", "-o", "junit_family=xunit2",
        "-o", f"junit_suite_name=conformance-{stem}",
    ]
    if args.expectations:
        argv += ["--expectations", args.expectations]
    code = int(pytest.main(argv + pytest_args))
    if args.baseline and code in (0, 1):
        from reports.cli import gate

        current = json.loads(report_path.read_text(encoding="utf-8"))
        code = max(code, gate(args.baseline, current, current_path=report_path))
    return code


def _check_baseline(baseline: str, report_path: pathlib.Path) -> int:
    """Before running anything: 2, with the reason, for a baseline the gate could not use."""
    from reports.cli import ReportError, load_report

    if pathlib.Path(baseline).resolve() == report_path.resolve():
        print(f"error: --baseline {baseline} is the file this run writes its report to, so the run would "
              "overwrite it before comparing; copy the baseline elsewhere or pass another --report-dir.",
              file=sys.stderr)
        return 2
    try:
        load_report(baseline)
    except ReportError as exc:
        print(f"error: --baseline: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        from reports.cli import main as report_main

        return report_main(argv[1:])
    args, pytest_args = _parser().parse_known_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.device != "all":
        return run(args, pytest_args)
    # Every device the framework sees, one process each (device setup is per process).
    codes = []
    for device in DEVICES_FOR_ALL:
        command = [sys.executable, "-m", "conformance", *[a for a in argv if a not in ("all",)]]
        command[command.index("--device") + 1:command.index("--device") + 1] = [device]
        code = subprocess.call(command)
        if code == 2 and device != "cpu":
            print(f"conformance: --device all: no {device} here, not run", flush=True)
            continue
        codes.append(code)
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
