"""The conformance suite: property-based checks of reference/SPEC.md against any implementation.

Run it with `python -m conformance [--impl SPEC] [--device DEVICE] [--profile dev|ci|thorough]
[--report-dir DIR] [--expectations FILE] [PYTEST_ARGS...]`.
"""

__version__ = "0.1.0"


def run_name(impl_spec: str, device: str) -> str:
    """The file stem of a run's reports: `<impl>-<device>`, safe as a file name."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{impl_spec}-{device}")
