"""Models, data sets and optimizee families for minigrad.

- Networks on `minigrad.nn`: `MLP`, `LSTM`, `ConvNet` (with `BatchNorm2d`).
- Optimizee families for the learned optimizer (paper section 3): `QuadraticFamily`,
  `MNISTFamily`, `ImageFamily`, `CIFARFamily` (see models/problems.py).
- Data (models/data/): `load_mnist`, `load_fashion_mnist`, `load_cifar10`, `read_idx`, `Batches`.
"""
from . import data
from .convnet import BatchNorm2d, ConvNet
from .data import load_cifar10, load_fashion_mnist, load_mnist, read_idx
from .lstm import LSTM
from .mlp import MLP
from .problems import CIFARFamily, ImageFamily, MNISTFamily, Problem, QuadraticFamily

__all__ = ["MLP", "LSTM", "ConvNet", "BatchNorm2d", "Problem", "QuadraticFamily", "MNISTFamily",
           "ImageFamily", "CIFARFamily", "data", "read_idx", "load_mnist",
           "load_fashion_mnist", "load_cifar10"]
