"""Train an MLP on MNIST with a classic optimizer, or with all of them for a comparison.

    python examples/mnist_mlp.py --optimizer adam
    python examples/mnist_mlp.py --optimizer all --epochs 10     # also plots the loss curves

The default network is the optimizee of the paper's MNIST experiment (section 3.2): one hidden
layer of 20 sigmoid units, minibatches of 128. Every optimizer starts from the same
initialisation and sees the same minibatches (both seeded). The data is full MNIST (60,000
training and 10,000 test digits), from the copy shipped with the project unless one is in the
data directory; see `models/data/`.
"""
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import minigrad as mg
import minigrad.functional as F
import optim
from minigrad.cli import ArgumentParser, UsageError, integer, output_folder, real, run_command
from minigrad.io import write_figure
from models import MLP
from models.data import Batches, DatasetError, load_mnist

# Default learning rates for the default network: from a search over 1e-3, 3e-3, ..., 1, 3
# (10 epochs on 4,000 of the training digits, judged by training loss), taking the smaller
# rate where two were close. Heavy ball and Nesterov at 0.1 take steps like SGD's at 1.0
# (1 / (1 - 0.9)).
PLOT = "mnist_mlp_losses.png"
OPTIMIZERS = {
    "sgd": (1.0, lambda params, lr: optim.SGD(params, lr=lr)),
    "momentum": (0.1, lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9)),
    "nesterov": (0.1, lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)),
    "adagrad": (0.1, lambda params, lr: optim.Adagrad(params, lr=lr)),
    "rmsprop": (1e-2, lambda params, lr: optim.RMSprop(params, lr=lr)),
    "adam": (1e-2, lambda params, lr: optim.Adam(params, lr=lr)),
    "adamw": (1e-2, lambda params, lr: optim.AdamW(params, lr=lr)),
}


def accuracy(model, images, labels):
    with mg.no_grad():
        logits = model(mg.Tensor(images)).data
    return float(np.mean(logits.argmax(axis=1) == labels))


def train(name, lr, args, train_set, test_set):
    """Train a fresh network with one optimizer; its minibatch losses, test accuracy, seconds."""
    model = MLP([784, *args.hidden, 10], activation=args.activation, rng=args.seed)
    opt = OPTIMIZERS[name][1](model.parameters(), lr)
    batches = Batches(train_set, args.batch_size, seed=args.seed)
    losses = []
    started = time.perf_counter()
    with tqdm(total=args.epochs * len(batches), desc=f"{name} lr={lr:g}", unit="step") as bar:
        for _ in range(args.epochs):
            for images, labels in batches:
                opt.zero_grad()
                loss = F.cross_entropy(model(mg.Tensor(images)), labels)
                loss.backward()
                opt.step()
                losses.append(loss.item())
                bar.update()
                bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    seconds = time.perf_counter() - started
    return np.array(losses), accuracy(model, *test_set), seconds


def plot(results, steps_per_epoch, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib, or "
              "pip install -e '.[plot]')")
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, (losses, test_accuracy, _) in results.items():
        window = min(steps_per_epoch, len(losses))
        smoothed = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, len(losses) + 1), smoothed,
                label=f"{name} (test accuracy {test_accuracy:.1%})")
    ax.set(xlabel="step", ylabel=f"training loss (mean over {steps_per_epoch} steps)",
           yscale="log", title="MLP on MNIST: training loss per optimizer")
    ax.legend()
    fig.tight_layout()
    path = out / PLOT
    write_figure(path, fig, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", choices=[*OPTIMIZERS, "all"], default="adam",
                        help="the optimizer, or all of them one after the other (default adam)")
    parser.add_argument("--lr", type=real(0, low_open=True), default=None,
                        help="learning rate (default: a rate tuned for each optimizer)")
    parser.add_argument("--epochs", type=integer(1), default=10,
                        help="passes over the 60,000 training digits (default 10)")
    parser.add_argument("--batch-size", type=integer(0), default=128,
                        help="minibatch size; 0 for the whole training set each step")
    parser.add_argument("--hidden", type=integer(1), nargs="*", default=[20],
                        help="hidden layer widths (default: one layer of 20)")
    parser.add_argument("--activation", default="sigmoid", choices=["sigmoid", "relu", "tanh"],
                        help="the hidden layers' activation (default sigmoid)")
    parser.add_argument("--seed", type=integer(0), default=0,
                        help="seeds the initialisation and the minibatch order (default 0)")
    parser.add_argument("--out", type=Path, default=Path("runs/mnist_mlp"),
                        help="folder for the plot OUT/mnist_mlp_losses.png (with --optimizer all)")
    parser.add_argument("--force", action="store_true", help="replace a plot already in OUT")
    args = parser.parse_args(argv)
    args.batch_size = args.batch_size or None
    if args.optimizer == "all":
        output_folder(args.out)
        if (args.out / PLOT).exists() and not args.force:
            raise UsageError(f"{args.out / PLOT} exists: add --force to replace it, or choose "
                             f"another --out")

    train_set, test_set = load_mnist("train"), load_mnist("test")
    print(f"MNIST: {len(train_set[0])} training and {len(test_set[0])} test images; "
          f"MLP {[784, *args.hidden, 10]} {args.activation}, batch size "
          f"{args.batch_size or 'all'}, {args.epochs} epochs")
    names = list(OPTIMIZERS) if args.optimizer == "all" else [args.optimizer]
    results = {}
    for name in names:
        lr = args.lr if args.lr is not None else OPTIMIZERS[name][0]
        results[name] = train(name, lr, args, train_set, test_set)

    print(f"\n| {'optimizer':9s} | {'lr':>6s} | {'last-epoch loss':>16s} | "
          f"{'test accuracy':>13s} | {'time':>6s} |")
    print(f"|{'-' * 11}|{'-' * 8}|{'-' * 18}|{'-' * 15}|{'-' * 8}|")
    steps_per_epoch = len(Batches(len(train_set[0]), args.batch_size))
    for name, (losses, test_accuracy, seconds) in results.items():
        lr = args.lr if args.lr is not None else OPTIMIZERS[name][0]
        print(f"| {name:9s} | {lr:6g} | {losses[-steps_per_epoch:].mean():16.4f} | "
              f"{test_accuracy:13.1%} | {seconds:5.1f}s |")
    if len(results) > 1:
        saved = plot(results, steps_per_epoch, args.out)
        if saved is not None:
            print(f"\nplot: {saved}")


if __name__ == "__main__":
    run_command(main, report=(UsageError, DatasetError))
