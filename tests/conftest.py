import os

# One BLAS thread, as the learning-to-learn command uses (optim/learned/cli.py says why): the
# tests' matmuls are small, and on a busy 2-core machine a second thread made them several
# times slower. Set before numpy is first imported; a value the user set is kept.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import minigrad as mg  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def tensor64(rng, shape, low=-1.0, high=1.0):
    """A float64 leaf requiring grad, with values in [low, high)."""
    return mg.Tensor(rng.uniform(low, high, shape), requires_grad=True, dtype=np.float64)


@pytest.fixture
def meta_configs(monkeypatch):
    """The MetaConfig of every meta-training the test starts, in order (experiments.MetaTrainer
    is wrapped to record it)."""
    from optim.learned import experiments
    configs = []

    class Recording(experiments.MetaTrainer):
        def __init__(self, networks, family, config, *args, **kwargs):
            configs.append(config)
            super().__init__(networks, family, config, *args, **kwargs)
    monkeypatch.setattr(experiments, "MetaTrainer", Recording)
    return configs
