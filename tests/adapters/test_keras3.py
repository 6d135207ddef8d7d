"""Tests of the Keras 3 adapters (adapters/keras3.py), one subprocess per backend.

Keras 3 fixes its backend at import, so each backend runs in its own process: this file, run as
`python test_keras3.py BACKEND`, builds a small fixed case through the adapter and prints what it
observed as JSON; the tests below assert on that. The parent process imports no framework.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKEND_MODULE = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


# --------------------------------------------------------------------------- the probe (child process)


def _probe(backend: str) -> dict:
    sys.path.insert(0, REPO)
    import warnings

    warnings.simplefilter("ignore")  # Keras warns on None gradients; the probe records behaviour, not warnings.
    from adapters import keras3
    from adapters.protocol import (
        Clip,
        CompositeSpec,
        DeviceUnavailable,
        Group,
        Refused,
        Schedule,
        Sparse,
        SubOptimizer,
        Unsupported,
        VariableSpec,
    )

    cls = {"tensorflow": keras3.KerasTensorflowAdapter, "jax": keras3.KerasJaxAdapter, "torch": keras3.KerasTorchAdapter}
    # Dynamo tracing without Inductor's code generation keeps the torch compiled check to seconds.
    adapter = cls[backend]() if backend != "torch" else cls[backend](compile_backend="eager")
    out = {"unsupported": sorted(adapter.unsupported()), "info": dict(adapter.info())}

    if backend == "tensorflow":
        # N replicas over logical CPUs behave like one device fed the sum (no clipping involved).
        # Must come first: the CPU can only be split before TensorFlow initialises.
        adapter.set_device("replicas:2")
        specs = [VariableSpec("a", np.ones((2, 2), np.float32)), VariableSpec("b", np.ones(3, np.float32))]
        spec = CompositeSpec((Group(SubOptimizer("adam", 0.1), (0,)), Group(SubOptimizer("sgd", 0.1, {"momentum": 0.9}), (1,))))
        replicated = adapter.composite(spec, specs)
        per_replica = [
            [(0, np.full((2, 2), 1.0, np.float32)), (1, np.full(3, 2.0, np.float32))],
            [(0, np.full((2, 2), 3.0, np.float32)), (1, np.full(3, -5.0, np.float32))],
        ]
        for _ in range(2):
            replicated.step_replicas(per_replica)
        adapter.set_device("cpu")
        single = adapter.composite(spec, specs)
        summed = [(0, per_replica[0][0][1] + per_replica[1][0][1]), (1, per_replica[0][1][1] + per_replica[1][1][1])]
        for _ in range(2):
            single.step(summed)
        out["replicas"] = {
            "max_diff": max(float(np.abs(x - y).max()) for x, y in zip(replicated.variables(), single.variables())),
            "iterations": replicated.iterations(),
            "sub_iterations": replicated.sub_iterations(),
        }

    rng = np.random.default_rng(7)
    specs = [
        VariableSpec("a", rng.normal(size=(4, 2)).astype(np.float32)),
        VariableSpec("b", rng.normal(size=3).astype(np.float32)),
        VariableSpec("c", rng.normal(size=(3, 2)).astype(np.float32)),
    ]
    adam = SubOptimizer("adam", 0.05, {"beta_1": 0.8, "amsgrad": True})
    sgd = SubOptimizer(
        "sgd",
        Schedule("exponential_decay", {"initial_learning_rate": 0.5, "decay_steps": 2, "decay_rate": 0.5}),
        {"momentum": 0.9, "nesterov": True},
    )
    spec = CompositeSpec((Group(adam, (0, 2)), Group(sgd, (1,))))
    steps = [
        [(2, rng.normal(size=(3, 2)).astype(np.float32)), (0, rng.normal(size=(4, 2)).astype(np.float32)),
         (1, rng.normal(size=3).astype(np.float32))]
        for _ in range(3)
    ]
    steps.append([(0, None), (1, rng.normal(size=3).astype(np.float32)), (2, rng.normal(size=(3, 2)).astype(np.float32))])

    def run(compiled: bool):
        composite = adapter.composite(spec, specs)
        alone_adam = adapter.standalone(adam, [specs[0], specs[2]])
        alone_sgd = adapter.standalone(sgd, [specs[1]])
        for pairs in steps:
            composite.step(pairs, compiled=compiled)
            # The oracles always step eagerly: compiled composite against eager sub-optimizers.
            alone_adam.step([(0 if i == 0 else 1, g) for i, g in pairs if i in (0, 2)])
            alone_sgd.step([(0, g) for i, g in pairs if i == 1])
        oracle = [alone_adam.variables()[0], alone_sgd.variables()[0], alone_adam.variables()[1]]
        return composite, {
            "max_diff": max(float(np.abs(x - y).max()) for x, y in zip(composite.variables(), oracle)),
            "moved": min(float(np.abs(x - s.value).max()) for x, s in zip(composite.variables(), specs)),
            "iterations": composite.iterations(),
            "sub_iterations": composite.sub_iterations(),
            "oracle_iterations": [alone_adam.iterations(), alone_sgd.iterations()],
        }

    composite, out["eager"] = run(compiled=False)
    _, out["compiled"] = run(compiled=True)

    # State: set_state(state()) into a fresh composite, then both continue identically.
    state = composite.state()
    out["state_len"] = len(state)
    twin = adapter.composite(spec, specs)
    twin.set_state(state)
    out["state_equal"] = all(np.array_equal(x, y) for x, y in zip(twin.state(), state))
    more = [(0, np.ones((4, 2), np.float32)), (1, np.ones(3, np.float32)), (2, np.ones((3, 2), np.float32))]

    # Config: JSON round trip, same structure, same config.
    config = json.loads(json.dumps(composite.config()))
    rebuilt = adapter.from_config(config, specs, [(0, 2), (1,)])
    out["config_equal"] = rebuilt.config() == composite.config()
    out["config_state_len"] = len(rebuilt.state())
    rebuilt.set_state(state)
    # twin and rebuilt hold the same optimizer state over the same initial variables: equal next steps.
    twin.step(more)
    rebuilt.step(more)
    out["twin_vs_rebuilt_diff"] = max(float(np.abs(x - y).max()) for x, y in zip(twin.variables(), rebuilt.variables()))

    # Checkpoint: save, step, restore, step again: the same values as the first step after saving.
    with tempfile.TemporaryDirectory() as directory:
        path = composite.save(directory)
        composite.step(more)
        expected = composite.variables()
        composite.restore(path)
        composite.step(more)
        out["restore_resumes"] = all(np.array_equal(x, y) for x, y in zip(composite.variables(), expected))

    # Sparse gradients, repeated indices included: composite against the sub-optimizer alone.
    try:
        sparse_steps = [
            [(0, Sparse(np.array([0, 3, 0]), np.ones((3, 2), np.float32))), (1, np.ones(3, np.float32)),
             (2, Sparse(np.array([1]), np.full((1, 2), 2.0, np.float32)))]
        ] * 2
        sparse_composite = adapter.composite(spec, specs)
        sparse_alone = adapter.standalone(adam, [specs[0], specs[2]])
        for pairs in sparse_steps:
            sparse_composite.step(pairs)
            sparse_alone.step([(0 if i == 0 else 1, g) for i, g in pairs if i in (0, 2)])
        got, want = sparse_composite.variables(), sparse_alone.variables()
        out["sparse_diff"] = max(float(np.abs(got[0] - want[0]).max()), float(np.abs(got[2] - want[1]).max()))
    except Unsupported as exc:
        out["sparse_diff"] = f"unsupported: {exc}"

    # A sparse gradient that a sub-optimizer cannot apply even alone is the adapter's limit, not a verdict:
    # on TensorFlow, a centered RMSprop given repeated row indices (its square root goes NaN, then
    # keras.ops.divide fails). Unique indices are applied.
    rms = SubOptimizer("rmsprop", 0.1, {"rho": 0.5, "centered": True})
    rms_specs = [VariableSpec("r", np.ones((2, 3), np.float32)), VariableSpec("s", np.ones(3, np.float32))]
    rms_spec = CompositeSpec((Group(rms, (0,)), Group(SubOptimizer("sgd", 0.1), (1,))))
    out["centered_rmsprop_sparse"] = {}
    for indices in ([0, 1, 0, 0], [1, 0]):
        grad = Sparse(np.array(indices), np.ones((len(indices), 3), np.float32))
        for name in ("composite", "alone"):
            try:
                if name == "composite":
                    adapter.composite(rms_spec, rms_specs).step([(0, grad), (1, np.ones(3, np.float32))])
                else:
                    adapter.standalone(rms, rms_specs[:1]).step([(0, grad)])
                result = "applied"
            except Unsupported as exc:
                result = f"unsupported: {exc}"
            out["centered_rmsprop_sparse"][f"{name} {indices}"] = result
    # On JAX, a sub-optimizer with a clip setting cannot clip a sparse gradient (BCOO), even alone.
    clipped = SubOptimizer("sgd", 0.1, clip=Clip(clipnorm=0.5))
    try:
        adapter.standalone(clipped, rms_specs[:1]).step([(0, Sparse(np.array([1]), np.ones((1, 3), np.float32)))])
        out["clipped_sparse"] = "applied"
    except Unsupported as exc:
        out["clipped_sparse"] = f"unsupported: {exc}"

    # Keras 3 behaviours the adapter maps as documented (see adapters/keras3.py).
    unlisted = adapter.composite(
        CompositeSpec((Group(SubOptimizer("sgd", 1.0), (0,)), Group(SubOptimizer("sgd", 0.5), (1,)))),
        [VariableSpec(n, np.zeros(2, np.float32)) for n in ("x", "y", "z")],
    )
    unlisted.step([(i, np.ones(2, np.float32)) for i in range(3)])
    out["unlisted_value"] = unlisted.variables()[2].tolist()
    try:
        unlisted.step([(0, np.ones(2, np.float32))])
        out["absent"] = "accepted"
    except Refused as exc:  # Keras' own exception, handed over by the adapter (protocol 2).
        out["absent"] = str(exc)
    out["absent_iterations"] = unlisted.iterations()

    try:
        adapter.set_device("gpu")
        out["gpu"] = "available"
    except DeviceUnavailable as exc:
        out["gpu"] = f"DeviceUnavailable: {exc}"
    out["framework_sees_gpu"] = adapter.has_gpu()

    # One backend per process: another backend's adapter refuses clearly.
    other = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}[backend]
    try:
        cls[other]()
        out["other_backend"] = "accepted"
    except RuntimeError as exc:
        out["other_backend"] = str(exc)
    return out


# --------------------------------------------------------------------------- the tests (parent process)

_RESULTS: dict = {}


def _observed(backend: str) -> dict:
    if backend not in _RESULTS:
        missing = [m for m in ("keras", BACKEND_MODULE[backend]) if importlib.util.find_spec(m) is None]
        if missing:
            pytest.skip(f"{missing} not installed in {sys.executable}: the keras-{backend} adapter cannot run here")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
        env.pop("KERAS_BACKEND", None)
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), backend], capture_output=True, text=True, env=env, timeout=400
        )
        assert proc.returncode == 0, f"probe for {backend} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        _RESULTS[backend] = json.loads(proc.stdout.strip().splitlines()[-1])
    return _RESULTS[backend]


_backends = pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])


@_backends
def test_composite_matches_sub_optimizers_alone(backend):
    observed = _observed(backend)
    for mode in ("eager", "compiled"):
        result = observed[mode]
        assert result["moved"] > 1e-3, f"{mode}: the variables did not move"
        assert result["max_diff"] <= 1e-6, f"{mode}: composite differs from the oracle by {result['max_diff']}"


@_backends
def test_counters(backend):
    for mode in ("eager", "compiled"):
        result = _observed(backend)[mode]
        assert result["iterations"] == 4
        assert result["sub_iterations"] == [4, 4] == result["oracle_iterations"]


@_backends
def test_state_config_and_checkpoint_round_trips(backend):
    observed = _observed(backend)
    # [composite iteration, composite learning_rate] + adam [iteration, learning_rate, 3 slots x 2 vars]
    # + sgd with a schedule [iteration, momentum].
    assert observed["state_len"] == 2 + 2 + 6 + 2
    assert observed["state_equal"]
    assert observed["config_equal"]
    assert observed["config_state_len"] == observed["state_len"]
    assert observed["twin_vs_rebuilt_diff"] == 0.0
    assert observed["restore_resumes"]


@_backends
def test_sparse_gradients(backend):
    sparse = _observed(backend)["sparse_diff"]
    if backend == "torch":
        assert sparse.startswith("unsupported: Keras 3's torch backend has no sparse tensors")
        assert "sparse_gradient" in _observed(backend)["unsupported"]
    else:
        assert sparse <= 1e-6


@_backends
def test_centered_rmsprop_with_repeated_sparse_indices(backend):
    observed = _observed(backend)["centered_rmsprop_sparse"]
    for name in ("composite", "alone"):
        repeated, unique = observed[f"{name} [0, 1, 0, 0]"], observed[f"{name} [1, 0]"]
        if backend == "tensorflow":
            assert repeated.startswith("unsupported: Keras 3's RMSprop(centered=True) on the TensorFlow backend")
            assert unique == "applied"
        elif backend == "torch":
            assert repeated == unique
            assert repeated.startswith("unsupported: Keras 3's torch backend has no sparse tensors")
        else:  # JAX sums repeated rows before the update: nothing to refuse.
            assert repeated == unique == "applied"


@_backends
def test_sparse_gradient_for_a_clipping_sub_optimizer(backend):
    clipped = _observed(backend)["clipped_sparse"]
    expected = {"tensorflow": "applied", "jax": "unsupported: Keras 3 on the JAX backend cannot clip a sparse",
                "torch": "unsupported: Keras 3's torch backend has no sparse tensors"}[backend]
    assert clipped.startswith(expected)


@_backends
def test_documented_keras_routing(backend):
    observed = _observed(backend)
    # A variable no entry lists is trained by the default optimizer, the last entry's (lr 0.5).
    assert observed["unlisted_value"] == [-0.5, -0.5]
    # Once built over all variables, a step must give one pair per variable.
    assert observed["absent"].startswith("ValueError: Gradients must match trainable variables one-to-one")
    assert observed["absent_iterations"] == 1


@_backends
def test_devices_and_backend_isolation(backend):
    observed = _observed(backend)
    if observed["framework_sees_gpu"]:
        assert observed["gpu"] == "available"
    else:
        assert observed["gpu"].startswith("DeviceUnavailable: --device gpu")
    assert "already imported with the" in observed["other_backend"]
    assert "composite_clipping" in observed["unsupported"]


def test_tensorflow_replicas_equal_one_device_fed_the_sum():
    replicas = _observed("tensorflow")["replicas"]
    assert replicas["max_diff"] <= 1e-6
    assert replicas["iterations"] == 2
    assert replicas["sub_iterations"] == [2, 2]


if __name__ == "__main__":
    print(json.dumps(_probe(sys.argv[1])))
