"""The learned optimizer and its meta-training (paper section 2, appendix A; the checks of
docs/paper.md)."""
import pickle
from dataclasses import replace

import numpy as np
import pytest

import minigrad as mg
import optim
from models.mlp import mlp_logits
from models.problems import JointProblem, MNISTFamily, QuadraticFamily
from optim.classic import Adam
from optim.learned import (CoordinateLayout, CoordinatewiseLSTM, LearnedOptimizer, MetaConfig,
                           MetaTrainer, MetaTrainingError, NetworkConfig, learned_losses,
                           load_networks, preprocess_gradients, pretrained, save_networks)
from optim.learned.meta import Trajectory, unroll

LINEAR_ZERO = NetworkConfig(layers=(), preprocess=False, output_scale=1.0, zero_init=True)


class Square:
    """f(x) = x^2 with x_0 = 1: the official tests' problem."""

    def init_params(self, rng):
        return [np.ones(1, np.float32)]

    def loss(self, params, step):
        return (params[0] * params[0]).sum()


class SquareFamily:
    def sample(self, rng):
        return Square()


# ----- preprocessing (appendix A) -----
def test_preprocessing_takes_log_and_sign_of_large_gradients():
    grad = np.array([1.0, -0.5, 2e-3, -1e3])
    out = preprocess_gradients(grad, p=10)
    assert out.shape == (4, 2)
    np.testing.assert_allclose(out[:, 0], np.log(np.abs(grad)) / 10)
    np.testing.assert_array_equal(out[:, 1], [1, -1, 1, -1])


def test_preprocessing_scales_tiny_gradients_through_the_second_input():
    grad = np.array([1e-6, -1e-7, 0.0])
    out = preprocess_gradients(grad, p=10)
    np.testing.assert_array_equal(out[:, 0], -1)
    np.testing.assert_allclose(out[:, 1], np.exp(10) * grad)


def test_preprocessing_switches_at_e_to_the_minus_p():
    p = 5.0
    at, below = np.exp(-p), np.nextafter(np.exp(-p), 0)
    out = preprocess_gradients(np.array([at, below]), p=p)
    np.testing.assert_allclose(out[0], [-1.0, 1.0])            # log branch: log(e^-p)/p = -1
    np.testing.assert_allclose(out[1], [-1.0, np.exp(p) * below])
    assert preprocess_gradients(np.zeros(3, np.float32), p).dtype == np.float32


# ----- the paper's exact check and convergence check -----
def test_exact_check_two_unrolls_of_the_zero_linear_network():
    net = CoordinatewiseLSTM(LINEAR_ZERO)
    meta_optimizer = Adam(net.parameters(), lr=0.01)
    trajectory = Trajectory(Square(), {"all": net}, Square().init_params(None))
    for expected_w_b in [-0.01, None]:
        meta_loss = unroll({"all": net}, trajectory, 5)
        net.zero_grad()
        meta_loss.backward()
        meta_optimizer.step()
        trajectory.detach()
        if expected_w_b is not None:
            assert trajectory.theta["all"].item() == 1.0          # w = b = 0: x did not move
            np.testing.assert_allclose([net.out_weight.item(), net.out_bias.item()], expected_w_b)
    x = trajectory.theta["all"].item()
    assert x == pytest.approx(0.8558812, abs=1e-6)
    assert x * x == pytest.approx(0.7325327, abs=1e-6)


def test_convergence_check_reaches_f_below_1e_5_within_500_epochs():
    net = CoordinatewiseLSTM(LINEAR_ZERO)
    meta_optimizer = Adam(net.parameters(), lr=0.01)
    for epoch in range(500):
        trajectory = Trajectory(Square(), {"all": net}, Square().init_params(None))
        for _ in range(5):
            meta_loss = unroll({"all": net}, trajectory, 20)
            net.zero_grad()
            meta_loss.backward()
            meta_optimizer.step()
            trajectory.detach()
        if trajectory.loss.item() < 1e-5:
            break
    assert trajectory.loss.item() < 1e-5, f"f = {trajectory.loss.item()} after 500 epochs"


# ----- the meta-gradient -----
def test_meta_gradient_matches_central_differences_with_gradients_held_constant():
    """First order: the meta-gradient treats each grad_t as a constant input. Check it against
    central differences of the meta-loss of a replay that feeds the recorded grad_t."""
    family = QuadraticFamily(dim=3, batch=2, dtype=np.float64)
    rng = np.random.default_rng(0)
    problem = family.sample(rng)
    theta0 = problem.init_params(rng)
    net = CoordinatewiseLSTM(NetworkConfig(layers=(4, 3), preprocess=True, output_scale=0.1,
                                           seed=3, dtype="float64"))
    steps = 4
    trajectory = Trajectory(problem, {"all": net}, theta0)
    recorded = []

    def record(grad, state, _forward=net.forward):
        recorded.append(grad.copy())
        return _forward(grad, state)
    net.forward = record
    meta_loss = unroll({"all": net}, trajectory, steps)
    del net.forward
    net.zero_grad()
    meta_loss.backward()
    analytic = [p.grad.copy() for p in net.parameters()]

    def replayed_meta_loss():
        with mg.no_grad():
            theta = mg.Tensor(theta0[0].reshape(-1), dtype=np.float64)
            state = net.initial_state(theta.size)
            total = 0.0
            for t in range(steps):
                update, state = net(recorded[t], state)
                theta = theta + update
                total += problem.loss([theta.reshape(theta0[0].shape)], t + 1).item()
            return total

    assert max(np.abs(g).max() for g in analytic) > 1e-2      # not vacuously small
    eps = 1e-6
    for p, exact in zip(net.parameters(), analytic):
        flat = p.data.reshape(-1)
        for k in range(flat.size):
            original = flat[k]
            flat[k] = original + eps
            up = replayed_meta_loss()
            flat[k] = original - eps
            down = replayed_meta_loss()
            flat[k] = original
            # atol: rounding in (up - down) on a meta-loss of order 10 is about 1e-9
            np.testing.assert_allclose(exact.flat[k], (up - down) / (2 * eps), rtol=1e-4, atol=1e-7)


def test_no_second_derivatives_the_gradient_input_is_a_constant():
    problem = QuadraticFamily(dim=3, batch=2).sample(np.random.default_rng(0))
    net = CoordinatewiseLSTM(NetworkConfig(layers=(4,), preprocess=False))
    trajectory = Trajectory(problem, {"all": net}, problem.init_params(np.random.default_rng(1)))
    assert all(isinstance(g, np.ndarray) for g in trajectory.grad.values())
    trajectory.advance({"all": net})
    assert all(isinstance(g, np.ndarray) for g in trajectory.grad.values())


# ----- the optimizer after training -----
def test_saved_and_loaded_optimizer_gives_bit_identical_updates(tmp_path):
    net = CoordinatewiseLSTM(NetworkConfig(seed=7))
    save_networks(tmp_path / "opt.npz", {"all": net})
    loaded = load_networks(tmp_path / "opt.npz")["all"]
    assert loaded.config == net.config
    runs = []
    for network in (net, loaded):
        params = [mg.Tensor(np.linspace(-1, 1, 12).reshape(3, 4), requires_grad=True),
                  mg.Tensor(np.ones(5), requires_grad=True)]
        optimizer = LearnedOptimizer(params, network)
        for _ in range(3):
            ((params[0] * params[0]).sum() + params[1].sum() * 3).backward()
            optimizer.step()
            optimizer.zero_grad()
        runs.append([p.data.copy() for p in params])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_learned_optimizer_carries_state_and_builds_no_graph():
    params = [mg.Tensor(np.ones(4), requires_grad=True)]
    optimizer = LearnedOptimizer(params, CoordinatewiseLSTM(NetworkConfig(seed=1)))
    (params[0] * 2).sum().backward()
    before = params[0].data.copy()
    optimizer.step()
    assert not np.array_equal(before, params[0].data)
    h, c = optimizer.state["all"][0]
    assert h.shape == (4, 20) and not h.requires_grad and np.any(h.data != 0)
    np.testing.assert_array_equal(params[0].grad, 2)      # step leaves .grad alone
    optimizer.zero_grad()
    assert params[0].grad is None


def test_separate_networks_for_parameter_groups():
    params = [mg.Tensor(np.ones(3), requires_grad=True), mg.Tensor(np.ones(2), requires_grad=True)]
    networks = {"conv": CoordinatewiseLSTM(NetworkConfig(seed=1)),
                "fc": CoordinatewiseLSTM(NetworkConfig(seed=2))}
    optimizer = LearnedOptimizer(params, networks, assign={1: "fc"}, default="conv")
    (params[0].sum() + params[1].sum()).backward()
    optimizer.step()
    assert optimizer.state["conv"][0][0].shape == (3, 20)
    assert optimizer.state["fc"][0][0].shape == (2, 20)
    with pytest.raises(ValueError, match=r"assign names networks \['rnn'\]"):
        LearnedOptimizer(params, networks, assign={0: "rnn"})


@pytest.mark.parametrize("problem_dtype, network_dtype", [
    (np.float32, "float32"), (np.float64, "float64"), (np.float64, "float32")])
def test_the_meta_training_unroll_and_the_plain_optimizer_produce_identical_theta_sequences(
        problem_dtype, network_dtype):
    # an MLP problem, so that each network's coordinates are several tensors joined and cut
    rng = np.random.default_rng(0)
    family = MNISTFamily(hidden=(5,), batch_size=8, dtype=problem_dtype,
                         data=(rng.random((40, 12)), rng.integers(0, 10, 40)))
    problem = family.sample(rng)
    theta0 = problem.init_params(rng)
    networks = {"weights": CoordinatewiseLSTM(NetworkConfig(seed=1, dtype=network_dtype)),
                "biases": CoordinatewiseLSTM(NetworkConfig(seed=2, dtype=network_dtype))}
    assign = {0: "weights", 1: "biases", 2: "weights", 3: "biases"}     # [W1, b1, W2, b2]
    trajectory = Trajectory(problem, networks, theta0, assign)
    in_meta_graph = []
    for _ in range(2):                                # two unrolls of 3, cut in between
        for _ in range(3):
            trajectory.advance(networks)
            in_meta_graph.append([p.data.copy() for p in trajectory.params()])
        trajectory.detach()
    params = [mg.Tensor(a, requires_grad=True, dtype=a.dtype) for a in theta0]
    optimizer = LearnedOptimizer(params, networks, assign)
    plain = []
    for step in range(6):
        problem.loss(params, step).backward()
        optimizer.step()
        optimizer.zero_grad()
        plain.append([p.data.copy() for p in params])
    for theta_meta, theta_plain in zip(in_meta_graph, plain):
        for a, b in zip(theta_meta, theta_plain):
            assert a.dtype == b.dtype == problem_dtype
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(plain[0][0], theta0[0])
    np.testing.assert_array_equal(learned_losses(networks, problem, theta0, 6, assign)[1:],
                                  [problem.loss_value(theta, t + 1)
                                   for t, theta in enumerate(plain)])


def test_coordinate_layout_joins_each_networks_parameters_and_cuts_them_back():
    arrays = [np.arange(6.0).reshape(2, 3), np.array([6.0]), np.array([[7.0, 8.0]])]
    layout = CoordinateLayout([a.shape for a in arrays], ["a", "b"], assign={1: "b"})
    joined = layout.join(arrays)
    np.testing.assert_array_equal(joined["a"], [0, 1, 2, 3, 4, 5, 7, 8])
    np.testing.assert_array_equal(joined["b"], [6])
    for piece, array in zip(layout.split(joined), arrays):
        np.testing.assert_array_equal(piece, array)
    with pytest.raises(ValueError, match=r"assign names networks \['c'\], but only \['a', 'b'\]"):
        CoordinateLayout([(1,)], ["a", "b"], assign={0: "c"})


def test_a_corrupt_optimizer_file_is_reported(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip file")
    with pytest.raises(ValueError, match=r"bad.npz: not a readable learned optimizer"):
        load_networks(path)
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match=r"other.npz: not a valid learned optimizer file"):
        load_networks(tmp_path / "other.npz")


# ----- LearnedOptimizer as an optim.Optimizer -----
def mlp_params(seed=0):
    """The parameters [W1, b1, W2, b2] of a small MLP, and a loss of them on fixed data."""
    rng = np.random.default_rng(seed)
    x, labels = rng.normal(size=(16, 3)).astype(np.float32), rng.integers(0, 2, 16)
    params = [mg.nn.Parameter(rng.normal(size=shape) * 0.5) for shape in [(3, 5), (5,), (5, 2), (2,)]]

    def loss():
        return mg.functional.cross_entropy(mlp_logits(params, mg.Tensor(x), "tanh"), labels)
    return params, loss


def fit(optimizer, loss, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()


def two_networks():
    return {"weights": CoordinatewiseLSTM(NetworkConfig(seed=1)),
            "biases": CoordinatewiseLSTM(NetworkConfig(layers=(6,), seed=2))}


def grouped(params, networks):
    """Two parameter groups, weights and biases each to their own network."""
    return LearnedOptimizer([{"params": params[:2]}, {"params": params[2:]}], networks,
                            assign={1: "biases", 3: "biases"}, default="weights")


def test_learned_optimizer_is_an_optimizer_with_parameter_groups():
    params, loss = mlp_params()
    optimizer = grouped(params, two_networks())
    assert isinstance(optimizer, optim.Optimizer)
    assert [g["params"] for g in optimizer.param_groups] == [params[:2], params[2:]]
    assert "weights: 25 coordinates" in repr(optimizer) and "Parameter Group 1" in repr(optimizer)
    before = loss().item()
    fit(optimizer, loss, 5)
    assert loss().item() < before
    assert optimizer.step_count == 5 and "Step 5" in repr(optimizer)


@pytest.mark.parametrize("make, message", [
    (lambda p: LearnedOptimizer(p[0], "quadratic"), "single Tensor; wrap it in a list"),
    (lambda p: LearnedOptimizer([], "quadratic"), "empty parameter list"),
    (lambda p: LearnedOptimizer([p[0], p[0]], "quadratic"), "appears more than once"),
    (lambda p: LearnedOptimizer([mg.Tensor(np.arange(3))], "quadratic"), "dtype int64"),
    (lambda p: LearnedOptimizer([{"params": p, "lr": 0.1}], "quadratic"),
     r"takes no hyperparameters \(the network sets the step\), got \['lr'\]"),
])
def test_learned_optimizer_checks_its_parameters_as_the_classic_ones_do(make, message):
    params, _ = mlp_params()
    with pytest.raises((TypeError, ValueError), match=message):
        make(params)


def test_step_with_a_closure_returns_its_loss():
    params, loss = mlp_params()
    optimizer = LearnedOptimizer(params, "mnist")

    def closure():
        optimizer.zero_grad()
        value = loss()
        value.backward()
        return value
    first = optimizer.step(closure)
    assert isinstance(first, mg.Tensor) and optimizer.step(closure).item() < first.item()


@pytest.mark.parametrize("networks", ["one", "two"])
def test_state_dict_round_trip_resumes_bit_exactly(networks):
    def make(params):
        if networks == "one":
            return LearnedOptimizer(params, "mnist")
        return grouped(params, two_networks())
    uninterrupted, loss = mlp_params()
    fit(make(uninterrupted), loss, 8)

    params, loss = mlp_params()
    optimizer = make(params)
    fit(optimizer, loss, 3)
    saved = pickle.loads(pickle.dumps(optimizer.state_dict()))
    copies, copies_loss = mlp_params()
    for copy, p in zip(copies, params):
        copy.data[...] = p.data
    resumed = make(copies)
    resumed.load_state_dict(saved)
    assert resumed.step_count == 3
    fit(resumed, copies_loss, 5)
    for p, q in zip(copies, uninterrupted):
        assert np.array_equal(p.data, q.data)
    assert not np.array_equal(copies[0].data, params[0].data)      # it did go on


def test_state_dict_holds_copies_of_every_networks_lstm_state_and_the_step_count():
    params, loss = mlp_params()
    optimizer = grouped(params, two_networks())
    fit(optimizer, loss, 2)
    saved = optimizer.state_dict()
    assert saved["step"] == 2
    assert saved["layout"] == {"weights": [0, 2], "biases": [1, 3]}
    assert saved["param_shapes"] == [(3, 5), (5,), (5, 2), (2,)]
    assert saved["param_groups"] == [{"params": [0, 1]}, {"params": [2, 3]}]
    assert [[a.shape for a in pair] for pair in saved["state"]["weights"]] == [[(25, 20)] * 2] * 2
    assert [[a.shape for a in pair] for pair in saved["state"]["biases"]] == [[(7, 6)] * 2]
    h = saved["state"]["weights"][1][0]
    assert isinstance(h, np.ndarray) and np.any(h != 0)
    kept = h.copy()
    fit(optimizer, loss, 1)
    np.testing.assert_array_equal(saved["state"]["weights"][1][0], kept)


def test_load_state_dict_refuses_other_networks_or_parameters_naming_what_differs():
    params, loss = mlp_params()
    optimizer = LearnedOptimizer(params, "mnist")
    fit(optimizer, loss, 1)
    saved = optimizer.state_dict()
    other_seed = CoordinatewiseLSTM(replace(load_networks(pretrained.path("mnist"))["all"].config,
                                            seed=5))
    retrained = load_networks(pretrained.path("mnist"))["all"]
    retrained.out_bias.data += 1e-3
    cases = [
        (LearnedOptimizer(params, "quadratic"), r"network 'all' has other configuration"),
        (LearnedOptimizer(params, other_seed), r"network 'all' has other configuration"),
        (LearnedOptimizer(params, retrained), r"network 'all' has other weights"),
        (LearnedOptimizer(params, two_networks()),
         r"saved state is for networks \['all'\], this optimizer has \['biases', 'weights'\]"),
        (LearnedOptimizer(params[:3], "mnist"), "saved state is for 4 parameters, this optimizer has 3"),
        (LearnedOptimizer(params[::-1], "mnist"), r"parameter 0 has shape \(2,\), the saved one "
                                                  r"had shape \(3, 5\)"),
        (LearnedOptimizer([{"params": params[:2]}, {"params": params[2:]}], "mnist"),
         r"groups of \[2, 2\], the saved ones were in groups of \[4\]"),
    ]
    for other, message in cases:
        with pytest.raises(ValueError, match=message):
            other.load_state_dict(saved)
    networks = two_networks()
    saved = grouped(params, networks).state_dict()
    with pytest.raises(ValueError, match="the networks update parameters"):
        LearnedOptimizer([{"params": params[:2]}, {"params": params[2:]}], networks,
                         assign={1: "biases"}, default="weights").load_state_dict(saved)


def test_a_parameter_without_gradient_neither_moves_nor_advances_its_lstm_state():
    params, loss = mlp_params()
    optimizer = LearnedOptimizer(params, "mnist")
    fit(optimizer, loss, 2)
    h_before = optimizer.state["all"][0][0].data.copy()
    b1 = params[1].data.copy()
    optimizer.zero_grad()
    loss().backward()
    params[1].grad = None                       # b1: coordinates 15..19 of the joined vector
    optimizer.step()
    np.testing.assert_array_equal(params[1].data, b1)
    h = optimizer.state["all"][0][0].data
    np.testing.assert_array_equal(h[15:20], h_before[15:20])
    assert not np.array_equal(h[:15], h_before[:15]) and not np.array_equal(h[20:], h_before[20:])
    fit(optimizer, loss, 1)                     # with a gradient again, it goes on from there
    assert not np.array_equal(params[1].data, b1)


@pytest.mark.parametrize("name", ["mnist-paper", "mnist"])
def test_parameters_added_later_start_at_zero_state_after_the_others(name):
    params, loss = mlp_params()
    optimizer = LearnedOptimizer(params[:2], name)
    fit(optimizer, loss, 2)
    kept = [[a.data.copy() for a in part] for part in optimizer.state["all"]]
    optimizer.add_param_group({"params": params[2:]})
    state = optimizer.state["all"]
    assert len(state) == len(kept)              # (h, c) per layer, then (m, v, t) for "mnist"
    assert state[0][0].shape == (32, 20)
    for part, old in zip(state, kept):
        for a, b in zip(part, old):
            assert a.shape[0] == 32
            np.testing.assert_array_equal(a.data[:20], b)
            np.testing.assert_array_equal(a.data[20:], 0)
    before = params[2].data.copy()
    fit(optimizer, loss, 1)
    assert not np.array_equal(params[2].data, before)


def test_reset_state_starts_a_new_optimisation():
    params, loss = mlp_params()
    optimizer = LearnedOptimizer(params, "mnist")
    start = [p.data.copy() for p in params]
    fit(optimizer, loss, 1)
    first_step = [p.data - s for p, s in zip(params, start)]
    fit(optimizer, loss, 2)
    optimizer.reset_state()
    assert optimizer.step_count == 0
    assert all(np.all(a.data == 0) for pair in optimizer.state["all"] for a in pair)
    for p, s in zip(params, start):
        p.data[...] = s
    fit(optimizer, loss, 1)
    for p, s, step in zip(params, start, first_step):
        np.testing.assert_array_equal(p.data - s, step)


def test_shipped_optimizers_load_by_name_and_a_path_still_works(tmp_path):
    params, _ = mlp_params()
    for name in ("mnist", "mnist-paper", "quadratic"):
        by_name = LearnedOptimizer(params, name).networks["all"]
        by_path = LearnedOptimizer(params, pretrained.path(name)).networks["all"]
        for a, b in zip(by_name.parameters(), by_path.parameters()):
            np.testing.assert_array_equal(a.data, b.data)
    (tmp_path / "mnist").mkdir()                # a folder of that name is not a network file
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        assert LearnedOptimizer(params, "mnist").networks["all"].config.output_scale == 0.1
    with pytest.raises(ValueError, match=r"'cifar' is neither a file nor the name of a shipped "
                                         r"learned optimizer \(\['mnist', 'mnist-paper', "
                                         r"'quadratic'\]\).*path"):
        LearnedOptimizer(params, "cifar")


# ----- meta-training -----
def small_trainer(tmp_path=None, epochs=30, **overrides):
    family = QuadraticFamily(dim=3, batch=8)
    config = MetaConfig(steps=20, unroll=5, epochs=epochs, meta_lr=0.01, validate_every=10,
                        validation_problems=2, seed=0, **overrides)
    net = CoordinatewiseLSTM(NetworkConfig(layers=(8,), preprocess=False, output_scale=1.0, seed=0))
    return MetaTrainer({"all": net}, family, config, out_dir=tmp_path, progress=False)


def test_tiny_meta_training_lowers_the_meta_loss():
    trainer = small_trainer(epochs=40)
    before = trainer.validate()
    trainer.fit()
    after = trainer.validate()
    assert after < 0.5 * before, (before, after)


def test_meta_training_writes_the_best_network_and_resumes_exactly(tmp_path):
    straight = small_trainer(tmp_path / "a", epochs=20)
    straight.fit()
    interrupted = small_trainer(tmp_path / "b", epochs=20)
    interrupted.fit(epochs=10)
    resumed = small_trainer(tmp_path / "b", epochs=20)
    resumed.fit(resume=True)
    assert resumed.epoch == 20
    for a, b in zip(straight.networks["all"].parameters(), resumed.networks["all"].parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    best = load_networks(tmp_path / "a" / "optimizer.npz")["all"]
    expected = straight.best_networks()["all"]
    for a, b in zip(best.parameters(), expected.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


class Halved:
    """f / 2: what each of two problems side by side contributes to their mean."""

    def __init__(self, problem):
        self.problem = problem

    def loss(self, params, step):
        return self.problem.loss(params, step) * 0.5


def test_joint_problem_is_the_mean_of_its_problems_and_so_is_its_meta_gradient():
    """Two problems side by side in one trajectory: their mean loss is a sum of halves, and the
    coordinatewise network treats each coordinate alone, so the joint meta-loss and meta-gradient
    are those of two separate trajectories on f_1 / 2 and f_2 / 2 (each one's gradient, and so the
    network's input, is half of what it would be alone)."""
    family = QuadraticFamily(dim=3, batch=2, dtype=np.float64)
    rng = np.random.default_rng(0)
    pairs = [(p, p.init_params(rng)) for p in (family.sample(rng), family.sample(rng))]
    net = CoordinatewiseLSTM(NetworkConfig(layers=(4,), preprocess=True, output_scale=0.1, seed=1,
                                           dtype="float64"))

    def meta_gradient(problem, theta0):
        net.zero_grad()
        meta_loss = unroll({"all": net}, Trajectory(problem, {"all": net}, theta0), 3)
        meta_loss.backward()
        return meta_loss.item(), [p.grad.copy() for p in net.parameters()]

    joint = JointProblem([p for p, _ in pairs])
    theta0 = [a for _, arrays in pairs for a in arrays]
    params = [mg.Tensor(a) for a in theta0]
    expected_loss = (pairs[0][0].loss(params[:1], 0).item() + pairs[1][0].loss(params[1:], 0).item()) / 2
    np.testing.assert_allclose(joint.loss(params, 0).item(), expected_loss, rtol=1e-12)
    together, joint_grads = meta_gradient(joint, theta0)
    alone = [meta_gradient(Halved(problem), arrays) for problem, arrays in pairs]
    np.testing.assert_allclose(together, alone[0][0] + alone[1][0], rtol=1e-12)
    assert max(np.abs(g).max() for g in joint_grads) > 1e-3
    for k, g in enumerate(joint_grads):
        np.testing.assert_allclose(g, alone[0][1][k] + alone[1][1][k], rtol=1e-10, atol=1e-15)
    assert joint.assign({1: "fc"}) == {1: "fc", 2: "fc"}     # each problem has 1 parameter here


def test_problems_per_update_meta_trains_on_joint_problems():
    trainer = small_trainer(epochs=1, problems_per_update=3)
    seen = []
    original = trainer.train_trajectory

    def record(problem, theta0, assign=None, steps=None):
        seen.append((problem, len(theta0)))
        return original(problem, theta0, assign, steps)
    trainer.train_trajectory = record
    trainer.fit()
    (problem, n_params), = seen
    assert isinstance(problem, JointProblem) and len(problem.problems) == 3 and n_params == 3


def test_averaged_weights_are_an_exponential_moving_average_and_are_what_is_kept():
    decay = 0.5
    trainer = small_trainer(epochs=1, average=decay)
    phi = [[p.data.copy() for p in trainer.params]]
    step = trainer.meta_optimizer.step

    def record():
        step()
        phi.append([p.data.copy() for p in trainer.params])
    trainer.meta_optimizer.step = record
    trainer.fit()
    assert len(phi) == 5                       # steps 20, unroll 5: four meta-updates
    for k, p in enumerate(trainer.params):
        expected = phi[0][k]
        for update in phi[1:]:
            expected = decay * expected + (1 - decay) * update[k]
        np.testing.assert_allclose(trainer.averaged[k], expected, rtol=1e-6)
        np.testing.assert_array_equal(p.data, phi[-1][k])   # training goes on from the raw weights
    kept = [p.data for p in trainer.best_networks()["all"].parameters()]
    for k, array in enumerate(kept):
        np.testing.assert_allclose(array, trainer.averaged[k], rtol=1e-6)
    assert not np.allclose(kept[0], phi[-1][0])


def test_late_validation_is_the_mean_loss_from_the_horizon_on():
    trainer = small_trainer(epochs=1, validate_on="late", validation_steps=30)
    losses = [learned_losses(trainer.networks, p, theta0, 30) for p, theta0 in trainer.validation_set]
    np.testing.assert_allclose(trainer.validate(), np.mean([l[20:].mean() for l in losses]))
    default = small_trainer(epochs=1)
    sums = [learned_losses(default.networks, p, theta0, 20)[1:].sum() for p, theta0 in default.validation_set]
    np.testing.assert_allclose(default.validate(), np.mean(sums))


def test_averaged_meta_training_resumes_exactly(tmp_path):
    straight = small_trainer(tmp_path / "a", epochs=20, average=0.9, problems_per_update=2)
    straight.fit()
    small_trainer(tmp_path / "b", epochs=20, average=0.9, problems_per_update=2).fit(epochs=10)
    resumed = small_trainer(tmp_path / "b", epochs=20, average=0.9, problems_per_update=2)
    resumed.fit(resume=True)
    for a, b in zip(straight.averaged, resumed.averaged):
        np.testing.assert_array_equal(a, b)
    assert straight.best[:2] == resumed.best[:2]


@pytest.mark.parametrize("overrides, message", [
    ({"validate_on": "last"}, "validate_on must be one of .*, got 'last'"),
    ({"validation_steps": 10}, r"validation_steps \(10\) must be at least the training length \(20\)"),
    ({"problems_per_update": 0}, "problems_per_update must be at least 1, got 0"),
    ({"average": 1.0}, r"average is a decay in \[0, 1\), got 1.0"),
])
def test_meta_config_errors_name_the_setting(overrides, message):
    with pytest.raises(ValueError, match=message):
        small_trainer(epochs=1, **overrides)


class NaNAfter:
    """f(x) = x^2 that turns into NaN from step `bad_step` on."""

    def __init__(self, bad_step):
        self.bad_step = bad_step

    def init_params(self, rng):
        return [np.ones(2, np.float32)]

    def loss(self, params, step):
        x = params[0]
        return (x * x).sum() * (float("nan") if step >= self.bad_step else 1.0)


class NaNFamily:
    def __init__(self, bad_step):
        self.bad_step = bad_step

    def sample(self, rng):
        return NaNAfter(self.bad_step)


def test_a_nan_meta_loss_skips_the_update_and_is_reported(capsys):
    net = CoordinatewiseLSTM(NetworkConfig(layers=(4,), preprocess=False))
    trainer = MetaTrainer({"all": net}, NaNFamily(bad_step=7), MetaConfig(
        steps=10, unroll=5, epochs=1, validate_every=100, validation_problems=0), progress=False)
    before = [p.data.copy() for p in net.parameters()]
    losses = trainer.train_trajectory(NaNAfter(7), [np.ones(2, np.float32)])
    assert np.isfinite(losses[0]) and np.isnan(losses[1])
    assert trainer.skipped == 1
    assert "meta-update skipped: meta-loss is nan" in capsys.readouterr().out
    changed = [not np.array_equal(a, p.data) for a, p in zip(before, net.parameters())]
    assert any(changed)          # the first, finite unroll did update the network


def test_meta_training_that_keeps_failing_stops_with_a_clear_message():
    net = CoordinatewiseLSTM(NetworkConfig(layers=(4,), preprocess=False))
    trainer = MetaTrainer({"all": net}, NaNFamily(bad_step=0), MetaConfig(
        steps=10, unroll=5, epochs=20, validate_every=100, validation_problems=0, max_failures=3),
        progress=False)
    with pytest.raises(MetaTrainingError, match="3 meta-updates in a row were not finite"):
        trainer.fit()


def test_learned_losses_of_a_trained_network_go_down():
    trainer = small_trainer(epochs=40)
    trainer.fit()
    problem = trainer.family.sample(np.random.default_rng(5))
    losses = learned_losses(trainer.best_networks(), problem,
                            problem.init_params(np.random.default_rng(6)), 20)
    assert losses.shape == (21,) and losses[-1] < 0.5 * losses[0]


def test_meta_learning_rate_decays_log_linearly_to_its_final_value():
    trainer = small_trainer(epochs=3, final_meta_lr=0.0001)
    seen = []
    original = trainer.train_trajectory

    def record(problem, theta0, steps=None):
        seen.append(trainer.meta_optimizer.param_groups[0]["lr"])
        return original(problem, theta0, steps=steps)
    trainer.train_trajectory = record
    trainer.fit()
    np.testing.assert_allclose(seen, [0.01, 0.001, 0.0001])
