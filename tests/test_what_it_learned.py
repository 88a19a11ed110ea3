"""examples/what_it_learned.py: it reads the terms of the very run the learned optimizer makes."""
import pathlib
import runpy
from dataclasses import replace

import numpy as np
import pytest

from optim.learned import CoordinatewiseLSTM, NetworkConfig, save_networks
from optim.learned.experiments import problem_source
from optim.learned.optimizer import learned_losses
from optim.learned.problem_sets import ProblemRef

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
IMPROVED = NetworkConfig(layers=(4, 3), inputs="moments", output="adam", lr=0.01, seed=3)


@pytest.fixture
def example():
    return runpy.run_path(str(EXAMPLES / "what_it_learned.py"))


def trained_looking(path):
    """An improved network with random output weights (so s and c vary), saved to `path`."""
    net = CoordinatewiseLSTM(IMPROVED)
    net.out_weight.data[...] = np.random.default_rng(0).normal(size=net.out_weight.shape)
    net.out_bias.data[...] = [0.2, -0.1]
    save_networks(path, {"all": net})
    return net


def test_the_run_is_the_learned_optimizers_and_its_terms_make_its_updates(example, tmp_path):
    net = trained_looking(tmp_path / "opt.npz")
    problem, theta0 = ProblemRef.all(problem_source("mnist", "validation", 1, 0, "tune"))[0].pair()
    recorder = example["recorder"](str(tmp_path / "opt.npz"))
    losses, terms = example["run"](recorder, problem, theta0, 6, [1, 6])
    np.testing.assert_array_equal(losses, learned_losses({"all": net}, problem, theta0, 6))
    assert sorted(terms) == [1, 6]
    # the first update by hand: theta_1 = theta_0 - lr (s d + c), d = grad / (|grad| + eps)
    _, grads = problem.loss_and_grad([p.copy() for p in theta0], 0)
    grad = np.concatenate([g.ravel() for g in grads]).astype(np.float32)
    scale, correction = terms[1]
    assert scale.shape == correction.shape == grad.shape
    assert scale.std() > 0 and correction.std() > 0
    direction = grad / (np.abs(grad) + np.float32(1e-8))
    first = -0.01 * (scale * direction + correction)
    pieces = np.split(first, np.cumsum([p.size for p in theta0])[:-1])
    theta1 = [p + piece.reshape(p.shape).astype(p.dtype) for p, piece in zip(theta0, pieces)]
    np.testing.assert_allclose(problem.loss_and_grad(theta1, 1)[0], losses[1], rtol=1e-5)


def test_it_reads_only_an_optimizer_with_the_adam_output(example, tmp_path):
    save_networks(tmp_path / "paper.npz", {"all": CoordinatewiseLSTM(NetworkConfig(layers=(3,)))})
    with pytest.raises(Exception, match="its output is 'update'"):
        example["recorder"](str(tmp_path / "paper.npz"))
    save_networks(tmp_path / "two.npz", {"conv": CoordinatewiseLSTM(IMPROVED),
                                         "fc": CoordinatewiseLSTM(replace(IMPROVED, seed=4))})
    with pytest.raises(Exception, match=r"it holds the networks \['conv', 'fc'\]"):
        example["recorder"](str(tmp_path / "two.npz"))
    with pytest.raises(Exception, match="--optimizer nope"):
        example["recorder"]("nope")


def test_zeroing_the_correction_from_a_step_changes_the_run_only_from_there(example, tmp_path):
    trained_looking(tmp_path / "opt.npz")
    problem, theta0 = ProblemRef.all(problem_source("mnist", "validation", 1, 0, "tune"))[0].pair()
    recorder = example["recorder"](str(tmp_path / "opt.npz"))
    whole, _ = example["run"](recorder, problem, theta0, 6, [])
    recorder.zero_correction_from = 3
    cut, terms = example["run"](recorder, problem, theta0, 6, [3, 4])
    np.testing.assert_array_equal(cut[:4], whole[:4])     # theta_0..theta_3 made with c
    assert not np.array_equal(cut[4:], whole[4:])
    assert np.any(terms[3][1] != 0) and np.all(terms[4][1] == 0)
