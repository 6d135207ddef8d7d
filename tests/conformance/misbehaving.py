"""Implementations that misbehave the way third-party code can: they hang or kill their process.

Each is the reference, correct in every check but one: when `apply_gradients` is given a
generator, which only ROUTE-6's check (test_tf_keras_api.py::test_any_iterable_is_read_once) does,
it misbehaves. tests/conformance/test_runner.py runs the suite against them and expects a complete
report in which that one check is an error that says what happened, and every other check has its
usual verdict.
"""

from __future__ import annotations

import ctypes
import os
import threading
import types

from reference import CompositeOptimizer

# The one check that passes a generator (see the module docstring).
CHECK = "test_tf_keras_api.py::test_any_iterable_is_read_once"


class _MisbehavesOnGenerators(CompositeOptimizer):
    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        if isinstance(grads_and_vars, types.GeneratorType):
            self.misbehave()
        return super().apply_gradients(grads_and_vars, name, experimental_aggregate_gradients)

    def misbehave(self):
        raise NotImplementedError


class Hangs(_MisbehavesOnGenerators):
    """Waits forever in Python code (a lock that is never released)."""

    def misbehave(self):
        threading.Event().wait()


class HangsHoldingTheGil(_MisbehavesOnGenerators):
    """Waits forever in native code without releasing the GIL, so no Python thread runs again."""

    def misbehave(self):
        ctypes.PyDLL(None).pause()


class Aborts(_MisbehavesOnGenerators):
    """Kills its process with SIGABRT, as a failed C++ assertion does."""

    def misbehave(self):
        os.abort()
