"""Runs `python -m conformance` in a subprocess, as a user would, and reads its JSON report."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Optional, Sequence

REPO = pathlib.Path(__file__).resolve().parents[2]
# The ci profile: derandomized and with no example database, so a verdict depends neither on
# chance nor on failures an earlier run stored in .hypothesis/ (a fresh clone has none).
PROFILE = "ci"
# These tests need verdicts, not minimal examples: --no-shrink (the default here) keeps each run to
# its first failure. The suite's benchmarks pass shrink=True to time a run exactly as a user's.


def run_conformance(impl: str, args: Sequence[str], report_dir: pathlib.Path, *,
                    pythonpath: Sequence[str] = (), timeout: float = 300, device: str = "cpu",
                    shrink: bool = False, env: Optional[dict] = None) -> "Run":
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = [sys.executable, "-m", "conformance", "--impl", impl, "--profile", PROFILE,
               "--report-dir", str(report_dir), "--device", device, *([] if shrink else ["--no-shrink"]), *args]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    return Run(impl, done.returncode, done.stdout + done.stderr, report_dir, device,
               command="python -m conformance " + " ".join(command[3:]))


class Run:
    def __init__(self, impl: str, returncode: int, output: str, report_dir: pathlib.Path, device: str = "cpu",
                 command: str = ""):
        self.impl, self.returncode, self.output, self.device, self.command = impl, returncode, output, device, command
        self._report_dir = report_dir

    @property
    def report(self) -> Optional[dict]:
        """The run's JSON report: a full run's, or (-k, -x, --check) the partial run's beside it."""
        from conformance import run_name

        stem = run_name(self.impl, self.device)
        for path in (self._report_dir / f"{stem}.json", self._report_dir / f"{stem}.partial.json"):
            if path.exists():
                return json.loads(path.read_text(encoding="utf-8"))
        return None

    def checks_with(self, *statuses: str) -> list:
        report = self.report
        return [] if report is None else [c for c in report["checks"] if c["status"] in statuses]

    def describe(self) -> str:
        return f"exit code {self.returncode}; output tail:\n{self.output[-3000:]}"
