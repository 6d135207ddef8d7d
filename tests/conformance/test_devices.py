"""A requested device that is not present ends the run with a clear message, never a silent pass."""

import pytest

from conformance_subprocess import run_conformance


@pytest.mark.parametrize("device", ["gpu", "tpu"])
def test_missing_device_exits_non_zero_and_says_so(tmp_path, device):
    """--device gpu/tpu on a machine without one: exit code 2 and a message naming the device."""
    import tensorflow as tf

    if device == "gpu" and tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU, so --device gpu is present here")
    run = run_conformance("reference", ["-q", "-k", "counter_advances"], tmp_path, device=device, timeout=120)
    assert run.returncode == 2, run.describe()
    assert "requested device is not available" in run.output and f"--device {device}" in run.output, run.describe()
    assert run.report is None, "a run on a missing device must not write a report"
