"""DIST-2: partitioned variables (ShardedVariable), named whole or by shard, in groups and gradients.

A ShardedVariable is built here from two plain variables (the object ParameterServerStrategy's
partitioner makes, without the cluster; tests/reference/test_parameter_servers.py runs a real one).
Every way of naming it must train it exactly as one unpartitioned variable fed the same gradient.
"""

import itertools

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from ref_helpers import assert_close, tfrs_composite_class
from reference import CompositeOptimizer

requirement = pytest.mark.requirement
legacy = tf_keras.optimizers.legacy
ShardedVariable = tf.__internal__.distribute.ShardedVariable

TABLE = np.arange(10, dtype=np.float32).reshape(5, 2) / 10
DENSE = np.array([1.0, -2.0], np.float32)
SPLIT = 3  # Shard 0 holds rows 0-2, shard 1 rows 3-4.
# Per step: the table's gradient (dense, or sparse rows with repeats across the shard boundary)
# and the dense variable's.
STEPS = [
    (np.full((5, 2), 0.5, np.float32), np.array([1.0, 2.0], np.float32)),
    ((np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], np.float32), [4, 1, 4]), np.array([0.1, -0.3], np.float32)),
    ((np.array([[2.0, 2.0]], np.float32), [0]), None),  # Every row in shard 0: shard 1 gets no rows.
]
CLIPS = [{}, {"clipnorm": 1.0}, {"global_clipnorm": 1.5}, {"clipvalue": 0.7}]


def _table_gradient(grad, shape):
    if isinstance(grad, tuple):
        values, indices = grad
        return tf.IndexedSlices(tf.constant(values), tf.constant(indices, tf.int64), tf.constant(shape, tf.int64))
    return tf.constant(grad)


def _shard_gradients(grad, shards):
    """What GradientTape gives for the shards: each its rows, shard-local (sparse: maybe none)."""
    if not isinstance(grad, tuple):
        return [tf.constant(grad[:SPLIT]), tf.constant(grad[SPLIT:])]
    values, indices = grad
    out = []
    for shard, (low, high) in zip(shards, [(0, SPLIT), (SPLIT, 5)]):
        mine = [k for k, i in enumerate(indices) if low <= i < high]
        out.append(tf.IndexedSlices(tf.constant(values[mine].reshape(-1, 2)),
                                    tf.constant([indices[k] - low for k in mine], tf.int64),
                                    tf.constant(shard.shape, tf.int64)))
    return out


def _subs(**sub_clip):
    return legacy.SGD(0.1, momentum=0.9, **sub_clip), legacy.Adam(0.05)


def _partitioned():
    shards = [tf.Variable(TABLE[:SPLIT], name="table/part_0"), tf.Variable(TABLE[SPLIT:], name="table/part_1")]
    return ShardedVariable(shards, name="table"), shards


def _run_partitioned(groups_list, gradients_for, clip, sub_clip=None):
    table, shards = _partitioned()
    dense = tf.Variable(DENSE, name="dense")
    listed = [table] if groups_list == "variable" else shards
    sgd, adam = _subs(**(sub_clip or {}))
    optimizer = CompositeOptimizer([(sgd, lambda: listed), (adam, lambda: [dense])], **clip)
    for table_grad, dense_grad in STEPS:
        if gradients_for == "variable":
            pairs = [(_table_gradient(table_grad, TABLE.shape), table)]
        else:
            pairs = list(zip(_shard_gradients(table_grad, shards), shards))
        if dense_grad is not None:
            pairs.append((tf.constant(dense_grad), dense))
        optimizer.apply_gradients(pairs)
    return tf.concat(shards, 0).numpy(), dense.numpy(), optimizer


def _run_unpartitioned(clip, sub_clip=None):
    table, dense = tf.Variable(TABLE, name="table"), tf.Variable(DENSE, name="dense")
    sgd, adam = _subs(**(sub_clip or {}))
    optimizer = CompositeOptimizer([(sgd, lambda: [table]), (adam, lambda: [dense])], **clip)
    for table_grad, dense_grad in STEPS:
        pairs = [(_table_gradient(table_grad, TABLE.shape), table)]
        if dense_grad is not None:
            pairs.append((tf.constant(dense_grad), dense))
        optimizer.apply_gradients(pairs)
    return table.numpy(), dense.numpy(), optimizer


@requirement("DIST-2", "CLIP-1", "ROUTE-9")
@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: ",".join(c) or "unclipped")
@pytest.mark.parametrize("groups_list,gradients_for", list(itertools.product(["variable", "shards"], repeat=2)))
def test_partitioned_variable_trains_as_the_unpartitioned_one(groups_list, gradients_for, clip):
    """DIST-2: the callable listing the ShardedVariable or its shards, gradients naming shards or the
    whole variable: the same values and counters as one unpartitioned variable; CLIP-1 clipnorm over
    all shards together; ROUTE-9 the same sub-optimizer steps."""
    table, dense, optimizer = _run_partitioned(groups_list, gradients_for, clip)
    expected_table, expected_dense, expected = _run_unpartitioned(clip)
    assert_close(table, expected_table, err_msg="partitioned table")
    assert_close(dense, expected_dense, err_msg="dense variable")
    assert int(optimizer.iterations.numpy()) == int(expected.iterations.numpy()) == len(STEPS)
    assert [int(o.iterations.numpy()) for o in optimizer.optimizers] == [3, 2]


@requirement("DIST-2", "CLIP-3")
@pytest.mark.parametrize("sub_clip", [{"clipnorm": 0.8}, {"clipnorm": 0.8, "clipvalue": 0.3}], ids=str)
@pytest.mark.parametrize("groups_list,gradients_for", [("variable", "shards"), ("shards", "variable")])
def test_a_sub_optimizers_clipnorm_spans_the_shards(groups_list, gradients_for, sub_clip):
    """DIST-2, CLIP-3: a sub-optimizer's own clipnorm clips the partitioned variable as a whole."""
    table, dense, _ = _run_partitioned(groups_list, gradients_for, {}, sub_clip)
    expected_table, expected_dense, _ = _run_unpartitioned({}, sub_clip)
    assert_close(table, expected_table, err_msg="partitioned table")
    assert_close(dense, expected_dense, err_msg="dense variable")


@requirement("DIST-2", "ROUTE-4")
def test_a_shard_owned_twice_is_an_overlap_naming_it():
    """DIST-2, ROUTE-4: the variable listed by one entry and its shard by another is refused."""
    table, shards = _partitioned()
    sgd, adam = _subs()
    optimizer = CompositeOptimizer([(sgd, lambda: [table]), (adam, lambda: [shards[1]])])
    with pytest.raises(ValueError, match=r"table/part_1.*optimizers_and_vars\[0\].*optimizers_and_vars\[1\]"):
        optimizer.apply_gradients([(tf.constant(TABLE), table)])
    np.testing.assert_array_equal(tf.concat(shards, 0).numpy(), TABLE)


@requirement("DIST-2", "ATOM-1")
def test_a_whole_gradient_with_an_unlisted_shard_names_it_and_changes_nothing():
    """DIST-2, ATOM-1: a gradient for the whole variable when only shard 0 is listed: ValueError
    naming shard 1, nothing applied."""
    table, shards = _partitioned()
    dense = tf.Variable(DENSE)
    sgd, adam = _subs()
    optimizer = CompositeOptimizer([(sgd, lambda: [shards[0]]), (adam, lambda: [dense])])
    with pytest.raises(ValueError, match=r"table/part_1.*listed by no entry"):
        optimizer.apply_gradients([(tf.constant(DENSE), dense), (tf.constant(TABLE), table)])
    np.testing.assert_array_equal(tf.concat(shards, 0).numpy(), TABLE)
    np.testing.assert_array_equal(dense.numpy(), DENSE)
    assert [int(o.iterations.numpy()) for o in optimizer.optimizers] == [0, 0]


@requirement("DIST-2")
def test_tfrs_cannot_route_a_listed_sharded_variable():
    """DIST-2's TFRS note: a callable listing a ShardedVariable fails on `v.ref()`."""
    table, shards = _partitioned()
    optimizer = tfrs_composite_class()([(legacy.SGD(0.1), lambda: [table])])
    with pytest.raises(AttributeError, match="ref"):
        optimizer.apply_gradients(list(zip(_shard_gradients(STEPS[0][0], shards), shards)))
