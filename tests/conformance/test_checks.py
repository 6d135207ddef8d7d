"""conformance/checks.py: the helpers every check is built from."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from adapters.protocol import Unsupported
from conformance import checks


def _inexpressible():
    raise Unsupported("this port cannot write the example down")


def test_an_inexpressible_example_is_rejected_not_counted_as_a_refusal():
    """`expect_raises` around a call the adapter declares `Unsupported` rejects the example; it
    must not take hypothesis' rejection for the refusal the spec asks for, or a check passes
    on an implementation it never ran (Keras 3's CTOR-2 check did)."""

    @settings(max_examples=5, database=None)
    @given(st.just(0))
    def check(_):
        checks.expect_raises(_inexpressible, "an empty composite")

    with pytest.raises(Unsatisfiable):
        check()


def test_a_refusal_is_returned_and_a_success_fails():
    error = ValueError("refused")
    assert checks.expect_raises(lambda: (_ for _ in ()).throw(error), "a bad call") is error
    with pytest.raises(AssertionError, match="a bad call: the call succeeded"):
        checks.expect_raises(lambda: None, "a bad call")
