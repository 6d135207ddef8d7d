"""The conformance suite's own cost, measured as a user runs it (one subprocess per run).

    ci_profile       `python -m conformance --profile ci` against the reference: wall time
                     (TensorFlow's import included), and from its JSON report the time and
                     generated examples of each area, and examples per second.
    rejects[CANARY]  `python -m conformance --impl tests.conformance.canaries:CANARY
                     --profile ci -x`: the wall time until a faulty implementation is
                     rejected (-x runs a first pass of 3 examples a property over every check,
                     on replicas, workers or parameter servers the device's own checks first,
                     then the full pass), the check that rejected it, the requirement its
                     failure is charged to, and whether the first pass found it.

    isolation[DEVICE-MODE]  the ci profile against the reference on cpu and replicas:2, run
                     `in_process` (-p no:xdist: the checks in the runner's own process, as
                     before the runner isolated them), in one `worker` process (the default)
                     and in `2_workers` (-n 2): wall time, verdicts and examples per check, so
                     the report shows the isolation's cost and the speed-up as ratios of one run.

Targets (the conformance issue's, reported by `python -m reports.benchmarks`, never
asserted): the ci run within 60 s; every canary rejected within 20 s; the worker process costs
at most 10% over in_process.

One round each: a run is tens of seconds, and its ratio to nothing is what is reported.
The canaries of distribution (`DEVICES`) are measured on their first device.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))
import canaries  # noqa: E402
from conformance_subprocess import run_conformance  # noqa: E402


def _run(impl: str, device: str, report_dir: Path, *extra: str):
    """Run the suite once as a user does (shrinking included); the run and its wall time."""
    start = time.perf_counter()
    run = run_conformance(impl, ["-p", "no:cacheprovider", *extra], report_dir, device=device, shrink=True,
                          timeout=600)
    return run, time.perf_counter() - start


def _areas(report: dict) -> dict:
    """Per area: summed check durations, examples and checks."""
    areas: dict = defaultdict(lambda: {"duration_s": 0.0, "examples": 0, "checks": 0})
    for check in report["checks"]:
        area = areas[check["area"]]
        area["duration_s"] += check["duration_s"] or 0.0
        area["examples"] += check["examples_run"] or 0
        area["checks"] += 1
    return dict(sorted(areas.items()))


def test_ci_profile(benchmark, tmp_path):
    run, wall = benchmark.pedantic(_run, args=("reference", "cpu", tmp_path), rounds=1, iterations=1)
    report = run.report
    assert run.returncode == 0 and report, run.describe()
    areas = _areas(report)
    examples = sum(a["examples"] for a in areas.values())
    checks_s = sum(a["duration_s"] for a in areas.values())
    benchmark.extra_info.update(
        suite="ci_profile", impl="reference", device="cpu", command=run.command,
        wall_s=wall, checks_s=checks_s, examples=examples,
        examples_per_s=examples / checks_s if checks_s else None,
        min_examples_per_property=min((c["examples_run"] for c in report["checks"] if c["examples_run"]), default=None),
        summary=report["summary"], areas=areas,
    )


@pytest.mark.parametrize("canary", [pytest.param(c, id=c.__name__) for c in canaries.CANARIES])
def test_rejects(benchmark, tmp_path, canary):
    impl = f"tests.conformance.canaries:{canary.__name__}"
    device = getattr(canary, "DEVICES", ("cpu",))[0]
    run, wall = benchmark.pedantic(_run, args=(impl, device, tmp_path, "-x"), rounds=1, iterations=1)
    failed = run.checks_with("failed", "error")
    # A run that was not rejected has no rejection time: report it as a failure, not a figure.
    assert run.returncode == 1 and failed, f"{canary.__name__} not rejected: {run.describe()}"
    benchmark.extra_info.update(
        suite="rejects", impl=canary.__name__, device=device, command=run.command,
        wall_s=wall, breaks=canary.BREAKS, rejected_by=failed[0]["id"],
        rejected_requirements=failed[0].get("charged") or failed[0]["requirements"],
        first_pass=(run.report.get("partial_reason") or "").startswith("first pass"),
        checks_run=len(run.report["checks"]),
    )


ISOLATION_MODES = {"in_process": ["-p", "no:xdist"], "worker": [], "2_workers": ["-n", "2"]}


def _isolation_run(benchmark, tmp_path, device, mode, profile):
    run, wall = benchmark.pedantic(_run, args=("reference", device, tmp_path, "--profile", profile,
                                               *ISOLATION_MODES[mode]), rounds=1, iterations=1)
    report = run.report
    assert run.returncode == 0 and report, run.describe()
    benchmark.extra_info.update(
        suite="isolation", impl="reference", device=device, mode=mode, profile=profile, command=run.command,
        wall_s=wall, checks_s=sum(c["duration_s"] for c in report["checks"]),
        longest_check_s=max(c["duration_s"] for c in report["checks"]),
        verdicts={c["id"]: c["status"] for c in report["checks"]},
        examples={c["id"]: c["examples_run"] for c in report["checks"]},
    )


@pytest.mark.parametrize("mode", list(ISOLATION_MODES))
@pytest.mark.parametrize("device", ["cpu", "replicas:2"])
def test_isolation(benchmark, tmp_path, device, mode):
    _isolation_run(benchmark, tmp_path, device, mode, "ci")


# The thorough profile (500 examples a property) in one worker and in two: the speed-up of -n 2,
# and from the per-check costs the projection for 16 cores (reports.benchmarks.isolation_cost).
@pytest.mark.parametrize("mode", ["worker", "2_workers"])
def test_thorough(benchmark, tmp_path, mode):
    _isolation_run(benchmark, tmp_path, "cpu", mode, "thorough")
