"""The tf_keras adapter: drives any tf_keras legacy composite with TFRS's constructor.

`TfKerasAdapter(cls)` works for every class called as
`cls(optimizers_and_vars, name=..., **clip_kwargs)`: the reference, TFRS's
`CompositeOptimizer`, and a port author's class passed as `--impl module:Class`.
It uses only the API on the TFRS page, plus two private tf_keras hooks that read
state without creating it (`_iterations`, `_create_all_weights`).

Every call into the composite runs inside `protocol.implementation_call()`, so what the
composite raises reaches the suite as the implementation's refusal and anything this module
raises (converting a step, say) as an error of the adapter. Counters and slots are read from each
entry's own sub-optimizer, the one passed in its entry (or, after `from_config`, `optimizers[k]`
for entry k, INTEG-3's entry order), whatever else the composite's `optimizers` holds. Each
entry's var-list callable returns a list this module holds, so `regroup` changes what it returns.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import weakref
from typing import Any, Callable, Optional, Sequence

import numpy as np

from adapters import protocol
from adapters.protocol import CompositeSpec, DeviceUnavailable, Sparse, SubOptimizer, VariableSpec

# TFRS imports TensorFlow's tf.keras, which must be tf_keras (Keras 2) for its legacy optimizers.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

_legacy = tf_keras.optimizers.legacy
_OPTIMIZERS = {
    "sgd": _legacy.SGD,
    "adam": _legacy.Adam,
    "adagrad": _legacy.Adagrad,
    "rmsprop": _legacy.RMSprop,
    "adamax": _legacy.Adamax,
    "nadam": _legacy.Nadam,
    "ftrl": _legacy.Ftrl,
}
_SCHEDULES = {
    "exponential_decay": tf_keras.optimizers.schedules.ExponentialDecay,
    "piecewise_constant": tf_keras.optimizers.schedules.PiecewiseConstantDecay,
    "inverse_time_decay": tf_keras.optimizers.schedules.InverseTimeDecay,
}


def make_sub_optimizer(sub: SubOptimizer):
    """A tf_keras legacy optimizer for a framework-neutral description."""
    lr = sub.learning_rate
    if isinstance(lr, protocol.Schedule):
        lr = _SCHEDULES[lr.kind](**lr.params)
    return _OPTIMIZERS[sub.kind](learning_rate=lr, **dict(sub.hyper), **sub.clip.as_kwargs())


def _named_var_list(name: str, variables: list) -> Callable[[], list]:
    """A var-list callable with a stable `__name__`, so configs can name it (SPEC CONF-2).

    It returns a copy of `variables` as that list is when called: `regroup` edits the list in place.
    """

    def var_list():
        return list(variables)

    var_list.__name__ = var_list.__qualname__ = name
    return var_list


def _to_tf(grad, var):
    if grad is None:
        return None
    if isinstance(grad, Sparse):
        return tf.IndexedSlices(
            tf.constant(grad.values, dtype=var.dtype),
            tf.constant(grad.indices, dtype=tf.int64),
            dense_shape=tf.constant(var.shape, dtype=tf.int64),
        )
    return tf.constant(grad, dtype=var.dtype)


def _zeros_like(grad):
    if grad is None:
        return None
    if isinstance(grad, Sparse):
        return Sparse(grad.indices, np.zeros_like(grad.values))
    return np.zeros_like(grad)


def _read_counter(optimizer) -> int:
    """An optimizer's step counter, read without creating it.

    tf_keras creates `iterations` on first access and appends it to `weights`; reading it
    through the property would add state to an optimizer that never stepped.
    """
    if getattr(optimizer, "_iterations", None) is None and type(optimizer).iterations is _BASE_ITERATIONS:
        return 0
    return int(optimizer.iterations.numpy())


_BASE_ITERATIONS = _legacy.Optimizer.iterations


# --device ps:W: parameter servers, and how many shards a partitioned variable gets. Two shards
# over two servers: every variable of 2 rows or more is a ShardedVariable with one shard on each.
PARAMETER_SERVERS = 2
SHARDS = 2


def _sharded(var) -> bool:
    return isinstance(var, tf.__internal__.distribute.ShardedVariable)


def _parts(var) -> list:
    """A variable's shards (a ShardedVariable's), or the variable itself."""
    return list(var.variables) if _sharded(var) else [var]


class _Placement:
    """Where variables live and steps run: one device; a MirroredStrategy over this process's
    devices (replicas:N); a MultiWorkerMirroredStrategy of which this process is worker `worker`
    (workers:N; on worker 0, `cluster` holds the followers); or a ParameterServerStrategy that this
    process coordinates (ps:W)."""

    def __init__(self, device: str, strategy=None, *, worker: int = 0, cluster=None, coordinator=None):
        self.device = device
        self.kind = protocol.parse_device(device).kind
        self.replicas = protocol.summed_replicas(device)
        self.strategy, self.worker, self.cluster, self.coordinator = strategy, worker, cluster, coordinator
        if self.kind == "replicas" and self.replicas > 1:
            devices = [f"/cpu:{i}" for i in range(self.replicas)]
            gpus = tf.config.list_logical_devices("GPU")
            if len(gpus) >= self.replicas:
                devices = [d.name for d in gpus[: self.replicas]]
            self.strategy = tf.distribute.MirroredStrategy(devices)

    def scope(self):
        if self.strategy is not None:
            return self.strategy.scope()
        if self.device == "gpu":
            return tf.device("/GPU:0")
        return contextlib.nullcontext()


_LOCAL = _Placement("cpu")


def _structure(pairs) -> tuple:
    return tuple((i, None if g is None else (type(g).__name__, np.shape(getattr(g, "values", g)))) for i, g in pairs)


def _step_arguments(pairs, variables) -> list:
    """A step's gradients as tf.function arguments: a tensor, (values, indices), or None."""
    return [None if g is None else
            (tf.constant(g.values, variables[i].dtype), tf.constant(g.indices, tf.int64)) if isinstance(g, Sparse)
            else tf.constant(g, variables[i].dtype) for i, g in pairs]


def _name_gradient(grad, var, naming: str) -> list:
    """(gradient, variable) pairs for one variable's gradient, naming a partitioned variable's
    shards (naming "shards": what GradientTape gives) or the variable whole ("variable")."""
    dense_shape = tf.constant(var.shape.as_list(), tf.int64)
    if isinstance(grad, tuple):
        grad = tf.IndexedSlices(grad[0], grad[1], dense_shape=dense_shape)
    if not _sharded(var) or naming == "variable":
        return [(grad, var)]
    shards = _parts(var)
    if grad is None:
        return [(None, shard) for shard in shards]
    if not isinstance(grad, tf.IndexedSlices):
        return list(zip(tf.split(grad, [shard.shape[0] for shard in shards], axis=0), shards))
    named, offset = [], 0
    for shard in shards:  # Each shard gets its rows (possibly none), with shard-local indices.
        rows = shard.shape[0]
        mine = tf.logical_and(grad.indices >= offset, grad.indices < offset + rows)
        named.append((tf.IndexedSlices(tf.boolean_mask(grad.values, mine), tf.boolean_mask(grad.indices, mine) - offset,
                                       dense_shape=tf.constant(shard.shape.as_list(), tf.int64)), shard))
        offset += rows
    return named


class TfKerasInstance:
    """A built tf_keras optimizer (composite or standalone) and its variables."""

    def __init__(self, placement: _Placement, optimizer, variables: list, groups: Optional[list],
                 entries: Optional[list] = None, var_lists: Optional[list] = None,
                 sharding: protocol.Sharding = protocol.Sharding()):
        self._placement = placement
        self._optimizer = optimizer
        self._variables = variables
        self._groups = groups  # None for a standalone sub-optimizer.
        self._entries = entries  # Each entry's own sub-optimizer (None for a standalone one).
        self._var_lists = var_lists  # The lists each entry's callable returns (None for a standalone one).
        self._sharding = sharding
        self._compiled = {}

    # -- stepping
    def _apply(self, pairs):
        grads_and_vars = [(_to_tf(g, self._variables[i]), self._variables[i]) for i, g in pairs]
        with protocol.implementation_call():
            self._optimizer.apply_gradients(grads_and_vars)

    def step(self, pairs, *, compiled: bool = False) -> None:
        pairs = list(pairs)
        if self._placement.coordinator is not None:
            return self.step_async([pairs])
        if self._placement.replicas > 1:
            zeros = [(i, _zeros_like(g)) for i, g in pairs]
            return self.step_replicas([pairs] + [zeros] * (self._placement.replicas - 1))
        with self._placement.scope():
            if not compiled:
                self._apply(pairs)
                return
            # One trace per step structure; gradients enter as arguments so values can change.
            key = tuple((i, None if g is None else (type(g).__name__, np.shape(getattr(g, "values", g)))) for i, g in pairs)
            grads = [_to_tf(g, self._variables[i]) for i, g in pairs]
            if key not in self._compiled:
                step_variables = [self._variables[i] for i, _ in pairs]

                def compiled_step(grads):
                    self._optimizer.apply_gradients(list(zip(grads, step_variables)))

                self._compiled[key] = tf.function(compiled_step, autograph=False)
            with protocol.implementation_call():  # Tracing and running are both the composite's.
                self._compiled[key](grads)

    def step_async(self, steps) -> None:
        """ps:W: schedules every step on the workers without waiting in between, then waits for
        all of them (SPEC DIST-3); they run in an order the coordinator chooses."""
        coordinator = self._placement.coordinator
        if coordinator is None:
            raise protocol.Unsupported(f"asynchronous steps need --device ps:W; the device is {self._placement.device!r}")
        scheduled = [(self._scheduled_step(list(pairs)), _step_arguments(list(pairs), self._variables)) for pairs in steps]
        with protocol.implementation_call():  # Tracing (where the composite refuses), running, joining.
            for step_function, arguments in scheduled:
                coordinator.schedule(step_function, args=(arguments,))
            coordinator.join()

    def _scheduled_step(self, pairs):
        """One tf.function per step structure: a step on whichever worker the coordinator picks."""
        key = _structure(pairs)
        if key not in self._compiled:
            strategy, variables, naming = self._placement.strategy, self._variables, self._sharding.gradients_for

            def replica_step(grads):
                named = []
                for (i, _), grad in zip(pairs, grads):
                    named.extend(_name_gradient(grad, variables[i], naming))
                self._optimizer.apply_gradients(named)

            self._compiled[key] = tf.function(lambda grads: strategy.run(replica_step, args=(grads,)), autograph=False)
        return self._compiled[key]

    def step_replicas(self, per_replica) -> None:
        strategy = self._placement.strategy
        if self._placement.kind == "ps":
            raise protocol.Unsupported("on ps:W each worker's step is a step of its own: ParameterServerStrategy "
                                       "sums no gradients across workers (SPEC DIST-3)")
        if strategy is None or len(per_replica) != self._placement.replicas:
            raise protocol.Unsupported(
                f"{len(per_replica)} replicas requested, but the device is {self._placement.device!r}; "
                "run with --device replicas:N"
            )
        variables = self._variables
        order = [i for i, _ in per_replica[0]]

        def replica_value(ctx):
            pairs = per_replica[ctx.replica_id_in_sync_group]
            return [
                None if g is None else ((g.values, g.indices) if isinstance(g, Sparse) else g) for _, g in pairs
            ]

        called = []  # Set once a replica has called the implementation.

        def replica_step(flat):
            pairs = []
            for i, value in zip(order, flat):
                var = variables[i]
                if isinstance(value, tuple):
                    value = tf.IndexedSlices(value[0], value[1], dense_shape=tf.constant(var.shape, tf.int64))
                pairs.append((value, var))
            called.append(True)
            with protocol.implementation_call():
                self._optimizer.apply_gradients(pairs)

        with strategy.scope():
            # Per-replica numpy values become per-replica tensors (None stays None).
            values = strategy.experimental_distribute_values_from_function(
                lambda ctx: [
                    None if v is None else (
                        (tf.constant(v[0], tf.float32), tf.constant(v[1], tf.int64)) if isinstance(v, tuple)
                        else tf.constant(v, tf.float32)
                    )
                    for v in replica_value(ctx)
                ]
            )
            try:
                strategy.run(replica_step, args=(values,))
            except (protocol.Unsupported, protocol.DeviceUnavailable, protocol.Refused):
                raise
            except Exception as exc:  # noqa: BLE001
                # What the implementation raised in the cross-replica part of its step (a merge_call:
                # the sub-optimizers' updates) reaches us from strategy.run, not from inside
                # replica_step: still the implementation's refusal once it was called.
                if called:
                    raise protocol.Refused(exc) from exc
                raise

    # -- reading and writing state
    def variables(self) -> list:
        # A partitioned variable reads as its shards concatenated along the partitioned axis 0.
        return [np.concatenate([np.asarray(p.numpy()) for p in _parts(v)]) if _sharded(v) else np.array(v.numpy())
                for v in self._variables]

    def assign_variables(self, values) -> None:
        with self._placement.scope():
            for var, value in zip(self._variables, values):
                var.assign(np.asarray(value, np.float32))

    def regroup(self, groups) -> None:
        if self._var_lists is None or len(groups) != len(self._var_lists):
            raise ValueError(f"regroup: {len(groups)} groups for {len(self._var_lists or [])} entries")
        for var_list, group in zip(self._var_lists, groups):
            var_list[:] = [self._variables[i] for i in group]
        self._groups = [list(g) for g in groups]

    def iterations(self) -> int:
        with protocol.implementation_call():
            return _read_counter(self._optimizer)

    def sub_iterations(self) -> list:
        with protocol.implementation_call():
            return [_read_counter(o) for o in (self._entries if self._groups is not None else [self._optimizer])]

    def materialize(self) -> None:
        with self._placement.scope(), protocol.implementation_call():
            _ = self._optimizer.iterations
            if self._groups is None:
                self._optimizer._create_all_weights(self._variables)
                return
            for sub, group in zip(self._entries, self._groups):
                _ = sub.iterations  # Also for an entry with no variables, which has no slots.
                if group:
                    sub._create_all_weights([self._variables[i] for i in group])

    def state(self) -> list:
        with protocol.implementation_call():
            return [np.array(w) for w in self._optimizer.get_weights()]

    def set_state(self, values) -> None:
        values = list(values)
        with protocol.implementation_call():
            self._optimizer.set_weights(values)

    def config(self) -> Any:
        with protocol.implementation_call():
            return self._optimizer.get_config()

    def save(self, directory: str) -> str:
        with protocol.implementation_call():
            checkpoint = tf.train.Checkpoint(optimizer=self._optimizer, variables=self._variables)
            return checkpoint.write(os.path.join(directory, "ckpt"))

    def restore(self, path: str) -> None:
        with self._placement.scope(), protocol.implementation_call():
            tf.train.Checkpoint(optimizer=self._optimizer, variables=self._variables).read(path).expect_partial()
            # tf_keras creates counters lazily; creating them now applies the restored values.
            for optimizer in [self._optimizer, *(self._entries or [])]:
                _ = optimizer.iterations

    @property
    def native(self):
        return self._optimizer

    @property
    def native_variables(self) -> list:
        return self._variables

    @property
    def native_entries(self) -> list:
        """Each entry's own sub-optimizer, in entry order."""
        return list(self._entries)


class TfKerasAdapter:
    """Adapter for a tf_keras legacy composite class with TFRS's constructor signature."""

    protocol_version = protocol.PROTOCOL_VERSION
    framework = "tensorflow"

    def __init__(self, cls=None, name: Optional[str] = None, version: Optional[str] = None):
        self._cls = cls
        self.name = name or (f"{cls.__module__}:{cls.__qualname__}" if cls is not None else "tf_keras")
        self._version = version
        self._placement = _Placement("cpu")

    @property
    def cls(self):
        return self._cls

    @property
    def hardware(self) -> str:
        """What the steps run on (conformance/tolerances.py): replicas:N takes GPUs when there are enough."""
        strategy = self._placement.strategy
        devices = strategy.extended.worker_devices if self._placement.kind == "replicas" and strategy else ()
        return "gpu" if self._placement.device == "gpu" or any("GPU" in d.upper() for d in devices) else "cpu"

    def info(self):
        module = self.cls.__module__.split(".")[0]
        version = self._version or getattr(__import__(module), "__version__", "unknown")
        return {
            "implementation": f"{self.cls.__module__}.{self.cls.__qualname__}",
            "version": str(version),
            "tensorflow": tf.__version__,
            "tf_keras": tf_keras.__version__,
        }

    def unsupported(self):
        # The TFRS page's API expresses every capability; the distributed devices run the checks
        # that go through steps and reads, and say why they leave the others out.
        kind = self._placement.kind
        if kind == "workers":
            why = ("on workers:N every worker must make the same calls, so the suite replays the protocol's "
                   "calls on every worker")
            return {
                "tf_keras_api": f"{why}; the drop-in API checks call the optimizer on worker 0 alone (run them on cpu)",
                "checkpoint": f"{why}; every worker would write the checkpoint into the same directory (run them on cpu)",
                "parameter_servers": "MultiWorkerMirroredStrategy mirrors variables and steps in lockstep; run with ps:W",
                "changing_groups": f"{why}, and changing an entry's var list is no protocol call to replay (run them on cpu)",
            }
        if kind == "ps":
            why = "on ps:W the suite coordinates steps; "
            return {
                "tf_keras_api": why + "the drop-in API checks call the optimizer outside a step, in the coordinator",
                "state": why + "a partitioned variable's optimizer state is per shard, unlike the unpartitioned oracle's",
                "checkpoint": why + "checkpoints of partitioned variables are per shard (run them on cpu)",
                "config": why + "from_config's groups carry no sharding (run them on cpu)",
                "replicas": "ParameterServerStrategy sums no gradients across workers: each worker's step is its own (DIST-3)",
                "changing_groups": why + "var lists that change name whole variables, not the shards the groups list (run them on cpu)",
            }
        return {"parameter_servers": f"the device is {self._placement.device!r}; run with --device ps:W"}

    def optimizer_kinds(self):
        return tuple(_OPTIMIZERS)

    def set_device(self, device: str, *, worker: int = 0) -> None:
        """`worker`: this process's index on workers:N (0, the suite's process, starts the others)."""
        parsed = protocol.parse_device(device)
        if device == "gpu":
            if not tf.config.list_physical_devices("GPU"):
                raise DeviceUnavailable("--device gpu: TensorFlow sees no GPU on this machine.")
            # Ampere and later GPUs run float32 matmuls and convolutions in TF32 (10-bit mantissa) by
            # default, 1e-3 relative error: the "exact" comparisons would fail on rounding, not on
            # faults (SPEC, Tolerances). Full float32 keeps one tolerance table for every device.
            tf.config.experimental.enable_tensor_float_32_execution(False)
        if device == "tpu":
            raise DeviceUnavailable("--device tpu: no TPU is reachable from this machine (TPUClusterResolver).")
        if parsed.kind == "workers":
            self._placement = self._workers(device, parsed.count, worker)
            return
        if parsed.kind == "ps":
            self._placement = self._parameter_servers(device, parsed.count)
            return
        replicas = protocol.replicas_of(device)
        # Physical, not logical, devices: listing logical ones initialises TensorFlow's runtime,
        # after which the CPU can no longer be split.
        if replicas > 1 and len(tf.config.list_physical_devices("GPU")) < replicas:
            cpu = tf.config.list_physical_devices("CPU")[0]
            try:
                tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
            except RuntimeError as exc:  # TensorFlow already initialised its devices.
                if len(tf.config.list_logical_devices("CPU")) < replicas:
                    raise DeviceUnavailable(f"--device {device}: cannot split the CPU after TensorFlow started: {exc}")
        self._placement = _Placement(device)

    def _workers(self, device: str, count: int, worker: int) -> _Placement:
        """A MultiWorkerMirroredStrategy over `count` processes on loopback; worker 0 starts the others."""
        from adapters import cluster as clusters

        cluster = None
        if worker == 0:
            cluster = clusters.Cluster.start_workers(count, f"{self.cls.__module__}:{self.cls.__qualname__}")
            cluster.wait_until("imported")
            spec = cluster.spec
        else:
            spec = json.loads(os.environ["TF_CONFIG"])["cluster"]
        try:
            clusters.configure_coordination("worker", count)
            resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
                tf.train.ClusterSpec(spec), task_type="worker", task_id=worker, rpc_layer="grpc")
            strategy = tf.distribute.MultiWorkerMirroredStrategy(
                cluster_resolver=resolver, communication_options=tf.distribute.experimental.CommunicationOptions(
                    timeout_seconds=clusters.COLLECTIVE_TIMEOUT_S))
            if cluster is not None:
                cluster.wait_until("ready")
        except (Exception, clusters.WorkerLost) as exc:
            if cluster is not None:
                cluster.shutdown()
            raise DeviceUnavailable(f"--device {device}: the {count} workers did not start: {exc}") from exc
        self._keys = itertools.count()
        return _Placement(device, strategy, worker=worker, cluster=cluster)

    def _parameter_servers(self, device: str, workers: int) -> _Placement:
        """A ParameterServerStrategy over `workers` workers and PARAMETER_SERVERS parameter servers,
        each a local process; variables of 2 rows or more are partitioned into SHARDS shards."""
        from adapters import cluster as clusters

        cluster = clusters.Cluster.start_servers(workers, PARAMETER_SERVERS)
        try:
            cluster.wait_until("imported")
            cluster.wait_until("ready")
            resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(tf.train.ClusterSpec(cluster.spec),
                                                                            rpc_layer="grpc")
            strategy = tf.distribute.experimental.ParameterServerStrategy(
                resolver, variable_partitioner=tf.distribute.experimental.partitioners.FixedShardsPartitioner(SHARDS))
            coordinator = tf.distribute.experimental.coordinator.ClusterCoordinator(strategy)
        except (Exception, clusters.WorkerLost) as exc:
            cluster.shutdown()
            raise DeviceUnavailable(f"--device {device}: the cluster did not start: {exc}") from exc
        return _Placement(device, strategy, cluster=cluster, coordinator=coordinator)

    # -- building; on workers:N, worker 0 replays each build and call on the followers

    def _replay(self, target_key, method: str, args: tuple, kwargs: dict, local_call, *, builds: bool = False):
        cluster = self._placement.cluster
        if cluster is None or self._placement.kind != "workers":
            return local_call()
        key = next(self._keys) if builds else None
        cluster.send((key, target_key, method, args, kwargs))
        try:
            result, failure = local_call(), None
        except Exception as exc:  # noqa: BLE001 - compared with the followers' outcomes first.
            result, failure = None, exc
        _merge(cluster, method, result, failure, cluster.gather(f"running {method}()"))
        if failure is not None:
            raise failure
        return _ReplayedInstance(self, result, key) if builds else result

    def _variables(self, variables: Sequence[VariableSpec]) -> list:
        with self._placement.scope():
            return [tf.Variable(np.asarray(v.value, np.float32), name=v.name) for v in variables]

    def _listed(self, tf_vars, indices, sharding: protocol.Sharding) -> list:
        listed = [tf_vars[i] for i in indices]
        if sharding.groups_list == "shards":
            return [part for var in listed for part in _parts(var)]
        return listed

    def composite(self, spec: CompositeSpec, variables: Sequence[VariableSpec]) -> TfKerasInstance:
        return self._replay(None, "composite", (spec, variables), {},
                            lambda: self._composite(spec, variables), builds=True)

    def _composite(self, spec: CompositeSpec, variables: Sequence[VariableSpec]) -> TfKerasInstance:
        tf_vars = self._variables(variables)
        var_lists = [self._listed(tf_vars, g.variables, spec.sharding) for g in spec.groups]
        with self._placement.scope():
            subs = [make_sub_optimizer(g.optimizer) for g in spec.groups]
            entries = [(sub, _named_var_list(f"group_{k}", var_list))
                       for k, (sub, var_list) in enumerate(zip(subs, var_lists))]
            with protocol.implementation_call():
                optimizer = self.cls(entries, name=spec.name, **spec.clip.as_kwargs())
        return TfKerasInstance(self._placement, optimizer, tf_vars, [list(g.variables) for g in spec.groups],
                               subs, var_lists, spec.sharding)

    def standalone(self, optimizer: SubOptimizer, variables: Sequence[VariableSpec]) -> TfKerasInstance:
        # The oracle: on workers:N and ps:W, one device of this process, as DIST-1 and DIST-2 say.
        placement = _LOCAL if self._placement.kind in ("workers", "ps") else self._placement
        with placement.scope():
            tf_vars = [tf.Variable(np.asarray(v.value, np.float32), name=v.name) for v in variables]
            sub = make_sub_optimizer(optimizer)
        return TfKerasInstance(placement, sub, tf_vars, None)

    def from_config(self, config, variables: Sequence[VariableSpec], groups) -> TfKerasInstance:
        return self._replay(None, "from_config", (config, variables, groups), {},
                            lambda: self._from_config(config, variables, groups), builds=True)

    def _from_config(self, config, variables: Sequence[VariableSpec], groups) -> TfKerasInstance:
        tf_vars = self._variables(variables)
        var_lists = [[tf_vars[i] for i in group] for group in groups]
        custom_objects = {f"group_{k}": _named_var_list(f"group_{k}", var_list) for k, var_list in enumerate(var_lists)}
        with self._placement.scope(), protocol.implementation_call():
            optimizer = self.cls.from_config(config, custom_objects=custom_objects)
            entries = list(optimizer.optimizers)[:len(groups)]  # The rebuilt entries, in entry order.
        return TfKerasInstance(self._placement, optimizer, tf_vars, [list(g) for g in groups], entries, var_lists)


_REPLAYED_METHODS = ("step", "step_replicas", "variables", "iterations", "sub_iterations", "materialize", "state",
                     "set_state", "config", "save", "restore")


class _ReplayedInstance:
    """Worker 0's instance on workers:N: each call is sent to every follower, made here, and the
    outcomes merged (`_merge`), so a worker that disagrees fails the check, named."""

    def __init__(self, adapter: TfKerasAdapter, local: TfKerasInstance, key: int):
        self._adapter, self._local, self._key = adapter, local, key
        weakref.finalize(self, adapter._placement.cluster.drop, key)

    def __getattr__(self, method):
        if method not in _REPLAYED_METHODS:
            raise AttributeError(method)
        return functools.partial(self._call, method)

    def _call(self, method, *args, **kwargs):
        args = tuple(list(a) if isinstance(a, (zip, map)) else a for a in args)
        return self._adapter._replay(self._key, method, args, kwargs,
                                     lambda: getattr(self._local, method)(*args, **kwargs))

    @property
    def native(self):
        raise protocol.Unsupported("on workers:N the optimizer object exists once per worker; a call on worker 0's "
                                   "alone would leave the others behind")


def _same(mine, theirs) -> bool:
    if isinstance(mine, (list, tuple)):
        return isinstance(theirs, (list, tuple)) and len(mine) == len(theirs) and all(
            _same(a, b) for a, b in zip(mine, theirs))
    if isinstance(mine, np.ndarray) or isinstance(theirs, np.ndarray):
        return np.array_equal(np.asarray(mine), np.asarray(theirs), equal_nan=True)
    return mine == theirs


def _merge(cluster, method: str, result, failure, answers) -> None:
    """Each follower's outcome against worker 0's: the same exception type, or the same result."""
    for number, answer in enumerate(answers):
        name = cluster.worker_name(number)
        if answer[0] == "raised":
            if failure is None:
                raise AssertionError(f"{name} raised {answer[1]} in {method}() where worker 0 did not: {answer[2]}")
            if answer[1] != type(failure).__name__:
                raise AssertionError(f"{name} raised {answer[1]} in {method}() where worker 0 raised "
                                     f"{type(failure).__name__}: {answer[2]}") from failure
        elif failure is not None:
            raise AssertionError(f"worker 0 raised {type(failure).__name__} in {method}() where {name} did not: "
                                 f"{failure}") from failure
        elif not isinstance(result, TfKerasInstance) and not _same(result, answer[1]):
            raise AssertionError(f"{name}'s {method}() differs from worker 0's:\n  worker 0: {result}\n"
                                 f"  {name}: {answer[1]}")


class ReferenceAdapter(TfKerasAdapter):
    """The bundled `reference` adapter: this project's `reference.CompositeOptimizer`."""

    def __init__(self):
        import reference

        super().__init__(reference.CompositeOptimizer, name="reference", version=reference.__version__)


class TfrsAdapter(TfKerasAdapter):
    """The bundled `tfrs` adapter: `tfrs.experimental.optimizers.CompositeOptimizer`."""

    def __init__(self):
        import tensorflow_recommenders as tfrs

        super().__init__(tfrs.experimental.optimizers.CompositeOptimizer, name="tfrs", version=tfrs.__version__)
