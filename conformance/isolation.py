"""Isolation from the implementation under test: per-check time limits, and processes that die.

`python -m conformance` runs the checks in pytest-xdist worker processes (one by default, `-n N`
for more). In a worker:

- `faulthandler` writes the Python stacks of a fatal signal (abort, segfault, bus error) to the
  worker's crash file;
- the per-check time limit is pytest-timeout's (`--timeout`, the `timeout` ini value, the
  `timeout` marker), but its timer is this module's `Watchdog`, through pytest-timeout's
  `pytest_timeout_set_timer` hook: at the limit a thread writes the check, the example being run
  (the check function's local variables) and the main thread's stack to the crash file, then ends
  the worker. `faulthandler`'s own watchdog, `GRACE_S` later, ends it with the bare stacks if that
  thread never gets the interpreter (a hang in native code that holds the GIL).

The controller turns the dead worker into an error of the check it was running, with what the
crash file says (`describe_crash`), and pytest-xdist starts a fresh worker for the checks left.

Why not pytest-timeout's own timers: its signal method raises pytest's `Failed` inside the check,
which hypothesis takes for a failure and shrinks by re-running the hanging example, with no timer
left, so the run hangs for good; its thread method also ends the process, but writes the stacks to
the terminal, where the report cannot read them.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
from typing import Callable, Optional

GRACE_S = 5.0  # Between the watchdog thread's limit and faulthandler's hard one.
TIMEOUT_EXIT = 124  # A worker ended by the watchdog exits with this status (as timeout(1) does).
_MAX_EXAMPLE_CHARS = 2000


class CrashFile:
    """One process's crash file: emptied at the start of every check, so after a death it holds
    what the dying check left (faulthandler's text, or the watchdog's JSON line)."""

    def __init__(self, path: str):
        self.path = path
        self.handle = open(path, "w+", encoding="utf-8")

    def enable(self) -> None:
        """Fatal signals write here. Called once every plugin is configured: pytest's faulthandler
        plugin points faulthandler at stderr in its own pytest_configure."""
        faulthandler.enable(self.handle, all_threads=True)

    def reset(self) -> None:
        self.handle.seek(0)
        self.handle.truncate()

    def write(self, record: dict) -> None:
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        faulthandler.disable()
        self.handle.close()


class Watchdog:
    """The per-check timer (see the module docstring). `on_timeout(record)` runs in the watchdog
    thread after the record is written; it must end the process."""

    def __init__(self, crash: CrashFile, check_id: Callable, on_timeout: Callable[[dict], None]):
        self._crash, self._check_id, self._on_timeout = crash, check_id, on_timeout
        self._main = threading.main_thread().ident
        self._timer: Optional[threading.Timer] = None

    def arm(self, item, seconds: float) -> None:
        self.cancel()
        self._timer = threading.Timer(seconds, self._fire, (item, seconds))
        self._timer.daemon = True
        self._timer.start()
        faulthandler.dump_traceback_later(seconds + GRACE_S, exit=True, file=self._crash.handle)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        faulthandler.cancel_dump_traceback_later()

    def _fire(self, item, seconds: float) -> None:
        frame = sys._current_frames().get(self._main)
        record = {
            "kind": "timeout",
            "check": self._check_id(item),
            "seconds": seconds,
            "example": example_being_run(item, frame),
            "stack": "".join(traceback.format_stack(frame)) if frame is not None else "",
        }
        self._crash.write(record)
        self._on_timeout(record)


def example_being_run(item, frame) -> str:
    """The check function's local variables in the main thread's stack (what it drew so far), or ''."""
    test = getattr(item, "obj", None)
    inner = getattr(getattr(test, "hypothesis", None), "inner_test", test)
    code = getattr(inner, "__code__", None)
    while frame is not None and frame.f_code is not code:
        frame = frame.f_back
    if frame is None:
        return ""
    fixtures = set(getattr(item, "fixturenames", ())) | {"data", "self"}  # Not drawn: the same for every example.
    shown = {name: value for name, value in frame.f_locals.items() if name not in fixtures}
    text = ", ".join(f"{name}={value!r}" for name, value in shown.items())
    return text[:_MAX_EXAMPLE_CHARS] + (" ..." if len(text) > _MAX_EXAMPLE_CHARS else "")


@contextlib.contextmanager
def quiet_stderr():
    """File descriptor 2 into a temporary file while frameworks start (their native code writes
    start-up notices there directly, CUDA stubs and oneDNN, once per import); what was written is
    shown only if the start fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def describe_crash(text: str, returncode: Optional[int]) -> tuple:
    """(one-line summary, details) of a worker's death from its crash file and exit status."""
    status = _status(returncode)
    first, _, rest = text.partition("\n")
    if first.startswith("{"):
        record = json.loads(first)
        where = _innermost_outside_suite(record["stack"])
        summary = (f"timed out: the check ran past its limit of {record['seconds']:g} s (--timeout); "
                   f"example being run: {record['example'] or '(nothing drawn yet)'}; the implementation was at {where}")
        return summary, f"main thread's stack when the limit was reached:\n{record['stack']}"
    if first.startswith("Timeout ("):
        return (f"timed out: the check ran past its limit (plus {GRACE_S:g} s) inside native code that never "
                f"returned to Python; the implementation was at {_where_in_dump(text)}"), text
    if first.startswith("Fatal Python error:"):
        return (f"the process running the check died: {first.removeprefix('Fatal Python error: ')} ({status}); "
                f"the implementation was at {_where_in_dump(text)}"), text
    return (f"the process running the check died without a Python traceback ({status}; SIGKILL usually means "
            "the out-of-memory killer, an exit status means the implementation called os._exit)"), text


def describe_load_failure(dump: str, returncode: Optional[int]) -> str:
    """One line: how a worker died while it loaded the implementation (conformance/plugin.py,
    _load_named_port), from what faulthandler wrote to its crash file and its exit status."""
    where = _where_in_dump(dump, "conformance/config_checks.py")
    if dump.startswith("Timeout ("):
        return f"loading it did not finish within the per-check limit (--timeout); it was at {where}"
    if dump.startswith("Fatal Python error:"):
        fatal = dump.partition("\n")[0].removeprefix("Fatal Python error: ")
        return f"loading it killed the process: {fatal} ({_status(returncode)}); it was at {where}"
    return f"loading it ended the process without a Python traceback ({_status(returncode)})"


def _status(returncode: Optional[int]) -> str:
    if returncode is None:
        return "exit status unknown"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def _where_in_dump(text: str, caller: str = "conformance/tests/") -> str:
    """The innermost frame outside the plumbing of the thread that ran the check (the thread with
    `caller` in its stack), in a faulthandler dump (threads in blank-line separated blocks, most
    recent call first)."""
    blocks = text.split("\n\n")
    checks = [b for b in blocks if caller in b] or [b for b in blocks if b.startswith("Current thread")]
    if not checks:
        return "an unknown place"
    frames = [line.strip() for line in checks[0].splitlines() if line.strip().startswith("File ")]
    inside = [f for f in frames if not any(p in f for p in _PLUMBING)]
    return (inside or frames or ["an unknown place"])[0]


_PLUMBING = ("/_pytest/", "/pluggy/", "/hypothesis/", "/threading.py", "/xdist/", "/execnet/", "conformance/isolation.py")


def _innermost_outside_suite(stack: str) -> str:
    """The innermost `File ..., line ..., in ...` of a formatted stack that is not pytest's,
    hypothesis', threading's or this suite's own plumbing: where the implementation was."""
    frames = [line.strip() for line in stack.splitlines() if line.strip().startswith("File ")]
    inside = [f for f in frames if not any(p in f for p in _PLUMBING)]
    return (inside or frames or ["an unknown place"])[-1]
