"""Publish the conformance matrix: run the suite for each implementation, then render every report.

    python -m reports.publish [IMPL ...] [--report-dir reports/published]
                              [--markdown reports/matrix.md] [--html reports/matrix.html]
                              [--profile ci] [-- PYTEST_ARGS...]

With no IMPL, every bundled adapter (`adapters.BUNDLED`). Each runs in its own process, as a user
would run it:

    python -m conformance --impl NAME --profile ci --report-dir DIR
        [--device replicas:2]                            # the tf_keras and Keras-on-TF adapters
        [--expectations adapters/expectations/NAME.toml] # when that file exists

and, on top of those, the reference and TFRS on the local multi-process clusters
(`MULTI_PROCESS_RUNS`: `--device workers:2` and `--device ps:2`).

The report directory is emptied of reports (`*.json`, `*.xml`) first, so it holds exactly this
publication and the renderings show every run of it and nothing else. A run's verdict (exit code 1:
some check failed) does not stop the others: the matrix is there to show it. Any other exit code
(an adapter that cannot load, a usage error) means a run produced no trustworthy report: nothing is
rendered and the exit code is 2, naming the runs. The renderings are a pure function of the
reports (`reports.render`), so committing them with the reports lets anyone check they match.

`main(argv)` returns the exit code: 0 published, 2 not published.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
from typing import Optional, Sequence

from reports import cli

# Implementations published on two replicas (a distribution strategy over two logical CPUs) rather
# than on one CPU: those whose adapters can split a step across replicas, so the matrix shows the
# replica requirements (DIST-*, ITER-4) checked rather than not applicable.
REPLICA_IMPLS = ("reference", "tfrs", "keras")
REPLICAS = "replicas:2"
# Runs on the local multi-process clusters (README, "Several processes"), published when their
# implementation is: MultiWorkerMirroredStrategy over 2 workers, ParameterServerStrategy with 2.
MULTI_PROCESS_RUNS = (("reference", "workers:2"), ("tfrs", "workers:2"), ("reference", "ps:2"), ("tfrs", "ps:2"))
EXPECTATIONS = os.path.join("adapters", "expectations", "{impl}.toml")
# A device whose verdicts differ from the implementation's usual ones has its own file: ps:W has
# DIST-2/DIST-3 deviations, and checks that pass elsewhere fail there (partitioned variables).
DEVICE_EXPECTATIONS = os.path.join("adapters", "expectations", "{impl}.{kind}.toml")


def expectations_file(impl: str, device: Optional[str] = None) -> Optional[str]:
    """The expectations file of `impl`'s published run on `device`, if there is one."""
    candidates = [EXPECTATIONS.format(impl=impl)]
    if device is not None:
        candidates.insert(0, DEVICE_EXPECTATIONS.format(impl=impl, kind=device.partition(":")[0]))
    return next((path for path in candidates if os.path.exists(path)), None)
# Exit codes of `python -m conformance` that still leave a complete report: 0 all passed, 1 some
# check failed.
REPORTED = (0, 1)


def bundled() -> list:
    from adapters import BUNDLED

    return list(BUNDLED)


def runs(impls: Sequence[str]) -> list:
    """(impl, device) of every published run: each implementation on its usual device (None: the
    default, or replicas:2), then those of MULTI_PROCESS_RUNS whose implementation is published."""
    return [(impl, None) for impl in impls] + [(impl, device) for impl, device in MULTI_PROCESS_RUNS if impl in impls]


def command(impl: str, report_dir: str, profile: str = "ci", pytest_args: Sequence[str] = (),
            device: Optional[str] = None) -> list:
    """The `python -m conformance` command line that publishes `impl`'s run (on `device`, if given)."""
    words = [sys.executable, "-m", "conformance", "--impl", impl, "--profile", profile, "--report-dir", report_dir]
    if device is not None:
        words += ["--device", device]
    elif impl in REPLICA_IMPLS:
        words += ["--device", REPLICAS]
    expectations = expectations_file(impl, device)
    if expectations:
        words += ["--expectations", expectations]
    return words + list(pytest_args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reports.publish",
        description="Run the conformance suite for each implementation and render the matrix of all of them.",
    )
    parser.add_argument("impls", nargs="*", metavar="IMPL", help="bundled adapter names or MODULE:ATTR (default: every bundled adapter)")
    parser.add_argument("--report-dir", default=os.path.join("reports", "published"))
    parser.add_argument("--markdown", default=os.path.join("reports", "matrix.md"), metavar="OUT.md")
    parser.add_argument("--html", default=os.path.join("reports", "matrix.html"), metavar="OUT.html")
    parser.add_argument("--profile", default="ci", choices=("dev", "ci", "thorough"))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args = []
    if "--" in argv:  # Anything after `--` goes to every run (e.g. `-k routing` for a quick look).
        pytest_args = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    args = _parser().parse_args(argv)
    impls = args.impls or bundled()

    os.makedirs(args.report_dir, exist_ok=True)
    for stale in sorted(glob.glob(os.path.join(args.report_dir, "*.json")) + glob.glob(os.path.join(args.report_dir, "*.xml"))):
        os.remove(stale)

    broken = []
    for impl, device in runs(impls):
        words = command(impl, args.report_dir, args.profile, pytest_args, device)
        name = impl if device is None else f"{impl} on {device}"
        print("publish: " + " ".join(words[1:]), flush=True)
        code = subprocess.call(words)
        print(f"publish: {name}: exit code {code}", flush=True)
        if code not in REPORTED:
            broken.append(f"{name} (exit code {code})")
    if broken:
        print(f"error: publish: no complete report from {', '.join(broken)}; nothing rendered.", file=sys.stderr)
        return 2

    reports = sorted(glob.glob(os.path.join(args.report_dir, "*.json")))
    code = cli.main(["--markdown", args.markdown, "--html", args.html, *reports])
    if code == 0:
        print(f"publish: {len(reports)} reports rendered to {args.markdown} and {args.html}", flush=True)
    return 2 if code else 0


if __name__ == "__main__":
    sys.exit(main())
