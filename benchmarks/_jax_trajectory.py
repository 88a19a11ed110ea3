"""meta_trajectory.py's workload written in JAX the way a JAX user would: one jitted function
per unroll.

The same coordinatewise 2-layer LSTM as CoordinatewiseLSTM (its weights phi copied, the
preprocessing of optim/learned/features.py, the same output scale), on the same problem (the
quadratics' W and y; for MNIST the same MLP and the same minibatches in the same order,
gathered inside the jitted function). One unroll is a `lax.scan` over its steps, carrying
theta, the LSTM state and the gradient at theta; at each step

    update, state = m(grad, state; phi);  theta = theta + update
    loss, grad = value_and_grad(f)(theta);  grad = stop_gradient(grad)   (first order)

and the meta-loss is the sum of the steps' losses. `jax.value_and_grad` of that sum w.r.t.
phi, the global norm, and a meta-Adam step written out (optim.Adam's formula; the step is
skipped if the norm is not finite, as MetaTrainer does) are all inside the one jitted
function, compiled once per task. Import this module only after XLA_FLAGS is set:
meta_trajectory.load_jax_trajectory does both.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

from models.mlp import mlp_shapes
from models.problems import MNISTFamily

BETAS, EPS = (0.9, 0.999), 1e-8


def preprocess_gradients(grad, p):
    """optim.learned.preprocess_gradients (appendix A): (n,) -> (n, 2)."""
    magnitude = jnp.abs(grad)
    big = magnitude >= math.exp(-p)
    first = jnp.where(big, jnp.log(magnitude) / p, -1.0)
    second = jnp.where(big, jnp.sign(grad), math.exp(p) * grad)
    return jnp.stack([first, second], axis=1)


def network(phi, config, grad, state):
    """CoordinatewiseLSTM.forward. phi: [W_1, b_1, ..., W_L, b_L, out_weight, out_bias], as
    CoordinatewiseLSTM.parameters(); state: [(h, c) per layer], each (n, H)."""
    x = preprocess_gradients(grad, config.preprocess_p) if config.preprocess else grad[:, None]
    new_state = []
    for layer, (h, c) in enumerate(state):
        W, b = phi[2 * layer], phi[2 * layer + 1]
        i, f, g, o = jnp.split(jnp.concatenate([x, h], axis=1) @ W + b, 4, axis=1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        new_state.append((h, c))
        x = h
    update = (x @ phi[-2] + phi[-1]) * config.output_scale
    return update[:, 0], new_state


def quadratic_loss(theta, arrays, step_input):
    """QuadraticProblem.loss: mean_i ||W_i theta_i - y_i||^2; arrays = (W, y)."""
    W, y = arrays
    residual = jnp.einsum("bij,bj->bi", W, theta.reshape(y.shape)) - y
    return jnp.mean(jnp.sum(residual * residual, axis=1))


def mlp_loss(shapes):
    """MLPProblem.loss for parameters of these shapes, on the minibatch `index` of
    arrays = (images, labels): cross-entropy of the sigmoid MLP."""
    sizes = [math.prod(shape) for shape in shapes]
    bounds = np.cumsum(sizes)[:-1].tolist()

    def loss(theta, arrays, index):
        images, labels = arrays
        params = [piece.reshape(shape) for piece, shape in zip(jnp.split(theta, bounds), shapes)]
        x = images[index]
        n_layers = len(params) // 2
        for layer in range(n_layers):
            x = x @ params[2 * layer] + params[2 * layer + 1]
            if layer < n_layers - 1:
                x = jax.nn.sigmoid(x)
        log_probabilities = jax.nn.log_softmax(x)
        return -jnp.mean(jnp.take_along_axis(log_probabilities, labels[index][:, None], axis=1))
    return loss


class JaxMetaTrainer:
    """MetaTrainer.train_trajectory in JAX, for one task: phi and the meta-Adam state persist
    from trajectory to trajectory, as in MetaTrainer.

    net: the CoordinatewiseLSTM whose weights phi starts from; family: the task's
    MNISTFamily (its images are sent to the device once) or QuadraticFamily.
    """

    def __init__(self, net, family, steps, unroll, meta_lr):
        self.config, self.steps, self.unroll, self.meta_lr = net.config, steps, unroll, meta_lr
        self.hidden = list(net.config.layers)
        self.phi = [jnp.asarray(p.data) for p in net.parameters()]
        self.adam = ([jnp.zeros_like(p) for p in self.phi], [jnp.zeros_like(p) for p in self.phi],
                     jnp.zeros((), jnp.float32))
        self.is_mlp = isinstance(family, MNISTFamily)
        if self.is_mlp:
            self.data = (jnp.asarray(family.images), jnp.asarray(family.labels.astype(np.int32)))
            self.family_images = family.images
            self.f = mlp_loss(mlp_shapes(family.sizes))
        else:
            self.f = quadratic_loss
        # Compiled at their first call, for the shapes of the task.
        self._start = jax.jit(jax.value_and_grad(self.f))
        self._meta_loss = jax.jit(jax.value_and_grad(self.unroll_loss, has_aux=True))
        self._train_unroll = jax.jit(self.train_unroll)

    def unroll_loss(self, phi, theta, state, grad, arrays, step_inputs):
        """sum_t f(theta_t) over one unroll (a lax.scan over step_inputs), and the carry
        (theta, state, grad) at its end."""
        config, f = self.config, self.f

        def step(carry, step_input):
            theta, state, grad = carry
            update, state = network(phi, config, grad, state)
            theta = theta + update
            loss, grad = jax.value_and_grad(f)(theta, arrays, step_input)
            return (theta, state, jax.lax.stop_gradient(grad)), loss
        carry, losses = jax.lax.scan(step, (theta, state, grad), step_inputs)
        return losses.sum(), carry

    def train_unroll(self, phi, adam, theta, state, grad, arrays, step_inputs):
        """One unroll, its meta-gradient, and one meta-Adam step (optim.Adam's formula),
        skipped if the gradient's global norm is not finite."""
        (meta_loss, carry), grads = jax.value_and_grad(self.unroll_loss, has_aux=True)(
            phi, theta, state, grad, arrays, step_inputs)
        norm = jnp.sqrt(sum(jnp.vdot(g, g) for g in grads))
        (beta1, beta2), (m, v, t) = BETAS, adam
        t_new = t + 1
        m_new = [beta1 * a + (1 - beta1) * g for a, g in zip(m, grads)]
        v_new = [beta2 * a + (1 - beta2) * (g * g) for a, g in zip(v, grads)]
        step_size = self.meta_lr / (1 - beta1 ** t_new)
        correction = jnp.sqrt(1 - beta2 ** t_new)
        phi_new = [p - step_size * (a / (jnp.sqrt(b) / correction + EPS))
                   for p, a, b in zip(phi, m_new, v_new)]
        finite = jnp.isfinite(norm)

        def keep(new, old):
            return [jnp.where(finite, a, b) for a, b in zip(new, old)]
        adam = (keep(m_new, m), keep(v_new, v), jnp.where(finite, t_new, t))
        return keep(phi_new, phi), adam, *carry, meta_loss

    def _arrays(self, problem):
        """What f needs of the problem besides theta and the step: (W, y), or (images, labels)."""
        if self.is_mlp:
            if problem.images is not self.family_images:
                raise ValueError("JaxMetaTrainer: the MNIST problems must draw from the family's "
                                 "images (no subset)")
            return self.data
        return jnp.asarray(problem.W), jnp.asarray(problem.y)

    def _step_inputs(self, problem, steps):
        """Per step, what f reads besides theta: the minibatch indices (MNIST), or the step."""
        if self.is_mlp:
            return np.stack([problem.batch_indices(step) for step in steps]).astype(np.int32)
        return np.asarray(steps, np.int32)

    def _start_trajectory(self, problem, theta0):
        """theta_0 (joined), the zero LSTM state, and the gradient of f at theta_0."""
        theta = jnp.asarray(np.concatenate([p.reshape(-1) for p in theta0]))
        state = [(jnp.zeros((theta.size, hidden)),) * 2 for hidden in self.hidden]
        arrays = self._arrays(problem)
        _, grad = self._start(theta, arrays, self._step_inputs(problem, [0])[0])
        return theta, state, grad, arrays

    def first_unroll(self, problem, theta0):
        """The meta-loss and meta-gradient (in phi's order) of the first unroll, phi unchanged."""
        theta, state, grad, arrays = self._start_trajectory(problem, theta0)
        inputs = self._step_inputs(problem, range(1, self.unroll + 1))
        (meta_loss, _), grads = self._meta_loss(self.phi, theta, state, grad, arrays, inputs)
        return float(meta_loss), [np.asarray(g) for g in grads]

    def train_trajectory(self, problem, theta0):
        """Meta-train on one trajectory; returns the meta-loss of each unroll (floats)."""
        theta, state, grad, arrays = self._start_trajectory(problem, theta0)
        losses = []
        for start in range(0, self.steps, self.unroll):
            inputs = self._step_inputs(problem, range(start + 1, start + self.unroll + 1))
            self.phi, self.adam, theta, state, grad, meta_loss = self._train_unroll(
                self.phi, self.adam, theta, state, grad, arrays, inputs)
            losses.append(meta_loss)
        return [float(loss) for loss in losses]
