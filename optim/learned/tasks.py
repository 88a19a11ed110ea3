"""The paper's tasks (section 3): for each, the optimizee family, the recipes that meta-train an
optimizer for it, and how it is tested. A recipe is the optimizer network, the meta-training
settings and the data each meta-training problem sees; this file is the one place that defines
them. Where a setting departs from the paper, README.md ("Where this differs from the paper")
says why and what was measured; docs/paper.md gives the paper's and the official code's
settings.

Every task draws its problems from three disjoint pools of data ("splits"):

- "train": meta-training problems;
- "validation": the problems meta-training validates on (to keep the best network) and the
  baselines' learning rates are tuned on: for MNIST, the last sixth of the official training
  split (10,000 of its 60,000 digits), which meta-training never sees;
- "test": the test problems, on the official test split (MNIST: 10,000 digits).

The quadratic family has no data: its three pools are the same family, and the problems differ
only by the seeds they are drawn with (`experiments.problem_set`).
"""
from dataclasses import dataclass, replace

from models.data import load_cifar10, load_mnist
from models.problems import ImageFamily, MNISTFamily, QuadraticFamily

from .meta import MetaConfig
from .network import NetworkConfig

SPLITS = ("train", "validation", "test")
VALIDATION_FRACTION = {"mnist": 1 / 6, "cifar": 1 / 10}   # of the official training split


@dataclass(frozen=True)
class Recipe:
    """How an optimizer is meta-trained: the network, the meta-training settings (which of
    MetaConfig's options beyond the paper it uses is part of its definition) and the data.

    digits: if set, each meta-training problem draws its minibatches from its own `digits`
        random digits of the "train" split (`MNISTFamily(subset=...)`); None, from all of them,
        as in the paper.
    """

    network: NetworkConfig
    meta: MetaConfig
    digits: int = None


@dataclass
class Task:
    """A task: how to draw its problems, how to meta-train an optimizer for it, how to test it.

    make_family(split, data_dir=None, download=False, subset=None) -> family, for a split of
    SPLITS.
    recipes: name -> Recipe; the first is the default. A generalisation task (`trained_on` set)
    tests the optimizer trained on another task, and has that task's recipes.
    """

    make_family: object
    recipes: dict
    trained_on: str = None            # for generalisation tasks: the task whose optimizer is tested
    tests: int = 100                  # test problems in reproduce
    horizons: tuple = (100,)          # steps to compare at in reproduce
    tune_problems: int = 8            # validation problems for each learning rate search
    networks: tuple = ("all",)
    param_networks: object = None     # problem -> {param index: network name}

    def assignment(self, problem):
        """{parameter index: network name} for `problem`, or None for one network."""
        return self.param_networks(problem) if self.param_networks else None

    def recipe(self, name=None):
        """The recipe called `name` (default: the task's first)."""
        name = next(iter(self.recipes)) if name is None else name
        if name not in self.recipes:
            raise ValueError(f"unknown recipe {name!r}; this task has {sorted(self.recipes)}")
        return self.recipes[name]


def check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def hold_out(data, split, fraction):
    """The "train" or "validation" part of an official training split `data` (images,
    labels): its last `fraction` is validation, the rest train."""
    images, labels = data
    start = len(labels) - int(round(len(labels) * fraction))
    part = slice(0, start) if split == "train" else slice(start, None)
    return images[part], labels[part]


def _official(load, split, fraction, **data):
    """`split` of SPLITS from a loader of the official "train" and "test" splits."""
    check_split(split)
    if split == "test":
        return load("test", **data)
    return hold_out(load("train", **data), split, fraction)


def _quadratic(split, data_dir=None, download=False, subset=None):
    check_split(split)
    return QuadraticFamily(dim=10, batch=128, distribution="gaussian")


def _mnist(**options):
    def make(split, data_dir=None, download=False, subset=None):
        data = _official(load_mnist, split, VALIDATION_FRACTION["mnist"], data_dir=data_dir,
                         download=download)
        return MNISTFamily(split=split, data=data, subset=subset, **options)
    return make


def _cifar(split, data_dir=None, download=False, subset=None):
    data = _official(load_cifar10, split, VALIDATION_FRACTION["cifar"], data_dir=data_dir,
                     download=download)
    return ImageFamily(data, name=f"cifar10-{split}")


# The paper's network for MNIST and CIFAR (section 3.2): two layers of 20, p = 10, output x0.1.
MNIST_NETWORK = NetworkConfig(layers=(20, 20), preprocess=True, preprocess_p=10.0, output_scale=0.1)
# The improved optimizer (docs/optimizers.md): scale-free moment inputs, and a nominal Adam step
# (learning rate 0.01) that the network rescales by up to 10x either way and corrects.
IMPROVED_NETWORK = NetworkConfig(layers=(20, 20), inputs="moments", output="adam", lr=0.01)
# The paper's quadratic network has no preprocessing; this one preprocesses (`--preprocess off`
# restores the paper's setting).
QUADRATIC_NETWORK = NetworkConfig(layers=(20, 20), preprocess=True, preprocess_p=10.0,
                                  output_scale=1.0, forget_bias=1.0)

RECIPES = {
    "quadratic": {
        "paper": Recipe(
            QUADRATIC_NETWORK,
            MetaConfig(steps=100, unroll=20, epochs=800, meta_lr=3e-2, final_meta_lr=3e-3,
                       validate_every=50, validation_problems=4),
        ),     # the paper's protocol, with the gradient preprocessing of appendix A
    },
    "mnist": {
        "paper": Recipe(
            MNIST_NETWORK,
            MetaConfig(steps=100, unroll=20, epochs=400, meta_lr=3e-3, final_meta_lr=1e-3,
                       clip_norm=1.0, validate_every=50, validation_problems=16),
        ),     # the paper's protocol: one net per trajectory on minibatches from the whole
               # "train" split, the network with the lowest validation meta-loss kept
        "improved": Recipe(
            IMPROVED_NETWORK,
            MetaConfig(steps=100, unroll=100, epochs=230, meta_lr=3e-3, final_meta_lr=1e-3,
                       clip_norm=1.0, trajectories_per_update=2, objective="log-last",
                       validate_on="final", validate_every=20, validation_problems=16,
                       curriculum=((100, 120), (200, 60), (500, 30), (1000, 20))),
        ),     # docs/optimizers.md, "The improved learned optimizer"
    },
    "cifar": {
        "paper": Recipe(
            MNIST_NETWORK,
            MetaConfig(steps=100, unroll=20, epochs=100, meta_lr=3e-3, final_meta_lr=1e-3,
                       clip_norm=1.0, validate_every=25, validation_problems=4),
        ),     # the paper's protocol, one network for the conv and one for the fc parameters
    },
}

# The ablation of the improved recipe (examples/beyond_paper.py --ablations): each ingredient
# taken out in turn, everything else as it is, so that a comparison shows what it buys.
ABLATIONS = {
    "moments": "inputs: the paper's preprocessed gradient instead of the moments (the Adam "
               "output keeps the moments for its direction)",
    "adam-output": "output: the paper's 0.1 (w h + b) instead of the rescaled Adam step",
    "log-last": "objective: the paper's sum of f over every unroll instead of log f over the "
                "last tenth",
    "curriculum": "230 trajectories of 100 steps (validated on 200, as the first stage is) "
                  "instead of stages up to 1,000",
    "pairs": "one trajectory per meta-update instead of two",
}


def without(ingredient, recipe=None):
    """`recipe` (default: MNIST's improved one) with one of ABLATIONS taken out."""
    recipe = recipe or RECIPES["mnist"]["improved"]
    network, meta = recipe.network, recipe.meta
    if ingredient == "moments":
        network = replace(network, inputs="gradient")
    elif ingredient == "adam-output":
        network = replace(network, output="update")
    elif ingredient == "log-last":
        meta = replace(meta, objective="sum")
    elif ingredient == "curriculum":
        meta = replace(meta, curriculum=None, validation_steps=2 * meta.steps)
    elif ingredient == "pairs":
        meta = replace(meta, trajectories_per_update=1)
    else:
        raise ValueError(f"unknown ingredient {ingredient!r}; the improved recipe's are "
                         f"{list(ABLATIONS)}")
    return replace(recipe, network=network, meta=meta)


RECIPES["mnist"].update({f"improved-without-{name}": without(name) for name in ABLATIONS})

TASKS = {
    # 32 validation problems: tuned on 8, SGD chose lr 2.15 for seeds 1 and 2 and diverged on
    # 4 and 1 of their 100 test problems; on 32 it chose lr 1 (seeds 0-4) and never diverged.
    "quadratic": Task(make_family=_quadratic, recipes=RECIPES["quadratic"], tests=100,
                      tune_problems=32),
    "mnist": Task(make_family=_mnist(), recipes=RECIPES["mnist"], tests=100,
                  horizons=(100, 200)),
    # The generalisation tests of section 3.2 (figure 5): the optimizer trained on "mnist".
    "mnist-40": Task(make_family=_mnist(hidden=(40,)), recipes=RECIPES["mnist"],
                     trained_on="mnist"),
    "mnist-2layer": Task(make_family=_mnist(hidden=(20, 20)), recipes=RECIPES["mnist"],
                         trained_on="mnist"),
    "mnist-relu": Task(make_family=_mnist(activation="relu"), recipes=RECIPES["mnist"],
                       trained_on="mnist"),
    # Section 3.3: one network for the convolutional parameters, one for the fully connected.
    "cifar": Task(make_family=_cifar, recipes=RECIPES["cifar"], tests=20, networks=("conv", "fc"),
                  param_networks=lambda problem: problem.param_groups()),
}
