"""A legitimate port the suite must pass: the numpy toy port (tests/adapters/toy_port) with
sub-optimizers that always hold their step counter in their state, even over no variables.

tf_keras' legacy optimizers hold nothing until they step; this port's hold `[counter]`. SPEC WEIGHT-1
asks for what each sub-optimizer alone holds, so an entry with an empty group contributes `[0]` here.
Run with tests/adapters/toy_port on PYTHONPATH:
`--impl tests.conformance.always_counting_port:AlwaysCountingToyAdapter`.
"""

import numpy as np
import toycomposite as toy
from toyadapter import ToyAdapter


class AlwaysCountingSGD(toy.ToySGD):
    """ToySGD whose state is [step count] + momentum slots, with or without variables."""

    def weights(self) -> list:
        return [np.asarray(self.iterations, np.int64)] + [self.slots[id(v)] for v in self.built_for if id(v) in self.slots]


class AlwaysCountingToyAdapter(ToyAdapter):
    name = "toy-always-counting"
    sgd = AlwaysCountingSGD
