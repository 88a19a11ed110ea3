"""The learned optimizer of Andrychowicz et al. (2016), "Learning to learn by gradient descent
by gradient descent", to be read beside the paper (docs/paper.md summarises it):

- features.py     the gradient preprocessing of appendix A
- network.py      the coordinatewise LSTM optimizer m(grad, h; phi) of section 2.1, and its file
- optimizer.py    a trained network run as an optimizer, theta_{t+1} = theta_t + g_t (eq. 1);
                  `CoordinateLayout`, how a network sees the optimizee's parameters
- meta.py         meta-training: the meta-loss of eq. 2, truncated BPTT, first order (section 2),
                  validation and checkpoints
- evaluation.py   the comparison protocol of section 3: tuned SGD, RMSprop, Adam and NAG
- tasks.py        the experiments of section 3: quadratics, MNIST and its variants, CIFAR-10
- experiments.py  train, compare and reproduce a task; report.py writes what a comparison found
- cli.py          the `learning-to-learn` command over experiments.py
- pretrained/     trained optimizers shipped as package data, each with the record of the
                  command, seed and commit that made it: `LearnedOptimizer(params, "mnist")`
                  (or "quadratic"); `PRETRAINED` lists them, `pretrained.record(name)` tells
                  how each was made

The optimizee families themselves are in models/problems.py.
"""
from . import pretrained
from .features import preprocess_gradients
from .meta import MetaConfig, MetaTrainer, MetaTrainingError
from .network import CoordinatewiseLSTM, NetworkConfig, load_networks, save_networks
from .optimizer import CoordinateLayout, LearnedOptimizer, learned_losses
from .pretrained import PRETRAINED

__all__ = ["preprocess_gradients", "NetworkConfig", "CoordinatewiseLSTM", "load_networks",
           "save_networks", "CoordinateLayout", "LearnedOptimizer", "learned_losses",
           "MetaConfig", "MetaTrainer", "MetaTrainingError", "pretrained", "PRETRAINED"]
