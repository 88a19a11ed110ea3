"""The small convnet of the paper's CIFAR-10 experiments (section 3.3).

    conv 5x5 (padding 2) → [batch norm] → ReLU → 2x2 max-pool      three times
    flatten → fully connected, 32 ReLU units → linear output

As in the official code: channels (16, 16, 16), pooling after every conv layer, batch norm
before the ReLU. With batch norm on, the conv layers have no bias: the norm's shift replaces it.

Like `MLP`, the network runs either on its own parameters (`net(x)`) or on a parameter list
given from outside (`net.forward_with(params, x)`, params ordered as `net.parameters()`): the
CIFAR optimizee family uses the second form, since its parameters are the learned optimizer's
θ_t tensors.
"""
import numpy as np

import minigrad.functional as F
from minigrad import nn


class ConvBlock(nn.Module):
    """conv (padding k // 2, so the size is kept) → [batch norm] → ReLU → 2x2 max-pool."""

    def __init__(self, in_channels, out_channels, kernel_size=5, batch_norm=False,
                 track_running_stats=True, rng=None, dtype=np.float32):
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                              bias=not batch_norm, rng=rng, dtype=dtype)
        self.norm = (nn.BatchNorm2d(out_channels, track_running_stats=track_running_stats,
                                 dtype=dtype) if batch_norm else None)
        self.n_params = len(self.parameters())

    def forward(self, x):
        return self.forward_with(self.parameters(), x)

    def forward_with(self, params, x):
        conv_bias = self.conv.bias is not None
        x = F.conv2d(x, params[0], params[1] if conv_bias else None, padding=self.conv.padding)
        if self.norm is not None:
            x = self.norm.forward_with(params[1 + conv_bias:], x)
        return F.max_pool2d(x.relu(), 2)


class ConvNet(nn.Module):
    """Conv blocks with `channels` output channels each, then fully connected ReLU layers of
    widths `hidden`, then `num_classes` logits. Input (N, in_channels, H, W) with (H, W) =
    image_size; each block halves H and W (rounding down).

    Defaults are the official code's CIFAR-10 optimizee without batch norm:
    ConvNet() on (N, 3, 32, 32): 3 → 16 → 16 → 16 channels, 32x32 → 4x4, 256 → 32 → 10.
    """

    def __init__(self, in_channels=3, channels=(16, 16, 16), hidden=(32,), num_classes=10,
                 image_size=32, kernel_size=5, batch_norm=False, track_running_stats=True,
                 rng=None, dtype=np.float32):
        rng = nn.generator(rng)
        channels = tuple(int(c) for c in channels)
        hidden = (int(hidden),) if np.ndim(hidden) == 0 else tuple(int(h) for h in hidden)
        height, width = (image_size, image_size) if np.ndim(image_size) == 0 else image_size
        self.in_channels, self.image_size = in_channels, (int(height), int(width))
        self.channels, self.hidden, self.batch_norm = channels, hidden, batch_norm
        self.blocks = []
        for c_in, c_out in zip((in_channels,) + channels, channels):
            self.blocks.append(ConvBlock(c_in, c_out, kernel_size, batch_norm,
                                         track_running_stats, rng, dtype))
            height, width = height // 2, width // 2
        if height < 1 or width < 1:
            raise ValueError(f"ConvNet: images of size {self.image_size} are too small for "
                             f"{len(channels)} 2x2 poolings")
        sizes = ((channels[-1] if channels else in_channels) * height * width, *hidden,
                 num_classes)
        self.layers = [nn.Linear(n_in, n_out, rng=rng, dtype=dtype)
                       for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        self.n_params = len(self.parameters())

    def forward(self, x):
        return self.forward_with(self.parameters(), x)

    def forward_with(self, params, x):
        """Logits (N, num_classes) of x (N, C, H, W), with `params` (ordered as
        `parameters()`) in place of the network's own."""
        if len(params) != self.n_params:
            raise ValueError(f"ConvNet.forward_with: expected {self.n_params} parameter tensors "
                             f"(ordered as parameters()), got {len(params)}")
        if x.ndim != 4 or (x.shape[1], *x.shape[2:]) != (self.in_channels, *self.image_size):
            raise ValueError(f"ConvNet: expected input (N, {self.in_channels}, "
                             f"{self.image_size[0]}, {self.image_size[1]}), got {x.shape}")
        start = 0
        for block in self.blocks:
            x = block.forward_with(params[start:start + block.n_params], x)
            start += block.n_params
        x = x.reshape(x.shape[0], -1)
        for i, layer in enumerate(self.layers):
            x = F.linear(x, params[start + 2 * i], params[start + 2 * i + 1])
            if i < len(self.layers) - 1:
                x = x.relu()
        return x

    def param_kinds(self):
        """The kind of each tensor of `parameters()`, in order: "conv" for the conv blocks'
        (batch norm included), "fc" for the fully connected layers'."""
        n_conv = sum(block.n_params for block in self.blocks)
        return ["conv"] * n_conv + ["fc"] * 2 * len(self.layers)

    def init_arrays(self, rng, scale=0.01):
        """A fresh parameter list as arrays (ordered as `parameters()`), as the official code
        initialises its optimizees: weights and biases N(0, scale²); batch norm γ = 1, β = 0."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        fixed = {}
        for block in self.blocks:
            if block.norm is not None:
                fixed[id(block.norm.weight)] = np.ones_like(block.norm.weight.data)
                fixed[id(block.norm.bias)] = np.zeros_like(block.norm.bias.data)
        return [fixed[id(p)] if id(p) in fixed
                else (scale * rng.standard_normal(p.shape)).astype(p.dtype)
                for p in self.parameters()]

    def extra_repr(self):
        return f"image_size={self.image_size}"
