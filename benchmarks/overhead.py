"""Per-op overhead: forward + backward of a long chain of elementwise ops on tiny tensors.

On tiny tensors the arithmetic is nothing and the cost is all bookkeeping: creating result
objects, recording the graph, walking it back. This is what dominates meta-training on small
problems (the quadratic task). Prints microseconds per op for minigrad and, when PyTorch is
installed, for PyTorch eager on the identical chain in this same process, then the ratio.
The two take turns (three turns each, one untimed chain at the start of every turn), so load
drift on a shared machine affects them alike.

    python benchmarks/overhead.py [--ops 3000] [--size 4] [--repeats 12] [--threads 1]
"""
from _common import configure_threads

if __name__ == "__main__":
    configure_threads()       # before numpy is imported: the BLAS reads its thread count then

import argparse  # noqa: E402

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from _common import describe_threads, interleaved_times, load_torch, median, print_ratio  # noqa: E402


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
    parser.add_argument("--repeats", type=int, default=12, help="timed chains per side (in 3 turns)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    args = parser.parse_args()
    n_ops = args.ops - args.ops % 6
    torch = load_torch(args.threads)

    print(f"chain of {n_ops} elementwise ops on tensors of {args.size} elements, forward + backward")
    print(describe_threads(args.threads, torch))
    contenders = {"minigrad": run_minigrad(args.size, n_ops)}
    if torch is not None:
        contenders["torch"] = run_torch(torch, args.size, n_ops)
    rounds = 3
    times = interleaved_times(contenders, rounds, per_round=-(-args.repeats // rounds), warmup=1)
    ours = median(times["minigrad"]) / n_ops
    print(f"minigrad: {ours * 1e6:.2f} us/op (median of {len(times['minigrad'])} chains)")
    theirs = None
    if torch is not None:
        theirs = median(times["torch"]) / n_ops
        print(f"pytorch {torch.__version__} eager: {theirs * 1e6:.2f} us/op")
    else:
        print("pytorch: not installed")
    print_ratio(ours, theirs)


if __name__ == "__main__":
    main()
