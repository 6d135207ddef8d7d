"""Comparison tolerances, per framework, dtype and hardware: (rtol, atol).

"exact": the implementation under test and the oracle do the same arithmetic in the same
framework (the composite's sub-optimizer against the same sub-optimizer alone), so only
float32 rounding of identical operations separates them.
"recomputed": the oracle recomputes something independently (composite clipping in float64
numpy, against the framework's float32 clip ops, or torch's `clip_grad_norm_`, which divides
by `norm + 1e-6`). Both stay far below a 0.1% drift of one gradient, which the suite must catch.

On a GPU (reference/SPEC.md, "Tolerances"), "exact" is ten times looser: reductions (a norm, the
sum of a sparse gradient's repeated rows) run with atomics in an order that changes from run to
run, so the composite and the sub-optimizer alone may round differently, by a few float32 ulps.
TF32, which would cost 1e-3 in any matmul, is switched off by the adapters instead (a tolerance
that wide would hide a 0.1% drift). "recomputed" is already wider than that reordering.
"""

CPU = {"exact": (1e-6, 1e-7), "recomputed": (2e-5, 1e-6)}
GPU = {"exact": (1e-5, 1e-6), "recomputed": (2e-5, 1e-6)}

TOLERANCES = {
    ("tensorflow", "float32", "cpu"): CPU,
    ("jax", "float32", "cpu"): CPU,
    ("torch", "float32", "cpu"): {"exact": (1e-6, 1e-7), "recomputed": (2e-5, 2e-6)},
    ("tensorflow", "float32", "gpu"): GPU,
    ("jax", "float32", "gpu"): GPU,
    ("torch", "float32", "gpu"): {"exact": (1e-5, 1e-6), "recomputed": (2e-5, 2e-6)},
}
# Hardware without an entry of its own compares like: a TPU reorders reductions as a GPU does
# (no TPU has run the suite yet).
_LIKE = {"tpu": "gpu"}


def tolerance(framework: str, kind: str, dtype: str = "float32", hardware: str = "cpu"):
    """(rtol, atol) for comparing `kind` ("exact" or "recomputed") results computed on `hardware`
    ("cpu", "gpu" or "tpu"); a framework without an entry gets TensorFlow's."""
    hardware = _LIKE.get(hardware, hardware)
    if hardware not in ("cpu", "gpu"):
        raise ValueError(f"tolerances: unknown hardware {hardware!r}; expected cpu, gpu or tpu")
    table = TOLERANCES.get((framework, dtype, hardware), TOLERANCES[("tensorflow", "float32", hardware)])
    return table[kind]
