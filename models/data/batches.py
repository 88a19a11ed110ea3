"""Batch, stochastic and mini-batch gradient descent are one argument apart: the batch size.

    for x, y in Batches((images, labels), batch_size=None):   # batch: the whole set each step
    for x, y in Batches((images, labels), batch_size=1):      # stochastic: one example a step
    for x, y in Batches((images, labels), batch_size=128):    # mini-batch: 128 examples a step
"""
import numbers

import numpy as np


class Batches:
    """Mini-batches of a data set, one epoch per iteration, in a seeded random order.

    data: an int n (batches are index arrays into range(n)), an array (batches are arrays
        of its rows), or a tuple/list of arrays with the same first dimension (batches are
        tuples of row blocks, e.g. (images, labels)).
    batch_size: None for the whole set in one batch, 1 for single examples, k for k rows.
    shuffle: every epoch (every iteration, also within `forever()`) is a new permutation
        drawn from one generator, seeded by `seed` once, when the Batches is made. So each
        epoch has its own order, and the same seed gives the same sequence of epochs: epoch
        k of two Batches made with the same seed is the same. seed=None seeds from the
        operating system (another sequence every run). False keeps the data's order.
    drop_last: drop an epoch's final batch if it has fewer than batch_size rows.

    Every example appears exactly once per epoch (once in total across its batches, unless
    drop_last drops the remainder). `len()` is the number of batches in an epoch.
    """

    def __init__(self, data, batch_size=None, *, shuffle=True, drop_last=False, seed=None):
        if isinstance(data, numbers.Integral):
            self.n = int(data)
            self.arrays = None
        else:
            self.arrays = tuple(data) if isinstance(data, (tuple, list)) else data
            arrays = self.arrays if isinstance(self.arrays, tuple) else (self.arrays,)
            lengths = {len(a) for a in arrays}
            if len(lengths) != 1:
                raise ValueError(f"Batches: the arrays have different first dimensions "
                                 f"{sorted(lengths)}; they must all have the same number of rows")
            self.n = lengths.pop()
        if self.n <= 0:
            raise ValueError(f"Batches: the data set is empty (n={self.n})")
        if batch_size is not None and (isinstance(batch_size, bool)
                                       or not isinstance(batch_size, numbers.Integral)
                                       or batch_size < 1):
            raise ValueError(f"Batches: invalid batch_size={batch_size!r}, expected None "
                             "(the whole set) or an integer >= 1")
        self.batch_size = self.n if batch_size is None else int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def __iter__(self):
        """One epoch of batches."""
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self._take(order[start:start + self.batch_size])

    def forever(self):
        """Batches epoch after epoch, without end (take as many steps as needed)."""
        while True:
            yield from self

    def _take(self, indices):
        if self.arrays is None:
            return indices
        if isinstance(self.arrays, tuple):
            return tuple(a[indices] for a in self.arrays)
        return self.arrays[indices]
