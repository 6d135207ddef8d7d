"""What a composite optimizer costs over calling its sub-optimizers directly.

Each case times one optimizer step over `n_vars` variables of shape [8] split
round-robin (variable i -> group i % n_groups) into `n_groups` groups. Even
groups train with SGD, odd groups with SGD + momentum (a slot variable), so
every update is one small op and the per-variable dispatch is what is measured.

Implementations (the `impl` parameter):

    direct         the tf_keras legacy sub-optimizers, each called on its own group
                   (with global_clipnorm: tf.clip_by_global_norm over all gradients first)
    reference      reference.CompositeOptimizer over those sub-optimizers
    tfrs           tensorflow_recommenders' CompositeOptimizer over them
    keras3_direct  Keras 3 SGD sub-optimizers (TensorFlow backend), each on its group
    keras3_multi   keras.optimizers.MultiOptimizer over the Keras 3 sub-optimizers
    direct_again   `direct` again, built separately (no-clip cases only): an A/A control
                   whose ratio to `direct` should be 1.0 within its interval

Modes: `eager` calls `apply_gradients` / `apply` from Python; `function` calls a
`tf.function` traced once in setup (after one eager step has created every slot, so
it traces once); only steady-state calls are timed, and the trace count is checked
afterwards.

Paired rounds. A shared 2-core machine's load drifts over seconds, so a ratio of two
benchmarks taken a minute apart is mostly drift. Every round of a test therefore runs the
step and its baselines (`reference` for `direct`; `direct` and `tfrs` for `reference`;
`keras3_direct` for `keras3_multi`; `direct` for the others) once each, in a random order,
each timed by the same code in the same loop, so neither drift nor position favours a side.
pytest-benchmark times the whole round; the step's own times are in `extra_info`, and
`extra_info["paired"]` holds the ratios.

Instances. Identically built steps differ by a few percent and keep that difference, so a
case builds COPIES instances of every implementation after one spare, untimed build: copy c
of each in block c, side by side, odd blocks in reverse order. Round r runs copy r % COPIES
of the step and of each baseline; a ratio is the geometric mean of the per-copy-pair ratios
of mean CPU time, with a 95% t-interval over the pairs (`ci95_cpu_mean`). `direct_again`
against `direct` under the same protocol checks that interval: it should hold 1.0.

Each case also records the process CPU time of every timed call (`cpu_*`: other
processes inflate wall time far more than CPU time), the part of it spent in Python's
cyclic garbage collector (`gc_mean_s`: eager steps that allocate many objects pay for
full collections of a heap that TensorFlow makes large) and, in `function` mode, the op
count of the traced graph by op type (`graph_ops`): the steady-state work, free of
timing noise. Rounds are planned from one untimed call so that a case takes about
`BUDGET_S[mode]` (at least `MIN_ROUNDS[mode]` rounds).

Run (about 35 min on an idle 2-core machine, more under load):

    pytest -o addopts="" tests/benchmarks --benchmark-json=bench.json
    python -m reports.benchmarks bench.json

`-k "not n4096"` skips the slowest sizes for a quick look.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import random
import time
from typing import Any, Callable, Optional

# TFRS builds on tf.keras, which must be tf_keras (Keras 2); MultiOptimizer is Keras 3 on TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
import keras  # noqa: E402
from tensorflow_recommenders.experimental.optimizers import CompositeOptimizer as TfrsCompositeOptimizer  # noqa: E402

from reference import CompositeOptimizer  # noqa: E402

if not issubclass(TfrsCompositeOptimizer, tf_keras.optimizers.legacy.Optimizer):
    raise RuntimeError("TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set; TFRS needs tf_keras.")
if keras.backend.backend() != "tensorflow":
    raise RuntimeError(f"Keras 3 runs on {keras.backend.backend()!r}; these benchmarks need the TensorFlow backend.")

WIDTH = 8  # Each variable is [WIDTH] floats: small, so dispatch dominates the math.
CLIP_NORM = 1.0  # Below the gradients' global norm (about sqrt(8 * n_vars)), so it always clips.
LEARNING_RATE = 1e-3
# Seconds of rounds (baselines included) per case, and the fewest rounds, by mode. Eager
# cases run longer: a full GC collection comes every few (4096 variables) to few dozen
# (512) steps, and an average over too few steps would miss or overweight it.
BUDGET_S = {"function": 2.0, "eager": 3.0}
MIN_ROUNDS = {"function": 8, "eager": 20}
MAX_ROUNDS = 1000
SLOW_ROUND_S, SLOW_MIN_ROUNDS = 5.0, 8  # Keras 3's eager 4096-variable rounds take several seconds.

N_VARS = (2, 64, 512, 4096)
N_GROUPS = (2, 8)
# Eager first: tracing a step leaves its graph reachable inside TensorFlow / Keras (about
# 25k-35k GC-tracked objects per 512-variable trace, measured), so after the function cases
# the process holds millions of objects, which makes full GC collections rare and would
# hide what an eager step's allocations cost in an ordinary process.
MODES = ("eager", "function")
IMPLS = ("direct", "reference", "tfrs", "keras3_direct", "keras3_multi", "direct_again")
CLIPS = (None, CLIP_NORM)


def _not_applicable(impl: str, n_vars: int, n_groups: int, clip) -> str | None:
    """Why a case is not measured, or None."""
    if n_groups > n_vars:
        return f"{n_groups} non-empty groups need at least {n_groups} variables; there are {n_vars}."
    if clip is None:
        return None
    if impl == "direct_again":
        return "the A/A control runs in the no-clip cases only, to keep the run short."
    if impl == "tfrs":
        return "TFRS's CompositeOptimizer(optimizers_and_vars, name) takes no clip argument."
    if impl == "keras3_multi":
        return (
            "MultiOptimizer(optimizer_map, loss_scale_factor, name) takes no global_clipnorm, and its "
            "apply() replaces the base Optimizer.apply that clips, so there is no composite-wide clipping."
        )
    if impl == "keras3_direct":
        return "keras3_direct is only the baseline of keras3_multi, which cannot clip."
    return None


def _cases():
    # A case's tests run back to back: the first builds the case's instances, the rest reuse them.
    for mode in MODES:
        for n_vars in N_VARS:
            for n_groups in N_GROUPS:
                for clip in CLIPS:
                    for impl in IMPLS:
                        case_id = f"{mode}-n{n_vars}-g{n_groups}-{'clip' if clip else 'noclip'}-{impl}"
                        reason = _not_applicable(impl, n_vars, n_groups, clip)
                        marks = [pytest.mark.skip(reason=reason)] if reason else []
                        yield pytest.param(mode, n_vars, n_groups, clip, impl, id=case_id, marks=marks)


# ------------------------------------------------------------------ setups


def _gradients(n_vars: int) -> tf.Tensor:
    """All gradients as one [n_vars, WIDTH] tensor: a tf.function takes it as one argument."""
    return tf.random.stateless_normal([n_vars, WIDTH], seed=[7, n_vars])


def _legacy_sub_optimizers(n_groups: int) -> list:
    legacy = tf_keras.optimizers.legacy
    return [
        legacy.SGD(LEARNING_RATE) if k % 2 == 0 else legacy.SGD(LEARNING_RATE, momentum=0.9)
        for k in range(n_groups)
    ]


def _keras3_sub_optimizers(n_groups: int) -> list:
    return [
        keras.optimizers.SGD(LEARNING_RATE) if k % 2 == 0 else keras.optimizers.SGD(LEARNING_RATE, momentum=0.9)
        for k in range(n_groups)
    ]


def _var_list(group: list):
    def var_list():
        return group  # The same list every call, as a model property would give.

    return var_list


def _build(impl: str, n_vars: int, n_groups: int, clip):
    """`(apply, variables)`: `apply(list_of_gradients)` runs one step of `impl`."""
    if impl.startswith("keras3"):
        variables = [keras.Variable(np.zeros([WIDTH], np.float32), name=f"w{i}") for i in range(n_vars)]
        subs = _keras3_sub_optimizers(n_groups)
        if impl == "keras3_direct":
            groups = [variables[k::n_groups] for k in range(n_groups)]
            for sub, group in zip(subs, groups):
                sub.build(group)

            def apply(grads):
                for k, sub in enumerate(subs):
                    sub.apply(grads[k::n_groups], groups[k])

        else:
            owner = {v.path: subs[i % n_groups] for i, v in enumerate(variables)}
            assert len(owner) == n_vars, "variable paths must be unique for the optimizer map"
            multi = keras.optimizers.MultiOptimizer(lambda v: owner[v.path])
            multi.build(variables)

            def apply(grads):
                multi.apply(grads, variables)

        return apply, variables

    variables = [tf.Variable(tf.zeros([WIDTH]), name=f"w{i}") for i in range(n_vars)]
    groups = [variables[k::n_groups] for k in range(n_groups)]
    subs = _legacy_sub_optimizers(n_groups)
    if impl in ("direct", "direct_again"):

        def apply(grads):
            if clip is not None:
                grads, _ = tf.clip_by_global_norm(grads, clip)
            for k, sub in enumerate(subs):
                sub.apply_gradients(zip(grads[k::n_groups], groups[k]))

        return apply, variables

    entries = [(sub, _var_list(group)) for sub, group in zip(subs, groups)]
    if impl == "reference":
        composite = CompositeOptimizer(entries, **({} if clip is None else {"global_clipnorm": clip}))
    elif impl == "tfrs":
        composite = TfrsCompositeOptimizer(entries)
    else:
        raise ValueError(f"unknown impl {impl!r}")

    def apply(grads):
        composite.apply_gradients(zip(grads, variables))

    return apply, variables


def _values(variables) -> np.ndarray:
    return np.stack([np.asarray(v.numpy()) for v in variables])


def _plan(mode: str, seconds_per_round: float) -> int:
    """Rounds so that a case takes about BUDGET_S[mode]."""
    floor = SLOW_MIN_ROUNDS if seconds_per_round > SLOW_ROUND_S else MIN_ROUNDS[mode]
    return max(floor, min(MAX_ROUNDS, int(BUDGET_S[mode] / max(seconds_per_round, 1e-9))))


def _graph_ops(traced, argument) -> dict:
    """Op type -> count in the traced graph (a cache hit: this does not trace)."""
    counts: dict = {}
    for op in traced.get_concrete_function(argument).graph.get_operations():
        counts[op.type] = counts.get(op.type, 0) + 1
    return dict(sorted(counts.items()))


@dataclasses.dataclass
class Prepared:
    """One implementation's step, warmed up and checked, ready to time."""

    step: Callable[[], None]
    traced: Optional[Any]  # The tf.function, in function mode.
    traces: Optional[int]
    graph_ops: Optional[dict]
    first_call_s: float
    probe_s: float


def _prepare(mode: str, n_vars: int, n_groups: int, clip, impl: str) -> Prepared:
    # Setup allocates hundreds of thousands of graph objects; the cyclic GC would
    # rescan them all repeatedly and make tracing super-linear in n_vars.
    with _gc_paused():
        apply, variables = _build(impl, n_vars, n_groups, clip)
        all_grads = _gradients(n_vars)
        grads = tf.unstack(all_grads)
        traced = None
        if mode == "eager":

            def step():
                apply(grads)

        else:
            if not impl.startswith("keras3"):  # Keras 3's build() already made its slots.
                apply(grads)  # Eager: creates every slot, so the trace below creates no variable.
            # autograph=False: the steps are plain Python over Python lists; converting
            # them (and the libraries they call) would only slow tracing down.
            traced = tf.function(lambda g: apply(tf.unstack(g)), autograph=False)

            def step():
                traced(all_grads)

        before = _values(variables)
        started = time.perf_counter()
        step()  # Traces in function mode, creates slots in eager mode: never timed.
        first_call_s = time.perf_counter() - started
        changed = (_values(variables) != before).all(axis=1)
        assert changed.all(), f"{impl} left {int((~changed).sum())} of {n_vars} variables unchanged"
        traces = traced.experimental_get_tracing_count() if traced is not None else None
        graph_ops = _graph_ops(traced, all_grads) if traced is not None else None
        if mode == "eager" and first_call_s > 0.2:
            probe_s = first_call_s  # Slow eager steps: one untimed call is warm-up enough.
        else:
            started = time.perf_counter()
            step()
            probe_s = time.perf_counter() - started
    return Prepared(step, traced, traces, graph_ops, first_call_s, probe_s)


# Instances. Two identically built steps differ by a few percent in steady-state speed, and
# the difference stays with the instance (measured: 512 variables in tf.function, identical
# `direct` instances 0.97-1.04 of their mean over 100 interleaved rounds; the first one built
# in a process slowest; at 512 variables with clipping, the same build position made the same
# copy 10% slower in two runs). A ratio of two single instances is therefore mostly that
# luck. Each case instead builds COPIES instances of every implementation after one spare
# build, copy c of each in block c, so a pair of copies built side by side shares the luck
# of its position; a ratio is the geometric mean over copy pairs, with a confidence interval
# from their spread.
COPIES = 4
# The comparisons measured within a round (numerator -> denominators). `reference` also pairs
# with `tfrs`, so reference/tfrs has its own paired rounds and interval.
PAIRED_WITH = {
    # `direct` too runs beside another step, so that its own times (the scaling table) come
    # from the same interleaved rounds as everyone else's: alone, it would run cache-warm.
    "direct": ("reference",),
    "reference": ("direct", "tfrs"),
    "tfrs": ("direct",),
    "keras3_direct": ("direct",),
    "keras3_multi": ("keras3_direct",),  # Against direct: via keras3_direct's own pairing.
    "direct_again": ("direct",),
}
# Two-sided 95% quantiles of Student's t by degrees of freedom (COPIES - 1).
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


@dataclasses.dataclass
class Pool:
    """Every applicable implementation of one case, COPIES instances each, warmed up."""

    case: tuple
    copies: dict  # impl -> [Prepared] * COPIES
    build_order: list  # [(impl, copy index)], as built
    spare: Prepared  # Built first and never timed: the first build of a size runs slow.
    build_s: float


_pool: list = []  # The current case's Pool (one at a time: instances hold graphs and variables).


@contextlib.contextmanager
def _gc_paused():
    """No cyclic GC inside; one full collection after (not nested: the outermost one collects)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect()


def _case_pool(case: tuple) -> Pool:
    if _pool and _pool[0].case == case:
        return _pool[0]
    _pool.clear()  # A new case: drop the previous case's instances first.
    with _gc_paused():  # One collection for the whole pool (each takes seconds on a large heap).
        return _build_pool(case)


def _build_pool(case: tuple) -> Pool:
    started = time.perf_counter()
    impls = [impl for impl in IMPLS if _not_applicable(impl, *case[1:]) is None]
    # Copy c of every implementation is built in block c, next to the copies it is paired
    # with; odd blocks reverse the order, so of any two implementations each is built first
    # in half the blocks (a step built later in a process tends to run faster).
    order = [(impl, copy) for copy in range(COPIES) for impl in (impls if copy % 2 == 0 else impls[::-1])]
    spare = _prepare(*case, "direct")
    copies: dict = {impl: [None] * COPIES for impl in impls}
    for impl, copy in order:
        copies[impl][copy] = _prepare(*case, impl)
    _pool.append(Pool(case, copies, order, spare, time.perf_counter() - started))
    return _pool[0]


def _interval(ratios: np.ndarray) -> tuple:
    """Geometric mean of per-copy ratios and its 95% t-interval (over copies, on the log scale)."""
    logs = np.log(ratios)
    centre = float(np.exp(logs.mean()))
    if len(logs) < 2:
        return centre, None
    half = T_975[len(logs) - 1] * logs.std(ddof=1) / np.sqrt(len(logs))
    return centre, [float(np.exp(logs.mean() - half)), float(np.exp(logs.mean() + half))]


class _GcClock:
    """Process CPU seconds spent in Python's cyclic garbage collector, and full collections, so far."""

    def __init__(self):
        self.total_s = 0.0
        self.full_collections = 0
        self._started = 0.0

    def __call__(self, phase, info):
        if phase == "start":
            self._started = time.process_time()
        else:
            self.total_s += time.process_time() - self._started
            self.full_collections += info["generation"] == 2


_gc_clock = _GcClock()


@pytest.fixture(scope="module", autouse=True)
def _warm_tensorflow():
    """Absorb the process's first-tf.function costs before any case is timed.

    The first traced step in a process runs about 10% slower than identical ones
    built after it, which would bias the first case.
    """
    _prepare("function", 2, 2, None, "direct").step()
    _prepare("eager", 2, 2, None, "direct").step()
    gc.callbacks.append(_gc_clock)
    yield
    gc.callbacks.remove(_gc_clock)
    _pool.clear()


# ------------------------------------------------------------------ the benchmark


@pytest.mark.parametrize("mode,n_vars,n_groups,clip,impl", list(_cases()))
def test_step(benchmark, mode, n_vars, n_groups, clip, impl):
    case = (mode, n_vars, n_groups, clip)
    pool = _case_pool(case)  # Built by the case's first test; reused by the rest.
    copies = pool.copies[impl]
    bases = {name: pool.copies[name] for name in PAIRED_WITH.get(impl, ()) if name in pool.copies}
    # Positions: each round runs the step and its baselines once each, in a random order, all
    # timed the same way from the same loop. (Timing only the step through pytest-benchmark's
    # runner and its baselines in setup/teardown biased the step's side by about 1%:
    # measured as direct_again/direct 1.010-1.015 over three runs.)
    rng = random.Random(repr((case, impl)))
    # Per round: the copy index, and (wall, CPU, CPU in the cyclic GC, full collections) of each step.
    records: list = []

    def _time(step) -> tuple:
        full_started, gc_started = _gc_clock.full_collections, _gc_clock.total_s
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        step()
        wall = time.perf_counter() - wall_started
        cpu = time.process_time() - cpu_started
        return (wall, cpu, _gc_clock.total_s - gc_started, _gc_clock.full_collections - full_started)

    steps = {impl: copies, **bases}

    def one_round():  # What pytest-benchmark times: the step and its baselines.
        copy = len(records) % COPIES
        order = list(steps)
        rng.shuffle(order)
        record = {"copy": copy}
        for name in order:
            record[name] = _time(steps[name][copy].step)
        records.append(record)

    round_s = float(np.mean([c.probe_s for c in copies])) + sum(
        float(np.mean([c.probe_s for c in base])) for base in bases.values()
    )
    rounds = COPIES * -(-_plan(mode, round_s) // COPIES)  # Every copy the same number of rounds.
    tracked_objects = len(gc.get_objects()) if mode == "eager" else None  # What a full collection scans.
    warmup_rounds = COPIES if round_s < 0.05 else 0  # Slow cases are warm from the untimed calls.
    benchmark.group = f"{mode} n_vars={n_vars} n_groups={n_groups} clip={clip}"
    benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=warmup_rounds)
    for c in copies:
        if c.traced is not None:
            assert c.traced.experimental_get_tracing_count() == c.traces, "retraced while timed"

    records = records[-rounds:]  # Without the warm-up rounds.
    copy_of = np.array([r["copy"] for r in records])
    wall, cpu, in_gc, full = np.array([r[impl] for r in records]).T
    paired = {}
    for name in bases:
        base_wall, base_cpu, base_gc, base_full = np.array([r[name] for r in records]).T

        def per_copy(step_times, base_times):  # Per copy pair: the ratio of their mean times.
            return np.array([step_times[copy_of == c].sum() / base_times[copy_of == c].sum() for c in range(COPIES)])

        per_copy_cpu = per_copy(cpu, base_cpu)
        ratio_cpu, ci_cpu = _interval(per_copy_cpu)
        ratio_nogc, ci_nogc = _interval(per_copy(cpu - in_gc, base_cpu - base_gc))
        ratio_wall, ci_wall = _interval(per_copy(wall, base_wall))
        paired[name] = {
            # Per copy pair, the ratio of mean step costs (occasional full GC collections
            # included); over copy pairs, their geometric mean and its 95% interval.
            "ratio_cpu_mean": ratio_cpu,
            "ci95_cpu_mean": ci_cpu,
            "per_copy_cpu_mean": per_copy_cpu.tolist(),
            # The same outside Python's cyclic garbage collector. A full collection costs what
            # the whole process holds (here every instance of the case), and which step it lands
            # in is a lottery: at 4096 variables eagerly, one in a copy's few rounds moved its
            # ratio by 2x.
            "ratio_cpu_nogc_mean": ratio_nogc,
            "ci95_cpu_nogc_mean": ci_nogc,
            "ratio_wall_mean": ratio_wall,
            "ci95_wall_mean": ci_wall,
            # Median of per-round ratios: the typical step.
            "ratio_cpu_median": float(np.median(cpu / base_cpu)),
            "ratio_wall_median": float(np.median(wall / base_wall)),
            "cpu_mean_s": float(base_cpu.mean()),
            "cpu_median_s": float(np.median(base_cpu)),
            "gc_mean_s": float(base_gc.mean()),
            "gc_full_per_step": float(base_full.mean()),
            "wall_median_s": float(np.median(base_wall)),
            "wall_min_s": float(base_wall.min()),
        }
    benchmark.extra_info.update(
        impl=impl,
        mode=mode,
        n_vars=n_vars,
        n_groups=n_groups,
        global_clipnorm=clip,
        width=WIDTH,
        # The step's own times (pytest-benchmark's statistics time whole rounds).
        wall_median_s=float(np.median(wall)),
        wall_min_s=float(wall.min()),
        wall_mean_s=float(wall.mean()),
        wall_stddev_s=float(wall.std(ddof=1)) if len(wall) > 1 else 0.0,
        wall_iqr_s=float(np.subtract(*np.percentile(wall, [75, 25]))),
        cpu_median_s=float(np.median(cpu)),
        cpu_min_s=float(cpu.min()),
        cpu_mean_s=float(cpu.mean()),
        gc_mean_s=float(in_gc.mean()),
        gc_full_per_step=float(full.mean()),
        gc_tracked_objects=tracked_objects,
        paired=paired,
        copies=COPIES,
        build_position=[pool.build_order.index((impl, c)) for c in range(COPIES)],
        first_call_s=round(float(np.mean([c.first_call_s for c in copies])), 4),
        pool_build_s=round(pool.build_s, 2),
        traces=copies[0].traces,
        graph_ops=copies[0].graph_ops,
    )
