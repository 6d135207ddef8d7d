"""`python -m reports.publish`: the commands it runs, and rendering only complete publications.

The runs are replaced by a stand-in for `subprocess.call` that writes synthetic reports where the
real run would, so these tests need no framework; test_gate_end_to_end.py runs the real thing.
"""

import json
import os
import sys

import pytest

from reports import publish
from reports.render import render_html, render_markdown
from synthetic_reports import make_report, tfrs_report


def test_the_command_of_each_published_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert publish.command("optax", "out") == [
        sys.executable, "-m", "conformance", "--impl", "optax", "--profile", "ci", "--report-dir", "out",
    ]
    assert publish.command("reference", "out")[-2:] == ["--device", "replicas:2"]
    (tmp_path / "adapters" / "expectations").mkdir(parents=True)
    (tmp_path / "adapters" / "expectations" / "tfrs.toml").write_text("", encoding="utf-8")
    assert publish.command("tfrs", "out", "dev", ["-k", "x"])[6:] == [
        "dev", "--report-dir", "out", "--device", "replicas:2",
        "--expectations", os.path.join("adapters", "expectations", "tfrs.toml"), "-k", "x",
    ]


def test_every_bundled_adapter_is_published_by_default(tmp_path, monkeypatch):
    from adapters import BUNDLED

    ran = []
    monkeypatch.setattr(publish.subprocess, "call", lambda words: ran.append(words[words.index("--impl") + 1]) or 2)
    assert publish.main(["--report-dir", str(tmp_path)]) == 2  # no run wrote a report
    assert ran == list(BUNDLED) + [impl for impl, _ in publish.MULTI_PROCESS_RUNS]


class FakeRuns:
    """subprocess.call for `python -m conformance`: writes `reports[impl]` as that run's report."""

    def __init__(self, reports, codes):
        self.reports, self.codes, self.commands = reports, codes, []

    def __call__(self, words):
        self.commands.append(words)
        impl, report_dir = words[words.index("--impl") + 1], words[words.index("--report-dir") + 1]
        if impl in self.reports:
            with open(os.path.join(report_dir, f"{impl}-cpu.json"), "w", encoding="utf-8") as f:
                json.dump(self.reports[impl], f)
        return self.codes[impl]


def test_publish_runs_each_impl_tolerates_failing_runs_and_renders_them_all(tmp_path, monkeypatch):
    out = tmp_path / "published"
    out.mkdir()
    (out / "gone-cpu.json").write_text(json.dumps(make_report(name="gone")), encoding="utf-8")  # stale
    runs = FakeRuns({"reference": make_report(), "tfrs": tfrs_report()}, {"reference": 0, "tfrs": 1})
    monkeypatch.setattr(publish.subprocess, "call", runs)
    monkeypatch.setattr(publish, "MULTI_PROCESS_RUNS", ())  # One run each (test_multi_process_runs).
    md, page = tmp_path / "matrix.md", tmp_path / "matrix.html"
    argv = ["reference", "tfrs", "--report-dir", str(out), "--markdown", str(md), "--html", str(page)]
    assert publish.main(argv) == 0
    assert [w[w.index("--impl") + 1] for w in runs.commands] == ["reference", "tfrs"]
    assert sorted(p.name for p in out.iterdir()) == ["reference-cpu.json", "tfrs-cpu.json"]
    reports = [make_report(), tfrs_report()]
    assert md.read_text(encoding="utf-8") == render_markdown(reports)
    assert page.read_text(encoding="utf-8") == render_html(reports)


def test_multi_process_runs_follow_their_implementation():
    """The reference and TFRS are also published on workers:2 and ps:2, only when published at all."""
    assert publish.runs(["reference", "optax"]) == [("reference", None), ("optax", None),
                                                    ("reference", "workers:2"), ("reference", "ps:2")]
    assert publish.command("tfrs", "out", device="ps:2")[7:11] == ["--report-dir", "out", "--device", "ps:2"]
    assert "replicas:2" not in publish.command("reference", "out", device="workers:2")


def test_a_device_with_its_own_expectations_file_uses_it(tmp_path, monkeypatch):
    """tfrs on ps:2 fails checks that pass elsewhere: its run reads tfrs.ps.toml, the others tfrs.toml."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adapters" / "expectations").mkdir(parents=True)
    for name in ("tfrs.toml", "tfrs.ps.toml"):
        (tmp_path / "adapters" / "expectations" / name).write_text("", encoding="utf-8")
    assert publish.expectations_file("tfrs", "ps:2") == os.path.join("adapters", "expectations", "tfrs.ps.toml")
    assert publish.expectations_file("tfrs", "workers:2") == os.path.join("adapters", "expectations", "tfrs.toml")
    assert publish.expectations_file("tfrs") == os.path.join("adapters", "expectations", "tfrs.toml")
    assert publish.expectations_file("optax", "ps:2") is None


@pytest.mark.parametrize("code", [2, 3, 4, -9])
def test_a_run_without_a_complete_report_stops_the_rendering(tmp_path, monkeypatch, capsys, code):
    runs = FakeRuns({"reference": make_report()}, {"reference": 0, "optax": code})
    monkeypatch.setattr(publish.subprocess, "call", runs)
    md = tmp_path / "matrix.md"
    argv = ["reference", "optax", "--report-dir", str(tmp_path / "p"), "--markdown", str(md), "--html", str(tmp_path / "m.html")]
    assert publish.main(argv) == 2
    assert not md.exists()
    assert f"error: publish: no complete report from optax (exit code {code}); nothing rendered." in capsys.readouterr().err
