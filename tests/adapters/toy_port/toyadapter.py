"""A conformance adapter for the numpy toy composite (toycomposite.py), written only against
adapters/protocol.py: no TensorFlow, JAX or torch anywhere.

Every call into the toy (building it, a step, reading and writing its state and config) runs inside
`protocol.implementation_call()`, so what the toy raises is its refusal and what this adapter raises
is an error of the run.

Run from outside the repository:
    PYTHONPATH=<this directory>:<repo> python -m conformance --impl toyadapter:ToyAdapter
"""

from __future__ import annotations

import atexit
import json
import os
import sys

import numpy as np

from adapters import protocol
from adapters.protocol import Clip, CompositeSpec, DeviceUnavailable, Sparse, SubOptimizer, Unsupported, VariableSpec

import toycomposite as toy

# For the test that runs this: which heavyweight frameworks the whole run ended up importing.
_FRAMEWORKS = ("tensorflow", "tf_keras", "keras", "jax", "torch")
if os.environ.get("TOY_IMPORTED_FRAMEWORKS"):
    atexit.register(lambda: open(os.environ["TOY_IMPORTED_FRAMEWORKS"], "w").write(
        json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(_FRAMEWORKS)))))

_NO_SPARSE = "the toy's sub-optimizers take dense numpy arrays only: it has no sparse gradient type"
_NO_COMPILER = "numpy has no compiler: every toy step runs eagerly"
_NO_REPLICAS = "the toy runs in one process on one device: it has no replicas to sum over"
_NO_CHANGING_GROUPS = "ToyComposite takes each entry's variables as a list when it is built, not a callable"


def _sub_optimizer(sub: SubOptimizer, sgd=toy.ToySGD):
    if sub.kind != "sgd":
        raise Unsupported(f"the toy has no {sub.kind!r} optimizer, only SGD (with or without momentum)")
    lr = sub.learning_rate
    if isinstance(lr, protocol.Schedule):
        lr = {"kind": lr.kind, "params": json.loads(json.dumps(dict(lr.params)))}
    with protocol.implementation_call():
        return sgd(lr, sub.hyper.get("momentum", 0.0), sub.hyper.get("nesterov", False), **sub.clip.as_kwargs())


def _variables(variables):
    return [toy.ToyVariable(v.name, v.value) for v in variables]


class _Instance:
    def __init__(self, variables):
        self._variables = variables

    def _grads_and_vars(self, pairs, compiled):
        if compiled:
            raise Unsupported(_NO_COMPILER)
        out = []
        for i, g in pairs:
            if isinstance(g, Sparse):
                raise Unsupported(_NO_SPARSE)
            if not 0 <= i < len(self._variables):
                raise IndexError(f"variable index {i} is out of range(0, {len(self._variables)})")
            out.append((None if g is None else np.asarray(g), self._variables[i]))
        return out

    def step_replicas(self, per_replica):
        raise Unsupported(_NO_REPLICAS)

    def variables(self):
        return [v.value.copy() for v in self._variables]

    def materialize(self):
        pass  # The toy creates its slots when it is built.

    def save(self, directory):
        path = os.path.join(directory, "toy.npz")
        np.savez(path, *self.variables(), *self.state(), n_variables=len(self._variables))
        return path

    def restore(self, path):
        with np.load(path) as data:
            n = int(data["n_variables"])
            arrays = [data[f"arr_{j}"] for j in range(len(data.files) - 1)]
        self.set_state(arrays[n:])
        for v, value in zip(self._variables, arrays[:n]):
            v.value = np.array(value, np.float32)


class ToyCompositeInstance(_Instance):
    def __init__(self, composite, variables):
        super().__init__(variables)
        self._composite = composite

    def step(self, pairs, *, compiled=False):
        grads_and_vars = self._grads_and_vars(pairs, compiled)
        with protocol.implementation_call():
            self._composite.apply_gradients(grads_and_vars)

    def iterations(self):
        return self._composite.iterations

    def sub_iterations(self):
        return [opt.iterations for opt in self._composite.optimizers]

    def state(self):
        with protocol.implementation_call():
            return [np.array(w) for w in self._composite.get_weights()]

    def set_state(self, values):
        values = list(values)
        with protocol.implementation_call():
            self._composite.set_weights(values)

    def config(self):
        with protocol.implementation_call():
            return self._composite.get_config()

    @property
    def native(self):
        return self._composite


class ToyStandaloneInstance(_Instance):
    """One ToySGD alone: the suite's oracle."""

    def __init__(self, optimizer, variables):
        super().__init__(variables)
        self._optimizer = optimizer
        optimizer.build(variables)

    def step(self, pairs, *, compiled=False):
        pairs = [(g, v) for g, v in self._grads_and_vars(pairs, compiled) if g is not None]
        if pairs:
            self._optimizer.apply([(np.asarray(g, np.float64), v) for g, v in pairs])

    def iterations(self):
        return self._optimizer.iterations

    def sub_iterations(self):
        return [self._optimizer.iterations]

    def state(self):
        return [np.array(w) for w in self._optimizer.weights()]

    def set_state(self, values):
        values = list(values)
        current = self._optimizer.weights()
        if len(values) != len(current) or any(np.shape(a) != np.shape(b) for a, b in zip(values, current)):
            raise ValueError("set_state: the values do not match the optimizer's state")
        self._optimizer.set_weights(values)

    def config(self):
        return self._optimizer.get_config()

    @property
    def native(self):
        return self._optimizer


class ToyAdapter:
    protocol_version = protocol.PROTOCOL_VERSION
    name = "toy"
    framework = "numpy"
    sgd = toy.ToySGD  # The sub-optimizer class (a variant port may bring its own).

    def info(self):
        return {"implementation": "toycomposite.ToyComposite", "version": "0.1", "numpy": np.__version__}

    def unsupported(self):
        return {
            "sparse_gradient": _NO_SPARSE,
            "compiled_step": _NO_COMPILER,
            "replicas": _NO_REPLICAS,
            "tf_keras_api": "the toy is a numpy optimizer, not a tf_keras legacy optimizer",
            "changing_groups": _NO_CHANGING_GROUPS,
            "parameter_servers": "the toy runs in one process: no parameter servers, no partitioned variables",
        }

    def optimizer_kinds(self):
        return ("sgd",)

    def set_device(self, device):
        if device != "cpu":
            raise DeviceUnavailable(f"--device {device}: the toy runs on the CPU only")

    def _build(self, subs, groups, clip: Clip, variables: list):
        entries = [(opt, [variables[i] for i in group]) for opt, group in zip(subs, groups)]
        with protocol.implementation_call():
            composite = toy.ToyComposite(entries, **clip.as_kwargs())
        return ToyCompositeInstance(composite, variables)

    def composite(self, spec: CompositeSpec, variables):
        variables = _variables(variables)
        subs = [_sub_optimizer(g.optimizer, self.sgd) for g in spec.groups]
        return self._build(subs, [g.variables for g in spec.groups], spec.clip, variables)

    def standalone(self, optimizer: SubOptimizer, variables):
        return ToyStandaloneInstance(_sub_optimizer(optimizer, self.sgd), _variables(variables))

    def from_config(self, config, variables, groups):
        with protocol.implementation_call():
            subs = [self.sgd(**c) for c in config["optimizers"]]
        clip = Clip(config["clipvalue"], config["clipnorm"], config["global_clipnorm"])
        return self._build(subs, groups, clip, _variables(variables))
