"""The conformance suite rejects faulty implementations (tests/conformance/canaries.py).

Each canary is the reference wrong in one way. Running the suite's focused checks against it
must exit non-zero with a failed check that cites the requirement the canary breaks; the same
focused checks must pass against the reference, so the failure is the canary's, not the suite's.
One subprocess per canary: the suite runs exactly as `python -m conformance` does for users.
"""

import pytest

import canaries
from conformance_subprocess import run_conformance

def _devices(canary):
    return getattr(canary, "DEVICES", ("cpu",))


CANARIES = [pytest.param(cls, device, id=f"{cls.__name__}-{device}")
            for cls in canaries.CANARIES for device in _devices(cls)]
DEVICE_CANARIES = [pytest.param(cls, id=cls.__name__) for cls in canaries.CANARIES if "cpu" not in _devices(cls)]


@pytest.mark.parametrize("canary,device", CANARIES)
def test_suite_rejects_canary(canary, device, tmp_path):
    impl = f"tests.conformance.canaries:{canary.__name__}"
    run = run_conformance(impl, ["-x", "-q", "-p", "no:logging", "-k", canary.SELECT], tmp_path, device=device)
    assert run.returncode != 0, f"{canary.__name__} passed the suite: {canary.__doc__}\n{run.describe()}"
    assert run.report is not None, f"no JSON report for {impl}: {run.describe()}"
    failed = run.checks_with("failed")
    citing = [c for c in failed if canary.BREAKS in c["requirements"]]
    assert citing, (f"{canary.__name__} breaks {canary.BREAKS}, but the failed checks cite "
                    f"{[(c['id'], c['requirements']) for c in failed]}\n{run.describe()}")
    assert all(c["message"] for c in citing), f"a failed check has no message: {citing}"


@pytest.mark.parametrize("canary", DEVICE_CANARIES)
def test_device_canary_passes_on_one_cpu(canary, tmp_path):
    """A distribution fault is invisible in one process: the device finds it, not the check."""
    impl = f"tests.conformance.canaries:{canary.__name__}"
    run = run_conformance(impl, ["-q", "-p", "no:logging", "-k", canary.PASSES_ON_CPU], tmp_path)
    assert run.returncode == 0, run.describe()
    assert run.checks_with("passed") and not run.checks_with("failed", "error"), run.describe()


@pytest.mark.parametrize("device", sorted({device for cls in canaries.CANARIES for device in _devices(cls)}))
def test_reference_passes_the_checks_that_reject_canaries(tmp_path, device):
    selects = sorted({cls.SELECT for cls in canaries.CANARIES if device in _devices(cls)})
    run = run_conformance("reference", ["-q", "-p", "no:logging", "-k", " or ".join(selects)], tmp_path,
                          device=device)
    assert run.returncode == 0, run.describe()
    ran = {c["id"].split("::")[1] for c in run.checks_with("passed")}
    missing = [s for s in selects if not any(s in name for name in ran)]
    assert not missing, f"checks selected but not run and passed against the reference: {missing}"
    assert not run.checks_with("failed", "error", "not_applicable"), run.describe()
