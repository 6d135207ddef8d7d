"""The requirements of reference/SPEC.md, parsed once, by id.

SPEC.md is the single source of truth: a requirement is a bullet of the form
`- **AREA-N** (scope) text`. The conformance tests cite ids; reports show the text.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import re

SPEC_PATH = pathlib.Path(__file__).resolve().parent.parent / "reference" / "SPEC.md"

_BULLET = re.compile(r"^- \*\*([A-Z]+-\d+)\*\* \((semantic|tf_keras)\) (.*)$")
_VERSION = re.compile(r"^Spec version: \*\*([0-9.]+)\*\*")

# Spec area prefix -> the suite's area (one test module each).
AREAS = {
    "CTOR": "errors",
    "ATOM": "errors",
    "ROUTE": "routing",
    "ITER": "iterations",
    "WEIGHT": "weight_order",
    "SLOT": "slots",
    "CLIP": "clipping",
    "DIST": "distribution",
    "CONF": "config_roundtrip",
    "CKPT": "checkpoints",
    "INTEG": "integration",
}


@dataclasses.dataclass(frozen=True)
class Requirement:
    id: str
    scope: str  # "semantic" or "tf_keras"
    text: str

    @property
    def area(self) -> str:
        return AREAS[self.id.split("-")[0]]


@functools.lru_cache(maxsize=None)
def _parse():
    requirements, version, current = {}, None, None
    for line in SPEC_PATH.read_text(encoding="utf-8").splitlines():
        match = _VERSION.match(line)
        if match:
            version = match.group(1)
        match = _BULLET.match(line)
        if match:
            current = [match.group(1), match.group(2), match.group(3).strip()]
            requirements[current[0]] = current
        elif current is not None and line.startswith("  ") and line.strip():
            current[2] += " " + line.strip()
        else:
            current = None
    return version, {k: Requirement(*v) for k, v in requirements.items()}


def spec_version() -> str:
    return _parse()[0]


def all_requirements() -> dict:
    return dict(_parse()[1])


def get(requirement_id: str) -> Requirement:
    try:
        return _parse()[1][requirement_id]
    except KeyError:
        raise KeyError(f"{requirement_id} is not a requirement of reference/SPEC.md") from None
