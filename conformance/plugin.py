"""The pytest plugin behind `python -m conformance`.

It chooses the implementation (`--impl`), the device (`--device`) and the hypothesis profile
(`--profile`); turns a missing capability into *not applicable, with the reason*; turns the
expectations file into expected failures; and records every check's verdict for the JSON report
(reports/schema.py), the JUnit file and the summary table by area.
"""

from __future__ import annotations

import datetime
import faulthandler
import json
import logging
import os
import pathlib
import re
import shlex
import shutil
import sys
import tempfile
import time
import tomllib
from collections import Counter
from typing import Dict, Optional

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.database import DirectoryBasedExampleDatabase

from adapters.protocol import CAPABILITIES, DeviceUnavailable, Unsupported, parse_device, summed_replicas
from conformance import __version__, config_checks, isolation, requirements, run_name, situations, tolerances
from conformance.strategies import Capabilities
from reports import schema

NOT_APPLICABLE_PREFIX = "not applicable: "
BLOCKED_PREFIX = "blocked by "
# How long a check waits for the outcome of a situation's owner running in another worker process
# before it goes on without it (and says so): owners run first, so this is only reached when one hangs.
OWNER_WAIT_S = 120.0
TESTS = pathlib.Path(__file__).resolve().parent / "tests"
PROFILES = ("dev", "ci", "thorough")
# Examples a property at most on the multi-process devices (see pytest_configure).
DISTRIBUTED_MAX_EXAMPLES = {"workers": 25, "ps": 10}
# Examples a property in the first pass of a -x run (python -m conformance): the profile's first
# examples (ci is derandomized: the same ones the full pass starts with), over every check.
FIRST_PASS_EXAMPLES = 3
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

    def __init__(self, spec: str, device: str, adapter=None):
        from adapters import resolve

        self.spec = spec
        self.device = device
        self.replicas = summed_replicas(device)  # replicas:N and workers:N
        self.adapter = resolve(spec) if adapter is None else adapter
        self.adapter.set_device(device)
        self.unsupported: Dict[str, str] = dict(self.adapter.unsupported())
        unknown = sorted(set(self.unsupported) - set(CAPABILITIES))
        if unknown:
            raise TypeError(f"Adapter {self.adapter.name!r} declares unknown capabilities {unknown}.")
        self.expressible = Capabilities(
            kinds=tuple(self.adapter.optimizer_kinds()),
            **{name: name not in self.unsupported for name in
               ("none_gradient", "absent_variables", "sparse_gradient", "sub_clipping", "composite_clipping")},
        )
        self.info = dict(self.adapter.info())
        self.focus(situations.Declaration(uses=situations.STEP + ("composite_clipping", "sub_counters",
                                                                   "composite_counter")))

    def focus(self, declaration: "situations.Declaration", avoid=()) -> None:
        """For the next check: its cases contain only the situations it declares, less `avoid`
        (situations whose owner deviated; conformance/situations.py). Sets `caps` (what the
        strategies draw) and `active` (what the check itself may read or compare)."""
        allowed = set(declaration.owns) | set(declaration.uses) | set(declaration.relies_on)
        allowed |= set(situations.KINDS)
        self.active = frozenset(allowed - (set(avoid) - set(declaration.owns)))
        full = self.expressible
        owned_kinds = [name for name in declaration.owns if name in situations.KINDS]
        kinds = [k for k in full.kinds if f"kind:{k}" in self.active
                 and (not owned_kinds or f"kind:{k}" in owned_kinds)]
        self.caps = Capabilities(
            kinds=tuple(kinds),
            none_gradient=full.none_gradient and "none_gradient" in self.active,
            absent_variables=full.absent_variables and "absent_group" in self.active,
            empty_groups="absent_group" in self.active,
            sparse_gradient=full.sparse_gradient and "sparse_gradient" in self.active,
            sub_clipping=full.sub_clipping and "sub_clipping" in self.active,
            composite_clipping=full.composite_clipping and "composite_clipping" in self.active,
        )

    def allows(self, situation: str) -> bool:
        """Whether the current check may contain or read `situation` (declared, not avoided)."""
        return situation in self.active

    @property
    def name(self) -> str:
        return self.adapter.name

    def require(self, *capabilities: str) -> None:
        for capability in capabilities:
            if capability in self.unsupported:
                not_applicable(f"{self.name} cannot express {CAPABILITIES[capability]}: {self.unsupported[capability]}")
        # What the device lacks, before any situation can block the check (tests/test_distribution.py
        # says the same inside the checks, for a port's own pytest run of one check).
        if "replicas" in capabilities and self.replicas < 2:
            not_applicable(f"the run is on {self.device!r}, one replica; run with --device replicas:N or workers:N")
        if "parameter_servers" in capabilities and parse_device(self.device).kind != "ps":
            not_applicable(f"the run is on {self.device!r}, no parameter servers; run with --device ps:W")

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
    group.addoption("--impl", default=None,
                    help="bundled adapter name or MODULE:ATTR (default: the conftest's "
                         "pytest_conformance_implementation, else reference)")
    group.addoption("--device", default="cpu", help="cpu, gpu, tpu, replicas:N, workers:N or ps:N")
    group.addoption("--profile", default="ci", choices=PROFILES, help="hypothesis profile")
    group.addoption("--expectations", default=None, help="TOML file of expected failures")
    group.addoption("--report-dir", default=None, help="where the JSON report is written")
    group.addoption("--replace-report", action="store_true",
                    help="write a partial run's report under the full run's name")
    group.addoption("--avoid", default="", metavar="SITUATIONS",
                    help="comma-separated situations to leave out of every check's cases, as if their owner "
                         "had deviated (reproduce commands use it; conformance/situations.py lists them)")
    group.addoption("--first-pass", action="store_true",
                    help=f"at most {FIRST_PASS_EXAMPLES} examples a property, the report marked partial (python -m "
                         "conformance -x runs this pass over every check before the full one)")
    group.addoption("--no-shrink", action="store_true",
                    help="report the first failing example as found, without minimising it (fast rejection)")
    # Set by `python -m conformance`, which names the checks itself; without it the plugin is a
    # port's own pytest run (`pytest_plugins = ["conformance.plugin"]`) and adds the checks.
    group.addoption("--conformance-runner", action="store_true", help="(set by python -m conformance)")


def pytest_addhooks(pluginmanager):
    from conformance import hooks

    pluginmanager.add_hookspecs(hooks)


# Hypothesis shrinks up to 500 times or 5 minutes. A CI run must reject a faulty implementation
# quickly and give the same example every time, so dev and ci bound shrinking by a count of
# improvements (deterministic), with a time cap only as a safety net; thorough keeps hypothesis'
# defaults. The first few improvements are cheap and remove most of an example; the last ones of
# 40 took 100 s of 118 on one canary, so ci stops after 8 (`tests/benchmarks/bench_suite.py`).
SHRINK_LIMITS = {"dev": (40, 120), "ci": (8, 30), "thorough": (500, 300)}  # (shrinks, seconds)
# The per-check time limit when neither --timeout nor the `timeout` ini value sets one: about ten
# times the slowest check of the profile on a loaded 2-core machine, and above its shrinking cap
# (SHRINK_LIMITS), which a failing check may spend in full.
TIMEOUTS = {"dev": 300.0, "ci": 300.0, "thorough": 1800.0}


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    # Before pytest-timeout reads its settings (in its pytest_configure).
    if getattr(config.option, "timeout", None) is None and not config.getini("timeout"):
        config.option.timeout = TIMEOUTS[config.getoption("--profile")]
    # Our timer (isolation.Watchdog) ends the process from a thread, as pytest-timeout's thread
    # method does; say so in the header rather than "signal".
    if not getattr(config.option, "timeout_method", None) and not config.getini("timeout_method"):
        config.option.timeout_method = "thread"


def _distributing(config) -> bool:
    """True in the controller of a pytest-xdist run: the checks run in worker processes, and this
    process only gathers their reports (it never imports the implementation's framework)."""
    return (not hasattr(config, "workerinput") and not config.option.collectonly
            and getattr(config.option, "dist", "no") != "no" and bool(getattr(config.option, "tx", None)))


def _runs_checks(config) -> bool:
    return not _distributing(config)


def _impl_spec(config):
    spec = config.getoption("--impl")
    if spec is None:
        spec = config.hook.pytest_conformance_implementation(config=config)
    return "reference" if spec is None else spec


def spec_name(spec) -> str:
    """A spec as reports name it: the string given, or MODULE:QUALNAME of an object."""
    if isinstance(spec, str):
        return spec
    target = spec if isinstance(spec, type) or callable(spec) else type(spec)
    return f"{target.__module__}:{getattr(target, '__qualname__', type(target).__name__)}"


def pytest_configure(config):
    config.addinivalue_line("markers", "requirement(*ids): the SPEC requirements a check verifies")
    config.addinivalue_line("markers", "needs(*capabilities): adapter capabilities a check needs")
    config.addinivalue_line("markers", "broad: compares whole steps with an oracle across every situation it uses")
    config.addinivalue_line("markers", "owns(*situations): the check is focused on these situations (conformance/situations.py)")
    config.addinivalue_line("markers", "uses(*situations): situations the check's cases may contain, left out where their owner deviates")
    config.addinivalue_line("markers", "relies_on(*situations): situations the check cannot do without: blocked where their owner deviates")
    profile = config.getoption("--profile")
    settings.load_profile(profile)
    # Multi-process devices: each example builds its variables on several processes (on ps:W it
    # also traces the step the coordinator ships to a worker), about 1 s an example on 2 cores.
    # Capped, so that a run takes minutes (README, "Running the suite").
    cap = DISTRIBUTED_MAX_EXAMPLES.get(parse_device(config.getoption("--device")).kind)
    if config.getoption("--first-pass"):
        cap = min(cap or FIRST_PASS_EXAMPLES, FIRST_PASS_EXAMPLES)
    if cap is not None and settings.default.max_examples > cap:
        settings.register_profile(f"{profile}-capped", parent=settings.get_profile(profile), max_examples=cap)
        settings.load_profile(f"{profile}-capped")
    from hypothesis.internal.conjecture import engine

    # Internal constants, hence guarded by tests/conformance/test_plugin.py.
    engine.MAX_SHRINKS, engine.MAX_SHRINKING_SECONDS = SHRINK_LIMITS[profile]
    if config.getoption("--no-shrink") or _first_pass_unshrunk(config):
        engine.MAX_SHRINKS = 0
    # Framework warnings (tf_keras warns on every None gradient, as ROUTE-2 says) drown the report.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    spec = _impl_spec(config)
    config.stash[_SPEC] = spec_name(spec)
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Verdicts(config), "conformance-verdicts")
    config.stash[_EXPECTED] = _load_expectations(config.getoption("--expectations"))
    config.stash[_RESULTS] = {}
    config.stash[_STARTED] = time.time()
    if not config.getoption("--conformance-runner") and config.args_source != pytest.Config.ArgsSource.ARGS:
        # A port's own pytest run over its default paths: the suite's checks join its tests.
        config.args.append(str(TESTS))
    if _distributing(config):
        config.stash[_CRASH_DIR] = tempfile.mkdtemp(prefix="conformance-crashes-")
        config.stash[_OUTCOMES] = situations.Outcomes(os.path.join(config.stash[_CRASH_DIR], "outcomes"))
        return
    worker = getattr(config, "workerinput", None)
    if worker:
        crash_dir = worker["conformance_crash_dir"]  # The controller's: it reads what a dead worker left.
    else:
        crash_dir = config.stash[_CRASH_DIR] = tempfile.mkdtemp(prefix="conformance-crashes-")
    # Finished checks' outcomes, shared by every worker of the run (conformance/situations.py).
    config.stash[_OUTCOMES] = situations.Outcomes(os.path.join(crash_dir, "outcomes"))
    crash = isolation.CrashFile(os.path.join(crash_dir, f"{worker['workerid'] if worker else 'main'}.crash"))
    config.stash[_CRASH] = crash
    config.stash[_WATCHDOG] = isolation.Watchdog(
        crash, check_id, (lambda record: os._exit(isolation.TIMEOUT_EXIT)) if worker else
        (lambda record: _end_in_process_run(config, record)))
    adapter = _load_named_port(config, spec, crash_dir, crash)
    try:
        with isolation.quiet_stderr():
            config.stash[_IMPL] = Implementation(spec, config.getoption("--device"), adapter)
    except Exception as exc:  # noqa: BLE001 - the adapter's own failure: every check errors with it.
        config.stash[_IMPL_ERROR] = f"{type(exc).__name__}: {exc}"


def _load_named_port(config, spec, crash_dir: str, crash: isolation.CrashFile):
    """The adapter of the runner's `--impl MODULE:ATTR`, or None (any other run: Implementation
    resolves it). A port that does not import or build there is the user's mistake, refused like any
    other (exit 2, one line, before any check): the runner only looked its module up
    (config_checks.check_impl), so that a run imports the port's framework once, here. In a run
    without xdist pytest's UsageError refuses it; a worker leaves the line for the controller, which
    refuses the run once the worker has collected (pytest_xdist_node_collection_finished).

    A worker is also bounded while it loads the port, as a check is (--timeout), and its crash file
    says that it was loading: if the port kills or hangs it, the controller refuses the run saying
    so (pytest_testnodedown), rather than restarting workers that would die the same way."""
    from adapters import BUNDLED

    if not (config.getoption("--conformance-runner") and isinstance(spec, str) and spec not in BUNDLED):
        return None
    if not hasattr(config, "workerinput"):
        try:
            return config_checks.load_impl(spec)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    crash.write({"kind": _LOADING})
    crash.enable()
    faulthandler.dump_traceback_later(config.option.timeout, exit=True, file=crash.handle)
    try:
        return config_checks.load_impl(spec)
    except ValueError as exc:
        with open(os.path.join(crash_dir, _REFUSED_FILE), "w", encoding="utf-8") as handle:
            handle.write(str(exc))
        return None
    finally:
        faulthandler.cancel_dump_traceback_later()
        crash.reset()


def pytest_unconfigure(config):
    if _CRASH in config.stash:
        config.stash[_CRASH].close()
    if _CRASH_DIR in config.stash:
        shutil.rmtree(config.stash[_CRASH_DIR], ignore_errors=True)


_SPEC = pytest.StashKey[str]()
_IMPL = pytest.StashKey[Implementation]()
_IMPL_ERROR = pytest.StashKey[str]()
_IMPL_INFO = pytest.StashKey[dict]()
_EXPECTED = pytest.StashKey[dict]()
_RESULTS = pytest.StashKey[dict]()
_STARTED = pytest.StashKey[float]()
_CRASH = pytest.StashKey[isolation.CrashFile]()
_CRASH_DIR = pytest.StashKey[str]()
_WATCHDOG = pytest.StashKey[isolation.Watchdog]()
_REFUSED = pytest.StashKey[str]()
_REFUSED_FILE = "refused-impl"
_LOADING = "loading the implementation"  # A crash file's first record while a worker loads the port.
_SELECTED = pytest.StashKey[int]()
_OWNERS = pytest.StashKey[dict]()  # situation -> nodeids of the session's checks that own it
_OUTCOMES = pytest.StashKey[situations.Outcomes]()
_CHECK_IDS = pytest.StashKey[dict]()  # nodeid -> check id
_FOCUS = pytest.StashKey[dict]()  # on an item: {"avoided": [...], "blocked_by": [...]}
_OUTCOME = pytest.StashKey[tuple]()  # on an item: (status, charged, message) of its last phase


def _load_expectations(path: Optional[str]) -> dict:
    """check id -> {"requirement", "reason"}. Every entry must name a check and give a reason."""
    if not path:
        return {}
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise pytest.UsageError(f"--expectations {path}: {exc}") from None
    expected = {}
    for entry in data.get("expected_failure", []):
        if not entry.get("check") or not entry.get("reason"):
            raise pytest.UsageError(f"{path}: every [[expected_failure]] needs `check` and `reason`: {entry}")
        expected[entry["check"]] = entry
    return expected


# --------------------------------------------------------------------------- xdist: controller side


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    node.workerinput["conformance_crash_dir"] = node.config.stash[_CRASH_DIR]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    refused = os.path.join(node.config.stash[_CRASH_DIR], _REFUSED_FILE)
    if os.path.exists(refused):  # _load_named_port: the worker could not load the port.
        with open(refused, encoding="utf-8") as handle:
            _refuse(node.config, handle.read())
    root = node.config.rootpath
    node.config.stash[_SELECTED] = sum(1 for i in ids if (root / i.split("::")[0]).resolve().parent == TESTS)


def _refuse(config, message: str) -> None:
    """Ends the run as a usage error (exit 2) with `message` in one line, before any check ran and
    without a report: the port named by --impl did not load (_load_named_port)."""
    config.stash[_REFUSED] = message
    print(f"conformance: error: {message}", file=sys.stderr, flush=True)
    from _pytest.junitxml import xml_key

    if xml_key in config.stash:  # A refused run writes no report, JUnit's included.
        config.pluginmanager.unregister(config.stash[xml_key])
        del config.stash[xml_key]  # As junitxml's own pytest_unconfigure does.
    pytest.exit("--impl: the port did not load; no check ran", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    if error is not None:
        first, _, dump = _crash_text(node).partition("\n")
        if first == json.dumps({"kind": _LOADING}):  # It died loading the port (_load_named_port).
            _refuse(node.config, f"--impl {node.config.stash[_SPEC]}: "
                                 + isolation.describe_load_failure(dump, _exit_status(node)))
    info = getattr(node, "workeroutput", {}).get("conformance_impl")
    if info and _IMPL_INFO not in node.config.stash:
        node.config.stash[_IMPL_INFO] = info


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
    """A worker died while running `crashitem`: make it an error that says how (isolation.describe_crash)."""
    worker = report.node
    summary, details = isolation.describe_crash(_crash_text(worker), _exit_status(worker))
    report.longrepr = f"{summary}\n\n{details}".rstrip()
    report.conformance = {"crash": summary}
    # Checks waiting on this one (an owner of a situation) go on as if it had deviated.
    check = f"{pathlib.Path(crashitem.split('::')[0]).name}::{crashitem.split('::', 1)[-1]}"
    worker.config.stash[_OUTCOMES].write(crashitem, schema.ERROR, [], check, summary)


def _crash_text(worker) -> str:
    """What a dead worker left in its crash file (isolation.CrashFile), or ''."""
    try:
        with open(os.path.join(worker.config.stash[_CRASH_DIR], f"{worker.gateway.id}.crash"),
                  encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _exit_status(worker) -> Optional[int]:
    """The dead worker's exit status (negative: the signal), from execnet's Popen; None if unknown."""
    popen = getattr(getattr(worker.gateway, "_io", None), "popen", None)
    if popen is None:
        return None
    try:
        return popen.wait(timeout=10)
    except Exception:  # noqa: BLE001 - only a better message is at stake.
        return None


# --------------------------------------------------------------------------- where checks run


def pytest_report_header(config):
    profile, device = config.getoption("--profile"), config.getoption("--device")
    lines = [f"conformance {__version__}, spec {requirements.spec_version()}"]
    if _IMPL in config.stash:
        impl = config.stash[_IMPL]
        frameworks = ", ".join(f"{k} {v}" for k, v in sorted(impl.info.items()) if k not in ("implementation", "version"))
        lines += [f"implementation: {impl.name} = {impl.info.get('implementation')} {impl.info.get('version')}",
                  f"frameworks: {frameworks}"]
        if impl.unsupported:
            lines.append("not applicable here: " + "; ".join(f"{k} ({v})" for k, v in sorted(impl.unsupported.items())))
    else:
        workers = len(getattr(config.option, "tx", None) or ()) or 1
        lines.append(f"implementation: {config.stash[_SPEC]} (in {workers} worker process{'es' * (workers > 1)}; "
                     "its versions are in the summary)")
    lines.append(f"device: {device}; profile: {profile}; per-check time limit: {config.option.timeout:g} s")
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


def _is_check(item) -> bool:
    """A check of this suite (in a port's own run, its own tests are collected beside them)."""
    return pathlib.Path(str(item.fspath)).parent == TESTS


def _declaration(item) -> Optional[situations.Declaration]:
    return situations.Declaration.of(item) if _is_check(item) else None


# The devices of several replicas or processes, and the capabilities only they give.
MULTI_DEVICE_KINDS = ("replicas", "workers", "ps")
DEVICE_CAPABILITIES = ("replicas", "parameter_servers")


def _needs_the_device(item) -> bool:
    """Whether a check exists for a device of several replicas or processes (DIST-*)."""
    return _is_check(item) and any(capability in DEVICE_CAPABILITIES for marker in item.iter_markers("needs")
                                   for capability in marker.args)


# After pytest's own -k/-m deselection: the order and the owners are those of the checks that run.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    # Owners of a situation before the checks that use it (conformance/situations.py); owners first
    # also stops a -x run early on a fault only a focused check sees. The order changes no verdict.
    try:
        items[:] = situations.run_order(items, _declaration)
    except ValueError as exc:
        raise pytest.UsageError(f"conformance suite bug: {exc}") from None
    if config.getoption("--first-pass") and parse_device(config.getoption("--device")).kind in MULTI_DEVICE_KINDS:
        # A -x first pass on several replicas or processes: the checks that exist for the device
        # first (each example there costs about a second, so the ~25 checks before them would
        # spend a minute). Their owners have not run: the first pass waits for none (_focus).
        items.sort(key=lambda item: not _needs_the_device(item))
    owners: Dict[str, list] = {}
    for item in items:
        declaration = _declaration(item)
        for name in (declaration.owns if declaration else ()):
            owners.setdefault(name, []).append(item.nodeid)
    config.stash[_OWNERS] = owners
    config.stash[_CHECK_IDS] = {item.nodeid: check_id(item) for item in items if _is_check(item)}
    expected = config.stash[_EXPECTED]
    known = {check_id(item) for item in items if _is_check(item)}
    stale = sorted(set(expected) - known)
    # `python -m conformance` checked the file before starting; a port's own run checks it here.
    if stale and not hasattr(config, "workerinput") and not config.getoption("keyword") and not config.getoption("markexpr"):
        raise pytest.UsageError(f"expectations file lists checks that do not exist: {stale}")
    for item in items:
        if not _is_check(item):
            continue
        for requirement_id in _requirement_ids(item):
            requirements.get(requirement_id)  # An unknown id is a bug in the suite: fail loudly.
        entry = expected.get(check_id(item))
        if entry:
            item.add_marker(pytest.mark.xfail(reason=f"{entry.get('requirement', '')}: {entry['reason']}", strict=False))


def pytest_collection_finish(session):
    if _runs_checks(session.config):
        session.config.stash[_SELECTED] = sum(1 for item in session.items if _is_check(item))


def pytest_runtest_setup(item):
    if not _is_check(item):
        return
    config = item.config
    if _CRASH in config.stash:
        config.stash[_CRASH].reset()
    if _IMPL_ERROR in config.stash:
        raise RuntimeError(f"the implementation {config.stash[_SPEC]!r} could not be set up: {config.stash[_IMPL_ERROR]}")
    impl = config.stash[_IMPL]
    impl.require(*_needed_capabilities(item))
    if any(requirements.get(r).scope == "tf_keras" for r in _requirement_ids(item)):
        impl.require("tf_keras_api")
    _focus(item, impl)


def _focus(item, impl: Implementation) -> None:
    """Leave out of the check's cases every situation it uses whose owner deviated; block it on
    one it relies on (conformance/situations.py). Owners running in another worker are waited for."""
    config = item.config
    declaration = situations.Declaration.of(item)
    needed = declaration.needed()
    owners = {name: [n for n in config.stash.get(_OWNERS, {}).get(name, ()) if n != item.nodeid] for name in needed}
    waiting = sorted({n for nodeids in owners.values() for n in nodeids})
    # A first pass waits for no owner: its order may put a check first (device checks), and its
    # report is partial anyway; the full pass waits, and its verdicts are the run's.
    wait_s = 0.0 if config.getoption("--first-pass") else OWNER_WAIT_S
    outcomes, missing = config.stash[_OUTCOMES].wait(waiting, wait_s)
    found = situations.deviations(needed, owners, outcomes)
    forced = [name for name in _avoid_option(config) if name in needed and name not in {d.situation for d in found}]
    found += [situations.Deviation(name, situations.get(name).requirement, "--avoid", "failed") for name in forced]
    blocking = [d for d in found if d.situation in declaration.relies_on]
    deviating_kinds = {d.situation for d in found if d.situation in situations.KINDS}
    if (declaration.owns or declaration.uses or declaration.relies_on) and not any(
            f"kind:{k}" not in deviating_kinds for k in impl.expressible.kinds):
        blocking += [d for d in found if d.situation in deviating_kinds]  # No optimizer kind left to draw.
    avoided = [d for d in found if d not in blocking]
    item.stash[_FOCUS] = {
        "avoided": [{"situation": d.situation, "requirement": d.requirement, "reason": d.describe()} for d in avoided],
        "blocked_by": sorted({d.requirement for d in blocking}),
        # Owners that had not finished in OWNER_WAIT_S: their situations were not left out.
        "unknown": [config.stash[_CHECK_IDS].get(n, n) for n in missing],
    }
    if blocking:
        pytest.skip(BLOCKED_PREFIX + ", ".join(sorted({d.requirement for d in blocking})) + ": the check cannot "
                    "do without " + "; ".join(d.describe() for d in blocking))
    impl.focus(declaration, avoid=[d.situation for d in avoided])


def _avoid_option(config) -> list:
    return [name.strip() for name in (config.getoption("--avoid") or "").split(",") if name.strip()]


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item, settings):
    watchdog = item.config.stash.get(_WATCHDOG, None)
    if watchdog is None or not _is_check(item):
        return None  # pytest-timeout's own timer.
    watchdog.arm(item, settings.timeout)
    return True


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_cancel_timer(item):
    watchdog = item.config.stash.get(_WATCHDOG, None)
    if watchdog is None or not _is_check(item):
        return None
    watchdog.cancel()
    return True


def _end_in_process_run(config, record: dict) -> None:
    """A check timed out with no worker process to lose (a port's run without pytest-xdist): its
    error and the results so far go into a partial report, then the process ends."""
    summary, details = isolation.describe_crash(json.dumps(record), None)
    results = config.stash[_RESULTS]
    results[record["check"]] = {**_new_record(record["check"], None, []), "status": schema.ERROR,
                                "message": f"{summary}\n\n{details}"}
    _write_reports(config, partial_reason=f"ended by a check's timeout ({record['check']}); run with -n 1 "
                                          "(pytest-xdist) so that the run goes on without it")
    sys.stderr.write(f"\nconformance: {record['check']}: {summary}\n")
    sys.stderr.flush()
    os._exit(1)


# Reasons of the generated examples the current check had to reject as inexpressible.
_UNSUPPORTED_EXAMPLES: Counter = Counter()
# Cited requirements the current check could not verify: requirement -> (blocked_by, reason).
_UNVERIFIED: Dict[str, tuple] = {}


def unverified(requirement: str, situation: str) -> None:
    """The current check leaves `requirement` unchecked: its assertion needs `situation`, whose
    owner deviates. If the check passes, the report counts it as blocked for that requirement."""
    from conformance import situations as known

    owner = known.get(situation)
    _UNVERIFIED.setdefault(requirement, (owner.requirement, f"{requirement} left unchecked: it needs "
                                         f"{owner.description}, and {owner.requirement} deviates"))


def note_unsupported(reason: str) -> None:
    _UNSUPPORTED_EXAMPLES[reason] += 1


def _describe(reasons: Counter) -> str:
    return "; ".join(f"{n} x {reason}" for reason, n in sorted(reasons.items()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    _UNSUPPORTED_EXAMPLES.clear()
    _UNVERIFIED.clear()
    # An expected failure shrinks like any failure: shrinking finds the distinct failures a check
    # charges (hypothesis reports each), so skipping it would let an expectations file change verdicts.
    outcome = yield
    reasons = Counter(_UNSUPPORTED_EXAMPLES)
    item.stash[_REJECTED] = reasons
    item.stash[_UNVERIFIED_KEY] = [{"requirement": r, "blocked_by": b, "reason": why}
                                   for r, (b, why) in sorted(_UNVERIFIED.items())]
    exc = outcome.excinfo
    if exc is not None and isinstance(exc[1], Unsupported):
        outcome.force_exception(pytest.skip.Exception(NOT_APPLICABLE_PREFIX + str(exc[1])))
    elif exc is not None and reasons and isinstance(exc[1], Unsatisfiable):
        outcome.force_exception(pytest.skip.Exception(
            NOT_APPLICABLE_PREFIX + f"every generated example needed something {item.config.stash[_IMPL].name} "
            f"cannot express: {_describe(reasons)}"))


_REJECTED = pytest.StashKey[Counter]()
_UNVERIFIED_KEY = pytest.StashKey[list]()


# --------------------------------------------------------------------------- verdicts


_FALSIFYING = re.compile(r"((?:Falsifying (?:explicit )?example|Failing test case):.*?)(?:\n\s*\n|\Z)", re.S)
_BLOB = re.compile(r"(@reproduce_failure\([^)]*\))")
_PASSING = re.compile(r"(\d+) passing,")


def _python() -> str:
    """How the reproduce command names this interpreter: `python` when that is this one."""
    found = shutil.which("python")
    if found and os.path.realpath(found) == os.path.realpath(sys.executable):
        return "python"
    return shlex.quote(sys.executable)


def _reproduce(config, item, blob: Optional[str]) -> str:
    """A command that reruns just this check, as printed: quoted, with the run's options and PYTHONPATH."""
    env = f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} " if os.environ.get("PYTHONPATH") else ""
    if not config.getoption("--conformance-runner"):
        return f"{env}{_python()} -m pytest {shlex.quote(item.nodeid)}"
    words = ["--impl", config.stash[_SPEC], "--device", config.getoption("--device"),
             "--profile", config.getoption("--profile")]
    if config.getoption("--expectations"):
        words += ["--expectations", config.getoption("--expectations")]
    if config.option.timeout != TIMEOUTS[config.getoption("--profile")]:
        words += [f"--timeout={config.option.timeout:g}"]
    seed = config.getoption("hypothesis_seed", None)
    if seed is not None:
        words += [f"--hypothesis-seed={seed}"]
    avoided = [a["situation"] for a in item.stash.get(_FOCUS, {}).get("avoided", [])]
    if avoided:  # The run left these out of the check's cases (their owners deviated): so does this.
        words += ["--avoid", ",".join(avoided)]
    words += ["--check", check_id(item)]
    command = f"{env}{_python()} -m conformance " + " ".join(shlex.quote(str(w)) for w in words)
    return command + (f"   # or decorate the test with {blob}" if blob else "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Where the check ran: what only the item knows goes onto the report (`report.conformance`,
    plain data, so pytest-xdist carries it to the controller), which keeps the verdicts."""
    report = (yield).get_result()
    if not _is_check(item):
        return
    config = item.config
    meta = {"id": check_id(item), "area": _area(item.module.__name__), "requirements": _requirement_ids(item)}
    # An error of the adapter or the suite (conformance/harness.py) is no verdict on the implementation.
    from conformance.harness import is_harness_error

    if call.excinfo is not None and is_harness_error(call.excinfo.value):
        meta["harness_error"] = True
    if report.when == "teardown":
        stats = getattr(item, "hypothesis_statistics", None)
        if stats:
            meta["examples_run"] = sum(int(n) for n in _PASSING.findall(stats))
        rejected = item.stash.get(_REJECTED, None)
        if rejected:
            meta["rejected"] = _describe(rejected)
        if item.stash.get(_UNVERIFIED_KEY, None):
            meta["unverified"] = item.stash[_UNVERIFIED_KEY]
        if _IMPL in config.stash:
            config.stash[_IMPL_INFO] = _impl_info(config.stash[_IMPL])
    focus = item.stash.get(_FOCUS, None)
    if focus:
        meta["avoided"] = focus["avoided"]
        meta["blocked_by"] = focus["blocked_by"]
        if focus["unknown"]:
            meta["unknown_owners"] = focus["unknown"]
    if call.excinfo is not None and (report.failed or hasattr(report, "wasxfail")) and report.when == "call":
        meta["charged"] = _charged(call.excinfo.value, meta["requirements"])
    if report.failed:
        text = report.longreprtext
        example = _FALSIFYING.search(text)
        blob = _BLOB.search(text)
        meta["example"] = example.group(1).strip() if example else None
        meta["reproduce"] = _reproduce(config, item, blob.group(1) if blob else None)
        spec_lines = [f"{r}: {requirements.get(r).text}" for r in meta["requirements"]]
        report.sections.append((
            "conformance",
            "Fails " + ", ".join(meta.get("charged") or meta["requirements"]) + "\n" + "\n".join(spec_lines)
            + f"\nReproduce: {meta['reproduce']}",
        ))
    report.conformance = meta
    _note_outcome(item, report, meta)


def _charged(exc: BaseException, cited: list) -> list:
    """The requirements a failure is charged to: those its assertions name (checks.charged_to),
    else the check's first cited requirement."""
    grouped = getattr(exc, "exceptions", None)
    found = []
    for e in (grouped if isinstance(grouped, (tuple, list)) and grouped else [exc]):
        requirement = getattr(e, "conformance_requirement", None) or (cited[0] if cited else None)
        if requirement and requirement not in found:
            found.append(requirement)
    return found


def _note_outcome(item, report, meta) -> None:
    """The check's outcome for the checks that use its situations: the call phase's, else the
    setup's; written when the check is over (teardown)."""
    config = item.config
    if report.when in ("setup", "call"):
        if meta.get("harness_error") or (report.failed and report.when == "setup"):
            outcome = (schema.ERROR, [])
        elif hasattr(report, "wasxfail") and report.skipped:
            outcome = (schema.EXPECTED_FAILURE, meta.get("charged", []))
        elif report.failed:
            outcome = (schema.FAILED, meta.get("charged", []))
        elif report.skipped:
            outcome = ("skipped", [])
        else:
            outcome = (schema.PASSED, [])
        if report.when == "call" or not report.passed:
            message = (report.longreprtext.splitlines() or [""])[-1][:300]
            item.stash[_OUTCOME] = outcome + (message,)
    elif report.when == "teardown" and _OUTCOMES in config.stash:
        status, charged, message = item.stash.get(_OUTCOME, (schema.ERROR, [], "no outcome"))
        config.stash[_OUTCOMES].write(item.nodeid, status, charged, meta["id"], message)


def _area(module_name: str) -> str:
    return module_name.rsplit(".", 1)[-1].removeprefix("test_")


def _impl_info(impl: Implementation) -> dict:
    return {"name": impl.name, "info": impl.info}


def _new_record(check: str, area: Optional[str], requirement_ids: list) -> dict:
    return {"id": check, "area": area or _area(check.split("::")[0].removesuffix(".py")),
            "requirements": requirement_ids, "status": schema.PASSED, "reason": None, "message": None,
            "example": None, "reproduce": None, "examples_run": None, "duration_s": 0.0,
            "charged": [], "blocked_by": [], "avoided": []}


def _message(report, meta) -> str:
    if meta.get("crash"):  # A dead worker: the whole text is ours (isolation.describe_crash).
        return str(report.longrepr)[:4000]
    text = report.longreprtext
    return "\n".join(line[2:] for line in text.splitlines() if line.startswith("E "))[:4000] or text[-4000:]


class _Verdicts:
    """Where verdicts are kept: the controller of an xdist run (reports arrive from the workers), or
    the one process of a run without one. Every phase of a check updates its record."""

    def __init__(self, config):
        self.config = config

    def pytest_runtest_logreport(self, report):
        meta = getattr(report, "conformance", None)
        if meta is None:
            return  # Not one of the suite's checks (a port's own test in its own run).
        results = self.config.stash[_RESULTS]
        record = results.get(report.nodeid)
        if record is None:
            check = meta.get("id") or f"{pathlib.Path(report.nodeid.split('::')[0]).name}::{report.nodeid.split('::', 1)[-1]}"
            record = results[report.nodeid] = _new_record(check, meta.get("area"), meta.get("requirements", []))
        record["duration_s"] += report.duration
        for key in ("avoided", "blocked_by", "charged", "unverified"):
            if meta.get(key):
                record[key] = meta[key]
        if meta.get("unknown_owners"):
            record["unknown_owners"] = meta["unknown_owners"]
        if meta.get("examples_run") is not None:
            record["examples_run"] = meta["examples_run"]
        if meta.get("rejected") and record["status"] == schema.PASSED and report.when == "teardown":
            record["reason"] = f"examples not applicable (rejected, not counted): {meta['rejected']}"
        wasxfail = getattr(report, "wasxfail", None)
        if meta.get("harness_error"):  # Never a verdict, expected or not: the suite or adapter broke.
            record.update(status=schema.ERROR, message=_message(report, meta), reproduce=meta.get("reproduce"))
        elif report.skipped and wasxfail is not None:
            record.update(status=schema.EXPECTED_FAILURE, reason=wasxfail)
        elif report.passed and wasxfail is not None and report.when == "call":
            record.update(status=schema.UNEXPECTED_PASS, reason=wasxfail)
        elif report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, (tuple, list)) else str(longrepr)
            reason = reason.removeprefix("Skipped: ")
            if reason.startswith(NOT_APPLICABLE_PREFIX):
                record.update(status=schema.NOT_APPLICABLE, reason=reason[len(NOT_APPLICABLE_PREFIX):])
            elif reason.startswith(BLOCKED_PREFIX):
                record.update(status=schema.BLOCKED, reason=reason)
            else:  # A check may only be left out as not applicable, with its reason.
                record.update(status=schema.ERROR, message=f"skipped without a not-applicable reason: {reason}")
        elif report.failed:
            record.update(status=schema.FAILED if report.when == "call" else schema.ERROR, message=_message(report, meta),
                          example=meta.get("example"), reproduce=meta.get("reproduce"))
        if record["status"] not in (schema.FAILED, schema.EXPECTED_FAILURE):
            record["charged"] = []

    @pytest.hookimpl(tryfirst=True)  # Before junitxml writes its file: a partial run's goes elsewhere.
    def pytest_sessionfinish(self, session, exitstatus):
        if _REFUSED in self.config.stash:
            return
        results = self.config.stash[_RESULTS]
        if results:
            _write_reports(self.config, partial_reason=_partial_reason(session))
        else:  # No check ran: never let junitxml's empty file take a full run's name.
            _move_junit(self.config, report_path(self.config, partial=True).with_suffix(".xml"))
        # pytest-xdist ends a -x run by interrupting it; the verdict is the failure (exit 1), not
        # an interruption (which `python -m conformance` reports as 130).
        if exitstatus == pytest.ExitCode.INTERRUPTED and any(r["status"] in schema.FAILING for r in results.values()):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        # An error of the adapter or the suite is never excused: pytest counts an exception under an
        # expectations entry as an expected failure (exit 0), the report as an error (exit 1).
        if exitstatus == pytest.ExitCode.OK and any(r["status"] == schema.ERROR for r in results.values()):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    if _CRASH in session.config.stash:
        session.config.stash[_CRASH].enable()


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if hasattr(config, "workerinput") and _IMPL_INFO in config.stash:
        config.workeroutput["conformance_impl"] = config.stash[_IMPL_INFO]


def _first_pass_unshrunk(config) -> bool:
    """A -x first pass on several processes reports its failure as found: there each example is a
    round trip through the cluster (1-2 s on 2 cores), and shrinking would double the time to stop.
    The run without -x shrinks."""
    return bool(config.getoption("--first-pass")) and \
        parse_device(config.getoption("--device")).kind in DISTRIBUTED_MAX_EXAMPLES


def _partial_reason(session) -> Optional[str]:
    """Why this run's report is not a full run's (a selection, or a run stopped early), or None."""
    config = session.config
    why = []
    if config.getoption("--first-pass"):
        why.append(f"first pass: at most {FIRST_PASS_EXAMPLES} examples a property"
                   + (", failures not shrunk" if _first_pass_unshrunk(config) else ""))
    for option, flag in (("keyword", "-k"), ("markexpr", "-m")):
        if config.getoption(option):
            why.append(f"{flag} {config.getoption(option)!r}")
    if config.getoption("deselect", None):
        why.append("--deselect " + " ".join(config.getoption("deselect")))
    if config.getoption("--conformance-runner") and config.args != [str(TESTS)]:
        why.append("only " + ", ".join(pathlib.Path(a).name for a in config.args))
    selected = config.stash.get(_SELECTED, None)
    ran = len(config.stash[_RESULTS])
    if selected is not None and ran < selected:
        stop = session.shouldstop or session.shouldfail or "stopped early"
        why.append(f"{ran} of {selected} selected checks ran ({stop})")
    return "; ".join(why) or None


def report_path(config, partial: bool = False) -> pathlib.Path:
    directory = pathlib.Path(config.getoption("--report-dir") or pathlib.Path("reports") / "runs")
    stem = run_name(config.stash[_SPEC], config.getoption("--device"))
    return directory / f"{stem}{'.partial' if partial and not config.getoption('--replace-report') else ''}.json"


def _write_reports(config, partial_reason: Optional[str]) -> None:
    report = _report(config, partial_reason)
    path = report_path(config, partial=partial_reason is not None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    config.stash[_REPORT] = (path, report)
    if partial_reason is not None:
        _move_junit(config, path.with_suffix(".xml"))  # The JUnit file follows the JSON report's name.


def _move_junit(config, path: pathlib.Path) -> None:
    """Where pytest's junitxml writes its file (it writes at the end of the session, after us)."""
    from _pytest.junitxml import xml_key

    junit = config.stash.get(xml_key, None)
    if junit is not None:
        junit.logfile = str(path)


def _implementation(config) -> dict:
    if _IMPL in config.stash:
        return _impl_info(config.stash[_IMPL])
    return config.stash.get(_IMPL_INFO, None) or {"name": config.stash[_SPEC], "info": {}}


def _report(config, partial_reason: Optional[str]) -> dict:
    impl = _implementation(config)
    info = impl["info"]
    checks = sorted(config.stash[_RESULTS].values(), key=lambda c: c["id"])
    requirements_section = schema.requirements_section(checks, {
        rid: {"area": r.area, "scope": r.scope, "text": r.text} for rid, r in requirements.all_requirements().items()
    })
    return {
        "schema_version": schema.SCHEMA_VERSION,
        "suite_version": __version__,
        "spec_version": requirements.spec_version(),
        "implementation": {"name": impl["name"], "implementation": info.get("implementation"),
                           "version": info.get("version")},
        "frameworks": {k: v for k, v in info.items() if k not in ("implementation", "version")},
        "device": config.getoption("--device"),
        "profile": config.getoption("--profile"),
        "seed": "derandomized" if settings.default.derandomize else config.getoption("hypothesis_seed", None),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m conformance" if config.getoption("--conformance-runner") else "python -m pytest"]
                            + [shlex.quote(a) for a in sys.argv[1:]]),
        "expectations": config.getoption("--expectations"),
        "partial": partial_reason is not None,
        "partial_reason": partial_reason,
        "timeout_s": config.option.timeout,
        "summary": schema.summarize(checks),
        "checks": checks,
        "requirements": requirements_section,
        "verdicts": schema.verdict_counts(requirements_section),
        "duration_s": round(time.time() - config.stash[_STARTED], 2),
    }


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
        if check["status"] in (schema.NOT_APPLICABLE, schema.EXPECTED_FAILURE, schema.UNEXPECTED_PASS, schema.BLOCKED):
            write(f"    {check['status']}: {check['reason']}")
        if check.get("avoided"):
            write("    cases without " + "; ".join(a["reason"] for a in check["avoided"]))
        elif check["status"] == schema.ERROR:
            write(f"    error: {check['message'].splitlines()[0] if check['message'] else ''}")
    write("")
    # What the implementation meets, requirement by requirement; the exit code is the gating status.
    verdicts = report["verdicts"]
    write("verdicts: " + ", ".join(f"{verdicts[v]} {v.replace('_', ' ')}" for v in verdicts if verdicts[v]))
    for rid, entry in report["requirements"].items():
        if entry["verdict"] in ("deviates", "blocked"):
            write(f"  {rid} {entry['verdict']}: {entry['reason']}"[:300])
    unexpected = [c["id"] for c in report["checks"] if c["status"] == schema.UNEXPECTED_PASS]
    if unexpected:
        write(f"UNEXPECTED PASS (remove from the expectations file): {', '.join(unexpected)}")
    implementation = report["implementation"]
    frameworks = ", ".join(f"{k} {v}" for k, v in sorted(report["frameworks"].items()))
    write(f"implementation: {implementation['name']} = {implementation['implementation']} {implementation['version']}"
          + (f" ({frameworks})" if frameworks else ""))
    if report["partial"]:
        write(f"partial run: {report['partial_reason']}")
    write(f"report: {path} ({implementation['name']} on {report['device']}, profile {report['profile']})")
