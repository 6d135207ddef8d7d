"""tests/upstream: direct reproductions of the deviations recorded in adapters/expectations/*.toml.

Each `test_<library>_deviations.py` needs its library, so it runs in that adapter's nox session
(`nox -s "conformance(impl='tfrs')"` runs test_tfrs_deviations.py before the suite; keras-jax and
keras-torch run test_keras_deviations.py with their KERAS_BACKEND). A plain `pytest` / `nox -s tests`
collects only the evidence index here, which checks that every expectations entry names one of them.
Files named on the command line are collected regardless (pytest does not apply collect_ignore to
them), and import their library unconditionally: run in the wrong environment they error, never skip.
"""

collect_ignore_glob = ["test_*_deviations.py"]
