"""--device workers:N and ps:W: the follower processes are the run's own, and die with it; a
parameter server loads only TensorFlow's server where it can.

A worker that dies mid-run is reported, by name, in the check it broke, and no process of the
run survives it, whatever happened (the followers are found by a marker in their environment,
which they inherit from the run).
"""

import json
import os
import pathlib
import pickle
import socket
import subprocess
import sys
import time
import uuid

import pytest

from conformance_subprocess import REPO, run_conformance


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


def _serve_one(script: str) -> tuple:
    """Runs `script` as one parameter-server follower (adapters/cluster.py) of a one-task cluster,
    as Cluster._spawn starts one; returns (its messages up to ready, its initial environment, whether
    its server accepted a connection). The follower ends when told to."""
    from multiprocessing.connection import Listener

    from adapters import cluster

    authkey = os.urandom(16)
    with Listener((cluster.LOOPBACK, 0), authkey=authkey) as listener:
        port = cluster.free_ports(1)[0]
        env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3",
               cluster.ENV: json.dumps({"address": list(listener.address), "authkey": authkey.hex(), "kind": "ps",
                                        "job": "ps", "index": 0, "parent": os.getpid()}),
               "TF_CONFIG": json.dumps({"cluster": {"ps": [f"{cluster.LOOPBACK}:{port}"]}, "task": {"type": "ps", "index": 0}})}
        env.pop(cluster.FULL_IMPORT_ENV, None)
        process = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=REPO)
        try:
            listener._listener._socket.settimeout(120)  # As Cluster.wait_until bounds it.
            connection = listener.accept()
            messages = [connection.recv() for _ in range(3)]  # Who it is, then its two stages.
            environ = pathlib.Path(f"/proc/{process.pid}/environ").read_bytes()
            with socket.create_connection((cluster.LOOPBACK, port), timeout=10):
                serving = True
            connection.send_bytes(pickle.dumps(([], None)))  # Quit.
            assert process.wait(timeout=30) == 0
        finally:
            process.kill()
            process.wait()
    return messages, environ, serving


@pytest.mark.skipif(not pathlib.Path("/proc").is_dir(), reason="reads the follower's environment through /proc (Linux)")
def test_a_parameter_server_loads_only_the_server_and_else_all_of_tensorflow():
    """ps:W servers skip TensorFlow's Python API (cluster._server_lib); where that lean load fails,
    the process starts again with the full import, and serves all the same."""
    from adapters import cluster

    ready = [("ps", 0), ("stage", "imported"), ("stage", "ready")]
    messages, environ, serving = _serve_one("from adapters import cluster; cluster.follow()")
    assert messages == ready and serving
    assert cluster.FULL_IMPORT_ENV.encode() not in environ, "the lean load failed with this TensorFlow"
    failing = "from adapters import cluster; cluster._lean_server_lib = lambda: 1 / 0; cluster.follow()"
    messages, environ, serving = _serve_one(failing)
    assert messages == ready and serving
    assert f"{cluster.FULL_IMPORT_ENV}=the lean load failed: ZeroDivisionError".encode() in environ
