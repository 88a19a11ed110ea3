"""Per-op overhead: forward + backward of a long chain of elementwise ops on tiny tensors.

On tiny tensors the arithmetic is nothing and the cost is all bookkeeping: creating result
objects, recording the graph, walking it back. This is what dominates meta-training on small
problems (the quadratic task). Prints microseconds per op for minigrad and, when PyTorch is
installed, for PyTorch eager on the identical chain in this same process, then the ratio.

    python benchmarks/overhead.py [--ops 3000] [--size 4] [--repeats 7]
"""
import argparse

import numpy as np

import minigrad as mg
from _common import load_torch, median_time, print_ratio


def chain(x, a, b, n_ops):
    """n_ops elementwise ops, cycling through mul, add, tanh, sub, sigmoid, div."""
    y = x
    for i in range(n_ops // 6):
        y = ((y * a + b).tanh() - a).sigmoid() / b
    return y.sum()


def run_minigrad(size, n_ops):
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal(size), requires_grad=True)
    a = mg.Tensor(rng.uniform(0.5, 1.0, size), requires_grad=True)
    b = mg.Tensor(rng.uniform(1.0, 2.0, size), requires_grad=True)

    def step():
        x.grad = a.grad = b.grad = None
        chain(x, a, b, n_ops).backward()
    return step


def run_torch(torch, size, n_ops):
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal(size), dtype=torch.float32, requires_grad=True)
    a = torch.tensor(rng.uniform(0.5, 1.0, size), dtype=torch.float32, requires_grad=True)
    b = torch.tensor(rng.uniform(1.0, 2.0, size), dtype=torch.float32, requires_grad=True)

    def step():
        x.grad = a.grad = b.grad = None
        chain(x, a, b, n_ops).backward()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=3000, help="ops in the chain (multiple of 6)")
    parser.add_argument("--size", type=int, default=4, help="elements per tensor")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n_ops = args.ops - args.ops % 6
    torch = load_torch(threads=1)

    ours = median_time(run_minigrad(args.size, n_ops), args.repeats) / n_ops
    print(f"chain of {n_ops} elementwise ops on tensors of {args.size} elements, forward + backward")
    print(f"minigrad: {ours * 1e6:.2f} us/op")
    theirs = None
    if torch is not None:
        theirs = median_time(run_torch(torch, args.size, n_ops), args.repeats) / n_ops
        print(f"pytorch {torch.__version__} eager: {theirs * 1e6:.2f} us/op")
    else:
        print("pytorch: not installed")
    print_ratio(ours, theirs)


if __name__ == "__main__":
    main()
