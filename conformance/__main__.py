"""`python -m conformance [--impl SPEC] [--device DEVICE] [--profile dev|ci|thorough] [--timeout SECONDS]
[--report-dir DIR] [--expectations FILE] [--baseline REPORT.json] [--check ID ...] [--replace-report]
[PYTEST_ARGS...]`

Runs the conformance suite (conformance/tests) under pytest with the conformance plugin. The checks
run in a worker process (pytest-xdist; `-n N` for N of them), so an implementation that hangs or
crashes costs one check, not the run. Arguments it does not know go to pytest (`-x`, `-k routing`).

Exit codes:
  0   every applicable check passed or is a listed expected failure (and, with --baseline, nothing
      that passed in the baseline regressed)
  1   a check failed or errored (a timeout or a crash of the implementation is an error of its check)
  2   usage or configuration error (bad --impl, --device, --profile, --timeout, --expectations,
      --baseline, a pytest option, a selection that matches no check), said in one line before any
      check runs
  3   the suite itself crashed (a bug in the suite, not a verdict on the implementation)
  130 interrupted (Ctrl-C)

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
import time

from conformance import config_checks

TESTS = pathlib.Path(__file__).resolve().parent / "tests"
DEVICES_FOR_ALL = ("cpu", "gpu", "tpu")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
# pytest's exit codes -> ours (pytest: 2 interrupted, 3 internal error, 4 usage error, 5 nothing collected).
_FROM_PYTEST = {0: EXIT_OK, 1: EXIT_FAILED, 2: EXIT_INTERRUPTED, 3: EXIT_INTERNAL, 4: EXIT_USAGE, 5: EXIT_USAGE}


def _parser() -> argparse.ArgumentParser:
    description, _, epilog = __doc__.partition("\n\n")[2].partition("\n\n`python -m conformance report")
    parser = argparse.ArgumentParser(prog="python -m conformance", description=description,
                                     epilog="`python -m conformance report" + epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", default="reference", help="bundled adapter (reference, tfrs, ...) or MODULE:ATTR")
    parser.add_argument("--device", default="cpu", help="cpu (default), gpu, tpu, replicas:N, workers:N, ps:N or all")
    parser.add_argument("--profile", default="ci", choices=("dev", "ci", "thorough"))
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="per-check time limit; a check over it is an error naming where the implementation "
                             "was (default per profile: dev 300, ci 300, thorough 1800)")
    parser.add_argument("--report-dir", default=os.environ.get("CONFORMANCE_REPORT_DIR", str(pathlib.Path("reports") / "runs")),
                        help="where reports are written (default reports/runs, or $CONFORMANCE_REPORT_DIR)")
    parser.add_argument("--expectations", default=None, help="TOML file of expected failures")
    parser.add_argument("--baseline", default=None, help="a previous JSON report: fail on regressions from it")
    parser.add_argument("--check", action="append", default=[], metavar="ID",
                        help="run only this check (file::name[params], as reports and reproduce commands print it); repeatable")
    parser.add_argument("--replace-report", action="store_true",
                        help="write a partial run's report (-k, -x, --check, ...) under the full run's name, "
                             "replacing it (default: <impl>-<device>.partial.json beside it)")
    return parser


class UsageError(Exception):
    """A mistake on the command line: one line on stderr, exit code 2, before any check runs."""


def validate(args: argparse.Namespace, pytest_args: list) -> None:
    """Every option the run depends on, checked before pytest starts; UsageError on the first bad one."""
    from adapters.protocol import parse_device

    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout:g}: the per-check limit must be a positive number of seconds")
    if args.device != "all":
        try:
            parse_device(args.device)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        # The port is imported by the process that runs the checks, which refuses it just as early
        # (plugin._load_named_port): importing it here too would cost every run a second import of
        # its framework (4-5 s of TensorFlow). gpu and tpu import it here anyway, to ask for the device.
        config_checks.check_impl(args.impl, load=args.device in ("gpu", "tpu"))
        if args.expectations:
            config_checks.check_expectations(args.expectations, TESTS)
        for check in args.check:
            config_checks.check_exists(check, TESTS, what="--check")
        config_checks.check_selection(pytest_args)
        config_checks.check_avoid(pytest_args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.baseline:
        from conformance import run_name

        stem = run_name(args.impl, args.device)
        if any(pathlib.Path(args.baseline).resolve() == p.resolve() for p in report_paths(pathlib.Path(args.report_dir), stem)):
            raise UsageError(f"--baseline {args.baseline} is the file this run writes its report to, so the run would "
                             "overwrite it before comparing; copy the baseline elsewhere or pass another --report-dir")
        _check_baseline(args.baseline)
    if args.device in ("gpu", "tpu"):  # The only devices that may be absent; asking imports the framework.
        from adapters.protocol import DeviceUnavailable

        try:
            config_checks.check_device_present(args.impl, args.device)
        except DeviceUnavailable as exc:
            raise UsageError(f"requested device is not available: {exc}") from None


def _check_baseline(baseline: str) -> None:
    from conformance import requirements
    from reports.cli import ReportError, load_report

    try:
        report = load_report(baseline)
    except ReportError as exc:
        raise UsageError(f"--baseline: {exc}") from None
    if report.get("spec_version") != requirements.spec_version():
        raise UsageError(f"--baseline {baseline}: written against spec {report.get('spec_version')}, but this suite "
                         f"checks spec {requirements.spec_version()}; requirements are not comparable across spec "
                         "versions: make a new baseline with this suite")


def pytest_argv(args: argparse.Namespace, pytest_args: list, report_dir: pathlib.Path, stem: str) -> list:
    """The pytest command line of a run: the suite (or the --check ids), the plugin and its options."""
    targets = [config_checks.node_id(check, TESTS) for check in args.check] or [str(TESTS)]
    argv = [
        *targets, "-p", "conformance.plugin", "-p", "no:cacheprovider", "-o", "addopts=",
        "--rootdir", str(TESTS), "-o", "console_output_style=count", "--conformance-runner",
        "--impl", args.impl, "--device", args.device, "--profile", args.profile, "--report-dir", str(report_dir),
    ]
    if args.timeout is not None:
        argv += [f"--timeout={args.timeout:g}"]
    if args.expectations:
        argv += ["--expectations", args.expectations]
    if args.replace_report:
        argv += ["--replace-report"]
    collect_only = any(a in ("--collect-only", "--co") for a in pytest_args)
    if not collect_only:
        # The plugin moves the file to <stem>.partial.xml when the run turns out partial.
        argv += [f"--junitxml={report_dir / (stem + '.xml')}", "-o", "junit_family=xunit2",
                 "-o", f"junit_suite_name=conformance-{stem}"]
    if not _names_worker_count(pytest_args) and not collect_only:
        argv += ["-n", "1"]  # One worker process: a hang or crash of the implementation costs one check.
    return argv + pytest_args


def _stops_at_first_failure(pytest_args: list) -> bool:
    return any(a in ("-x", "--exitfirst", "--maxfail=1") for a in pytest_args) and "--co" not in pytest_args \
        and "--collect-only" not in pytest_args


def _names_worker_count(pytest_args: list) -> bool:
    return any(a in ("-n", "--numprocesses") or a.startswith(("-n", "--numprocesses=")) and a != "-no"
               for a in pytest_args) or "no:xdist" in pytest_args


def run(args: argparse.Namespace, pytest_args: list) -> int:
    import pytest

    from conformance import run_name

    stem = run_name(args.impl, args.device)
    report_dir = pathlib.Path(args.report_dir)
    started = time.time()
    argv = pytest_argv(args, pytest_args, report_dir, stem)
    if _stops_at_first_failure(pytest_args) and not args.check:
        # -x: a first pass of a few examples over every check, then the full pass. A fault that only
        # a check late in the order sees stops the run in seconds, not after every earlier check's
        # full count (their first examples are the full pass's first ones: same verdicts).
        first = int(pytest.main(argv + ["--first-pass"]))
        if first != pytest.ExitCode.OK:
            return _FROM_PYTEST.get(first, EXIT_INTERNAL)
        for path in report_paths(report_dir, stem)[:1] + [report_dir / f"{stem}.partial.xml"]:
            if path.exists() and path.stat().st_mtime >= started - 1:
                path.unlink()  # The first pass's report: the full pass writes the run's.
    pytest_code = int(pytest.main(argv))
    code = _FROM_PYTEST.get(pytest_code, EXIT_INTERNAL)
    if pytest_code == pytest.ExitCode.NO_TESTS_COLLECTED:
        # pytest's junitxml writes a file even for no test (the plugin names it as a partial run's): no report.
        junit = report_dir / (f"{stem}.xml" if args.replace_report else f"{stem}.partial.xml")
        if junit.exists() and junit.stat().st_mtime >= started - 1:
            junit.unlink()
        print("conformance: error: the selection (-k, -m, --check or paths) matches no check; no report written",
              file=sys.stderr)
        return code
    if args.baseline and code in (EXIT_OK, EXIT_FAILED):
        from reports.cli import gate

        # The report this run wrote: a partial run's is compared too (the gate lists the checks it
        # did not run as disappeared, never as regressions).
        written = [p for p in report_paths(report_dir, stem) if p.exists() and p.stat().st_mtime >= started - 1]
        if not written:
            print("conformance: --baseline: this run wrote no report to compare", file=sys.stderr)
            return max(code, EXIT_FAILED)
        current = json.loads(written[0].read_text(encoding="utf-8"))
        code = max(code, gate(args.baseline, current, current_path=written[0]))
    return code


def report_paths(report_dir: pathlib.Path, stem: str) -> list:
    """The JSON reports a run may write: a partial run's first (plugin.report_path)."""
    return [report_dir / f"{stem}.partial.json", report_dir / f"{stem}.json"]


def _run_all(args: argparse.Namespace, pytest_args: list) -> int:
    """--device all: every device kind the framework may have, one process each (device set-up is per
    process); one that is not present is said and skipped, never counted as passing."""
    codes = []
    for device in DEVICES_FOR_ALL:
        argv = [sys.executable, "-m", "conformance", *_own_options(args, device), *pytest_args]
        code = subprocess.call(argv)
        if code == EXIT_USAGE and device != "cpu":
            print(f"conformance: --device all: no {device} here, not run", flush=True)
            continue
        codes.append(code)
    return max(codes)


def _own_options(args: argparse.Namespace, device: str) -> list:
    options = ["--impl", args.impl, "--device", device, "--profile", args.profile, "--report-dir", args.report_dir]
    for flag, value in (("--timeout", args.timeout), ("--expectations", args.expectations), ("--baseline", args.baseline)):
        if value is not None:
            options += [flag, f"{value:g}" if isinstance(value, float) else value]
    for check in args.check:
        options += ["--check", check]
    return options + (["--replace-report"] if args.replace_report else [])


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        from reports.cli import main as report_main

        return report_main(argv[1:])
    args, pytest_args = _parser().parse_known_args(argv)
    try:
        validate(args, pytest_args)
    except UsageError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.device == "all":
        return _run_all(args, pytest_args)
    return run(args, pytest_args)


if __name__ == "__main__":
    sys.exit(main())
