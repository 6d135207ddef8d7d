"""The pytest plugin behind `python -m conformance`.

It chooses the implementation (`--impl`), the device (`--device`) and the hypothesis profile
(`--profile`); turns a missing capability into *not applicable, with the reason*; turns the
expectations file into expected failures; and records every check's verdict for the JSON report
(reports/schema.py), the JUnit file and the summary table by area.
"""

from __future__ import annotations

import datetime
import logging
import json
import os
import pathlib
import re
import sys
import time
import tomllib
from collections import Counter
from typing import Dict, Optional

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.database import DirectoryBasedExampleDatabase

from adapters.protocol import CAPABILITIES, DeviceUnavailable, Unsupported, parse_device, summed_replicas
from conformance import __version__, requirements, run_name, tolerances
from conformance.strategies import Capabilities
from reports import schema

NOT_APPLICABLE_PREFIX = "not applicable: "
PROFILES = ("dev", "ci", "thorough")
# Examples a property at most on the multi-process devices (see pytest_configure).
DISTRIBUTED_MAX_EXAMPLES = {"workers": 25, "ps": 10}
_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

# No deadlines anywhere: TensorFlow's first call traces. Runs are bounded by example counts.
settings.register_profile("dev", max_examples=10, deadline=None, suppress_health_check=_SUPPRESS)
# ci leaves out hypothesis' explain phase (more runs of a failing example, to list the lines
# only failures ran): it costs seconds per failure and the requirement already says what broke.
settings.register_profile(
    "ci", max_examples=50, deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=_SUPPRESS, phases=[p for p in Phase if p is not Phase.explain],
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, print_blob=True, suppress_health_check=_SUPPRESS,
    database=DirectoryBasedExampleDatabase(os.path.join(".hypothesis", "conformance")),
)


def not_applicable(reason: str):
    """Stop the current check as not applicable; the report shows `reason`."""
    pytest.skip(NOT_APPLICABLE_PREFIX + reason)


class Implementation:
    """The implementation under test, as the tests see it (the `impl` fixture)."""

    def __init__(self, spec: str, device: str):
        from adapters import resolve

        self.spec = spec
        self.device = device
        self.replicas = summed_replicas(device)  # replicas:N and workers:N
        self.adapter = resolve(spec)
        self.adapter.set_device(device)
        self.unsupported: Dict[str, str] = dict(self.adapter.unsupported())
        unknown = sorted(set(self.unsupported) - set(CAPABILITIES))
        if unknown:
            raise TypeError(f"Adapter {self.adapter.name!r} declares unknown capabilities {unknown}.")
        self.caps = Capabilities(
            kinds=tuple(self.adapter.optimizer_kinds()),
            **{name: name not in self.unsupported for name in
               ("none_gradient", "absent_variables", "sparse_gradient", "sub_clipping", "composite_clipping")},
        )
        self.info = dict(self.adapter.info())

    @property
    def name(self) -> str:
        return self.adapter.name

    def require(self, *capabilities: str) -> None:
        for capability in capabilities:
            if capability in self.unsupported:
                not_applicable(f"{self.name} cannot express {CAPABILITIES[capability]}: {self.unsupported[capability]}")

    def tolerance(self, kind: str):
        return tolerances.tolerance(self.adapter.framework, kind, hardware=self.hardware)

    @property
    def hardware(self) -> str:
        """"cpu", "gpu" or "tpu": what the steps run on (replicas:N may run on GPUs), for tolerances."""
        kind = parse_device(self.device).kind
        return getattr(self.adapter, "hardware", kind if kind in ("gpu", "tpu") else "cpu")


# --------------------------------------------------------------------------- options and setup


def pytest_addoption(parser):
    group = parser.getgroup("conformance")
    group.addoption("--impl", default="reference", help="bundled adapter name or MODULE:ATTR")
    group.addoption("--device", default="cpu", help="cpu, gpu, tpu or replicas:N")
    group.addoption("--profile", default="ci", choices=PROFILES, help="hypothesis profile")
    group.addoption("--expectations", default=None, help="TOML file of expected failures")
    group.addoption("--report-dir", default=None, help="where the JSON report is written")
    group.addoption("--no-shrink", action="store_true",
                    help="report the first failing example as found, without minimising it (fast rejection)")


# Hypothesis shrinks up to 500 times or 5 minutes. A CI run must reject a faulty implementation
# quickly and give the same example every time, so dev and ci bound shrinking by a count of
# improvements (deterministic), with a time cap only as a safety net; thorough keeps hypothesis'
# defaults. The first few improvements are cheap and remove most of an example; the last ones of
# 40 took 100 s of 118 on one canary, so ci stops after 8 (`tests/benchmarks/bench_suite.py`).
SHRINK_LIMITS = {"dev": (40, 120), "ci": (8, 30), "thorough": (500, 300)}  # (shrinks, seconds)


def pytest_configure(config):
    config.addinivalue_line("markers", "requirement(*ids): the SPEC requirements a check verifies")
    config.addinivalue_line("markers", "needs(*capabilities): adapter capabilities a check needs")
    config.addinivalue_line("markers", "broad: compares whole steps with an oracle; runs first (pytest_collection_modifyitems)")
    profile = config.getoption("--profile")
    settings.load_profile(profile)
    # Multi-process devices: each example builds its variables on several processes (on ps:W it
    # also traces the step the coordinator ships to a worker), about 1 s an example on 2 cores.
    # Capped, so that a run takes minutes (README, "Running the suite").
    cap = DISTRIBUTED_MAX_EXAMPLES.get(parse_device(config.getoption("--device")).kind)
    if cap is not None and settings.default.max_examples > cap:
        settings.register_profile(f"{profile}-capped", parent=settings.get_profile(profile), max_examples=cap)
        settings.load_profile(f"{profile}-capped")
    from hypothesis.internal.conjecture import engine

    # Internal constants, hence guarded by tests/conformance/test_plugin.py.
    engine.MAX_SHRINKS, engine.MAX_SHRINKING_SECONDS = SHRINK_LIMITS[profile]
    if config.getoption("--no-shrink"):
        engine.MAX_SHRINKS = 0
    # Framework warnings (tf_keras warns on every None gradient, as ROUTE-2 says) drown the report.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        impl = Implementation(config.getoption("--impl"), config.getoption("--device"))
    except DeviceUnavailable as exc:
        pytest.exit(f"conformance: requested device is not available: {exc}", returncode=2)
    config.stash[_IMPL] = impl
    config.stash[_EXPECTED] = _load_expectations(config.getoption("--expectations"))
    config.stash[_RESULTS] = {}
    config.stash[_STARTED] = time.time()


_IMPL = pytest.StashKey[Implementation]()
_EXPECTED = pytest.StashKey[dict]()
_RESULTS = pytest.StashKey[dict]()
_STARTED = pytest.StashKey[float]()


def _load_expectations(path: Optional[str]) -> dict:
    """check id -> {"requirement", "reason"}. Every entry must name a check and give a reason."""
    if not path:
        return {}
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    expected = {}
    for entry in data.get("expected_failure", []):
        if not entry.get("check") or not entry.get("reason"):
            raise pytest.UsageError(f"{path}: every [[expected_failure]] needs `check` and `reason`: {entry}")
        expected[entry["check"]] = entry
    return expected


def pytest_report_header(config):
    impl = config.stash[_IMPL]
    frameworks = ", ".join(f"{k} {v}" for k, v in sorted(impl.info.items()) if k not in ("implementation", "version"))
    lines = [
        f"conformance {__version__}, spec {requirements.spec_version()}",
        f"implementation: {impl.name} = {impl.info.get('implementation')} {impl.info.get('version')}",
        f"frameworks: {frameworks}",
        f"device: {impl.device}; profile: {config.getoption('--profile')}",
    ]
    if impl.unsupported:
        lines.append("not applicable here: " + "; ".join(f"{k} ({v})" for k, v in sorted(impl.unsupported.items())))
    return lines


@pytest.fixture(scope="session")
def impl(request) -> Implementation:
    return request.config.stash[_IMPL]


def check_id(item) -> str:
    return f"{pathlib.Path(str(item.fspath)).name}::{item.name}"


def _requirement_ids(item):
    ids = []
    for mark in item.iter_markers("requirement"):
        ids.extend(mark.args)
    return ids


def _needed_capabilities(item):
    return [name for mark in item.iter_markers("needs") for name in mark.args]


# The checks marked `broad` (one per area: whole steps against the oracle) catch most faults of
# their area, so they run before the narrower ones, in file order: with `-x` a faulty
# implementation is rejected after a few seconds of checks instead of after whatever modules sort
# before its fault. Of those, the ones that need replicas go first: on several replicas they are
# what that device adds, and on one they are not applicable at once. The order changes no
# verdict: every check still runs without `-x`.
def _run_order(item) -> tuple:
    return (item.get_closest_marker("broad") is None, "replicas" not in _needed_capabilities(item))


def pytest_collection_modifyitems(config, items):
    items.sort(key=_run_order)  # Stable: file order kept within each part.
    expected = config.stash[_EXPECTED]
    known = {check_id(item) for item in items}
    stale = sorted(set(expected) - known)
    if stale and not config.getoption("keyword") and not config.getoption("markexpr"):
        raise pytest.UsageError(f"expectations file lists checks that do not exist: {stale}")
    for item in items:
        for requirement_id in _requirement_ids(item):
            requirements.get(requirement_id)  # An unknown id is a bug in the suite: fail loudly.
        entry = expected.get(check_id(item))
        if entry:
            item.add_marker(pytest.mark.xfail(reason=f"{entry.get('requirement', '')}: {entry['reason']}", strict=False))


def pytest_runtest_setup(item):
    impl = item.config.stash[_IMPL]
    impl.require(*_needed_capabilities(item))
    if any(requirements.get(r).scope == "tf_keras" for r in _requirement_ids(item)):
        impl.require("tf_keras_api")


# Reasons of the generated examples the current check had to reject as inexpressible.
_UNSUPPORTED_EXAMPLES: Counter = Counter()


def note_unsupported(reason: str) -> None:
    _UNSUPPORTED_EXAMPLES[reason] += 1


def _describe(reasons: Counter) -> str:
    return "; ".join(f"{n} x {reason}" for reason, n in sorted(reasons.items()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    _UNSUPPORTED_EXAMPLES.clear()
    from hypothesis.internal.conjecture import engine

    # A listed expected failure needs no minimal example: it is known. Not shrinking it keeps an
    # implementation with many recorded deviations (tfrs: 20) from spending minutes on each.
    shrinks = engine.MAX_SHRINKS
    if item.get_closest_marker("xfail") is not None:
        engine.MAX_SHRINKS = 0
    try:
        outcome = yield
    finally:
        engine.MAX_SHRINKS = shrinks
    reasons = Counter(_UNSUPPORTED_EXAMPLES)
    item.stash[_REJECTED] = reasons
    exc = outcome.excinfo
    if exc is not None and isinstance(exc[1], Unsupported):
        outcome.force_exception(pytest.skip.Exception(NOT_APPLICABLE_PREFIX + str(exc[1])))
    elif exc is not None and reasons and isinstance(exc[1], Unsatisfiable):
        outcome.force_exception(pytest.skip.Exception(
            NOT_APPLICABLE_PREFIX + f"every generated example needed something {item.config.stash[_IMPL].name} "
            f"cannot express: {_describe(reasons)}"))


_REJECTED = pytest.StashKey[Counter]()


# --------------------------------------------------------------------------- verdicts


_FALSIFYING = re.compile(r"((?:Falsifying (?:explicit )?example|Failing test case):.*?)(?:\n\s*\n|\Z)", re.S)
_BLOB = re.compile(r"(@reproduce_failure\([^)]*\))")
_PASSING = re.compile(r"(\d+) passing,")


def _reproduce(config, item, blob: Optional[str]) -> str:
    impl = config.stash[_IMPL]
    command = (f"python -m conformance --impl {impl.spec} --device {impl.device} "
               f"--profile {config.getoption('--profile')} -k {item.name}")
    if config.getoption("--expectations"):
        command += f" --expectations {config.getoption('--expectations')}"
    seed = config.getoption("hypothesis_seed", None)
    if seed is not None:
        command += f" --hypothesis-seed={seed}"
    return command + (f"   # or decorate the test with {blob}" if blob else "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    config = item.config
    results = config.stash[_RESULTS]
    record = results.setdefault(item.nodeid, {
        "id": check_id(item),
        "area": item.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"),
        "requirements": _requirement_ids(item),
        "status": schema.PASSED, "reason": None, "message": None, "example": None,
        "reproduce": None, "examples_run": None, "duration_s": 0.0,
    })
    record["duration_s"] += report.duration
    if report.when == "teardown":
        stats = getattr(item, "hypothesis_statistics", None)
        if stats:
            record["examples_run"] = sum(int(n) for n in _PASSING.findall(stats))
        rejected = item.stash.get(_REJECTED, None)
        if rejected and record["status"] == schema.PASSED:
            record["reason"] = f"examples not applicable (rejected, not counted): {_describe(rejected)}"
    wasxfail = getattr(report, "wasxfail", None)
    if report.skipped and wasxfail is not None:
        record.update(status=schema.EXPECTED_FAILURE, reason=wasxfail)
    elif report.passed and wasxfail is not None and report.when == "call":
        record.update(status=schema.UNEXPECTED_PASS, reason=wasxfail)
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if reason.startswith(NOT_APPLICABLE_PREFIX):
            record.update(status=schema.NOT_APPLICABLE, reason=reason[len(NOT_APPLICABLE_PREFIX):])
        else:  # A check may only be left out as not applicable, with its reason.
            record.update(status=schema.ERROR, message=f"skipped without a not-applicable reason: {reason}")
    elif report.failed:
        text = report.longreprtext
        example = _FALSIFYING.search(text)
        blob = _BLOB.search(text)
        ids = record["requirements"]
        record.update(
            status=schema.FAILED if report.when == "call" else schema.ERROR,
            message="\n".join(line[2:] for line in text.splitlines() if line.startswith("E ")) [:4000] or text[-4000:],
            example=example.group(1).strip() if example else None,
            reproduce=_reproduce(config, item, blob.group(1) if blob else None),
        )
        spec_lines = [f"{r}: {requirements.get(r).text}" for r in ids]
        report.sections.append((
            "conformance",
            "Fails " + ", ".join(ids) + "\n" + "\n".join(spec_lines) + f"\nReproduce: {record['reproduce']}",
        ))


def _report(config, exitstatus) -> dict:
    impl = config.stash[_IMPL]
    checks = sorted(config.stash[_RESULTS].values(), key=lambda c: c["id"])
    all_requirements = requirements.all_requirements()
    by_requirement: Dict[str, list] = {}
    for check in checks:
        for requirement_id in check["requirements"]:
            by_requirement.setdefault(requirement_id, []).append(check)
    return {
        "schema_version": schema.SCHEMA_VERSION,
        "suite_version": __version__,
        "spec_version": requirements.spec_version(),
        "implementation": {"name": impl.name, "implementation": impl.info.get("implementation"),
                           "version": impl.info.get("version")},
        "frameworks": {k: v for k, v in impl.info.items() if k not in ("implementation", "version")},
        "device": impl.device,
        "profile": config.getoption("--profile"),
        "seed": "derandomized" if settings.default.derandomize else config.getoption("hypothesis_seed", None),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m conformance"] + sys.argv[1:]),
        "expectations": config.getoption("--expectations"),
        "summary": schema.summarize(checks),
        "checks": checks,
        "requirements": {
            rid: {
                "status": schema.requirement_status(c["status"] for c in by_requirement[rid]),
                "area": all_requirements[rid].area,
                "scope": all_requirements[rid].scope,
                "text": all_requirements[rid].text,
                "checks": [c["id"] for c in by_requirement[rid]],
            }
            for rid in sorted(by_requirement)
        },
        "duration_s": round(time.time() - config.stash[_STARTED], 2),
    }


def report_path(config) -> pathlib.Path:
    impl = config.stash[_IMPL]
    directory = pathlib.Path(config.getoption("--report-dir") or pathlib.Path("reports") / "runs")
    return directory / f"{run_name(impl.spec, impl.device)}.json"


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if _IMPL not in config.stash or not config.stash[_RESULTS]:
        return
    report = _report(config, exitstatus)
    path = report_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    config.stash[_REPORT] = (path, report)


_REPORT = pytest.StashKey[tuple]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _REPORT not in config.stash:
        return
    path, report = config.stash[_REPORT]
    write = terminalreporter.write_line
    terminalreporter.section("conformance summary")
    statuses = list(schema.STATUSES)
    # Columns as wide as their longest entry (plus a gap), so long check ids never shear the table.
    status_width = max(map(len, statuses)) + 2
    areas = sorted({c["area"] for c in report["checks"]})
    area_width = max(len("area"), *map(len, areas)) + 2
    write(f"{'area':<{area_width}}" + "".join(f"{s:>{status_width}}" for s in statuses))
    for area in areas:
        counts = [sum(1 for c in report["checks"] if c["area"] == area and c["status"] == s) for s in statuses]
        write(f"{area:<{area_width}}" + "".join(f"{n:>{status_width}}" for n in counts))
    write("")
    check_width = max(len("check"), *(len(c["id"]) for c in report["checks"])) + 2
    write(f"{'check':<{check_width}}{'status':<{status_width}}{'examples':>8}")
    for check in report["checks"]:
        examples = "-" if check["examples_run"] is None else str(check["examples_run"])
        write(f"{check['id']:<{check_width}}{check['status']:<{status_width}}{examples:>8}")
        if check["status"] in (schema.NOT_APPLICABLE, schema.EXPECTED_FAILURE, schema.UNEXPECTED_PASS):
            write(f"    {check['status']}: {check['reason']}")
    unexpected = [c["id"] for c in report["checks"] if c["status"] == schema.UNEXPECTED_PASS]
    if unexpected:
        write(f"UNEXPECTED PASS (remove from the expectations file): {', '.join(unexpected)}")
    impl = config.stash[_IMPL]
    write(f"report: {path} ({impl.name} on {impl.device}, profile {report['profile']})")
