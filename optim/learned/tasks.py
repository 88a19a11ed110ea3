"""The paper's tasks (section 3): for each, the optimizee family, the optimizer network, how it
is meta-trained and how it is tested. Where a setting departs from the paper, README.md
("Where this differs from the paper") says why and what was measured; docs/paper.md gives the
paper's and the official code's settings.
"""
from dataclasses import dataclass

from models.data import load_mnist
from models.problems import CIFARFamily, MNISTFamily, QuadraticFamily

from .meta import MetaConfig
from .network import NetworkConfig


@dataclass
class Task:
    """A task: how to draw its problems and how the paper trains and tests on it.

    make_family(split, data_dir=None, download=False, **options) -> family, for split "train"
    (meta-training and tuning problems) or "test" (test problems).
    """

    make_family: object
    network: NetworkConfig
    meta: MetaConfig
    trained_on: str = None            # for generalisation tasks: the task whose optimizer is tested
    tests: int = 100                  # test problems in reproduce
    horizons: tuple = (100,)          # steps to compare at in reproduce
    tune_problems: int = 8            # validation problems for the learning rate search
    meta_subset: bool = False         # meta-train on problems that each see as many digits as
                                      # a test problem does (a random subset of the training split)
    networks: tuple = ("all",)
    param_networks: object = None     # problem -> {param index: network name}

    def assignment(self, problem):
        """{parameter index: network name} for `problem`, or None for one network."""
        return self.param_networks(problem) if self.param_networks else None


def _quadratic(split, **data):
    return QuadraticFamily(dim=10, batch=128, distribution="gaussian")


def _mnist(**options):
    def make(split, data_dir=None, download=False, subset=None):
        data = load_mnist(split, data_dir=data_dir, download=download)
        return MNISTFamily(split=split, data=data, subset=subset, **options)
    return make


def _cifar(split, **data):
    return CIFARFamily(split=split, **data)


MNIST_NETWORK = NetworkConfig(layers=(20, 20), preprocess=True, preprocess_p=10.0, output_scale=0.1)
MNIST_META = MetaConfig(steps=100, unroll=20, epochs=150, meta_lr=3e-3, final_meta_lr=1e-3,
                        clip_norm=1.0, problems_per_update=2, average=0.99, validate_every=15,
                        validation_problems=16, validate_on="late", validation_steps=200)
CIFAR_META = MetaConfig(steps=100, unroll=20, epochs=100, meta_lr=3e-3, final_meta_lr=1e-3,
                        clip_norm=1.0, validate_every=25, validation_problems=4)
# The paper's quadratic network has no preprocessing; this one preprocesses (`--preprocess off`
# restores the paper's setting).
QUADRATIC_NETWORK = NetworkConfig(layers=(20, 20), preprocess=True, preprocess_p=10.0,
                                  output_scale=1.0, forget_bias=1.0)
QUADRATIC_META = MetaConfig(steps=100, unroll=20, epochs=800, meta_lr=3e-2, final_meta_lr=3e-3,
                            validate_every=50, validation_problems=4)

TASKS = {
    "quadratic": Task(make_family=_quadratic, network=QUADRATIC_NETWORK, meta=QUADRATIC_META,
                      tests=100, tune_problems=8),
    "mnist": Task(make_family=_mnist(), network=MNIST_NETWORK, meta=MNIST_META, tests=100,
                  tune_problems=4, horizons=(100, 200), meta_subset=True),
    # The generalisation tests of section 3.2 (figure 5): the optimizer trained on "mnist".
    "mnist-40": Task(make_family=_mnist(hidden=(40,)), network=MNIST_NETWORK, meta=MNIST_META,
                     trained_on="mnist", tests=100, tune_problems=4),
    "mnist-2layer": Task(make_family=_mnist(hidden=(20, 20)), network=MNIST_NETWORK,
                         meta=MNIST_META, trained_on="mnist", tests=100, tune_problems=4),
    "mnist-relu": Task(make_family=_mnist(activation="relu"), network=MNIST_NETWORK,
                       meta=MNIST_META, trained_on="mnist", tests=100, tune_problems=4),
    # Section 3.3: one network for the convolutional parameters, one for the fully connected.
    "cifar": Task(make_family=_cifar, network=MNIST_NETWORK, meta=CIFAR_META, tests=20,
                  tune_problems=2, networks=("conv", "fc"),
                  param_networks=lambda problem: problem.param_groups()),
}
