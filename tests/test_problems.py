"""Optimizee families (models/problems.py): the interface the learned optimizer relies on."""
import numpy as np
import pytest

import minigrad as mg
from models import CIFARFamily, ImageFamily, MNISTFamily, QuadraticFamily
from models.data import DatasetError


@pytest.fixture(scope="module")
def no_data_dir_copy(tmp_path_factory):
    """An empty $MINIGRAD_DATA for the module's fixtures, so MNIST is the shipped copy
    whatever the developer keeps in their own data directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINIGRAD_DATA", str(tmp_path_factory.mktemp("no-mnist-here")))
        yield


@pytest.fixture(scope="module")
def mnist_train(no_data_dir_copy):
    return MNISTFamily(split="train")


@pytest.fixture(scope="module")
def mnist_test(no_data_dir_copy):
    return MNISTFamily(split="test")


def row_hashes(images):
    """One hash per image (row): sets of these compare digits cheaply across 60,000 rows."""
    return {hash(row.tobytes()) for row in images}


def tiny_classification_data(n=12, shape=(5,), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape)), np.arange(n) % classes


def tiny_families(dtype=np.float64, init_scale=0.5):
    """Small instances of every family, cheap enough for finite differences."""
    return {
        "quadratic": QuadraticFamily(dim=3, batch=2, init_scale=init_scale, dtype=dtype),
        "quadratic-uniform": QuadraticFamily(dim=3, batch=2, distribution="uniform",
                                             init_scale=init_scale, dtype=dtype),
        "mlp-sigmoid": MNISTFamily(hidden=(3,), batch_size=4, data=tiny_classification_data(),
                                   num_classes=3, init_scale=init_scale, dtype=dtype),
        "mlp-relu-2-layers": MNISTFamily(hidden=(3, 2), activation="relu", batch_size=4,
                                         data=tiny_classification_data(), num_classes=3,
                                         init_scale=init_scale, dtype=dtype),
        "mlp-tanh": MNISTFamily(hidden=(3,), activation="tanh", batch_size=4,
                                data=tiny_classification_data(), num_classes=3,
                                init_scale=init_scale, dtype=dtype),
        "convnet": ImageFamily(tiny_classification_data(shape=(2, 4, 4)), conv_channels=(2,),
                               hidden=(3,), batch_norm=False, batch_size=4,
                               init_scale=init_scale, dtype=dtype),
        "convnet-batchnorm": ImageFamily(tiny_classification_data(shape=(2, 8, 8)),
                                         conv_channels=(2, 2), hidden=(3,), batch_norm=True,
                                         batch_size=4, init_scale=init_scale, dtype=dtype),
    }


FAMILY_NAMES = list(tiny_families())


def tensors(arrays, requires_grad=False):
    return [mg.Tensor(a, requires_grad=requires_grad, dtype=a.dtype) for a in arrays]


# ----- the interface -----
@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_init_params_match_param_shapes_and_dtype(name):
    problem = tiny_families(np.float32)[name].sample(0)
    theta = problem.init_params(1)
    assert [a.shape for a in theta] == [tuple(s) for s in problem.param_shapes]
    assert all(a.dtype == np.float32 for a in theta)
    assert problem.n_coords == sum(a.size for a in theta)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_loss_is_a_float32_scalar_that_depends_on_the_given_tensors(name):
    problem = tiny_families(np.float32)[name].sample(0)
    params = tensors(problem.init_params(1), requires_grad=True)
    loss = problem.loss(params, step=0)
    assert loss.shape == () and loss.dtype == np.float32 and np.isfinite(loss.data)
    grads = mg.grad(loss, params)
    assert all(g.shape == p.shape for g, p in zip(grads, params))
    assert any(np.abs(g).max() > 0 for g in grads)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_loss_is_deterministic_per_problem_step_and_params(name):
    problem = tiny_families(np.float32)[name].sample(0)
    theta = problem.init_params(1)
    first = problem.loss_value(theta, step=3)
    problem.loss_value(theta, step=4)          # other calls in between change nothing
    assert problem.loss_value(theta, step=3) == first
    assert problem.loss_and_grad(theta, step=3)[0] == first


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_same_seed_gives_the_same_problem_and_theta0(name):
    family = tiny_families(np.float32)[name]
    a, b = family.sample(np.random.default_rng(7)), family.sample(np.random.default_rng(7))
    theta_a = a.init_params(np.random.default_rng(8))
    theta_b = b.init_params(np.random.default_rng(8))
    for x, y in zip(theta_a, theta_b):
        np.testing.assert_array_equal(x, y)
    assert a.loss_value(theta_a, 2) == b.loss_value(theta_b, 2)
    c = family.sample(np.random.default_rng(9))
    assert c.seed != a.seed and c.loss_value(theta_a, 2) != a.loss_value(theta_a, 2)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_gradients_match_finite_differences_in_float64(name):
    problem = tiny_families(np.float64)[name].sample(0)
    params = tensors(problem.init_params(1), requires_grad=True)
    assert all(p.dtype == np.float64 for p in params)
    assert mg.gradcheck(lambda *ps: problem.loss(list(ps), step=2), params)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_loss_and_grad_and_loss_value_agree_with_loss(name):
    problem = tiny_families(np.float64)[name].sample(0)
    theta = problem.init_params(1)
    params = tensors(theta, requires_grad=True)
    loss = problem.loss(params, step=5)
    value, grads = problem.loss_and_grad(theta, step=5)
    assert value == float(loss.data) == problem.loss_value(theta, step=5)
    for g, expected in zip(grads, mg.grad(loss, params)):
        np.testing.assert_array_equal(g, expected)


def test_loss_value_records_no_graph():
    problem = tiny_families()["mlp-sigmoid"].sample(0)
    params = tensors(problem.init_params(1), requires_grad=True)
    with mg.no_grad():
        assert not problem.loss(params).requires_grad


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_loss_names_the_expected_shapes_when_params_do_not_fit(name):
    problem = tiny_families(np.float32)[name].sample(0)
    params = tensors(problem.init_params(1))
    with pytest.raises(ValueError, match="expected parameters of shapes"):
        problem.loss(params[:-1])


# ----- quadratics -----
@pytest.mark.parametrize("distribution", ["gaussian", "uniform"])
@pytest.mark.parametrize("batch", [1, 4])
def test_quadratic_loss_is_the_batch_mean_of_squared_residuals(distribution, batch):
    problem = QuadraticFamily(dim=5, batch=batch, distribution=distribution,
                              dtype=np.float64).sample(3)
    theta = np.random.default_rng(4).standard_normal((batch, 5))
    residual = np.einsum("bij,bj->bi", problem.W, theta) - problem.y
    expected = np.mean(np.sum(residual ** 2, axis=1))
    np.testing.assert_allclose(problem.loss_value([theta]), expected, rtol=1e-12)


def test_quadratic_draws_gaussian_or_uniform_entries():
    gaussian = QuadraticFamily(batch=64).sample(0)
    uniform = QuadraticFamily(batch=64, distribution="uniform").sample(0)
    assert gaussian.W.min() < 0 and abs(gaussian.W.std() - 1) < 0.05
    assert 0 <= uniform.W.min() and uniform.W.max() < 1 and abs(uniform.y.mean() - 0.5) < 0.05
    assert gaussian.W.shape == (64, 10, 10) and gaussian.param_shapes == [(64, 10)]


def test_quadratic_init_scale_sets_the_spread_of_theta0():
    problem = QuadraticFamily(batch=128).sample(0)
    assert abs(problem.init_params(0)[0].std() - 0.01) < 0.001
    wide = QuadraticFamily(batch=128, init_scale=1.0).sample(0)
    assert abs(wide.init_params(0)[0].std() - 1.0) < 0.1


def test_quadratic_rejects_an_unknown_distribution():
    with pytest.raises(ValueError, match="'gaussian', 'uniform'"):
        QuadraticFamily(distribution="cauchy")


# ----- MNIST MLPs -----
def test_base_mnist_net_has_15910_coordinates(mnist_train):
    problem = mnist_train.sample(0)
    assert problem.param_shapes == [(784, 20), (20,), (20, 10), (10,)]
    assert problem.n_coords == 15_910


def test_mnist_variants_have_their_layer_shapes(mnist_train):
    data = (mnist_train.images, mnist_train.labels)
    wide = MNISTFamily(hidden=(40,), data=data).sample(0)
    deep = MNISTFamily(hidden=(20, 20), data=data).sample(0)
    assert wide.param_shapes == [(784, 40), (40,), (40, 10), (10,)]
    assert deep.param_shapes == [(784, 20), (20,), (20, 20), (20,), (20, 10), (10,)]
    assert (wide.n_coords, deep.n_coords) == (31_810, 16_330)


def test_mnist_init_is_normal_with_the_official_scale(mnist_train):
    theta = mnist_train.sample(0).init_params(0)
    assert abs(theta[0].std() - 0.01) < 0.0005 and abs(theta[0].mean()) < 0.0005


def test_mnist_untrained_loss_is_near_log_10(mnist_train):
    problem = mnist_train.sample(0)
    assert abs(problem.loss_value(problem.init_params(0), step=0) - np.log(10)) < 0.05


def test_mnist_minibatches_differ_between_steps_and_problems(mnist_train):
    problem, other = mnist_train.sample(0), mnist_train.sample(1)
    assert len(problem.batch_indices(0)) == 128
    assert not np.array_equal(problem.batch_indices(0), problem.batch_indices(1))
    assert not np.array_equal(problem.batch_indices(0), other.batch_indices(0))
    np.testing.assert_array_equal(problem.batch_indices(0), problem.batch_indices(0))
    theta = problem.init_params(0)
    assert problem.loss_value(theta, step=0) != problem.loss_value(theta, step=1)


def test_mnist_train_and_test_problems_draw_from_disjoint_digits(mnist_train, mnist_test):
    assert (len(mnist_train.labels), len(mnist_test.labels)) == (60_000, 10_000)
    train_rows, test_rows = row_hashes(mnist_train.images), row_hashes(mnist_test.images)
    assert not train_rows & test_rows
    train_problem, test_problem = mnist_train.sample(0), mnist_test.sample(0)
    assert row_hashes(train_problem.images[train_problem.batch_indices(0)]) <= train_rows
    assert row_hashes(test_problem.images[test_problem.batch_indices(0)]) <= test_rows


def test_mnist_problems_share_the_family_data_without_copies(mnist_train):
    assert mnist_train.sample(0).images is mnist_train.sample(1).images
    assert mnist_train.images.dtype == np.float32


def test_mnist_subset_gives_each_problem_its_own_digits(mnist_train):
    family = MNISTFamily(data=(mnist_train.images, mnist_train.labels), subset=1000)
    rng = np.random.default_rng(0)
    first, second = family.sample(rng), family.sample(rng)
    assert len(first.labels) == len(second.labels) == 1000
    first_rows = row_hashes(first.images)
    assert len(first_rows) == 1000                          # distinct digits
    assert first_rows <= row_hashes(mnist_train.images)     # of the split
    assert first_rows != row_hashes(second.images)
    again = family.sample(np.random.default_rng(0))
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert first.batch_indices(0).max() < 1000
    assert "1000 digits" in first.name and "subset=1000" in repr(family)


def test_mnist_subset_larger_than_the_split_is_an_error():
    with pytest.raises(ValueError, match="subset must be between 1 and the 12 digits"):
        MNISTFamily(data=tiny_classification_data(), num_classes=3, subset=13)


def test_mnist_rejects_an_unknown_activation():
    with pytest.raises(ValueError, match="'relu', 'sigmoid', 'tanh'"):
        MNISTFamily(activation="swish", data=tiny_classification_data())


# ----- convnets on images -----
def test_image_family_keeps_and_renumbers_a_subset_of_classes():
    images, labels = tiny_classification_data(n=30, shape=(1, 8, 8), classes=10)
    family = ImageFamily((images, labels), conv_channels=(2,), classes=[7, 2], batch_size=4)
    assert sorted(set(family.labels.tolist())) == [0, 1] and len(family.labels) == 6
    np.testing.assert_array_equal(family.images[family.labels == 0],
                                  images[labels == 7].astype(np.float32))
    assert family.sample(0).param_shapes[-1] == (2,)


def test_image_family_default_net_is_the_papers_convnet():
    data = tiny_classification_data(n=20, shape=(3, 32, 32), classes=10)
    problem = ImageFamily(data, batch_size=2).sample(0)
    assert problem.param_shapes == [(16, 3, 5, 5), (16,), (16,),
                                    (16, 16, 5, 5), (16,), (16,),
                                    (16, 16, 5, 5), (16,), (16,),
                                    (256, 32), (32,), (32, 10), (10,)]
    assert problem.param_groups() == {i: "conv" if i < 9 else "fc" for i in range(13)}
    theta = problem.init_params(0)
    np.testing.assert_array_equal(theta[1], 1)      # batch norm scale
    np.testing.assert_array_equal(theta[2], 0)      # batch norm shift


def test_cifar_family_reports_the_loaders_error_when_cifar10_is_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match="CIFAR-10 not found"):
        CIFARFamily()


def test_image_family_rejects_classes_absent_from_the_data():
    with pytest.raises(ValueError, match=r"absent: \[11\]"):
        ImageFamily(tiny_classification_data(shape=(1, 8, 8)), classes=[0, 11])
