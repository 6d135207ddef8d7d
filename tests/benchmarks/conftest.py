"""Collection and run metadata for the benchmarks in this folder.

The benchmark modules are named `bench_*.py`, which pytest's default
`python_files` (`test_*.py`, `*_test.py`) never matches, so a plain `pytest`
run (testpaths = ["tests"]) never collects or imports them. They are collected
only when the command line names this folder or a path inside it:

    pytest -o addopts="" tests/benchmarks --benchmark-json=bench.json

`-o python_files=bench_*.py` works too (pytest then collects them itself and the
hook below steps aside, so nothing is collected twice).

The JSON written by `--benchmark-json` gains, under "composite_bench": library
versions, the load average at the start and end of the run (the numbers are only
as quiet as the machine was), the run's wall time, and every case that was not
measured with its reason. `python -m reports.benchmarks` reads all of it.
"""

from __future__ import annotations

import fnmatch
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
BENCH_GLOB = "bench_*.py"
VERSIONED = (
    "tensorflow",
    "tf-keras",
    "keras",
    "tensorflow-recommenders",
    "numpy",
    "pytest",
    "pytest-benchmark",
)


def _names_this_folder(config: pytest.Config) -> bool:
    """True when a command-line path is this folder or lies inside it."""
    for arg in config.args:
        path = Path(arg.split("::", 1)[0])
        path = (path if path.is_absolute() else Path(config.invocation_params.dir) / path).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if not fnmatch.fnmatch(file_path.name, BENCH_GLOB):
        return None
    config = parent.config
    # pytest's python plugin already collects named files and python_files matches.
    if parent.session.isinitpath(file_path) or any(
        fnmatch.fnmatch(file_path.name, pattern) for pattern in config.getini("python_files")
    ):
        return None
    if not _names_this_folder(config):
        return None  # Benchmarks are opt-in: a run over all of tests/ skips them.
    return pytest.Module.from_parent(parent, path=file_path)


# ------------------------------------------------------------------ run metadata

_RUN: dict = {"not_measured": []}


def _versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def pytest_sessionstart(session):
    _RUN["started"] = time.time()
    _RUN["loadavg_start"] = list(os.getloadavg())


def pytest_collection_modifyitems(items):
    for item in items:  # So a skipped case's report says which case it was.
        if fnmatch.fnmatch(item.path.name, BENCH_GLOB) and hasattr(item, "callspec"):
            item.user_properties.append(("case", dict(item.callspec.params)))


def pytest_runtest_logreport(report):
    """Remember each benchmark case skipped as not applicable, with its reason."""
    case = dict(report.user_properties).get("case")
    if not report.skipped or case is None:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    _RUN["not_measured"].append(
        {"nodeid": report.nodeid, "case": case, "reason": reason.removeprefix("Skipped: ")}
    )


def _logical_cpus():
    tf = sys.modules.get("tensorflow")  # Only if the run imported it: never import it here.
    return len(tf.config.list_logical_devices("CPU")) if tf is not None else None


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["composite_bench"] = {
        "versions": _versions(),
        "cpu_count": os.cpu_count(),
        # tests/conftest.py may split the CPU into logical devices; record what the run had.
        "tf_logical_cpus": _logical_cpus(),
        "loadavg_start": _RUN.get("loadavg_start"),
        "loadavg_end": list(os.getloadavg()),
        "wall_s": round(time.time() - _RUN.get("started", time.time()), 1),
        "command": " ".join(config.invocation_params.args),
        "not_measured": _RUN["not_measured"],
    }
