"""Meta-training's peak memory is set by the unroll length: truncated backpropagation keeps one
unroll's graph at a time, and nothing of it survives the unroll (tracemalloc sees numpy's
allocations)."""
import tracemalloc

import numpy as np
import pytest

from models.problems import QuadraticFamily
from optim.learned import CoordinatewiseLSTM, MetaConfig, MetaTrainer, NetworkConfig


def peak_memory(steps, unroll, trajectories=1):
    """Peak and still-held bytes during each of `trajectories` meta-training trajectories on
    small quadratics (320 coordinates), after one untimed trajectory."""
    family = QuadraticFamily(dim=10, batch=32)
    net = CoordinatewiseLSTM(NetworkConfig(preprocess=False, output_scale=1.0))
    trainer = MetaTrainer({"all": net}, family,
                          MetaConfig(steps=steps, unroll=unroll, validation_problems=1),
                          progress=False)
    rng = np.random.default_rng(0)
    problems = [family.sample(rng) for _ in range(trajectories + 1)]
    trainer.train_trajectory(problems[0], problems[0].init_params(rng))
    tracemalloc.start()
    try:
        figures = []
        for problem in problems[1:]:
            tracemalloc.reset_peak()
            trainer.train_trajectory(problem, problem.init_params(rng))
            held, peak = tracemalloc.get_traced_memory()
            figures.append((peak, held))
    finally:
        tracemalloc.stop()
    return figures


def test_peak_memory_grows_with_the_unroll_length():
    (short, _), = peak_memory(steps=20, unroll=5)
    (long, _), = peak_memory(steps=20, unroll=10)
    assert long > 1.6 * short, (short, long)


def test_peak_memory_does_not_grow_with_the_number_of_steps():
    (few, _), = peak_memory(steps=10, unroll=5)
    (many, _), = peak_memory(steps=40, unroll=5)
    assert many < 1.15 * few, (few, many)


def test_peak_memory_does_not_grow_over_trajectories():
    """No unroll's graph outlives it: what is still held after a trajectory (small arrays of
    the meta-optimizer, numpy's caches) is a small fraction of one unroll's graph."""
    figures = peak_memory(steps=10, unroll=5, trajectories=4)
    peaks, held = [p for p, _ in figures], [h for _, h in figures]
    assert max(peaks) < 1.1 * min(peaks), peaks
    assert max(held) < 0.25 * min(peaks), (held, peaks)


@pytest.mark.parametrize("unroll", [5, 10])
def test_an_unroll_holds_memory_in_proportion_to_its_coordinates_and_steps(unroll):
    """The graph of one unroll: per step and coordinate, a few hundred floats (two LSTM layers'
    saved inputs, gate values and states), not more."""
    (peak, _), = peak_memory(steps=unroll, unroll=unroll)
    per_step_and_coordinate = peak / (unroll * 320)
    assert per_step_and_coordinate < 400 * 4, per_step_and_coordinate
