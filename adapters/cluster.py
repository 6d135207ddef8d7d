"""Local TensorFlow clusters for `--device workers:N` and `--device ps:W`: the follower processes.

`workers:N` (tf.distribute.MultiWorkerMirroredStrategy): the suite's own process is worker 0 and
`Cluster.start_workers` starts workers 1..N-1, each a process of the same Python running
`python -m adapters.cluster`. MultiWorkerMirroredStrategy needs every worker to run the same
program, so each follower replays every call the suite makes on worker 0 (building a composite,
a step with per-worker gradients, reading the variables) and answers with its own result, which
worker 0 compares with its own (`Cluster.gather`).

`ps:W` (tf.distribute.ParameterServerStrategy): `Cluster.start_servers` starts W workers and 2
parameter servers, each a `tf.distribute.Server` in its own process; the suite's process is the
coordinator, so nothing is replayed.

Every follower is started in one process group, on loopback ports chosen free at start (bound to
port 0 by the OS), and dies with the suite's process: it exits when its connection to worker 0
closes, the kernel kills it when its parent dies (PR_SET_PDEATHSIG), and `Cluster.shutdown`
(registered with atexit) asks it to quit, then kills the group. Every wait on a follower is
bounded; a follower that dies or does not answer is reported as `WorkerLost`, naming it.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib
import importlib.util
import json
import os
import pickle
import secrets
import signal
import socket
import subprocess
import sys
import time
import types
from multiprocessing.connection import Client, Listener
from typing import Any, List, Optional, Sequence

ENV = "CONFORMANCE_CLUSTER_FOLLOWER"
# Set: a parameter-server process imports all of TensorFlow, not only its server (_server_lib).
FULL_IMPORT_ENV = "CONFORMANCE_CLUSTER_FULL_IMPORT"
# Importing TensorFlow in N+1 processes at once took 30 s on the 2-core development machine.
START_TIMEOUT_S = float(os.environ.get("CONFORMANCE_CLUSTER_START_TIMEOUT", 300))
# A follower's answer to one replayed call: eager steps take milliseconds, the first ones trace.
ANSWER_TIMEOUT_S = float(os.environ.get("CONFORMANCE_CLUSTER_ANSWER_TIMEOUT", 120))
# TensorFlow's own bounds, so that no collective or shutdown waits forever on a dead peer.
COLLECTIVE_TIMEOUT_S = 60
HEARTBEAT_TIMEOUT_MS = 10_000
REGISTER_TIMEOUT_MS = 300_000
SHUTDOWN_BARRIER_TIMEOUT_MS = 5_000
LOOPBACK = "127.0.0.1"


class WorkerLost(BaseException):
    """A follower died, or did not answer in time.

    A BaseException, like KeyboardInterrupt: it ends the check at once, as a failure naming the
    worker. It says nothing of the example being run, so hypothesis must not catch it, replay the
    example or shrink it (it would then read the cluster's state as flaky data generation)."""


def free_ports(count: int) -> List[int]:
    """`count` distinct loopback ports the OS reports free (bound to port 0, then released)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def configure_coordination(job: str, tasks: int) -> None:
    """MultiWorkerMirroredStrategy's own coordination-service setup, with bounded timeouts.

    The strategy configures the service only when nothing did before, with TensorFlow's defaults
    (no bound on registration); the values here make a missing or dead peer an error in seconds.
    Must run before the strategy is created (private API: there is no public knob)."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{job}/replica:0/task:0",
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=job, num_tasks=tasks)],
        cluster_register_timeout_in_ms=REGISTER_TIMEOUT_MS, heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_MS,
        shutdown_barrier_timeout_in_ms=SHUTDOWN_BARRIER_TIMEOUT_MS,
    )


class Cluster:
    """The follower processes of one run, seen from the suite's process (worker 0 / coordinator)."""

    # What each follower process runs (follow()).
    follower_argv = (sys.executable, "-m", "adapters.cluster")

    def __init__(self, kind: str, spec: dict, roles: Sequence[tuple], payload: dict):
        self.kind = kind  # "workers" or "ps"
        self.spec = spec  # The cluster spec: job -> ["127.0.0.1:port", ...]
        self._authkey = secrets.token_bytes(16)
        self._listener = Listener((LOOPBACK, 0), authkey=self._authkey)
        self._processes: List[subprocess.Popen] = []
        self._names: List[str] = []
        self._connections: list = []
        self._pgid: Optional[int] = None
        self._pending_drops: List[int] = []
        atexit.register(self.shutdown)
        for job, index in roles:
            self._spawn(job, index, payload)

    # -- starting
    @classmethod
    def start_workers(cls, count: int, adapter_class: str) -> "Cluster":
        """Workers 1..count-1 of a MultiWorkerMirroredStrategy cluster whose worker 0 is this process."""
        ports = free_ports(count)
        spec = {"worker": [f"{LOOPBACK}:{port}" for port in ports]}
        return cls("workers", spec, [("worker", i) for i in range(1, count)],
                   {"adapter_class": adapter_class, "device": f"workers:{count}"})

    @classmethod
    def start_servers(cls, workers: int, parameter_servers: int) -> "Cluster":
        """`workers` worker and `parameter_servers` parameter-server processes; this one coordinates."""
        ports = free_ports(workers + parameter_servers)
        spec = {"worker": [f"{LOOPBACK}:{port}" for port in ports[:workers]],
                "ps": [f"{LOOPBACK}:{port}" for port in ports[workers:]]}
        roles = [("worker", i) for i in range(workers)] + [("ps", i) for i in range(parameter_servers)]
        return cls("ps", spec, roles, {})

    def _spawn(self, job: str, index: int, payload: dict) -> None:
        env = dict(os.environ)
        env[ENV] = json.dumps({"address": list(self._listener.address), "authkey": self._authkey.hex(),
                               "kind": self.kind, "job": job, "index": index, "parent": os.getpid(), **payload})
        env["TF_CONFIG"] = json.dumps({"cluster": self.spec, "task": {"type": job, "index": index}})
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # The same program: whatever this process can import (pytest's rootdir, an --impl's path).
        env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path and os.path.isdir(path))
        # One process group for every follower, so that shutdown can kill them all at once.
        process = subprocess.Popen(list(self.follower_argv), env=env, stdin=subprocess.DEVNULL,
                                   process_group=0 if self._pgid is None else self._pgid)
        if self._pgid is None:
            self._pgid = process.pid
        self._processes.append(process)
        self._names.append(f"{job} {index} (pid {process.pid})")

    def wait_until(self, stage: str) -> None:
        """Bounded wait for every follower to report `stage` ("imported": TensorFlow loaded;
        "ready": its strategy or server is up). Connections are accepted on the first call."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(self._connections) < len(self._processes):
            # Listener.accept has no timeout of its own; its listening socket (private) takes one.
            self._listener._listener._socket.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                connection = self._listener.accept()
            except (socket.timeout, OSError):
                self.check_alive()
                raise WorkerLost(f"not every follower connected within {START_TIMEOUT_S:.0f} s; "
                                 f"{len(self._connections)} of {len(self._processes)} did")
            index = connection.recv()  # Followers say which one they are.
            self._connections.append((index, connection))
        self._connections.sort(key=lambda pair: pair[0])
        for number, (_, connection) in enumerate(self._connections):
            answer = self._receive(number, connection, deadline - time.monotonic(), f"reaching stage {stage!r}")
            if answer != ("stage", stage):
                raise WorkerLost(f"{self._names[number]} failed while {stage!r}: {answer}")

    # -- replaying calls (workers)
    def send(self, call: tuple) -> None:
        """Sends one call to every follower (before worker 0 makes it, so collectives meet)."""
        self.check_alive()
        drops, self._pending_drops = self._pending_drops, []
        message = pickle.dumps((drops, call))
        for number, (_, connection) in enumerate(self._connections):
            try:
                connection.send_bytes(message)
            except OSError as exc:
                raise WorkerLost(f"{self._names[number]} cannot be reached: {exc}") from None

    def gather(self, what: str) -> list:
        """Each follower's answer to the last call: ("ok", result) or ("raised", type, message)."""
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        return [self._receive(number, connection, deadline - time.monotonic(), what)
                for number, (_, connection) in enumerate(self._connections)]

    def drop(self, key: int) -> None:
        """Followers forget instance `key` with the next call (called from a finalizer: no I/O here)."""
        self._pending_drops.append(key)

    def worker_name(self, number: int) -> str:
        return self._names[number]

    def _receive(self, number: int, connection, timeout: float, what: str):
        try:
            if connection.poll(max(0.0, timeout)):
                return connection.recv()
        except (EOFError, OSError):
            pass
        process = self._processes[number]
        try:
            process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            raise WorkerLost(f"{self._names[number]} did not answer within {ANSWER_TIMEOUT_S:.0f} s while "
                             f"{what}; it hangs") from None
        raise WorkerLost(f"{self._names[number]} died (exit code {process.returncode}) while {what}") from None

    def check_alive(self) -> None:
        for name, process in zip(self._names, self._processes):
            if process.poll() is not None:
                raise WorkerLost(f"{name} is dead (exit code {process.returncode}); the cluster cannot step")

    def pids(self) -> List[int]:
        return [process.pid for process in self._processes]

    # -- ending
    def shutdown(self) -> None:
        """Ask every follower to quit, wait a little, then kill the whole group. Idempotent."""
        for _, connection in self._connections:
            try:
                connection.send_bytes(pickle.dumps(([], None)))
                connection.close()
            except OSError:
                pass
        self._connections = []
        deadline = time.monotonic() + 10
        for process in self._processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        if self._pgid is not None:
            try:
                os.killpg(self._pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for process in self._processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        self._listener.close()


# --------------------------------------------------------------------------- follower side


def _die_with_parent(parent: int) -> None:
    """The kernel kills this process when its parent dies (Linux); elsewhere, the closed
    connection to worker 0 ends it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def _answer(result: Any):
    """What a follower sends back for a call's result: values, never TensorFlow objects."""
    from adapters.tf_keras import TfKerasInstance

    if isinstance(result, TfKerasInstance):
        return None
    return result


def follow() -> None:
    """Runs one follower: connect, load TensorFlow, start the strategy or server, then replay calls."""
    config = json.loads(os.environ[ENV])
    _die_with_parent(config["parent"])
    server_lib = _server_lib() if config["kind"] == "ps" else None
    connection = Client(tuple(config["address"]), authkey=bytes.fromhex(config["authkey"]))
    connection.send(config["index"] if config["kind"] == "workers" else (config["job"], config["index"]))
    try:
        if config["kind"] == "ps":
            _serve(connection, config, server_lib)
        else:
            _replay(connection, config)
    except (EOFError, OSError):
        pass  # Worker 0 is gone: so is the run.
    finally:
        os._exit(0)  # Skip TensorFlow's teardown: the cluster it would say goodbye to is gone.


def _server_lib():
    """TensorFlow's server module (`tf.distribute.Server` and `tf.train.ClusterSpec` are its Server
    and ClusterSpec), loaded without `tensorflow/__init__.py` where this TensorFlow allows it.

    A ps:W server runs no Python: the coordinator ships it functions, which the C++ runtime executes
    with the kernels that TensorFlow's native library registers when it loads. Its Python API is
    3 s of CPU a process; four servers importing it at once held a ps:2 run's start for 8 s on 2 cores,
    and load in 0.5 s each without it. Where the lean load fails (another TensorFlow's layout), the
    process starts again and imports all of TensorFlow (a half-loaded package cannot be unloaded);
    FULL_IMPORT_ENV forces that path, and says why it was taken."""
    if not os.environ.get(FULL_IMPORT_ENV):
        try:
            return _lean_server_lib()
        except Exception as exc:  # noqa: BLE001 - any failure of the shortcut: the full import.
            os.environ[FULL_IMPORT_ENV] = f"the lean load failed: {type(exc).__name__}: {exc}"[:500]
            sys.stderr.flush()
            os.execv(sys.executable, [sys.executable, "-m", "adapters.cluster"])
    import tensorflow  # noqa: F401 - the whole API, as any TensorFlow program loads it.
    from tensorflow.python.training import server_lib

    return server_lib


def _lean_server_lib():
    # An empty package stands for `tensorflow`, so that importing its submodule skips the package's
    # __init__ (the public API); the submodules themselves load as usual, from TensorFlow's directory.
    found = importlib.util.find_spec("tensorflow")
    package = types.ModuleType("tensorflow")
    package.__path__ = list(found.submodule_search_locations)
    package.__spec__ = found
    sys.modules["tensorflow"] = package
    from tensorflow.python.training import server_lib

    return server_lib


def _serve(connection, config, server_lib) -> None:
    connection.send(("stage", "imported"))
    cluster = json.loads(os.environ["TF_CONFIG"])["cluster"]
    server_lib.Server(server_lib.ClusterSpec(cluster), job_name=config["job"], task_index=config["index"],
                      protocol="grpc", start=True)
    connection.send(("stage", "ready"))
    while pickle.loads(connection.recv_bytes())[1] is not None:
        pass


def _replay(connection, config) -> None:
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # As in worker 0 (conformance.plugin).
    module_name, _, attr = config["adapter_class"].partition(":")
    from adapters.tf_keras import TfKerasAdapter

    target = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    adapter = TfKerasAdapter(target)
    connection.send(("stage", "imported"))
    adapter.set_device(config["device"], worker=config["index"])
    connection.send(("stage", "ready"))
    instances = {}
    while True:
        drops, call = pickle.loads(connection.recv_bytes())
        if call is None:
            return
        for key in drops:
            instances.pop(key, None)
        key, target_key, method, args, kwargs = call
        try:
            obj = adapter if target_key is None else instances[target_key]
            result = getattr(obj, method)(*args, **kwargs)
            if key is not None:
                instances[key] = result
            answer = ("ok", _answer(result))
        except Exception as exc:  # noqa: BLE001 - worker 0 compares it with its own outcome.
            answer = ("raised", type(exc).__name__, str(exc)[:2000])
        connection.send(answer)


if __name__ == "__main__":
    follow()
