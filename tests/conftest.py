"""Session-wide TensorFlow setup shared by every test package under tests/.

Only what must happen once per process, before TensorFlow initialises its devices:

- `TF_USE_LEGACY_KERAS=1` before TensorFlow is imported, so `tensorflow_recommenders`
  (which builds on `tf.keras`) gets tf_keras' legacy optimizers.
- Two logical CPU devices, so `tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])`
  can run real replicas on a CPU-only machine. TensorFlow refuses this once any op
  has run, hence `pytest_configure`.
- The `requirement` marker: `@pytest.mark.requirement("ROUTE-4", ...)` names the
  reference/SPEC.md ids a test checks.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
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
