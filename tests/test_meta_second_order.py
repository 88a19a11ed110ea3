"""The exact meta-gradient (MetaConfig.second_order, `--second-order`): the optimizee's gradient
stays in the meta-graph, so the meta-gradient is the derivative of the meta-loss with nothing
held constant; the network's inputs computed in Tensor ops; the option from the command line
to the checkpoint."""
import numpy as np
import pytest

import minigrad as mg
from minigrad.gradcheck import central_differences
from models.problems import MNISTFamily, QuadraticFamily
from optim.learned import (CoordinatewiseLSTM, MetaConfig, MetaTrainer, NetworkConfig,
                           preprocess_gradients)
from optim.learned import cli
from optim.learned.features import Moments, preprocess_tensor
from optim.learned.meta import Trajectory, unroll

STEPS = 4
NETWORKS = {      # small float64 networks: the paper's, without preprocessing, the improved one
    "paper": NetworkConfig(layers=(4, 3), preprocess=True, output_scale=0.1, dtype="float64"),
    "raw": NetworkConfig(layers=(4,), preprocess=False, output_scale=0.1, dtype="float64"),
    "improved": NetworkConfig(layers=(4,), inputs="moments", output="adam", lr=0.05,
                              dtype="float64"),
    "both": NetworkConfig(layers=(3,), inputs="both", output_scale=0.1, dtype="float64"),
}


def quadratic():
    """A problem of two 3-dimensional quadratics, and its theta_0, in float64."""
    family = QuadraticFamily(dim=3, batch=2, dtype=np.float64)
    rng = np.random.default_rng(0)
    problem = family.sample(rng)
    return problem, problem.init_params(rng)


def mlp():
    """A 4-3-3 sigmoid MLP on 24 random examples, minibatches of 6, in float64."""
    rng = np.random.default_rng(1)
    data = (rng.normal(size=(24, 4)), rng.integers(0, 3, 24))
    family = MNISTFamily(hidden=(3,), batch_size=6, data=data, num_classes=3, init_scale=0.5,
                         dtype=np.float64)
    problem = family.sample(rng)
    return problem, problem.init_params(rng)


PROBLEMS = {"quadratic": quadratic, "mlp": mlp}


def network(name):
    """NETWORKS[name] with every weight drawn at random (the improved network's output layer
    starts at zero, which would hide the LSTM's weights from the meta-gradient)."""
    net = CoordinatewiseLSTM(NETWORKS[name])
    rng = np.random.default_rng(2)
    for p in net.parameters():
        p.data[...] = rng.normal(0, 0.5, p.shape)
    return net


def meta_loss_and_gradient(net, problem, theta0, second_order):
    """The meta-loss of one unroll of STEPS steps from theta_0, and its gradient in phi."""
    trajectory = Trajectory(problem, {"all": net}, theta0, second_order=second_order)
    meta_loss = unroll({"all": net}, trajectory, STEPS)
    net.zero_grad()
    meta_loss.backward()
    return meta_loss.item(), [p.grad.copy() for p in net.parameters()]


def meta_loss_differences(net, problem, theta0, eps=1e-6):
    """d meta-loss / d phi by central differences, each gradient grad_t computed afresh at the
    perturbed theta_t: nothing held constant."""
    def meta_loss():
        return unroll({"all": net}, Trajectory(problem, {"all": net}, theta0), STEPS).item()

    return [central_differences(meta_loss, p.data, eps) for p in net.parameters()]


def relative_difference(a, b):
    """max |a - b| over max |b|, across phi's tensors."""
    return (max(np.abs(x - y).max() for x, y in zip(a, b))
            / max(np.abs(y).max() for y in b))


# ----- the meta-gradient -----
@pytest.mark.parametrize("problem_name", sorted(PROBLEMS))
@pytest.mark.parametrize("network_name", sorted(NETWORKS))
def test_the_exact_meta_gradient_matches_central_differences_of_the_meta_loss(problem_name,
                                                                              network_name):
    problem, theta0 = PROBLEMS[problem_name]()
    net = network(network_name)
    exact_value, exact = meta_loss_and_gradient(net, problem, theta0, second_order=True)
    first_value, first_order = meta_loss_and_gradient(net, problem, theta0, second_order=False)
    numeric = meta_loss_differences(net, problem, theta0)
    assert exact_value == first_value             # the same forward pass
    assert max(np.abs(g).max() for g in exact) > 1e-3          # not vacuously small
    for exact_p, numeric_p in zip(exact, numeric):
        np.testing.assert_allclose(exact_p, numeric_p, rtol=1e-4, atol=1e-7)
    assert relative_difference(exact, numeric) < 1e-6
    # the paper's first order is off by far more than the differences' error (3e-4 to 7e-2 of
    # the largest entry in these cases), so the checks above can tell the two apart
    assert relative_difference(first_order, numeric) > 1e-4


def test_first_order_gradients_are_constants_and_exact_ones_stay_in_the_meta_graph():
    problem, theta0 = quadratic()
    net = network("paper")
    for second_order, kind in [(False, np.ndarray), (True, mg.Tensor)]:
        trajectory = Trajectory(problem, {"all": net}, theta0, second_order=second_order)
        assert all(isinstance(g, np.ndarray) for g in trajectory.grad.values())   # at theta_0
        trajectory.advance({"all": net})
        assert all(isinstance(g, kind) for g in trajectory.grad.values())
        trajectory.detach()
        assert all(isinstance(g, np.ndarray) for g in trajectory.grad.values())


def test_the_exact_meta_gradient_needs_the_networks_in_the_optimizees_dtype():
    problem, theta0 = quadratic()
    net = CoordinatewiseLSTM(NetworkConfig(layers=(4,), dtype="float32"))
    with pytest.raises(ValueError, match="second_order.*float64.*float32.*dtype"):
        Trajectory(problem, {"all": net}, theta0, second_order=True)
    Trajectory(problem, {"all": net}, theta0)         # first order casts the gradient


def test_second_order_meta_training_runs_side_by_side_as_in_one_process():
    """trajectories_per_update sends second_order with each unroll job."""
    family = QuadraticFamily(dim=3, batch=2, dtype=np.float64)
    config = MetaConfig(steps=4, unroll=2, epochs=1, trajectories_per_update=2,
                        validation_problems=1, second_order=True)
    trainer = MetaTrainer({"all": network("paper")}, family, config, progress=False)
    pairs = [quadratic(), quadratic()]
    losses = trainer.train_side_by_side(pairs)
    assert len(losses) == 2 and np.all(np.isfinite(losses))


# ----- the inputs in Tensor ops -----
def gradients_of_every_size(dtype, n=40, seed=0):
    """Gradient coordinates from 1e-8 to 10, both signs, and an exact zero."""
    rng = np.random.default_rng(seed)
    grad = rng.choice([-1, 1], n) * np.exp(rng.uniform(np.log(1e-8), np.log(10), n))
    grad[0] = 0
    return grad.astype(dtype)


def test_preprocess_tensor_gives_the_values_of_the_numpy_preprocessing():
    grad = gradients_of_every_size(np.float64)
    np.testing.assert_array_equal(preprocess_tensor(mg.Tensor(grad, dtype=np.float64)).data,
                                  preprocess_gradients(grad))
    grad = gradients_of_every_size(np.float32)
    tensor = preprocess_tensor(mg.Tensor(grad, dtype=np.float32), p=5.0)
    assert tensor.dtype == np.float32
    # e^p * grad: numpy multiplies in float64 and rounds, the tensor in float32 (one rounding)
    np.testing.assert_allclose(tensor.data, preprocess_gradients(grad, p=5.0),
                               rtol=2 * np.finfo(np.float32).eps)


def test_preprocess_tensor_gradients_check_out_on_both_branches():
    grad = mg.Tensor([0.7, -2.5, 3e-3, -1e-5, 2e-6, -0.04], requires_grad=True,
                     dtype=np.float64)
    assert mg.gradcheck(lambda g: preprocess_tensor(g, p=10.0), [grad], eps=1e-9)
    zero = mg.Tensor([0.0], requires_grad=True, dtype=np.float64)
    (at_zero,) = mg.grad(preprocess_tensor(zero, p=10.0).sum(), [zero])
    np.testing.assert_array_equal(at_zero, [np.exp(10.0)])     # (-1, e^p grad): finite at 0


def run_moments(moments, grads, in_tensors):
    """The moment inputs of each step, for a sequence of gradients from the zero state."""
    state = moments.initial(len(grads[0]))
    if in_tensors:
        state = tuple(mg.Tensor(a, dtype=moments.dtype) for a in state)
    inputs = []
    for grad in grads:
        if in_tensors:
            x, state = moments.step_tensor(grad, state)
        else:
            x, state = moments.step(grad, state)
        inputs.append(x)
    return inputs, state


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_moments_in_tensor_ops_give_the_values_of_the_numpy_moments(dtype):
    moments = Moments(dtype=dtype)
    grads = [gradients_of_every_size(dtype, seed=k) for k in range(4)]
    expected, expected_state = run_moments(moments, grads, in_tensors=False)
    inputs, state = run_moments(moments, [mg.Tensor(g, dtype=dtype) for g in grads], True)
    for x, want in zip(inputs, expected):
        assert x.dtype == dtype
        np.testing.assert_array_equal(x.data, want)
    for a, want in zip(state, expected_state):
        np.testing.assert_array_equal(a.data, want)


def test_moments_in_tensor_ops_gradients_check_out_over_three_steps():
    moments = Moments(dtype=np.float64)
    grad = mg.Tensor([0.7, -2.5, 0.3, -1.2, 0.9], requires_grad=True, dtype=np.float64)

    def three_steps(g):
        inputs, _ = run_moments(moments, [g, g * g - 0.5, g * -2.0 + 0.1], in_tensors=True)
        return mg.functional.concat(inputs, axis=1)
    assert mg.gradcheck(three_steps, [grad])


def test_a_gradient_that_stayed_zero_sends_a_finite_gradient_back():
    """sqrt(v_hat) at v_hat = 0 gets derivative 0, as |grad| at 0, not sqrt's infinite one."""
    moments = Moments(dtype=np.float64)
    grad = mg.Tensor([0.0, 0.5], requires_grad=True, dtype=np.float64)
    inputs, _ = run_moments(moments, [grad, grad * 2.0], in_tensors=True)
    (g,) = mg.grad(mg.functional.concat(inputs, axis=1).sum(), [grad])
    assert np.all(np.isfinite(g))


# ----- the option -----
def test_second_order_is_a_meta_config_setting_checked_as_the_others():
    assert MetaConfig().second_order is False
    with pytest.raises(ValueError, match="second_order must be True or False"):
        MetaConfig(second_order=1).check()


def test_the_second_order_flag_reaches_meta_training(tmp_path, meta_configs):
    configs = meta_configs
    cli.main(["train", "--task", "quadratic", "--out", str(tmp_path / "exact"), "--epochs", "1",
              "--second-order", "--workers", "1"])
    cli.main(["train", "--task", "quadratic", "--out", str(tmp_path / "first"), "--epochs", "1",
              "--workers", "1"])
    assert [config.second_order for config in configs] == [True, False]
    assert cli.parse(["reproduce", "--task", "quadratic", "--out", "x",
                      "--second-order"]).second_order is True


def test_reproduce_refuses_the_flag_when_it_skips_training(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.parse(["reproduce", "--task", "quadratic", "--out", "x", "--optimizer", "q.npz",
                   "--second-order"])
    assert exit_.value.code == 2
    assert "--second-order: a training option" in capsys.readouterr().err


def test_a_checkpoint_with_the_other_setting_is_refused_on_resume(tmp_path):
    family = QuadraticFamily(dim=3, batch=2, dtype=np.float64)

    def trainer(second_order):
        config = MetaConfig(steps=4, unroll=2, epochs=2, validate_every=1,
                            validation_problems=1, second_order=second_order)
        return MetaTrainer({"all": network("paper")}, family, config, out_dir=str(tmp_path),
                           progress=False)
    trainer(False).fit(epochs=1)
    with pytest.raises(ValueError, match="second_order: False in the checkpoint, True now"):
        trainer(True).fit(resume=True)
    trainer(False).fit(resume=True)
