"""Sessions: `tests` (the project's own tests), `conformance` (the suite against the
reference), `conformance(impl='NAME')` (against a bundled adapter, with only that
adapter's framework installed), `report` (regenerate reports/), `bench` (benchmarks).
"""

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"

# Bundled adapter -> the pyproject extras it needs. Each conformance(impl=...) session
# installs only these, so one framework's install never hides another's missing pin.
IMPL_EXTRAS = {
    "reference": [],
    "tfrs": ["tfrs"],
}


def _install(session, *extras):
    session.install("-e", f".[{','.join(extras)}]" if extras else ".")


@nox.session
def tests(session):
    """The project's own tests: the reference's unit tests, canaries, adapters, reports."""
    _install(session, "tfrs", "dev")
    session.run("pytest", *session.posargs)


@nox.session
def conformance(session):
    """The conformance suite against the reference on CPU: `nox -s conformance -- ARGS`."""
    _install(session)
    session.run("python", "-m", "conformance", *session.posargs)


def _conformance_session(impl, extras):
    def run(session):
        _install(session, *extras)
        session.run("python", "-m", "conformance", "--impl", impl, *session.posargs)

    run.__doc__ = f"The conformance suite against the bundled `{impl}` adapter."
    # Named like a parametrized session so `nox -s "conformance(impl='tfrs')"` works,
    # while plain `nox -s conformance` still means the reference alone.
    return nox.session(name=f"conformance(impl='{impl}')")(run)


for _impl, _extras in IMPL_EXTRAS.items():
    _conformance_session(_impl, _extras)
