"""Independent runs on every core, or on a Dask cluster, with numbers that do not depend on how
many workers there are.

The work of a comparison (every baseline at every learning rate on every validation problem,
every optimizer on every test problem) and of a validation during meta-training (the current
networks on each validation problem) is a list of runs that share nothing. A `Runner` maps a
function over such a list: in this process, in a pool of worker processes (the standard
library's `ProcessPoolExecutor`), or on a Dask cluster (`distributed.Client`'s executor). The
results come back in the order of the list, and each run is computed exactly as it would be
alone, so `--workers 1`, `--workers 2` and `--cluster` give identical figures.

A run reaches a worker as a small picklable job; problems travel as
`problem_sets.ProblemRef`s (which set, which problem), so that a worker rebuilds its data once
instead of receiving it with every job.

    with Runner(workers=2) as runner:
        losses = runner.map(evaluation.run, [(ref, 100, ("baseline", "Adam", 1e-3)) for ref in refs])
"""
import contextlib
import math
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed

from tqdm.auto import tqdm

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Jobs per worker in flight at once: enough to keep every worker busy while results come back,
# few enough that the progress bar moves and Ctrl-C is prompt.
CHUNKS_PER_WORKER = 8


def default_workers():
    """The cores this process may use (`os.sched_getaffinity` where it exists)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _run_chunk(fn, items):
    return [fn(item) for item in items]


def _ignore_interrupts():
    """A worker leaves Ctrl-C to the main process, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Runner:
    """Maps a function over independent jobs: in this process (workers=1, no cluster), in a
    pool of `workers` processes, or on the Dask cluster at address `cluster` (a scheduler
    address such as "tcp://10.0.0.5:8786", or a `distributed.Client`).

    The pool starts at the first `map` and lasts until `close` (or the end of a `with` block).
    Its workers start from a clean interpreter with one BLAS thread each (one thread per core
    is the fastest for these runs, and what makes them exact: a BLAS that splits a product
    over threads may add in another order), and the jobs' functions and arguments must be
    picklable: module-level functions, and `ProblemRef`s rather than problems.
    """

    def __init__(self, workers=1, cluster=None):
        if cluster is None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f"Runner: workers must be an integer of at least 1, got {workers!r}")
        self.workers, self.cluster = workers, cluster
        self._executor = self._client = None

    @property
    def parallel(self):
        return self.cluster is not None or self.workers > 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._executor is not None:
            if self._client is None:
                self._executor.shutdown(wait=True, cancel_futures=True)
            else:
                self._executor.shutdown(wait=True)     # Dask's has no cancel_futures
            self._executor = None
        if self._client is not None and self._client is not self.cluster:
            self._client.close()
        self._client = None

    def __repr__(self):
        where = f"cluster {self.cluster}" if self.cluster is not None else f"{self.workers} workers"
        return f"Runner({where})"

    def connect(self):
        """Connect to the cluster now (`map` would at its first call): raises ImportError
        without Dask's distributed, OSError if the scheduler cannot be reached."""
        if self.cluster is not None:
            self._start()

    def _start(self):
        if self._executor is not None:
            return self._executor
        if self.cluster is not None:
            try:
                from distributed import Client
            except ImportError:
                raise ImportError("Runner: a cluster needs Dask's distributed scheduler: "
                                  "pip install -e '.[cluster]'") from None
            self._client = (self.cluster if isinstance(self.cluster, Client)
                            else Client(self.cluster))
            self._executor = self._client.get_executor(pure=False)
        else:
            for variable in BLAS_THREAD_VARIABLES:      # inherited by the workers
                os.environ.setdefault(variable, "1")
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() \
                else "spawn"
            context = multiprocessing.get_context(method)
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context,
                                                 initializer=_ignore_interrupts)
        return self._executor

    def map(self, fn, jobs, desc=None, progress=True):
        """[fn(job) for job in jobs], in that order, with one progress bar over all of them.
        On Ctrl-C the jobs not yet started are cancelled and the pool is shut down."""
        jobs = list(jobs)
        bar = tqdm(total=len(jobs), desc=desc, leave=False, disable=not progress,
                   dynamic_ncols=True)
        with bar:
            if not self.parallel or len(jobs) <= 1:
                results = []
                for job in jobs:
                    results.append(fn(job))
                    bar.update(1)
                return results
            executor = self._start()
            size = max(1, math.ceil(len(jobs) / (self._slots() * CHUNKS_PER_WORKER)))
            chunks = [jobs[i:i + size] for i in range(0, len(jobs), size)]
            futures = [executor.submit(_run_chunk, fn, chunk) for chunk in chunks]
            try:
                for future in as_completed(futures):
                    bar.update(len(future.result()))
            except BaseException:
                self._abandon(futures)
                raise
            return [result for future in futures for result in future.result()]

    def _abandon(self, futures):
        """Stop at once (Ctrl-C, or a job failed): cancel what has not started and, in a
        pool, end the workers running the rest, whose results nobody will read."""
        for future in futures:
            future.cancel()
        if self._client is None and self._executor is not None:
            # ProcessPoolExecutor.shutdown waits for running jobs (it has no terminate before
            # Python 3.14), so the workers are ended here.
            for process in list(getattr(self._executor, "_processes", {}).values()):
                process.terminate()
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self.close()

    def _slots(self):
        if self._client is not None:
            with contextlib.suppress(Exception):
                return max(1, sum(self._client.nthreads().values()))
        return self.workers
