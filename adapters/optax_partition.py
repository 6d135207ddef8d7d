"""The optax adapter: drives `optax.partition` (alias `optax.multi_transform`) on JAX.

The composite is what an optax user writes for "Adam on these parameters, SGD on
those"::

    tx = optax.partition({"entry_0": adam, "entry_1": sgd}, param_labels=[...])
    tx = optax.chain(<composite clipping>, tx)          # only when the spec clips
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)

Parameters are a list of float32 jax arrays in creation order; `param_labels` is a
list of the same length naming each parameter's entry. The suite's oracle
(`standalone`) is one sub-transform alone over its own fresh parameters.

How the protocol maps onto optax, and why (the report's not-applicable reasons
come from `OptaxAdapter.unsupported`):

- A JAX gradient is a dense array in a pytree with one leaf per parameter: there is
  no `None` gradient, no IndexedSlices, and no way to leave a parameter out of a step
  (`update` needs the parameters' tree structure; `jax.grad` gives a parameter the loss
  did not use a zero, which optax, like every optimizer, applies as a gradient). So
  "absent_variables" is unsupported, and a step that leaves out a variable some entry
  lists raises `Unsupported`. A variable no entry lists reaches no entry: it gets the zero
  `jax.grad` gives it (optax refuses such a parameter at `init` anyway, see below).
- An entry whose group is empty is expressible (a label no parameter has), and optax
  still runs its `update` on every step: its `count` advances (SPEC ROUTE-7 / ITER-3).
- Labels are one per parameter, so a variable listed by two entries cannot be
  expressed (`Unsupported`). A variable listed by none gets a label that has no
  transformation: optax then refuses to initialise the state (`ValueError`), on the
  first step or `materialize()`, whatever that step's gradients are.
- `optax.partition` keeps no step counter of its own: `iterations()` of a composite
  raises `Unsupported`. A sub-transform's counter is the `count` field of its state
  (the first in tree order); optax.sgd, adagrad and rmsprop with a constant learning
  rate keep none, and `sub_iterations()` raises `Unsupported` for them.
- Clipping is chained before the transformation it clips: `clipvalue` ->
  `optax.clip`, `clipnorm` -> `clip_by_norm_per_leaf` (below; optax has no per-tensor
  L2-norm clip), `global_clipnorm` -> `optax.clip_by_global_norm`, in that order.
  optax validates none of these values, and neither does this adapter.
- The state is `jax.tree_util.tree_leaves(opt_state)`: for each entry, in entry
  order, the leaves of its sub-transform's state (e.g. Adam: count, mu per
  parameter, nu per parameter, then a schedule's count). Clipping adds no leaves.
- Refusals: optax's own calls (building the transformations, `init`, `update`,
  `apply_updates`) run inside `protocol.implementation_call()`, so what optax raises is its
  refusal. optax has no call that writes a state: a caller builds the pytree. `set_state`
  of a list that does not fit the state is therefore `Unsupported` (refusing it would be this
  adapter's act, not optax's); a fitting list is unflattened into the state's structure.
- Var lists cannot change between steps ("changing_groups"): see `OptaxAdapter.unsupported`.
- Checkpoints: optax has no file format of its own; JAX checkpointing (orbax,
  flax.serialization) saves the parameter and state pytrees' leaves and restores
  them into a target of the same structure. `save` does exactly that with a `.npz`.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from adapters import protocol
from adapters.protocol import Clip, CompositeSpec, DeviceUnavailable, Sparse, SubOptimizer, Unsupported, VariableSpec


_NO_COUNTER = (
    "optax.partition keeps no composite step counter: its state is only its entries' states "
    "(PartitionState.inner_states), and each entry counts its own updates"
)
_UNLISTED = "unlisted"  # The label of a variable no entry lists: it has no transformation.


# --------------------------------------------------------------------------- building


def make_schedule(schedule: protocol.Schedule) -> Callable[[Any], Any]:
    """An optax schedule (count -> learning rate) for a framework-neutral description.

    optax evaluates it at the sub-transform's own count before the update, 0 first,
    as tf_keras does with `iterations`.
    """
    p = dict(schedule.params)
    if schedule.kind == "exponential_decay":
        return optax.exponential_decay(
            init_value=p["initial_learning_rate"],
            transition_steps=p["decay_steps"],
            decay_rate=p["decay_rate"],
            staircase=bool(p.get("staircase", False)),
        )
    if schedule.kind == "piecewise_constant":
        # optax.piecewise_constant_schedule multiplies scales and switches at count >= boundary;
        # the description switches after the boundary (values[i] for b[i-1] < t <= b[i]).
        boundaries = jnp.asarray(p["boundaries"], jnp.float32)
        values = jnp.asarray(p["values"], jnp.float32)
        return lambda count: values[jnp.sum(count > boundaries)]
    if schedule.kind == "inverse_time_decay":
        # optax has no inverse-time decay; a schedule is any count -> value function.
        initial, rate, steps = p["initial_learning_rate"], p["decay_rate"], p["decay_steps"]
        staircase = bool(p.get("staircase", False))

        def inverse_time_decay(count):
            t = jnp.asarray(count, jnp.float32) / steps
            return initial / (1.0 + rate * (jnp.floor(t) if staircase else t))

        return inverse_time_decay
    raise Unsupported(f"learning-rate schedule kind {schedule.kind!r} has no optax mapping in this adapter")


def clip_by_norm_per_leaf(max_norm) -> optax.GradientTransformation:
    """Clip each update tensor by its own L2 norm: `g * c / max(‖g‖, c)` (tf.clip_by_norm).

    optax's per-tensor clip, `clip_by_block_rms`, bounds the RMS `‖g‖ / sqrt(g.size)`,
    a different quantity, so a port author needs these few lines.
    """

    def clip(updates, params=None):
        del params

        def one(g):
            norm = jnp.sqrt(jnp.sum(g * g))
            return g * max_norm / jnp.maximum(norm, max_norm)

        return jax.tree_util.tree_map(one, updates)

    return optax.stateless(clip)


def clip_transforms(clip: Clip) -> list:
    """The clipping transformations of `clip`, in tf_keras' order (SPEC CLIP-1)."""
    chain = []
    if clip.clipvalue is not None:
        chain.append(optax.clip(clip.clipvalue))
    if clip.clipnorm is not None:
        chain.append(clip_by_norm_per_leaf(clip.clipnorm))
    if clip.global_clipnorm is not None:
        chain.append(optax.clip_by_global_norm(clip.global_clipnorm))
    return chain


_KINDS = ("sgd", "adam", "adagrad", "rmsprop", "adamax", "nadam")  # No ftrl: optax has none.


def make_sub_transform(sub: SubOptimizer) -> optax.GradientTransformation:
    """The optax transformation for a framework-neutral sub-optimizer, its own clipping first."""
    if sub.kind not in _KINDS:
        raise Unsupported(f"optax has no {sub.kind!r} optimizer (optax.ftrl does not exist)")
    h = protocol.hyperparameters(sub)
    lr = sub.learning_rate
    if isinstance(lr, protocol.Schedule):
        lr = make_schedule(lr)
    if sub.kind == "sgd":
        # tf_keras momentum 0 keeps no slot; optax's equivalent is momentum=None (no trace).
        tx = optax.sgd(lr, momentum=h["momentum"] or None, nesterov=bool(h["nesterov"]))
    elif sub.kind == "adam":
        make = optax.amsgrad if h["amsgrad"] else optax.adam
        tx = make(lr, b1=h["beta_1"], b2=h["beta_2"], eps=h["epsilon"])
    elif sub.kind == "adagrad":
        tx = optax.adagrad(lr, initial_accumulator_value=h["initial_accumulator_value"], eps=h["epsilon"])
    elif sub.kind == "rmsprop":
        tx = optax.rmsprop(
            lr, decay=h["rho"], eps=h["epsilon"], centered=bool(h["centered"]), momentum=h["momentum"] or None
        )
    elif sub.kind == "adamax":
        tx = optax.adamax(lr, b1=h["beta_1"], b2=h["beta_2"], eps=h["epsilon"])
    else:  # nadam
        tx = optax.nadam(lr, b1=h["beta_1"], b2=h["beta_2"], eps=h["epsilon"])
    clips = clip_transforms(sub.clip)
    return optax.chain(*clips, tx) if clips else tx


def entry_labels(count: int) -> list:
    """Labels for `count` entries that sort in entry order (partition's state is a dict)."""
    width = len(str(max(count - 1, 0)))
    return [f"entry_{k:0{width}d}" for k in range(count)]


def make_composite_transform(spec: CompositeSpec, num_variables: int):
    """`optax.partition` for `spec` (chained after the composite's clipping), the entry labels, and
    each parameter's label."""
    labels = entry_labels(len(spec.groups))
    param_labels = [_UNLISTED] * num_variables
    owner = {}
    for k, group in enumerate(spec.groups):
        for i in group.variables:
            if i in owner:
                raise Unsupported(
                    f"variable {i} is listed by entries {owner[i]} and {k}: optax.partition labels each "
                    "parameter once, so a variable in two entries cannot be expressed"
                )
            owner[i] = k
            param_labels[i] = labels[k]
    transforms = {label: make_sub_transform(g.optimizer) for label, g in zip(labels, spec.groups)}
    tx = optax.partition(transforms, param_labels)
    clips = clip_transforms(spec.clip)
    return (optax.chain(*clips, tx) if clips else tx), labels, param_labels


# --------------------------------------------------------------------------- reading state


def _find_partition_state(state):
    if isinstance(state, optax.transforms.PartitionState):
        return state
    if isinstance(state, tuple):  # chain states and NamedTuples
        for item in state:
            found = _find_partition_state(item)
            if found is not None:
                return found
    return None


def _count_of(state) -> Optional[int]:
    """The first `count` field of a sub-transform's state in tree order; None when it keeps none."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if path and isinstance(path[-1], jax.tree_util.GetAttrKey) and path[-1].name == "count":
            return int(leaf)
    return None


# --------------------------------------------------------------------------- instances


class OptaxInstance:
    """An optax transformation (the composite, or one sub-transform alone) and its parameters.

    Steps are functional: `update` computes new parameters and state, and they replace
    the old ones only when it returns. A step that raises therefore changes nothing.
    """

    def __init__(self, device, tx, params: list, labels: Optional[list], kinds: list,
                 param_labels: Optional[list] = None):
        self._device = device
        self._tx = tx
        self._params = params
        self._labels = labels  # Entry labels in entry order; None for a standalone sub-transform.
        self._param_labels = param_labels  # Each parameter's label; None for a standalone sub-transform.
        self._kinds = kinds
        self._state = None  # Created by materialize() or the first step, as optax.init would be.
        self._compiled_step = None

    # -- stepping
    def _gradients(self, pairs) -> list:
        seen = {}
        grads = [None] * len(self._params)
        for position, (i, g) in enumerate(pairs):
            if g is None:
                raise Unsupported("JAX has no None gradient: a gradient pytree holds an array for every parameter")
            if isinstance(g, Sparse):
                raise Unsupported("JAX has no sparse (IndexedSlices) gradient: optax transforms take dense arrays")
            if i in seen:
                raise Unsupported(
                    f"pairs {seen[i]} and {position} both give variable {i} a gradient: a gradient pytree "
                    "holds one gradient per parameter"
                )
            seen[i] = position
            grads[i] = jax.device_put(np.asarray(g), self._device)
        absent = [i for i, g in enumerate(grads) if g is None and self._listed(i)]
        if absent:
            raise Unsupported(f"variables {absent} are absent from the step: {OptaxAdapter.ABSENT_REASON}")
        # A variable no entry lists gets the zero jax.grad gives a parameter the loss does not use: no
        # entry would apply it (optax refuses the parameter at init, whatever its gradient).
        return [jnp.zeros_like(p) if g is None else g for p, g in zip(self._params, grads)]

    def _listed(self, i: int) -> bool:
        """Whether an entry lists variable i (every variable of a standalone sub-transform is listed)."""
        return self._param_labels is None or self._param_labels[i] != _UNLISTED

    def _init_state(self):
        # Committed to the device like the parameters, so jit sees the same placement every step.
        with jax.default_device(self._device), protocol.implementation_call():
            return jax.device_put(self._tx.init(self._params), self._device)

    def _update(self, params, state, grads):
        updates, state = self._tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    def step(self, pairs, *, compiled: bool = False) -> None:
        grads = self._gradients(list(pairs))
        state = self._init_state() if self._state is None else self._state
        with jax.default_device(self._device), protocol.implementation_call():
            if compiled:
                if self._compiled_step is None:
                    self._compiled_step = jax.jit(self._update)
                params, state = self._compiled_step(self._params, state, grads)
            else:
                params, state = self._update(self._params, state, grads)
        self._params, self._state = list(params), state

    def step_replicas(self, per_replica) -> None:
        raise Unsupported(OptaxAdapter.REPLICAS_REASON)

    # -- reading and writing state
    def variables(self) -> list:
        return [np.array(p) for p in self._params]

    def _current_state(self):
        if self._state is not None:
            return self._state
        return self._init_state()  # What the state would be: counters at 0.

    def iterations(self) -> int:
        if self._labels is not None:
            raise Unsupported(_NO_COUNTER)
        return self.sub_iterations()[0]

    def sub_iterations(self) -> list:
        state = self._current_state()
        if self._labels is None:
            entry_states = [state]
        else:
            inner = _find_partition_state(state).inner_states
            entry_states = [inner[label].inner_state for label in self._labels]
        counts = []
        for k, entry_state in enumerate(entry_states):
            count = _count_of(entry_state)
            if count is None:
                raise Unsupported(
                    f"entry {k}'s optax.{self._kinds[k]} keeps no step counter in its state "
                    "(optax counts steps only where a schedule or bias correction needs it)"
                )
            counts.append(count)
        return counts

    def materialize(self) -> None:
        if self._state is None:
            self._state = self._init_state()

    def state(self) -> list:
        if self._state is None:
            return []
        return [np.array(leaf) for leaf in jax.tree_util.tree_leaves(self._state)]

    def _checked_leaves(self, values, current: list, what: str) -> list:
        values = list(values)
        if len(values) != len(current):
            raise ValueError(f"{what}: expected {len(current)} arrays, got {len(values)}")
        for position, (value, leaf) in enumerate(zip(values, current)):
            if np.shape(value) != np.shape(leaf):
                raise ValueError(
                    f"{what}: array {position} has shape {np.shape(value)}, the state holds {np.shape(leaf)} there"
                )
        return [jax.device_put(np.asarray(v, dtype=np.asarray(leaf).dtype), self._device)
                for v, leaf in zip(values, current)]

    def set_state(self, values) -> None:
        values = list(values)
        leaves, treedef = jax.tree_util.tree_flatten(self._state) if self._state is not None else ([], None)
        if len(values) != len(leaves) or any(np.shape(v) != np.shape(leaf) for v, leaf in zip(values, leaves)):
            raise Unsupported(OptaxAdapter.NO_STATE_WRITE_REASON)
        if treedef is not None:
            self._state = jax.tree_util.tree_unflatten(treedef, self._checked_leaves(values, leaves, "set_state"))

    def config(self) -> Any:
        raise Unsupported(OptaxAdapter.CONFIG_REASON)

    def save(self, directory: str) -> str:
        path = os.path.join(directory, "optax_checkpoint.npz")
        arrays = {f"param_{i}": np.asarray(p) for i, p in enumerate(self._params)}
        arrays.update({f"state_{i}": s for i, s in enumerate(self.state())})
        np.savez(path, **arrays)
        return path

    def restore(self, path: str) -> None:
        with np.load(path) as data:
            params = [data[f"param_{i}"] for i in range(sum(k.startswith("param_") for k in data.files))]
            saved_state = [data[f"state_{i}"] for i in range(sum(k.startswith("state_") for k in data.files))]
        new_params = self._checked_leaves(params, self._params, f"restore {path} (parameters)")
        if saved_state:
            state = self._current_state()
            leaves, treedef = jax.tree_util.tree_flatten(state)
            new_state = jax.tree_util.tree_unflatten(
                treedef, self._checked_leaves(saved_state, leaves, f"restore {path} (optimizer state)")
            )
        else:
            new_state = None
        self._params, self._state = new_params, new_state

    @property
    def native(self):
        return self._tx


class OptaxAdapter:
    """The bundled `optax` adapter: `optax.partition` over a list of jax arrays (see module doc)."""

    protocol_version = protocol.PROTOCOL_VERSION
    name = "optax"
    framework = "jax"

    CONFIG_REASON = (
        "an optax GradientTransformation is a pair of (init, update) closures: optax has no config "
        "or serialisation of a transformation"
    )
    NO_STATE_WRITE_REASON = (
        "optax has no call that writes an optimizer state: the caller builds the state pytree itself, "
        "so a list of arrays that does not fit it is never handed to optax, and refusing it would be "
        "this adapter's act, not optax's"
    )
    CHANGING_GROUPS_REASON = (
        "optax.partition's entries are labels over a parameter pytree whose structure is fixed when the "
        "state is initialised (each entry's state is built over its masked parameters); a parameter that "
        "appears or changes entry is a new pytree, which needs a new init: there are no var-list "
        "callables to call again"
    )
    ABSENT_REASON = (
        "a JAX gradient is a pytree with an array for every parameter (optax's update needs the "
        "parameters' tree structure), so no step can leave a parameter out; jax.grad gives a parameter "
        "the loss did not use a zero, which optax applies like any gradient (count advances, momentum "
        "moves), as tf_keras and every optimizer do with a zero gradient: \"no gradient\" has no optax form"
    )
    REPLICAS_REASON = (
        "optax transformations do not aggregate across replicas: the caller sums gradients "
        "(jax.lax.psum under pmap/shard_map) before calling update, so the composite takes no part "
        "in it; and simulated CPU devices need XLA_FLAGS set before JAX starts"
    )

    def __init__(self):
        self._device = jax.devices("cpu")[0]

    def info(self):
        return {
            "implementation": "optax.partition (optax.multi_transform)",
            "version": optax.__version__,
            "jax": jax.__version__,
        }

    def unsupported(self):
        return {
            "none_gradient": "a JAX gradient pytree holds an array for every parameter: there is no None gradient",
            "absent_variables": self.ABSENT_REASON,
            "sparse_gradient": (
                "JAX has no IndexedSlices: jax.grad of a gather is a dense array, and optax transforms "
                "take dense arrays only"
            ),
            "config": self.CONFIG_REASON,
            "replicas": self.REPLICAS_REASON,
            "tf_keras_api": "optax is not a tf_keras optimizer",
            "changing_groups": self.CHANGING_GROUPS_REASON,
        }

    def optimizer_kinds(self):
        return _KINDS

    def set_device(self, device: str) -> None:
        if device in ("gpu", "tpu"):
            try:
                self._device = jax.devices(device)[0]
            except RuntimeError as exc:  # JAX raises when no backend of that kind is present.
                raise DeviceUnavailable(f"--device {device}: JAX sees no {device.upper()} ({exc})") from None
            return
        if device == "cpu":
            self._device = jax.devices("cpu")[0]
            return
        if protocol.replicas_of(device) > 1:
            raise Unsupported(self.REPLICAS_REASON)
        raise ValueError(f"unknown device {device!r}: expected cpu, gpu, tpu or replicas:N")

    def _params(self, variables: Sequence[VariableSpec]) -> list:
        return [jax.device_put(np.asarray(v.value, np.float32), self._device) for v in variables]

    def composite(self, spec: CompositeSpec, variables: Sequence[VariableSpec]) -> OptaxInstance:
        with protocol.implementation_call():
            tx, labels, param_labels = make_composite_transform(spec, len(variables))
        kinds = [g.optimizer.kind for g in spec.groups]
        return OptaxInstance(self._device, tx, self._params(variables), labels, kinds, param_labels)

    def standalone(self, optimizer: SubOptimizer, variables: Sequence[VariableSpec]) -> OptaxInstance:
        with protocol.implementation_call():
            tx = make_sub_transform(optimizer)
        return OptaxInstance(self._device, tx, self._params(variables), None, [optimizer.kind])

    def from_config(self, config, variables: Sequence[VariableSpec], groups) -> OptaxInstance:
        raise Unsupported(self.CONFIG_REASON)
