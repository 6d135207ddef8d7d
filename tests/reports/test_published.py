"""The committed matrix (reports/matrix.md, reports/matrix.html) is what `nox -s report` renders
from the committed reports (reports/published/*.json), byte for byte. The reports may be of either
schema version (1: verdicts derived from the checks; 2: verdicts as recorded)."""

import pathlib

from reports.cli import load_report
from reports.render import render_html, render_markdown

ROOT = pathlib.Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "reports" / "published"
RENDERINGS = {"reports/matrix.md": render_markdown, "reports/matrix.html": render_html}
REGENERATE = "run `nox -s report` (or `python -m reports.publish`) and commit reports/published/ and reports/matrix.*"


def test_committed_renderings_match_the_committed_reports():
    reports_json = sorted(PUBLISHED.glob("*.json"))
    present = [name for name in RENDERINGS if (ROOT / name).exists()]
    if not reports_json:
        # Nothing published yet is consistent; a matrix without the reports it came from is not.
        assert not present, f"{present} committed but no reports in {PUBLISHED}: {REGENERATE}"
        return
    reports = [load_report(path) for path in reports_json]
    for name, render in RENDERINGS.items():
        path = ROOT / name
        assert path.exists(), f"{name} is missing though {PUBLISHED} has reports: {REGENERATE}"
        assert path.read_text(encoding="utf-8") == render(reports), f"{name} is stale: {REGENERATE}"
