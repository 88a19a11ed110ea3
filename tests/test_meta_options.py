"""Meta-training options beyond the paper (optim/learned/meta.py): the log meta-objectives,
random scaling, several trajectories per meta-update, and the curriculum over trajectory
lengths; with the improved network, whose meta-gradient is checked here too."""
from dataclasses import replace

import numpy as np
import pytest

import minigrad as mg
from models.problems import QuadraticFamily, draw_problems
from optim.learned import CoordinatewiseLSTM, MetaConfig, MetaTrainer, NetworkConfig
from optim.learned.meta import ScaledProblem, Trajectory, random_scales, unroll
from optim.learned.parallel import Runner
from optim.learned.problem_sets import ProblemRef, ProblemSet

IMPROVED = NetworkConfig(layers=(4, 3), inputs="moments", output="adam", lr=0.01, seed=3)


# ----- the meta-gradient -----
@pytest.mark.parametrize("objective", ["sum", "log"])
def test_meta_gradient_of_the_improved_network_matches_central_differences(objective):
    """First order, as for the paper's network: each grad_t (and so the moments) is a constant.
    The meta-gradient of a short unroll against central differences of a replay that feeds the
    recorded grad_t."""
    family = QuadraticFamily(dim=3, batch=2, dtype=np.float64)
    rng = np.random.default_rng(0)
    problem = family.sample(rng)
    theta0 = problem.init_params(rng)
    net = CoordinatewiseLSTM(replace(IMPROVED, dtype="float64", lr=0.1))
    net.out_weight.data[...] = np.random.default_rng(4).normal(scale=0.5, size=net.out_weight.shape)
    steps = 4
    trajectory = Trajectory(problem, {"all": net}, theta0)
    recorded = []

    def record(grad, state, _forward=net.forward):
        recorded.append(grad.copy())
        return _forward(grad, state)
    net.forward = record
    meta_loss = unroll({"all": net}, trajectory, steps, objective)
    del net.forward
    net.zero_grad()
    meta_loss.backward()
    analytic = [p.grad.copy() for p in net.parameters()]
    term = np.log if objective == "log" else (lambda f: f)

    def replayed_meta_loss():
        with mg.no_grad():
            theta = mg.Tensor(theta0[0].reshape(-1), dtype=np.float64)
            state = net.initial_state(theta.size)
            total = 0.0
            for t in range(steps):
                update, state = net(recorded[t], state)
                theta = theta + update
                total += term(problem.loss([theta.reshape(theta0[0].shape)], t + 1).item())
            return total

    assert max(np.abs(g).max() for g in analytic) > 1e-3      # not vacuously small
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
            np.testing.assert_allclose(exact.flat[k], (up - down) / (2 * eps), rtol=1e-4, atol=1e-8)


def test_the_log_objective_sums_the_log_of_each_steps_loss():
    problem = QuadraticFamily(dim=3, batch=2).sample(np.random.default_rng(0))
    theta0 = problem.init_params(np.random.default_rng(1))
    net = CoordinatewiseLSTM(IMPROVED)
    plain = unroll({"all": net}, trajectory := Trajectory(problem, {"all": net}, theta0), 3, "sum")
    logged = unroll({"all": net}, Trajectory(problem, {"all": net}, theta0), 3, "log")
    assert plain.item() > 0
    replay = Trajectory(problem, {"all": net}, theta0)
    losses = [replay.advance({"all": net}).item() for _ in range(3)]
    assert plain.item() == pytest.approx(sum(losses), rel=1e-6)
    assert logged.item() == pytest.approx(sum(np.log(losses)), rel=1e-6)
    assert trajectory.step == 3


# ----- random scaling -----
def test_a_scaled_problem_is_the_problem_seen_through_other_units():
    family = QuadraticFamily(dim=3, batch=2, dtype=np.float64)
    problem = family.sample(np.random.default_rng(0))
    theta0 = problem.init_params(np.random.default_rng(1))
    scales = random_scales(np.random.default_rng(2), theta0, 3.0)
    assert all(s.shape == p.shape and s.dtype == p.dtype for s, p in zip(scales, theta0))
    assert np.all(np.abs(np.log(scales[0])) <= 3.0) and np.ptp(np.log(scales[0])) > 1.0
    scaled = ScaledProblem(problem, scales)
    start = scaled.start(theta0)
    np.testing.assert_allclose(start[0] * scales[0], theta0[0])
    params = [mg.Tensor(start[0], requires_grad=True, dtype=np.float64)]
    loss = scaled.loss(params)
    assert loss.item() == pytest.approx(problem.loss([mg.Tensor(theta0[0], dtype=np.float64)]).item())
    (grad,) = mg.grad(loss, params)
    (plain,) = mg.grad(problem.loss([t := mg.Tensor(theta0[0], requires_grad=True,
                                                     dtype=np.float64)]), [t])
    np.testing.assert_allclose(grad, scales[0] * plain)       # the chain rule: c * grad f


def test_random_scaling_meta_trains_on_scaled_problems():
    trainer = small_trainer(epochs=2, random_scale=2.0)
    seen = []
    original = trainer.train_trajectory

    def record(problem, theta0, assign=None, steps=None):
        seen.append(problem)
        return original(problem, theta0, assign, steps)
    trainer.train_trajectory = record
    trainer.fit()
    assert len(seen) == 2 and all(isinstance(p, ScaledProblem) for p in seen)
    assert not np.array_equal(seen[0].scales[0], seen[1].scales[0])


# ----- the curriculum -----
def small_trainer(tmp_path=None, epochs=4, **overrides):
    family = QuadraticFamily(dim=3, batch=4)
    config = MetaConfig(**{"steps": 20, "unroll": 10, "epochs": epochs, "meta_lr": 1e-2,
                           "validate_every": 2, "validation_problems": 2, **overrides})
    return MetaTrainer({"all": CoordinatewiseLSTM(replace(IMPROVED, lr=0.05))}, family, config,
                       out_dir=tmp_path, progress=False)


CURRICULUM = {"steps": 20, "epochs": 7, "curriculum": ((20, 3), (40, 2), (60, 2)),
              "validate_every": 2}


def test_curriculum_stages_and_their_validation_lengths():
    config = MetaConfig(unroll=10, validation_steps=80, **CURRICULUM)
    assert config.stages() == [(1, 3, 20, 40), (4, 5, 40, 60), (6, 7, 60, 80)]
    assert [config.stage(e)[0] for e in range(1, 8)] == [0, 0, 0, 1, 1, 2, 2]
    assert MetaConfig(steps=100, epochs=5).stages() == [(1, 5, 100, 100)]


@pytest.mark.parametrize("overrides, message", [
    ({"curriculum": ((20, 3), (20, 2))}, r"lengths must increase, got \[20, 20\]"),
    ({"curriculum": ((20, 3), (45, 2))}, r"multiples of unroll \(10\)"),
    ({"epochs": 6}, r"epochs its total \(7\)"),
    ({"curriculum": ((20, 0),)}, r"curriculum must be \(\(steps, epochs\), ...\)"),
    ({"validation_steps": 40}, r"validation_steps \(40\) must be at least the training length \(60\)"),
])
def test_curriculum_errors_name_the_setting(overrides, message):
    with pytest.raises(ValueError, match=message):
        MetaConfig(unroll=10, **{**CURRICULUM, **overrides}).check()


def test_curriculum_trains_each_stage_at_its_length_and_validates_on_the_next():
    trainer = small_trainer(**CURRICULUM)
    trained, validated = [], []
    original_train, original_validate = trainer.train_trajectory, trainer.validate

    def train(problem, theta0, assign=None, steps=None):
        trained.append(steps)
        return original_train(problem, theta0, assign, steps)

    def validate():
        validated.append((trainer.epoch, trainer.config.stages()[trainer.stage_index][3]))
        return original_validate()
    trainer.train_trajectory, trainer.validate = train, validate
    trainer.fit()
    assert trained == [20, 20, 20, 40, 40, 60, 60]
    # each stage validates its start, every 2 epochs and its last epoch, on the next length
    # (the last stage on its own: no validation_steps)
    assert [epoch for epoch, _ in validated] == [0, 2, 3, 3, 4, 5, 5, 6, 7]
    assert [length for _, length in validated][:3] == [40, 40, 40]
    assert [length for _, length in validated][3:] == [60, 60, 60, 60, 60, 60]


def test_each_stage_starts_from_the_best_network_of_the_one_before():
    trainer = small_trainer(**CURRICULUM)
    figures = iter([5.0, 1.0, 3.0,  9.0, 8.0, 7.0,  6.0, 5.0, 4.0])
    trainer.validate = lambda: next(figures)
    starts = {}
    original = trainer._start_stage

    def start_stage():
        started = original()
        if started:
            starts[trainer.epoch] = [p.data.copy() for p in trainer.params]
        return started
    snapshots = {}
    original_keep = trainer._validate_and_keep_best

    def keep():
        original_keep()
        snapshots[trainer.epoch] = [p.data.copy() for p in trainer.params]
    trainer._start_stage, trainer._validate_and_keep_best = start_stage, keep
    trainer.fit()
    assert sorted(starts) == [0, 3, 5]
    # stage 1's best was its validation at epoch 2 (figure 1.0): stage 2 starts from it
    assert all(np.array_equal(a, b) for a, b in zip(starts[3], snapshots[2]))
    # stage 2's best is its last (7.0 at epoch 5), stage 3's too (4.0 at epoch 7)
    assert all(np.array_equal(a, b) for a, b in zip(starts[5], snapshots[5]))
    assert trainer.best[:2] == (4.0, 7)


def test_a_curriculum_run_resumes_exactly(tmp_path):
    straight = small_trainer(tmp_path / "a", **CURRICULUM)
    straight.fit()
    first = small_trainer(tmp_path / "b", **CURRICULUM)
    first.fit(epochs=4)                   # stops inside the second stage
    resumed = small_trainer(tmp_path / "b", **CURRICULUM)
    resumed.fit(resume=True)
    assert resumed.validation == straight.validation
    assert resumed.best[:2] == straight.best[:2]
    for a, b in zip(straight.params, resumed.params):
        np.testing.assert_array_equal(a.data, b.data)
    assert (tmp_path / "a" / "optimizer.npz").read_bytes() == (tmp_path / "b" / "optimizer.npz").read_bytes()


# ----- several trajectories per meta-update -----
def test_side_by_side_trajectories_average_their_meta_gradients():
    trainer = small_trainer(epochs=1, trajectories_per_update=2, steps=10, unroll=10)
    pairs = draw_problems(trainer.family, np.random.default_rng(5), 2)
    captured = []
    trainer._meta_step = lambda grads: captured.append([g.copy() for g in grads])
    trainer.train_side_by_side(pairs)
    separate = []
    for problem, theta0 in pairs:
        trajectory = Trajectory(problem, trainer.networks, theta0)
        meta_loss = unroll(trainer.networks, trajectory, 10, trainer.config.objective)
        for p in trainer.params:
            p.grad = None
        meta_loss.backward()
        separate.append([p.grad.copy() for p in trainer.params])
    (mean,) = captured
    for got, a, b in zip(mean, *separate):
        np.testing.assert_allclose(got, (a + b) / 2, rtol=1e-6, atol=1e-9)
    assert max(np.abs(a - b).max() for a, b in zip(*separate)) > 1e-6     # two different problems


def test_side_by_side_meta_training_is_the_same_on_one_worker_or_two(tmp_path):
    def trained(workers):
        config = MetaConfig(steps=20, unroll=10, epochs=2, meta_lr=1e-2, validate_every=2,
                            validation_problems=1, trajectories_per_update=2, random_scale=1.0)
        with Runner(workers) as runner:
            trainer = MetaTrainer(
                {"all": CoordinatewiseLSTM(replace(IMPROVED, lr=0.05))},
                QuadraticFamily(dim=10, batch=128), config, progress=False, runner=runner,
                training_refs=lambda epoch: ProblemRef.all(ProblemSet("quadratic", "train",
                                                                      (0, 3, epoch), 2)))
            trainer.fit()
        return trainer
    one, two = trained(1), trained(2)
    assert one.history == two.history
    for a, b in zip(one.params, two.params):
        np.testing.assert_array_equal(a.data, b.data)


# ----- objectives that weigh some steps only -----
def test_objective_weights_and_which_unrolls_they_weigh():
    from optim.learned.meta import OBJECTIVES, weighs
    ramp, last = OBJECTIVES["log-ramp"][1], OBJECTIVES["log-last"][1]
    assert [ramp(t, 4) for t in (1, 2, 4)] == [0.25, 0.5, 1.0]
    assert [last(t, 100) for t in (1, 90, 91, 100)] == [0.0, 0.0, 1.0, 1.0]
    assert [weighs("log-last", start, 20, 100) for start in (0, 20, 60, 80)] == [
        False, False, False, True]
    assert all(weighs("sum", start, 20, 100) for start in (0, 40, 80))


def test_an_unweighed_unroll_coasts_without_a_meta_update_and_the_last_one_trains():
    trainer = small_trainer(epochs=1, steps=20, unroll=10, objective="log-last")
    updates = []
    original = trainer._meta_step
    trainer._meta_step = lambda grads: (updates.append(1), original(grads))
    problem, theta0 = draw_problems(trainer.family, np.random.default_rng(0), 1)[0]
    before = {k: v.copy() for k, v in trainer.networks["all"].state_dict().items()}
    losses = trainer.train_trajectory(problem, theta0)
    assert losses[0] == 0.0 and losses[1] != 0.0 and updates == [1]
    assert any(not np.array_equal(before[k], v)
               for k, v in trainer.networks["all"].state_dict().items())


def test_coasting_takes_the_steps_an_unroll_takes():
    problem = QuadraticFamily(dim=3, batch=2).sample(np.random.default_rng(0))
    theta0 = problem.init_params(np.random.default_rng(1))
    net = {"all": CoordinatewiseLSTM(IMPROVED)}
    net["all"].out_weight.data[...] = 0.3
    coasted, unrolled = Trajectory(problem, net, theta0), Trajectory(problem, net, theta0)
    losses = coasted.coast(net, 5)
    unroll(net, unrolled, 5)
    np.testing.assert_array_equal(coasted.theta["all"].data, unrolled.theta["all"].data)
    assert losses[-1] == unrolled.loss.item() and coasted.step == 5
    assert all(not t.requires_grad or t._parents == () for part in coasted.state["all"]
               for t in part)


def test_log_horizons_weighs_the_last_tenth_of_every_horizon_the_trajectory_reaches():
    from optim.learned.meta import horizon_weight, weighs
    assert [horizon_weight(t, 1000) for t in (90, 91, 100, 180, 181, 451, 900, 901, 1000)] == [
        0, 0.1, 0.1, 0, 0.05, 0.02, 0, 0.01, 0.01]
    assert sum(horizon_weight(t, 200) for t in range(1, 201)) == pytest.approx(2.0)   # 100, 200
    assert [horizon_weight(t, 150) for t in (100, 136, 150)] == [0.1, pytest.approx(10 / 150),
                                                                 pytest.approx(10 / 150)]
    assert [weighs("log-horizons", start, 100, 1000) for start in range(0, 1000, 100)] == [
        True, True, False, False, True, False, False, False, False, True]


def test_the_horizons_validation_figure_averages_the_last_tenth_of_each_horizon():
    trainer = small_trainer(epochs=1, validate_on="horizons", validation_steps=200,
                            validation_problems=1)
    losses = np.exp(-np.arange(201) / 100.0)          # log f_t = -t / 100
    import optim.learned.meta as meta
    original = meta.run
    meta.run = lambda job: losses
    try:
        figure = trainer.validate()
    finally:
        meta.run = original
    expected = np.mean([-np.arange(91, 101).mean() / 100, -np.arange(181, 201).mean() / 100])
    assert figure == pytest.approx(expected)
