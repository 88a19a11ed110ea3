"""Optimizers for minigrad: the classic ones, and the learned LSTM optimizer.

Classic: torch.optim-style classes (`SGD`, `Adagrad`, `RMSprop`, `Adam`, `AdamW`) over pure
update functions on arrays (`optim.functional`). Learned: `LearnedOptimizer` runs networks
meta-trained by `MetaTrainer` (optim/learned.py, optim/meta.py); `optim.evaluation` holds the
paper's comparison protocol.
"""
from .base import Optimizer
from .classic import SGD, Adagrad, Adam, AdamW, RMSprop
from .functional import (adagrad_init, adagrad_update, adam_init, adam_update, adamw_init,
                         adamw_update, rmsprop_init, rmsprop_update, sgd_init, sgd_update)
from .learned import (CoordinatewiseLSTM, LearnedOptimizer, NetworkConfig, load_networks,
                      preprocess_gradients, save_networks)
from .meta import MetaConfig, MetaTrainer, MetaTrainingError

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW",
           "sgd_init", "sgd_update", "adagrad_init", "adagrad_update", "rmsprop_init",
           "rmsprop_update", "adam_init", "adam_update", "adamw_init", "adamw_update",
           "CoordinatewiseLSTM", "LearnedOptimizer", "NetworkConfig", "load_networks",
           "save_networks", "preprocess_gradients", "MetaConfig", "MetaTrainer",
           "MetaTrainingError"]
