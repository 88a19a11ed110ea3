"""The improved learned optimizer's network (docs/optimizers.md, "The improved learned
optimizer"): its inputs, its output, its file and its state."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest

import minigrad as mg
from optim.classic import Adam
from optim.learned import (CoordinatewiseLSTM, LearnedOptimizer, NetworkConfig, load_networks,
                           save_networks)
from optim.learned.features import Moments

IMPROVED = NetworkConfig(layers=(4, 3), inputs="moments", output="adam", lr=0.01, seed=3)


# ----- inputs -----
def test_moments_are_bias_corrected_running_averages_divided_by_the_second_moment():
    moments = Moments(betas=(0.5, 0.9), beta2=0.99, eps=0.0, dtype=np.float64)
    state = moments.initial(2)
    grads = [np.array([2.0, -1.0]), np.array([1.0, 3.0])]
    for g in grads:
        x, state = moments.step(g, state)
    # by hand, coordinate 0: m_0.5 = 0.5*(0.5*2) + 0.5*1 = 1.0, m_0.9 = 0.9*0.2 + 0.1 = 0.28,
    # v = 0.99*(0.01*4) + 0.01*1 = 0.0496; corrections 1 - b^2: 0.75, 0.19, 0.0199
    v_hat = 0.0496 / 0.0199
    np.testing.assert_allclose(x[0], [1.0 / 0.75 / math.sqrt(v_hat), 0.28 / 0.19 / math.sqrt(v_hat),
                                      1.0 / math.sqrt(v_hat)])
    m, v, t = state
    np.testing.assert_allclose(m[0], [1.0, 0.28])
    np.testing.assert_allclose(v[0], [0.0496])
    np.testing.assert_array_equal(t, [[2.0], [2.0]])


def test_moment_inputs_do_not_depend_on_the_scale_of_the_gradient():
    moments = Moments(dtype=np.float64)
    grads = np.random.default_rng(0).normal(size=(5, 7))
    state, scaled = moments.initial(7), moments.initial(7)
    for g in grads:
        x, state = moments.step(g, state)
        y, scaled = moments.step(1000.0 * g, scaled)
    np.testing.assert_allclose(x, y, rtol=1e-6)


def test_moments_keep_the_dtype_and_never_change_their_inputs():
    moments = Moments()
    state = moments.initial(3)
    before = [a.copy() for a in state]
    x, new = moments.step(np.ones(3, np.float32), state)
    assert x.dtype == np.float32 and all(a.dtype == np.float32 for a in new)
    assert all(np.array_equal(a, b) for a, b in zip(state, before))


# ----- output -----
def test_adam_output_is_the_nominal_adam_step_rescaled_and_corrected():
    net = CoordinatewiseLSTM(replace(IMPROVED, dtype="float64"))
    net.out_weight.data[...] = np.random.default_rng(1).normal(size=net.out_weight.shape)
    net.out_bias.data[...] = [0.3, -0.2]
    grad = np.array([0.5, -2.0, 1e-3])
    state = net.initial_state(3)
    update, new_state = net(grad, state)
    # by hand: the first step's Adam direction is grad / (|grad| + eps); (a, b) = W h2 + w0
    h2 = new_state[1][0].data
    a, b = (h2 @ net.out_weight.data + net.out_bias.data).T
    direction = grad / (np.abs(grad) + 1e-8)
    expected = -0.01 * (np.exp(math.log(10) * np.tanh(a)) * direction + np.tanh(b))
    np.testing.assert_allclose(update.data, expected, rtol=1e-12)


def test_the_adam_terms_are_the_scale_and_the_correction_of_the_update():
    net = CoordinatewiseLSTM(replace(IMPROVED, dtype="float64"))
    net.out_weight.data[...] = np.random.default_rng(2).normal(size=net.out_weight.shape)
    grad = np.array([0.5, -2.0, 1e-3])
    out, moment_inputs, state = net.head(grad, net.initial_state(3))
    scale, correction = net.adam_terms(out)
    a, b = out.data.T
    np.testing.assert_allclose(scale.data, np.exp(math.log(10) * np.tanh(a)), rtol=1e-12)
    np.testing.assert_allclose(correction.data, np.tanh(b), rtol=1e-12)
    assert np.all((scale.data >= 0.1) & (scale.data <= 10))
    direction = grad / (np.abs(grad) + 1e-8)           # the first step's Adam direction
    update = net.update_of(out, moment_inputs)
    np.testing.assert_allclose(update.data, -0.01 * (scale.data * direction + correction.data),
                               rtol=1e-12)
    whole, whole_state = net(grad, net.initial_state(3))   # forward is head, then update_of
    np.testing.assert_array_equal(whole.data, update.data)
    for part, whole_part in zip(state, whole_state):
        for t, u in zip(part, whole_part):
            np.testing.assert_array_equal(t.data, u.data)
    paper = CoordinatewiseLSTM(NetworkConfig(layers=(3,)))
    with pytest.raises(ValueError, match="adam_terms: the network's output is 'update'"):
        paper.adam_terms(paper.head(grad, paper.initial_state(3))[0])


def test_at_the_start_the_improved_optimizer_is_adam_at_its_nominal_learning_rate():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(4, 5)).astype(np.float32)
    weights = [mg.Tensor(np.zeros((4, 5), np.float32), requires_grad=True) for _ in range(2)]
    learned = LearnedOptimizer([weights[0]], CoordinatewiseLSTM(IMPROVED))
    adam = Adam([weights[1]], lr=0.01)
    for _ in range(30):
        for w, opt in zip(weights, (learned, adam)):
            opt.zero_grad()
            (((w - mg.Tensor(target)) ** 2) * mg.Tensor(np.arange(5, dtype=np.float32))).sum().backward()
            opt.step()
    np.testing.assert_allclose(weights[0].data, weights[1].data, rtol=1e-5, atol=1e-7)
    assert np.abs(weights[0].data).max() > 0.2         # it moved


def test_network_options_are_checked():
    with pytest.raises(ValueError, match="inputs must be one of .*, got .adam."):
        NetworkConfig(inputs="adam")
    with pytest.raises(ValueError, match="output 'adam' needs 0.9 among the betas"):
        NetworkConfig(inputs="moments", output="adam", betas=(0.5, 0.99))
    with pytest.raises(ValueError, match="output must be 'update' or 'adam'"):
        NetworkConfig(output="sign")


def test_the_paper_inputs_with_the_adam_output_keep_the_moments_for_its_direction():
    net = CoordinatewiseLSTM(replace(IMPROVED, inputs="gradient"))
    assert net.cells[0].weight.shape[0] == 2 + 4           # the preprocessed gradient, and h
    state = net.initial_state(5)
    assert [len(part) for part in state] == [2, 2, 3]
    update, state = net(np.full(5, 0.3, np.float32), state)
    np.testing.assert_allclose(update.data, -0.01 * 0.3 / (0.3 + 1e-8), rtol=1e-5)   # Adam


def test_a_paper_network_writes_no_option_beyond_the_paper_and_an_improved_one_round_trips(tmp_path):
    assert set(json.loads(NetworkConfig().to_json())) == {
        "layers", "preprocess", "preprocess_p", "output_scale", "forget_bias", "zero_init", "seed",
        "dtype"}
    assert NetworkConfig.from_json(IMPROVED.to_json()) == IMPROVED
    net = CoordinatewiseLSTM(IMPROVED)
    save_networks(tmp_path / "opt.npz", {"all": net})
    loaded = load_networks(tmp_path / "opt.npz")["all"]
    assert loaded.config == IMPROVED
    grad = np.random.default_rng(2).normal(size=6).astype(np.float32)
    np.testing.assert_array_equal(net(grad, net.initial_state(6))[0].data,
                                  loaded(grad, loaded.initial_state(6))[0].data)


def test_state_dict_carries_the_moments_and_resumes_bit_exactly():
    rng = np.random.default_rng(0)
    target = rng.normal(size=8).astype(np.float32)

    def run(opt, w, steps):
        for _ in range(steps):
            opt.zero_grad()
            ((w - mg.Tensor(target)) ** 2).sum().backward()
            opt.step()

    net = CoordinatewiseLSTM(replace(IMPROVED, output="adam"))
    net.out_weight.data[...] = 0.5
    straight = mg.Tensor(np.zeros(8, np.float32), requires_grad=True)
    run(LearnedOptimizer([straight], net), straight, 8)
    first = mg.Tensor(np.zeros(8, np.float32), requires_grad=True)
    opt = LearnedOptimizer([first], net)
    run(opt, first, 3)
    saved = opt.state_dict()
    assert [len(part) for part in saved["state"]["all"]] == [2, 2, 3]   # (h, c) x 2, (m, v, t)
    resumed = LearnedOptimizer([first], net)
    resumed.load_state_dict(saved)
    run(resumed, first, 5)
    np.testing.assert_array_equal(first.data, straight.data)
