"""Situations: what a check's generated cases contain, each owned by one requirement.

A fault usually shows in one situation: a crash only when a group is absent, a wrong update only
for sparse gradients, a schedule lost only in a config round trip. Every check whose cases happen
to contain that situation would fail with it, and each failure would be charged to that check's
requirement. To charge the fault once, to the requirement it breaks:

- each situation has an owning requirement and *owner* checks (marker `owns`), focused on it: their
  cases contain that situation and nothing else that another requirement owns;
- every other check declares the situations its cases may contain (`uses`: it can leave them out)
  and those it cannot do without (`relies_on`);
- a check runs after the owners of what it uses or relies on (`run_order`), reads their outcomes
  (`Outcomes`), and then leaves out every used situation whose owner deviated (the report lists it
  under `avoided`) or, when it relies on one, is *blocked by* the owning requirement: no verdict.

A check's cases contain only what it declares: `Implementation.focus` turns every other situation
off in the strategies' `Capabilities`. Optimizer kinds are situations too (`kind:adam`, owned by
ROUTE-9's one-entry checks), used by every check that draws cases.

Outcomes travel through files in a directory every process of the run shares, so that the verdicts
are the same whether the checks run in one process or in several pytest-xdist workers: a check whose
owners run on another worker waits for their outcome (pytest-xdist's load scheduling hands each
worker its checks in collection order, so owners, sorted first, never wait on their users).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from adapters.protocol import OPTIMIZER_KINDS


@dataclasses.dataclass(frozen=True)
class Situation:
    name: str
    requirement: str  # The requirement its owner checks verify.
    description: str  # What the cases contain, as a report says it ("cases without <description>").


def _kind(kind: str) -> Situation:
    return Situation(f"kind:{kind}", "ROUTE-9", f"{kind} sub-optimizers")


SITUATIONS: Dict[str, Situation] = {s.name: s for s in [
    *(_kind(kind) for kind in OPTIMIZER_KINDS),
    Situation("none_gradient", "ROUTE-2", "None gradients"),
    Situation("absent_group", "ROUTE-7", "groups that get no gradient in a step (absent from the call, or empty)"),
    Situation("sparse_gradient", "ROUTE-8", "sparse gradients"),
    Situation("sub_clipping", "CLIP-3", "sub-optimizers' own clip settings"),
    Situation("composite_clipping", "CLIP-1", "composite clipping"),
    Situation("sub_counters", "ITER-3", "reading each sub-optimizer's counter"),
    Situation("composite_counter", "ITER-1", "reading the composite counter"),
    Situation("steps", "ROUTE-9", "whole steps compared with each sub-optimizer alone"),
    Situation("all_none_call", "ROUTE-3", "calls whose every gradient is None"),
    Situation("unlisted_gradient", "ROUTE-4", "gradients for a variable no entry lists"),
    Situation("shared_names", "ROUTE-1", "variables that share a name"),
    Situation("refused_call_atomic", "ATOM-1", "refused calls (they must change nothing)"),
    Situation("state_transfer", "WEIGHT-3", "state moved into a twin"),
    Situation("config_round_trip", "CONF-4", "config round trips"),
    Situation("checkpoint_round_trip", "CKPT-1", "checkpoint round trips"),
]}

KINDS = tuple(f"kind:{kind}" for kind in OPTIMIZER_KINDS)
# What a generated step may contain (strategies.steps, strategies.layouts, strategies.sub_optimizers).
STEP = ("none_gradient", "absent_group", "sparse_gradient", "sub_clipping")


def get(name: str) -> Situation:
    try:
        return SITUATIONS[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a situation of conformance/situations.py") from None


@dataclasses.dataclass(frozen=True)
class Declaration:
    """What one check's cases contain: owned situations, used ones (avoidable), relied-on ones."""

    owns: Tuple[str, ...] = ()
    uses: Tuple[str, ...] = ()
    relies_on: Tuple[str, ...] = ()

    @classmethod
    def of(cls, item) -> "Declaration":
        def names(marker):
            found = [name for mark in item.iter_markers(marker) for name in mark.args]
            for name in found:
                get(name)  # An unknown name is a bug in the suite: fail loudly.
            return tuple(dict.fromkeys(found))

        return cls(names("owns"), names("uses"), names("relies_on"))

    def needed(self) -> Tuple[str, ...]:
        """The situations whose owners must have run first: what is used or relied on, and every
        optimizer kind (its cases draw them) unless the check is focused on one kind."""
        kinds = () if any(name in KINDS for name in self.owns) else KINDS
        return tuple(name for name in dict.fromkeys(kinds + self.uses + self.relies_on) if name not in self.owns)


def run_order(items: Sequence, declaration_of) -> List:
    """`items` with every owner of a situation before the checks that need it; otherwise owners
    first, then the collection order. Raises ValueError on a cycle (a bug in the declarations)."""
    declarations = [declaration_of(item) for item in items]
    owners: Dict[str, List[int]] = {}
    for index, declaration in enumerate(declarations):
        if declaration is None:
            continue
        for name in declaration.owns:
            owners.setdefault(name, []).append(index)
    before: Dict[int, set] = {index: set() for index in range(len(items))}
    for index, declaration in enumerate(declarations):
        if declaration is None:
            continue
        for name in declaration.needed():
            before[index].update(owner for owner in owners.get(name, ()) if owner != index)
    ordered, done = [], set()
    key = lambda index: (not (declarations[index] and declarations[index].owns), index)  # noqa: E731
    pending = sorted(range(len(items)), key=key)
    while pending:
        ready = next((index for index in pending if before[index] <= done), None)
        if ready is None:
            stuck = [getattr(items[i], "nodeid", i) for i in pending]
            raise ValueError(f"the checks' situations depend on each other in a cycle: {stuck}")
        pending.remove(ready)
        done.add(ready)
        ordered.append(items[ready])
    return ordered


# --------------------------------------------------------------------------- outcomes


# The outcomes of a finished check that say its requirement was not met (or not known to be).
DEVIATING = ("failed", "expected_failure", "error")


class Outcomes:
    """Finished checks' outcomes, one JSON file each in a directory shared by the run's processes."""

    def __init__(self, directory: str):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    def _path(self, nodeid: str) -> str:
        return os.path.join(self.directory, hashlib.sha1(nodeid.encode()).hexdigest() + ".json")

    def write(self, nodeid: str, status: str, charged: Sequence[str], check: str, message: str = "") -> None:
        path = self._path(nodeid)
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            json.dump({"status": status, "charged": list(charged), "check": check, "message": message}, handle)
        os.replace(path + ".tmp", path)  # Atomic: a reader sees all of it or nothing.

    def read(self, nodeid: str) -> Optional[dict]:
        try:
            with open(self._path(nodeid), encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def wait(self, nodeids: Iterable[str], limit_s: float) -> Tuple[Dict[str, dict], List[str]]:
        """The outcomes of `nodeids`, waiting up to `limit_s` for those still running elsewhere;
        returns (found, still missing)."""
        nodeids = list(nodeids)
        deadline = time.monotonic() + limit_s
        while True:
            found = {n: o for n in nodeids if (o := self.read(n)) is not None}
            missing = [n for n in nodeids if n not in found]
            if not missing or time.monotonic() >= deadline:
                return found, missing
            time.sleep(0.05)


@dataclasses.dataclass(frozen=True)
class Deviation:
    """A situation whose owner check did not meet its requirement."""

    situation: str
    requirement: str
    check: str
    status: str

    def describe(self) -> str:
        how = {"failed": "fails", "expected_failure": "fails (expected)", "error": "errored"}[self.status]
        return f"{SITUATIONS[self.situation].description}: {self.requirement}'s check {self.check} {how}"


def deviations(needed: Iterable[str], owners: Mapping[str, Sequence[str]], outcomes: Mapping[str, dict]) -> List[Deviation]:
    """The needed situations whose owners (nodeids, with their `outcomes`) deviated on the
    situation's requirement; an owner that errored counts (its situation is not known to work)."""
    found = []
    for name in needed:
        requirement = SITUATIONS[name].requirement
        for nodeid in owners.get(name, ()):
            outcome = outcomes.get(nodeid)
            if outcome is None or outcome["status"] not in DEVIATING:
                continue
            if outcome["status"] == "error" or requirement in outcome["charged"]:
                found.append(Deviation(name, requirement, outcome["check"], outcome["status"]))
                break
    return found
