"""A port author's own class, in a module outside this repository, runs as `--impl module:Class`."""

import textwrap

from conformance_subprocess import run_conformance


def test_class_in_an_outside_module_runs_by_module_and_name(tmp_path):
    package = tmp_path / "outside"
    package.mkdir()
    (package / "mycomposite.py").write_text(textwrap.dedent('''
        """A port author's composite: here, the reference under another name."""
        import reference


        class MyComposite(reference.CompositeOptimizer):
            pass
    '''))
    reports = tmp_path / "reports"
    # Not -q: pytest's quiet mode leaves out the header that names the implementation.
    run = run_conformance("mycomposite:MyComposite", ["-k", "routing or iterations"], reports,
                          pythonpath=[package])
    assert run.returncode == 0, run.describe()
    assert "implementation: mycomposite:MyComposite = mycomposite.MyComposite" in run.output, run.describe()
    report = run.report
    assert report is not None and report["implementation"]["implementation"] == "mycomposite.MyComposite"
    areas = {c["area"] for c in run.checks_with("passed")}
    assert areas == {"routing", "iterations"}, f"passed checks by area: {areas}\n{run.describe()}"
