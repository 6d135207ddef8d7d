"""Distribution (SPEC DIST-1, ITER-4): N replicas behave like one device fed the summed gradients."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import checks
from conformance import strategies as cs
from conformance.oracle import sum_replicas
from conformance.plugin import not_applicable


@pytest.mark.requirement("DIST-1", "ITER-4", "CLIP-1")
@pytest.mark.needs("replicas")
@given(data=st.data())
def test_replicas_behave_like_one_device_with_summed_gradients(impl, data):
    """DIST-1: sum across replicas once, clip the sum, dispatch; ITER-4: one count per step."""
    if impl.replicas < 2:
        not_applicable(f"the run is on {impl.device!r}, one replica; run with --device replicas:N")
    # Composite clipping on whenever the port has it: DIST-1 is about clipping the *sum*.
    clip = cs.some_clip_settings() if impl.caps.composite_clipping else None
    case = data.draw(cs.cases(impl.caps, max_groups=3, max_steps=3, clip=clip), label="case")
    instance, oracle = checks.build(impl, case)
    for number, pairs in enumerate(case.steps, 1):
        # Every replica has the step's structure (same pairs, None and sparse in the same places).
        per_replica = [pairs] + [
            tuple((i, g if g is None else (data.draw(cs.sparse_gradients(case.variables[i].value.shape))
                                          if hasattr(g, "indices") else
                                          data.draw(cs.gradient_values(case.variables[i].value.shape))))
                  for i, g in pairs)
            for _ in range(impl.replicas - 1)
        ]
        with checks.applicability():
            instance.step_replicas(per_replica)
        oracle.step(sum_replicas(per_replica))
        checks.assert_arrays_close(instance.variables(), oracle.variables(), impl.tolerance("recomputed"),
                                   f"variables after replicated step {number}")
        assert checks.composite_counter(instance) == number, (
            f"composite counter {checks.composite_counter(instance)} after {number} replicated steps")
