"""Adapters: how the conformance suite drives implementations (see adapters/protocol.py).

Bundled adapters are named here and imported lazily, so that running one never
imports another's framework.
"""

from __future__ import annotations

import importlib
from typing import Any

from adapters.protocol import PROTOCOL_VERSION, load_adapter

# name -> "module:attribute". Each lives in its own module and brings its own framework.
BUNDLED = {
    "reference": "adapters.tf_keras:ReferenceAdapter",
    "tfrs": "adapters.tf_keras:TfrsAdapter",
    "optax": "adapters.optax_partition:OptaxAdapter",
    "keras": "adapters.keras3:KerasTensorflowAdapter",
    "keras-jax": "adapters.keras3:KerasJaxAdapter",
    "keras-torch": "adapters.keras3:KerasTorchAdapter",
    "torchrec": "adapters.torchrec:TorchrecAdapter",
}
# name -> the top-level packages its adapter imports, looked up (not imported) before a run starts.
FRAMEWORKS = {
    "reference": ("tensorflow", "tf_keras"),
    "tfrs": ("tensorflow", "tf_keras", "tensorflow_recommenders"),
    "optax": ("jax", "optax"),
    "keras": ("keras", "tensorflow"),
    "keras-jax": ("keras", "jax"),
    "keras-torch": ("keras", "torch"),
    "torchrec": ("torch", "torchrec", "fbgemm_gpu"),
}


def resolve(spec: Any) -> Any:
    """An adapter for `spec`: a bundled name, `MODULE:ATTR` importable from sys.path, or the object.

    `ATTR` is an adapter (class or instance) or a tf_keras legacy optimizer class with
    TFRS's constructor signature, which the tf_keras adapter then drives.
    """
    if isinstance(spec, str):
        target = BUNDLED.get(spec, spec)
        if ":" not in target:
            known = ", ".join(sorted(BUNDLED))
            raise ValueError(f"--impl {spec!r} is neither a bundled adapter ({known}) nor MODULE:ATTR.")
        module_name, _, attr = target.partition(":")
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    else:  # The object itself (a port's conftest.py may name its adapter directly).
        obj = spec
    if _is_tf_keras_optimizer_class(obj):
        from adapters.tf_keras import TfKerasAdapter

        return TfKerasAdapter(obj, name=spec if isinstance(spec, str) else f"{obj.__module__}:{obj.__qualname__}")
    return load_adapter(obj)


def _is_tf_keras_optimizer_class(obj: Any) -> bool:
    if not isinstance(obj, type):
        return False
    # Checked by base-class name first so that non-TensorFlow adapters never import TensorFlow.
    if not any(base.__name__ in ("OptimizerV2", "Optimizer") for base in obj.__mro__):
        return False
    import tf_keras

    return issubclass(obj, tf_keras.optimizers.legacy.Optimizer)


__all__ = ["BUNDLED", "FRAMEWORKS", "PROTOCOL_VERSION", "resolve"]
