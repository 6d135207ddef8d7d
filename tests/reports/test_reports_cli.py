"""`python -m conformance report`: files in, renderings out; committed fixtures; no TensorFlow."""

import io
import json
import pathlib
import subprocess
import sys

from reports.cli import load_report, main
from reports.render import render_html, render_markdown
from synthetic_reports import FIXTURE_DIR, FIXTURES, fixture_text, parse_html

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE_PATHS = [str(FIXTURE_DIR / name) for name in sorted(FIXTURES)]


def test_committed_fixtures_are_valid_and_current():
    for name in FIXTURES:
        path = FIXTURE_DIR / name
        load_report(path)  # validates
        assert path.read_text(encoding="utf-8") == fixture_text(name), (
            f"{path} is stale: run `python tests/reports/synthetic_reports.py`"
        )


def test_without_outputs_markdown_goes_to_stdout():
    out, err = io.StringIO(), io.StringIO()
    assert main(FIXTURE_PATHS, stdout=out, stderr=err) == 0  # a failing run still renders: exit 0
    assert err.getvalue() == ""
    assert out.getvalue() == render_markdown([load_report(p) for p in FIXTURE_PATHS])
    assert "| **ROUTE-9** | semantic | ✅ | ❌ | ❌ |\n" in out.getvalue()  # the last: a schema-1 report


def test_outputs_are_written_where_asked(tmp_path):
    md, page = tmp_path / "matrix.md", tmp_path / "matrix.html"
    out = io.StringIO()
    assert main(["--markdown", str(md), "--html", str(page), *FIXTURE_PATHS], stdout=out) == 0
    assert out.getvalue() == ""
    reports = [load_report(p) for p in FIXTURE_PATHS]
    assert md.read_bytes() == render_markdown(reports).encode("utf-8")
    assert page.read_bytes() == render_html(reports).encode("utf-8")
    _, errors = parse_html(page.read_text(encoding="utf-8"))
    assert errors == []
    # Only HTML asked for: no Markdown on stdout either.
    out = io.StringIO()
    assert main(["--html", str(tmp_path / "only.html"), FIXTURE_PATHS[0]], stdout=out) == 0
    assert out.getvalue() == "" and (tmp_path / "only.html").exists()


def test_unusable_input_is_refused_naming_the_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    err = io.StringIO()
    assert main([FIXTURE_PATHS[0], str(broken)], stdout=io.StringIO(), stderr=err) == 2
    assert err.getvalue().startswith(f"error: {broken}: not JSON:")
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([1, 2]), encoding="utf-8")
    err = io.StringIO()
    assert main([str(listing)], stdout=io.StringIO(), stderr=err) == 2
    assert f"{listing}: not a report (a JSON object), got list" in err.getvalue()
    err = io.StringIO()
    assert main([FIXTURE_PATHS[0], FIXTURE_PATHS[0]], stdout=io.StringIO(), stderr=err) == 2
    assert "Two reports for implementation 'reference' on device 'cpu' with profile 'ci'" in err.getvalue()


def test_the_report_tooling_never_imports_tensorflow():
    code = (
        "import sys, reports.render, reports.gate, reports.cli\n"
        "heavy = sorted(m for m in ('tensorflow', 'tf_keras', 'keras', 'numpy', 'jax', 'torch') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={"PYTHONPATH": str(ROOT)})
