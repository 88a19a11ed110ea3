"""One training step of the paper's MNIST optimizee, minigrad against PyTorch.

The 784-20-10 sigmoid MLP (paper section 3.2) on a minibatch of 128 MNIST digits: forward,
cross-entropy, backward, one Adam step (lr 1e-3). minigrad uses `models.MLP` and
`optim.Adam`; PyTorch the same network written with torch.nn.Linear (weights copied from the
minigrad model, transposed to torch's (out, in) layout) and torch.optim.Adam, in this process,
float32, the same thread count, the same minibatches. The first step's loss and gradients are
compared before timing. The two take turns (10 turns of steps/10 steps each, two untimed steps
at the start of every turn), so load drift on a shared machine affects both alike; the medians
are printed, then the ratio.

    python benchmarks/mlp_step.py [--steps 200] [--threads 1]
"""
from _common import configure_threads

if __name__ == "__main__":
    configure_threads()       # before numpy is imported: the BLAS reads its thread count then

import argparse  # noqa: E402

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from _common import describe_threads, interleaved_times, load_torch, median, print_ratio  # noqa: E402
from models import MLP  # noqa: E402
from models.data import load_mnist  # noqa: E402
from optim import Adam  # noqa: E402

SIZES, BATCH, LR = (784, 20, 10), 128, 1e-3


def minibatches(images, labels, count, seed=0):
    rng = np.random.default_rng(seed)
    index = [rng.integers(0, len(labels), BATCH) for _ in range(count)]
    return [(np.ascontiguousarray(images[i]), labels[i]) for i in index]


def minigrad_step(model, optimizer):
    def step(images, labels):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(mg.Tensor(images)), labels)
        loss.backward()
        optimizer.step()
        return loss
    return step


def torch_model(torch, model):
    """The same MLP in torch.nn, with the minigrad model's weights."""
    layers = []
    for k, layer in enumerate(model.layers):
        linear = torch.nn.Linear(*layer.weight.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.weight.data.T.copy()))
            linear.bias.copy_(torch.from_numpy(layer.bias.data))
        layers.append(linear)
        if k < len(model.layers) - 1:
            layers.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)


def torch_step(torch, net, optimizer):
    def step(images, labels):
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(images)),
                                                 torch.from_numpy(labels))
        loss.backward()
        optimizer.step()
        return loss
    return step


def compare_first_step(torch, images, labels):
    """Loss and gradients of one step from identical weights: (loss difference, largest
    relative gradient difference)."""
    model = MLP(SIZES, rng=0)
    net = torch_model(torch, model)
    loss = F.cross_entropy(model(mg.Tensor(images)), labels)
    loss.backward()
    theirs = torch.nn.functional.cross_entropy(net(torch.from_numpy(images)),
                                               torch.from_numpy(labels))
    theirs.backward()
    ours = [p.grad for p in model.parameters()]
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    their_grads = [g for m in linears for g in (m.weight.grad.numpy().T, m.bias.grad.numpy())]
    difference = max(float(np.abs(t - o).max() / max(np.abs(o).max(), 1e-30))
                     for t, o in zip(their_grads, ours))
    return loss.item(), theirs.item(), difference


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per side (in 10 turns)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    args = parser.parse_args()
    torch = load_torch(args.threads)
    images, labels = load_mnist("train")
    batches = minibatches(images, labels, args.steps + 21)
    print(f"MLP {'-'.join(map(str, SIZES))} sigmoid, batch {BATCH}: forward, cross-entropy, "
          f"backward, Adam; float32")
    print(describe_threads(args.threads, torch))

    model = MLP(SIZES, rng=0)
    ours = minigrad_step(model, Adam(model.parameters(), lr=LR))
    queue = {"minigrad": iter(batches)}
    contenders = {"minigrad": lambda: ours(*next(queue["minigrad"]))}
    if torch is not None:
        value, theirs_value, difference = compare_first_step(torch, *batches[0])
        print(f"check: first-step loss minigrad {value:.7g}, torch {theirs_value:.7g}; gradients "
              f"max relative difference {difference:.1e}")
        net = torch_model(torch, model)
        theirs = torch_step(torch, net, torch.optim.Adam(net.parameters(), lr=LR))
        queue["torch"] = iter(batches)
        contenders["torch"] = lambda: theirs(*next(queue["torch"]))

    rounds = 10
    times = interleaved_times(contenders, rounds, per_round=args.steps // rounds, warmup=2)
    medians = {name: median(t) for name, t in times.items()}
    for name in times:
        print(f"{name}: {medians[name] * 1e6:.1f} us per step (median of {args.steps})")
    if torch is None:
        print("pytorch: not installed")
    print_ratio(medians["minigrad"], medians.get("torch"))


if __name__ == "__main__":
    main()
