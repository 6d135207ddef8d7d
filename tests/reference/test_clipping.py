"""CLIP: the composite's clip settings act on all groups' gradients together.

The gradients are observed directly: each sub-optimizer is SGD with learning rate 1
on variables starting at zero, so after one step each variable is minus the gradient
its sub-optimizer received (sparse rows summed). The expected values come from numpy
(`np_clip`), not from TensorFlow's clip functions.
"""

import numpy as np
import pytest
import tensorflow as tf

from ref_helpers import Rig, Sparse, adam, assert_close, assert_matches_oracle, densify, legacy, np_clip, sgd

requirement = pytest.mark.requirement

SHAPES = [(2,), (3, 2), (2, 2)]  # group 0: a vector and a table; group 1: a matrix
GRADS = [
    np.array([3.0, -4.0], np.float32),                                     # norm 5
    Sparse(np.array([[0.3, -0.2], [0.9, 0.6], [0.4, 0.1]], np.float32), [2, 0, 2]),  # repeated row 2
    np.array([[0.1, 0.2], [-0.3, 0.05]], np.float32),                      # small: norm < 1
]
SETTINGS = [
    {},
    dict(clipvalue=0.5),
    dict(clipnorm=1.0),
    dict(global_clipnorm=2.0),
    dict(global_clipnorm=1000.0),
    dict(clipvalue=0.8, clipnorm=1.0),
    dict(clipvalue=0.8, global_clipnorm=1.5),
]


def _observe(settings, grads=GRADS, sub_kwargs=({}, {})):
    rig = Rig([(sgd(1.0, **sub_kwargs[0]), [np.zeros(s, np.float32) for s in SHAPES[:2]]),
               (sgd(1.0, **sub_kwargs[1]), [np.zeros(SHAPES[2], np.float32)])], **settings)
    rig.apply(list(enumerate(grads)))
    return [-v.numpy() for v in rig.variables]


@requirement("CLIP-1")
@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "none")
def test_clipping_matches_numpy(settings):
    """CLIP-1: clipvalue elementwise, then clipnorm per tensor, then global_clipnorm over every
    gradient of the step across groups; sparse norms use the values as given."""
    received = _observe(settings)
    expected = [densify(g, s) for g, s in zip(np_clip(GRADS, **settings), SHAPES)]
    for k, (got, want) in enumerate(zip(received, expected)):
        assert_close(got, want, err_msg=f"gradient {k} under {settings}")


@requirement("CLIP-1")
def test_clipvalue_comes_before_clipnorm():
    """CLIP-1: the order is clipvalue then clipnorm (the other order gives different gradients)."""
    settings = dict(clipvalue=0.8, clipnorm=1.0)
    received = _observe(settings)
    value_then_norm = np_clip(GRADS, **settings)
    norm_then_value = np_clip(np_clip(GRADS, clipnorm=1.0), clipvalue=0.8)
    assert not np.allclose(densify(value_then_norm[0], (2,)), densify(norm_then_value[0], (2,)))
    assert_close(received[0], densify(value_then_norm[0], (2,)))


@requirement("CLIP-1")
def test_sparse_norm_uses_values_as_given():
    """CLIP-1: a sparse gradient with repeated indices is clipped by the norm of its values, not of
    the dense sum (values [[3,0],[3,0]] at row 1 twice: norm sqrt(18), not 6)."""
    grads = [np.zeros(2, np.float32), Sparse(np.array([[3.0, 0.0], [3.0, 0.0]], np.float32), [1, 1]),
             np.zeros((2, 2), np.float32)]
    for settings in (dict(clipnorm=2.0), dict(global_clipnorm=2.0)):
        received = _observe(settings, grads)[1]
        as_given = 2 * 2.0 * 3.0 / np.sqrt(18.0)
        assert_close(received[1], [as_given, 0.0], err_msg=str(settings))
        assert not np.isclose(received[1][0], 2.0)  # what clipping the dense sum (norm 6) would give


@requirement("CLIP-2")
def test_one_entry_global_clipnorm_equals_sub_optimizer_alone():
    """CLIP-2: a one-entry composite with `global_clipnorm=c` steps exactly like its sub-optimizer
    alone with `global_clipnorm=c` (Adam, several steps, clipping active)."""
    inits = [np.array([1.0, -2.0], np.float32), np.array([[0.5, 1.5], [2.0, -1.0]], np.float32)]
    rig = Rig([(adam(0.1), inits)], global_clipnorm=0.7)
    alone = Rig([(adam(0.1, global_clipnorm=0.7), inits)])
    for t in range(4):
        step = [(0, inits[0] * (t + 1)), (1, inits[1] - t)]
        rig.apply(step)
        alone.composite.optimizers[0].apply_gradients(alone.pairs(step))
    for mine, theirs in zip(rig.variables, alone.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


@requirement("CLIP-2", "CLIP-1")
def test_several_entries_differ_from_per_group_global_clipnorm():
    """CLIP-2, CLIP-1: with several entries the composite clips by the global norm of all groups, which
    differs from `global_clipnorm` on each sub-optimizer (each group by its own norm)."""
    composite_clip = _observe(dict(global_clipnorm=2.0))
    per_group = _observe({}, sub_kwargs=(dict(global_clipnorm=2.0), dict(global_clipnorm=2.0)))
    expected = [densify(g, s) for g, s in zip(np_clip(GRADS, global_clipnorm=2.0), SHAPES)]
    for got, want in zip(composite_clip, expected):
        assert_close(got, want)
    assert not np.allclose(composite_clip[2], per_group[2])  # group 1's norm alone is < 2: unclipped
    assert_close(per_group[2], GRADS[2])


@requirement("CLIP-3")
@pytest.mark.parametrize("outer, inner", [
    (dict(clipvalue=0.5), dict(clipnorm=0.3)),
    (dict(global_clipnorm=2.0), dict(clipvalue=0.1)),
    (dict(clipnorm=1.0), dict(global_clipnorm=0.5)),
], ids=["value-then-norm", "global-then-value", "norm-then-global"])
def test_sub_optimizer_clipping_applies_after_composites(outer, inner):
    """CLIP-3: a sub-optimizer's own clip settings still apply, inside its group, after the composite's."""
    received = _observe(outer, sub_kwargs=(inner, {}))
    group0 = np_clip(np_clip(GRADS, **outer)[:2], **inner)
    group1 = np_clip(GRADS, **outer)[2:]
    for k, (got, want) in enumerate(zip(received, group0 + group1)):
        assert_close(got, densify(want, SHAPES[k]), err_msg=f"gradient {k}")


@requirement("CLIP-1", "ROUTE-9")
def test_clipped_sequence_matches_oracle_with_numpy_clipping():
    """CLIP-1 with ROUTE-9: over several steps with Adam and momentum, the composite equals the
    sub-optimizers alone fed numpy-clipped gradients (the global norm is per step)."""
    inits = [np.array([1.0, -2.0], np.float32), np.array([[0.5, 1.5], [2.0, -1.0]], np.float32)]
    rig = Rig([(adam(0.1), inits[:1]), (sgd(0.1, momentum=0.9), inits[1:])], global_clipnorm=1.0, clipvalue=1.5)
    alone = rig.oracle()
    steps = [[(0, inits[0]), (1, inits[1])], [(1, inits[1] * 3)], [(0, inits[0] * 0.1), (1, None)],
             [(1, inits[1] * 0.01), (0, -inits[0])]]
    for step in steps:
        rig.apply(step)
        alone.apply(step, clip=dict(global_clipnorm=1.0, clipvalue=1.5))
    assert_matches_oracle(rig, alone)
