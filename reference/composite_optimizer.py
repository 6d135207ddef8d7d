"""The reference composite optimizer.

`CompositeOptimizer` routes each (gradient, variable) pair to the sub-optimizer
whose variable callable lists that variable, and is a drop-in replacement for
`tfrs.experimental.optimizers.CompositeOptimizer` (same constructor, same
checkpoint layout). Every behaviour below is a numbered requirement in
`reference/SPEC.md`; the ids are cited where the code implements them.

The contract in one line: a step of the composite is

    g      = clip(aggregate_over_replicas(g))       # CLIP-1..4, DIST-1
    for i: optimizers[i].apply(g restricted to group i)   if group i is non-empty
    iterations += 1                                  # ITER-1

with every check done before the first write (ATOM-1).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras
from tf_keras.src.optimizers import utils as optimizer_utils

LegacyOptimizer = tf_keras.optimizers.legacy.Optimizer
VarCallable = Callable[[], Sequence[tf.Variable]]

CLIP_SETTINGS = ("clipnorm", "clipvalue", "global_clipnorm")
_CONFIG_KEYS = frozenset({"name", "optimizers", "var_lists", "is_legacy_optimizer", *CLIP_SETTINGS})


def _validate_clip_setting(key: str, value: Any) -> None:
    """CTOR-4: a clip setting is a positive finite real number (or None)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{key}` must be a positive finite number or None; received {value!r}.")
    if not (math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(f"`{key}` must be a positive finite number or None; received {value!r}.")


def _validate_entries(optimizers_and_vars) -> List[Tuple[LegacyOptimizer, VarCallable]]:
    """CTOR-2, CTOR-3: the entry list is non-empty and each entry is (optimizer, callable)."""
    if optimizers_and_vars is None:
        raise ValueError("`optimizers_and_vars` can't be None: pass a list of (optimizer, callable) pairs.")
    try:
        entries = list(optimizers_and_vars)
    except TypeError:
        raise TypeError(
            "`optimizers_and_vars` must be a list of (optimizer, callable) pairs; "
            f"received {type(optimizers_and_vars).__name__}."
        ) from None
    if not entries:
        raise ValueError("`optimizers_and_vars` can't be empty: pass at least one (optimizer, callable) pair.")
    checked = []
    seen = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            raise TypeError(
                f"optimizers_and_vars[{index}] must be an (optimizer, callable) pair; received {entry!r}."
            )
        optimizer, var_callable = entry
        if not isinstance(optimizer, LegacyOptimizer):
            raise TypeError(
                f"optimizers_and_vars[{index}][0] must be a tf_keras.optimizers.legacy.Optimizer; "
                f"received {type(optimizer).__name__}."
            )
        if isinstance(optimizer, CompositeOptimizer):
            raise TypeError(f"optimizers_and_vars[{index}][0] is a CompositeOptimizer; composites do not nest.")
        if not callable(var_callable):
            raise TypeError(
                f"optimizers_and_vars[{index}][1] must be a callable returning variables; "
                f"received {type(var_callable).__name__}."
            )
        if id(optimizer) in seen:
            raise ValueError(
                f"optimizers_and_vars[{seen[id(optimizer)]}] and optimizers_and_vars[{index}] hold the same "
                "optimizer instance; each entry needs its own optimizer."
            )
        seen[id(optimizer)] = index
        checked.append((optimizer, var_callable))
    return checked


def _callable_name(var_callable: VarCallable) -> str:
    """CONF-2: the Keras registered name of a var-list callable."""
    try:
        name = tf_keras.saving.get_registered_name(var_callable)
    except AttributeError:  # no `__name__`
        name = None
    except TypeError:  # unhashable, so it cannot be registered: its own name, if it has one
        name = getattr(var_callable, "__name__", None)
    if not name or name == "<lambda>" or not isinstance(name, str):
        raise ValueError(
            f"Cannot serialise the var-list callable {var_callable!r}: it has no usable name. "
            "Use a named function (def), or register it with "
            "`tf_keras.saving.register_keras_serializable(package=...)`."
        )
    return name


def _deserialize_optimizer(config: dict, custom_objects: dict) -> LegacyOptimizer:
    """CONF-3: `tf_keras.optimizers.deserialize`, learning-rate schedules included.

    Some legacy optimizers' own `from_config` (Adagrad's, for one) pass a serialized schedule
    straight to `__init__`, which fails; so the schedule is deserialized here first.
    """
    inner = config.get("config", {})
    if isinstance(inner.get("learning_rate"), dict):
        schedule = tf_keras.optimizers.schedules.deserialize(inner["learning_rate"], custom_objects=custom_objects)
        config = {**config, "config": {**inner, "learning_rate": schedule}}
    return tf_keras.optimizers.deserialize(config, custom_objects=custom_objects, use_legacy_optimizer=True)


_ShardedVariable = tf.__internal__.distribute.ShardedVariable
# Strategies under which tf_keras refuses `experimental_aggregate_gradients=False` (DIST-3): each
# worker is one replica there, so the sub-optimizers' own aggregation sums nothing.
_REFUSE_UNAGGREGATED = (tf.distribute.experimental.ParameterServerStrategy,
                        tf.compat.v1.distribute.experimental.ParameterServerStrategy,
                        tf.distribute.experimental.CentralStorageStrategy,
                        tf.compat.v1.distribute.experimental.CentralStorageStrategy)


def _is_variable(obj: Any) -> bool:
    return isinstance(obj, (tf.Variable, _ShardedVariable)) or hasattr(obj, "ref") and hasattr(obj, "assign")


def _shards(var) -> list:
    """DIST-2: what a partitioned variable stands for, its shards; any other variable, itself."""
    return list(var.variables) if isinstance(var, _ShardedVariable) else [var]


def _container(var):
    """DIST-2: the partitioned variable a shard belongs to (the shard itself if none)."""
    ref = getattr(var, "_sharded_container", None)
    return (ref() if ref is not None else None) or var


def _split(grad, var: _ShardedVariable) -> list:
    """DIST-2: a gradient for a whole partitioned variable as (gradient, shard) pairs.

    Partitioners split axis 0: dense rows are sliced at the shard offsets; each shard gets the rows
    of a sparse gradient that fall in it (possibly none, as GradientTape gives), indices made
    shard-local.
    """
    shards = var.variables
    if not isinstance(grad, tf.IndexedSlices):
        return list(zip(tf.split(grad, [shard.shape[0] for shard in shards], axis=0), shards))
    pairs, offset = [], 0
    for shard in shards:
        rows = shard.shape[0]
        mine = tf.logical_and(grad.indices >= offset, grad.indices < offset + rows)
        pairs.append((tf.IndexedSlices(tf.boolean_mask(grad.values, mine),
                                       tf.boolean_mask(grad.indices, mine) - offset,
                                       dense_shape=tf.constant(shard.shape.as_list(), tf.int64)), shard))
        offset += rows
    return pairs


def _clip_by_joint_norm(pairs, clipnorm) -> list:
    """CLIP-1 with DIST-2: `clipnorm` per gradient tensor of the model, so the shards of one
    partitioned variable share the norm of their gradients together."""
    members = {}
    for position, (_, var) in enumerate(pairs):
        members.setdefault(id(_container(var)), []).append(position)
    clipped = list(pairs)
    for positions in members.values():
        values = [_values(pairs[p][0]) for p in positions]
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(v)) for v in values]))
        scale = clipnorm / tf.maximum(norm, clipnorm)
        for p in positions:
            grad, var = pairs[p]
            clipped[p] = (_scaled(grad, scale), var)
    return clipped


def _joint_sub_clipnorm(optimizer, pairs) -> list:
    """DIST-2 with CLIP-3: a sub-optimizer's own `clipnorm` clips each tensor it receives, so it
    would clip a partitioned variable shard by shard. Its clipvalue, then its clipnorm over all the
    shards of one variable, applied here first, leave its own per-shard clipping nothing to do
    (no shard's norm exceeds the whole variable's), and clipvalue is idempotent."""
    if optimizer.clipnorm is None or all(_container(v) is v for _, v in pairs):
        return pairs
    if optimizer.clipvalue is not None:
        pairs = optimizer._clipvalue_fn(pairs)
    return _clip_by_joint_norm(pairs, optimizer.clipnorm)


def _values(grad):
    return grad.values if isinstance(grad, tf.IndexedSlices) else grad


def _scaled(grad, scale):
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(grad.values * tf.cast(scale, grad.values.dtype), grad.indices, grad.dense_shape)
    return grad * tf.cast(scale, grad.dtype)


def _shape_compatible(grad: Any, var: tf.Variable) -> bool:
    if isinstance(grad, tf.IndexedSlices):
        return grad.values.shape[1:].is_compatible_with(var.shape[1:])
    shape = getattr(grad, "shape", None)
    if shape == var.shape:  # The usual case, and the cheap test: both fully known and equal.
        return True
    return tf.TensorShape(shape).is_compatible_with(var.shape)


class CompositeOptimizer(LegacyOptimizer):
    """An optimizer that applies different sub-optimizers to disjoint groups of variables.

    Args:
      optimizers_and_vars: list of `(optimizer, var_callable)` pairs. Each
        optimizer is a `tf_keras.optimizers.legacy.Optimizer` used by this entry
        alone; `var_callable()` returns the variables it trains and is called on
        every `apply_gradients`, so variables created later are picked up.
      name: the optimizer's name.
      **kwargs: `clipvalue`, `clipnorm`, `global_clipnorm`: applied to the
        gradients of all groups together, after cross-replica aggregation and
        before routing (CLIP-1..4). Anything else is a `TypeError`.

    Example:
      >>> opt = CompositeOptimizer([
      ...     (tf_keras.optimizers.legacy.SGD(0.1), lambda: [embedding]),
      ...     (tf_keras.optimizers.legacy.Adam(), lambda: [kernel, bias]),
      ... ], global_clipnorm=1.0)
    """

    _HAS_AGGREGATE_GRAD = True

    def __init__(self, optimizers_and_vars, name: str = "CompositeOptimizer", **kwargs):
        for key in kwargs:  # CTOR-1: only the clip settings, as TypeError like tf_keras.
            if key not in CLIP_SETTINGS:
                raise TypeError(
                    f"Unexpected keyword argument passed to CompositeOptimizer: {key}. "
                    f"Allowed kwargs are {set(CLIP_SETTINGS)}."
                )
        for key in CLIP_SETTINGS:
            _validate_clip_setting(key, kwargs.get(key))
        if kwargs.get("clipnorm") is not None and kwargs.get("global_clipnorm") is not None:
            raise ValueError(
                "Cannot accept both `clipnorm` and `global_clipnorm`. "
                f"Received: clipnorm={kwargs['clipnorm']}, global_clipnorm={kwargs['global_clipnorm']}."
            )
        entries = _validate_entries(optimizers_and_vars)
        super().__init__(name=name, **{k: v for k, v in kwargs.items() if v is not None})
        self._optimizers_and_vars = entries
        for index, (optimizer, _) in enumerate(entries):
            # CTOR-5: TFRS's checkpoint names, so its checkpoints restore here.
            self._track_trackable(optimizer, name=f"Optimizer{index}")

    # ------------------------------------------------------------------ routing

    @property
    def optimizers(self) -> List[LegacyOptimizer]:
        """The sub-optimizers, in entry order."""
        return [optimizer for optimizer, _ in self._optimizers_and_vars]

    def _var_lists(self) -> List[Sequence[tf.Variable]]:
        """Each entry's variables, from its callable, once per call (ROUTE-4)."""
        return [var_callable() for _, var_callable in self._optimizers_and_vars]

    @staticmethod
    def _owners(var_lists) -> dict:
        """ROUTE-1: map `id(v)` to the index of the entry listing `v`.

        Identity, as `v.ref()` compares, but without one `Reference` object per variable per
        step (their garbage dominated the routing cost at thousands of variables). Ids are only
        meaningful while the variables live, so the caller keeps `var_lists` for as long as it
        uses the map.
        """
        owners = {}
        for index, var_list in enumerate(var_lists):
            for var in (shard for listed in var_list for shard in _shards(listed)):  # DIST-2
                owner = owners.setdefault(id(var), index)
                if owner != index:
                    raise ValueError(
                        f"Variable {var.name!r} is listed by optimizers_and_vars[{owner}] and by "
                        f"optimizers_and_vars[{index}]; each variable must belong to exactly one entry."
                    )
        return owners

    def _owner_of(self, var) -> Optional[int]:
        var_lists = self._var_lists()  # Held while the id map is used.
        return self._owners(var_lists).get(id(_shards(var)[0]))

    def _checked_pairs(self, grads_and_vars, var_lists) -> Tuple[list, dict]:
        """ROUTE-2..5, ATOM-1: validate one call's pairs completely, writing nothing.

        Returns the pairs that carry a gradient (the caller's own pair objects, in the call's
        order) and the id map of `_owners(var_lists)`.
        """
        pairs = list(grads_and_vars)  # ROUTE-6: read once.
        for position, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"grads_and_vars[{position}] must be a (gradient, variable) pair; received {pair!r}.")
            if not _is_variable(pair[1]):
                raise TypeError(
                    f"grads_and_vars[{position}][1] must be a tf.Variable; received {type(pair[1]).__name__}."
                )
        if not pairs:
            return [], {}
        applied = [pair for pair in pairs if pair[0] is not None]
        if len(applied) != len(pairs):  # ROUTE-2, ROUTE-3: tf_keras' warning, or its all-None error.
            optimizer_utils.filter_empty_gradients(pairs)
        owners = self._owners(var_lists)
        seen = set()
        partitioned = False
        for grad, var in applied:
            for shard in _shards(var):  # DIST-2: a partitioned variable is each of its shards.
                key = id(shard)
                if key not in owners:
                    raise ValueError(
                        f"Variable {shard.name!r} has a gradient but is listed by no entry of the "
                        "CompositeOptimizer, so it would not be trained."
                    )
                if key in seen:
                    raise ValueError(f"Variable {shard.name!r} appears twice in grads_and_vars.")
                seen.add(key)
            partitioned = partitioned or isinstance(var, _ShardedVariable)
            if not _shape_compatible(grad, var):
                raise ValueError(
                    f"The gradient for variable {var.name!r} has shape {grad.shape}, "
                    f"which does not match the variable's shape {var.shape}."
                )
        if partitioned:  # DIST-2: routed, clipped and applied per shard, the caller's order kept.
            applied = [pair for grad, var in applied
                       for pair in (_split(grad, var) if isinstance(var, _ShardedVariable) else [(grad, var)])]
        return applied, owners

    # Routing is plain Python over Python values: autograph has nothing to convert,
    # and converting the user's var-list callables would only slow tracing down.
    @tf.autograph.experimental.do_not_convert
    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        """Clips, routes and applies one step; returns what tf_keras optimizers return.

        Raises (before any variable, slot or counter changes, ATOM-1):
          TypeError: a malformed pair.
          ValueError: every gradient is `None`; a variable listed by two entries
            or by none; a gradient whose shape does not match its variable.
          RuntimeError: called in cross-replica context.
        """
        var_lists = self._var_lists()  # Held to the end of the call: `owners` is keyed by id.
        pairs, owners = self._checked_pairs(grads_and_vars, var_lists)
        if not pairs:
            return tf.no_op()  # Nothing to apply: no step, as tf_keras does.
        if tf.distribute.in_cross_replica_context():
            raise RuntimeError(
                "`apply_gradients() cannot be called in cross-replica context. "
                "Use `tf.distribute.Strategy.run` to enter replica context."
            )
        # Only the composite's own ops go under its name scope; the sub-optimizers name theirs as
        # when called directly (and as under TFRS). With the prefix, a steady-state tf.function
        # step over 64 variables measured 1.028x the direct calls, without it 1.011x (8 copies
        # each, interleaved), and the difference was in the Python-side call, not the executor.
        with tf.name_scope(self._name):
            with tf.init_scope():
                _ = self.iterations  # The composite's own counter exists before any group steps.
            if experimental_aggregate_gradients:  # DIST-1: sum across replicas once, here.
                pairs = self._transform_unaggregated_gradients(pairs)
                pairs = self._aggregate_gradients(pairs)
            pairs = self._transform_gradients(pairs)  # CLIP-1..4 on all groups together.
        groups = [[] for _ in self._optimizers_and_vars]
        for pair in pairs:  # ROUTE-5: each group keeps the call's order.
            groups[owners[id(pair[1])]].append(pair)
        # DIST-3: tf_keras refuses `False` under ParameterServerStrategy, where a worker is one
        # replica and the sub-optimizer's own aggregation sums nothing.
        aggregate = isinstance(tf.distribute.get_strategy(), _REFUSE_UNAGGREGATED)
        update_ops = [
            optimizer.apply_gradients(_joint_sub_clipnorm(optimizer, group), name=name,
                                      experimental_aggregate_gradients=aggregate)
            for (optimizer, _), group in zip(self._optimizers_and_vars, groups)
            if group  # ROUTE-7: a group with no gradient is not called.
        ]
        with tf.name_scope(self._name):
            # INTEG-1: return what tf_keras' own `_distributed_apply` returns.
            if not tf.executing_eagerly():
                with tf.control_dependencies(update_ops):
                    return self.iterations.assign_add(1, read_value=False)
            return self.iterations.assign_add(1)

    def _transform_gradients(self, grads_and_vars):
        """CLIP-1: tf_keras' clipping, except that with shards of a partitioned variable present,
        `clipnorm` takes each partitioned variable's norm over all its shards (DIST-2)."""
        if self._clipnorm is None or not any(_container(v) is not v for _, v in grads_and_vars):
            return super()._transform_gradients(grads_and_vars)
        if self._clipvalue is not None:
            grads_and_vars = self._clipvalue_fn(grads_and_vars)
        grads_and_vars = _clip_by_joint_norm(grads_and_vars, self._clipnorm)
        if self._global_clipnorm is not None:
            grads_and_vars = self._global_clipnorm_fn(grads_and_vars)
        for fn in self.gradient_transformers:
            grads_and_vars = fn(grads_and_vars)
        return grads_and_vars

    # ------------------------------------------------------------------ weights

    def variables(self) -> List[tf.Variable]:
        """WEIGHT-1: same list as `weights`."""
        return self.weights

    @property
    def weights(self) -> List[tf.Variable]:
        """WEIGHT-1: `[iterations] + optimizers[0].weights + optimizers[1].weights + ...`."""
        weights = [self.iterations]
        for optimizer in self.optimizers:
            weights.extend(optimizer.weights)
        return weights

    def set_weights(self, weights) -> None:
        """WEIGHT-2: check the count and every shape first; write all or nothing."""
        params = self.weights
        weights = list(weights)
        if len(weights) != len(params):
            raise ValueError(
                f"set_weights on {self._name} expected {len(params)} values "
                f"([iterations] + each sub-optimizer's weights), received {len(weights)}."
            )
        values = []
        for index, (param, value) in enumerate(zip(params, weights)):
            # Tensors, arrays, Python scalars and nested lists alike: the shape numpy sees.
            value = tf.convert_to_tensor(value).numpy() if tf.is_tensor(value) else np.asarray(value)
            shape = tuple(value.shape)
            if tuple(param.shape) != shape:
                raise ValueError(
                    f"set_weights on {self._name}: value {index} (for {param.name!r}) has shape {shape}, "
                    f"expected {tuple(param.shape)}."
                )
            values.append((param, value))
        tf_keras.backend.batch_set_value(values)

    # ------------------------------------------------------------------ slots

    def get_slot_names(self) -> List[str]:
        """SLOT-3: the composite owns no slots; its sub-optimizers do.

        `tf.train.Checkpoint` treats every tracked object's `get_slot_names()` /
        `get_slot()` as slots that object owns; reporting the sub-optimizers'
        slots here too would make checkpoint saving fail with "A slot variable
        was re-used as a dependency of a Trackable object".
        """
        return []

    def get_slot(self, var, slot_name):
        """SLOT-1: the slot held by the sub-optimizer that owns `var`."""
        owner = self._owner_of(var)
        if owner is None:
            raise KeyError(f"Variable {var.name!r} is listed by no entry of {self._name}, so it has no slots.")
        return self.optimizers[owner].get_slot(var, slot_name)

    def add_slot(self, var, slot_name, initializer="zeros", shape=None):
        """SLOT-2: create the slot in the sub-optimizer that owns `var`."""
        owner = self._owner_of(var)
        if owner is None:
            raise ValueError(f"Variable {var.name!r} is listed by no entry of {self._name}; cannot add a slot.")
        return self.optimizers[owner].add_slot(var, slot_name, initializer=initializer, shape=shape)

    # ------------------------------------------------------------------ config

    def get_config(self) -> dict:
        """CONF-1, CONF-2: JSON-serialisable; var lists are stored by registered name."""
        names = [_callable_name(var_callable) for _, var_callable in self._optimizers_and_vars]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(
                    f"optimizers_and_vars[{names.index(name)}] and optimizers_and_vars[{index}] have var-list "
                    f"callables with the same name {name!r}, so a config could not tell them apart. Give them "
                    "distinct names or register them under distinct names."
                )
        config = super().get_config()  # name and the clip settings that are set.
        config["optimizers"] = [tf_keras.optimizers.serialize(o) for o in self.optimizers]
        config["var_lists"] = names
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """CONF-3, CONF-4: rebuild from `get_config()`; the input dict is never mutated."""
        import copy

        config = copy.deepcopy(dict(config))  # tf_keras' deserialize mutates its input.
        unknown = sorted(set(config) - _CONFIG_KEYS)
        if unknown:
            raise ValueError(f"Unknown keys in CompositeOptimizer config: {unknown}.")
        missing = [key for key in ("optimizers", "var_lists") if key not in config]
        if missing:
            raise ValueError(f"CompositeOptimizer config is missing {missing}.")
        optimizers, var_lists = config.pop("optimizers"), config.pop("var_lists")
        config.pop("is_legacy_optimizer", None)
        if len(optimizers) != len(var_lists):
            raise ValueError(
                f"CompositeOptimizer config has {len(optimizers)} optimizers but {len(var_lists)} var_lists."
            )
        custom_objects = dict(custom_objects or {})
        callables = []
        for name in var_lists:
            found = custom_objects.get(name) or tf_keras.saving.get_registered_object(name)
            if found is None or not callable(found):
                raise ValueError(
                    f"Cannot resolve the var-list callable {name!r}: pass it in `custom_objects` "
                    "or register it with `tf_keras.saving.register_keras_serializable`."
                )
            callables.append(found)
        subs = [_deserialize_optimizer(o, custom_objects) for o in optimizers]
        return cls(list(zip(subs, callables)), **config)
