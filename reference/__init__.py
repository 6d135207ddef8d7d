"""The reference composite optimizer and its written spec (`reference/SPEC.md`)."""

from reference.composite_optimizer import CompositeOptimizer

__all__ = ["CompositeOptimizer", "SPEC_VERSION", "__version__"]

__version__ = "0.1.0"
SPEC_VERSION = "1.0"
