"""The torchrec adapter and torch.optim.SGD's momentum buffer layout (adapters/torchrec.py).

torch.optim.SGD with momentum keeps its buffer in the layout of a parameter's first gradient and
cannot add a dense gradient to a sparse buffer (nor, with nesterov, a sparse gradient to a dense one).
The adapter declares exactly those steps Unsupported, for the composite and the standalone alike, so
that no check charges torch's limitation to the composite.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch extra is not installed")
pytest.importorskip("torchrec", reason="torchrec is not installed (see the torchrec install notes in adapters/torchrec.py)")

from adapters import protocol  # noqa: E402
from adapters.protocol import CompositeSpec, Group, Sparse, SubOptimizer, Unsupported, VariableSpec  # noqa: E402
from adapters.torchrec import TorchrecAdapter  # noqa: E402

F32 = np.float32
DENSE = np.ones((4, 3), F32)
SPARSE = Sparse(np.array([0, 2, 2], np.int64), np.full((3, 3), 0.5, F32))


def sgd(nesterov: bool, momentum: float = 0.9) -> SubOptimizer:
    return SubOptimizer("sgd", 0.1, {"momentum": momentum, "nesterov": nesterov})


def variables():
    return [VariableSpec("table", np.arange(12, dtype=F32).reshape(4, 3))]


def both(sub):
    adapter = TorchrecAdapter()
    return (adapter.composite(CompositeSpec(groups=(Group(sub, (0,)),)), variables()),
            adapter.standalone(sub, variables()))


def torch_sgd_raises(sub, first, second) -> bool:
    """What plain torch.optim.SGD does with these two gradients, no adapter involved."""
    param = torch.nn.Parameter(torch.zeros(4, 3))
    h = protocol.hyperparameters(sub)
    optimizer = torch.optim.SGD([param], lr=0.1, momentum=h["momentum"], nesterov=h["nesterov"])

    def grad(g):
        if isinstance(g, Sparse):
            return torch.sparse_coo_tensor(torch.tensor(g.indices).reshape(1, -1), torch.tensor(g.values), (4, 3))
        return torch.tensor(g)

    try:
        for g in (first, second):
            param.grad = grad(g)
            optimizer.step()
    except RuntimeError as exc:
        assert "add(sparse, dense) is not supported" in str(exc)
        return True
    return False


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("first, second", [(DENSE, SPARSE), (SPARSE, DENSE), (SPARSE, SPARSE), (DENSE, DENSE)],
                         ids=["dense-then-sparse", "sparse-then-dense", "sparse-sparse", "dense-dense"])
def test_unsupported_exactly_where_torch_sgd_raises(nesterov, first, second):
    sub = sgd(nesterov)
    raises = torch_sgd_raises(sub, first, second)
    for instance in both(sub):
        instance.step([(0, first)])
        before = instance.variables()
        if raises:
            with pytest.raises(Unsupported, match="cannot mix sparse and dense"):
                instance.step([(0, second)])
            np.testing.assert_array_equal(instance.variables()[0], before[0])
        else:
            instance.step([(0, second)])
    composite, standalone = both(sub)
    if not raises:  # Where torch can, the composite and SGD alone agree.
        for instance in (composite, standalone):
            instance.step([(0, first)])
            instance.step([(0, second)])
        np.testing.assert_allclose(composite.variables()[0], standalone.variables()[0], rtol=1e-6)


def test_sgd_without_momentum_mixes_freely():
    for instance in both(sgd(False, momentum=0.0)):
        for g in (SPARSE, DENSE, SPARSE):
            instance.step([(0, g)])


def test_sparse_gradient_of_the_wrong_row_shape_is_refused_by_torch():
    composite, _ = both(SubOptimizer("adagrad", 0.1))
    bad = Sparse(np.array([1], np.int64), np.ones((1, 5), F32))
    with pytest.raises(protocol.Refused, match="RuntimeError: .*size"):
        composite.step([(0, bad)])
    np.testing.assert_array_equal(composite.variables()[0], variables()[0].value)
    assert all(p.grad is None for p in composite._params)
