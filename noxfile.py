"""Sessions: `tests` (the project's own tests), `conformance` (the suite against the
reference), `conformance(impl='NAME')` (against a bundled adapter, with only that
adapter's framework installed), `report` (regenerate reports/), `bench` (benchmarks).
"""

import os

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"

# Bundled adapter -> the pyproject extras it needs. Each conformance(impl=...) session
# installs only these, so one framework's install never hides another's missing pin.
IMPL_EXTRAS = {
    "reference": [],
    "tfrs": ["tfrs"],
    "optax": ["jax"],
    "keras": ["keras"],
    "keras-jax": ["keras", "jax"],
    "keras-torch": ["keras", "torch"],
    "torchrec": ["torchrec"],
}
# The expectations file each bundled adapter's published run uses (adapters/expectations/).
EXPECTATIONS = "adapters/expectations/{impl}.toml"


def _install(session, *extras):
    session.install("-e", f".[{','.join(extras)}]" if extras else ".")
    if "torchrec" in extras:  # See pyproject.toml: its declared deps would pull CUDA builds.
        session.install("--no-deps", "torchrec==1.8.0")


@nox.session
def tests(session):
    """The project's own tests: the reference's unit tests, canaries, adapters, reports."""
    _install(session, "tfrs", "jax", "dev")
    # On every core (pytest-xdist): most tests run the suite in subprocesses, a CPU-bound minute each.
    session.run("pytest", "-n", "auto", *session.posargs)


@nox.session
def conformance(session):
    """The conformance suite against the reference on CPU: `nox -s conformance -- ARGS`."""
    _install(session)
    session.run("python", "-m", "conformance", *session.posargs)


# The direct reproductions of each library's recorded deviations (tests/upstream/); keras-jax and
# keras-torch run the Keras file on their own backend. tests/upstream/test_evidence_index.py uses the same rule.
UPSTREAM = "tests/upstream/test_{library}_deviations.py"
KERAS_BACKENDS = {"keras": "tensorflow", "keras-jax": "jax", "keras-torch": "torch"}


def _conformance_session(impl, extras):
    def run(session):
        _install(session, *extras)
        upstream = UPSTREAM.format(library=impl.partition("-")[0])
        if os.path.exists(upstream):  # First: the deviations the expectations below rely on still exist.
            env = {"KERAS_BACKEND": KERAS_BACKENDS[impl]} if impl in KERAS_BACKENDS else {}
            session.run("pytest", upstream, env=env)
        expectations = EXPECTATIONS.format(impl=impl)
        args = ["--expectations", expectations] if os.path.exists(expectations) else []
        session.run("python", "-m", "conformance", "--impl", impl, *args, *session.posargs)

    run.__doc__ = f"The conformance suite against the bundled `{impl}` adapter."
    # Named like a parametrized session so `nox -s "conformance(impl='tfrs')"` works,
    # while plain `nox -s conformance` still means the reference alone.
    return nox.session(name=f"conformance(impl='{impl}')")(run)


for _impl, _extras in IMPL_EXTRAS.items():
    _conformance_session(_impl, _extras)


@nox.session
def report(session):
    """Regenerate reports/: every bundled adapter's run (ci profile; replicas:2 where supported) into
    reports/published/, then the Markdown and HTML matrix (reports/publish.py)."""
    _install(session, *sorted({e for extras in IMPL_EXTRAS.values() for e in extras}))
    session.run("python", "-m", "reports.publish", *session.posargs)


@nox.session
def bench(session):
    """Benchmarks (pytest-benchmark): the reference against direct sub-optimizer calls, TFRS, Keras 3."""
    _install(session, "bench")
    session.run("pytest", "-o", "addopts=", "-o", "python_files=bench_*.py", "tests/benchmarks",
                "--benchmark-json=reports/benchmarks.json.raw", *session.posargs)
    session.run("python", "-m", "reports.benchmarks", "reports/benchmarks.json.raw")
