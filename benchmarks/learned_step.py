"""The learned optimizer used as a plain optimizer: one `LearnedOptimizer.step`, minigrad against
PyTorch.

The shipped "mnist-paper" optimizer (`LearnedOptimizer(params, "mnist-paper")`, the paper's
network: two LSTM layers of 20 units, preprocessing with p = 10, output scale 0.1) on the paper's
MNIST net, the 784-20-10 sigmoid MLP
(15,910 coordinates): the step that the 1,000- and 10,000-step comparisons take at every step,
with no graph. The gradients are fixed: one real backward of the MLP on one minibatch of 128
digits, left in every parameter's .grad; each step moves the parameters and carries the LSTM
state to the next.

PyTorch takes the same step eagerly under torch.no_grad(), in this process, float32, the same
thread count: the parameters' .grad joined into one vector, the same preprocessing, the two
cells and the output layer with the shipped weights (meta_trajectory.TorchNetwork, in its two
forms, torch.nn.LSTMCell and the cell written out; the ratio is taken against the faster), the
LSTM state carried, and each parameter's piece of the update added in place. Before timing,
both take two steps from zero parameters with these gradients, so that the parameters are the
updates summed, and the parameters and the LSTM state are compared (`check:`).

The contenders take turns (40 turns of steps/40 steps each, two untimed steps at the start of
every turn), so load drift on a shared machine affects them alike; the medians are printed.
In the same turns, the parts of minigrad's step are timed alone on the same inputs (the
preprocessing, each cell under no_grad), and the rest is the step's median minus theirs.

    python benchmarks/learned_step.py [--steps 200] [--threads 1]
"""
from _common import configure_threads

if __name__ == "__main__":
    configure_threads()       # before numpy is imported: the BLAS reads its thread count then

import argparse  # noqa: E402

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from _common import describe_threads, interleaved_times, load_torch, median, print_ratio  # noqa: E402
from meta_trajectory import TorchNetwork  # noqa: E402
from models.problems import MNISTFamily, draw_problems  # noqa: E402
from optim.learned import LearnedOptimizer  # noqa: E402
from optim.learned.features import preprocess_gradients  # noqa: E402

SHIPPED = "mnist-paper"


def minigrad_parameters(arrays, grads):
    """Leaf tensors holding `arrays` (copied), with `grads` as their .grad."""
    params = [mg.Tensor(a.copy(), requires_grad=True, dtype=a.dtype) for a in arrays]
    for p, g in zip(params, grads):
        p.grad = g
    return params


class TorchLearnedStep:
    """LearnedOptimizer.step in torch, for one network updating every parameter: torch
    tensors `params` (with .grad set), the network `net`'s weights, in the given cell form."""

    def __init__(self, torch, net, params, cell):
        self.torch, self.params = torch, params
        self.net = TorchNetwork(torch, net, cell)
        self.state = self.net.initial_state(sum(p.numel() for p in params))

    def step(self):
        with self.torch.no_grad():
            grad = self.torch.cat([p.grad.view(-1) for p in self.params])
            update, self.state = self.net(grad, self.state)
            offset = 0
            for p in self.params:
                p.add_(update[offset:offset + p.numel()].view_as(p))
                offset += p.numel()


def torch_parameters(torch, arrays, grads):
    """Torch tensors holding `arrays` (copied), with `grads` as their .grad."""
    params = [torch.tensor(a) for a in arrays]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    return params


def compare_steps(torch, net, grads, cell, steps=2):
    """`steps` steps of both from zero parameters with the same gradients: the largest, over the
    steps, relative difference max|theirs - ours| / max|ours| of the parameters (the updates
    summed) and of the LSTM state (every layer's h and c)."""
    zeros = [np.zeros_like(g) for g in grads]
    our_params = minigrad_parameters(zeros, grads)
    ours = LearnedOptimizer(our_params, SHIPPED)
    theirs = TorchLearnedStep(torch, net, torch_parameters(torch, zeros, grads), cell)

    def relative(t, o):
        return float(np.abs(t - o).max() / max(np.abs(o).max(), 1e-30))
    param_difference = state_difference = 0.0
    for _ in range(steps):
        ours.step()
        theirs.step()
        param_difference = max([param_difference] + [
            relative(t.numpy(), o.data) for t, o in zip(theirs.params, our_params)])
        state_difference = max([state_difference] + [
            relative(t.numpy(), o.data) for their_pair, our_pair in zip(theirs.state,
                                                                        ours.state["all"])
            for t, o in zip(their_pair, our_pair)])
    return param_difference, state_difference


def step_parts(optimizer, grads):
    """Functions running the parts of minigrad's step alone, at its shapes and layouts: the
    preprocessing of the joined gradient, and each cell under no_grad on the current state."""
    net = optimizer.networks["all"]
    grad = np.concatenate([g.reshape(-1) for g in grads])
    x = mg.Tensor(preprocess_gradients(grad, net.config.preprocess_p), dtype=net.dtype)
    (h1, c1), (h2, c2) = optimizer.state["all"]
    first, second = net.cells

    def cell(x, h, c, layer):
        def run():
            with mg.no_grad():
                F.lstm_cell(x, h, c, layer.weight, layer.bias)
        return run
    return {"preprocessing": lambda: preprocess_gradients(grad, net.config.preprocess_p),
            "cell 1": cell(x, h1, c1, first), "cell 2": cell(h1, h2, c2, second)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per side (in 40 turns)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    args = parser.parse_args()
    torch = load_torch(args.threads)
    problem, theta0 = draw_problems(MNISTFamily(), np.random.default_rng(0), 1)[0]
    params = minigrad_parameters(theta0, [None] * len(theta0))
    problem.loss(params, 0).backward()
    grads = [p.grad for p in params]
    optimizer = LearnedOptimizer(params, SHIPPED)
    net = optimizer.networks["all"]
    print(f"LearnedOptimizer(params, {SHIPPED!r}).step, no graph: LSTM {net.config.layers}, "
          f"preprocess p = {net.config.preprocess_p}, output scale {net.config.output_scale}, on "
          f"the MLP {'-'.join(map(str, problem.sizes))} ({problem.n_coords} coordinates), "
          f"fixed gradients from one minibatch of {problem.batch_size}; float32")
    print(describe_threads(args.threads, torch))

    rounds = 40
    for _ in range(20):                # the state of a run in progress, not the zero one
        optimizer.step()
    contenders = {"minigrad": optimizer.step}
    if torch is not None:
        for cell in ("lstmcell", "manual"):
            params_difference, state_difference = compare_steps(torch, net, grads, cell)
            print(f"check (torch-{cell}): two steps from zero parameters: parameters max "
                  f"relative difference {params_difference:.1e}, LSTM state "
                  f"{state_difference:.1e}")
            twin = TorchLearnedStep(torch, net, torch_parameters(torch, theta0, grads), cell)
            contenders[f"torch-{cell}"] = twin.step
    parts = step_parts(optimizer, grads)
    contenders.update(parts)

    times = interleaved_times(contenders, rounds, per_round=max(args.steps // rounds, 1), warmup=2)
    medians = {name: median(t) for name, t in times.items()}
    for name in contenders:
        if name not in parts:
            print(f"{name}: {medians[name] * 1e3:.2f} ms per step (median of {len(times[name])})")
    rest = medians["minigrad"] - sum(medians[name] for name in parts)
    split = ", ".join(f"{name} {medians[name] * 1e3:.2f} ms" for name in parts)
    print(f"minigrad's step, its parts timed alone: {split}; the rest (the step's median minus "
          f"these) {rest * 1e3:.2f} ms")
    theirs = None
    if torch is not None:
        fastest = min(("torch-lstmcell", "torch-manual"), key=medians.get)
        theirs = medians[fastest]
        print(f"minigrad {medians['minigrad'] * 1e3:.2f} ms, pytorch {torch.__version__} eager "
              f"({fastest}) {theirs * 1e3:.2f} ms")
    else:
        print("pytorch: not installed")
    print_ratio(medians["minigrad"], theirs)


if __name__ == "__main__":
    main()
