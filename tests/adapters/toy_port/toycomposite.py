"""A toy composite optimizer in pure numpy: the port a conformance adapter is written for.

It stands in for a port author's own implementation, in a framework the suite has never
heard of. Variables are `ToyVariable`s (a name and a float32 array); a step is
`optimizer.apply_gradients([(gradient or None, variable), ...])`.

    ToyComposite([(ToySGD(0.1), [v0]), (ToySGD(0.05, momentum=0.9), [v1, v2])], global_clipnorm=1.0)

Semantics (those of reference/SPEC.md, kept small):

- Clipping of a step's gradients, composite first, then each sub-optimizer's own, in the order
  clipvalue (elementwise to [-c, c]), clipnorm (each gradient g * c / max(|g|, c)),
  global_clipnorm (every gradient g * c / max(sqrt(sum |g_i|^2), c)).
- ToySGD is tf_keras' SGD: with momentum m, v <- m v - lr g and w <- w + v (nesterov:
  w <- w + m v - lr g); without, w <- w - lr g. lr may be a schedule, evaluated at the
  sub-optimizer's own step count before the step.
- Each sub-optimizer counts its own steps; the composite counts steps that applied a gradient.
- A step validates everything (None-only call, unknown variable, repeated variable, shape) before
  it changes anything.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np


class ToyVariable:
    """A named float32 array; identity (not the name) is what routes it."""

    def __init__(self, name: str, value):
        self.name = name
        self.value = np.array(value, np.float32)

    def __repr__(self):
        return f"ToyVariable({self.name!r}, shape={self.value.shape})"


def check_clip(name: str, value) -> Optional[float]:
    """A clip setting: None (unset) or a positive finite number; anything else is a ValueError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number or None, got {value!r}")
    return float(value)


def clip_gradients(grads: list, clipvalue=None, clipnorm=None, global_clipnorm=None) -> list:
    """Clip float64 gradients in the order clipvalue, clipnorm, global_clipnorm."""
    if clipvalue is not None:
        grads = [np.clip(g, -clipvalue, clipvalue) for g in grads]
    if clipnorm is not None:
        grads = [g * clipnorm / max(float(np.sqrt(np.sum(g * g))), clipnorm) for g in grads]
    if global_clipnorm is not None:
        norm = float(np.sqrt(sum(np.sum(g * g) for g in grads)))
        grads = [g * global_clipnorm / max(norm, global_clipnorm) for g in grads]
    return grads


def schedule_value(schedule: dict, step: int) -> float:
    """lr(step) of {"kind": ..., "params": {...}} (exponential, piecewise constant, inverse time)."""
    kind, p = schedule["kind"], schedule["params"]
    if kind == "exponential_decay":
        exponent = step / p["decay_steps"]
        if p.get("staircase"):
            exponent = math.floor(exponent)
        return p["initial_learning_rate"] * p["decay_rate"] ** exponent
    if kind == "inverse_time_decay":
        return p["initial_learning_rate"] / (1 + p["decay_rate"] * step / p["decay_steps"])
    if kind == "piecewise_constant":
        for boundary, value in zip(p["boundaries"], p["values"]):
            if step <= boundary:
                return value
        return p["values"][-1]
    raise ValueError(f"unknown schedule kind {kind!r}")


class ToySGD:
    """SGD with optional (nesterov) momentum; its state is [step count] + one momentum slot per variable."""

    def __init__(self, learning_rate, momentum: float = 0.0, nesterov: bool = False,
                 clipvalue=None, clipnorm=None, global_clipnorm=None):
        self.learning_rate = learning_rate  # A float or a schedule dict.
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.clipvalue = check_clip("clipvalue", clipvalue)
        self.clipnorm = check_clip("clipnorm", clipnorm)
        self.global_clipnorm = check_clip("global_clipnorm", global_clipnorm)
        if self.clipnorm is not None and self.global_clipnorm is not None:
            raise ValueError("clipnorm and global_clipnorm cannot both be set")
        self.iterations = 0
        self.slots = {}  # id(variable) -> momentum array, created by `build`.
        self.built_for = []

    def build(self, variables: Sequence[ToyVariable]) -> None:
        self.built_for = list(variables)
        if self.momentum:
            for v in variables:
                self.slots.setdefault(id(v), np.zeros_like(v.value))

    def lr(self) -> float:
        if isinstance(self.learning_rate, dict):
            return schedule_value(self.learning_rate, self.iterations)
        return float(self.learning_rate)

    def apply(self, grads_and_vars: list) -> None:
        """Apply already validated float64 gradients; advances the own counter once."""
        grads = clip_gradients([g for g, _ in grads_and_vars], self.clipvalue, self.clipnorm, self.global_clipnorm)
        lr = self.lr()
        for g, v in zip(grads, (v for _, v in grads_and_vars)):
            g = g.astype(np.float32)
            if self.momentum:
                slot = self.slots[id(v)]
                slot[...] = self.momentum * slot - lr * g
                step = self.momentum * slot - lr * g if self.nesterov else slot
                v.value = (v.value + step).astype(np.float32)
            else:
                v.value = (v.value - np.float32(lr) * g).astype(np.float32)
        self.iterations += 1

    def weights(self) -> list:
        """[step count] + momentum slots in variable order (nothing for a sub-optimizer of no variables)."""
        if not self.built_for:
            return []
        return [np.asarray(self.iterations, np.int64)] + [self.slots[id(v)] for v in self.built_for if id(v) in self.slots]

    def set_weights(self, values: list) -> None:
        self.iterations = int(values[0])
        for v, value in zip([v for v in self.built_for if id(v) in self.slots], values[1:]):
            self.slots[id(v)] = np.array(value, np.float32)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "momentum": self.momentum, "nesterov": self.nesterov,
                "clipvalue": self.clipvalue, "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm}


class ToyComposite:
    """Routes each variable's gradient to the ToySGD whose list holds that variable (by identity)."""

    def __init__(self, optimizers_and_vars, clipvalue=None, clipnorm=None, global_clipnorm=None):
        if not optimizers_and_vars:
            raise ValueError("ToyComposite needs at least one (optimizer, variables) entry")
        self.clipvalue = check_clip("clipvalue", clipvalue)
        self.clipnorm = check_clip("clipnorm", clipnorm)
        self.global_clipnorm = check_clip("global_clipnorm", global_clipnorm)
        if self.clipnorm is not None and self.global_clipnorm is not None:
            raise ValueError("clipnorm and global_clipnorm cannot both be set")
        self.optimizers = [opt for opt, _ in optimizers_and_vars]
        self.owner = {}  # id(variable) -> entry index
        for k, (opt, variables) in enumerate(optimizers_and_vars):
            for v in variables:
                if id(v) in self.owner:
                    raise ValueError(f"variable {v.name!r} is listed by entries {self.owner[id(v)]} and {k}")
                self.owner[id(v)] = k
            opt.build(variables)
        self.iterations = 0

    def apply_gradients(self, grads_and_vars) -> None:
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            if list(grads_and_vars):
                raise ValueError("no gradients provided: every gradient of the call is None")
            return  # An empty call is no step.
        seen = set()
        for g, v in pairs:  # Validate all before changing anything.
            if id(v) not in self.owner:
                raise ValueError(f"variable {v.name!r} has a gradient but no entry lists it")
            if id(v) in seen:
                raise ValueError(f"variable {v.name!r} has two gradients in one call")
            seen.add(id(v))
            if np.shape(g) != v.value.shape:
                raise ValueError(f"gradient for variable {v.name!r} has shape {np.shape(g)}, expected {v.value.shape}")
        grads = clip_gradients([np.asarray(g, np.float64) for g, _ in pairs],
                               self.clipvalue, self.clipnorm, self.global_clipnorm)
        for k, opt in enumerate(self.optimizers):
            own = [(g, v) for g, (_, v) in zip(grads, pairs) if self.owner[id(v)] == k]
            if own:  # A sub-optimizer whose group has no gradient is not called.
                opt.apply(own)
        self.iterations += 1

    def get_weights(self) -> list:
        return [np.asarray(self.iterations, np.int64)] + [w for opt in self.optimizers for w in opt.weights()]

    def set_weights(self, values) -> None:
        values = list(values)
        current = self.get_weights()
        if len(values) != len(current):
            raise ValueError(f"set_weights: {len(values)} values given, the optimizer has {len(current)}")
        for position, (value, have) in enumerate(zip(values, current)):
            if np.shape(value) != np.shape(have):
                raise ValueError(f"set_weights: value {position} has shape {np.shape(value)}, expected {np.shape(have)}")
        self.iterations = int(values[0])
        position = 1
        for opt in self.optimizers:
            n = len(opt.weights())
            if n:
                opt.set_weights(values[position:position + n])
            position += n

    def get_config(self) -> dict:
        return {"optimizers": [opt.get_config() for opt in self.optimizers], "clipvalue": self.clipvalue,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm}
