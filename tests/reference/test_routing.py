"""ROUTE: which sub-optimizer sees which (gradient, variable) pair, and the central property."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from reference import CompositeOptimizer
from ref_helpers import (
    Rig, RecordingSGD, Sparse, adagrad, adam, assert_close, assert_matches_oracle, assert_same_state, legacy,
    momentum, named, sgd, tfrs_composite_class,
)

requirement = pytest.mark.requirement

A = np.array([1.0, 2.0], np.float32)
B = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)


@requirement("ROUTE-1")
def test_var_callables_are_called_every_step():
    """ROUTE-1: a variable appended to a group's list after construction is trained from then on."""
    first, late = tf.Variable(A), tf.Variable(A)
    group = [first]
    composite = CompositeOptimizer([(legacy.SGD(1.0), named("g", group))])
    composite.apply_gradients([(tf.ones(2), first)])
    with pytest.raises(ValueError, match="listed by no entry"):
        composite.apply_gradients([(tf.ones(2), late)])
    group.append(late)
    composite.apply_gradients([(tf.ones(2), late)])
    np.testing.assert_array_equal(late.numpy(), A - 1.0)
    np.testing.assert_array_equal(first.numpy(), A - 1.0)


@requirement("ROUTE-1")
def test_routing_is_by_identity_not_name():
    """ROUTE-1: two different variables with the same name route to their own entries."""
    x = tf.Variable(A, name="same")
    y = tf.Variable(A, name="same")
    assert x.name == y.name
    composite = CompositeOptimizer([(legacy.SGD(1.0), named("gx", [x])), (legacy.SGD(10.0), named("gy", [y]))])
    composite.apply_gradients([(tf.ones(2), x), (tf.ones(2), y)])
    np.testing.assert_array_equal(x.numpy(), A - 1.0)
    np.testing.assert_array_equal(y.numpy(), A - 10.0)
    # A third variable of that name, listed nowhere, is not mistaken for either.
    z = tf.Variable(A, name="same")
    with pytest.raises(ValueError, match="listed by no entry"):
        composite.apply_gradients([(tf.ones(2), z)])


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@requirement("ROUTE-2", "ROUTE-7")
def test_none_gradients_are_dropped_with_a_warning():
    """ROUTE-2: `None` gradients are dropped first, with tf_keras' warning naming the variable;
    a group whose only gradient is `None` is not called (ROUTE-7), and no `None` raises on its own."""
    rig = Rig([(adam(), [A, A]), (adam(), [B])])
    alone = rig.oracle()
    unlisted = tf.Variable(A, name="unlisted_var")
    capture = _Capture()
    logger = logging.getLogger("tensorflow")
    logger.addHandler(capture)
    try:
        pairs = rig.pairs([(0, A), (1, None), (2, None)]) + [(None, unlisted)]
        rig.composite.apply_gradients(pairs)
    finally:
        logger.removeHandler(capture)
    assert any("unlisted_var" in m for m in capture.messages), capture.messages
    alone.apply([(0, A)])
    assert_matches_oracle(rig, alone)
    assert rig.sub_optimizers[1]._iterations is None and not rig.sub_optimizers[1]._weights  # never called
    np.testing.assert_array_equal(rig.variables[1].numpy(), A)


@requirement("ROUTE-2", "ROUTE-7")
def test_tfrs_raises_on_all_none_group_after_updating_earlier_groups():
    """ROUTE-2 / ROUTE-7 TFRS note: a group with only `None` gradients raises "No gradients
    provided", after the groups before it have been updated."""
    rig = Rig([(sgd(1.0), [A]), (sgd(1.0), [A])], composite_cls=tfrs_composite_class())
    with pytest.raises(ValueError, match="No gradients provided"):
        rig.apply([(0, A), (1, None)])
    np.testing.assert_array_equal(rig.variables[0].numpy(), A - A)  # already updated


@requirement("ROUTE-3")
def test_all_none_is_value_error():
    """ROUTE-3: a non-empty call whose gradients are all `None` is a ValueError naming the variables."""
    rig = Rig([(sgd(), [A]), (sgd(), [B])])
    with pytest.raises(ValueError, match="No gradients provided") as info:
        rig.apply([(0, None), (1, None)])
    assert rig.variables[0].name in str(info.value)


@requirement("ROUTE-3")
@pytest.mark.parametrize("form", ["list", "tuple", "generator", "zip"])
def test_empty_call_is_a_no_op(form):
    """ROUTE-3: an empty `grads_and_vars` is no step: nothing changes, `iterations` does not advance."""
    rig = Rig([(adam(), [A]), (adam(), [B])])
    rig.apply([(0, A), (1, B)])
    before = rig.state()
    empty = {"list": [], "tuple": (), "generator": (x for x in []), "zip": zip([], [])}[form]
    rig.composite.apply_gradients(empty)
    assert_same_state(before, rig.state())
    assert rig.composite.iterations.numpy() == 1


@requirement("ROUTE-4")
def test_variable_in_two_entries_is_value_error_naming_it_and_both_indices():
    """ROUTE-4: a variable listed by entries 0 and 2 is a ValueError naming it and both indices."""
    shared = tf.Variable(A, name="shared_var")
    others = [tf.Variable(A), tf.Variable(A)]
    composite = CompositeOptimizer([(legacy.SGD(0.1), named("a", [shared])), (legacy.SGD(0.1), named("b", others[:1])),
                                    (legacy.SGD(0.1), named("c", [others[1], shared]))])
    with pytest.raises(ValueError) as info:
        composite.apply_gradients([(tf.ones(2), others[0])])  # even when `shared` gets no gradient
    message = str(info.value)
    assert "shared_var" in message and "optimizers_and_vars[0]" in message and "optimizers_and_vars[2]" in message


@requirement("ROUTE-4")
def test_gradient_for_unlisted_variable_is_value_error_naming_it():
    """ROUTE-4: a gradient for a variable no entry lists is a ValueError naming the variable."""
    rig = Rig([(sgd(), [A])])
    stray = tf.Variable(A, name="stray_var")
    with pytest.raises(ValueError, match="stray_var"):
        rig.composite.apply_gradients(rig.pairs([(0, A)]) + [(tf.ones(2), stray)])


@requirement("ROUTE-5")
def test_each_sub_optimizer_gets_exactly_its_pairs_in_call_order():
    """ROUTE-5: each sub-optimizer is called once with its own group's pairs, in `grads_and_vars` order."""
    v = [tf.Variable(A) for _ in range(5)]
    spies = [RecordingSGD(0.1), RecordingSGD(0.1)]
    composite = CompositeOptimizer([(spies[0], named("even", [v[0], v[2], v[4]])),
                                    (spies[1], named("odd", [v[1], v[3]]))])
    order = [4, 1, 0, 3, 2]
    composite.apply_gradients([(tf.ones(2), v[i]) for i in order])
    assert spies[0].calls == [[(type(tf.ones(2)), v[i].ref()) for i in (4, 0, 2)]]
    assert spies[1].calls == [[(type(tf.ones(2)), v[i].ref()) for i in (1, 3)]]


@requirement("ROUTE-6")
@pytest.mark.parametrize("form", ["zip", "generator", "map", "list"])
def test_any_iterable_read_once(form):
    """ROUTE-6: `grads_and_vars` may be a zip, a generator, any iterable; it is read once."""
    rig = Rig([(adam(), [A]), (momentum(), [B])])
    alone = rig.oracle()
    grads = [tf.constant(A * 0.5), tf.constant(B)]
    variables = rig.variables
    reads = []

    def generate():
        reads.append(1)
        yield from zip(grads, variables)

    iterable = {
        "zip": lambda: zip(grads, variables),
        "generator": generate,
        "map": lambda: map(lambda gv: gv, zip(grads, variables)),
        "list": lambda: list(zip(grads, variables)),
    }[form]()
    rig.composite.apply_gradients(iterable)
    alone.apply([(0, A * 0.5), (1, B)])
    assert_matches_oracle(rig, alone)
    assert reads in ([], [1])


@requirement("ROUTE-7")
def test_absent_group_is_not_called_and_keeps_its_state():
    """ROUTE-7: a group that gets no gradient in a step is not called; its counter and slots stay."""
    spy = RecordingSGD(0.1, momentum=0.9)
    x, y = tf.Variable(A), tf.Variable(B)
    composite = CompositeOptimizer([(legacy.Adam(0.1), named("x", [x])), (spy, named("y", [y]))])
    composite.apply_gradients([(tf.ones(2), x), (tf.ones((3, 2)), y)])
    spy_state = [w.numpy().copy() for w in spy.weights]
    y_before = y.numpy().copy()
    composite.apply_gradients([(tf.ones(2), x)])
    assert len(spy.calls) == 1
    for before, after in zip(spy_state, spy.weights):
        np.testing.assert_array_equal(before, after.numpy())
    np.testing.assert_array_equal(y_before, y.numpy())  # momentum alone would have moved it
    assert composite.optimizers[0].iterations.numpy() == 2 and spy.iterations.numpy() == 1


@requirement("ROUTE-8")
def test_sparse_gradient_reaches_sub_optimizer_as_sparse():
    """ROUTE-8: an IndexedSlices gradient arrives at the sub-optimizer as IndexedSlices."""
    spy = RecordingSGD(0.1)
    table = tf.Variable(B)
    composite = CompositeOptimizer([(spy, named("t", [table]))])
    composite.apply_gradients([(Sparse(np.ones((2, 2), np.float32), [2, 0]).to_tf(table), table)])
    assert spy.calls == [[(tf.IndexedSlices, table.ref())]]
    np.testing.assert_allclose(table.numpy(), B - 0.1 * np.array([[1, 1], [0, 0], [1, 1]]), rtol=1e-6)


@requirement("ROUTE-8")
@pytest.mark.parametrize("indices", [[0, 2], [2, 2, 0]], ids=["unique", "repeated"])
def test_sparse_update_is_applied_sparsely(indices):
    """ROUTE-8: the sub-optimizer applies its sparse update (momentum moves only the given rows;
    repeated indices summed), which differs from a dense update with zero rows."""
    values = np.arange(len(indices) * 2, dtype=np.float32).reshape(-1, 2) + 1.0
    rig = Rig([(momentum(0.1, 0.9), [B]), (sgd(), [A])])
    alone = rig.oracle()
    steps = [[(0, np.ones_like(B)), (1, A)], [(0, Sparse(values, indices))], [(0, Sparse(values, indices)), (1, A)]]
    for step in steps:
        rig.apply(step)
        alone.apply(step)
    assert_matches_oracle(rig, alone)
    # Summed duplicates: the same as one sparse gradient with unique, summed rows.
    deduplicated = Rig([(momentum(0.1, 0.9), [B]), (sgd(), [A])])
    summed = {}
    for row, index in zip(values, indices):
        summed[index] = summed.get(index, 0) + row
    unique = Sparse(np.array([summed[i] for i in sorted(summed)]), sorted(summed))
    for step in steps:
        deduplicated.apply([(k, unique if isinstance(g, Sparse) else g) for k, g in step])
    assert_close(rig.variables[0].numpy(), deduplicated.variables[0].numpy())
    # Row 1 gets no sparse gradient: momentum would move it under a dense update.
    dense = Rig([(momentum(0.1, 0.9), [B]), (sgd(), [A])])
    for step in steps:
        dense.apply([(k, _dense(g)) for k, g in step])
    assert not np.allclose(rig.variables[0].numpy()[1], dense.variables[0].numpy()[1])


def _dense(grad):
    if not isinstance(grad, Sparse):
        return grad
    out = np.zeros_like(B)
    for row, index in zip(grad.values, grad.indices):
        out[index] += row
    return out


SEQUENCE = [
    [(0, A), (1, A * 2), (2, B)],
    [(2, Sparse(np.ones((2, 2), np.float32), [1, 1]))],          # groups 0 and 1 absent
    [(0, None), (1, -A), (3, np.array([0.5], np.float32))],       # None dropped
    [(3, np.array([-1.0], np.float32)), (0, A), (2, None)],      # order shuffled, group 1 all None
    [(1, A), (0, A), (2, B * 0.1), (3, np.array([2.0], np.float32))],
    [(2, Sparse(np.full((1, 2), 3.0, np.float32), [0]))],
]


@requirement("ROUTE-9", "ROUTE-5", "ROUTE-7", "ROUTE-8")
def test_central_property_against_sub_optimizers_alone():
    """ROUTE-9 (with ROUTE-5, ROUTE-7, ROUTE-8): a sequence of mixed steps (groups absent, `None`
    gradients, sparse gradients) leaves variables, counters and slots exactly as each
    sub-optimizer alone on its group."""
    rig = Rig([(adam(0.05), [A, A]), (momentum(0.1, 0.8), [B]), (adagrad(0.2), [np.array([1.0], np.float32)])])
    # Variables 0, 1 -> group 0 (Adam); 2 -> group 1 (momentum); 3 -> group 2 (Adagrad).
    alone = rig.oracle()
    for step in SEQUENCE:
        rig.apply(step)
        alone.apply(step)
        assert_matches_oracle(rig, alone)
    assert rig.composite.iterations.numpy() == len(SEQUENCE)
    assert [o.iterations.numpy() for o in rig.sub_optimizers] == [4, 4, 3]


@requirement("ROUTE-4")
def test_tfrs_overlap_message_names_optimizers_not_indices():
    """ROUTE-4 TFRS note: TFRS refuses an overlap, but its message names the two optimizers'
    reprs, not the entry indices; it also refuses a variable listed twice by one entry."""
    tfrs_cls = tfrs_composite_class()
    x, y = tf.Variable(A, name="overlap_x"), tf.Variable(A)
    composite = tfrs_cls([(legacy.SGD(0.1), named("a", [x])), (legacy.SGD(0.1), named("b", [y, x]))])
    with pytest.raises(ValueError, match="overlap_x") as info:
        composite.apply_gradients([(tf.ones(2), y)])
    assert "optimizers_and_vars[" not in str(info.value) and "SGD object" in str(info.value)
    twice = tfrs_cls([(legacy.SGD(0.1), named("a", [x, x]))])
    with pytest.raises(ValueError, match="disjoint"):
        twice.apply_gradients([(tf.ones(2), x)])


@requirement("ROUTE-7")
def test_tfrs_absent_group_is_not_called():
    """ROUTE-7 TFRS note: TFRS complies when the whole group is absent."""
    rig = Rig([(adam(), [A]), (momentum(), [B])], composite_cls=tfrs_composite_class())
    rig.apply([(0, A), (1, B)])
    before = [w.numpy().copy() for w in rig.sub_optimizers[1].weights]
    rig.apply([(0, A)])
    for value, variable in zip(before, rig.sub_optimizers[1].weights):
        np.testing.assert_array_equal(value, variable.numpy())
    assert [o.iterations.numpy() for o in rig.sub_optimizers] == [2, 1]
