"""Checkpoints (SPEC CKPT-1): save, restore, and training resumes identically."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import checks
from conformance import strategies as cs
from conformance.situations import STEP


@pytest.mark.requirement("CKPT-1")
@pytest.mark.needs("checkpoint")
@pytest.mark.owns("checkpoint_round_trip")
@settings(max_examples=checks.examples_share(2))  # A save and a restore each: the slowest per example.
@pytest.mark.uses(*STEP)
@given(data=st.data())
def test_restored_checkpoint_resumes_identically(impl, data, tmp_path_factory):
    """CKPT-1: counter and every sub-optimizer's state survive save/restore into a fresh composite."""
    case = data.draw(cs.cases(impl.caps, min_steps=2, max_steps=5), label="case")
    split = data.draw(st.integers(1, len(case.steps) - 1), label="steps before saving")
    instance, _ = checks.build(impl, case)
    with checks.applicability():
        for pairs in case.steps[:split]:
            instance.step(pairs)
        path = instance.save(str(tmp_path_factory.mktemp("checkpoint")))
        restored = impl.adapter.composite(case.spec, case.variables)
        restored.restore(path)
        for pairs in case.steps[split:]:
            instance.step(pairs)
            restored.step(pairs)
    checks.assert_arrays_close(restored.variables(), instance.variables(), impl.tolerance("exact"),
                               "variables of the restored composite")
    assert checks.sub_counters(restored) == checks.sub_counters(instance)
    assert checks.composite_counter(restored) == checks.composite_counter(instance)
