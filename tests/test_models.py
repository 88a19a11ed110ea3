"""Models on minigrad.nn: MLP, LSTM and ConvNet."""
import numpy as np
import pytest

import minigrad as mg
from models import LSTM, MLP, ConvNet
from models.mlp import mlp_logits, mlp_shapes
from conftest import tensor64


def check_module_gradients(module, *inputs):
    """gradcheck of module(*inputs) with respect to its inputs and all its parameters (which
    the check perturbs in place, so the module sees each perturbation)."""
    n = len(inputs)

    def fn(*tensors):
        out = module(*tensors[:n])
        return out[0] if isinstance(out, tuple) else out
    return mg.gradcheck(fn, list(inputs) + module.parameters())


# ----- MLP -----
def test_mlp_returns_finite_logits_of_the_output_width():
    model = MLP((784, 20, 10), rng=0)
    logits = model(mg.Tensor(np.random.default_rng(0).random((5, 784))))
    assert logits.shape == (5, 10) and logits.dtype == np.float32
    assert np.all(np.isfinite(logits.data))


def test_mlp_parameters_come_in_the_order_of_the_functional_form():
    model = MLP((6, 4, 3, 2), activation="tanh", rng=0)
    assert [p.shape for p in model.parameters()] == mlp_shapes((6, 4, 3, 2))
    x = mg.Tensor(np.random.default_rng(1).random((3, 6)))
    np.testing.assert_array_equal(model(x).data, mlp_logits(model.parameters(), x, "tanh").data)
    shifted = [p.data + 1 for p in model.parameters()]
    np.testing.assert_array_equal(model.forward_with([mg.Tensor(a) for a in shifted], x).data,
                                  mlp_logits([mg.Tensor(a) for a in shifted], x, "tanh").data)


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
def test_mlp_gradients_match_finite_differences(activation, rng):
    model = MLP((3, 4, 2), activation=activation, rng=0, dtype=np.float64)
    assert check_module_gradients(model, tensor64(rng, (5, 3)))


def test_mlp_rejects_an_unknown_activation_listing_the_choices():
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'; expected one of "
                                         r"\['relu', 'sigmoid', 'tanh'\]"):
        MLP((3, 2), activation="gelu")


def test_mlp_is_reproducible_from_its_seed():
    a, b, c = MLP((4, 3, 2), rng=5), MLP((4, 3, 2), rng=5), MLP((4, 3, 2), rng=6)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    assert not np.array_equal(a.parameters()[0].data, c.parameters()[0].data)


# ----- LSTM -----
def test_lstm_outputs_are_time_major_and_bounded():
    model = LSTM(3, 5, num_layers=2, rng=0)
    x = mg.Tensor(10 * np.random.default_rng(0).standard_normal((7, 4, 3)))
    outputs, state = model(x)
    assert outputs.shape == (7, 4, 5) and outputs.dtype == np.float32
    assert np.all(np.abs(outputs.data) < 1)
    assert len(state) == 2 and all(h.shape == c.shape == (4, 5) for h, c in state)
    np.testing.assert_array_equal(state[-1][0].data, outputs.data[-1])


def test_lstm_state_carries_a_sequence_across_chunks():
    model = LSTM(3, 5, num_layers=2, rng=0)
    x = np.random.default_rng(0).standard_normal((8, 2, 3))
    whole, whole_state = model(mg.Tensor(x))
    first, state = model(mg.Tensor(x[:5]))
    second, last_state = model(mg.Tensor(x[5:]), state)
    np.testing.assert_allclose(np.concatenate([first.data, second.data]), whole.data, atol=1e-6)
    for (h, c), (h2, c2) in zip(whole_state, last_state):
        np.testing.assert_allclose(h.data, h2.data, atol=1e-6)
        np.testing.assert_allclose(c.data, c2.data, atol=1e-6)


def test_lstm_gradients_match_finite_differences(rng):
    model = LSTM(2, 3, num_layers=2, rng=0, dtype=np.float64)
    assert check_module_gradients(model, tensor64(rng, (4, 2, 2)))


def test_lstm_is_reproducible_from_its_seed():
    x = mg.Tensor(np.ones((3, 2, 4)))
    a, b = LSTM(4, 3, rng=1)(x)[0], LSTM(4, 3, rng=1)(x)[0]
    np.testing.assert_array_equal(a.data, b.data)


def test_lstm_names_the_expected_input_shape():
    with pytest.raises(ValueError, match=r"expected input \(T, B, 3\)"):
        LSTM(3, 5)(mg.Tensor(np.zeros((4, 3))))


# ----- ConvNet -----
@pytest.mark.parametrize("batch_norm", [False, True])
def test_convnet_maps_cifar_images_to_ten_finite_logits(batch_norm):
    model = ConvNet(batch_norm=batch_norm, rng=0)
    logits = model(mg.Tensor(np.random.default_rng(0).random((2, 3, 32, 32))))
    assert logits.shape == (2, 10) and logits.dtype == np.float32
    assert np.all(np.isfinite(logits.data))


def test_convnet_default_layer_shapes_follow_the_paper():
    shapes = [p.shape for p in ConvNet(rng=0).parameters()]
    assert shapes == [(16, 3, 5, 5), (16,), (16, 16, 5, 5), (16,), (16, 16, 5, 5), (16,),
                      (256, 32), (32,), (32, 10), (10,)]
    with_norm = [p.shape for p in ConvNet(batch_norm=True, rng=0).parameters()]
    assert with_norm[:3] == [(16, 3, 5, 5), (16,), (16,)]      # no conv bias; scale, shift


def test_convnet_forward_with_uses_the_given_parameters():
    model = ConvNet(in_channels=1, channels=(2, 3), hidden=(4,), image_size=8, rng=0)
    x = mg.Tensor(np.random.default_rng(0).random((2, 1, 8, 8)))
    np.testing.assert_array_equal(model.forward_with(model.parameters(), x).data, model(x).data)
    doubled = [mg.Tensor(2 * p.data) for p in model.parameters()]
    assert not np.allclose(model.forward_with(doubled, x).data, model(x).data)
    with pytest.raises(ValueError, match="expected 8 parameter tensors"):
        model.forward_with(doubled[:-1], x)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_convnet_gradients_match_finite_differences(batch_norm, rng):
    model = ConvNet(in_channels=2, channels=(2, 2), hidden=(3,), num_classes=2, image_size=(8, 4),
                    batch_norm=batch_norm, rng=0, dtype=np.float64)
    assert check_module_gradients(model, tensor64(rng, (3, 2, 8, 4)))


def test_convnet_is_reproducible_from_its_seed():
    x = mg.Tensor(np.ones((1, 3, 32, 32)))
    np.testing.assert_array_equal(ConvNet(rng=3)(x).data, ConvNet(rng=3)(x).data)


def test_convnet_init_arrays_draw_weights_and_keep_batch_norm_neutral():
    model = ConvNet(batch_norm=True, rng=0)
    arrays = model.init_arrays(np.random.default_rng(0), scale=0.01)
    assert [a.shape for a in arrays] == [p.shape for p in model.parameters()]
    assert abs(arrays[0].std() - 0.01) < 0.002
    np.testing.assert_array_equal(arrays[1], 1)
    np.testing.assert_array_equal(arrays[2], 0)


def test_convnet_state_dict_round_trips_batch_norm_running_statistics():
    x = mg.Tensor(np.random.default_rng(0).random((4, 1, 8, 8)))
    source = ConvNet(in_channels=1, channels=(2,), image_size=8, batch_norm=True, rng=0)
    source(x)                                        # training mode: running stats move
    target = ConvNet(in_channels=1, channels=(2,), image_size=8, batch_norm=True, rng=1)
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(target.eval()(x).data, source.eval()(x).data)
    state = source.state_dict()
    del state["blocks.0.norm.running_var"]
    with pytest.raises(KeyError, match="running_var"):
        target.load_state_dict(state)


def test_convnet_state_dict_names_its_running_statistics_as_saved_files_do():
    """Parameters first, then the buffers, under the names files saved by earlier versions use."""
    model = ConvNet(in_channels=1, channels=(2, 3), image_size=8, batch_norm=True, rng=0)
    assert list(model.state_dict()) == [
        "blocks.0.conv.weight", "blocks.0.norm.weight", "blocks.0.norm.bias",
        "blocks.1.conv.weight", "blocks.1.norm.weight", "blocks.1.norm.bias",
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
        "blocks.0.norm.running_mean", "blocks.0.norm.running_var",
        "blocks.1.norm.running_mean", "blocks.1.norm.running_var"]


def test_convnet_names_the_expected_input_shape():
    with pytest.raises(ValueError, match=r"expected input \(N, 3, 32, 32\)"):
        ConvNet(rng=0)(mg.Tensor(np.zeros((1, 3, 28, 28))))
