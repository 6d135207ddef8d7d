"""Hook specifications of the conformance plugin, for a port's own `conftest.py`.

    # conftest.py of a port's repository
    pytest_plugins = ["conformance.plugin"]

    def pytest_conformance_implementation(config):
        return "myport.adapter:MyAdapter"   # or the adapter (class or instance) itself

`pytest` then runs the suite's checks against it beside the port's own tests (`--impl` on the
command line still wins).
"""

import pytest


@pytest.hookspec(firstresult=True)
def pytest_conformance_implementation(config):
    """The implementation to check: a bundled adapter name, "MODULE:ATTR", or the adapter (class or
    instance) or tf_keras legacy optimizer class itself. None: the next conftest's, else `reference`."""
