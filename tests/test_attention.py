"""CausalSelfAttention and TransformerBlock: Keras MHA parity, causality by gradient,
the KV-cached step, float16 safety of the mask."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from mp_keras.engine import compiled, jacobian
from mp_keras.layers.attention import CausalSelfAttention, TransformerBlock
from tests.harness import check_config_round_trip, randomize_weights, to_numpy

HEADS, KEY_DIM, WIDTH, TIME = 2, 3, 8, 5
# Checks that need no gradient run compiled: JAX then compiles one program per function
# instead of every operation on its own.


def inputs(batch=2, time=TIME, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, time, WIDTH)).astype("float32")


def attention(**kwargs):
    layer = CausalSelfAttention(HEADS, KEY_DIM, **kwargs)
    layer.build((None, None, WIDTH))
    randomize_weights(layer, seed=1)  # non-zero biases too
    return layer


def check_causal_by_gradient(layer):
    """d out_t / d x_s is 0 for every s after t and non-zero for every s <= t."""
    mix = ops.convert_to_tensor(np.random.default_rng(9).normal(size=WIDTH).astype("float32"))

    def mixed(v):  # one random mixture of each output's features: (batch, time)
        return ops.sum(layer(v) * mix, axis=-1)

    jac = jacobian(mixed, inputs(batch=1), independent_batch=True)  # (1, time, 1, time, d)
    reach = np.abs(jac[0, :, 0]).sum(axis=-1) > 0  # [t, s]: does out_t move with x_s
    np.testing.assert_array_equal(reach, np.tril(np.ones((TIME, TIME), bool)))


def test_equals_keras_multi_head_attention_with_a_causal_mask():
    layer, x = attention(), inputs()
    mha = keras.layers.MultiHeadAttention(HEADS, KEY_DIM)
    mha(x, x)  # builds
    # Our W_Q is the notes' (d, heads * key_dim); MHA's EinsumDense keeps (d, heads, key_dim).
    for name in ("query", "key", "value"):
        dense = getattr(mha, f"{name}_dense")
        dense.kernel.assign(ops.reshape(getattr(layer, f"{name}_kernel"), (WIDTH, HEADS, KEY_DIM)))
        dense.bias.assign(ops.reshape(getattr(layer, f"{name}_bias"), (HEADS, KEY_DIM)))
    mha.output_dense.kernel.assign(ops.reshape(layer.output_kernel, (HEADS, KEY_DIM, WIDTH)))
    mha.output_dense.bias.assign(layer.output_bias)
    expected = to_numpy(compiled(lambda v: mha(v, v, use_causal_mask=True))(x))
    np.testing.assert_allclose(to_numpy(compiled(layer)(x)), expected, atol=1e-5)
    unmasked = to_numpy(compiled(lambda v: mha(v, v))(x))
    assert np.abs(expected - unmasked).max() > 1e-2  # the mask matters here
    weights = to_numpy(compiled(layer.attention_weights)(x))  # (batch, heads, time, time)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    assert not np.triu(weights[0, 0], k=1).any()  # exactly 0 above the diagonal


def test_output_t_depends_on_inputs_up_to_t_only():
    check_causal_by_gradient(attention())


def test_cached_step_equals_the_full_call_and_ignores_what_follows():
    layer, x = attention(), inputs(batch=3)
    full = to_numpy(compiled(layer)(x))
    step = compiled(layer.call_step)
    # Garbage after the current position must not matter: the step masks it out.
    rng = np.random.default_rng(2)
    cache_k, cache_v = (rng.normal(size=(3, HEADS, TIME, KEY_DIM)).astype("float32") for _ in "kv")
    for t in range(TIME):
        out, cache_k, cache_v = step(x[:, t], cache_k, cache_v, np.array([t], "int32"))
        np.testing.assert_allclose(to_numpy(out), full[:, t], atol=1e-5)
    keys = to_numpy(ops.matmul(x, layer.key_kernel) + layer.key_bias)  # (batch, time, h * k)
    np.testing.assert_allclose(
        to_numpy(cache_k).transpose(0, 2, 1, 3).reshape(3, TIME, -1), keys, atol=1e-5
    )
    # One position per example, with the caches full: later slots are masked out.
    positions = np.array([0, 2, 4], "int32")
    rows = np.arange(3)
    out, _, _ = step(x[rows, positions], cache_k, cache_v, positions)
    np.testing.assert_allclose(to_numpy(out), full[rows, positions], atol=1e-5)


def test_block_is_pre_norm_residual_and_its_step_matches():
    block = TransformerBlock(HEADS, KEY_DIM, mlp_dim=16)
    block.build((None, None, WIDTH))
    randomize_weights(block, seed=3, scale=0.3)
    x = inputs()
    full = to_numpy(compiled(block)(x))
    step = compiled(block.call_step)
    cache_k = cache_v = np.zeros((2, HEADS, TIME, KEY_DIM), "float32")
    for t in range(TIME):
        out, cache_k, cache_v = step(x[:, t], cache_k, cache_v, np.array([t], "int32"))
        np.testing.assert_allclose(to_numpy(out), full[:, t], atol=1e-5)

    def by_hand(v):  # pre-norm: v + attention(LN(v)), then + MLP(LN(.))
        v = ops.convert_to_tensor(v)
        h = v + block.attention(block.attention_norm(v))
        return h + block.mlp_output(block.mlp_hidden(block.mlp_norm(h)))

    np.testing.assert_allclose(full, to_numpy(compiled(by_hand)(x)), atol=1e-5)


def test_mask_is_safe_in_float16():
    x = inputs()
    layer = attention()
    half = CausalSelfAttention(HEADS, KEY_DIM, dtype="float16")
    half.build((None, None, WIDTH))
    half.set_weights(layer.get_weights())
    y = to_numpy(compiled(half)(x.astype("float16"))).astype("float32")
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, to_numpy(compiled(layer)(x)), atol=0.05)


def test_dropout_acts_in_training_only_and_configs_round_trip():
    layer = attention(dropout=0.5, seed=4)
    x = inputs()
    np.testing.assert_allclose(to_numpy(layer(x)), to_numpy(layer(x, training=False)))
    assert np.abs(to_numpy(layer(x, training=True)) - to_numpy(layer(x))).max() > 1e-3
    check_config_round_trip(layer)
    check_config_round_trip(TransformerBlock(HEADS, KEY_DIM, mlp_dim=16, dropout=0.1, seed=1))
    no_bias = CausalSelfAttention(HEADS, KEY_DIM, use_bias=False)
    no_bias.build((None, None, WIDTH))
    assert len(no_bias.trainable_weights) == 4  # W_Q, W_K, W_V, W_O


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_heads must be a positive int"):
        CausalSelfAttention(0, 4)
    with pytest.raises(ValueError, match=r"dropout must be a float in \[0, 1\)"):
        CausalSelfAttention(2, 4, dropout=1.5)
    with pytest.raises(ValueError, match="mlp_dim"):
        TransformerBlock(2, 4, mlp_dim=0)
