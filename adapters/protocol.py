"""The adapter protocol: how the conformance suite drives an implementation.

PROTOCOL_VERSION = 2. The suite speaks to implementations only through this
module's types, so one test module serves every framework. Everything here is
plain Python and numpy: no framework is imported.

An adapter is any object (or class, instantiated with no arguments) with the
attributes and methods of `Adapter` below. A port author writes one for their
implementation and runs `python -m conformance --impl mymodule:MyAdapter`.

Versioning: a later protocol version only *adds* optional methods and
capabilities, with defaults that keep older adapters working. An adapter
states the version it was written against in `protocol_version`; the suite
refuses one newer than it knows.

Version 2 (this one) separates the implementation's refusals from the adapter's
own errors: an adapter runs every call into the implementation under test inside
`implementation_call()`, which hands any exception raised there to the suite as
`Refused(exc)`. Only a `Refused` counts as the implementation refusing bad input;
any other exception from an adapter (an AttributeError in its own code, an
IndexError while converting a step) is an error of the adapter or the suite: the
check reports an error, never a pass and never a verdict on the implementation.
Version 2 also adds the optional `Instance.regroup` and `Instance.assign_variables`
(capability "changing_groups").
Compatibility: `load_adapter` runs a version-1 adapter through `_Version1Adapter`,
which takes every exception of its methods as the implementation's (what version 1
meant) and declares "changing_groups" unsupported. Its passes of refusal checks are
therefore only as good as the adapter's code: upgrade by marking the boundary.

Vocabulary (see reference/SPEC.md): an *entry* pairs a sub-optimizer with a
*group* of variables; a *step* is one call of the composite's apply.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Any, Mapping, Optional, Protocol, Sequence, Tuple, Union, runtime_checkable

import numpy as np

PROTOCOL_VERSION = 2

# --------------------------------------------------------------------------- descriptions
# Framework-neutral descriptions of what to build. Hyperparameter names are
# tf_keras' (legacy optimizers); each adapter maps them to its framework's own.


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule, evaluated at the sub-optimizer's own step count.

    kind "exponential_decay": lr(t) = initial_learning_rate * decay_rate ** (t / decay_steps)
      (with `staircase`, the exponent is floored).
    kind "piecewise_constant": lr(t) = values[i] for boundaries[i-1] < t <= boundaries[i].
    kind "inverse_time_decay": lr(t) = initial_learning_rate / (1 + decay_rate * t / decay_steps).
    """

    kind: str
    params: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Clip:
    """Clip settings; `None` means unset. See SPEC CLIP-1."""

    clipvalue: Optional[float] = None
    clipnorm: Optional[float] = None
    global_clipnorm: Optional[float] = None

    def as_kwargs(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


# Kinds of sub-optimizer and the hyperparameters each may carry (tf_keras names).
OPTIMIZER_KINDS: Mapping[str, Tuple[str, ...]] = {
    "sgd": ("momentum", "nesterov"),
    "adam": ("beta_1", "beta_2", "epsilon", "amsgrad"),
    "adagrad": ("initial_accumulator_value", "epsilon"),
    "rmsprop": ("rho", "momentum", "epsilon", "centered"),
    "adamax": ("beta_1", "beta_2", "epsilon"),
    "nadam": ("beta_1", "beta_2", "epsilon"),
    "ftrl": (
        "learning_rate_power",
        "initial_accumulator_value",
        "l1_regularization_strength",
        "l2_regularization_strength",
        "beta",
    ),
}


# tf_keras' legacy defaults for what a description leaves out, so that a SubOptimizer means the
# same optimizer in every adapter (frameworks' own defaults differ, e.g. optax's eps=1e-8).
TF_KERAS_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "sgd": {"momentum": 0.0, "nesterov": False},
    "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
    "adagrad": {"initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "rmsprop": {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False},
    "adamax": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "nadam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "ftrl": {"learning_rate_power": -0.5, "initial_accumulator_value": 0.1, "l1_regularization_strength": 0.0,
             "l2_regularization_strength": 0.0, "beta": 0.0},
}


def hyperparameters(sub: "SubOptimizer") -> dict:
    """Every hyperparameter of `sub`, tf_keras defaults filled in; ValueError for an unknown kind or name."""
    if sub.kind not in TF_KERAS_DEFAULTS:
        raise ValueError(f"Unknown optimizer kind {sub.kind!r}; known: {sorted(TF_KERAS_DEFAULTS)}.")
    unknown = sorted(set(sub.hyper) - set(TF_KERAS_DEFAULTS[sub.kind]))
    if unknown:
        raise ValueError(f"{sub.kind}: unknown hyperparameters {unknown}; known: {sorted(TF_KERAS_DEFAULTS[sub.kind])}.")
    return {**TF_KERAS_DEFAULTS[sub.kind], **dict(sub.hyper)}


@dataclasses.dataclass(frozen=True)
class SubOptimizer:
    """One sub-optimizer: its kind, learning rate (a float or a Schedule), hyperparameters, own clipping."""

    kind: str
    learning_rate: Union[float, Schedule]
    hyper: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    clip: Clip = Clip()  # The sub-optimizer's own clip settings (SPEC CLIP-3).


@dataclasses.dataclass(frozen=True)
class Group:
    """An entry: a sub-optimizer and the indices (into the variable list) of its variables."""

    optimizer: SubOptimizer
    variables: Tuple[int, ...]


# How a composite over partitioned variables names them (SPEC DIST-2; only --device ps:W
# partitions). "variable": the partitioned variable as a whole (tf: the ShardedVariable);
# "shards": each of its shards.
SHARD_NAMINGS = ("variable", "shards")


@dataclasses.dataclass(frozen=True)
class Sharding:
    """What groups list and what gradients name, for a variable the device partitions. The default
    is what `model.trainable_variables`, GradientTape and Model.fit give (shards), so that only
    DIST-2's own check names a partitioned variable whole (`lambda: [model.embedding]`)."""

    groups_list: str = "shards"
    gradients_for: str = "shards"


@dataclasses.dataclass(frozen=True)
class CompositeSpec:
    """A composite: its entries, in order, and its own clip settings."""

    groups: Tuple[Group, ...]
    clip: Clip = Clip()
    name: str = "CompositeOptimizer"
    sharding: Sharding = Sharding()  # Read only on a device that partitions variables.


@dataclasses.dataclass(frozen=True)
class VariableSpec:
    """A variable to create: its name (names may repeat, SPEC ROUTE-1) and initial float32 value."""

    name: str
    value: np.ndarray


@dataclasses.dataclass(frozen=True)
class Sparse:
    """A sparse gradient: rows `indices` of the variable get `values` (repeats add up)."""

    indices: np.ndarray  # int64, shape [k]
    values: np.ndarray  # float32, shape [k, *variable.shape[1:]]


# A gradient is a dense numpy array, a Sparse, or None (the pair is present with no gradient).
Gradient = Union[np.ndarray, Sparse, None]
# One step: (variable index, gradient) pairs in call order. A variable not mentioned is *absent*.
Step = Sequence[Tuple[int, Gradient]]


# --------------------------------------------------------------------------- capabilities
# What an implementation's API can express. `Adapter.unsupported()` maps each one it cannot
# express to the reason; the suite then reports the checks needing it as not applicable, with
# that reason. A behaviour the API can express but gets different from the spec is never
# "unsupported": it is a failure, recorded in the adapter's expectations file.

CAPABILITIES: Mapping[str, str] = {
    "none_gradient": "a pair whose gradient is None (tf_keras: (None, var))",
    "absent_variables": "a step that gives no gradient at all for some variables",
    "sparse_gradient": "sparse (IndexedSlices-like) gradients, repeated indices included",
    "compiled_step": "a step inside the framework's compiler (tf.function, jax.jit, torch.compile)",
    "step_errors": "a step that raises on bad input (unlisted or doubly listed variable, bad shape)",
    "state": "the optimizer state as an ordered list of arrays, readable and writable",
    "config": "a JSON-serialisable config that rebuilds the optimizer",
    "checkpoint": "saving and restoring the optimizer state to files",
    "sub_clipping": "clip settings on the sub-optimizers themselves",
    "composite_clipping": "clip settings on the composite",
    "replicas": "steps on several replicas whose gradients are summed",
    "tf_keras_api": "the tf_keras drop-in API (Instance.native is a tf_keras legacy optimizer)",
    "changing_groups": "entries whose variables change between steps (a variable listed later, or moved to "
                       "another entry): Instance.regroup",
    "parameter_servers": "a parameter-server cluster (--device ps:W): variables partitioned into shards, "
                         "named whole or by shard, and steps scheduled asynchronously on the workers",
}


class DeviceUnavailable(RuntimeError):
    """Raised by `Adapter.set_device` when the requested device is not present."""


class Unsupported(Exception):
    """Raised by an adapter method for a case its implementation cannot express.

    The suite reports the check as not applicable, with `str(exc)` as the reason.
    Prefer declaring a capability in `unsupported()`; raise this for finer cases
    (one hyperparameter a framework lacks, say).
    """


class Refused(Exception):
    """The implementation under test raised `exception` (see `implementation_call`).

    The suite counts a refusal only in this form; its type and message are those of `exception`.
    """

    def __init__(self, exception: BaseException):
        super().__init__(f"{type(exception).__name__}: {exception}")
        self.exception = exception


@contextlib.contextmanager
def implementation_call():
    """Marks a call into the implementation under test: an exception raised inside becomes `Refused`.

    Wrap exactly the implementation's own calls (its constructor, apply, reading and writing its
    state, config, checkpoints), not the adapter's conversions around them, so that a bug in the
    adapter surfaces as an error instead of passing for the implementation's refusal. `Unsupported`
    and `DeviceUnavailable` (the adapter's own signals) pass through unchanged.
    """
    try:
        yield
    except (Unsupported, DeviceUnavailable, Refused):
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the implementation raises is its refusal.
        raise Refused(exc) from exc


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class Instance(Protocol):
    """A built composite (or, for the oracle, one sub-optimizer alone) and its variables."""

    def step(self, pairs: Step, *, compiled: bool = False) -> None:
        """Apply one step. The implementation raises where the spec says the call fails; its
        exception reaches the suite as `Refused` (run the call inside `implementation_call()`)."""

    def step_replicas(self, per_replica: Sequence[Step]) -> None:
        """Apply one step on len(per_replica) replicas, replica r getting per_replica[r]."""

    def step_async(self, steps: Sequence[Step]) -> None:
        """Optional (capability "parameter_servers"): schedule every step on the workers without
        waiting in between, then wait for all; the order they run in is the cluster's."""

    def variables(self) -> list:
        """Current values of the variables, as numpy arrays, in creation order."""

    def iterations(self) -> int:
        """The composite's step counter (for a standalone sub-optimizer, its own counter)."""

    def sub_iterations(self) -> list:
        """Each entry's sub-optimizer's own step counter, one per entry of the spec, in entry order
        (standalone: [its counter]). Read each entry's own sub-optimizer (the one the adapter built
        for it), not a list the implementation keeps: an implementation may hold more optimizers
        (a default one for unlisted variables) or order them otherwise."""

    def materialize(self) -> None:
        """Create all optimizer state for all variables without stepping (idempotent)."""

    def state(self) -> list:
        """The optimizer state as numpy arrays, in the implementation's documented order."""

    def set_state(self, values: Sequence[np.ndarray]) -> None:
        """Write the state back; raise on a count or shape mismatch, writing nothing."""

    def config(self) -> Any:
        """A JSON-serialisable config of the composite."""

    def save(self, directory: str) -> str:
        """Save variables and optimizer state under `directory`; return what `restore` takes."""

    def restore(self, path: str) -> None:
        """Restore what `save` wrote into this instance (same structure)."""

    @property
    def native(self) -> Any:
        """The implementation's own optimizer object (used by tf_keras_api checks)."""

    # Optional (protocol 2), for adapters without the "changing_groups" capability unsupported:
    #
    # def regroup(self, groups: Sequence[Sequence[int]]) -> None:
    #     """From the next step on, entry k's var-list callable returns the variables `groups[k]`
    #     (same number of entries; a variable in no group is unlisted). The implementation is not
    #     told: it must see the change by calling the callables afresh (SPEC ROUTE-1)."""
    #
    # def assign_variables(self, values: Sequence[np.ndarray]) -> None:
    #     """Overwrite the variables' values, leaving the optimizer state alone. Needed on standalone
    #     instances: the oracle moves a variable's current value into the entry it joins."""


@runtime_checkable
class Adapter(Protocol):
    """Drives one implementation. See README "Validating your port"."""

    protocol_version: int
    name: str
    framework: str  # Key into conformance/tolerances.py: "tensorflow", "jax", "torch", ...

    def info(self) -> Mapping[str, str]:
        """Shown in the report header: at least "implementation" and "version"."""

    def unsupported(self) -> Mapping[str, str]:
        """Capability name -> why this implementation cannot express it. Absent means supported."""

    def optimizer_kinds(self) -> Sequence[str]:
        """The OPTIMIZER_KINDS this adapter can build; the suite generates only these."""

    def set_device(self, device: str) -> None:
        """A `parse_device` string ("cpu", "gpu", "tpu", "replicas:N", "workers:N", "ps:W"); raise
        DeviceUnavailable if absent, Unsupported if the implementation cannot run there."""

    def composite(self, spec: CompositeSpec, variables: Sequence[VariableSpec]) -> Instance:
        """Build the composite under test over fresh variables."""

    def standalone(self, optimizer: SubOptimizer, variables: Sequence[VariableSpec]) -> Instance:
        """Build one sub-optimizer alone over fresh variables (possibly none): the suite's oracle.
        Marking its calls with `implementation_call()` is optional: whatever the oracle raises is
        reported as an error of the run, never as the implementation's behaviour."""

    def from_config(self, config: Any, variables: Sequence[VariableSpec], groups: Sequence[Sequence[int]]) -> Instance:
        """Rebuild a composite from `Instance.config()` over fresh variables grouped as given."""


# The device grammar, shared by the command line (validated before any check runs) and adapters.
# kind -> (what the number counts, its smallest value); kinds without a number take none.
DEVICE_KINDS: Mapping[str, Optional[Tuple[str, int]]] = {
    "cpu": None,
    "gpu": None,
    "tpu": None,
    "replicas": ("replicas of tf.distribute.MirroredStrategy in one process", 1),
    "workers": ("worker processes of tf.distribute.MultiWorkerMirroredStrategy", 1),
    "ps": ("worker processes of tf.distribute.ParameterServerStrategy (with 2 parameter servers)", 1),
}
DEVICE_SYNTAX = "cpu, gpu, tpu, replicas:N, workers:N or ps:N (N a whole number >= 1)"


@dataclasses.dataclass(frozen=True)
class Device:
    """A parsed `--device` value: its kind and, for the distributed kinds, its count."""

    kind: str
    count: int = 1

    def __str__(self) -> str:
        return self.kind if DEVICE_KINDS[self.kind] is None else f"{self.kind}:{self.count}"


def parse_device(device: str) -> Device:
    """`Device` for a `--device` string; ValueError naming the value and the accepted forms."""
    kind, sep, number = str(device).partition(":")
    if kind not in DEVICE_KINDS:
        raise ValueError(f"--device {device!r}: unknown device; accepted: {DEVICE_SYNTAX}")
    counted = DEVICE_KINDS[kind]
    if counted is None:
        if sep:
            raise ValueError(f"--device {device!r}: {kind} takes no count; accepted: {DEVICE_SYNTAX}")
        return Device(kind)
    if not number.isdigit() or int(number) < counted[1]:
        raise ValueError(f"--device {device!r}: {kind}:N needs N, the number of {counted[0]}, "
                         f"a whole number >= {counted[1]}")
    return Device(kind, int(number))


def replicas_of(device: str) -> int:
    """The replica count of a device string: N for "replicas:N", else 1."""
    parsed = parse_device(device)
    return parsed.count if parsed.kind == "replicas" else 1


# What a version-1 instance's methods do is all taken as the implementation's (see the module doc).
_INSTANCE_METHODS = ("step", "step_replicas", "variables", "iterations", "sub_iterations", "materialize", "state",
                     "set_state", "config", "save", "restore")
_VERSION_1_NO_REGROUP = ("the adapter is written for protocol version 1, which has no Instance.regroup; "
                         "upgrade it to version 2 to have changing var lists checked")


class _Version1Instance:
    def __init__(self, instance):
        self._instance = instance

    def __getattr__(self, name):
        value = getattr(self._instance, name)
        if name not in _INSTANCE_METHODS:
            return value

        @functools.wraps(value)
        def marked(*args, **kwargs):
            with implementation_call():
                return value(*args, **kwargs)

        return marked


class _Version1Adapter:
    """A version-1 adapter seen through version 2: every exception its methods raise is `Refused`."""

    protocol_version = PROTOCOL_VERSION

    def __init__(self, adapter):
        self.wrapped = adapter

    def __getattr__(self, name):
        return getattr(self.wrapped, name)

    def unsupported(self) -> Mapping[str, str]:
        return {**self.wrapped.unsupported(), "changing_groups": _VERSION_1_NO_REGROUP}

    def composite(self, spec, variables):
        with implementation_call():
            return _Version1Instance(self.wrapped.composite(spec, variables))

    def standalone(self, optimizer, variables):
        with implementation_call():
            return _Version1Instance(self.wrapped.standalone(optimizer, variables))

    def from_config(self, config, variables, groups):
        with implementation_call():
            return _Version1Instance(self.wrapped.from_config(config, variables, groups))


def summed_replicas(device: str) -> int:
    """How many replicas' gradients one step sums (SPEC DIST-1): N for "replicas:N" (N devices of
    one process) and "workers:N" (one replica per worker process); 1 otherwise, "ps:W" included,
    where each worker's step is its own step (SPEC DIST-3)."""
    parsed = parse_device(device)
    return parsed.count if parsed.kind in ("replicas", "workers") else 1


def load_adapter(obj: Any) -> Adapter:
    """Instantiate (if a class) and check an adapter against this protocol (version 1 through a shim)."""
    adapter = obj() if isinstance(obj, type) else obj
    missing = [
        name
        for name in ("protocol_version", "name", "framework", "info", "unsupported", "optimizer_kinds",
                     "set_device", "composite", "standalone", "from_config")
        if not hasattr(adapter, name)
    ]
    if missing:
        raise TypeError(f"{obj!r} is not a conformance adapter: it lacks {missing} (see adapters/protocol.py).")
    if adapter.protocol_version > PROTOCOL_VERSION:
        raise TypeError(
            f"Adapter {adapter.name!r} is written for protocol version {adapter.protocol_version}, "
            f"but this suite knows version {PROTOCOL_VERSION} at most: upgrade the suite."
        )
    if adapter.protocol_version < 2:
        return _Version1Adapter(adapter)
    return adapter
