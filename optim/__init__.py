"""Optimizers for minigrad: the classic ones, and the learned LSTM optimizer.

Classic: torch.optim-style classes (`SGD`, `Adagrad`, `RMSprop`, `Adam`, `AdamW`) over pure
update rules on arrays (`optim.functional`: `sgd`, `adagrad`, `rmsprop`, `adam`, `adamw`, each
binding its hyperparameters into an init/update pair). Learned: `LearnedOptimizer` runs networks
meta-trained by `MetaTrainer` (optim/learned.py, optim/meta.py); `optim.evaluation` holds the
paper's comparison protocol.
"""
from . import functional
from .base import Optimizer
from .classic import SGD, Adagrad, Adam, AdamW, RMSprop
from .learned import (CoordinatewiseLSTM, LearnedOptimizer, NetworkConfig, load_networks,
                      preprocess_gradients, save_networks)
from .meta import MetaConfig, MetaTrainer, MetaTrainingError

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW",
           "functional",
           "CoordinatewiseLSTM", "LearnedOptimizer", "NetworkConfig", "load_networks",
           "save_networks", "preprocess_gradients", "MetaConfig", "MetaTrainer",
           "MetaTrainingError"]
