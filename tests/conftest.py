"""Session-wide TensorFlow setup shared by every test package under tests/.

Only what must happen once per process, before TensorFlow initialises its devices:

- `TF_USE_LEGACY_KERAS=1` before TensorFlow is imported, so `tensorflow_recommenders`
  (which builds on `tf.keras`) gets tf_keras' legacy optimizers.
- Two logical CPU devices, so `tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])`
  can run real replicas on a CPU-only machine. TensorFlow refuses this once any op
  has run, hence `pytest_configure`.
- `CONFORMANCE_REPORT_DIR`: the project's own tests never write into the user's reports/runs/.
- The `requirement` marker: `@pytest.mark.requirement("ROUTE-4", ...)` names the
  reference/SPEC.md ids a test checks.
"""

import os
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# Every `python -m conformance` these tests start without --report-dir writes here, never into the
# user's reports/runs/ (the default, through $CONFORMANCE_REPORT_DIR).
os.environ["CONFORMANCE_REPORT_DIR"] = tempfile.mkdtemp(prefix="conformance-test-reports-")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LOGICAL_CPUS = 2


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "requirement(*ids): the reference/SPEC.md requirement ids this test checks"
    )
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(LOGICAL_CPUS)]
        )
    except RuntimeError:
        # TensorFlow was initialised before this hook (a plugin ran an op). Tests that
        # need two replicas check `tf.config.list_logical_devices("CPU")` and fail
        # with that reason rather than run on one device.
        pass
