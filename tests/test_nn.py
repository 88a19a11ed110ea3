"""Modules, parameters, buffers and layers, and how they print."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import nn
from conftest import tensor64


class TwoLayer(nn.Module):
    def __init__(self):
        self.hidden = nn.Linear(3, 4, rng=0)
        self.blocks = [nn.Linear(4, 4, rng=1), nn.Linear(4, 2, rng=2)]
        self.scale = nn.Parameter(np.ones(2))

    def forward(self, x):
        x = self.hidden(x).tanh()
        for block in self.blocks:
            x = block(x)
        return x * self.scale


def test_module_finds_parameters_in_attributes_lists_and_submodules():
    names = [name for name, _ in TwoLayer().named_parameters()]
    assert names == ["hidden.weight", "hidden.bias", "blocks.0.weight", "blocks.0.bias",
                     "blocks.1.weight", "blocks.1.bias", "scale"]


def test_zero_grad_sets_gradients_to_none():
    model = TwoLayer()
    model(mg.Tensor(np.ones((5, 3)))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_round_trip_restores_outputs():
    a, b = TwoLayer(), TwoLayer()
    for p in b.parameters():
        p.data += 1
    x = mg.Tensor(np.ones((2, 3)))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_state_dict_holds_copies():
    model = TwoLayer()
    state = model.state_dict()
    state["scale"][:] = 7
    assert model.scale.data[0] == 1


def test_load_state_dict_reports_missing_unexpected_and_misshapen_entries():
    model = TwoLayer()
    state = model.state_dict()
    del state["scale"]
    state["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing \['scale'\], unexpected \['extra'\]"):
        model.load_state_dict(state)
    state = model.state_dict()
    state["scale"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"scale has shape \(2,\) but the state holds shape \(3,\)"):
        model.load_state_dict(state)


class Normalised(nn.Module):
    """Batch norms nested in a list, beside a parameter: buffers at depth two."""

    def __init__(self, first_tracks_running_stats=True):
        self.norms = [nn.BatchNorm2d(2, track_running_stats=first_tracks_running_stats),
                      nn.BatchNorm2d(3)]
        self.scale = nn.Parameter(np.ones(1))


RUNNING_STATISTICS = ["norms.0.running_mean", "norms.0.running_var",
                      "norms.1.running_mean", "norms.1.running_var"]


def test_module_finds_buffers_in_attributes_lists_and_submodules():
    model = Normalised()
    assert [name for name, _ in model.named_buffers()] == RUNNING_STATISTICS
    assert model.buffers()[0] is model.norms[0].running_mean
    assert [name for name, _ in model.named_parameters()] == [
        "norms.0.weight", "norms.0.bias", "norms.1.weight", "norms.1.bias", "scale"]


def test_a_buffer_set_to_none_is_no_buffer():
    model = Normalised(first_tracks_running_stats=False)
    assert [name for name, _ in model.named_buffers()] == RUNNING_STATISTICS[2:]


def test_a_shared_module_contributes_its_buffers_once():
    class Shared(nn.Module):
        def __init__(self):
            self.a = self.b = nn.BatchNorm2d(2)
    assert [name for name, _ in Shared().named_buffers()] == ["a.running_mean", "a.running_var"]


def test_state_dict_carries_buffers_after_parameters_as_copies():
    model = Normalised()
    state = model.state_dict()
    assert list(state)[-4:] == RUNNING_STATISTICS
    state["norms.0.running_mean"][:] = 7
    np.testing.assert_array_equal(model.norms[0].running_mean, [0, 0])


def test_load_state_dict_restores_buffers_in_place():
    source, target = Normalised(), Normalised()
    source.norms[1].running_var[:] = [2.0, 3.0, 4.0]
    running_var = target.norms[1].running_var
    target.load_state_dict(source.state_dict())
    assert target.norms[1].running_var is running_var
    np.testing.assert_array_equal(running_var, [2.0, 3.0, 4.0])


def test_load_state_dict_reports_missing_unexpected_and_misshapen_buffers():
    model = Normalised()
    state = model.state_dict()
    del state["norms.1.running_var"]
    state["norms.0.running_max"] = np.zeros(2)
    with pytest.raises(KeyError, match=r"missing \['norms.1.running_var'\], "
                                       r"unexpected \['norms.0.running_max'\]"):
        model.load_state_dict(state)
    state = model.state_dict()
    state["scale"] = np.full(1, 5.0)
    state["norms.0.running_mean"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"norms.0.running_mean has shape \(2,\) but the state "
                                         r"holds shape \(3,\)"):
        model.load_state_dict(state)
    assert model.scale.data[0] == 1                  # nothing is loaded unless everything fits


def test_layers_are_reproducible_from_a_seed():
    np.testing.assert_array_equal(nn.Linear(3, 2, rng=5).weight.data, nn.Linear(3, 2, rng=5).weight.data)
    mg.manual_seed(3)
    first = nn.Linear(3, 2).weight.data
    mg.manual_seed(3)
    np.testing.assert_array_equal(first, nn.Linear(3, 2).weight.data)


def test_layers_compute_their_functional_ops(rng):
    x = mg.Tensor(rng.standard_normal((2, 3, 8, 8)))
    conv = nn.Conv2d(3, 4, 3, padding=1, rng=0)
    np.testing.assert_array_equal(conv(x).data, F.conv2d(x, conv.weight, conv.bias, padding=1).data)
    assert conv(x).shape == (2, 4, 8, 8)
    cell = nn.LSTMCell(3, 5, rng=0)
    h, c = cell(mg.Tensor(np.ones((4, 3))))
    assert h.shape == c.shape == (4, 5) and h.dtype == np.float32
    h2, _ = cell(mg.Tensor(np.ones((4, 3))), (h, c))
    assert not np.allclose(h.data, h2.data)


def test_parameters_default_to_float32_and_require_grad():
    p = nn.Parameter(np.zeros(3))
    assert p.requires_grad and p.dtype == np.float32
    assert all(q.dtype == np.float32 for q in TwoLayer().parameters())


# ----- BatchNorm2d -----
def batch(seed=0, shape=(8, 3, 4, 4)):
    rng = np.random.default_rng(seed)
    return 3 * rng.standard_normal(shape) + np.array([1.0, -2.0, 5.0])[:, None, None]


def test_batch_norm_in_training_normalises_each_channel_over_the_batch():
    out = nn.BatchNorm2d(3, dtype=np.float64)(mg.Tensor(batch(), dtype=np.float64)).data
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, atol=1e-4)


def test_batch_norm_training_moves_running_statistics_by_momentum():
    norm = nn.BatchNorm2d(3, momentum=0.1, dtype=np.float64)
    x = batch()
    norm(mg.Tensor(x, dtype=np.float64))
    n = x.size // 3
    np.testing.assert_allclose(norm.running_mean, 0.1 * x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(norm.running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * n / (n - 1))


def test_batch_norm_in_eval_uses_running_statistics_and_leaves_them_alone():
    norm = nn.BatchNorm2d(3, dtype=np.float64)
    for seed in range(3):
        norm(mg.Tensor(batch(seed), dtype=np.float64))
    norm.weight.data[:] = [1.0, 2.0, 3.0]
    norm.bias.data[:] = [0.0, 0.5, -1.0]
    mean, var = norm.running_mean.copy(), norm.running_var.copy()
    x = batch(9)
    out = norm.eval()(mg.Tensor(x, dtype=np.float64)).data
    expected = ((x - mean[:, None, None]) / np.sqrt(var[:, None, None] + norm.eps)
                * norm.weight.data[:, None, None] + norm.bias.data[:, None, None])
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_array_equal(norm.running_mean, mean)
    np.testing.assert_array_equal(norm.running_var, var)
    train_out = norm.train()(mg.Tensor(x, dtype=np.float64)).data
    assert not np.allclose(train_out, out)


def test_batch_norm_without_running_stats_uses_batch_statistics_in_eval_too():
    norm = nn.BatchNorm2d(3, track_running_stats=False, dtype=np.float64)
    x = mg.Tensor(batch(), dtype=np.float64)
    np.testing.assert_array_equal(norm.eval()(x).data, norm.train()(x).data)
    assert norm.running_mean is None and norm.buffers() == []


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradients_match_finite_differences(training, rng):
    norm = nn.BatchNorm2d(2, dtype=np.float64)
    norm.running_mean[:] = [0.3, -0.2]
    norm.running_var[:] = [1.5, 0.7]
    norm.train(training)
    assert mg.gradcheck(lambda x, weight, bias: norm.forward_with([weight, bias], x),
                        [tensor64(rng, (3, 2, 2, 3)), norm.weight, norm.bias])


def test_batch_norm_keeps_float32():
    out = nn.BatchNorm2d(3)(mg.Tensor(batch()))
    assert out.dtype == np.float32


# ----- repr -----
def test_layers_print_their_sizes_and_settings_on_one_line():
    assert repr(nn.Linear(784, 20)) == "Linear(in_features=784, out_features=20, bias=True)"
    assert repr(nn.Linear(3, 2, bias=False)) == "Linear(in_features=3, out_features=2, bias=False)"
    assert repr(nn.LSTMCell(2, 20)) == "LSTMCell(2, 20)"
    assert repr(nn.Conv2d(3, 16, 5, padding=2)) == \
        "Conv2d(3, 16, kernel_size=(5, 5), stride=1, padding=2)"
    assert repr(nn.Conv2d(3, 8, (3, 1), stride=2, bias=False)) == \
        "Conv2d(3, 8, kernel_size=(3, 1), stride=2, padding=0, bias=False)"
    assert repr(nn.BatchNorm2d(16, track_running_stats=False)) == \
        "BatchNorm2d(16, eps=1e-05, momentum=0.1, track_running_stats=False)"


def test_a_module_prints_its_submodules_as_a_tree_with_lists_indexed():
    assert repr(TwoLayer()) == """TwoLayer(
  (hidden): Linear(in_features=3, out_features=4, bias=True)
  (blocks): [
    (0): Linear(in_features=4, out_features=4, bias=True)
    (1): Linear(in_features=4, out_features=2, bias=True)
  ]
)"""


def test_extra_repr_is_the_hook_for_what_a_module_prints_besides_its_submodules():
    class Empty(nn.Module):
        pass

    class Scaled(nn.Module):
        def __init__(self):
            self.inner = [TwoLayer()]

        def extra_repr(self):
            return "scale=2.0\nshift=none"
    assert repr(Empty()) == "Empty()"
    assert repr(Scaled()) == """Scaled(
  scale=2.0
  shift=none
  (inner): [
    (0): TwoLayer(
      (hidden): Linear(in_features=3, out_features=4, bias=True)
      (blocks): [
        (0): Linear(in_features=4, out_features=4, bias=True)
        (1): Linear(in_features=4, out_features=2, bias=True)
      ]
    )
  ]
)"""


def test_the_models_print_as_trees_of_their_layers():
    from models import MLP, ConvNet
    from optim.learned.network import CoordinatewiseLSTM, NetworkConfig
    assert repr(MLP((784, 20, 10))) == """MLP(
  activation='sigmoid'
  (layers): [
    (0): Linear(in_features=784, out_features=20, bias=True)
    (1): Linear(in_features=20, out_features=10, bias=True)
  ]
)"""
    assert repr(CoordinatewiseLSTM(NetworkConfig(layers=(20,)))) == """CoordinatewiseLSTM(
  preprocess_p=10.0, out_weight=(20, 1), output_scale=0.1
  (cells): [
    (0): LSTMCell(2, 20)
  ]
)"""
    convnet = repr(ConvNet(channels=(4,), hidden=(), batch_norm=True, image_size=8))
    assert convnet == """ConvNet(
  image_size=(8, 8)
  (blocks): [
    (0): ConvBlock(
      (conv): Conv2d(3, 4, kernel_size=(5, 5), stride=1, padding=2, bias=False)
      (norm): BatchNorm2d(4, eps=1e-05, momentum=0.1, track_running_stats=True)
    )
  ]
  (layers): [
    (0): Linear(in_features=64, out_features=10, bias=True)
  ]
)"""


def test_a_parameter_prints_its_rows_aligned_under_the_first():
    assert repr(nn.Parameter([[1.0, 2.0], [3.0, 4.0]])) == (
        "Parameter([[1., 2.],\n"
        "           [3., 4.]], requires_grad=True)")
