"""The classic optimizers: their update rules, state, parameter groups and checks.

Expected values are worked out here, independently of optim.functional: by hand with literal
numbers for a few steps of a scalar parameter, and by a direct restatement of each textbook
formula (the `reference_*` functions below) for a fixed gradient sequence on a vector.
"""
import pickle

import numpy as np
import pytest

import minigrad as mg
import optim
from minigrad.nn import Parameter

# A fixed gradient sequence for a 2-vector parameter starting at P0; the second coordinate's
# gradient shrinks, so a running maximum of v (AMSGrad) differs from v itself.
P0 = np.array([1.0, -2.0])
GRADS = [np.array([0.5, -1.0]), np.array([0.2, 0.4]), np.array([-0.3, 0.1])]


def run(make_optimizer, grads, start, dtype=np.float64):
    """Feed the gradient sequence to an optimizer on one parameter; the values after each step."""
    p = Parameter(np.array(start, dtype=dtype), dtype=dtype)
    opt = make_optimizer([p])
    values = []
    for g in grads:
        p.grad = np.array(g, dtype=dtype)
        opt.step()
        values.append(p.data.copy())
    return values


# ----- worked by hand: a scalar parameter at 1.0, gradients 0.5, 0.2, -0.3 -------------------

SCALAR_GRADS = [0.5, 0.2, -0.3]


@pytest.mark.parametrize("make_optimizer, expected", [
    # plain: p -= 0.1 g
    (lambda ps: optim.SGD(ps, lr=0.1), [0.95, 0.93, 0.96]),
    # heavy ball: b = 0.5; 0.9*0.5 + 0.2 = 0.65; 0.9*0.65 - 0.3 = 0.285
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), [0.95, 0.885, 0.8565]),
    # averaged: b = 0.5 (the first gradient, undamped); 0.9*0.5 + 0.1*0.2 = 0.47;
    # 0.9*0.47 + 0.1*(-0.3) = 0.393
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.9), [0.95, 0.903, 0.8637]),
    # Nesterov: d = g + 0.9 b with b as in heavy ball: 0.95, 0.785, -0.0435
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), [0.905, 0.8265, 0.83085]),
    # weight decay: g = grad + 0.1 p: 0.6, 0.2 + 0.094 = 0.294, -0.3 + 0.09106 = -0.20894
    (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=0.1), [0.94, 0.9106, 0.931494]),
    # Adagrad: s = 0.25, 0.29, 0.38; p -= 0.1 g / sqrt(s)
    (lambda ps: optim.Adagrad(ps, lr=0.1),
     [0.9, 0.9 - 0.02 / 0.29 ** 0.5, 0.9 - 0.02 / 0.29 ** 0.5 + 0.03 / 0.38 ** 0.5]),
    # Adagrad with s_0 = 0.75: s = 1.0, 1.04, 1.13
    (lambda ps: optim.Adagrad(ps, lr=0.1, initial_accumulator_value=0.75),
     [0.95, 0.95 - 0.02 / 1.04 ** 0.5, 0.95 - 0.02 / 1.04 ** 0.5 + 0.03 / 1.13 ** 0.5]),
])
def test_updates_match_hand_computed_values(make_optimizer, expected):
    values = run(make_optimizer, [[g] for g in SCALAR_GRADS], [1.0])
    np.testing.assert_allclose(np.concatenate(values), expected, rtol=1e-9)


def test_first_rmsprop_step_is_lr_over_sqrt_one_minus_alpha_without_bias_correction():
    # v_1 = 0.01 * 0.25, so the step is 0.01 * 0.5 / 0.05 = 0.1 = 10 lr
    (value,) = run(lambda ps: optim.RMSprop(ps, lr=0.01, alpha=0.99), [[0.5]], [1.0])
    np.testing.assert_allclose(value, [0.9], rtol=1e-6)


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
def test_first_adam_step_is_lr_times_sign_of_the_gradient_thanks_to_bias_correction(cls):
    (value,) = run(lambda ps: cls(ps, lr=0.1, weight_decay=0.0), [[0.5, -2e-3]], [1.0, 1.0])
    np.testing.assert_allclose(value, [0.9, 1.1], rtol=1e-6)


# ----- the textbook formulas, restated -------------------------------------------------------

def reference_sgd(p, grads, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    out, b = [], None
    for grad in grads:
        g = grad + weight_decay * p
        if momentum:
            b = g if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        p = p - lr * g
        out.append(p)
    return out


def reference_adagrad(p, grads, lr, lr_decay=0.0, weight_decay=0.0,
                      initial_accumulator_value=0.0, eps=1e-10):
    out, s = [], initial_accumulator_value
    for t, grad in enumerate(grads, start=1):
        g = grad + weight_decay * p
        s = s + g ** 2
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
        out.append(p)
    return out


def reference_rmsprop(p, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                      centered=False):
    out, v, mean, b = [], 0.0, 0.0, 0.0
    for grad in grads:
        g = grad + weight_decay * p
        v = alpha * v + (1 - alpha) * g ** 2
        mean = alpha * mean + (1 - alpha) * g
        rms = np.sqrt(v - mean ** 2 if centered else v) + eps
        if momentum:
            b = momentum * b + g / rms
            p = p - lr * b
        else:
            p = p - lr * g / rms
        out.append(p)
    return out


def reference_adam(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                   decoupled=False):
    beta1, beta2 = betas
    out, m, v, v_max = [], 0.0, 0.0, 0.0
    for t, grad in enumerate(grads, start=1):
        if decoupled:
            p = p - lr * weight_decay * p
            g = grad
        else:
            g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        v_max = np.maximum(v_max, v)
        m_hat = m / (1 - beta1 ** t)
        v_hat = (v_max if amsgrad else v) / (1 - beta2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def reference_adamw(p, grads, weight_decay=0.01, **options):
    return reference_adam(p, grads, weight_decay=weight_decay, decoupled=True, **options)


FORMULA_CASES = [
    (optim.SGD, reference_sgd, dict(lr=0.1)),
    (optim.SGD, reference_sgd, dict(lr=0.1, momentum=0.9)),
    (optim.SGD, reference_sgd, dict(lr=0.1, momentum=0.8, dampening=0.8)),
    (optim.SGD, reference_sgd, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (optim.SGD, reference_sgd, dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05)),
    (optim.Adagrad, reference_adagrad, dict(lr=0.1)),
    (optim.Adagrad, reference_adagrad, dict(lr=0.1, initial_accumulator_value=0.3)),
    (optim.Adagrad, reference_adagrad, dict(lr=0.1, weight_decay=0.1, lr_decay=0.5)),
    (optim.RMSprop, reference_rmsprop, dict(lr=0.01)),
    (optim.RMSprop, reference_rmsprop, dict(lr=0.01, alpha=0.9, momentum=0.9)),
    (optim.RMSprop, reference_rmsprop, dict(lr=0.01, alpha=0.9, centered=True)),
    (optim.RMSprop, reference_rmsprop,
     dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.1)),
    (optim.Adam, reference_adam, dict(lr=0.1)),
    (optim.Adam, reference_adam, dict(lr=0.1, betas=(0.8, 0.5), amsgrad=True)),
    (optim.Adam, reference_adam, dict(lr=0.1, weight_decay=0.1, eps=1e-3)),
    (optim.AdamW, reference_adamw, dict(lr=0.1)),
    (optim.AdamW, reference_adamw, dict(lr=0.1, weight_decay=0.5)),
    (optim.AdamW, reference_adamw, dict(lr=0.1, betas=(0.8, 0.5), amsgrad=True, weight_decay=0.1)),
]


@pytest.mark.parametrize("cls, reference, options", FORMULA_CASES,
                         ids=[f"{c.__name__}-{o}" for c, _, o in FORMULA_CASES])
def test_three_steps_follow_the_stated_formula(cls, reference, options):
    values = run(lambda ps: cls(ps, **options), GRADS, P0)
    expected = reference(P0, GRADS, **options)
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cls, options, off", [
    (optim.SGD, dict(lr=0.1, momentum=0.9), dict(momentum=0.0)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.9), dict(dampening=0.0)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), dict(nesterov=False)),
    (optim.SGD, dict(lr=0.1, weight_decay=0.1), dict(weight_decay=0.0)),
    (optim.Adagrad, dict(lr=0.1, initial_accumulator_value=0.3),
     dict(initial_accumulator_value=0.0)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.9), dict(momentum=0.0)),
    (optim.RMSprop, dict(lr=0.01, centered=True), dict(centered=False)),
    (optim.Adam, dict(lr=0.1, betas=(0.8, 0.5), amsgrad=True), dict(amsgrad=False)),
    (optim.Adam, dict(lr=0.1, weight_decay=0.1), dict(weight_decay=0.0)),
    (optim.AdamW, dict(lr=0.1, weight_decay=0.1), dict(weight_decay=0.0)),
])
def test_each_option_changes_the_trajectory(cls, options, off):
    with_option = run(lambda ps: cls(ps, **options), GRADS, P0)
    without = run(lambda ps: cls(ps, **{**options, **off}), GRADS, P0)
    assert not np.allclose(with_option[-1], without[-1])


def test_adam_weight_decay_is_scaled_by_the_gradient_history_but_adamw_decay_is_not():
    # A large gradient on the first coordinate, none on the second: Adam's L2 term is divided
    # by sqrt(v) along with the gradient, AdamW shrinks both coordinates by lr * wd.
    grads = [np.array([100.0, 0.0])] * 3
    adam = run(lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1), grads, [1.0, 1.0])
    adamw = run(lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1), grads, [1.0, 1.0])
    np.testing.assert_allclose(adamw[0][1], 1.0 - 0.01 * 0.1, rtol=1e-12)
    np.testing.assert_allclose(adam[0][1], 1.0 - 0.01, rtol=1e-6)  # sign of the L2 gradient


# ----- convergence ----------------------------------------------------------------------------

QUADRATIC_SCALES = np.array([1.0, 4.0, 0.5])
QUADRATIC_TARGET = np.array([1.0, -2.0, 3.0])


@pytest.mark.parametrize("make_optimizer", [
    lambda ps: optim.SGD(ps, lr=0.2),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
    lambda ps: optim.SGD(ps, lr=0.5, momentum=0.9, dampening=0.9),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: optim.Adagrad(ps, lr=1.0),
    lambda ps: optim.RMSprop(ps, lr=0.01),
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    lambda ps: optim.Adam(ps, lr=0.05),
    lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True),
    lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.0),
])
def test_converges_on_a_quadratic(make_optimizer):
    # f(θ) = Σ a_i (θ_i − c_i)² / 2, minimum at c; gradients computed by minigrad.
    theta = Parameter(np.zeros(3), dtype=np.float64)
    opt = make_optimizer([theta])
    for _ in range(600):
        opt.zero_grad()
        loss = (mg.Tensor(QUADRATIC_SCALES, dtype=np.float64)
                * (theta - QUADRATIC_TARGET) ** 2).sum() * 0.5
        loss.backward()
        opt.step()
    np.testing.assert_allclose(theta.data, QUADRATIC_TARGET, atol=1e-2)


def test_adamw_decay_pulls_the_fixed_point_below_the_minimum_toward_one_over_weight_decay():
    # Adam's normalised step is at most about lr, the decay is lr * wd * θ: beyond θ = 1 / wd
    # the decay wins, so on (θ − 3)² with wd = 0.5 AdamW heads for θ = 2, not 3.
    theta = Parameter(np.array([3.0]), dtype=np.float64)
    opt = optim.AdamW([theta], lr=0.1, weight_decay=0.5)
    for _ in range(1000):
        opt.zero_grad()
        ((theta - 3.0) ** 2).sum().backward()
        opt.step()
    assert 2.0 < theta.data[0] < 2.2


# ----- a step on raw arrays, no graph ---------------------------------------------------------

@pytest.mark.parametrize("cls", [optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adam, optim.AdamW])
def test_step_writes_data_in_place_without_recording_a_graph(cls):
    w = Parameter(np.array([1.0, 2.0]))
    opt = cls([w], lr=0.1)
    (w * w).sum().backward()
    data, grad = w.data, w.grad
    grad_before = grad.copy()
    opt.step()
    assert w.data is data and not np.allclose(w.data, [1.0, 2.0])   # changed, in place
    assert w.grad is grad and np.array_equal(w.grad, grad_before)   # .grad untouched
    assert mg.is_grad_enabled()                                     # grad mode restored
    assert w.requires_grad and w._parents == () and w._backward is None  # still a leaf
    opt.zero_grad()
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad, 2 * w.data)   # the next gradient sees only the new point


def test_step_returns_the_loss_of_its_closure():
    w = Parameter(np.array([1.0]))
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 1.0 and w.data[0] == 0.5


def test_step_inside_an_outer_no_grad_leaves_grad_mode_off():
    w = Parameter(np.array([1.0]))
    opt = optim.SGD([w], lr=0.25)
    w.grad = np.array([1.0], dtype=np.float32)
    with mg.no_grad():
        opt.step()
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled() and w.data[0] == 0.75


def test_parameters_without_gradient_are_skipped():
    used, unused = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = optim.Adam([used, unused], lr=0.1)
    used.grad = np.ones(2, dtype=np.float32)
    opt.step()
    assert np.array_equal(unused.data, np.ones(2)) and unused not in opt.state
    assert opt.state[used]["step"] == 1


def test_zero_grad_sets_gradients_to_none():
    w = Parameter(np.ones(2))
    opt = optim.SGD([w], lr=0.1)
    w.grad = np.ones(2, dtype=np.float32)
    opt.zero_grad()
    assert w.grad is None


# ----- parameter groups -----------------------------------------------------------------------

def test_each_group_uses_its_own_hyperparameters_and_inherits_the_rest():
    a, b = Parameter(np.zeros(1), dtype=np.float64), Parameter(np.zeros(1), dtype=np.float64)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.0
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.9
    for _ in range(2):
        a.grad, b.grad = np.ones(1), np.ones(1)
        opt.step()
    np.testing.assert_allclose(a.data, [-0.2])               # 2 x 0.1 x 1
    np.testing.assert_allclose(b.data, [-0.5 - 0.5 * 1.9])   # buffer 1, then 1.9


def test_changing_a_group_hyperparameter_takes_effect_at_the_next_step():
    w = Parameter(np.zeros(1), dtype=np.float64)
    opt = optim.SGD([w], lr=0.1)
    w.grad = np.ones(1)
    opt.step()
    opt.param_groups[0]["lr"] = 0.01   # what a learning-rate schedule does
    opt.step()
    np.testing.assert_allclose(w.data, [-0.11])


def test_add_param_group_and_a_single_tensor_as_a_group():
    a, b = Parameter(np.zeros(1)), Parameter(np.zeros(1))
    opt = optim.Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "betas": (0.5, 0.9)})
    assert opt.param_groups[1]["params"] == [b] and opt.param_groups[1]["lr"] == 0.1
    assert opt.param_groups[1]["betas"] == (0.5, 0.9)


# ----- state_dict -----------------------------------------------------------------------------

ROUND_TRIP_CASES = [
    (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.5)),
    (optim.Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.9, centered=True)),
    (optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    (optim.AdamW, dict(lr=0.01, amsgrad=True)),
]


def _fit(opt, params, steps):
    """Full-batch least squares on fixed data: the same gradients for the same parameters."""
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.normal(size=(8, 3)).astype(np.float32))
    y = mg.Tensor(rng.normal(size=(8, 1)).astype(np.float32))
    w, b = params
    for _ in range(steps):
        opt.zero_grad()
        (((x @ w + b) - y) ** 2).mean().backward()
        opt.step()


def _two_groups(cls, options, params, **overrides):
    groups = [{"params": params[:1]}, {"params": params[1:], "lr": options["lr"] / 2}]
    return cls(groups, **{**options, **overrides})


def _fresh_params():
    return [Parameter(np.full((3, 1), 0.5)), Parameter(np.zeros(1))]


@pytest.mark.parametrize("cls, options", ROUND_TRIP_CASES,
                         ids=[f"{c.__name__}-{o}" for c, o in ROUND_TRIP_CASES])
def test_state_dict_round_trip_resumes_exactly(cls, options):
    uninterrupted = _fresh_params()
    _fit(_two_groups(cls, options, uninterrupted), uninterrupted, steps=6)

    params = _fresh_params()
    opt = _two_groups(cls, options, params)
    _fit(opt, params, steps=3)
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    copies = [Parameter(p.data.copy()) for p in params]
    # built with another learning rate: the state dict brings back the saved hyperparameters
    resumed = _two_groups(cls, options, copies, lr=1.0)
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["lr"] == options["lr"]
    _fit(resumed, copies, steps=3)
    for p, q in zip(copies, uninterrupted):
        assert np.array_equal(p.data, q.data)


def test_state_dict_is_a_copy_made_of_plain_python_and_numpy_data():
    params = _fresh_params()
    opt = optim.Adam(params, lr=0.1, amsgrad=True)
    _fit(opt, params, steps=2)
    saved = opt.state_dict()

    def plain(value):
        if isinstance(value, dict):
            return all(plain(k) and plain(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return all(plain(v) for v in value)
        return isinstance(value, (np.ndarray, int, float, bool, str, type(None)))

    assert plain(saved)
    assert saved["param_groups"][0]["params"] == [0, 1]
    assert set(saved["state"]) == {0, 1} and saved["state"][0]["step"] == 2
    exp_avg = saved["state"][0]["exp_avg"].copy()
    _fit(opt, params, steps=1)
    assert np.array_equal(saved["state"][0]["exp_avg"], exp_avg)


def test_load_state_dict_rejects_a_different_parameter_layout():
    params = _fresh_params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    _fit(opt, params, steps=1)
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="1 parameter groups, this optimizer has 2"):
        optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="has 1 parameters, the saved one has 2"):
        optim.SGD(params[:1], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="shape"):
        optim.SGD(params[::-1], lr=0.1).load_state_dict(saved)


# ----- checks on parameters and hyperparameters -----------------------------------------------

def _param():
    return Parameter(np.zeros(2))


@pytest.mark.parametrize("make, message", [
    (lambda: optim.SGD([_param()], lr=-0.1), r"SGD: invalid lr=-0.1"),
    (lambda: optim.SGD([_param()], lr=0.1, momentum=-0.5), r"invalid momentum=-0.5"),
    (lambda: optim.SGD([_param()], lr=0.1, dampening=-0.1), r"invalid dampening=-0.1"),
    (lambda: optim.SGD([_param()], lr=0.1, weight_decay=-1e-4), r"invalid weight_decay=-0.0001"),
    (lambda: optim.SGD([_param()], lr=0.1, nesterov=True),
     r"nesterov=True requires momentum > 0 and dampening = 0, got momentum=0.0"),
    (lambda: optim.SGD([_param()], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     r"got momentum=0.9, dampening=0.1"),
    (lambda: optim.SGD([_param()], lr="fast"), r"invalid lr='fast', expected a real number"),
    (lambda: optim.SGD([_param()], lr=float("nan")), r"invalid lr=nan"),
    (lambda: optim.Adagrad([_param()], eps=-1e-10), r"Adagrad: invalid eps=-1e-10"),
    (lambda: optim.Adagrad([_param()], initial_accumulator_value=-1.0),
     r"invalid initial_accumulator_value=-1.0"),
    (lambda: optim.Adagrad([_param()], lr_decay=-0.1), r"invalid lr_decay=-0.1"),
    (lambda: optim.RMSprop([_param()], alpha=1.5),
     r"RMSprop: invalid alpha=1.5, expected 0 <= alpha < 1"),
    (lambda: optim.RMSprop([_param()], momentum=-0.9), r"invalid momentum=-0.9"),
    (lambda: optim.RMSprop([_param()], eps=-1.0), r"invalid eps=-1.0"),
    (lambda: optim.Adam([_param()], betas=(1.0, 0.999)),
     r"Adam: invalid betas\[0\]=1.0, expected 0 <= betas\[0\] < 1"),
    (lambda: optim.Adam([_param()], betas=(0.9, -0.1)), r"invalid betas\[1\]=-0.1"),
    (lambda: optim.Adam([_param()], betas=0.9), r"invalid betas=0.9, expected a pair"),
    (lambda: optim.Adam([_param()], lr=-1e-3), r"Adam: invalid lr=-0.001"),
    (lambda: optim.AdamW([_param()], weight_decay=-0.01), r"AdamW: invalid weight_decay=-0.01"),
    (lambda: optim.Adam([{"params": [_param()], "eps": -1.0}]), r"invalid eps=-1.0"),
])
def test_bad_hyperparameters_raise_naming_the_argument_and_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_parameter_lists_raise_with_the_reason():
    w = _param()
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([{"params": []}], lr=0.1)
    with pytest.raises(ValueError, match="parameter 1 .* appears more than once"):
        optim.SGD([w, w], lr=0.1)
    with pytest.raises(ValueError, match="appears more than once"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(ValueError, match="parameter 0 has dtype int64; only floating-point"):
        optim.SGD([mg.Tensor(np.array([1, 2], dtype=np.int64))], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(TypeError, match="not a Tensor"):
        optim.SGD([np.zeros(2)], lr=0.1)


# ----- dtypes ---------------------------------------------------------------------------------

ALL_OPTIONS = [
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.9)),
    (optim.Adagrad, dict(lr=0.1, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.1)),
    (optim.RMSprop, dict(lr=0.1, momentum=0.9, centered=True, weight_decay=0.1)),
    (optim.Adam, dict(lr=0.1, amsgrad=True, weight_decay=0.1)),
    (optim.AdamW, dict(lr=0.1, amsgrad=True)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, options", ALL_OPTIONS, ids=[c.__name__ for c, _ in ALL_OPTIONS])
def test_parameters_and_state_keep_their_dtype(cls, options, dtype):
    # numpy float64 hyperparameters are what a sweep over np.logspace hands in
    options = {k: np.float64(v) if isinstance(v, float) else v for k, v in options.items()}
    w = Parameter(np.ones(3), dtype=dtype)
    opt = cls([w], **options)
    for _ in range(3):
        w.grad = np.full(3, 0.5, dtype=dtype)
        opt.step()
    assert w.data.dtype == dtype
    assert all(v.dtype == dtype for v in opt.state[w].values() if isinstance(v, np.ndarray))


def test_a_float64_gradient_does_not_upcast_a_float32_parameter():
    w = Parameter(np.ones(3, dtype=np.float32))
    opt = optim.Adam([w], lr=0.1)
    w.grad = np.full(3, 0.5)   # float64
    opt.step()
    assert w.data.dtype == np.float32 and opt.state[w]["exp_avg"].dtype == np.float32


# ----- the functional core --------------------------------------------------------------------

FUNCTIONAL = [
    ("sgd", optim.functional.sgd(lr=0.1, momentum=0.9)),
    ("adagrad", optim.functional.adagrad(lr=0.1, initial_accumulator_value=0.1)),
    ("rmsprop", optim.functional.rmsprop(lr=0.01, momentum=0.9, centered=True)),
    ("adam", optim.functional.adam(lr=0.01, amsgrad=True)),
    ("adamw", optim.functional.adamw(lr=0.01)),
]


@pytest.mark.parametrize("rule", [rule for _, rule in FUNCTIONAL],
                         ids=[name for name, _ in FUNCTIONAL])
def test_functional_update_is_pure_and_coordinatewise_on_any_shape(rule):
    rng = np.random.default_rng(0)
    params = rng.normal(size=(4, 5, 6)).astype(np.float32)
    grads = [rng.normal(size=params.shape).astype(np.float32) for _ in range(3)]
    param, state = params, rule.init(params)
    for g in grads:
        g_before, param_before = g.copy(), param.copy()
        state_before = {k: np.copy(v) for k, v in state.items()}
        new_param, new_state = rule.update(g, param, state)
        assert np.array_equal(g, g_before) and np.array_equal(param, param_before)
        assert all(np.array_equal(state[k], v) for k, v in state_before.items())
        param, state = new_param, new_state
    assert param.shape == params.shape and param.dtype == np.float32
    assert state["step"] == 3
    # the same three steps one coordinate at a time, as 0-d arrays
    flat_param, flat_grads = params.reshape(-1), [g.reshape(-1) for g in grads]
    for i in (0, 17, 119):
        p, s = flat_param[i][()], rule.init(flat_param[i][()])
        for g in flat_grads:
            p, s = rule.update(g[i][()], p, s)
        assert p.shape == () and p == param.reshape(-1)[i]


def test_functional_rules_bind_hyperparameters_once_and_init_creates_what_update_needs():
    nag = optim.functional.sgd(lr=0.1, momentum=0.9, nesterov=True)
    assert set(nag.init(np.zeros(3))) == {"step", "momentum_buffer"}
    assert set(optim.functional.sgd(lr=0.1).init(np.zeros(3))) == {"step"}
    assert set(optim.functional.adam(amsgrad=True).init(np.zeros(3))) == {
        "step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    np.testing.assert_array_equal(
        optim.functional.adagrad(initial_accumulator_value=0.5).init(np.zeros(2))["sum"], 0.5)
    # Nesterov on f = x^2 / 2 (gradient x) from x = 1, lr 0.1, by hand:
    # b = 1, d = 1 + 0.9 * 1 = 1.9, x = 0.81; b = 0.9 + 0.81 = 1.71, d = 0.81 + 1.539 = 2.349,
    # x = 0.81 - 0.2349 = 0.5751
    x, state = np.array([1.0]), nag.init(np.array([1.0]))
    for expected in (0.81, 0.5751):
        x, state = nag.update(x, x, state)
        np.testing.assert_allclose(x, [expected], rtol=1e-12)


def test_functional_update_names_mismatched_shapes():
    sgd = optim.functional.sgd(lr=0.1)
    with pytest.raises(ValueError, match=r"grad has shape \(2,\) but param has shape \(3,\)"):
        sgd.update(np.ones(2), np.zeros(3), sgd.init(np.zeros(3)))
