"""A stacked LSTM over time-major sequences, built from `nn.LSTMCell` (one fused
`F.lstm_cell` node per layer and time step)."""
import numpy as np

import minigrad.functional as F
from minigrad import Tensor, nn


class LSTM(nn.Module):
    """`num_layers` LSTM cells stacked: layer l reads layer l−1's hidden state at each step.

    forward(x, state=None):
        x: (T, B, input_size), time-major.
        state: [(h, c) per layer], each (B, hidden_size); zeros if None.
    Returns (outputs, state): outputs (T, B, hidden_size), the last layer's h at every step,
    and the final [(h, c) per layer], to pass back in for the next chunk of a sequence.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, rng=None, dtype=np.float32):
        if num_layers < 1:
            raise ValueError(f"LSTM: num_layers must be at least 1, got {num_layers}")
        rng = nn.generator(rng)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.cells = [nn.LSTMCell(input_size if layer == 0 else hidden_size, hidden_size,
                                  rng=rng, dtype=dtype)
                      for layer in range(num_layers)]

    def zero_state(self, batch):
        """[(h, c) per layer] of zeros, each (batch, hidden_size)."""
        zeros = Tensor(np.zeros((batch, self.hidden_size)), dtype=self.cells[0].weight.dtype)
        return [(zeros, zeros)] * self.num_layers

    def forward(self, x, state=None):
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"LSTM: expected input (T, B, {self.input_size}), got {x.shape}")
        state = list(state) if state is not None else self.zero_state(x.shape[1])
        if len(state) != self.num_layers:
            raise ValueError(f"LSTM: expected a state (h, c) for each of {self.num_layers} layers, "
                             f"got {len(state)}")
        outputs = []
        for t in range(x.shape[0]):
            inp = x[t]
            for layer, cell in enumerate(self.cells):
                state[layer] = cell(inp, state[layer])
                inp = state[layer][0]
            outputs.append(inp)
        return F.stack(outputs), state
