"""Config round-trips (SPEC CONF-4): from_config(config()) is the same optimizer."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import checks
from conformance import strategies as cs
from conformance.situations import STEP


@pytest.mark.broad
@pytest.mark.requirement("CONF-4")
@pytest.mark.needs("config")
@pytest.mark.owns("config_round_trip")
@pytest.mark.uses(*STEP, "composite_clipping")
@given(data=st.data())
def test_from_config_rebuilds_an_identical_optimizer(impl, data):
    """CONF-4: JSON round trip of the config; the rebuilt optimizer has an equal config and steps identically."""
    # Clip settings are part of the config: a round trip must keep them too.
    case = data.draw(cs.cases(impl.caps, clip=cs.clip_settings(impl.caps.composite_clipping)), label="case")
    instance, _ = checks.build(impl, case)
    with checks.applicability():
        config = instance.config()
    try:  # Must survive JSON, as a saved model's would: failing to is the implementation's, not the suite's.
        rebuilt_from = json.loads(json.dumps(config))
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"the config is not JSON-serialisable: {exc}") from exc
    with checks.applicability():
        twin = impl.adapter.from_config(rebuilt_from, case.variables, [g.variables for g in case.spec.groups])
        assert twin.config() == config, "config of the rebuilt optimizer differs from the original's"
        for number, pairs in enumerate(case.steps, 1):
            instance.step(pairs)
            twin.step(pairs)
            checks.assert_arrays_close(twin.variables(), instance.variables(), impl.tolerance("exact"),
                                       f"rebuilt optimizer's variables after step {number}")
