"""Meta-training speed: the wall time of one meta-training trajectory, minigrad against PyTorch
and JAX.

One trajectory with the paper's settings (section 3): a fresh problem, `--steps` (100) optimizer
steps taken `--unroll` (20) at a time by a coordinatewise 2-layer LSTM of 20 units; after each
unroll, the meta-loss sum_t f(theta_t) is backpropagated through the unroll and phi takes one
meta-Adam step (lr 1e-3). Tasks:
- mnist: the 784-20-10 sigmoid MLP on minibatches of 128 (15,910 coordinates), preprocessing
  on (p = 10), output scale 0.1: NetworkConfig() and MNISTFamily().
- quadratic: a batch of 128 10-dimensional quadratics (1,280 coordinates), no preprocessing,
  output scale 1: NetworkConfig(preprocess=False, output_scale=1.0), QuadraticFamily(10, 128).

The minigrad side is the project's own meta-training code, `MetaTrainer.train_trajectory`.
The PyTorch side re-implements the same workload in eager PyTorch, in this process, with the
same weights, problems, minibatches, float32 and thread count. It runs in two forms, with
`torch.nn.LSTMCell` and with the cell written out (one addmm, chunk, the gate functions); the
ratio is taken against the faster one. The JAX side (benchmarks/_jax_trajectory.py) is the
same workload written for `jax.jit`: each unroll one jitted function (a lax.scan over the
steps, the optimizee's gradient under stop_gradient, the meta-gradient, meta-Adam), compiled
before the timing. Before timing, the first unroll's meta-loss and meta-gradient of each are
compared with minigrad's: equal numbers are what make the times comparable.

After one untimed trajectory each, the contenders' trajectories alternate (minigrad, torch
LSTMCell, torch written out, jax, minigrad, ...), so load drift on a shared machine affects them
alike. Another contender times the fused LSTM cells alone at the trajectory's shapes (both
layers, forward and backward, at every step, with no graph, loss or optimizer around them): a
floor for minigrad's trajectory with this cell, printed as a fraction of PyTorch's trajectory.
The medians are printed, each contender's CPU time per second of wall time in its turns (1.0
for one busy thread), then the peak memory of two minigrad trajectories (tracemalloc sees
numpy's allocations), then the ratios: `ratio_vs_jax=X`, and last `ratio_vs_torch=X`. Without
PyTorch or JAX, the other contenders run and the missing one is reported as not installed.

    python benchmarks/meta_trajectory.py --task {mnist,quadratic} [--trajectories 5]
        [--steps 100] [--unroll 20] [--threads 1] [--no-memory]
"""
from _common import configure_threads

if __name__ == "__main__":
    configure_threads()       # before numpy is imported: the BLAS reads its thread count then

import argparse  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from _common import describe_threads, interleaved_times, load_torch, median, print_ratio  # noqa: E402
from models.problems import MNISTFamily, QuadraticFamily, draw_problems  # noqa: E402
from optim.learned import CoordinatewiseLSTM, MetaConfig, MetaTrainer, NetworkConfig  # noqa: E402
from optim.learned.meta import Trajectory, unroll  # noqa: E402

META_LR = 1e-3
# XLA's flags for single-threaded kernels; read when jax starts its CPU backend.
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def task_setup(task):
    """(network config, problem family) of the task, as the issue and the paper set them."""
    if task == "mnist":
        return NetworkConfig(), MNISTFamily()
    return NetworkConfig(preprocess=False, output_scale=1.0), QuadraticFamily(dim=10, batch=128)


def cells_alone(config, n_coords, steps, seed=0):
    """A function running the optimizer network's fused cells as a trajectory does, and nothing
    else: at each of `steps` steps, every layer's lstm_cell forward on (n_coords, ...) inputs
    and its backward (the node's own closure, called directly, with a fixed output gradient).
    The first layer's input is a constant, as the preprocessed gradient is."""
    rng = np.random.default_rng(seed)
    widths = (config.input_size,) + tuple(config.layers[:-1])
    weights = [(mg.Tensor(0.1 * rng.standard_normal((width + hidden, 4 * hidden))),
                mg.Tensor(np.zeros(4 * hidden)))
               for width, hidden in zip(widths, config.layers)]
    for W, b in weights:
        W.requires_grad = b.requires_grad = True
    first_input = mg.Tensor(rng.standard_normal((n_coords, config.input_size)))
    output_grads = [rng.standard_normal((n_coords, 2 * hidden)).astype(np.float32)
                    for hidden in config.layers]

    def as_leaf(tensor):
        """The same data as a new leaf that requires grad (no copy)."""
        leaf = tensor.detach()
        leaf.requires_grad = True
        return leaf

    def run():
        state = [(as_leaf(mg.Tensor(np.zeros((n_coords, hidden)))),
                  as_leaf(mg.Tensor(np.zeros((n_coords, hidden))))) for hidden in config.layers]
        for _ in range(steps):
            x = first_input
            for layer, ((W, b), (h, c)) in enumerate(zip(weights, state)):
                h_new, c_new = F.lstm_cell(x, h, c, W, b)
                h_new._parents[0]._backward(output_grads[layer])
                state[layer] = as_leaf(h_new), as_leaf(c_new)
                x = as_leaf(h_new)
    return run


# ----- the same workload in PyTorch -----
class TorchNetwork:
    """CoordinatewiseLSTM in PyTorch, starting from a minigrad network's weights.

    cell="lstmcell": torch.nn.LSTMCell per layer (its weight_ih, weight_hh are minigrad's W
    split and transposed; bias_hh is frozen at zero, so bias_ih is minigrad's b).
    cell="manual": gates = addmm(b, cat([x, h]), W), chunked into i, f, g, o, as minigrad does.
    """

    def __init__(self, torch, net, cell):
        self.torch, self.cell = torch, cell
        config = net.config
        self.preprocess, self.p, self.scale = config.preprocess, config.preprocess_p, config.output_scale
        self.layers, self.params = [], []
        for lstm in net.cells:
            W, b = lstm.weight.data, lstm.bias.data
            n_in = W.shape[0] - lstm.hidden_size
            if cell == "lstmcell":
                module = torch.nn.LSTMCell(n_in, lstm.hidden_size)
                with torch.no_grad():
                    module.weight_ih.copy_(torch.from_numpy(W[:n_in].T.copy()))
                    module.weight_hh.copy_(torch.from_numpy(W[n_in:].T.copy()))
                    module.bias_ih.copy_(torch.from_numpy(b))
                    module.bias_hh.zero_()
                module.bias_hh.requires_grad_(False)
                self.layers.append(module)
                self.params += [module.weight_ih, module.weight_hh, module.bias_ih]
            else:
                pair = (self._leaf(W), self._leaf(b))
                self.layers.append(pair)
                self.params += list(pair)
        self.out_weight, self.out_bias = self._leaf(net.out_weight.data), self._leaf(net.out_bias.data)
        self.params += [self.out_weight, self.out_bias]
        self.hidden = [lstm.hidden_size for lstm in net.cells]

    def _leaf(self, array):
        return self.torch.tensor(array, dtype=self.torch.float32, requires_grad=True)

    def initial_state(self, n):
        zeros = [self.torch.zeros(n, hidden) for hidden in self.hidden]
        return [(z, z) for z in zeros]

    def preprocess_gradients(self, grad):
        """optim.learned.preprocess_gradients (appendix A) in torch."""
        torch, p = self.torch, self.p
        magnitude = grad.abs()
        big = magnitude >= math.exp(-p)
        first = torch.where(big, magnitude.log() / p, -1.0)
        second = torch.where(big, grad.sign(), math.exp(p) * grad)
        return torch.stack([first, second], dim=1)

    def __call__(self, grad, state):
        torch = self.torch
        x = self.preprocess_gradients(grad) if self.preprocess else grad.view(-1, 1)
        new_state = []
        for layer, (h, c) in zip(self.layers, state):
            if self.cell == "lstmcell":
                h, c = layer(x, (h, c))
            else:
                W, b = layer
                i, f, g, o = torch.addmm(b, torch.cat([x, h], dim=1), W).chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            new_state.append((h, c))
            x = h
        update = torch.addmm(self.out_bias, x, self.out_weight) * self.scale
        return update.view(-1), new_state

    def gradients_in_minigrad_layout(self):
        """The parameters' .grad, arranged as CoordinatewiseLSTM.parameters() are."""
        grads = []
        for layer in self.layers:
            if self.cell == "lstmcell":
                grads.append(np.concatenate([layer.weight_ih.grad.numpy().T,
                                             layer.weight_hh.grad.numpy().T]))
                grads.append(layer.bias_ih.grad.numpy())
            else:
                grads += [layer[0].grad.numpy(), layer[1].grad.numpy()]
        return grads + [self.out_weight.grad.numpy(), self.out_bias.grad.numpy()]


class TorchQuadratic:
    """QuadraticProblem's loss, mean_i ||W_i theta_i - y_i||^2, on the same W and y."""

    def __init__(self, torch, problem):
        self.W, self.y = torch.from_numpy(problem.W), torch.from_numpy(problem.y)
        self.batch, self.dim = problem.y.shape

    def loss(self, theta, step):
        residual = (self.W @ theta.view(self.batch, self.dim, 1)).view(self.batch, self.dim) - self.y
        return (residual * residual).sum(dim=1).mean()


class TorchMLP:
    """MLPProblem's loss: cross-entropy of the sigmoid MLP on step `step`'s minibatch (the same
    indices, drawn by the problem's own `batch_indices`)."""

    def __init__(self, torch, problem):
        self.torch, self.problem = torch, problem
        self.shapes = [tuple(s) for s in problem.param_shapes]

    def loss(self, theta, step):
        torch = self.torch
        params, offset = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            params.append(theta[offset:offset + size].view(shape))
            offset += size
        index = self.problem.batch_indices(step)
        x = torch.from_numpy(self.problem.images[index])
        labels = torch.from_numpy(self.problem.labels[index])
        n_layers = len(params) // 2
        for layer in range(n_layers):
            x = torch.addmm(params[2 * layer + 1], x, params[2 * layer])
            if layer < n_layers - 1:
                x = torch.sigmoid(x)
        return torch.nn.functional.cross_entropy(x, labels)


class TorchTrajectory:
    """Trajectory in torch: theta, the first-order gradient at theta (detached: no
    create_graph), and the LSTM state; `unroll` returns the meta-loss sum_t f(theta_t)."""

    def __init__(self, torch, net, problem, theta0):
        self.torch, self.net = torch, net
        self.f = TorchQuadratic(torch, problem) if hasattr(problem, "W") else TorchMLP(torch, problem)
        flat = np.concatenate([p.reshape(-1) for p in theta0])
        self.theta = torch.from_numpy(flat).clone().requires_grad_()
        self.state = net.initial_state(flat.size)
        self.step = 0
        self.evaluate()

    def evaluate(self):
        self.loss = self.f.loss(self.theta, self.step)
        self.grad, = self.torch.autograd.grad(self.loss, self.theta, retain_graph=True)
        return self.loss

    def unroll(self, length):
        meta_loss = 0
        for _ in range(length):
            update, self.state = self.net(self.grad, self.state)
            self.theta = self.theta + update
            self.step += 1
            meta_loss = meta_loss + self.evaluate()
        return meta_loss

    def detach(self):
        self.theta = self.theta.detach().requires_grad_()
        self.state = [(h.detach(), c.detach()) for h, c in self.state]


def torch_train_trajectory(torch, net, meta_optimizer, problem, theta0, steps, length):
    """MetaTrainer.train_trajectory in torch: per unroll, meta-loss, backward, global norm,
    one Adam step on phi, then cut the graph."""
    trajectory = TorchTrajectory(torch, net, problem, theta0)
    losses = []
    for _ in range(steps // length):
        meta_loss = trajectory.unroll(length)
        losses.append(meta_loss.item())
        meta_optimizer.zero_grad(set_to_none=True)
        meta_loss.backward()
        norm = math.sqrt(sum(float((p.grad * p.grad).sum()) for p in net.params))
        if math.isfinite(norm):
            meta_optimizer.step()
        trajectory.detach()
    return losses


# ----- JAX -----
def load_jax_trajectory(threads):
    """benchmarks/_jax_trajectory (the JAX contender) if JAX is installed, else None.

    With one thread, XLA_FLAGS asks for single-threaded kernels, but jax's CPU client still runs
    its computations on a pool with a thread per CPU the process may use (sched_getaffinity, read
    when the backend starts; no flag sets it). So the process is confined to one CPU while jax
    starts its backend, and then every thread, the pool's included, gets all CPUs back: one
    worker thread, free to run on any core, as minigrad and PyTorch run. With more threads, XLA
    keeps its default, a thread per CPU."""
    if threads == 1:
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip()
    try:
        import jax
    except ImportError:
        return None
    if threads == 1 and hasattr(os, "sched_setaffinity"):
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})
        try:
            jax.devices()
        finally:
            for thread in os.listdir("/proc/self/task"):
                os.sched_setaffinity(int(thread), cpus)
    import _jax_trajectory
    return _jax_trajectory


def xla_pool_threads():
    """The number of threads in XLA's CPU pool (named tf_XLAEigen), or None where /proc is not."""
    try:
        names = []
        for thread in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{thread}/comm") as comm:
                names.append(comm.read().strip())
    except OSError:
        return None
    return sum(name.startswith("tf_XLAEigen") for name in names)


# ----- the check that all compute the same numbers -----
def minigrad_first_unroll(config, problem, theta0, length):
    """Meta-loss and meta-gradient (in phi's order) of one unroll from the initial weights."""
    net = CoordinatewiseLSTM(config)
    trajectory = Trajectory(problem, {"all": net}, theta0)
    meta_loss = unroll({"all": net}, trajectory, length)
    meta_loss.backward()
    return meta_loss.item(), [p.grad for p in net.parameters()]


def torch_first_unroll(torch, config, problem, theta0, length, cell):
    """The same in torch, with the given cell form."""
    twin = TorchNetwork(torch, CoordinatewiseLSTM(config), cell)
    meta_loss = TorchTrajectory(torch, twin, problem, theta0).unroll(length)
    meta_loss.backward()
    return meta_loss.item(), twin.gradients_in_minigrad_layout()


def print_check(name, ours, theirs):
    """One `check:` line: the meta-losses, their relative difference, and the largest over phi's
    tensors of max|g_theirs - g_ours| / max|g_ours|."""
    (value, grads), (their_value, their_grads) = ours, theirs
    difference = max(float(np.abs(t - o).max() / max(np.abs(o).max(), 1e-30))
                     for t, o in zip(their_grads, grads))
    print(f"check ({name}): first-unroll meta-loss minigrad {value:.7g}, {name} {their_value:.7g} "
          f"(relative difference {abs(their_value - value) / abs(value):.1e}); meta-gradient max "
          f"relative difference {difference:.1e}")


def with_cpu_time(fn, cpu, wall):
    """fn, adding the process's CPU time and the wall time of each call to the lists given."""
    def timed():
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return timed


# ----- memory -----
def peak_memory(trainer, problems):
    """tracemalloc's peak (bytes) during each trajectory, and what is still held after it."""
    tracemalloc.start()
    try:
        figures = []
        for problem, theta0 in problems:
            tracemalloc.reset_peak()
            trainer.train_trajectory(problem, theta0)
            current, peak = tracemalloc.get_traced_memory()
            figures.append((peak, current))
    finally:
        tracemalloc.stop()
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["mnist", "quadratic"], default="mnist")
    parser.add_argument("--trajectories", type=int, default=5, help="timed trajectories per side")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--unroll", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="BLAS, torch and XLA threads")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc run")
    args = parser.parse_args()
    torch = load_torch(args.threads)
    jax_side = load_jax_trajectory(args.threads)
    config, family = task_setup(args.task)
    problems = draw_problems(family, np.random.default_rng(0), args.trajectories + 1)
    n_coords = problems[0][0].n_coords

    print(f"task {args.task}: {n_coords} coordinates, {args.steps} steps unrolled {args.unroll} at "
          f"a time, LSTM {config.layers}, preprocess={config.preprocess}, float32")
    print(describe_threads(args.threads, torch))
    if jax_side is not None:
        print(f"jax {jax_side.jax.__version__}: XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; "
              f"threads in XLA's CPU pool: {xla_pool_threads()}")

    meta_config = MetaConfig(steps=args.steps, unroll=args.unroll, meta_lr=META_LR)
    net = CoordinatewiseLSTM(config)
    trainer = MetaTrainer({"all": net}, family, meta_config, progress=False)
    contenders = {}
    queue = {"minigrad": iter(problems * 2)}

    def run_minigrad():
        trainer.train_trajectory(*next(queue["minigrad"]))
    contenders["minigrad"] = run_minigrad
    contenders["cells alone"] = cells_alone(config, n_coords, args.steps)

    problem, theta0 = problems[0]
    if torch is not None or jax_side is not None:
        ours = minigrad_first_unroll(config, problem, theta0, args.unroll)
    if torch is not None:
        for cell in ("lstmcell", "manual"):
            print_check(f"torch-{cell}", ours,
                        torch_first_unroll(torch, config, problem, theta0, args.unroll, cell))
        for cell in ("lstmcell", "manual"):
            twin = TorchNetwork(torch, CoordinatewiseLSTM(config), cell)
            meta_optimizer = torch.optim.Adam(twin.params, lr=META_LR)
            queue[cell] = iter(problems * 2)

            def run_torch(twin=twin, meta_optimizer=meta_optimizer, cell=cell):
                torch_train_trajectory(torch, twin, meta_optimizer, *next(queue[cell]),
                                       args.steps, args.unroll)
            contenders[f"torch-{cell}"] = run_torch
    if jax_side is not None:
        jax_trainer = jax_side.JaxMetaTrainer(CoordinatewiseLSTM(config), family, args.steps,
                                              args.unroll, META_LR)
        print_check("jax", ours, jax_trainer.first_unroll(problem, theta0))
        queue["jax"] = iter(problems * 2)
        contenders["jax"] = lambda: jax_trainer.train_trajectory(*next(queue["jax"]))

    for run in contenders.values():          # untimed: imports, compilation, caches, allocations
        run()
    cpu = {name: [] for name in contenders}
    wall = {name: [] for name in contenders}
    times = interleaved_times({name: with_cpu_time(run, cpu[name], wall[name])
                               for name, run in contenders.items()}, args.trajectories)
    medians = {name: median(t) for name, t in times.items()}
    print(f"seconds per trajectory, median of {args.trajectories}:")
    for name, t in times.items():
        print(f"  {name:15s} {medians[name]:.3f}   (all: {' '.join(f'{s:.3f}' for s in t)})")
    print("CPU seconds per wall second in the timed turns: " + ", ".join(
        f"{name} {sum(cpu[name]) / sum(wall[name]):.2f}" for name in contenders))
    fastest = theirs = None
    if torch is not None:
        fastest = min(("torch-lstmcell", "torch-manual"), key=medians.get)
        theirs = medians[fastest]
        print(f"the fused cells alone take {medians['cells alone'] / theirs:.3f} of PyTorch's "
              f"trajectory, {medians['cells alone'] / medians['minigrad']:.3f} of minigrad's")

    if not args.no_memory:
        figures = peak_memory(trainer, problems[:2])
        for k, (peak, held) in enumerate(figures):
            print(f"minigrad peak memory (tracemalloc), trajectory {k + 1}: {peak / 2**20:.1f} MiB "
                  f"(unroll {args.unroll}, {args.steps} steps); held after it: {held / 2**20:.1f} MiB")

    if torch is not None:
        print(f"minigrad {medians['minigrad']:.3f} s, pytorch {torch.__version__} eager "
              f"({fastest}) {theirs:.3f} s")
    else:
        print("pytorch: not installed")
    if jax_side is not None:
        print(f"minigrad {medians['minigrad']:.3f} s, jax {jax_side.jax.__version__} jit "
              f"{medians['jax']:.3f} s")
        print(f"ratio_vs_jax={medians['minigrad'] / medians['jax']:.3f}")
    else:
        print("jax: not installed")
        print("ratio_vs_jax=n/a")
    print_ratio(medians["minigrad"], theirs)


if __name__ == "__main__":
    main()
