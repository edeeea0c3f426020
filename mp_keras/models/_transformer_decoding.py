"""The Transformer's decoding: the KV-cached step, generation with and without the cache,
and the exported step. `TransformerDecoding` is a mixin of `mp_keras.models.Transformer`,
kept in its own file."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.layers.attention import step_positions
from mp_keras.models._checks import check_count


class TransformerDecoding:
    """Decoding and export of `Transformer` (see its docstring); reads the model's blocks."""

    # === Decoding ===

    def empty_cache(self, batch: int) -> tuple[Any, Any]:
        """Zero KV caches `(batch, num_layers * num_heads, max_length, key_dim)`."""
        shape = (batch, self.num_layers * self.num_heads, self.max_length, self.key_dim)
        return ops.zeros(shape, self.compute_dtype), ops.zeros(shape, self.compute_dtype)

    def decode_step(self, token: Any, position: Any, cache_k: Any, cache_v: Any) -> dict[str, Any]:
        """One position: the token read there (the start token at 0, else x_(p-1)) and
        the caches -> the logits of x_p `(batch, vocab)` and the updated caches.

        The caches hold every layer's keys and values, heads of layer l at
        `l * num_heads ... (l + 1) * num_heads` of axis 1; `position` is an int (tensor)
        or one per example. This is the exported step; `generate` runs the same
        computation on one cache per layer, saving the split and the concatenation.
        """
        split = [
            slice(i * self.num_heads, (i + 1) * self.num_heads) for i in range(self.num_layers)
        ]
        logits, keys, values = self._step(
            token, position, [cache_k[:, s] for s in split], [cache_v[:, s] for s in split]
        )
        return {
            "logits": logits,
            "cache_k": ops.concatenate(keys, axis=1),
            "cache_v": ops.concatenate(values, axis=1),
        }

    def _step(self, token: Any, position: Any, keys: list[Any], values: list[Any]) -> Any:
        """`decode_step` on per-layer caches `(batch, heads, max_length, key_dim)`."""
        position = step_positions(position)
        h = self.embedding.call_step(token, position)  # (batch, d)
        new_keys, new_values = [], []
        for block, k, v in zip(self.blocks, keys, values):
            h, k, v = block.call_step(h, k, v, position)  # (batch, d), caches
            new_keys.append(k)
            new_values.append(v)
        return self.head(self.final_norm(h)), new_keys, new_values

    def generate(
        self,
        prompt: Any = None,
        num: int | None = None,
        length: int | None = None,
        seed: int | None = None,
        cache: bool = True,
        greedy: bool = False,
        temperature: float = 1.0,
    ) -> Any:
        """Continues `prompt` `(batch, P)` (or `num` empty prompts) by `length` tokens.

        Each token is argmax(logits / temperature + Gumbel noise), a draw from the
        softmax, or the argmax alone when `greedy`; the noise is drawn up front from
        `seed` (else the model's seed generator). `length` defaults to filling
        `max_length`. Returns the prompt and the new tokens, int32 `(batch, P + length)`.
        """
        owner = type(self).__name__
        if prompt is None:
            prompt = np.zeros((check_count(owner, "num", num), 0), "int32")
        prompt = np.asarray(ops.convert_to_numpy(prompt))
        if self.images and prompt.ndim == 4:
            prompt = prompt.reshape(len(prompt), -1)
        if prompt.ndim != 2:
            raise ValueError(
                f"{owner} expects a prompt of shape (batch, length); got {prompt.shape}."
            )
        self._check_tokens(prompt, what="prompt")
        batch, given = prompt.shape
        length = self.max_length - given if length is None else check_count(owner, "length", length)
        total = given + length
        if total > self.max_length:
            raise ValueError(
                f"{owner} has max_length={self.max_length}; a prompt of {given} tokens and "
                f"length={length} new ones make {total}."
            )
        if not temperature > 0:
            raise ValueError(f"{owner}: temperature must be > 0, got {temperature!r}.")
        # One draw per position of the whole sequence (those of the prompt go unused), so
        # the compiled steps depend on (batch, P + length) only, not on P.
        uniform = keras.random.uniform(
            (batch, total, self.vocab_size),
            minval=1e-7,
            maxval=1.0,
            seed=self.seed_generator if seed is None else seed,
        )
        # Draw i = argmax(logits / T + g_i), g_i = -log(-log u_i): a sample of softmax(l / T).
        noise = ops.zeros_like(uniform) if greedy else -ops.log(-ops.log(uniform))
        scale = ops.convert_to_tensor(1.0 if greedy else 1.0 / temperature, self.compute_dtype)
        prompt = ops.convert_to_tensor(prompt.astype("int32"))
        if cache:
            return self._generate_cached(prompt, total, noise, scale)
        return self._generate_full(prompt, total, noise, scale)

    @staticmethod
    def _choose(logits: Any, position: Any, noise: Any, scale: Any) -> Any:
        """The token drawn at `position` from its logits and its noise, int32 `(batch,)`."""
        drawn = ops.argmax(logits * scale + ops.take(noise, position, axis=1), axis=-1)
        return ops.cast(drawn, "int32")

    def _compiled(self, key: str, fn: Any) -> Any:
        """`fn(*tensors)` compiled once, the weights passed in: valid after training."""
        return self._compiled_fns(key, fn, self.weights)

    def _generate_cached(self, prompt: Any, total: int, *draw: Any) -> Any:
        layers = self.num_layers

        def step(token: Any, position: Any, *state: Any) -> Any:
            caches, draw = state[: 2 * layers], state[2 * layers :]
            logits, keys, values = self._step(token, position, caches[:layers], caches[layers:])
            return self._choose(logits, position, *draw), *keys, *values

        run = self._compiled("cached", step)  # one step, reused for every token
        batch, given = ops.shape(prompt)
        shape = (batch, self.num_heads, self.max_length, self.key_dim)
        caches = [ops.zeros(shape, self.compute_dtype) for _ in range(2 * layers)]
        token = ops.full((batch,), self.start_token, dtype="int32")
        tokens = []
        for p in range(total):
            token, *caches = run(token, ops.convert_to_tensor(p, "int32"), *caches, *draw)
            if p < given:  # the prompt: read its tokens, discard the draws
                token = prompt[:, p]
            tokens.append(token)
        return ops.stack(tokens, axis=1)

    def _generate_full(self, prompt: Any, total: int, *draw: Any) -> Any:
        def step(buffer: Any, position: Any, *draw: Any) -> Any:
            logits = ops.take(self._sequence_logits(buffer), position, axis=1)  # (batch, vocab)
            here = ops.arange(ops.shape(buffer)[1], dtype="int32")[None, :] == position
            return ops.where(here, self._choose(logits, position, *draw)[:, None], buffer)

        run = self._compiled("full", step)  # the whole network, rerun for every token
        batch, given = ops.shape(prompt)
        pad = ops.zeros((batch, total - given), dtype="int32")
        buffer = ops.concatenate([prompt, pad], axis=1)  # (batch, total)
        for p in range(given, total):
            buffer = run(buffer, ops.convert_to_tensor(p, "int32"), *draw)
        return buffer

    # === Export ===

    def export_endpoints(self) -> dict[str, Any]:
        x_spec = keras.InputSpec(shape=(None, *self.data_shape), dtype="float32")
        cache = (None, self.num_layers * self.num_heads, self.max_length, self.key_dim)
        return {
            "log_prob": (lambda x: self.log_prob(x), [x_spec]),
            "decode_step": (
                self.decode_step,
                [
                    keras.InputSpec(shape=(None,), dtype="int32"),
                    keras.InputSpec(shape=(None,), dtype="int32"),
                    keras.InputSpec(shape=cache, dtype="float32"),
                    keras.InputSpec(shape=cache, dtype="float32"),
                ],
            ),
        }

    def export_samples(self, name: str, num: int, seed: int) -> list[np.ndarray]:
        """Valid data for `log_prob`; tokens, positions and caches for `decode_step`."""
        rng = np.random.default_rng(seed)
        if name == "log_prob":
            return [rng.integers(0, self.vocab_size, (num, *self.data_shape)).astype("float32")]
        cache = (num, self.num_layers * self.num_heads, self.max_length, self.key_dim)
        return [
            rng.integers(0, self.vocab_size + 1, num).astype("int32"),
            rng.integers(0, self.max_length, num).astype("int32"),
            rng.normal(size=cache).astype("float32"),
            rng.normal(size=cache).astype("float32"),
        ]
