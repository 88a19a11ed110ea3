"""Train `models.LSTM` to recall, at every step, the symbol it saw `delay` steps earlier.

    python examples/lstm_sequence.py [--steps 600] [--delay 5] [--seed 0]

Each sequence is `length` symbols drawn uniformly from `symbols` choices, fed one-hot. At step
t >= delay the target is the input of step t − delay, so the network must hold the last
`delay` symbols in its state (a delayed copy task). Chance accuracy is 1 / symbols; after
training it should be near 100%. Trained with optim.Adam on fresh random batches; the loss and
accuracy are measured on a fixed held-out set before and after.
"""
import time

import numpy as np
from tqdm import tqdm

import minigrad as mg
import minigrad.functional as F
import optim
from minigrad import nn
from minigrad.cli import ArgumentParser, integer, real, run_command
from models import LSTM


class DelayedRecall(nn.Module):
    """LSTM over one-hot symbols, then a linear readout of each step's hidden state."""

    def __init__(self, symbols, hidden, rng):
        self.symbols = symbols
        self.lstm = LSTM(symbols, hidden, rng=rng)
        self.readout = nn.Linear(hidden, symbols, rng=rng)

    def forward(self, sequence):
        """sequence: (T, B) integer symbols -> logits (T, B, symbols)."""
        one_hot = mg.Tensor(np.eye(self.symbols, dtype=np.float32)[sequence])
        outputs, _ = self.lstm(one_hot)
        steps, batch, hidden = outputs.shape
        return self.readout(outputs.reshape(steps * batch, hidden)).reshape(steps, batch, -1)


def sample_batch(rng, batch, length, symbols):
    return rng.integers(0, symbols, (length, batch))


def loss_and_accuracy(model, sequence, delay):
    """Cross-entropy and accuracy over the steps that have a target (t >= delay)."""
    logits = model(sequence)[delay:]
    targets = sequence[:-delay]
    steps, batch, symbols = logits.shape
    flat_logits, flat_targets = logits.reshape(steps * batch, symbols), targets.reshape(-1)
    accuracy = float((flat_logits.data.argmax(axis=1) == flat_targets).mean())
    return F.cross_entropy(flat_logits, flat_targets), accuracy


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=integer(1), default=600,
                        help="training steps (batches; default 600)")
    parser.add_argument("--delay", type=integer(1), default=5,
                        help="how many steps back to recall, less than --length (default 5)")
    parser.add_argument("--length", type=integer(2), default=20,
                        help="sequence length (default 20)")
    parser.add_argument("--symbols", type=integer(2), default=8, help="alphabet size (default 8)")
    parser.add_argument("--hidden", type=integer(1), default=64,
                        help="LSTM hidden units (default 64)")
    parser.add_argument("--batch", type=integer(1), default=32,
                        help="sequences per batch (default 32)")
    parser.add_argument("--lr", type=real(0, low_open=True), default=1e-2,
                        help="Adam learning rate (default 0.01)")
    parser.add_argument("--seed", type=integer(0), default=0,
                        help="seeds the model and the sequences (default 0)")
    args = parser.parse_args(argv)
    if not args.delay < args.length:
        parser.error(f"argument --delay: expected less than --length ({args.length}), "
                     f"got {args.delay}")

    rng = np.random.default_rng(args.seed)
    model = DelayedRecall(args.symbols, args.hidden, rng)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    held_out = sample_batch(rng, 512, args.length, args.symbols)

    def evaluate():
        with mg.no_grad():
            loss, accuracy = loss_and_accuracy(model, held_out, args.delay)
        return float(loss.data), accuracy

    print(f"task: recall the symbol seen {args.delay} steps ago; {args.symbols} symbols, "
          f"sequences of {args.length}, chance accuracy {1 / args.symbols:.1%}")
    loss, accuracy = evaluate()
    print(f"before training: held-out loss {loss:.4f}, accuracy {accuracy:.1%}")

    start = time.perf_counter()
    progress = tqdm(range(args.steps), desc="training", unit="batch")
    for _ in progress:
        sequence = sample_batch(rng, args.batch, args.length, args.symbols)
        loss, accuracy = loss_and_accuracy(model, sequence, args.delay)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        progress.set_postfix(loss=f"{float(loss.data):.3f}", acc=f"{accuracy:.0%}")
    elapsed = time.perf_counter() - start

    loss, accuracy = evaluate()
    print(f"after {args.steps} steps ({elapsed:.1f} s): held-out loss {loss:.4f}, "
          f"accuracy {accuracy:.1%}")


if __name__ == "__main__":
    run_command(main)
