"""tests/upstream: direct reproductions of the deviations recorded in adapters/expectations/*.toml.

Each `test_<library>.py` needs its library, so it runs in that adapter's nox session
(`nox -s "conformance(impl='tfrs')"` runs test_tfrs.py before the suite; keras-jax and keras-torch
run test_keras.py with KERAS_BACKEND set). A plain `pytest` / `nox -s tests` collects only the
evidence index here, which checks that every expectations entry names one of these tests.
Files named on the command line are collected regardless (pytest does not apply collect_ignore to them),
and import their library unconditionally: run in the wrong environment they error, never skip.
"""

REPRODUCTIONS = ["test_tfrs.py", "test_keras.py", "test_optax.py", "test_torchrec.py"]
collect_ignore = REPRODUCTIONS
