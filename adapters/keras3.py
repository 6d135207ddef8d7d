"""The Keras 3 adapters: drive `keras.optimizers.MultiOptimizer` on the TensorFlow, JAX and torch backends.

Keras 3 fixes its backend when `keras` is first imported, from `KERAS_BACKEND`. Each adapter class
therefore sets that variable and imports keras when it is instantiated (never at module import), and
refuses to run if keras is already loaded with another backend: one backend per process.

How a `CompositeSpec` becomes a MultiOptimizer. Keras 3 routes by *variable path* through an
`OptimizerMap(default_optimizer, {key: optimizer})`: a key is an exact path or a regex that must
`re.fullmatch` it; a variable no key matches goes to the default optimizer; a path matching two
regex keys is a ValueError. The adapter uses the idiom of the Keras docs: the *last* entry's
optimizer is the default (so `MultiOptimizer.optimizers`, which lists the map's values in insertion
order and then the default, is in entry order), and each other entry gets one regex key matching
exactly its variables' paths (`"|".join(re.escape(path))`). One key per entry matters: `get_config`
serialises every key's optimizer separately, so an optimizer under two keys comes back from
`from_config` as two optimizers. Consequences, which are Keras' behaviour and show up as results,
not as adapter errors:

- a variable that no entry lists is trained by the last entry's optimizer (ROUTE-4);
- two different variables with the same path in different entries cannot be told apart: between
  non-default entries construction raises ValueError (the map refuses a repeated key, or the build
  finds "Multiple optimizers assigned to variable"); a variable of the default entry whose path
  another entry's key matches silently follows that key (ROUTE-1). The same holds for one variable
  listed by two entries.

The composite is built (`MultiOptimizer.build`) over all variables when it is created, as
`Model.fit` does: Keras 3 then requires every step to give one pair per built variable. Steps call
`optimizer.apply(grads, variables)` (`apply_gradients` only unzips into it, and raises on an empty
list where `apply` is a no-op). `compiled=True` runs that same call inside `tf.function`,
`jax.jit` (through `keras.StatelessScope`, as `Optimizer.stateless_apply` does, but with the call's
own variable list), or `torch.compile`.

Every call into Keras (building, apply, reading and writing state, config, weights files) runs inside
`protocol.implementation_call()`: what Keras raises there is the implementation's refusal; the
adapter's own conversions stay outside, so a bug in them is an error of the run. Compiled steps run
the whole traced call (tracing included) inside it.

A step whose sparse gradient a sub-optimizer cannot apply even alone (the backend's `sparse_refusal`:
on TensorFlow, a centered RMSprop given repeated row indices; on JAX, any sub-optimizer with a clip
setting) is `Unsupported`: such an example says nothing about the composite, and the oracle (the
sub-optimizer alone) would fail on it the same way.

Hooks beyond the public API: `MultiOptimizer._optimizer_map` (to find which rebuilt optimizer serves
an entry after `from_config`, and which sub-optimizer a sparse gradient goes to).
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import sys
from typing import Any, Sequence

import numpy as np

from adapters import protocol
from adapters.protocol import CompositeSpec, DeviceUnavailable, Sparse, SubOptimizer, Unsupported, VariableSpec

_KINDS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adamax": "Adamax",
    "nadam": "Nadam",
    "ftrl": "Ftrl",
}
_SCHEDULES = {
    "exponential_decay": "ExponentialDecay",
    "piecewise_constant": "PiecewiseConstantDecay",
    "inverse_time_decay": "InverseTimeDecay",
}

_NO_COMPOSITE_CLIPPING = (
    "keras.optimizers.MultiOptimizer takes no clip settings: its __init__ accepts only optimizer_map, "
    "loss_scale_factor and name (clipnorm=... is a TypeError), and its apply() never calls the base "
    "class's gradient clipping, so setting the inherited clipnorm/clipvalue/global_clipnorm attributes "
    "afterwards changes nothing. Clipping exists only per sub-optimizer (see sub_clipping)."
)


_NO_CHANGING_GROUPS = (
    "keras.optimizers.MultiOptimizer has no var-list callables: it routes by variable path through the "
    "OptimizerMap it is given, and is built over every variable up front (as Model.fit builds it), after "
    "which each step needs one gradient per built variable; a variable that appears or changes entry "
    "needs a new map and a new build"
)


def import_keras(backend: str):
    """Import keras with `backend`; a clear error if it is already loaded with another one."""
    loaded = sys.modules.get("keras")
    if loaded is None:
        os.environ["KERAS_BACKEND"] = backend
        import keras as loaded
    active = loaded.backend.backend()
    if active != backend:
        raise RuntimeError(
            f"keras is already imported with the {active!r} backend in this process; the {backend!r} adapter "
            f"needs KERAS_BACKEND={backend} set before keras is first imported. Run each Keras backend in its "
            "own process."
        )
    return loaded


def _numpy(keras, value) -> np.ndarray:
    return np.array(keras.ops.convert_to_numpy(value))


class _Holder:
    """Builds the tiny keras.Model that carries variables and optimizer through `.weights.h5` files."""

    _cls = None

    @classmethod
    def make(cls, keras, variables, optimizer):
        if cls._cls is None:

            class CheckpointHolder(keras.Model):
                """Holds variables and an optimizer so that `save_weights`/`load_weights` cover both."""

                def __init__(self, variables, optimizer):
                    super().__init__(name="checkpoint_holder")
                    self.held_variables = list(variables)
                    self.optimizer = optimizer
                    self.built = True

            cls._cls = CheckpointHolder
        return cls._cls(variables, optimizer)


class KerasInstance:
    """A built Keras 3 optimizer (MultiOptimizer, or one sub-optimizer alone) and its variables."""

    def __init__(self, adapter: "_KerasAdapter", optimizer, variables: list, entries: list):
        self._adapter = adapter
        self._keras = adapter.keras
        self._optimizer = optimizer
        self._variables = variables
        self._entries = entries  # Each entry's own optimizer object (None: not in the rebuilt composite).
        self._compiled = {}

    # -- stepping
    def _gradient(self, grad, var):
        """A gradient in the backend's own type: dense tensor, sparse tensor, or None."""
        keras = self._keras
        if grad is None:
            return None
        if isinstance(grad, Sparse):
            return self._adapter.sparse_gradient(grad, var)
        return keras.ops.convert_to_tensor(np.asarray(grad, np.float32), dtype=var.dtype)

    def _optimizer_of(self, var):
        """The Keras optimizer that applies `var`'s gradient: the composite's, through its map, or this one."""
        if isinstance(self._optimizer, self._keras.optimizers.MultiOptimizer):
            return self._optimizer._optimizer_map(var)
        return self._optimizer

    def _refuse_inexpressible_sparse(self, per_replica) -> None:
        """Unsupported for a step whose sparse gradients a sub-optimizer cannot apply even alone (the
        backend's `sparse_refusal`); the replicas' indices count together, as the all-reduce joins them."""
        indices = {}
        for pairs in per_replica:
            for i, g in pairs:
                if isinstance(g, Sparse):
                    indices.setdefault(i, []).append(np.asarray(g.indices).reshape(-1))
        for i, parts in indices.items():
            reason = self._adapter.sparse_refusal(self._optimizer_of(self._variables[i]), np.concatenate(parts))
            if reason:
                raise Unsupported(reason)

    def step(self, pairs, *, compiled: bool = False) -> None:
        pairs = list(pairs)
        adapter = self._adapter
        if adapter.replicas > 1:
            zeros = [(i, _zeros_like(g)) for i, g in pairs]
            return self.step_replicas([pairs] + [zeros] * (adapter.replicas - 1))
        self._refuse_inexpressible_sparse([pairs])
        with adapter.scope():
            grads = [self._gradient(g, self._variables[i]) for i, g in pairs]
            variables = [self._variables[i] for i, _ in pairs]
            if not compiled:
                with protocol.implementation_call():
                    self._optimizer.apply(grads, variables)
                return
            # One trace per step structure; gradients enter as arguments so values may change.
            key = tuple(
                (i, None if g is None else (type(g).__name__, np.shape(getattr(g, "values", g)))) for i, g in pairs
            )
            if key not in self._compiled:
                self._compiled[key] = adapter.compile_step(self._optimizer, self._variables, variables)
            with protocol.implementation_call():
                self._compiled[key](grads)

    def step_replicas(self, per_replica) -> None:
        self._refuse_inexpressible_sparse(per_replica)
        with protocol.implementation_call():  # Unsupported (no replicas) passes through unchanged.
            self._adapter.step_replicas(self._optimizer, self._variables, per_replica)

    # -- reading and writing state
    def variables(self) -> list:
        return [_numpy(self._keras, v.value) for v in self._variables]

    def iterations(self) -> int:
        with protocol.implementation_call():
            return int(_numpy(self._keras, self._optimizer.iterations.value))

    def sub_iterations(self) -> list:
        # Keras 3 creates each optimizer's counter in __init__, so reading it creates nothing.
        with protocol.implementation_call():
            return [0 if o is None else int(_numpy(self._keras, o.iterations.value)) for o in self._entries]

    def materialize(self) -> None:
        with self._adapter.scope(), protocol.implementation_call():
            if not self._optimizer.built:
                self._optimizer.build(self._variables)

    def state(self) -> list:
        with protocol.implementation_call():
            return [_numpy(self._keras, v.value) for v in self._optimizer.variables]

    def set_state(self, values) -> None:
        values = [np.asarray(v) for v in values]
        with self._adapter.scope(), protocol.implementation_call():
            self._optimizer.set_weights(values)

    def config(self) -> Any:
        with protocol.implementation_call():
            return self._optimizer.get_config()

    def save(self, directory: str) -> str:
        path = os.path.join(directory, "composite.weights.h5")
        with protocol.implementation_call():
            _Holder.make(self._keras, self._variables, self._optimizer).save_weights(path)
        return path

    def restore(self, path: str) -> None:
        with self._adapter.scope(), protocol.implementation_call():
            _Holder.make(self._keras, self._variables, self._optimizer).load_weights(path)

    @property
    def native(self):
        return self._optimizer

    @property
    def native_variables(self) -> list:
        return self._variables


def _zeros_like(grad):
    if grad is None:
        return None
    if isinstance(grad, Sparse):
        return Sparse(grad.indices, np.zeros_like(grad.values))
    return np.zeros_like(grad)


class _KerasAdapter:
    """Shared by the three backends; subclasses set `backend` and `framework`."""

    protocol_version = protocol.PROTOCOL_VERSION
    backend = ""
    framework = ""
    name = ""

    def __init__(self):
        self.keras = import_keras(self.backend)
        self.device = "cpu"
        self.replicas = 1

    # -- description
    def info(self):
        return {
            "implementation": "keras.optimizers.MultiOptimizer (OptimizerMap routing)",
            "version": self.keras.__version__,
            "keras_backend": self.backend,
            self.framework: self.framework_version(),
        }

    def framework_version(self) -> str:
        return str(getattr(__import__(self.framework), "__version__", "unknown"))

    def unsupported(self):
        return {
            "composite_clipping": _NO_COMPOSITE_CLIPPING,
            "changing_groups": _NO_CHANGING_GROUPS,
            "tf_keras_api": "keras.optimizers.MultiOptimizer is a Keras 3 optimizer, not a tf_keras legacy optimizer.",
        }

    def optimizer_kinds(self):
        return tuple(_KINDS)

    # -- devices
    def set_device(self, device: str) -> None:
        if device == "cpu":
            self.device, self.replicas = "cpu", 1
        elif device == "gpu":
            if not self.has_gpu():
                raise DeviceUnavailable(f"--device gpu: the Keras {self.backend} backend sees no GPU on this machine.")
            self.device, self.replicas = "gpu", 1
        elif device == "tpu":
            raise DeviceUnavailable(f"--device tpu: no TPU is reachable from the Keras {self.backend} backend here.")
        elif device.startswith("replicas:"):
            self.set_replicas(device)
        else:
            raise ValueError(f"unknown device {device!r}: expected cpu, gpu, tpu or replicas:N")

    def has_gpu(self) -> bool:
        raise NotImplementedError

    def set_replicas(self, device: str) -> None:
        raise DeviceUnavailable(
            f"--device {device}: the keras-{self.backend} adapter has no multi-replica mode "
            f"({self.unsupported().get('replicas', '')})"
        )

    def scope(self):
        """Where variables are created and steps run."""
        if self.device == "gpu":
            return self.keras.device("gpu:0")
        return contextlib.nullcontext()

    # -- backend hooks
    def sparse_gradient(self, grad: Sparse, var):
        raise Unsupported(self.unsupported().get("sparse_gradient", "sparse gradients"))

    def sparse_refusal(self, optimizer, indices: np.ndarray):
        """Why `optimizer` (one Keras sub-optimizer) cannot apply a sparse gradient with these row
        `indices` even alone, or None when it can."""
        return None

    def compile_step(self, optimizer, all_variables, step_variables):
        raise Unsupported(self.unsupported().get("compiled_step", "compiled steps"))

    def step_replicas(self, optimizer, variables, per_replica):
        raise Unsupported(self.unsupported().get("replicas", "replicas"))

    # -- building
    def make_sub_optimizer(self, sub: SubOptimizer):
        """A Keras 3 optimizer for a framework-neutral description (hyperparameter names are the same)."""
        optimizers = self.keras.optimizers
        if sub.kind not in _KINDS:
            raise Unsupported(f"optimizer kind {sub.kind!r} has no Keras 3 counterpart in this adapter")
        clip = sub.clip.as_kwargs()
        if len(clip) > 1:
            raise Unsupported(
                f"Keras 3 optimizers accept only one of clipnorm, clipvalue and global_clipnorm (got {sorted(clip)})"
            )
        lr = sub.learning_rate
        if isinstance(lr, protocol.Schedule):
            lr = getattr(optimizers.schedules, _SCHEDULES[lr.kind])(**dict(lr.params))
        else:
            lr = float(lr)  # Keras 3 refuses an int learning rate.
        return getattr(optimizers, _KINDS[sub.kind])(learning_rate=lr, **dict(sub.hyper), **clip)

    def _variables(self, variables: Sequence[VariableSpec]) -> list:
        made = []
        with self.scope():
            for spec in variables:
                try:
                    made.append(self.keras.Variable(np.asarray(spec.value, np.float32), name=spec.name, dtype="float32"))
                except ValueError as exc:  # e.g. Keras 3 refuses "/" in a variable name.
                    raise Unsupported(f"Keras 3 cannot create a variable named {spec.name!r}: {exc}") from exc
        return made

    def composite(self, spec: CompositeSpec, variables: Sequence[VariableSpec]) -> KerasInstance:
        if spec.clip.as_kwargs():
            raise Unsupported(_NO_COMPOSITE_CLIPPING)
        keras_vars = self._variables(variables)
        with self.scope():
            with protocol.implementation_call():
                subs = [self.make_sub_optimizer(g.optimizer) for g in spec.groups]
            if not subs:
                raise Unsupported(
                    "keras.optimizers.OptimizerMap requires a default optimizer, so a composite with no entries "
                    "cannot be written down"
                )
            with protocol.implementation_call():
                optimizer_map = self.keras.optimizers.OptimizerMap(default_optimizer=subs[-1])
                for group, sub in zip(spec.groups[:-1], subs[:-1]):
                    paths = list(dict.fromkeys(keras_vars[i].path for i in group.variables))
                    if paths:
                        # One key per entry, so that get_config writes each optimizer once (see module doc).
                        optimizer_map["|".join(re.escape(p) for p in paths)] = sub
                optimizer = self.keras.optimizers.MultiOptimizer(optimizer_map, name=spec.name)
                optimizer.build(keras_vars)
        return KerasInstance(self, optimizer, keras_vars, subs)

    def standalone(self, optimizer: SubOptimizer, variables: Sequence[VariableSpec]) -> KerasInstance:
        keras_vars = self._variables(variables)
        with self.scope():
            sub = self.make_sub_optimizer(optimizer)
            sub.build(keras_vars)
        return KerasInstance(self, sub, keras_vars, [sub])

    def from_config(self, config, variables: Sequence[VariableSpec], groups) -> KerasInstance:
        keras_vars = self._variables(variables)
        with self.scope():
            config = copy.deepcopy(config)
            with protocol.implementation_call():
                optimizer = self.keras.optimizers.MultiOptimizer.from_config(config)
                optimizer.build(keras_vars)
                # The rebuilt composite knows entries only through routing: ask its map who serves each group.
                entries = [optimizer._optimizer_map(keras_vars[group[0]]) if len(group) else None for group in groups]
        return KerasInstance(self, optimizer, keras_vars, entries)


# --------------------------------------------------------------------------- TensorFlow


_CENTERED_RMSPROP_REPEATED_INDICES = (
    "Keras 3's RMSprop(centered=True) on the TensorFlow backend cannot apply a sparse gradient whose row "
    "indices repeat, not even alone: its sparse update squares each slice before repeated rows are summed, "
    "so the centered denominator (velocity - average_grad**2 + epsilon) can turn negative and its square "
    "root NaN, and keras.ops.divide of a tf.IndexedSlices with repeated indices by a divisor holding a NaN "
    "then fails (InvalidArgumentError from GatherV2 in "
    "keras/src/backend/tensorflow/sparse.py:indexed_slices_union_indices_and_values). A step that gives it "
    "such a gradient says nothing about the composite (on replicas the replicas' indices count "
    "together: the all-reduce concatenates them)."
)


class KerasTensorflowAdapter(_KerasAdapter):
    """Bundled as "keras": MultiOptimizer on Keras 3's TensorFlow backend."""

    backend = "tensorflow"
    framework = "tensorflow"
    name = "keras"

    def __init__(self):
        super().__init__()
        import tensorflow as tf

        self._tf = tf
        self._strategy = None

    def has_gpu(self) -> bool:
        return bool(self._tf.config.list_physical_devices("GPU"))

    def set_device(self, device: str) -> None:
        self._strategy = None
        super().set_device(device)

    def set_replicas(self, device: str) -> None:
        tf = self._tf
        replicas = protocol.replicas_of(device)
        # Physical, not logical, devices: listing logical ones initialises TensorFlow, after which
        # the CPU can no longer be split.
        if len(tf.config.list_physical_devices("GPU")) >= replicas:
            devices = [d.name for d in tf.config.list_logical_devices("GPU")[:replicas]]
        else:
            cpu = tf.config.list_physical_devices("CPU")[0]
            try:
                tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
            except RuntimeError as exc:  # TensorFlow already initialised its devices.
                if len(tf.config.list_logical_devices("CPU")) < replicas:
                    raise DeviceUnavailable(f"--device {device}: cannot split the CPU after TensorFlow started: {exc}")
            devices = [f"/cpu:{i}" for i in range(replicas)]
        self._strategy = tf.distribute.MirroredStrategy(devices)
        self.device, self.replicas = device, replicas

    def scope(self):
        if self._strategy is not None:
            return self._strategy.scope()
        return super().scope()

    def sparse_gradient(self, grad: Sparse, var):
        tf = self._tf
        return tf.IndexedSlices(
            tf.constant(grad.values, dtype=var.dtype),
            tf.constant(grad.indices, dtype=tf.int64),
            dense_shape=tf.constant(var.shape, dtype=tf.int64),
        )

    def sparse_refusal(self, optimizer, indices: np.ndarray):
        rmsprop = self.keras.optimizers.RMSprop
        if isinstance(optimizer, rmsprop) and optimizer.centered and len(np.unique(indices)) < len(indices):
            return _CENTERED_RMSPROP_REPEATED_INDICES
        return None

    def compile_step(self, optimizer, all_variables, step_variables):
        def compiled_step(grads):
            optimizer.apply(grads, step_variables)

        return self._tf.function(compiled_step, autograph=False)

    def step_replicas(self, optimizer, variables, per_replica):
        tf = self._tf
        strategy = self._strategy
        if strategy is None or len(per_replica) != self.replicas:
            raise Unsupported(
                f"{len(per_replica)} replicas requested, but the device is {self.device!r}; run with --device replicas:N"
            )
        order = [i for i, _ in per_replica[0]]
        step_variables = [variables[i] for i in order]

        def replica_values(ctx):
            values = []
            for (_, g) in per_replica[ctx.replica_id_in_sync_group]:
                if g is None:
                    values.append(None)
                elif isinstance(g, Sparse):
                    values.append((tf.constant(g.values, tf.float32), tf.constant(g.indices, tf.int64)))
                else:
                    values.append(tf.constant(g, tf.float32))
            return values

        def replica_step(flat):
            grads = []
            for var, value in zip(step_variables, flat):
                if isinstance(value, tuple):
                    value = tf.IndexedSlices(value[0], value[1], dense_shape=tf.constant(var.shape, tf.int64))
                grads.append(value)
            optimizer.apply(grads, step_variables)

        with strategy.scope():
            values = strategy.experimental_distribute_values_from_function(replica_values)
            strategy.run(replica_step, args=(values,))


# --------------------------------------------------------------------------- JAX


_JAX_SPARSE_CLIPPING = (
    "Keras 3 on the JAX backend cannot clip a sparse (BCOO) gradient, so a sub-optimizer with a clip "
    "setting cannot apply one, not even alone: clipvalue fails in ops.clip ('clip requires ndarray or "
    "scalar arguments, got BCOO'), clipnorm in jax.experimental.sparse ('sparse rule for gt is not "
    "implemented'), global_clipnorm in ops.stack ('stack requires ndarray or scalar arguments'). A step "
    "that gives it such a gradient says nothing about the composite."
)


class KerasJaxAdapter(_KerasAdapter):
    """Bundled as "keras-jax": MultiOptimizer on Keras 3's JAX backend."""

    backend = "jax"
    framework = "jax"
    name = "keras-jax"

    def __init__(self):
        super().__init__()
        import jax

        self._jax = jax

    def unsupported(self):
        return {
            **super().unsupported(),
            "replicas": "the keras-jax adapter has no multi-replica mode (Keras 3 distributes JAX through "
            "keras.distribution over several devices; this machine has one).",
        }

    def has_gpu(self) -> bool:
        try:
            return bool(self._jax.devices("gpu"))
        except RuntimeError:
            return False

    def sparse_refusal(self, optimizer, indices: np.ndarray):
        clip = {k: getattr(optimizer, k, None) for k in ("clipnorm", "clipvalue", "global_clipnorm")}
        if any(v is not None for v in clip.values()):
            return _JAX_SPARSE_CLIPPING
        return None

    def sparse_gradient(self, grad: Sparse, var):
        # Keras 3's sparse gradients on JAX are BCOO arrays; row indices are the one sparse dimension.
        import jax.experimental.sparse as jax_sparse
        import jax.numpy as jnp

        indices = jnp.asarray(np.asarray(grad.indices, np.int32).reshape(-1, 1))
        return jax_sparse.BCOO((jnp.asarray(grad.values, jnp.float32), indices), shape=tuple(var.shape))

    def compile_step(self, optimizer, all_variables, step_variables):
        import jax.experimental.sparse as jax_sparse

        keras, jax = self.keras, self._jax
        optimizer_variables = list(optimizer.variables)

        def pure_step(optimizer_values, variable_values, grads):
            # Optimizer.stateless_apply, with the step's own variable list rather than all of them.
            mapping = list(zip(all_variables, variable_values)) + list(zip(optimizer_variables, optimizer_values))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                optimizer.apply(grads, step_variables)
            return (
                [scope.get_current_value(v) for v in all_variables],
                [scope.get_current_value(v) for v in optimizer_variables],
            )

        jitted = jax.jit(pure_step)

        def compiled_step(grads):
            if any(isinstance(g, jax_sparse.JAXSparse) for g in grads):
                raise Unsupported(
                    "Keras 3's JAX sparse ops (e.g. ops.square, used by Adam) call bcoo_sum_duplicates without a "
                    "static nse, which raises inside jax.jit: a sparse gradient cannot be applied in a compiled "
                    "step, by the composite or by its sub-optimizers alone."
                )
            new_variables, new_optimizer = jitted(
                [v.value for v in optimizer_variables], [v.value for v in all_variables], grads
            )
            for var, value in zip(all_variables + optimizer_variables, new_variables + new_optimizer):
                var.assign(value)

        return compiled_step


# --------------------------------------------------------------------------- torch


_TORCH_COMPILE_COST = (
    "not run by default: torch.compile of a MultiOptimizer step costs about 30-70 s per new step "
    "structure on a 2-core CPU (inductor; 5-20 s with Dynamo's eager backend; measured with torch "
    "2.13.0), and every generated example is a new structure, which puts this one check past an hour. "
    "Keras' torch backend can express it: KerasTorchAdapter(compiled_steps=True) runs it."
)


class KerasTorchAdapter(_KerasAdapter):
    """Bundled as "keras-torch": MultiOptimizer on Keras 3's torch backend.

    `compile_backend` is torch.compile's backend ("inductor", its default, generates code: about
    30 s for the first step of each structure on a 2-core CPU; "eager" only traces with Dynamo).
    Compiled steps are declared unsupported unless `compiled_steps=True` (see _TORCH_COMPILE_COST);
    `Instance.step(..., compiled=True)` works either way.
    """

    backend = "torch"
    framework = "torch"
    name = "keras-torch"

    def __init__(self, compile_backend: str = "inductor", compiled_steps: bool = False):
        super().__init__()
        import torch

        self._torch = torch
        self._compile_backend = compile_backend
        self._compiled_steps = compiled_steps

    def unsupported(self):
        return {
            **super().unsupported(),
            **({} if self._compiled_steps else {"compiled_step": _TORCH_COMPILE_COST}),
            "sparse_gradient": "Keras 3's torch backend has no sparse tensors (keras.config backend "
            "SUPPORTS_SPARSE_TENSORS is False): gradients are dense torch tensors.",
            "replicas": "the keras-torch adapter has no multi-replica mode (Keras 3 offers no data-parallel "
            "distribution for the torch backend).",
        }

    def has_gpu(self) -> bool:
        return bool(self._torch.cuda.is_available())

    def compile_step(self, optimizer, all_variables, step_variables):
        dynamo = self._torch._dynamo.config
        # Every instance recompiles this same code object (new optimizer and variables in its
        # closure); past recompile_limit (8) Dynamo would silently run the step eagerly, and a
        # "compiled" check would then test nothing. Compile every time, or fail loudly.
        dynamo.recompile_limit = max(dynamo.recompile_limit, 1_000_000)
        dynamo.accumulated_recompile_limit = max(dynamo.accumulated_recompile_limit, 1_000_000)
        dynamo.fail_on_recompile_limit_hit = True

        def compiled_step(grads):
            optimizer.apply(grads, step_variables)

        return self._torch.compile(compiled_step, backend=self._compile_backend)


__all__ = ["KerasInstance", "KerasJaxAdapter", "KerasTensorflowAdapter", "KerasTorchAdapter", "import_keras"]
