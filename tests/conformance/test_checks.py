"""conformance/checks.py: the helpers every check is built from."""

import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from adapters import protocol
from adapters.protocol import Refused, Unsupported, implementation_call
from conformance import checks
from conformance.harness import HarnessError, is_harness_error

TF_KERAS_PORT = types.SimpleNamespace(unsupported={})
OTHER_PORT = types.SimpleNamespace(unsupported={"tf_keras_api": "not a tf_keras optimizer"})


def _inexpressible():
    raise Unsupported("this port cannot write the example down")


def _refuses(error):
    def call():
        with implementation_call():
            raise error
    return call


def test_an_inexpressible_example_is_rejected_not_counted_as_a_refusal():
    """`expect_raises` around a call the adapter declares `Unsupported` rejects the example; it
    must not take hypothesis' rejection for the refusal the spec asks for, or a check passes
    on an implementation it never ran (Keras 3's CTOR-2 check did)."""

    @settings(max_examples=5, database=None)
    @given(st.just(0))
    def check(_):
        checks.expect_raises(TF_KERAS_PORT, _inexpressible, "an empty composite")

    with pytest.raises(Unsatisfiable):
        check()


def test_the_implementations_refusal_is_returned_and_a_success_fails():
    error = ValueError("refused")
    assert checks.expect_raises(TF_KERAS_PORT, _refuses(error), "a bad call", error=ValueError) is error
    with pytest.raises(AssertionError, match="a bad call: the call succeeded"):
        checks.expect_raises(TF_KERAS_PORT, lambda: None, "a bad call")


def test_an_exception_outside_the_implementation_is_an_error_never_a_refusal():
    """An adapter's own exception (its snapshot's AttributeError) must not pass a refusal check."""
    def adapter_bug():
        return types.SimpleNamespace().state

    with pytest.raises(HarnessError, match="AttributeError") as caught:
        checks.expect_raises(TF_KERAS_PORT, adapter_bug, "a bad call")
    assert is_harness_error(caught.value)


def test_type_and_message_are_checked_for_tf_keras_ports_only():
    wrong_type, unnamed = RuntimeError("variable 'w' is unlisted"), ValueError("bad variable")
    with pytest.raises(AssertionError, match="refused with RuntimeError.*the spec says ValueError"):
        checks.expect_raises(TF_KERAS_PORT, _refuses(wrong_type), "a bad call", error=ValueError)
    with pytest.raises(AssertionError, match="does not name"):
        checks.expect_raises(TF_KERAS_PORT, _refuses(unnamed), "a bad call", mentions=[checks.names("w")])
    # Another framework's port follows its own conventions: refusing is what counts.
    assert checks.expect_raises(OTHER_PORT, _refuses(wrong_type), "a bad call", error=ValueError) is wrong_type
    assert checks.expect_raises(OTHER_PORT, _refuses(unnamed), "a bad call", mentions=["w"]) is unnamed


def test_names_matches_whole_words_and_indices():
    assert checks.re.search(checks.names("kernel_1"), "Variable 'kernel_1:0' is listed twice")
    assert not checks.re.search(checks.names("kernel_1"), "Variable 'kernel_10:0' is listed twice")
    assert checks.re.search(checks.names(2), "value 2 (for 'm') has shape (3,)")
    assert not checks.re.search(checks.names(2), "value 12 has shape (3,)")


def test_a_version_1_adapter_keeps_working_its_exceptions_taken_as_refusals():
    class Instance:
        def step(self, pairs, *, compiled=False):
            raise ValueError("unlisted variable")

    class Version1Adapter:
        protocol_version, name, framework = 1, "v1", "numpy"
        info = optimizer_kinds = set_device = standalone = from_config = None

        def unsupported(self):
            return {"replicas": "one device"}

        def composite(self, spec, variables):
            return Instance()

    adapter = protocol.load_adapter(Version1Adapter)
    assert set(adapter.unsupported()) == {"replicas", "changing_groups"}
    instance = adapter.composite(None, [])
    with pytest.raises(Refused, match="ValueError: unlisted variable"):
        instance.step([])
