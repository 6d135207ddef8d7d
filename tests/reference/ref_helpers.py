"""Shared helpers for the reference's unit tests: building composites and their oracles.

The oracle for a composite is always independent of it: fresh sub-optimizers, each
applied alone to a fresh copy of its own group, fed gradients clipped by numpy
(`np_clip`). A test then compares variables, counters and slots.

(The module has a distinctive name because tests/ has no `__init__.py`: pytest puts
each test directory on `sys.path`, so a generic `helpers.py` could collide.)
"""

from __future__ import annotations

import dataclasses
from typing import Callable, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from reference import CompositeOptimizer

legacy = tf_keras.optimizers.legacy

# float32 maths done the same way on both sides: only summation order can differ.
RTOL = 1e-6
ATOL = 1e-7


def tfrs_composite_class():
    """TFRS 0.7.7's CompositeOptimizer (needs TF_USE_LEGACY_KERAS=1, set in tests/conftest.py)."""
    import tensorflow_recommenders as tfrs

    return tfrs.experimental.optimizers.CompositeOptimizer


def named(name: str, variables: Sequence) -> Callable[[], list]:
    """A var-list callable with a real `__name__` (configs store it, CONF-2).

    It returns the live list object, so a test can mutate `variables` between steps.
    """

    def var_list():
        return list(variables)

    var_list.__name__ = var_list.__qualname__ = name
    return var_list


@dataclasses.dataclass(frozen=True)
class Sparse:
    """A sparse gradient for a variable: rows `indices` (may repeat) get `values`."""

    values: np.ndarray
    indices: Sequence[int]

    def to_tf(self, var) -> tf.IndexedSlices:
        return tf.IndexedSlices(
            tf.constant(self.values, dtype=var.dtype),
            tf.constant(list(self.indices), dtype=tf.int64),
            dense_shape=tf.constant(var.shape.as_list(), dtype=tf.int64),
        )


def to_tf(grad, var):
    if grad is None:
        return None
    if isinstance(grad, Sparse):
        return grad.to_tf(var)
    return tf.constant(grad, dtype=var.dtype)


# --------------------------------------------------------------------------- state


def optimizer_state(optimizer) -> list:
    """Every variable `optimizer` itself holds (counter, slots, hyperparameters), read
    without creating anything: `_weights` and `_hyper` are tf_keras' own storage."""
    weights = [(w.name, np.array(w.numpy())) for w in optimizer._weights]
    hypers = [
        (key, np.array(value.numpy()))
        for key, value in sorted(optimizer._hyper.items())
        if isinstance(value, tf.Variable)
    ]
    return weights + hypers


def full_state(composite, variables) -> dict:
    """Everything a step could change: model variables, the composite's own variables,
    and every sub-optimizer's counter, slots and hyperparameter variables."""
    return {
        "variables": [np.array(v.numpy()) for v in variables],
        "composite": optimizer_state(composite),
        "sub_optimizers": [optimizer_state(o) for o in composite.optimizers],
    }


def _assert_same(a, b, path):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: {len(a)} entries before, {len(b)} after"
        for index, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{index}]")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=path)
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def assert_same_state(before: dict, after: dict) -> None:
    """Bit-for-bit equality of two `full_state` snapshots, no new variables included."""
    _assert_same(before, after, "state")


def assert_close(actual, expected, rtol=RTOL, atol=ATOL, err_msg=""):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol, err_msg=err_msg)


# --------------------------------------------------------------------------- rigs


SubFactory = Callable[[], "legacy.Optimizer"]


class Rig:
    """A composite over fresh variables, plus the means to build its oracle.

    `groups` is a list of `(sub_optimizer_factory, [initial arrays])`. Variables are
    numbered in that order (`rig.variables[k]`), and a step is a list of
    `(variable number, gradient)` with gradient an array, a `Sparse`, or `None`.
    """

    def __init__(self, groups, composite_cls=CompositeOptimizer, **composite_kwargs):
        self.factories = [factory for factory, _ in groups]
        self.initial = [[np.array(x, dtype=np.float32) for x in inits] for _, inits in groups]
        self.groups = [[tf.Variable(x) for x in inits] for inits in self.initial]
        self.sub_optimizers = [factory() for factory in self.factories]
        self.composite = composite_cls(
            [(o, named(f"group{i}", g)) for i, (o, g) in enumerate(zip(self.sub_optimizers, self.groups))],
            **composite_kwargs,
        )

    @property
    def variables(self) -> List[tf.Variable]:
        return [v for group in self.groups for v in group]

    def group_of(self, number: int) -> int:
        for index, group in enumerate(self.groups):
            if number < len(group):
                return index
            number -= len(group)
        raise IndexError(number)

    def pairs(self, step):
        variables = self.variables
        return [(to_tf(grad, variables[k]), variables[k]) for k, grad in step]

    def apply(self, step, **kwargs):
        return self.composite.apply_gradients(self.pairs(step), **kwargs)

    def state(self) -> dict:
        return full_state(self.composite, self.variables)

    def oracle(self):
        """Fresh sub-optimizers and fresh copies of their groups, nothing shared."""
        return Alone(self.factories, self.initial)


class Alone:
    """The oracle: each sub-optimizer applied on its own group, only on the steps where
    that group receives a gradient, with gradients the caller has already clipped."""

    def __init__(self, factories, initial):
        self.groups = [[tf.Variable(x) for x in inits] for inits in initial]
        self.sub_optimizers = [factory() for factory in factories]

    @property
    def variables(self):
        return [v for group in self.groups for v in group]

    def apply(self, step, clip: Optional[dict] = None):
        variables = self.variables
        present = [(k, g) for k, g in step if g is not None]
        if clip:
            clipped = np_clip([g for _, g in present], **clip)
            present = [(k, g) for (k, _), g in zip(present, clipped)]
        offset = 0
        for optimizer, group in zip(self.sub_optimizers, self.groups):
            numbers = range(offset, offset + len(group))
            pairs = [(to_tf(g, variables[k]), variables[k]) for k, g in present if k in numbers]
            if pairs:
                optimizer.apply_gradients(pairs)
            offset += len(group)


def assert_matches_oracle(rig: Rig, alone: Alone, rtol=RTOL, atol=ATOL):
    """Variables, and every sub-optimizer's counter and slots, equal the oracle's."""
    for k, (mine, theirs) in enumerate(zip(rig.variables, alone.variables)):
        assert_close(mine.numpy(), theirs.numpy(), rtol, atol, err_msg=f"variable {k}")
    for index, (mine, theirs) in enumerate(zip(rig.sub_optimizers, alone.sub_optimizers)):
        mine_weights, their_weights = mine.get_weights(), theirs.get_weights()
        assert len(mine_weights) == len(their_weights), f"sub-optimizer {index} weight count"
        for position, (a, b) in enumerate(zip(mine_weights, their_weights)):
            assert_close(a, b, rtol, atol, err_msg=f"sub-optimizer {index} weight {position}")


# --------------------------------------------------------------------------- clipping


def np_clip(grads, clipvalue=None, clipnorm=None, global_clipnorm=None):
    """CLIP-1 computed independently in numpy (float64, then back to float32).

    A `Sparse` gradient is clipped through its values as given (repeated indices not
    summed), which is how `tf.clip_by_norm` / `tf.clip_by_global_norm` treat them.
    """
    values = [np.asarray(g.values if isinstance(g, Sparse) else g, dtype=np.float64) for g in grads]
    if clipvalue is not None:
        values = [np.clip(v, -clipvalue, clipvalue) for v in values]
    if clipnorm is not None:
        values = [v * clipnorm / max(np.sqrt(np.sum(v * v)), clipnorm) for v in values]
    if global_clipnorm is not None:
        norm = np.sqrt(sum(np.sum(v * v) for v in values))
        values = [v * global_clipnorm / max(norm, global_clipnorm) for v in values]
    out = []
    for g, v in zip(grads, values):
        v = v.astype(np.float32)
        out.append(Sparse(v, g.indices) if isinstance(g, Sparse) else v)
    return out


def densify(grad, shape) -> np.ndarray:
    """A gradient as the dense array it adds up to (repeated sparse rows summed)."""
    if isinstance(grad, Sparse):
        dense = np.zeros(shape, dtype=np.float64)
        for row, index in zip(np.asarray(grad.values, dtype=np.float64), grad.indices):
            dense[index] += row
        return dense.astype(np.float32)
    return np.asarray(grad, dtype=np.float32)


# --------------------------------------------------------------------------- spies


class RecordingSGD(legacy.SGD):
    """SGD that records each `apply_gradients` call: the gradient types and variables."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        grads_and_vars = list(grads_and_vars)
        self.calls.append([(type(g), v.ref()) for g, v in grads_and_vars])
        return super().apply_gradients(grads_and_vars, name, experimental_aggregate_gradients)


def sgd(lr=0.1, **kwargs):
    return lambda: legacy.SGD(lr, **kwargs)


def adam(lr=0.1, **kwargs):
    return lambda: legacy.Adam(lr, **kwargs)


def adagrad(lr=0.1, **kwargs):
    return lambda: legacy.Adagrad(lr, **kwargs)


def momentum(lr=0.1, m=0.9, **kwargs):
    return lambda: legacy.SGD(lr, momentum=m, **kwargs)
