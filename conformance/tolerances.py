"""Comparison tolerances, per framework and dtype: (rtol, atol).

"exact": the implementation under test and the oracle do the same arithmetic in the same
framework (the composite's sub-optimizer against the same sub-optimizer alone), so only
float32 rounding of identical operations separates them.
"recomputed": the oracle recomputes something independently (composite clipping in float64
numpy, against the framework's float32 clip ops, or torch's `clip_grad_norm_`, which divides
by `norm + 1e-6`). Both stay far below a 0.1% drift of one gradient, which the suite must catch.
"""

TOLERANCES = {
    ("tensorflow", "float32"): {"exact": (1e-6, 1e-7), "recomputed": (2e-5, 1e-6)},
    ("jax", "float32"): {"exact": (1e-6, 1e-7), "recomputed": (2e-5, 1e-6)},
    ("torch", "float32"): {"exact": (1e-6, 1e-7), "recomputed": (2e-5, 2e-6)},
}
_DEFAULT = {"exact": (1e-6, 1e-7), "recomputed": (2e-5, 1e-6)}


def tolerance(framework: str, kind: str, dtype: str = "float32"):
    """(rtol, atol) for comparing `kind` ("exact" or "recomputed") results."""
    return TOLERANCES.get((framework, dtype), _DEFAULT)[kind]
