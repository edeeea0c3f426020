"""MADE: the mask rule, the autoregressive property for any ordering and depth,
connectivity-agnostic training inside `fit`, the order-agnostic ensemble, saved masks."""

from __future__ import annotations

import types

import keras
import numpy as np
import pytest

from mp_keras.layers.masked_dense import MaskedDense
from mp_keras.models.made import MADE, made_degrees, made_masks
from tests.harness import (
    binary_images as binary,
)
from tests.harness import (
    check_autoregressive,
    check_config_round_trip,
    check_normalises,
    randomize_weights,
    run_standard_checks,
    to_numpy,
)


def one_mask(model, k):
    """`model` seen through mask k only, for the harness' checks."""
    return types.SimpleNamespace(
        conditional_logits=lambda v: model.conditional_logits(v, mask_index=k),
        ordering=lambda: model.ordering(k),
        log_prob=lambda v: model.log_prob(v, mask_index=k),
        data_shape=model.data_shape,
    )


def connectivity(masks):
    """Number of paths from input j to output i, `[j, i]`, through a list of masks."""
    reach = masks[0]
    for mask in masks[1:]:
        reach = reach @ mask
    return reach


def test_standard_checks(tmp_path):
    run_standard_checks(
        lambda: MADE(
            input_shape=(2, 2, 1), hidden_units=(8,), ordering="random", num_masks=2, seed=0
        ),
        binary((16, 2, 2, 1)),
        (None, 2, 2, 1),
        tmp_path,
    )


def test_mask_rule_by_brute_force():
    rng = np.random.default_rng(0)
    n = 5
    m0 = rng.permutation(n) + 1
    hidden = made_degrees(m0, [7, 6], rng)
    low = m0.min()
    for degrees in hidden:  # uniform in [min of the layer below, n - 1]: no dead unit
        assert degrees.min() >= low and degrees.max() <= n - 1
        low = degrees.min()
    masks = made_masks(m0, hidden)
    assert [m.shape for m in masks] == [(5, 7), (7, 6), (6, 5)]
    layers = [m0, *hidden]
    for mask, below, above in zip(masks[:-1], layers[:-1], layers[1:]):
        for j in range(len(below)):
            for i in range(len(above)):
                assert mask[j, i] == (1.0 if below[j] <= above[i] else 0.0)
    for j in range(len(hidden[-1])):
        for i in range(n):  # strictly: an output never sees a unit of its own degree
            assert masks[-1][j, i] == (1.0 if hidden[-1][j] < m0[i] else 0.0)
    assert not masks[-1][hidden[-1][:, None] == m0[None, :]].any()
    # In the ordering, input j reaches output i only if j comes first: strictly upper.
    order = np.argsort(m0)
    reach = connectivity(masks)[np.ix_(order, order)]
    assert not np.tril(reach).any()
    assert np.triu(reach, k=1).any()


def test_model_masks_follow_the_ordering_of_each_mask():
    model = MADE(input_shape=(2, 2, 1), hidden_units=(8, 8), ordering="random", num_masks=3)
    orders = [model.ordering(k) for k in range(3)]
    assert all(sorted(order) == list(range(4)) for order in orders)
    assert len({tuple(order) for order in orders}) == 3  # one random ordering per mask
    stacks = model.masks()
    assert [stack.shape for stack in stacks] == [(3, 4, 8), (3, 8, 8), (3, 8, 4)]
    for k, order in enumerate(orders):
        reach = connectivity(model.masks(k))[np.ix_(order, order)]
        assert not np.tril(reach).any()
    natural = MADE(input_shape=(4,), hidden_units=(8,), num_masks=2)
    assert all((natural.ordering(k) == np.arange(4)).all() for k in range(2))
    assert not np.array_equal(*natural.masks()[0])  # same order, other hidden degrees


@pytest.mark.parametrize(
    ("ordering", "hidden_units", "direct"),
    [("natural", (8,), False), ("random", (8,), False), ("random", (8, 8), True)],
)
def test_autoregressive_by_gradient(ordering, hidden_units, direct):
    model = MADE(
        input_shape=(2, 2, 1),
        hidden_units=hidden_units,
        ordering=ordering,
        num_masks=2,
        direct_connections=direct,
    )
    randomize_weights(model)
    x = np.random.default_rng(1).normal(size=(1, 2, 2, 1))
    for k in range(2):
        check_autoregressive(one_mask(model, k), x, order=model.ordering(k))


@pytest.mark.parametrize("ordering", ["natural", "random"])
def test_direct_connections_are_an_fvsbn_inside_the_made(ordering):
    model = MADE(
        input_shape=(4,), hidden_units=(8,), ordering=ordering, num_masks=2, direct_connections=True
    )
    direct = model.direct_layer
    assert direct.stacked == (ordering == "random")  # one n x n mask when orders agree
    for k in range(2):
        rank = np.argsort(model.ordering(k))
        mask = direct.masks()[k] if direct.stacked else direct.masks()
        np.testing.assert_array_equal(mask, rank[:, None] < rank[None, :])  # j before i
    randomize_weights(model)
    kernel = np.random.default_rng(4).normal(size=(4, 4)).astype("float32")
    direct.kernel.assign(kernel)
    hidden = MADE.from_config({**model.get_config(), "direct_connections": False})
    for mine, theirs in zip(
        [*hidden.hidden_layers, hidden.output_layer], [*model.hidden_layers, model.output_layer]
    ):
        mine.set_weights(theirs.get_weights())  # same mask_seed: the same masks
    x = binary((6, 4), seed=3, p=0.5)
    for k in range(2):  # the path adds exactly x (A ⊙ M_direct) to the hidden path's logits
        mask = direct.masks()[k] if direct.stacked else direct.masks()
        np.testing.assert_allclose(
            to_numpy(model.conditional_logits(x, mask_index=k)),
            to_numpy(hidden.conditional_logits(x, mask_index=k)) + x @ (kernel * mask),
            atol=1e-5,
        )
    check_normalises(model)
    check_config_round_trip(model)


def test_connectivity_agnostic_training_and_the_ensemble(tmp_path):
    x = binary((256, 2, 2, 1), seed=2, p=0.5)
    x[:, 1, 1, 0] = x[:, 0, 0, 0]  # pixel 4 copies pixel 1
    model = MADE(input_shape=(2, 2, 1), hidden_units=(16,), ordering="random", num_masks=3, seed=0)
    before = [model.nll(x, mask_index=k) for k in range(3)]
    kernels = [to_numpy(layer.kernel) for layer in (*model.hidden_layers, model.output_layer)]
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(x, epochs=8, batch_size=32, verbose=0)  # 64 steps, one mask drawn per step
    counts = to_numpy(model.mask_counts)
    assert counts.sum() == 64 and (counts > 0).all(), counts
    after = [model.nll(x, mask_index=k) for k in range(3)]
    assert all(a < b - 0.2 for a, b in zip(after, before)), (before, after)
    # A weight that no mask uses gets no gradient: the kernel is masked, not rewritten.
    for kernel, layer in zip(kernels, (*model.hidden_layers, model.output_layer)):
        unused = layer.masks().max(axis=0) == 0
        assert unused.any()
        np.testing.assert_array_equal(to_numpy(layer.kernel)[unused], kernel[unused])

    # The ensemble is log mean_k p_k(x): another distribution, still normalised.
    per_mask = np.stack([to_numpy(model.log_prob(x[:16], mask_index=k)) for k in range(3)])
    ensemble = to_numpy(model.log_prob(x[:16]))
    expected = np.logaddexp.reduce(per_mask.astype("float64"), axis=0) - np.log(3)
    np.testing.assert_allclose(ensemble, expected, atol=1e-5)
    assert all(np.abs(ensemble - single).max() > 1e-3 for single in per_mask)
    check_normalises(model)
    for k in range(3):
        check_normalises(one_mask(model, k))

    # Saved and loaded: the same masks, orderings, counts and ensemble likelihood.
    model.save(tmp_path / "made.keras")
    loaded = keras.saving.load_model(tmp_path / "made.keras")
    for saved, restored in zip(model.masks(), loaded.masks()):
        np.testing.assert_array_equal(saved, restored)
    assert all((loaded.ordering(k) == model.ordering(k)).all() for k in range(3))
    np.testing.assert_array_equal(to_numpy(loaded.mask_counts), counts)
    np.testing.assert_allclose(to_numpy(loaded.log_prob(x[:16])), ensemble, atol=1e-6)


def test_saved_masks_win_over_the_regenerated_ones(tmp_path):
    model = MADE(input_shape=(4,), hidden_units=(8,), num_masks=2, mask_seed=0)
    other = MADE(input_shape=(4,), hidden_units=(8,), num_masks=2, mask_seed=1)
    for mine, theirs in zip(
        [*model.hidden_layers, model.output_layer], [*other.hidden_layers, other.output_layer]
    ):
        mine.mask.assign(theirs.mask)
    model.save(tmp_path / "made.keras")
    loaded = keras.saving.load_model(tmp_path / "made.keras")  # rebuilt from mask_seed=0
    for restored, wanted in zip(loaded.masks(), other.masks()):
        np.testing.assert_array_equal(restored, wanted)


def test_single_mask_normalises_and_samples_are_seeded():
    model = MADE(input_shape=(2, 2, 1), hidden_units=(8,), ordering="random", num_masks=2)
    randomize_weights(model)
    single = MADE(input_shape=(2, 2, 1), hidden_units=(8,))
    randomize_weights(single)
    check_normalises(single)
    np.testing.assert_allclose(
        to_numpy(single.log_prob(binary((4, 2, 2, 1)))),
        to_numpy(single.log_prob(binary((4, 2, 2, 1)), mask_index=0)),
    )
    first, again = (to_numpy(model.sample(12, seed=3, mask_index=1)) for _ in range(2))
    np.testing.assert_array_equal(first, again)
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert model.ordering().tolist() == model.ordering(0).tolist()  # restored after sample
    with pytest.raises(ValueError, match="mask_index"):
        model.sample(2, mask_index=2)
    with pytest.raises(ValueError, match="mask_index"):
        model.log_prob(binary((2, 2, 2, 1)), mask_index=-1)


def test_invalid_arguments_and_inputs():
    with pytest.raises(ValueError, match="ordering"):
        MADE(input_shape=(4,), ordering="reversed")
    with pytest.raises(ValueError, match="num_masks"):
        MADE(input_shape=(4,), num_masks=0)
    with pytest.raises(ValueError, match="hidden_units"):
        MADE(input_shape=(4,), hidden_units=(3, 0))
    model = MADE(input_shape=(4,), hidden_units=(8,))
    model.compile()
    with pytest.raises(ValueError, match="binary"):
        model.fit(np.full((8, 4), 0.5, "float32"), epochs=1, verbose=0)


def test_masked_dense_masks_the_product_not_the_kernel():
    mask = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    layer = MaskedDense(3, mask, activation="relu")
    x = np.array([[1.0, -2.0], [0.5, 3.0]], "float32")
    out = to_numpy(layer(x))
    kernel, bias = to_numpy(layer.kernel), to_numpy(layer.bias)
    np.testing.assert_allclose(out, np.maximum(x @ (kernel * mask) + bias, 0.0), atol=1e-6)
    np.testing.assert_array_equal(to_numpy(layer.kernel), kernel)  # not rewritten
    assert [w.name for w in layer.non_trainable_weights] == ["mask"]

    clone = MaskedDense.from_config(layer.get_config())
    np.testing.assert_array_equal(clone.masks(), mask)
    assert clone.get_config() == layer.get_config()

    stacked = MaskedDense(3, np.stack([mask, 1 - mask]))
    y = keras.ops.convert_to_tensor(x)
    both = [to_numpy(stacked(y, mask_index=k)) for k in range(2)]
    index = keras.ops.convert_to_tensor(1, dtype="int32")
    np.testing.assert_allclose(to_numpy(stacked(y, mask_index=index)), both[1], atol=1e-6)
    with pytest.raises(ValueError, match="mask_index"):
        stacked(y)
    with pytest.raises(ValueError, match=r"\(input_dim, 4\)"):
        MaskedDense(4, mask)
    check_config_round_trip(MADE(input_shape=(4,), hidden_units=(8, 8), num_masks=2))
    fvsbn = MADE(input_shape=(4,), hidden_units=())  # no hidden layer: x_j -> x_i for j < i
    np.testing.assert_array_equal(fvsbn.masks(0)[0], np.triu(np.ones((4, 4)), k=1))
    assert MADE(input_shape=(4,), hidden_units=8).hidden_units == (8,)


def test_the_shipped_binarized_mnist_model_loads_and_scores_its_test_set():
    import json
    from pathlib import Path

    import keras

    import mp_keras  # noqa: F401  (registers the classes)
    from mp_keras.data import load_binarized_mnist

    folder = Path(__file__).resolve().parents[1] / "saved_models" / "made_binarized_mnist"
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "binarized_mnist.npz"
    model = keras.saving.load_model(folder / "model.keras")
    assert model.data_shape == (28, 28, 1) and model.training_backend == "jax"
    if not shared.is_file():
        pytest.skip("../shared/data/binarized_mnist.npz not present")
    recorded = json.loads((folder / "metrics.json").read_text())["nll"]
    x = load_binarized_mnist(shared, "test").x
    assert abs(model.nll(x, batch_size=1000) - recorded) < 0.01  # same on every backend
