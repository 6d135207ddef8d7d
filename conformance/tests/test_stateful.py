"""A stateful test (SPEC INTEG-4): steps, bad calls, state transfer, config and checkpoint round
trips, interleaved at random, with invariants checked after every rule:

  - the composite counter equals the number of successful steps;
  - the variables equal the oracle's, whatever twin the training has moved into;
  - a failed call changes nothing.

Every operation has its own focused check (ROUTE-3, ROUTE-4, ATOM-1, WEIGHT-3, CONF-4, CKPT-1, ITER-1,
ROUTE-9), which runs first; this test charges only what those cannot see, the interleaving, to
INTEG-4. An operation whose own check deviates is left out of the interleavings (its rule's
precondition, `impl.allows`), so a config-only bug fails CONF-4 and nothing here.

Every rule reaches the implementation: a bad call is one the implementation itself must refuse
(an all-None call, ROUTE-3; a gradient for a variable that exists but no entry lists, ROUTE-4).
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from adapters.protocol import Unsupported, VariableSpec
from conformance import checks
from conformance import strategies as cs
from conformance.oracle import Oracle
from conformance.situations import STEP

ORPHAN = "orphan_variable"


class CompositeMachine(RuleBasedStateMachine):
    impl = None  # Set by the test below; a state machine cannot take fixtures.

    @initialize(data=st.data())
    def build(self, data):
        self.case = data.draw(cs.cases(self.impl.caps, max_steps=1), label="case")
        # A variable that no entry lists, for the unlisted_variable rule: it exists in the composite's
        # model, so a gradient for it reaches the implementation, which must refuse it (ROUTE-4).
        self.orphan = None
        if (self._supports("step_errors") and self._allows("unlisted_gradient", "refused_call_atomic")
                and data.draw(st.booleans(), label="with a variable no entry lists")):
            self.orphan = len(self.case.variables)
            shape = data.draw(cs.variable_shapes, label="its shape")
            self.case = dataclasses.replace(
                self.case, variables=self.case.variables + (VariableSpec(ORPHAN, np.zeros(shape, np.float32)),))
        self.instance, self.oracle = checks.build(self.impl, self.case)
        # State is created up front, so every twin lists it in the same order (WEIGHT-3 moves
        # state between composites of the same structure; creation order is part of that).
        self._materialize(self.instance)
        self.steps = 0
        self.listed = sorted(i for g in self.case.spec.groups for i in g.variables)
        self.groups = [g.variables for g in self.case.spec.groups]

    def _supports(self, *capabilities):
        return all(c not in self.impl.unsupported for c in capabilities)

    def _allows(self, *situations):
        """Operations whose own focused check did not deviate (conformance/situations.py)."""
        return all(self.impl.allows(s) for s in situations)

    @rule(data=st.data())
    def step(self, data):
        pairs = data.draw(cs.steps(self.impl.caps, self.case.variables, self.groups), label="step")
        checks.step_and_compare(self.impl, self.case, self.instance, self.oracle, pairs, self.steps + 1)
        self.steps += 1

    @precondition(lambda self: getattr(self, "orphan", None) is not None)
    @rule(data=st.data())
    def unlisted_variable(self, data):
        before = checks.snapshot(self.instance)
        pairs = data.draw(cs.steps(self.impl.caps, self.case.variables, self.groups), label="good pairs")
        shape = self.case.variables[self.orphan].value.shape
        with checks.charged_to("ROUTE-4"):  # Its own check (which ran first, in a full run) passed: only here.
            checks.expect_raises(self.impl, lambda: self.instance.step(tuple(pairs) + ((self.orphan, np.ones(shape, np.float32)),)),
                                 "a gradient for a variable no entry lists", error=ValueError,
                                 mentions=[checks.names(ORPHAN)])
        checks.assert_unchanged(before, checks.snapshot(self.instance), "a refused call")

    @precondition(lambda self: self._supports("none_gradient") and self._allows("all_none_call", "refused_call_atomic"))
    @rule()
    def all_none(self):
        before = checks.snapshot(self.instance)
        with checks.charged_to("ROUTE-3"):
            checks.expect_raises(self.impl, lambda: self.instance.step(tuple((i, None) for i in self.listed)),
                                 "an all-None call", error=ValueError)
        checks.assert_unchanged(before, checks.snapshot(self.instance), "a refused all-None call")

    def _materialize(self, instance):
        if self._supports("state"):
            with checks.applicability():
                instance.materialize()

    def _current(self):
        return tuple(VariableSpec(v.name, value) for v, value in zip(self.case.variables, self.instance.variables()))

    @precondition(lambda self: self._supports("state") and self._allows("state_transfer"))
    @rule()
    def move_into_twin(self):
        with checks.applicability():
            twin = self.impl.adapter.composite(self.case.spec, self._current())
            twin.materialize()
            twin.set_state(self.instance.state())
        self.instance = twin

    @precondition(lambda self: self._supports("state", "config") and self._allows("state_transfer", "config_round_trip"))
    @rule()
    def config_round_trip(self):
        with checks.applicability():
            twin = self.impl.adapter.from_config(self.instance.config(), self._current(),
                                                 [g.variables for g in self.case.spec.groups])
            twin.materialize()
            twin.set_state(self.instance.state())
        self.instance = twin

    @precondition(lambda self: self._supports("checkpoint") and self._allows("checkpoint_round_trip"))
    @rule()
    def checkpoint_round_trip(self):
        import tempfile

        # Kept until teardown: restoration may be deferred until state is first created.
        self.directories = getattr(self, "directories", []) + [tempfile.mkdtemp(prefix="conformance-")]
        with checks.applicability():
            path = self.instance.save(self.directories[-1])
            restored = self.impl.adapter.composite(self.case.spec, self.case.variables)
            # Materialized before restoring: tf_keras creates slots a restore finds missing in
            # checkpoint order, which would put the state list in another order than the twins'.
            self._materialize(restored)
            restored.restore(path)
        self.instance = restored

    def teardown(self):
        import shutil

        for directory in getattr(self, "directories", []):
            shutil.rmtree(directory, ignore_errors=True)

    @invariant()
    def counter_counts_successful_steps(self):
        if not hasattr(self, "instance") or not self._allows("composite_counter"):
            return
        try:
            counter = self.instance.iterations()
        except Unsupported:
            return
        assert counter == self.steps, f"composite counter {counter} after {self.steps} successful steps"

    @invariant()
    def variables_equal_the_oracle(self):
        if hasattr(self, "instance"):
            checks.assert_arrays_close(self.instance.variables(), self.oracle.variables(),
                                       checks.tolerance_for(self.impl, self.case.spec.clip), "variables")


@pytest.mark.requirement("INTEG-4")
@pytest.mark.uses(*STEP, "sub_counters", "composite_counter", "all_none_call", "unlisted_gradient",
                  "refused_call_atomic", "state_transfer", "config_round_trip", "checkpoint_round_trip")
@pytest.mark.relies_on("steps")
def test_interleaved_operations_keep_the_invariants(impl):
    from hypothesis import settings

    CompositeMachine.impl = impl
    run_state_machine_as_test(CompositeMachine, settings=settings(settings.default, stateful_step_count=6))
