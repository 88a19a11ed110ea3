"""examples/saddle_points.py: critical points found by Newton's method on the gradient and told
apart by the Hessian's eigenvalues; how SGD, momentum and Adam leave a saddle."""
import pathlib
import runpy

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def example():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(EXAMPLES))            # it imports optimizers_2d beside it
        yield runpy.run_path(str(EXAMPLES / "saddle_points.py"))


def test_himmelblaus_nine_critical_points_are_four_minima_a_maximum_and_four_saddles(example):
    points = example["critical_points"](example["himmelblau"], ((-5.0, 5.0), (-5.0, 5.0)))
    kinds = [kind for *_, kind in points]
    assert (kinds.count("minimum"), kinds.count("maximum"), kinds.count("saddle")) == (4, 1, 4)
    minima = sorted(tuple(np.round(p, 4)) for p, *_, kind in points if kind == "minimum")
    assert (3.0, 2.0) in minima
    (maximum,) = [p for p, *_, kind in points if kind == "maximum"]
    np.testing.assert_allclose(maximum, [-0.270845, -0.923039], atol=1e-6)


def test_the_saddles_hessian_has_eigenvalues_of_both_signs(example):
    value, gradient, hessian = example["value_gradient_hessian"](example["saddle"], np.zeros(2))
    np.testing.assert_array_equal(hessian, [[2, 0], [0, -2]])
    assert example["classify"](np.linalg.eigvalsh(hessian)) == "saddle"


def test_sgd_leaves_a_saddle_in_log_of_one_over_the_offset_steps_and_adam_at_once(example):
    escape, saddle, optimizers = example["escape"], example["saddle"], example["OPTIMIZERS"]
    sgd = [escape(saddle, np.zeros(2), r, optimizers["SGD"])[0] for r in (1e-2, 1e-5, 1e-8)]
    adam = [escape(saddle, np.zeros(2), r, optimizers["Adam"])[0] for r in (1e-2, 1e-5, 1e-8)]
    # y grows by 1 + 2 lr per step: about ln(1000) / ln(1.02) = 349 more steps per 1000x
    assert np.diff(sgd) == pytest.approx([349, 349], abs=2)
    assert max(adam) - min(adam) <= 2
    assert escape(saddle, np.zeros(2), 0.0, optimizers["SGD"])[0] is None
    assert example["exact_newton_escape"](saddle, np.zeros(2), 1e-2) is None
