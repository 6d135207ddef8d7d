"""Distribution: N replicas (one process's devices, --device replicas:N, or N worker processes,
--device workers:N) behave like one device fed the summed gradients (SPEC DIST-1, ITER-4); on a
parameter-server cluster (--device ps:W) partitioned variables train like unpartitioned ones
(DIST-2) and asynchronous steps count once each (DIST-3)."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.protocol import Group, Sharding, SubOptimizer, parse_device
from conformance import checks
from conformance import strategies as cs
from conformance.oracle import sum_replicas
from conformance.plugin import not_applicable, unverified
from conformance.situations import STEP


def _replicated_run(impl, data, clip):
    """Every step on impl.replicas replicas, each with the step's structure and its own values,
    compared after each step with the oracle fed the replicas' summed gradients."""
    if impl.replicas < 2:
        not_applicable(f"the run is on {impl.device!r}, one replica; run with --device replicas:N or workers:N")
    case = data.draw(cs.cases(impl.caps, max_groups=3, max_steps=3, clip=clip), label="case")
    instance, oracle = checks.build(impl, case)
    for number, pairs in enumerate(case.steps, 1):
        per_replica = [pairs] + [
            tuple((i, g if g is None else (data.draw(cs.sparse_gradients(case.variables[i].value.shape))
                                          if hasattr(g, "indices") else
                                          data.draw(cs.gradient_values(case.variables[i].value.shape))))
                  for i, g in pairs)
            for _ in range(impl.replicas - 1)
        ]
        with checks.applicability():
            instance.step_replicas(per_replica)
        oracle.step(sum_replicas(per_replica))
        checks.assert_arrays_close(instance.variables(), oracle.variables(), impl.tolerance("recomputed"),
                                   f"variables after replicated step {number}")
        if not impl.allows("composite_counter"):  # ITER-1 already deviates on one device.
            unverified("ITER-4", "composite_counter")
        else:
            with checks.charged_to("ITER-4"):
                assert checks.composite_counter(instance) == number, (
                    f"composite counter {checks.composite_counter(instance)} after {number} replicated steps")


@pytest.mark.broad
@pytest.mark.requirement("DIST-1", "ITER-4")
@pytest.mark.needs("replicas")
@pytest.mark.uses(*STEP, "composite_counter")
@pytest.mark.relies_on("steps")
@given(data=st.data())
def test_replicas_behave_like_one_device_with_summed_gradients(impl, data):
    """DIST-1: sum across replicas once, then dispatch; ITER-4: one count per step, not N."""
    _replicated_run(impl, data, clip=None)


@pytest.mark.broad
@pytest.mark.requirement("DIST-1", "CLIP-1")
@pytest.mark.needs("replicas", "composite_clipping")
@pytest.mark.uses(*STEP, "composite_counter")
@pytest.mark.relies_on("steps", "composite_clipping")
@given(data=st.data())
def test_replicas_clip_the_summed_gradients(impl, data):
    """DIST-1: the composite clips the *sum* of the replicas' gradients, not each replica's share."""
    _replicated_run(impl, data, clip=cs.some_clip_settings())


def _on_parameter_servers(impl) -> None:
    """The ps:W checks need a parameter-server cluster, whatever the adapter could express."""
    if parse_device(impl.device).kind != "ps":
        not_applicable(f"the run is on {impl.device!r}, no parameter servers; run with --device ps:W")


def _partitionable(case) -> bool:
    """Some variable has 2 rows or more, so the cluster partitions it (adapters shard axis 0)."""
    return any(v.value.ndim >= 1 and v.value.shape[0] >= 2 for v in case.variables)


@pytest.mark.broad
@pytest.mark.requirement("DIST-2", "ROUTE-9", "CLIP-1")
@pytest.mark.needs("parameter_servers")
@pytest.mark.uses(*STEP, "composite_clipping", "sub_counters")
@pytest.mark.relies_on("steps")
@given(data=st.data())
def test_partitioned_variables_train_like_unpartitioned_ones(impl, data):
    """DIST-2: groups listing a partitioned variable or its shards, gradients naming its shards or the
    whole variable, composite clipping included: every step equals the unpartitioned oracle's."""
    _on_parameter_servers(impl)
    # Clipped first (hypothesis' simplest branch): a norm over shards is where sharding shows most.
    clip = st.one_of(cs.some_clip_settings(), cs.clip_settings(False)) if impl.caps.composite_clipping \
        else cs.clip_settings(False)
    case = data.draw(cs.cases(impl.caps, max_groups=3, max_steps=3, clip=clip).filter(_partitionable),
                     label="case")
    sharding = data.draw(st.builds(Sharding, st.sampled_from(["variable", "shards"]),
                                   st.sampled_from(["shards", "variable"])), label="sharding")
    checks.run_case(impl, dataclasses.replace(case, spec=dataclasses.replace(case.spec, sharding=sharding)))


def _commuting(group: Group, learning_rate: float) -> Group:
    """The group's variables under plain SGD at a constant rate: its updates commute."""
    return Group(SubOptimizer("sgd", learning_rate, {"momentum": 0.0, "nesterov": False}), group.variables)


@pytest.mark.requirement("DIST-3", "ITER-1", "ITER-3")
@pytest.mark.needs("parameter_servers")
@pytest.mark.uses(*STEP, "composite_counter", "sub_counters")
@given(data=st.data())
def test_asynchronous_steps_count_once_each(impl, data):
    """DIST-3: k steps scheduled on the workers at once, then joined: the composite counter is k,
    each sub-optimizer's counts the steps its group took part in (ITER-3), and the variables equal
    the k steps applied one at a time (their updates commute here: plain SGD, constant rates,
    sub-optimizers' own clipping; composite clipping is CLIP-1's and DIST-2's)."""
    _on_parameter_servers(impl)
    case = data.draw(cs.cases(impl.caps, max_groups=3, min_steps=2, max_steps=5), label="case")
    rates = data.draw(st.lists(st.floats(0.01, 0.5), min_size=len(case.spec.groups),
                               max_size=len(case.spec.groups)), label="learning rates")
    groups = tuple(_commuting(g, rate) for g, rate in zip(case.spec.groups, rates))
    case = dataclasses.replace(case, spec=dataclasses.replace(case.spec, groups=groups))
    instance, oracle = checks.build(impl, case)
    with checks.applicability():
        instance.step_async(case.steps)
    for pairs in case.steps:
        oracle.step(pairs)
    if not impl.allows("composite_counter"):  # ITER-1 already deviates on one worker.
        unverified("DIST-3", "composite_counter")
        unverified("ITER-1", "composite_counter")
    else:
        assert checks.composite_counter(instance) == len(case.steps), (
            f"composite counter {checks.composite_counter(instance)} after {len(case.steps)} asynchronous steps")
    if not impl.allows("sub_counters"):  # ITER-3 already deviates on one worker.
        unverified("ITER-3", "sub_counters")
    else:
        assert checks.sub_counters(instance) == oracle.sub_iterations(), (
            f"sub-optimizer counters {checks.sub_counters(instance)}, expected {oracle.sub_iterations()} "
            "(each counts the steps its group took part in)")
    checks.assert_arrays_close(instance.variables(), oracle.variables(), impl.tolerance("recomputed"),
                               f"variables after {len(case.steps)} asynchronous steps")
