"""Distribution (SPEC DIST-1, ITER-4): N replicas behave like one device fed the summed gradients."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import checks
from conformance import strategies as cs
from conformance.oracle import sum_replicas
from conformance.plugin import not_applicable


def _replicated_run(impl, data, clip):
    """Every step on impl.replicas replicas, each with the step's structure and its own values,
    compared after each step with the oracle fed the replicas' summed gradients."""
    if impl.replicas < 2:
        not_applicable(f"the run is on {impl.device!r}, one replica; run with --device replicas:N")
    case = data.draw(cs.cases(impl.caps, max_groups=3, max_steps=3, clip=clip), label="case")
    instance, oracle = checks.build(impl, case)
    for number, pairs in enumerate(case.steps, 1):
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


@pytest.mark.broad
@pytest.mark.requirement("DIST-1", "ITER-4")
@pytest.mark.needs("replicas")
@given(data=st.data())
def test_replicas_behave_like_one_device_with_summed_gradients(impl, data):
    """DIST-1: sum across replicas once, then dispatch; ITER-4: one count per step, not N."""
    _replicated_run(impl, data, clip=None)


@pytest.mark.broad
@pytest.mark.requirement("DIST-1", "CLIP-1")
@pytest.mark.needs("replicas", "composite_clipping")
@given(data=st.data())
def test_replicas_clip_the_summed_gradients(impl, data):
    """DIST-1: the composite clips the *sum* of the replicas' gradients, not each replica's share."""
    _replicated_run(impl, data, clip=cs.some_clip_settings())
