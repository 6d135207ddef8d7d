"""The conformance plugin's reliance on hypothesis internals, checked so an upgrade cannot
silently change how long (and how reproducibly) a failing check shrinks."""

from hypothesis.internal.conjecture import engine

from conformance.plugin import SHRINK_LIMITS


def test_shrink_limits_reach_hypothesis():
    """plugin.pytest_configure sets these two module constants; both must still exist and be read."""
    assert isinstance(engine.MAX_SHRINKS, int) and isinstance(engine.MAX_SHRINKING_SECONDS, (int, float))
    source = open(engine.__file__, encoding="utf-8").read()
    assert "self.shrinks >= MAX_SHRINKS" in source
    assert "MAX_SHRINKING_SECONDS" in source
    assert all(shrinks > 0 and seconds > 0 for shrinks, seconds in SHRINK_LIMITS.values())
