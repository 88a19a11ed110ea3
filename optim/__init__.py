"""Optimizers for minigrad.

The classic ones, with torch.optim's surface: `SGD`, `Adagrad`, `RMSprop`, `Adam`, `AdamW`
(optim/classic.py), over pure update rules on arrays (`optim.functional`: `sgd`, `adagrad`,
`rmsprop`, `adam`, `adamw`, each binding its hyperparameters into an init/update pair).
`NewtonCG` (optim/newton.py): Newton's method on Hessian-vector products, with a closure.

The learned one, the paper's coordinatewise LSTM, and everything that trains and tests it:
the package `optim.learned`.
"""
from . import functional
from .base import Optimizer
from .classic import SGD, Adagrad, Adam, AdamW, RMSprop
from .newton import NewtonCG

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NewtonCG", "functional"]
