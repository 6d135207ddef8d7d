"""The conformance suite rejects faulty implementations (tests/conformance/canaries.py).

Each canary is the reference wrong in one way. Running the suite's focused checks against it
must exit non-zero with a failed check that cites the requirement the canary breaks; the same
focused checks must pass against the reference, so the failure is the canary's, not the suite's.
One subprocess per canary: the suite runs exactly as `python -m conformance` does for users.
"""

import pytest

import canaries
from conformance_subprocess import run_conformance

CANARIES = [pytest.param(cls, id=cls.__name__) for cls in canaries.CANARIES]


@pytest.mark.parametrize("canary", CANARIES)
def test_suite_rejects_canary(canary, tmp_path):
    impl = f"tests.conformance.canaries:{canary.__name__}"
    run = run_conformance(impl, ["-x", "-q", "-p", "no:logging", "-k", canary.SELECT], tmp_path,
                          device=getattr(canary, "DEVICE", "cpu"))
    assert run.returncode != 0, f"{canary.__name__} passed the suite: {canary.__doc__}\n{run.describe()}"
    assert run.report is not None, f"no JSON report for {impl}: {run.describe()}"
    failed = run.checks_with("failed")
    citing = [c for c in failed if canary.BREAKS in c["requirements"]]
    assert citing, (f"{canary.__name__} breaks {canary.BREAKS}, but the failed checks cite "
                    f"{[(c['id'], c['requirements']) for c in failed]}\n{run.describe()}")
    assert all(c["message"] for c in citing), f"a failed check has no message: {citing}"


@pytest.mark.parametrize("device", sorted({getattr(cls, "DEVICE", "cpu") for cls in canaries.CANARIES}))
def test_reference_passes_the_checks_that_reject_canaries(tmp_path, device):
    selects = sorted({cls.SELECT for cls in canaries.CANARIES if getattr(cls, "DEVICE", "cpu") == device})
    run = run_conformance("reference", ["-q", "-p", "no:logging", "-k", " or ".join(selects)], tmp_path,
                          device=device)
    assert run.returncode == 0, run.describe()
    ran = {c["id"].split("::")[1] for c in run.checks_with("passed")}
    missing = [s for s in selects if not any(s in name for name in ran)]
    assert not missing, f"checks selected but not run and passed against the reference: {missing}"
    assert not run.checks_with("failed", "error", "not_applicable"), run.describe()
