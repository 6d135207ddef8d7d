"""Deliberately faulty composite optimizers: each is the reference, wrong in ONE observable way.

They exist to show that the conformance suite rejects real mistakes (tests/conformance/
test_canaries.py runs the suite against each and expects a failed check citing `BREAKS`).
Every class is a small subclass of `reference.CompositeOptimizer`, so it keeps TFRS's
constructor and the tf_keras adapter drives it as `--impl tests.conformance.canaries:<Class>`.
`BREAKS` is the requirement id the fault violates; `SELECT` is the `-k` expression of the
conformance checks that should catch it (one subprocess per canary stays short); `DEVICES`, where
given, the devices on which they catch it (a fault of distribution only; on one CPU the canary
passes the checks of `PASSES_ON_CPU`, which shows the device, not the check, finds it).
"""

from __future__ import annotations

import os
import signal

import numpy as np
import tensorflow as tf
import tf_keras

from adapters.tf_keras import TfKerasAdapter
from reference import CompositeOptimizer

LegacyOptimizer = tf_keras.optimizers.legacy.Optimizer


def _owner_index(optimizer, var):
    return optimizer._owner_of(var)


# --------------------------------------------------------------------------- routing


class RoutesByName(CompositeOptimizer):
    """Fault: matches gradients to entries by variable *name*, not identity; same-named variables
    all go to the last entry listing that name. Breaks ROUTE-1."""

    BREAKS, SELECT = "ROUTE-1", "same_named_variables_route_by_identity"

    @staticmethod
    def _owners(var_lists):
        by_name = {var.name: index for index, var_list in enumerate(var_lists) for var in var_list}
        return {id(var): by_name[var.name] for var_list in var_lists for var in var_list}


class DropsLastGroup(CompositeOptimizer):
    """Fault: the last entry's gradients are silently discarded, so its variables never train.
    Breaks ROUTE-9 (each sub-optimizer gets exactly its own group)."""

    BREAKS, SELECT = "ROUTE-9", "steps_equal_sub_optimizers_alone"

    def _checked_pairs(self, grads_and_vars, var_lists):
        pairs, owners = super()._checked_pairs(grads_and_vars, var_lists)
        last = len(self._optimizers_and_vars) - 1
        return [(g, v) for g, v in pairs if owners[id(v)] != last], owners

    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        pairs = list(grads_and_vars)
        kept, _ = self._checked_pairs(pairs, self._var_lists())
        if pairs and not kept and any(g is not None for g, _ in pairs):
            return self.iterations.assign_add(1)  # Only the dropped group had gradients.
        return super().apply_gradients(pairs, name, experimental_aggregate_gradients)


class NadamCrashesWhenGroupAbsent(CompositeOptimizer):
    """Fault: a step in which a Nadam entry's group has no pair at all (absent from the call, or an
    empty group) raises IndexError, as a port that hands legacy Nadam an empty var list does (its slot
    creation indexes `var_list[0]`). Raised before anything changes; every other step is the
    reference's. Breaks ROUTE-7 only: every other check meets its requirement once it draws no
    absent group (conformance/situations.py)."""

    BREAKS, SELECT = "ROUTE-7", "absent_group_is_not_stepped"

    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        pairs = list(grads_and_vars)
        if pairs:
            present = {id(v) for _, v in pairs}
            for (optimizer, _), var_list in zip(self._optimizers_and_vars, self._var_lists()):
                if isinstance(optimizer, tf_keras.optimizers.legacy.Nadam) and not any(id(v) in present for v in var_list):
                    raise IndexError("list index out of range")
        return super().apply_gradients(pairs, name, experimental_aggregate_gradients)


class DensifiesSparse(CompositeOptimizer):
    """Fault: IndexedSlices gradients are converted to dense tensors before routing, so sub-optimizers
    apply dense updates (rows without a gradient still decay/move). Breaks ROUTE-8."""

    BREAKS, SELECT = "ROUTE-8", "sparse_gradients_reach_the_sub_optimizer_sparse"

    def _checked_pairs(self, grads_and_vars, var_lists):
        pairs, owners = super()._checked_pairs(grads_and_vars, var_lists)
        return [(tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g, v) for g, v in pairs], owners


# --------------------------------------------------------------------------- iterations


class CountsEachGroup(CompositeOptimizer):
    """Fault: the composite counter advances once per group that steps, not once per call.
    Breaks ITER-1."""

    BREAKS, SELECT = "ITER-1", "counter_advances_once_per_step"

    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        pairs = list(grads_and_vars)
        result = super().apply_gradients(pairs, name, experimental_aggregate_gradients)
        stepped = {_owner_index(self, v) for g, v in pairs if g is not None}
        if len(stepped) > 1:
            self.iterations.assign_add(len(stepped) - 1)
        return result


class BorrowsFirstCounter(CompositeOptimizer):
    """Fault (TFRS's behaviour): `iterations` is optimizers[0]'s counter, so it counts only the steps
    in which entry 0's group had a gradient. Breaks ITER-1."""

    BREAKS, SELECT = "ITER-1", "counter_advances_once_per_step"

    @property
    def iterations(self):
        return self.optimizers[0].iterations

    @iterations.setter
    def iterations(self, value):
        self.optimizers[0].iterations = value

    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        pairs = list(grads_and_vars)
        result = super().apply_gradients(pairs, name, experimental_aggregate_gradients)
        if any(g is not None for g, _ in pairs):
            self.optimizers[0].iterations.assign_add(-1)  # Undo the composite's own increment.
        return result


class StepsAbsentGroups(CompositeOptimizer):
    """Fault: a sub-optimizer whose group got no gradient is still stepped, with zero gradients
    (its counter advances, momentum decays). Breaks ROUTE-7."""

    BREAKS, SELECT = "ROUTE-7", "absent_group_is_not_stepped"

    def _checked_pairs(self, grads_and_vars, var_lists):
        pairs, owners = super()._checked_pairs(grads_and_vars, var_lists)
        if not pairs:
            return pairs, owners
        present = {owners[id(v)] for _, v in pairs}
        zeros = [(tf.zeros_like(v), v) for index, var_list in enumerate(var_lists)
                 if index not in present for v in var_list]
        return pairs + zeros, owners


# --------------------------------------------------------------------------- weight order


class ReversedSubWeights(CompositeOptimizer):
    """Fault: `weights` lists the sub-optimizers' weights in reverse entry order. Breaks WEIGHT-1."""

    BREAKS, SELECT = "WEIGHT-1", "state_is_counter_then_each_sub_state_in_entry_order"

    @property
    def weights(self):
        weights = [self.iterations]
        for optimizer in reversed(self.optimizers):
            weights.extend(optimizer.weights)
        return weights


class CounterLast(CompositeOptimizer):
    """Fault: the composite counter comes last in `weights`, not first. Breaks WEIGHT-1."""

    BREAKS, SELECT = "WEIGHT-1", "state_is_counter_then_each_sub_state_in_entry_order"

    @property
    def weights(self):
        weights = []
        for optimizer in self.optimizers:
            weights.extend(optimizer.weights)
        return weights + [self.iterations]


# --------------------------------------------------------------------------- config round-trips


class ConfigForgetsClipping(CompositeOptimizer):
    """Fault: `get_config` leaves out the composite's clip settings, so a rebuilt optimizer does not
    clip. Breaks CONF-4."""

    BREAKS, SELECT = "CONF-4", "from_config_rebuilds_an_identical_optimizer"

    def get_config(self):
        config = super().get_config()
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            config.pop(key, None)
        return config


class ConfigDropsLearningRate(CompositeOptimizer):
    """Fault: `get_config` drops each sub-optimizer's learning_rate, so a rebuilt optimizer uses the
    default. Breaks CONF-4."""

    BREAKS, SELECT = "CONF-4", "from_config_rebuilds_an_identical_optimizer"

    def get_config(self):
        config = super().get_config()
        for sub in config["optimizers"]:
            sub["config"].pop("learning_rate", None)
        return config


# --------------------------------------------------------------------------- clipping


class GlobalClipnormPerGroup(CompositeOptimizer):
    """Fault: global_clipnorm's norm is taken over each group separately, not over all groups.
    Breaks CLIP-2."""

    BREAKS, SELECT = "CLIP-2", "global_clipnorm_spans_all_groups"

    def _transform_gradients(self, grads_and_vars):
        var_lists = self._var_lists()  # Held while the id map is used.
        owners, groups = self._owners(var_lists), {}
        for g, v in grads_and_vars:
            groups.setdefault(owners.get(id(v)), []).append((g, v))
        out = []
        for pairs in groups.values():
            out.extend(super()._transform_gradients(pairs))
        return out


class ClipvalueAfterNorm(CompositeOptimizer):
    """Fault: clipnorm / global_clipnorm are applied before clipvalue (the spec's order is clipvalue,
    then clipnorm, then global_clipnorm). Breaks CLIP-1."""

    BREAKS, SELECT = "CLIP-1", "composite_clipping_matches_an_independent_computation"

    def _transform_gradients(self, grads_and_vars):
        if self._clipnorm is not None:
            grads_and_vars = self._clipnorm_fn(grads_and_vars)
        if self._global_clipnorm is not None:
            grads_and_vars = self._global_clipnorm_fn(grads_and_vars)
        if self._clipvalue is not None:
            grads_and_vars = self._clipvalue_fn(grads_and_vars)
        return grads_and_vars


def _scaled(grad, factor):
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(grad.values * factor, grad.indices, grad.dense_shape)
    return grad * factor


class DriftsByPointOnePercent(CompositeOptimizer):
    """Fault: every gradient is scaled by 1.001 (a 0.1% drift) on its way through the clipping stage.
    Breaks CLIP-1 (and so ROUTE-9)."""

    BREAKS, SELECT = "CLIP-1", "composite_clipping_matches_an_independent_computation"

    def _transform_gradients(self, grads_and_vars):
        return [(_scaled(g, 1.001), v) for g, v in super()._transform_gradients(grads_and_vars)]


# --------------------------------------------------------------------------- errors and atomicity


def _split_unlisted(optimizer, pairs):
    var_lists = optimizer._var_lists()  # Held while the id map is used.
    owners = optimizer._owners(var_lists)
    listed = [(g, v) for g, v in pairs if g is None or id(v) in owners]
    unlisted = [v for g, v in pairs if g is not None and id(v) not in owners]
    return listed, unlisted


class ValidatesAfterApplying(CompositeOptimizer):
    """Fault: applies the listed groups first and only then raises for an unlisted variable, so the
    failing call half-applies. Breaks ATOM-1."""

    BREAKS, SELECT = "ATOM-1", "unlisted_variable_raises_names_it_and_changes_nothing"

    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        listed, unlisted = _split_unlisted(self, list(grads_and_vars))
        result = super().apply_gradients(listed, name, experimental_aggregate_gradients)
        if unlisted:
            raise ValueError(f"Variable {unlisted[0].name!r} has a gradient but is listed by no entry.")
        return result


class AcceptsUnlisted(CompositeOptimizer):
    """Fault: a gradient for a variable no entry lists is silently ignored instead of raising.
    Breaks ROUTE-4."""

    BREAKS, SELECT = "ROUTE-4", "unlisted_variable_raises_names_it_and_changes_nothing"

    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        listed, _ = _split_unlisted(self, list(grads_and_vars))
        return super().apply_gradients(listed, name, experimental_aggregate_gradients)


# --------------------------------------------------------------------------- refusals: type and message (tf_keras)


class UnlistedRefusedWithRuntimeError(CompositeOptimizer):
    """Fault: a gradient for a variable no entry lists is refused, but with RuntimeError where the spec
    says ValueError (code that catches ValueError, as for tf_keras' own optimizers, misses it).
    Breaks ROUTE-4."""

    BREAKS, SELECT = "ROUTE-4", "unlisted_variable_raises_names_it_and_changes_nothing"

    def _checked_pairs(self, grads_and_vars, var_lists):
        try:
            return super()._checked_pairs(grads_and_vars, var_lists)
        except ValueError as exc:
            if "listed by no entry" not in str(exc):
                raise
            raise RuntimeError(str(exc)) from None


class EmptyListRefusedWithTypeError(CompositeOptimizer):
    """Fault: an empty entry list is refused with TypeError where the spec says ValueError. Breaks CTOR-2."""

    BREAKS, SELECT = "CTOR-2", "empty_entry_list_is_refused"

    def __init__(self, optimizers_and_vars, name="CompositeOptimizer", **kwargs):
        if isinstance(optimizers_and_vars, (list, tuple)) and not optimizers_and_vars:
            raise TypeError("CompositeOptimizer needs (optimizer, callable) pairs.")
        super().__init__(optimizers_and_vars, name=name, **kwargs)


def _owners_by_listed_object(var_lists, overlap: str) -> dict:
    """id of each object a callable lists -> its entry, shards never looked into; a second listing
    is a ValueError naming the variable and `overlap`, but no entry index."""
    owners = {}
    for index, var_list in enumerate(var_lists):
        for var in var_list:
            if owners.setdefault(id(var), index) != index:
                raise ValueError(f"Variable {var.name!r} {overlap}.")
    return owners


class OverlapMessageWithoutIndices(CompositeOptimizer):
    """Fault (TFRS's message): a variable listed by two entries is refused with ValueError naming the
    variable but not the two entry indices. Breaks ROUTE-4."""

    BREAKS, SELECT = "ROUTE-4", "doubly_listed_variable_is_refused"

    @staticmethod
    def _owners(var_lists):
        return _owners_by_listed_object(var_lists, "is handled by two optimizers")


class SetWeightsMessageWithoutPosition(CompositeOptimizer):
    """Fault (tf_keras' own message): set_weights refuses a wrongly shaped value, writing nothing, but
    its ValueError gives the two shapes, not the value's position. Breaks WEIGHT-2."""

    BREAKS, SELECT = "WEIGHT-2", "set_state_refuses_a_mismatch_and_writes_nothing"

    def set_weights(self, weights):
        weights = list(weights)
        for param, value in zip(self.weights, weights):
            if tuple(param.shape) != tuple(np.shape(value)):
                raise ValueError(f"Optimizer weight shape {tuple(param.shape)} not compatible with provided "
                                 f"weight shape {tuple(np.shape(value))}.")
        super().set_weights(weights)


class AcceptsDoublyListed(CompositeOptimizer):
    """Fault: a variable listed by two entries is accepted; the first entry listing it trains it.
    Breaks ROUTE-4."""

    BREAKS, SELECT = "ROUTE-4", "doubly_listed_variable_is_refused"

    @staticmethod
    def _owners(var_lists):
        owners = {}
        for index, var_list in enumerate(var_lists):
            for var in var_list:
                owners.setdefault(id(var), index)
        return owners


class SnapshotBugAdapter(TfKerasAdapter):
    """Not an implementation but an adapter with a bug: its instances' `state()` raises AttributeError
    (the adapter's own code, outside any implementation call), over AcceptsDoublyListed. A refusal
    check that takes that AttributeError for the implementation's refusal passes ROUTE-4 for an
    implementation that accepts a doubly listed variable; the suite must report an error instead."""

    def __init__(self):
        super().__init__(AcceptsDoublyListed, name="snapshot-bug")

    def composite(self, spec, variables):
        instance = super().composite(spec, variables)
        instance.state = lambda: instance.no_such_attribute  # The adapter's own AttributeError.
        return instance


# --------------------------------------------------------------------------- structure the suite must not assume


class DefaultOptimizerForUnlisted(CompositeOptimizer):
    """Fault: a variable no entry lists is trained by a default SGD, which `optimizers` lists after the
    entries' sub-optimizers, instead of being refused. Breaks ROUTE-4 and nothing else: the entries'
    counters, state and config are the reference's, so every check that reads them per entry passes."""

    BREAKS, SELECT = "ROUTE-4", "unlisted_variable_raises_names_it_and_changes_nothing"

    def __init__(self, optimizers_and_vars, name="CompositeOptimizer", **kwargs):
        super().__init__(optimizers_and_vars, name=name, **kwargs)
        self._default_optimizer = tf_keras.optimizers.legacy.SGD(0.01)

    @property
    def optimizers(self):
        return super().optimizers + [self._default_optimizer]

    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        pairs = list(grads_and_vars)
        var_lists = self._var_lists()  # Held while the id map is used.
        owners = self._owners(var_lists)
        unlisted = [(g, v) for g, v in pairs if g is not None and id(v) not in owners]
        if unlisted:
            self._default_optimizer.apply_gradients(unlisted)
        listed = [(g, v) for g, v in pairs if g is None or id(v) in owners]
        return super().apply_gradients(listed, name, experimental_aggregate_gradients)

    def get_config(self):
        config = super().get_config()
        config["optimizers"] = config["optimizers"][:len(self._optimizers_and_vars)]  # The entries' only.
        return config


class ReadsVarListsOnce(CompositeOptimizer):
    """Fault: calls the var-list callables once, at the first step, and routes by that result ever
    after: a variable listed later is refused as unlisted, one moved to another entry keeps its old
    sub-optimizer. Breaks ROUTE-1."""

    BREAKS, SELECT = "ROUTE-1", "var_lists_are_read_every_step"

    def _var_lists(self):
        cached = self.__dict__.get("_first_var_lists")
        if cached is None:
            cached = super()._var_lists()
            object.__setattr__(self, "_first_var_lists", cached)  # Untracked: not optimizer state.
        return cached


# --------------------------------------------------------------------------- distribution


class ClipsBeforeSummingReplicas(CompositeOptimizer):
    """Fault: clips each replica's gradients before summing them across replicas, instead of
    clipping the sum. Identical on one device; on several, or on several worker processes (one
    replica each), global_clipnorm scales each replica's share separately. Breaks DIST-1 (caught
    only with --device replicas:N or workers:N)."""

    BREAKS, SELECT, DEVICES = "DIST-1", "replicas_clip_the_summed_gradients", ("replicas:2", "workers:2")
    PASSES_ON_CPU = "composite_clipping_matches_an_independent_computation"

    def _transform_unaggregated_gradients(self, grads_and_vars):
        return CompositeOptimizer._transform_gradients(self, grads_and_vars)

    def _transform_gradients(self, grads_and_vars):
        return grads_and_vars


class ClipsPerParameterServer(CompositeOptimizer):
    """Fault: the composite clips the gradients of each device's variables separately (as if each
    parameter server clipped its own, saving a norm across servers). In one process every variable
    is on one device, so it is correct there; over two parameter servers global_clipnorm takes each
    server's norm. Breaks CLIP-1 (caught only with --device ps:W)."""

    BREAKS, SELECT, DEVICES = "CLIP-1", "composite_clipping_matches_an_independent_computation", ("ps:2",)
    PASSES_ON_CPU = SELECT

    def _transform_gradients(self, grads_and_vars):
        by_device = {}
        for grad, var in grads_and_vars:
            by_device.setdefault(var.device, []).append((grad, var))
        clipped = []
        for pairs in by_device.values():
            clipped.extend(super()._transform_gradients(pairs))
        return clipped


class RoutesListedObjectsOnly(CompositeOptimizer):
    """Fault: routes by the identity of the objects the callables list, as TFRS does with `v.ref()`,
    never reading a partitioned variable as its shards: a table listed whole leaves its shards'
    gradients unrouted (and a gradient naming the table, its shards unlisted). Without partitioned
    variables it is the reference. Breaks DIST-2 (caught only with --device ps:W)."""

    BREAKS, SELECT, DEVICES = "DIST-2", "partitioned_variables_train_like_unpartitioned_ones", ("ps:2",)
    PASSES_ON_CPU = "steps_equal_sub_optimizers_alone"

    @staticmethod
    def _owners(var_lists):
        return _owners_by_listed_object(var_lists, "is listed by two entries")


class KillsWorkerOne(CompositeOptimizer):
    """Not a spec fault, so not in CANARIES: on --device workers:N, worker 1's process kills itself
    in its second step (as an out-of-memory kill would). The run must report the dead worker, by
    name, and leave no process behind (tests/conformance/test_workers.py)."""

    def apply_gradients(self, grads_and_vars, name=None, experimental_aggregate_gradients=True):
        follower = os.environ.get("CONFORMANCE_CLUSTER_FOLLOWER")
        if follower and '"index": 1' in follower and int(self.iterations.numpy()) == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().apply_gradients(grads_and_vars, name, experimental_aggregate_gradients)


CANARIES = (
    RoutesByName, DropsLastGroup, NadamCrashesWhenGroupAbsent, DensifiesSparse,
    CountsEachGroup, BorrowsFirstCounter, StepsAbsentGroups,
    ReversedSubWeights, CounterLast,
    ConfigDropsLearningRate, ConfigForgetsClipping,
    GlobalClipnormPerGroup, ClipvalueAfterNorm, DriftsByPointOnePercent,
    ValidatesAfterApplying, AcceptsUnlisted,
    UnlistedRefusedWithRuntimeError, EmptyListRefusedWithTypeError, OverlapMessageWithoutIndices,
    SetWeightsMessageWithoutPosition, AcceptsDoublyListed, DefaultOptimizerForUnlisted, ReadsVarListsOnce,
    ClipsBeforeSummingReplicas, ClipsPerParameterServer, RoutesListedObjectsOnly,
)
