"""Modules, parameters and layers; the gradient checker itself."""
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


def test_gradcheck_catches_a_wrong_backward(rng):
    x = tensor64(rng, (2, 3))

    def wrong_square(t):
        return mg.op_result(t.data * t.data, (t,), lambda g: (g * t.data * 2.2,))
    with pytest.raises(AssertionError, match=r"gradcheck: input 0 of shape \(2, 3\): largest mismatch"):
        mg.gradcheck(wrong_square, [x])


def test_gradcheck_wants_float_tensors():
    with pytest.raises(TypeError, match="input 0 must be a floating-point Tensor"):
        mg.gradcheck(lambda t: t, [np.ones(2)])
