"""Reproduce "Learning to learn by gradient descent by gradient descent" (Andrychowicz et al. 2016).

    python examples/learning_to_learn.py reproduce --task quadratic --out runs/quadratic
    python examples/learning_to_learn.py --help

The same command as the installed `learning-to-learn` console script: its logic is the
package's (optim/learned/cli.py, over the functions of optim/learned/experiments.py).
"""
from optim.learned.cli import console_main

if __name__ == "__main__":
    console_main()
