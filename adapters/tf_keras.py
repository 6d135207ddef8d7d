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
import os
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


class _Placement:
    """Where variables live and steps run: one device, or a MirroredStrategy."""

    def __init__(self, device: str):
        self.device = device
        self.replicas = protocol.replicas_of(device)
        self.strategy = None
        if self.replicas > 1:
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


class TfKerasInstance:
    """A built tf_keras optimizer (composite or standalone) and its variables."""

    def __init__(self, placement: _Placement, optimizer, variables: list, groups: Optional[list],
                 entries: Optional[list] = None, var_lists: Optional[list] = None):
        self._placement = placement
        self._optimizer = optimizer
        self._variables = variables
        self._groups = groups  # None for a standalone sub-optimizer.
        self._entries = entries  # Each entry's own sub-optimizer (None for a standalone one).
        self._var_lists = var_lists  # The lists each entry's callable returns (None for a standalone one).
        self._compiled = {}

    # -- stepping
    def _apply(self, pairs):
        grads_and_vars = [(_to_tf(g, self._variables[i]), self._variables[i]) for i, g in pairs]
        with protocol.implementation_call():
            self._optimizer.apply_gradients(grads_and_vars)

    def step(self, pairs, *, compiled: bool = False) -> None:
        pairs = list(pairs)
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

    def step_replicas(self, per_replica) -> None:
        strategy = self._placement.strategy
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

        def replica_step(flat):
            pairs = []
            for i, value in zip(order, flat):
                var = variables[i]
                if isinstance(value, tuple):
                    value = tf.IndexedSlices(value[0], value[1], dense_shape=tf.constant(var.shape, tf.int64))
                pairs.append((value, var))
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
            strategy.run(replica_step, args=(values,))

    # -- reading and writing state
    def variables(self) -> list:
        return [np.array(v.numpy()) for v in self._variables]

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
        return {}  # The TFRS page's API expresses every capability.

    def optimizer_kinds(self):
        return tuple(_OPTIMIZERS)

    def set_device(self, device: str) -> None:
        if device == "gpu" and not tf.config.list_physical_devices("GPU"):
            raise DeviceUnavailable("--device gpu: TensorFlow sees no GPU on this machine.")
        if device == "tpu":
            raise DeviceUnavailable("--device tpu: no TPU is reachable from this machine (TPUClusterResolver).")
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

    def _variables(self, variables: Sequence[VariableSpec]) -> list:
        with self._placement.scope():
            return [tf.Variable(np.asarray(v.value, np.float32), name=v.name) for v in variables]

    def composite(self, spec: CompositeSpec, variables: Sequence[VariableSpec]) -> TfKerasInstance:
        tf_vars = self._variables(variables)
        var_lists = [[tf_vars[i] for i in g.variables] for g in spec.groups]
        with self._placement.scope():
            subs = [make_sub_optimizer(g.optimizer) for g in spec.groups]
            entries = [(sub, _named_var_list(f"group_{k}", var_list))
                       for k, (sub, var_list) in enumerate(zip(subs, var_lists))]
            with protocol.implementation_call():
                optimizer = self.cls(entries, name=spec.name, **spec.clip.as_kwargs())
        return TfKerasInstance(self._placement, optimizer, tf_vars, [list(g.variables) for g in spec.groups],
                               subs, var_lists)

    def standalone(self, optimizer: SubOptimizer, variables: Sequence[VariableSpec]) -> TfKerasInstance:
        tf_vars = self._variables(variables)
        with self._placement.scope():
            sub = make_sub_optimizer(optimizer)
        return TfKerasInstance(self._placement, sub, tf_vars, None)

    def from_config(self, config, variables: Sequence[VariableSpec], groups) -> TfKerasInstance:
        tf_vars = self._variables(variables)
        var_lists = [[tf_vars[i] for i in group] for group in groups]
        custom_objects = {f"group_{k}": _named_var_list(f"group_{k}", var_list) for k, var_list in enumerate(var_lists)}
        with self._placement.scope(), protocol.implementation_call():
            optimizer = self.cls.from_config(config, custom_objects=custom_objects)
            entries = list(optimizer.optimizers)[:len(groups)]  # The rebuilt entries, in entry order.
        return TfKerasInstance(self._placement, optimizer, tf_vars, [list(g) for g in groups], entries, var_lists)


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
