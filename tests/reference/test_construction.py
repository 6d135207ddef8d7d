"""CTOR: the constructor's signature, its checks, and the checkpoint names of its entries."""

import inspect
import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from reference import CompositeOptimizer
from ref_helpers import legacy, named, tfrs_composite_class

requirement = pytest.mark.requirement


def _entries(n=2):
    variables = [tf.Variable([1.0, 2.0]) for _ in range(n)]
    return [(legacy.SGD(0.1), named(f"v{i}", [v])) for i, v in enumerate(variables)]


@requirement("CTOR-1")
def test_signature_and_default_name():
    """CTOR-1: `CompositeOptimizer(optimizers_and_vars, name="CompositeOptimizer", **kwargs)`."""
    params = list(inspect.signature(CompositeOptimizer.__init__).parameters.values())
    assert [p.name for p in params] == ["self", "optimizers_and_vars", "name", "kwargs"]
    assert params[2].default == "CompositeOptimizer"
    assert params[3].kind is inspect.Parameter.VAR_KEYWORD
    assert CompositeOptimizer(_entries()).get_config()["name"] == "CompositeOptimizer"
    assert CompositeOptimizer(_entries(), "custom").get_config()["name"] == "custom"


@requirement("CTOR-1")
@pytest.mark.parametrize("kwargs", [dict(clipnorm=1.5), dict(clipvalue=0.5), dict(global_clipnorm=2.0),
                                    dict(clipvalue=0.5, clipnorm=1.0), dict(clipvalue=0.5, global_clipnorm=1.0)])
def test_clip_keywords_accepted(kwargs):
    """CTOR-1: `clipnorm`, `clipvalue`, `global_clipnorm` are accepted and exposed."""
    composite = CompositeOptimizer(_entries(), **kwargs)
    for key in ("clipnorm", "clipvalue", "global_clipnorm"):
        assert getattr(composite, key) == kwargs.get(key)


@requirement("CTOR-1")
@pytest.mark.parametrize("key", ["learning_rate", "lr", "decay", "gradient_aggregator", "gradient_transformers",
                                 "clip_norm"])
def test_other_keywords_are_type_errors(key):
    """CTOR-1: any keyword besides the clip settings is a TypeError naming it."""
    with pytest.raises(TypeError, match=key):
        CompositeOptimizer(_entries(), **{key: 0.1})


@requirement("CTOR-1")
def test_tfrs_refuses_clip_keywords():
    """CTOR-1 TFRS note: TFRS accepts no keyword besides `name`; every clip setting is a TypeError."""
    tfrs_cls = tfrs_composite_class()
    tfrs_cls(_entries(), name="ok")
    for key in ("clipnorm", "clipvalue", "global_clipnorm"):
        with pytest.raises(TypeError, match=key):
            tfrs_cls(_entries(), **{key: 1.0})


@requirement("CTOR-2")
@pytest.mark.parametrize("entries", [None, [], ()], ids=["None", "empty-list", "empty-tuple"])
def test_empty_or_none_is_value_error(entries):
    """CTOR-2: an empty or `None` entry list is a ValueError (TFRS refuses both too)."""
    with pytest.raises(ValueError, match="optimizers_and_vars"):
        CompositeOptimizer(entries)
    with pytest.raises(ValueError):
        tfrs_composite_class()(entries)


def _bad_entries(kind):
    variable = tf.Variable([1.0])
    good = (legacy.SGD(0.1), named("good", [variable]))
    other = (legacy.SGD(0.1), named("other", [variable]))
    bad = {
        "not-a-pair": legacy.SGD(0.1),
        "one-tuple": (legacy.SGD(0.1),),
        "triple": (legacy.SGD(0.1), named("x", [variable]), None),
        "string-optimizer": ("sgd", named("x", [variable])),
        "new-style-optimizer": (tf_keras.optimizers.SGD(0.1), named("x", [variable])),
        "not-callable": (legacy.SGD(0.1), [variable]),
    }[kind]
    return [good, other, bad]


@requirement("CTOR-3")
@pytest.mark.parametrize("kind", ["not-a-pair", "one-tuple", "triple", "string-optimizer",
                                  "new-style-optimizer", "not-callable"])
def test_malformed_entry_is_type_error_naming_index(kind):
    """CTOR-3: a malformed third entry is a TypeError whose message names `optimizers_and_vars[2]`."""
    with pytest.raises(TypeError) as info:
        CompositeOptimizer(_bad_entries(kind))
    assert "optimizers_and_vars[2]" in str(info.value)


@requirement("CTOR-3")
def test_same_optimizer_twice_is_value_error_naming_both():
    """CTOR-3: the same optimizer instance in entries 0 and 2 is a ValueError naming both indices."""
    shared = legacy.Adam(0.1)
    variables = [tf.Variable([1.0]) for _ in range(3)]
    entries = [(shared, named("a", variables[:1])), (legacy.SGD(0.1), named("b", variables[1:2])),
               (shared, named("c", variables[2:]))]
    with pytest.raises(ValueError) as info:
        CompositeOptimizer(entries)
    assert "optimizers_and_vars[0]" in str(info.value) and "optimizers_and_vars[2]" in str(info.value)


@requirement("CTOR-3")
@pytest.mark.parametrize("kind", ["one-tuple", "triple", "new-style-optimizer", "not-callable"])
def test_tfrs_accepts_malformed_entries_at_construction(kind):
    """CTOR-3 TFRS note: TFRS builds a composite from these malformed entries without complaint."""
    tfrs_composite_class()(_bad_entries(kind))


@requirement("CTOR-3")
@pytest.mark.parametrize("kind", ["not-a-pair", "string-optimizer"])
def test_tfrs_refuses_some_malformed_entries_without_naming_index(kind):
    """CTOR-3 TFRS note: an entry TFRS cannot index, or a sub-optimizer that is not Trackable,
    fails at construction, but with a TypeError that does not name the entry."""
    with pytest.raises(TypeError) as info:
        tfrs_composite_class()(_bad_entries(kind))
    assert "optimizers_and_vars[2]" not in str(info.value)


BAD_CLIP_VALUES = [0, 0.0, -1.0, math.inf, -math.inf, math.nan, "1.0", True, False, [1.0]]


@requirement("CTOR-4")
@pytest.mark.parametrize("key", ["clipnorm", "clipvalue", "global_clipnorm"])
def test_bad_clip_settings_are_value_errors(key):
    """CTOR-4: zero, negative, inf, nan, a string, a bool (or a list) is a ValueError naming the setting."""
    for value in BAD_CLIP_VALUES:
        with pytest.raises(ValueError, match=key):
            CompositeOptimizer(_entries(), **{key: value})


@requirement("CTOR-4")
@pytest.mark.parametrize("value", [1, 0.5, np.float32(2.0), np.int64(3), 1e-6])
def test_good_clip_settings(value):
    """CTOR-4: any positive finite real number is accepted (numpy scalars included)."""
    assert CompositeOptimizer(_entries(), clipvalue=value).clipvalue == value


@requirement("CTOR-4")
def test_clipnorm_with_global_clipnorm_is_value_error():
    """CTOR-4: `clipnorm` together with `global_clipnorm` is a ValueError naming both."""
    with pytest.raises(ValueError, match="clipnorm") as info:
        CompositeOptimizer(_entries(), clipnorm=1.0, global_clipnorm=1.0)
    assert "global_clipnorm" in str(info.value)


@requirement("CTOR-4")
def test_none_means_unset():
    """CTOR-4: `None` for a clip setting means unset: no clipping, absent from the config."""
    composite = CompositeOptimizer(_entries(), clipnorm=None, clipvalue=None, global_clipnorm=None)
    assert composite.clipnorm is None and composite.clipvalue is None and composite.global_clipnorm is None
    assert not {"clipnorm", "clipvalue", "global_clipnorm"} & set(composite.get_config())
    # None for one, a value for the other: no "both set" error.
    assert CompositeOptimizer(_entries(), clipnorm=None, global_clipnorm=1.0).global_clipnorm == 1.0


@requirement("CTOR-5")
def test_sub_optimizers_checkpointed_as_optimizer_n(tmp_path):
    """CTOR-5: sub-optimizers are tracked as `Optimizer0`, `Optimizer1`, ... in entry order."""
    variables = [tf.Variable([1.0, 2.0]), tf.Variable([3.0])]
    subs = [legacy.SGD(0.1), legacy.Adam(0.1)]
    composite = CompositeOptimizer([(subs[0], named("a", variables[:1])), (subs[1], named("b", variables[1:]))])
    composite.apply_gradients([(tf.ones(2), variables[0]), (tf.ones(1), variables[1])])
    path = tf.train.Checkpoint(optimizer=composite, v=variables).save(str(tmp_path / "ckpt"))
    names = {name for name, _ in tf.train.list_variables(path)}
    assert "optimizer/Optimizer0/iter/.ATTRIBUTES/VARIABLE_VALUE" in names
    assert "optimizer/Optimizer1/iter/.ATTRIBUTES/VARIABLE_VALUE" in names
    assert "optimizer/Optimizer1/beta_1/.ATTRIBUTES/VARIABLE_VALUE" in names  # Adam's is entry 1.
    assert not any(n.startswith("optimizer/Optimizer0/beta_1") for n in names)  # SGD's entry 0 has none.
    assert "v/1/.OPTIMIZER_SLOT/optimizer/Optimizer1/m/.ATTRIBUTES/VARIABLE_VALUE" in names
