import numpy as np
import pytest

import minigrad as mg


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def tensor64(rng, shape, low=-1.0, high=1.0):
    """A float64 leaf requiring grad, with values in [low, high)."""
    return mg.Tensor(rng.uniform(low, high, shape), requires_grad=True, dtype=np.float64)
