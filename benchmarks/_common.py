"""Shared by the benchmarks: timing, PyTorch detection, and the ratio line."""
import os
import statistics
import time


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


def threads_in_use():
    """The thread count numpy's BLAS will use, as set by the usual environment variables."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(name):
            return int(os.environ[name])
    return os.cpu_count() or 1


def print_ratio(ours, theirs):
    """The last line every benchmark prints: minigrad's time over PyTorch's."""
    print(f"ratio_vs_torch={ours / theirs:.3f}" if theirs else "ratio_vs_torch=n/a")
