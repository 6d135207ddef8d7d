"""Tolerances by framework and hardware (conformance/tolerances.py; SPEC "Tolerances")."""

import pytest

from conformance import tolerances
from conformance.plugin import Implementation


def test_gpu_loosens_exact_comparisons_only_to_a_few_ulps():
    """On a GPU "exact" allows reordered float32 reductions, but stays far below a 0.1% drift."""
    cpu = tolerances.tolerance("tensorflow", "exact")
    gpu = tolerances.tolerance("tensorflow", "exact", hardware="gpu")
    assert gpu[0] > cpu[0] and gpu[1] > cpu[1]
    assert gpu[0] <= 1e-4, "a GPU tolerance that hides a 0.1% drift (as TF32 would need) defeats the suite"
    assert tolerances.tolerance("tensorflow", "recomputed", hardware="gpu") == tolerances.tolerance(
        "tensorflow", "recomputed")


@pytest.mark.parametrize("framework", ["tensorflow", "jax", "torch", "some-new-framework"])
@pytest.mark.parametrize("hardware", ["cpu", "gpu", "tpu"])
def test_every_framework_and_hardware_has_a_tolerance(framework, hardware):
    for kind in ("exact", "recomputed"):
        rtol, atol = tolerances.tolerance(framework, kind, hardware=hardware)
        assert 0 < rtol <= 1e-4 and 0 < atol <= 1e-5


def test_unknown_hardware_is_refused_by_name():
    with pytest.raises(ValueError, match="'fpga'"):
        tolerances.tolerance("tensorflow", "exact", hardware="fpga")


class _Adapter:
    framework = "tensorflow"


@pytest.mark.parametrize("device,hardware", [("cpu", "cpu"), ("gpu", "gpu"), ("tpu", "tpu"), ("replicas:2", "cpu"),
                                             ("workers:2", "cpu"), ("ps:2", "cpu")])
def test_the_run_picks_the_tolerance_of_its_device(device, hardware):
    """Implementation.tolerance keys by the device's hardware; an adapter may say better (a
    replicas:N strategy over GPUs)."""
    impl = Implementation.__new__(Implementation)  # Without resolving an adapter: only the lookup.
    impl.device, impl.adapter = device, _Adapter()
    assert impl.hardware == hardware
    assert impl.tolerance("exact") == tolerances.tolerance("tensorflow", "exact", hardware=hardware)
    impl.adapter.hardware = "gpu"
    assert impl.tolerance("exact") == tolerances.tolerance("tensorflow", "exact", hardware="gpu")
