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


def resolve(spec: str) -> Any:
    """An adapter for `spec`: a bundled name, or `MODULE:ATTR` importable from sys.path.

    `ATTR` is an adapter (class or instance) or a tf_keras legacy optimizer class with
    TFRS's constructor signature, which the tf_keras adapter then drives.
    """
    target = BUNDLED.get(spec, spec)
    if ":" not in target:
        known = ", ".join(sorted(BUNDLED))
        raise ValueError(f"--impl {spec!r} is neither a bundled adapter ({known}) nor MODULE:ATTR.")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if _is_tf_keras_optimizer_class(obj):
        from adapters.tf_keras import TfKerasAdapter

        return TfKerasAdapter(obj, name=spec)
    return load_adapter(obj)


def _is_tf_keras_optimizer_class(obj: Any) -> bool:
    if not isinstance(obj, type):
        return False
    # Checked by base-class name first so that non-TensorFlow adapters never import TensorFlow.
    if not any(base.__name__ in ("OptimizerV2", "Optimizer") for base in obj.__mro__):
        return False
    import tf_keras

    return issubclass(obj, tf_keras.optimizers.legacy.Optimizer)


__all__ = ["BUNDLED", "PROTOCOL_VERSION", "resolve"]
