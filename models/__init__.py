"""What the optimizers optimize: networks, the paper's optimizee families, and their data.

- Networks on `minigrad.nn`: `MLP`, `LSTM`, `ConvNet` (models/mlp.py, lstm.py, convnet.py).
- Optimizee families for the learned optimizer (paper section 3): `QuadraticFamily`,
  `MNISTFamily`, `ImageFamily`, `CIFARFamily`, and `JointProblem` (models/problems.py).
- Data (the package `models.data`): `load_mnist`, `load_fashion_mnist`, `load_cifar10`,
  `read_idx`, `Batches`; full MNIST is shipped, so `load_mnist` works offline.
"""
from . import data
from .convnet import ConvNet
from .lstm import LSTM
from .mlp import MLP
from .problems import (CIFARFamily, ImageFamily, JointProblem, MNISTFamily, Problem,
                       QuadraticFamily, draw_problems)

__all__ = ["MLP", "LSTM", "ConvNet", "Problem", "QuadraticFamily", "MNISTFamily", "ImageFamily",
           "CIFARFamily", "JointProblem", "draw_problems", "data"]
