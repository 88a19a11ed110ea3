"""Optimizee families: the functions f the learned optimizer is trained and tested on.

The paper (section 3) trains an optimizer on functions drawn at random from a family and tests
it on fresh draws. Here a *family* draws *problems*:

    family = MNISTFamily()                       # or QuadraticFamily(), CIFARFamily(), ...
    problem = family.sample(rng)                 # one f, fixed by rng
    theta = problem.init_params(rng)             # θ_0: list of float32 arrays
    loss = problem.loss(tensors, step)           # f(θ) on step t's minibatch: a scalar Tensor

`loss` builds its graph from the tensors it is given, so the learned optimizer can pass θ_t
tensors that depend on its own weights φ and backpropagate the meta-loss through f(θ_t).

Determinism: the loss of a problem at step t is a fixed function of θ. Stochastic problems draw
step t's minibatch from `np.random.default_rng([problem.seed, t])`, so f(θ_t) and ∇_t see the
same minibatch, and a run repeats exactly whatever else was called in between.

Families (paper sections 3.1-3.3; docs/paper.md lists where the official code differs):
- QuadraticFamily: f(θ) = ||Wθ − y||², a batch of such functions run side by side.
- MNISTFamily: cross-entropy of an MLP on MNIST minibatches (the base net and its variants).
- ImageFamily / CIFARFamily: cross-entropy of the small convnet of section 3.3.
"""
import numpy as np

import minigrad as mg
import minigrad.functional as F

from .convnet import ConvNet
from .data import load_cifar10, load_mnist
from .mlp import activation_function, mlp_logits, mlp_shapes


def _generator(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _new_seed(rng):
    """A problem's own seed, drawn from the family's generator."""
    return int(_generator(rng).integers(2 ** 63))


def draw_problems(family, rng, count):
    """`count` pairs (problem, theta_0) drawn from `family` with `rng`, one after another."""
    pairs = []
    for _ in range(count):
        problem = family.sample(rng)
        pairs.append((problem, problem.init_params(rng)))
    return pairs


class Problem:
    """One optimizee f(θ). Subclasses set `name`, `param_shapes`, `dtype`, `seed` and define
    `init_params` and `loss`.

    θ is a list of tensors, one per entry of `param_shapes`.
    """

    name = "problem"
    param_shapes = ()
    dtype = np.dtype(np.float32)
    seed = 0

    def init_params(self, rng):
        """θ_0: a list of arrays of `param_shapes`, drawn from rng (a Generator or a seed)."""
        raise NotImplementedError

    def loss(self, params, step=0):
        """f(θ) at `step` as a scalar Tensor; `params` is a list of tensors of `param_shapes`."""
        raise NotImplementedError

    @property
    def n_coords(self):
        """The number of scalar parameters: the coordinates the learned optimizer updates."""
        return int(sum(np.prod(shape, dtype=np.int64) for shape in self.param_shapes))

    def loss_value(self, arrays, step=0):
        """f(θ) as a float, from arrays, without recording a graph."""
        with mg.no_grad():
            return float(self.loss([mg.Tensor(a, dtype=self.dtype) for a in arrays], step).data)

    def loss_and_grad(self, arrays, step=0):
        """(f(θ) as a float, [∇f(θ) as arrays]) from arrays θ."""
        params = [mg.Tensor(a, requires_grad=True, dtype=self.dtype) for a in arrays]
        loss = self.loss(params, step)
        return float(loss.data), mg.grad(loss, params)

    def _check(self, params):
        """Cheap check that `params` fits `param_shapes` (shapes only, never the values)."""
        if len(params) != len(self.param_shapes) or any(
                p.shape != shape for p, shape in zip(params, self.param_shapes)):
            raise ValueError(f"{self.name}: expected parameters of shapes "
                             f"{list(self.param_shapes)}, got {[tuple(p.shape) for p in params]}")

    def __repr__(self):
        return f"<{self.name} seed={self.seed}, {self.n_coords} coordinates>"


def _normal_arrays(rng, shapes, scale, dtype):
    rng = _generator(rng)
    return [(scale * rng.standard_normal(shape)).astype(dtype) for shape in shapes]


# ----- quadratics (section 3.1) -----
class QuadraticProblem(Problem):
    """`batch` independent quadratics f_i(θ_i) = ||W_i θ_i − y_i||², optimised side by side.

    θ: one tensor of shape (batch, dim). W: (batch, dim, dim); y: (batch, dim).
    loss = mean over i of f_i(θ_i) (the official code's batch mean). The loss does not depend
    on the step: the function is deterministic.
    """

    def __init__(self, W, y, init_scale=0.01, seed=0, name="quadratic"):
        W, y = np.asarray(W), np.asarray(y)
        if W.ndim != 3 or W.shape[1] != W.shape[2] or y.shape != W.shape[:2]:
            raise ValueError(f"QuadraticProblem: expected W (batch, dim, dim) and y (batch, dim), "
                             f"got W {W.shape} and y {y.shape}")
        self.W, self.y = W, y
        self.dtype = W.dtype
        self._W, self._y = mg.Tensor(W, dtype=W.dtype), mg.Tensor(y, dtype=y.dtype)
        self.init_scale = init_scale
        self.param_shapes = [y.shape]
        self.seed, self.name = seed, name

    def init_params(self, rng):
        """θ_0 ~ N(0, init_scale²) per coordinate (official code: 0.01)."""
        return _normal_arrays(rng, self.param_shapes, self.init_scale, self.dtype)

    def loss(self, params, step=0):
        self._check(params)
        theta = params[0]
        batch, dim = self.param_shapes[0]
        residual = (self._W @ theta.reshape(batch, dim, 1)).reshape(batch, dim) - self._y
        return (residual * residual).sum(axis=1).mean()


class QuadraticFamily:
    """Random quadratics f(θ) = ||Wθ − y||² (paper section 3.1), `batch` of them per problem.

    distribution: "gaussian", W and y IID N(0, 1) (the paper's text), or "uniform", IID U[0, 1)
    (the official code). θ_0 ~ N(0, init_scale²). dtype float32, or float64 for gradient checks.
    """

    DISTRIBUTIONS = ("gaussian", "uniform")

    def __init__(self, dim=10, batch=128, distribution="gaussian", init_scale=0.01,
                 dtype=np.float32):
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(f"QuadraticFamily: unknown distribution {distribution!r}; expected "
                             f"one of {self.DISTRIBUTIONS}")
        if dim < 1 or batch < 1:
            raise ValueError(f"QuadraticFamily: dim and batch must be positive, got dim={dim}, "
                             f"batch={batch}")
        self.dim, self.batch, self.distribution = int(dim), int(batch), distribution
        self.init_scale, self.dtype = init_scale, np.dtype(dtype)

    def sample(self, rng):
        """A QuadraticProblem whose W and y are drawn from rng (a Generator or a seed)."""
        rng = _generator(rng)
        seed = _new_seed(rng)
        draw = np.random.default_rng(seed)
        shape_W, shape_y = (self.batch, self.dim, self.dim), (self.batch, self.dim)
        if self.distribution == "gaussian":
            W, y = draw.standard_normal(shape_W), draw.standard_normal(shape_y)
        else:
            W, y = draw.random(shape_W), draw.random(shape_y)
        return QuadraticProblem(W.astype(self.dtype), y.astype(self.dtype), self.init_scale,
                                seed=seed, name=f"quadratic(dim={self.dim}, batch={self.batch}, "
                                                f"{self.distribution})")

    def __repr__(self):
        return (f"QuadraticFamily(dim={self.dim}, batch={self.batch}, "
                f"distribution={self.distribution!r}, init_scale={self.init_scale})")


# ----- classifiers on minibatches (sections 3.2, 3.3) -----
class _MinibatchProblem(Problem):
    """Cross-entropy of a classifier on minibatches of `batch_size` examples drawn with
    replacement (as the official code does); step t's batch comes from
    default_rng([seed, t]). Subclasses define `logits(params, x)` and `init_params`."""

    def __init__(self, images, labels, batch_size, seed, name):
        self.images, self.labels = images, labels
        self.batch_size, self.seed, self.name = batch_size, seed, name
        self.dtype = images.dtype

    def batch_indices(self, step):
        """Indices into the data of step `step`'s minibatch."""
        return np.random.default_rng([self.seed, step]).integers(0, len(self.labels),
                                                                   self.batch_size)

    def loss(self, params, step=0):
        self._check(params)
        index = self.batch_indices(step)
        x = mg.Tensor(self.images[index], dtype=self.dtype)
        return F.cross_entropy(self.logits(params, x), self.labels[index])

    def logits(self, params, x):
        raise NotImplementedError


def _as_data(data, dtype, who):
    """(images, labels) as contiguous arrays of `dtype` and int64, converted once."""
    images, labels = data
    images = np.ascontiguousarray(images, dtype=dtype)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    if len(images) != len(labels) or labels.ndim != 1 or not len(labels):
        raise ValueError(f"{who}: expected non-empty images (N, ...) and labels (N,), got "
                         f"images {images.shape} and labels {labels.shape}")
    return images, labels


class MLPProblem(_MinibatchProblem):
    """An MLP classifier's cross-entropy on minibatches; parameters [W1, b1, W2, b2, ...]."""

    def __init__(self, images, labels, sizes, activation, batch_size, init_scale, seed, name):
        super().__init__(images, labels, batch_size, seed, name)
        self.sizes, self.activation = sizes, activation
        self._act = activation_function(activation)
        self.init_scale = init_scale
        self.param_shapes = mlp_shapes(sizes)

    def init_params(self, rng):
        """Weights and biases N(0, init_scale²) (official code: 0.01)."""
        return _normal_arrays(rng, self.param_shapes, self.init_scale, self.dtype)

    def logits(self, params, x):
        return mlp_logits(params, x, self._act)


class MNISTFamily:
    """An MLP on MNIST (paper section 3.2): cross-entropy on minibatches of `batch_size`.

    The base net is one hidden layer of 20 sigmoid units, 784 → 20 → 10 (15,910 coordinates);
    the generalisation tests vary it: hidden=(40,), hidden=(20, 20), activation="relu".
    Problems differ only in θ_0 and the minibatch sequence (each gets its own seed).

    split: "train" for meta-training, "test" for evaluation (disjoint digits); loaded once, by
    `load_mnist(split)`, unless `data=(images (N, 784), labels (N,))` is given (for
    example Fashion-MNIST, or a few examples for a gradient check); num_classes is the
    output width.
    subset: if set, each problem draws its minibatches from its own `subset` digits, chosen
    without replacement from the split (a smaller dataset per problem; the paper uses all).
    """

    def __init__(self, hidden=(20,), activation="sigmoid", batch_size=128, split="train",
                 init_scale=0.01, data=None, num_classes=10, dtype=np.float32, subset=None):
        activation_function(activation)
        self.hidden = tuple(int(h) for h in hidden)
        self.activation, self.batch_size, self.split = activation, int(batch_size), split
        self.init_scale, self.dtype = init_scale, np.dtype(dtype)
        if data is None:
            data = load_mnist(split)
        self.images, self.labels = _as_data(data, self.dtype, "MNISTFamily")
        if self.images.ndim != 2:
            raise ValueError(f"MNISTFamily: expected flat images (N, features), got "
                             f"{self.images.shape}")
        self.sizes = (self.images.shape[1], *self.hidden, int(num_classes))
        if subset is not None and not 0 < subset <= len(self.labels):
            raise ValueError(f"MNISTFamily: subset must be between 1 and the {len(self.labels)} "
                             f"digits of the {split!r} split, got {subset}")
        self.subset = subset

    def sample(self, rng):
        """An MLPProblem with its own seed (θ_0 and minibatches) drawn from rng, and with
        `subset`, its own digits."""
        rng = _generator(rng)
        seed = _new_seed(rng)
        images, labels = self.images, self.labels
        if self.subset is not None:
            index = rng.choice(len(labels), self.subset, replace=False)
            images, labels = images[index], labels[index]
        return MLPProblem(images, labels, self.sizes, self.activation, self.batch_size,
                          self.init_scale, seed, self._name())

    def _name(self):
        hidden = "-".join(map(str, self.hidden)) or "linear"
        digits = f", {self.subset} digits" if self.subset is not None else ""
        return f"mnist-mlp({hidden}, {self.activation}, {self.split}{digits})"

    def __repr__(self):
        subset = f", subset={self.subset}" if self.subset is not None else ""
        return (f"MNISTFamily(hidden={self.hidden}, activation={self.activation!r}, "
                f"batch_size={self.batch_size}, split={self.split!r}, n={len(self.labels)}"
                f"{subset})")


class ConvNetProblem(_MinibatchProblem):
    """A convnet classifier's cross-entropy on minibatches; parameters in the order of
    `ConvNet.parameters()`. Batch norm, if on, always normalises with the minibatch's own
    statistics (no running averages), so the loss depends on θ and the step only."""

    def __init__(self, images, labels, net, batch_size, init_scale, seed, name):
        super().__init__(images, labels, batch_size, seed, name)
        self.net, self.init_scale = net, init_scale
        self.param_shapes = [p.shape for p in net.parameters()]

    def init_params(self, rng):
        """Weights and biases N(0, init_scale²) (official code: 0.01), batch norm scale 1 and
        shift 0."""
        return self.net.init_arrays(rng, self.init_scale)

    def param_groups(self):
        """{parameter index: "conv" or "fc"}: the paper (section 3.3) gives the convolutional
        and the fully connected parameters a coordinatewise LSTM each; batch norm scales and
        shifts go with their conv layer."""
        return dict(enumerate(self.net.param_kinds()))

    def logits(self, params, x):
        return self.net.forward_with(params, x)


class ImageFamily:
    """The convnet of paper section 3.3 on any labelled images (N, C, H, W): 3 conv layers
    (5x5, padding 2, each followed by [batch norm,] ReLU and 2x2 max-pooling), a fully
    connected layer of 32 ReLU units, and the output layer.

    data: (images (N, C, H, W), labels (N,)). classes: keep only these labels, renumbered
    0..k-1 in the order given (the paper's CIFAR-2 / CIFAR-5 subsets); default all.
    conv_channels, hidden, batch_norm: the architecture (official code: (16, 16, 16), (32,),
    batch norm on). num_classes: the output width; default the number of labels.
    """

    def __init__(self, data, conv_channels=(16, 16, 16), hidden=(32,), batch_norm=True,
                 batch_size=128, init_scale=0.01, classes=None, num_classes=None,
                 dtype=np.float32, name="images"):
        images, labels = _as_data(data, dtype, type(self).__name__)
        if images.ndim != 4:
            raise ValueError(f"{type(self).__name__}: expected images of shape (N, C, H, W), got "
                             f"{images.shape}")
        if classes is not None:
            classes = [int(c) for c in classes]
            absent = sorted(set(classes) - set(np.unique(labels).tolist()))
            if absent or len(set(classes)) != len(classes):
                raise ValueError(f"{type(self).__name__}: classes must be distinct labels present "
                                 f"in the data; got {classes} (absent: {absent})")
            keep = np.isin(labels, classes)
            renumber = np.zeros(labels.max() + 1, np.int64)
            renumber[classes] = np.arange(len(classes))
            images, labels = np.ascontiguousarray(images[keep]), renumber[labels[keep]]
            name = f"{name}{classes}"
        self.images, self.labels = images, labels
        self.classes, self.name = classes, name
        if num_classes is None:
            num_classes = len(classes) if classes is not None else int(labels.max()) + 1
        self.batch_size, self.init_scale, self.dtype = int(batch_size), init_scale, np.dtype(dtype)
        self.net = ConvNet(in_channels=images.shape[1], channels=conv_channels, hidden=hidden,
                           num_classes=num_classes, image_size=images.shape[2:],
                           batch_norm=batch_norm, track_running_stats=False, rng=0,
                           dtype=self.dtype)

    def sample(self, rng):
        """A ConvNetProblem with its own seed (θ_0 and minibatches) drawn from rng."""
        return ConvNetProblem(self.images, self.labels, self.net, self.batch_size,
                              self.init_scale, _new_seed(rng), f"{self.name}-convnet")

    def __repr__(self):
        net = self.net
        return (f"{type(self).__name__}({self.name!r}, n={len(self.labels)}, "
                f"channels={net.channels}, hidden={net.hidden}, batch_norm={net.batch_norm}, "
                f"batch_size={self.batch_size})")


class CIFARFamily(ImageFamily):
    """The paper's CIFAR-10 optimizee (section 3.3): ImageFamily on `load_cifar10(split)`.

    Raises the loader's DatasetError, which says where to put the files, when CIFAR-10 is absent.
    """

    def __init__(self, split="train", data_dir=None, download=False, **kwargs):
        self.split = split
        super().__init__(load_cifar10(split, data_dir=data_dir, download=download),
                         name=f"cifar10-{split}", **kwargs)


class JointProblem:
    """Several problems optimised side by side as one: their parameters joined into one list,
    the loss the mean of theirs. A trajectory on it meta-trains on all of them at once
    (MetaConfig.problems_per_update). Each problem's gradient, the network's input, is 1/K of
    what it would be alone; its meta-gradient is the sum of K separate ones on f_k / K."""

    def __init__(self, problems):
        self.problems = list(problems)
        self.counts = [len(p.param_shapes) for p in self.problems]
        self.name = f"{len(self.problems)} x {self.problems[0].name}"

    def loss(self, params, step=0):
        if len(params) != sum(self.counts):
            raise ValueError(f"{self.name}: expected {sum(self.counts)} parameters, got "
                             f"{len(params)}")
        total, start = None, 0
        for problem, count in zip(self.problems, self.counts):
            loss = problem.loss(params[start:start + count], step)
            total = loss if total is None else total + loss
            start += count
        return total * (1.0 / len(self.problems))

    def assign(self, assign):
        """One problem's {param index: network name}, repeated for each problem."""
        joint, start = {}, 0
        for count in self.counts:
            joint.update({start + i: name for i, name in (assign or {}).items()})
            start += count
        return joint
