"""Problem sets that travel: a `ProblemSet` says where a set of problems comes from (the task,
the split, the seed of its draw, the data options) in a few dozen bytes, and a `ProblemRef`
names one problem of it. A worker process (optim/learned/parallel.py) that receives a ref
builds the family and draws the set itself, once per process, instead of receiving the data
with every job; the draw is the same as in the main process, so the problem is too.
"""
from dataclasses import dataclass

import numpy as np

from models.problems import draw_problems

from .tasks import TASKS


@dataclass(frozen=True)
class ProblemSet:
    """Where a set of problems comes from: `count` problems drawn with
    np.random.default_rng(seed) from the family `make_family(split, data_dir=data_dir,
    subset=subset)` of task `task` (optim/learned/tasks.py). Small and picklable: a worker
    rebuilds the set from it. It never downloads: the data must be where data_dir says (the
    command loads, or downloads, it before any worker starts)."""

    task: str
    split: str
    seed: tuple
    count: int
    data_dir: str = None
    subset: int = None

    def pairs(self):
        """The (problem, theta_0) pairs, built once per process."""
        return problem_pairs(self)


@dataclass(frozen=True)
class ProblemRef:
    """Problem `index` of a ProblemSet."""

    problems: ProblemSet
    index: int

    def pair(self):
        """(problem, theta_0)."""
        return self.problems.pairs()[self.index]

    @staticmethod
    def all(problems):
        """A ref to each problem of ProblemSet `problems`."""
        return [ProblemRef(problems, i) for i in range(problems.count)]


_families = {}     # (task, split, data_dir, subset) -> family, in this process
_pairs = {}        # ProblemSet -> its pairs, in this process


def family_of(task, split, data_dir=None, subset=None, download=False):
    """TASKS[task].make_family(split, ...), built once per process until `clear_caches`."""
    key = (task, split, data_dir, subset)
    if key not in _families:
        _families[key] = TASKS[task].make_family(split, data_dir=data_dir, download=download,
                                                 subset=subset)
    return _families[key]


def problem_pairs(problems):
    """The pairs of ProblemSet `problems`, drawn once per process until `clear_caches`."""
    if problems not in _pairs:
        family = family_of(problems.task, problems.split, problems.data_dir, problems.subset)
        _pairs[problems] = draw_problems(family, np.random.default_rng(list(problems.seed)),
                                         problems.count)
    return _pairs[problems]


def clear_caches():
    """Forget the families and problems built in this process (a command starts with it, so
    that nothing from an earlier call, with other data, is reused)."""
    _families.clear()
    _pairs.clear()
