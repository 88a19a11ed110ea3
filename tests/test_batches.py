"""Batches (models/data/batches.py): batch, stochastic and mini-batch gradient descent are one
argument apart."""
import numpy as np
import pytest

from models.data import Batches


def test_batch_size_none_gives_the_whole_set_in_one_batch():
    batches = list(Batches(10, batch_size=None, seed=0))
    assert len(batches) == 1 and sorted(batches[0]) == list(range(10))


def test_batch_size_one_gives_single_examples():
    batches = list(Batches(5, batch_size=1, seed=0))
    assert len(batches) == 5 and all(b.shape == (1,) for b in batches)


def test_batch_size_k_gives_k_rows_and_a_smaller_last_batch():
    loader = Batches(10, batch_size=4, seed=0)
    assert [len(b) for b in loader] == [4, 4, 2] and len(loader) == 3


def test_drop_last_drops_the_incomplete_batch():
    loader = Batches(10, batch_size=4, seed=0, drop_last=True)
    assert [len(b) for b in loader] == [4, 4] and len(loader) == 2


@pytest.mark.parametrize("batch_size", [None, 1, 3, 7, 10, 25])
def test_every_example_appears_exactly_once_per_epoch(batch_size):
    loader = Batches(10, batch_size=batch_size, seed=1)
    for _ in range(3):
        assert sorted(np.concatenate(list(loader))) == list(range(10))


def test_each_epoch_gets_a_new_order_and_the_same_seed_the_same_sequence_of_epochs():
    first, second = Batches(20, 5, seed=7), Batches(20, 5, seed=7)
    epochs_first = [np.concatenate(list(first)) for _ in range(2)]
    epochs_second = [np.concatenate(list(second)) for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(epochs_first, epochs_second))
    assert not np.array_equal(epochs_first[0], epochs_first[1])
    assert not np.array_equal(epochs_first[0], np.concatenate(list(Batches(20, 5, seed=8))))


def test_without_shuffle_the_data_order_is_kept():
    assert [list(b) for b in Batches(5, 2, shuffle=False)] == [[0, 1], [2, 3], [4]]


def test_arrays_are_batched_row_for_row_together():
    images = np.arange(12).reshape(6, 2)
    labels = np.arange(6) * 10
    for x, y in Batches((images, labels), batch_size=4, seed=3):
        assert np.array_equal(x[:, 0] // 2 * 10, y)
    single = list(Batches(images, batch_size=6, seed=3))
    assert len(single) == 1 and sorted(single[0][:, 0]) == [0, 2, 4, 6, 8, 10]


def test_forever_runs_on_past_the_end_of_an_epoch():
    stream = Batches(5, batch_size=2, seed=0).forever()
    sizes = [len(next(stream)) for _ in range(7)]
    assert sizes == [2, 2, 1, 2, 2, 1, 2]


@pytest.mark.parametrize("data, batch_size, message", [
    (10, 0, r"invalid batch_size=0"),
    (10, 2.5, r"invalid batch_size=2.5"),
    (0, None, r"empty \(n=0\)"),
    ((np.zeros(3), np.zeros(4)), None, r"different first dimensions \[3, 4\]"),
])
def test_bad_arguments_raise_with_the_reason(data, batch_size, message):
    with pytest.raises(ValueError, match=message):
        Batches(data, batch_size)
