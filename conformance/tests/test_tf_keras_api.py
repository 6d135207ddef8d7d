"""The tf_keras drop-in API (SPEC requirements of scope tf_keras).

These checks drive `Instance.native` (the implementation's own tf_keras optimizer) directly,
so they run only for adapters with the `tf_keras_api` capability; TensorFlow is imported
inside them, never at collection, so other frameworks' runs do not load it.
"""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.protocol import Clip, CompositeSpec, Group, SubOptimizer, VariableSpec
from conformance import checks
from conformance.plugin import not_applicable
from conformance import strategies as cs
from conformance.situations import STEP

# Every check here drives the tf_keras object itself, whatever requirement it cites.
pytestmark = pytest.mark.needs("tf_keras_api")

TWO_GROUPS = CompositeSpec((Group(SubOptimizer("sgd", 0.1), (0,)), Group(SubOptimizer("adam", 0.01), (1, 2))))
# Two variables named "w" in different entries (situation `shared_names`): a port that keys slots
# or routing by name shows it here, unless ROUTE-1's owner already found that (then DISTINCT_NAMES).
VARIABLES = (VariableSpec("w", np.ones(3, np.float32)), VariableSpec("w", np.ones((2, 2), np.float32)),
             VariableSpec("b", np.ones(2, np.float32)))
DISTINCT_NAMES = tuple(VariableSpec(f"{v.name}_{i}", v.value) for i, v in enumerate(VARIABLES))
GRADS = ((0, np.full(3, 0.5, np.float32)), (1, np.full((2, 2), 0.25, np.float32)), (2, np.ones(2, np.float32)))


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


@pytest.fixture(scope="module")
def tf_keras():
    import tf_keras

    return tf_keras


def _built(impl):
    """TWO_GROUPS over VARIABLES where the check may contain `shared_names` (declared, and ROUTE-1's
    owner complied), else over DISTINCT_NAMES."""
    instance = impl.adapter.composite(TWO_GROUPS, VARIABLES if impl.allows("shared_names") else DISTINCT_NAMES)
    return instance, instance.native, instance.native_variables


def _legacy(tf_keras, kind="sgd"):
    return {"sgd": tf_keras.optimizers.legacy.SGD, "adam": tf_keras.optimizers.legacy.Adam}[kind](0.1)


@pytest.mark.requirement("CTOR-1")
@pytest.mark.uses("shared_names")
@given(key=st.sampled_from(["lr", "decay", "learning_rate", "clip_norm", "foo"]))
def test_unknown_keyword_is_a_type_error(impl, tf_keras, key):
    """CTOR-1: only clipnorm, clipvalue and global_clipnorm are accepted, besides name; tf_keras'
    legacy `lr` and `decay`, which its own optimizers accept, are refused too (a composite has no
    learning rate). The TypeError names the keyword as a word, not merely within a list of others."""
    _, native, variables = _built(impl)
    with pytest.raises(TypeError, match=checks.names(key)):
        type(native)([(_legacy(tf_keras), lambda: variables[:1])], **{key: 0.5})


@pytest.mark.requirement("CTOR-1")
@pytest.mark.uses("shared_names")
@given(clip=cs.some_clip_settings())
def test_clip_keywords_are_accepted_and_reported(impl, tf_keras, clip):
    """CTOR-1: the three clip settings are constructor keywords and attributes."""
    _, native, variables = _built(impl)
    optimizer = type(native)([(_legacy(tf_keras), lambda: variables[:1])], **clip.as_kwargs())
    for key in ("clipnorm", "clipvalue", "global_clipnorm"):
        assert getattr(optimizer, key) == getattr(clip, key)


@pytest.mark.requirement("CTOR-3")
@pytest.mark.uses("shared_names")
@pytest.mark.parametrize("fault", ["not a pair", "not an optimizer", "not callable", "same optimizer twice"])
def test_malformed_entries_are_refused_naming_the_index(impl, tf_keras, fault):
    """CTOR-3: TypeError naming the entry's index; the same instance twice is a ValueError."""
    _, native, variables = _built(impl)
    good = (_legacy(tf_keras), lambda: variables[:1])
    bad = {
        "not a pair": (_legacy(tf_keras),),
        "not an optimizer": ("sgd", lambda: variables[1:]),
        "not callable": (_legacy(tf_keras), variables[1:]),
        "same optimizer twice": (good[0], lambda: variables[1:]),
    }[fault]
    error = ValueError if fault == "same optimizer twice" else TypeError
    with pytest.raises(error, match=r"\[1\]"):
        type(native)([good, bad])


@pytest.mark.requirement("CTOR-5", "SLOT-3")
@pytest.mark.uses("shared_names")
def test_checkpoint_names_sub_optimizers_like_tfrs(impl, tf, tmp_path):
    """CTOR-5: sub-optimizers are checkpointed as Optimizer0, Optimizer1; SLOT-3: saving works."""
    instance, native, variables = _built(impl)
    instance.step(GRADS)
    path = tf.train.Checkpoint(optimizer=native).write(str(tmp_path / "ckpt"))
    names = {name for name, _ in tf.train.list_variables(path)}
    assert any(n.startswith("optimizer/Optimizer0/") for n in names), sorted(names)
    assert any(n.startswith("optimizer/Optimizer1/") for n in names), sorted(names)


@pytest.mark.requirement("ROUTE-6")
@pytest.mark.uses(*STEP)
@given(data=st.data())
def test_any_iterable_is_read_once(impl, tf, data):
    """ROUTE-6: a generator works and gives the same result as a list."""
    if impl.replicas > 1:
        # How the call reads its argument is plain Python, the same on any device; the generator
        # call below runs outside the replicas' strategy, where mirrored variables cannot be updated.
        not_applicable("a single-device check: it calls apply_gradients outside any replica context "
                       "(ROUTE-6 is how the Python call reads its argument, which no device changes)")
    case = data.draw(cs.cases(impl.caps, max_steps=2), label="case")
    a, b = impl.adapter.composite(case.spec, case.variables), impl.adapter.composite(case.spec, case.variables)
    from adapters.tf_keras import _to_tf

    for pairs in case.steps:
        a.step(pairs)
        b.native.apply_gradients((_to_tf(g, b.native_variables[i]), b.native_variables[i]) for i, g in pairs)
    checks.assert_arrays_close(b.variables(), a.variables(), impl.tolerance("exact"), "variables")


@pytest.mark.requirement("ROUTE-4", "ATOM-2")
@pytest.mark.uses("shared_names")
def test_step_errors_are_value_errors(impl, tf):
    """ROUTE-4 and ATOM-2 errors are ValueError, as tf_keras raises them."""
    instance, native, variables = _built(impl)
    stranger = tf.Variable(np.zeros(2, np.float32), name="stranger")
    with pytest.raises(ValueError, match="stranger"):
        native.apply_gradients([(tf.ones(2), stranger)])
    with checks.charged_to("ATOM-2"), pytest.raises(ValueError):
        native.apply_gradients([(tf.ones(3), variables[0]), (tf.ones((3, 3)), variables[1])])


@pytest.mark.requirement("SLOT-1", "SLOT-2")
@pytest.mark.uses("shared_names")
def test_slots_are_delegated_to_the_owning_sub_optimizer(impl, tf):
    """SLOT-1/2: get_slot and add_slot act on the sub-optimizer that owns the variable."""
    instance, native, variables = _built(impl)
    entries = instance.native_entries
    instance.step(GRADS)
    assert native.get_slot(variables[1], "m") is entries[1].get_slot(variables[1], "m")
    with pytest.raises(KeyError):
        native.get_slot(variables[0], "m")  # SGD without momentum has no slot "m".
    stranger = tf.Variable(np.zeros(2, np.float32), name="stranger")
    with pytest.raises(KeyError):
        native.get_slot(stranger, "m")
    slot = native.add_slot(variables[0], "extra")
    assert entries[0].get_slot(variables[0], "extra") is slot
    with pytest.raises(ValueError):
        native.add_slot(stranger, "extra")
    assert native.get_slot_names() == []


def group_0():
    return []


@pytest.mark.requirement("CONF-1", "CONF-3")
@given(data=st.data())
def test_config_is_json_and_from_config_resolves_names(impl, data):
    """CONF-1: JSON-serialisable, clip settings present only when set; CONF-3: rebuild, no mutation."""
    case = data.draw(cs.cases(impl.caps, max_steps=1), label="case")
    instance = impl.adapter.composite(case.spec, case.variables)
    config = instance.config()
    assert json.loads(json.dumps(config)) == config
    for key in ("clipnorm", "clipvalue", "global_clipnorm"):
        assert config.get(key) == getattr(case.spec.clip, key), key
    assert set(config) >= {"name", "optimizers", "var_lists"}
    frozen = json.dumps(config, sort_keys=True)
    twin = impl.adapter.from_config(config, case.variables, [g.variables for g in case.spec.groups])
    assert json.dumps(config, sort_keys=True) == frozen, "from_config mutated the config it was given"
    assert twin.config() == config


@pytest.mark.requirement("CONF-2", "CONF-3")
@pytest.mark.uses("shared_names")
def test_config_errors_say_what_to_fix(impl, tf_keras):
    """CONF-2: lambdas and duplicate names refuse get_config; CONF-3: unknown keys and names refused."""
    _, native, variables = _built(impl)
    cls = type(native)
    with pytest.raises(ValueError, match="named function|regist"):
        cls([(_legacy(tf_keras), lambda: variables[:1])]).get_config()
    with pytest.raises(ValueError, match="group_0"):
        cls([(_legacy(tf_keras), group_0), (_legacy(tf_keras), group_0)]).get_config()
    config = cls([(_legacy(tf_keras), group_0)]).get_config()
    with pytest.raises(ValueError, match="surprise"):
        cls.from_config({**config, "surprise": 1}, custom_objects={"group_0": group_0})
    with pytest.raises(ValueError, match="group_0"):
        cls.from_config(config)  # The name resolves nowhere: neither custom_objects nor the registry.


@pytest.mark.requirement("INTEG-1", "INTEG-2")
@pytest.mark.uses("shared_names")
def test_apply_gradients_returns_an_op_that_loss_scaling_can_use(impl, tf, tf_keras):
    """INTEG-1: never None; INTEG-2: inside tf.function under LossScaleOptimizer."""
    instance, native, variables = _built(impl)
    assert native.apply_gradients([(tf.constant(g), variables[i]) for i, g in GRADS]) is not None
    scaled = tf_keras.mixed_precision.LossScaleOptimizer(native)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = scaled.get_scaled_loss(sum(tf.reduce_sum(v * v) for v in variables))
        grads = scaled.get_unscaled_gradients(tape.gradient(loss, variables))
        scaled.apply_gradients(zip(grads, variables))

    step()
    assert int(native.iterations.numpy()) == 2


@pytest.mark.requirement("INTEG-2")
@pytest.mark.uses("shared_names")
def test_works_in_model_fit(impl, tf, tf_keras):
    """INTEG-2: a tf_keras model trains with the composite as its optimizer."""
    _, native, _ = _built(impl)
    model = tf_keras.Sequential([tf_keras.layers.Dense(2, input_shape=(3,)), tf_keras.layers.Dense(1)])
    cls = type(native)
    subs = [_legacy(tf_keras, "sgd"), _legacy(tf_keras, "adam")]
    optimizer = cls([(subs[0], lambda: model.layers[0].trainable_weights),
                     (subs[1], lambda: model.layers[1].trainable_weights)])
    model.compile(optimizer=optimizer, loss="mse")
    x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert int(optimizer.iterations.numpy()) == 4
    assert [o.iterations.numpy() for o in subs] == [4, 4]
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


@pytest.mark.requirement("INTEG-3")
@pytest.mark.uses("shared_names")
def test_public_api_of_the_tfrs_page_is_present(impl):
    """INTEG-3: every name on the TFRS API page; `optimizers` lists the entries' sub-optimizers first,
    in entry order (an implementation may list others of its own after them)."""
    instance, native, _ = _built(impl)
    names = ["optimizers", "iterations", "weights", "variables", "apply_gradients", "minimize", "get_config",
             "from_config", "get_weights", "set_weights", "add_slot", "get_slot", "get_slot_names",
             "get_gradients", "get_updates", "clipnorm", "clipvalue", "global_clipnorm"]
    assert [n for n in names if not hasattr(native, n)] == []
    assert [o for o in native.optimizers][:2] == instance.native_entries


@pytest.mark.requirement("CKPT-2")
@pytest.mark.uses("shared_names")
def test_restores_a_checkpoint_in_tfrs_layout(impl, tf, tf_keras, tmp_path):
    """CKPT-2: a checkpoint laid out as TFRS writes it (Optimizer0, Optimizer1 under the composite)
    restores the sub-optimizers' counters and slots. The TFRS layout is built without TFRS: a
    trackable whose children are named Optimizer0, Optimizer1."""
    instance, native, variables = _built(impl)
    source_vars = [tf.Variable(v.numpy()) for v in variables]
    subs = [_legacy(tf_keras, "sgd"), _legacy(tf_keras, "adam")]
    subs[0].apply_gradients([(tf.ones(3), source_vars[0])])
    for _ in range(3):
        subs[1].apply_gradients([(tf.ones((2, 2)), source_vars[1]), (tf.ones(2), source_vars[2])])
    tfrs_like = tf.Module()
    tfrs_like.Optimizer0, tfrs_like.Optimizer1 = subs
    path = tf.train.Checkpoint(optimizer=tfrs_like, variables=source_vars).write(str(tmp_path / "tfrs"))
    tf.train.Checkpoint(optimizer=native, variables=variables).read(path).expect_partial()
    instance.step(GRADS)  # Slots are created, and restored, on the first step.
    assert [int(o.iterations.numpy()) for o in instance.native_entries] == [2, 4]
