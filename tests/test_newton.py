"""NewtonCG: its steps against values computed by hand, the quadratic solved in one step, and
its surface (a closure, one group, no graph left behind)."""
import pathlib
import runpy

import numpy as np
import pytest

import minigrad as mg
from optim import NewtonCG

A = np.array([[3.0, 1.0], [1.0, 2.0]])
b = np.array([1.0, 1.0])


def quadratic(theta):
    """½ θᵀAθ − bᵀθ: gradient Aθ − b, Hessian A, minimum A⁻¹b = (1/5, 2/5)."""
    return 0.5 * (theta @ (mg.Tensor(A, dtype=np.float64) @ theta)) - (theta * b).sum()


@pytest.mark.parametrize("lr,damping,expected", [
    (1.0, 0.0, [1 / 5, 2 / 5]),          # A⁻¹ b: [[2, -1], [-1, 3]] / 5 times (1, 1)
    (1.0, 1.0, [2 / 11, 3 / 11]),        # (A + I)⁻¹ b: [[3, -1], [-1, 4]] / 11 times (1, 1)
    (0.5, 0.0, [1 / 10, 1 / 5])])
def test_a_step_on_a_quadratic_matches_the_hand_computed_newton_step(lr, damping, expected):
    theta = mg.Tensor([0.0, 0.0], requires_grad=True, dtype=np.float64)
    optimizer = NewtonCG([theta], lr=lr, damping=damping)
    optimizer.step(lambda: quadratic(theta))
    np.testing.assert_allclose(theta.data, expected, rtol=1e-12)
    assert optimizer.state[theta] == {"step": 1, "hvps": 2}


def test_steps_on_a_quartic_match_newtons_iteration_by_hand():
    x = mg.Tensor([1.0], requires_grad=True, dtype=np.float64)
    optimizer = NewtonCG([x])
    for expected in [2 / 3, 4 / 9]:          # x - f'/f'' = x - x³/(3x²) = 2x/3
        optimizer.step(lambda: (x ** 4).sum() / 4)
        np.testing.assert_allclose(x.data, [expected], rtol=1e-12)


def test_negative_curvature_on_the_first_direction_gives_a_gradient_step():
    # x² − y² at (1, 1): g = (2, −2), and along d = −g, dᵀHd = 2·4 − 2·4 = 0
    p = mg.Tensor([1.0, 1.0], requires_grad=True, dtype=np.float64)
    NewtonCG([p]).step(lambda: p[0] ** 2 - p[1] ** 2)
    np.testing.assert_allclose(p.data, [-1.0, 3.0])


def test_one_step_solves_a_least_squares_problem_over_several_parameters():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 4)), rng.standard_normal(20)
    w = mg.Tensor(np.zeros((3, 1)), requires_grad=True, dtype=np.float64)
    c = mg.Tensor(np.zeros(1), requires_grad=True, dtype=np.float64)

    def loss():
        residual = (mg.Tensor(X[:, :3], dtype=np.float64) @ w).reshape(20) + c - y
        return (residual * residual).mean()
    optimizer = NewtonCG([w, c])
    optimizer.step(loss)
    design = np.column_stack([X[:, :3], np.ones(20)])
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(np.concatenate([w.data.ravel(), c.data]), solution, rtol=1e-9)
    assert optimizer.state[w]["hvps"] <= 4


def test_a_step_builds_no_graph_and_leaves_grad_alone():
    theta = mg.Tensor([0.3, -0.2], requires_grad=True, dtype=np.float64)
    loss = NewtonCG([theta]).step(lambda: quadratic(theta))
    assert loss.item() == pytest.approx(0.5 * (0.3 * 0.7 + -0.2 * -0.1) - 0.1)     # the loss before
    assert theta.grad is None and theta.parents == () and theta.requires_grad


def test_newton_cg_needs_a_closure_and_one_parameter_group():
    theta = mg.Tensor([0.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"NewtonCG.step needs a closure"):
        NewtonCG([theta]).step()
    with pytest.raises(ValueError, match=r"NewtonCG: takes one parameter group"):
        NewtonCG([{"params": [theta]}, {"params": [mg.Tensor([1.0], requires_grad=True)]}])
    with pytest.raises(ValueError, match=r"NewtonCG: invalid damping=-1"):
        NewtonCG([theta], damping=-1)


def test_the_quadratic_example_shows_newton_on_the_optimum_in_one_step_of_dim_hvps(capsys):
    example = pathlib.Path(__file__).resolve().parent.parent / "examples" / "newton_quadratic.py"
    main = runpy.run_path(str(example))["main"]
    main(["--problems", "2", "--dim", "6", "--steps", "30"])
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| ")}
    assert rows["Newton-CG"][:5] == ["1", "2/2", "1", "1", "6"]
    assert rows["SGD"][1] == "0/2"


def test_newton_cg_resumes_from_its_state_dict():
    theta = mg.Tensor([0.0, 0.0], requires_grad=True, dtype=np.float64)
    optimizer = NewtonCG([theta], damping=0.5)
    optimizer.step(lambda: quadratic(theta))
    other = mg.Tensor(theta.data.copy(), requires_grad=True, dtype=np.float64)
    resumed = NewtonCG([other])
    resumed.load_state_dict(optimizer.state_dict())
    optimizer.step(lambda: quadratic(theta))
    resumed.step(lambda: quadratic(other))
    np.testing.assert_array_equal(other.data, theta.data)
    assert resumed.state[other] == {"step": 2, "hvps": 4}
