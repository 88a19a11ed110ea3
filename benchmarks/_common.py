"""Shared by the benchmarks: the thread policy, timing, PyTorch detection, and the ratio line.

Thread policy. Every benchmark takes `--threads N` (default 1) and gives numpy's BLAS and
PyTorch the same N threads, so that the ratio compares engines, not thread counts. On a small,
shared machine multi-threaded OpenBLAS makes small matmuls 10-80x slower at random (threads spin
waiting for cores that other jobs hold), so one thread is the default. The BLAS reads its
thread count once, when numpy is imported: each benchmark calls `configure_threads()` before it
imports numpy, directly or through minigrad.
"""
import os
import statistics
import sys
import time

# Benchmark the tree these files live in, even where another copy of minigrad is installed.
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def configure_threads(argv=None):
    """Read `--threads N` from the command line (default 1) and set the BLAS thread variables.

    Must run before numpy is imported; returns N. The argument stays in argv for argparse.
    """
    if "numpy" in sys.modules:
        raise RuntimeError("configure_threads() must run before numpy is imported: the BLAS reads "
                           "its thread count at import")
    argv = sys.argv[1:] if argv is None else argv
    threads = 1
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            threads = int(argv[i + 1])
        elif arg.startswith("--threads="):
            threads = int(arg.split("=", 1)[1])
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    return threads


def load_torch(threads):
    """PyTorch if installed (set to `threads` threads), else None. The benchmarks never need it."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def median_time(fn, repeats, warmup=1):
    """Median wall time of `fn()` over `repeats` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_times(fns, rounds, per_round=1, warmup=0):
    """Wall times of each function in `fns` (a dict name -> fn), taking turns: in each of
    `rounds` rounds every contender in turn makes `warmup` untimed calls, then `per_round`
    timed ones. Taking turns exposes the contenders to the same load drift on a shared machine,
    so the ratio of their medians is steadier than two separate runs; the untimed calls let
    each one's caches and allocator settle after the other's turn. Returns {name: [seconds]}."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(warmup):
                fn()
            for _ in range(per_round):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times


def describe_threads(threads, torch):
    """One line saying how many threads each side uses."""
    blas = ", ".join(f"{name}={os.environ.get(name)}" for name in THREAD_VARIABLES)
    line = f"threads: {threads} ({blas})"
    if torch is not None:
        line += f"; torch.get_num_threads()={torch.get_num_threads()}"
    return line


def print_ratio(ours, theirs):
    """The last line every benchmark prints: minigrad's time over PyTorch's."""
    print(f"ratio_vs_torch={ours / theirs:.3f}" if theirs else "ratio_vs_torch=n/a")


def median(values):
    return statistics.median(values)
