"""Oracles that need no trust in the implementation under test.

`clip_step` recomputes the composite's clipping (SPEC CLIP-1) in float64 numpy:

    clipvalue:        g <- min(max(g, -c), c)                      elementwise
    clipnorm:         g <- g * c / max(||g||, c)                   per gradient tensor
    global_clipnorm:  g <- g * c / max(sqrt(sum_i ||g_i||^2), c)   over every gradient of the step

with the norm of a sparse gradient taken over its values as given (repeated indices are not
summed first), in that order. `Oracle` then runs each entry's sub-optimizer *alone*, through the
adapter's `standalone` (the framework's plain optimizer, never the composite class), on its own
group, stepped only on steps where its group receives a gradient (SPEC ROUTE-9); an entry with an
empty group holds what its sub-optimizer alone over no variables holds.
"""

from __future__ import annotations

from typing import List, Sequence

import numpy as np

from adapters.protocol import Clip, Sparse, Step, VariableSpec
from conformance.harness import oracle_calls


def _values(grad) -> np.ndarray:
    return grad.values if isinstance(grad, Sparse) else grad


def _with_values(grad, values: np.ndarray):
    values = values.astype(np.float32)
    return Sparse(grad.indices, values) if isinstance(grad, Sparse) else values


def clip_step(pairs: Step, clip: Clip) -> List:
    """The step's non-None pairs, clipped as the composite must clip them (float64, cast to float32)."""
    pairs = [(i, g) for i, g in pairs if g is not None]
    values = [np.asarray(_values(g), np.float64) for _, g in pairs]
    if clip.clipvalue is not None:
        values = [np.clip(v, -clip.clipvalue, clip.clipvalue) for v in values]
    if clip.clipnorm is not None:
        values = [v * clip.clipnorm / max(np.sqrt(np.sum(v * v)), clip.clipnorm) for v in values]
    if clip.global_clipnorm is not None:
        norm = np.sqrt(sum(np.sum(v * v) for v in values))
        values = [v * clip.global_clipnorm / max(norm, clip.global_clipnorm) for v in values]
    if clip == Clip():
        return pairs  # Nothing to recompute: hand over the very same float32 arrays.
    return [(i, _with_values(g, v)) for (i, g), v in zip(pairs, values)]


def sum_replicas(per_replica: Sequence[Step]) -> List:
    """The single-device step equal to N replicas' steps (SPEC DIST-1): gradients summed.

    Sparse gradients are summed by concatenation (repeated indices then add up on apply).
    """
    summed = []
    for position, (i, grad) in enumerate(per_replica[0]):
        grads = [replica[position][1] for replica in per_replica]
        if grad is None:
            summed.append((i, None))
        elif isinstance(grad, Sparse):
            summed.append((i, Sparse(np.concatenate([g.indices for g in grads]), np.concatenate([g.values for g in grads]))))
        else:
            summed.append((i, np.sum(np.stack(grads).astype(np.float64), axis=0).astype(np.float32)))
    return summed


class Oracle:
    """Each entry's sub-optimizer alone on its own group, fed the independently clipped gradients.

    Every entry has its sub-optimizer alone, an empty group's too: what an entry holds when its
    group is empty (no state, or a counter, ...) is what its sub-optimizer alone over no variables
    holds, in each framework (SPEC WEIGHT-1).

    When the entries' var lists change between steps (`regroup`, SPEC ROUTE-1), each entry's
    sub-optimizer alone is built over every variable the entry ever lists (`universes`) and stepped
    on those it lists now; a variable that joins an entry continues from its current value with that
    entry's sub-optimizer (fresh slots there, created on its first gradient), and the sub-optimizer
    it left keeps the slots it had for it.
    """

    def __init__(self, adapter, spec, variables: Sequence[VariableSpec], universes=None):
        self.spec = spec
        self._initial = [np.asarray(v.value, np.float32) for v in variables]
        self._universes = [list(u) for u in (universes or [g.variables for g in spec.groups])]
        # Variable index -> its position in each entry's oracle instance.
        self._position = [{i: j for j, i in enumerate(u)} for u in self._universes]
        with oracle_calls():
            self.alone = [adapter.standalone(g.optimizer, [variables[i] for i in universe])
                          for g, universe in zip(spec.groups, self._universes)]
        self._owner = {}  # Variable index -> the entry that lists it now.
        self._holder = {}  # Variable index -> the entry whose oracle instance holds its current value.
        self.regroup([g.variables for g in spec.groups])
        self.steps = 0

    def regroup(self, groups: Sequence[Sequence[int]]) -> None:
        """From the next step on, entry k lists `groups[k]`."""
        owner = {i: k for k, group in enumerate(groups) for i in group}
        for i, k in owner.items():
            held = self._holder.get(i)
            if held is not None and held != k:  # Moved: carry its current value into the new entry.
                with oracle_calls():
                    values = self.alone[k].variables()
                    values[self._position[k][i]] = self.alone[held].variables()[self._position[held][i]]
                    self.alone[k].assign_variables(values)
            self._holder[i] = k
        self._owner = owner

    def step(self, pairs: Step) -> None:
        clipped = clip_step(pairs, self.spec.clip)
        for k, instance in enumerate(self.alone):
            own = [(self._position[k][i], g) for i, g in clipped if self._owner.get(i) == k]
            if own:
                with oracle_calls():
                    instance.step(own)
        self.steps += 1

    def variables(self) -> List[np.ndarray]:
        """All variables, in the composite's indexing; unlisted variables keep their initial value."""
        out = list(self._initial)
        with oracle_calls():
            values = [instance.variables() for instance in self.alone]
        for i, k in self._holder.items():
            out[i] = values[k][self._position[k][i]]
        return out

    def sub_iterations(self) -> List[int]:
        with oracle_calls():
            return [instance.iterations() for instance in self.alone]

    def state(self) -> List[np.ndarray]:
        """Each sub-optimizer's own state, in entry order (SPEC WEIGHT-1 without the composite counter)."""
        out = []
        with oracle_calls():
            for instance in self.alone:
                out.extend(instance.state())
        return out
