"""--device workers:N and ps:W: the follower processes are the run's own, and die with it; a
parameter server loads only TensorFlow's server where it can.

A worker that dies mid-run is reported, by name, in the check it broke, and no process of the
run survives it, whatever happened (the followers are found by a marker in their environment,
which they inherit from the run).
"""

import os
import pathlib
import socket
import sys
import time
import uuid

import pytest

from conformance_subprocess import run_conformance


def _processes_marked(marker: str) -> list:
    """Pids of this user's processes whose environment holds `marker`."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:  # Gone meanwhile, or another user's.
            continue
    return found


def _survivors(marker: str, grace_s: float = 15.0) -> list:
    deadline = time.monotonic() + grace_s
    while _processes_marked(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    return _processes_marked(marker)


@pytest.mark.skipif(not pathlib.Path("/proc").is_dir(), reason="finds processes through /proc (Linux)")
def test_a_dead_worker_is_reported_and_no_process_survives(tmp_path):
    """Worker 1 kills itself in its second step: the check fails naming worker 1 as dead, and
    neither the run nor any follower outlives it."""
    marker = f"CONFORMANCE_TEST_RUN={uuid.uuid4().hex}"
    name, value = marker.split("=")
    run = run_conformance("tests.conformance.canaries:KillsWorkerOne", ["-q", "-p", "no:logging", "-k",
                          "replicas_behave_like_one_device"], tmp_path, device="workers:2", timeout=240,
                          env={name: value})
    assert run.returncode == 1, run.describe()
    failed = run.checks_with("failed")
    assert [c["id"] for c in failed] == ["test_distribution.py::test_replicas_behave_like_one_device_with_summed_gradients"], run.describe()
    message = failed[0]["message"]
    assert "worker 1" in message and ("died" in message or "is dead" in message), message
    assert _survivors(marker) == [], f"processes of the run survived it:\n{run.describe()}"


@pytest.mark.skipif(not pathlib.Path("/proc").is_dir(), reason="finds processes through /proc (Linux)")
@pytest.mark.parametrize("device", ["workers:2", "ps:2"])
def test_the_followers_end_with_the_run(tmp_path, device):
    """A passing run on a multi-process device leaves no process behind."""
    marker = f"CONFORMANCE_TEST_RUN={uuid.uuid4().hex}"
    name, value = marker.split("=")
    run = run_conformance("reference", ["-q", "-p", "no:logging", "-k", "counter_advances_once_per_step"], tmp_path,
                          device=device, timeout=240, env={name: value})
    assert run.returncode == 0, run.describe()
    assert run.checks_with("passed"), run.describe()
    assert _survivors(marker) == [], f"processes of the run survived it:\n{run.describe()}"


def _servers_started() -> list:
    """Starts a ps cluster of one worker and one parameter server; returns each process's initial
    environment, once both serve on their ports."""
    from adapters.cluster import LOOPBACK, Cluster

    cluster = Cluster.start_servers(1, 1)
    try:
        cluster.wait_until("imported")
        cluster.wait_until("ready")
        for address in cluster.spec["worker"] + cluster.spec["ps"]:
            socket.create_connection((LOOPBACK, int(address.rsplit(":", 1)[1])), timeout=10).close()
        return [pathlib.Path(f"/proc/{pid}/environ").read_bytes() for pid in cluster.pids()]
    finally:
        cluster.shutdown()


@pytest.mark.skipif(not pathlib.Path("/proc").is_dir(), reason="reads the followers' environment through /proc (Linux)")
def test_a_parameter_server_loads_only_the_server_and_else_all_of_tensorflow(monkeypatch):
    """ps:W servers skip TensorFlow's Python API (cluster._server_lib); where that lean load fails,
    the process starts again with the full import, and serves all the same."""
    from adapters import cluster

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.delenv(cluster.FULL_IMPORT_ENV, raising=False)
    for environ in _servers_started():
        assert cluster.FULL_IMPORT_ENV.encode() not in environ, "the lean load failed with this TensorFlow"
    failing = "from adapters import cluster; cluster._lean_server_lib = lambda: 1 / 0; cluster.follow()"
    monkeypatch.setattr(cluster.Cluster, "follower_argv", (sys.executable, "-c", failing))
    for environ in _servers_started():
        assert f"{cluster.FULL_IMPORT_ENV}=the lean load failed: ZeroDivisionError".encode() in environ
