"""WaveNet's generation: queues, one-step updates, fast and naive sampling, export.

Fast generation after Paine et al., "Fast Wavenet Generation Algorithm", 2016: every
causal convolution keeps a queue of its last (k - 1) d inputs, so a new sample costs
O(layers) instead of a rerun of the network over the receptive field. `WaveNetGeneration`
is a mixin of `mp_keras.models.WaveNet`, kept in its own file.
"""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import compiled
from mp_keras.layers.causal_conv import CausalConv1D, dense_step
from mp_keras.models._checks import check_count

METHODS = ("fast", "naive")
STEPS_PER_CALL = 64  # samples generated per call of the compiled loop


def _write_column(buffer: Any, t: Any, values: Any) -> Any:
    """`buffer` `(batch, length)` with column t set to `values` `(batch,)`."""
    hot = ops.one_hot(t, ops.shape(buffer)[1], dtype=buffer.dtype)
    return buffer + hot[None, :] * (values - ops.take(buffer, t, axis=1))[:, None]


class WaveNetGeneration:
    """Sampling and export of `WaveNet` (see its docstring); reads the model's layers."""

    # === Fast generation (Paine et al. 2016) ===

    def _convolutions(self) -> list[CausalConv1D]:
        return [self.causal_conv, *(block.dilated for block in self.blocks)]

    @property
    def queue_shapes(self) -> list[tuple[int, int]]:
        """`(length, channels)` of each queue of `generation_step`, oldest entry first."""
        channels = [self.num_classes] + [self.residual_channels] * len(self.blocks)
        return [
            (conv.queue_length, c)
            for conv, c in zip(self._convolutions(), channels)
            if conv.queue_length
        ]

    def initial_queues(self, batch: int) -> list[Any]:
        """Queues of zeros: the state before the first sample (the causal zero padding)."""
        return [ops.zeros((batch, *shape), dtype=self.compute_dtype) for shape in self.queue_shapes]

    def generation_step(
        self, x_t: Any, queues: list[Any], condition: Any = None
    ) -> tuple[Any, list[Any]]:
        """One step of the network: the input sample `(batch,)` -> logits, new queues.

        `x_t` is the previous sample (silence for the first), `queues` the state
        (`initial_queues` at the start); the logits `(batch, num_classes)` are those of
        the next sample, equal to `conditional_logits` at that position.
        """
        if len(queues) != len(self.queue_shapes):
            raise ValueError(
                f"{type(self).__name__}.generation_step expects {len(self.queue_shapes)} "
                f"queues of shapes (batch, length, channels) {self.queue_shapes}; got "
                f"{len(queues)}."
            )
        labels = self._condition(condition)
        pending = iter(queues)
        state = [next(pending) if conv.queue_length else None for conv in self._convolutions()]
        new_queues = []

        h, queue = self.causal_conv.step(self._one_hot(ops.cast(x_t, "int32")), state[0])
        if state[0] is not None:
            new_queues.append(queue)
        skips = 0.0
        for block, queue in zip(self.blocks, state[1:]):
            h, skip, new_queue = block.step(h, queue, labels)  # (batch, residual_channels)
            skips = skips + skip
            if queue is not None:
                new_queues.append(new_queue)
        hidden = ops.relu(dense_step(self.head_hidden, ops.relu(skips)))
        return dense_step(self.head_logits, hidden), new_queues  # = self._head(skips)

    def sample(
        self,
        num: int,
        seed: int | None = None,
        *,
        length: int | None = None,
        condition: Any = None,
        method: str = "fast",
    ) -> Any:
        """Ancestral sampling of `num` sequences of `length` classes, int32 `(num, length)`.

        The uniform numbers (one per sample, inverse-CDF draws) come from `seed` up front,
        so both methods give the same samples. `length` defaults to `input_length`;
        conditional models need `condition`: one label, or `num` labels.

        Afterwards `last_sample_timing` holds the seconds of the first step (which
        includes tracing and compiling it) and of all steps, for benchmarks.
        """
        owner = type(self).__name__
        num = check_count(owner, "num", num)
        if length is None and self.input_length is None:
            raise ValueError(f"{owner} has no input_length: pass sample(num, length=...).")
        length = check_count(owner, "length", self.input_length if length is None else length)
        if method not in METHODS:
            raise ValueError(f"{owner}: method must be one of {METHODS}, got {method!r}.")
        labels = self._sampling_condition(num, condition)
        extra = () if labels is None else (labels,)
        uniforms = keras.random.uniform(
            (num, length), seed=self.seed_generator if seed is None else seed
        )
        sampler = self._sample_fast if method == "fast" else self._sample_naive
        start = time.perf_counter()
        samples = ops.convert_to_numpy(sampler(num, length, uniforms, extra, start))
        self.last_sample_timing["total_s"] = time.perf_counter() - start
        return ops.convert_to_tensor(samples)

    def _first_step_done(self, start: float, value: Any) -> None:
        ops.convert_to_numpy(value)  # waits for asynchronous backends (JAX)
        self.last_sample_timing = {"first_step_s": time.perf_counter() - start}

    def _draw(self, logits: Any, u: Any) -> Any:
        """Inverse-CDF draw from softmax(logits) `(batch, C)` with uniforms `(batch,)`."""
        cdf = ops.cumsum(ops.softmax(logits, axis=-1), axis=-1)
        drawn = ops.sum(ops.cast(cdf < u[:, None], "int32"), axis=-1)
        return ops.minimum(drawn, self.num_classes - 1)

    def _sample_fast(self, num: int, length: int, uniforms: Any, extra: tuple, start: float) -> Any:
        def step(t: Any, state: tuple, u: Any, *cond: Any) -> tuple:
            previous, queues, drawn = state
            logits, queues = self.generation_step(previous, queues, *cond)
            previous = self._draw(logits, ops.take(u, t, axis=1))
            return previous, queues, _write_column(drawn, t, previous)

        previous = ops.full((num,), self.silence, dtype="int32")
        state = (previous, self.initial_queues(num), ops.zeros((num, length), dtype="int32"))
        return self._run_steps(step, state, length, start, uniforms, *extra)[2]

    def _sample_naive(
        self, num: int, length: int, uniforms: Any, extra: tuple, start: float
    ) -> Any:
        window = min(length, self.receptive_field)

        # `inputs` holds the network's inputs: silence, then the samples drawn so far.
        def step(t: Any, inputs: Any, u: Any, *cond: Any) -> Any:
            # The R inputs the next sample can see (the start of the sequence at first:
            # later, not yet drawn entries are causally invisible).
            first = ops.clip(t - window + 1, 0, length - window)
            seen = ops.slice(inputs, ops.stack([ops.zeros_like(first), first]), (num, window))
            logits = self.network(self._one_hot(seen), *cond)  # (num, window, C)
            drawn = self._draw(ops.take(logits, t - first, axis=1), ops.take(u, t, axis=1))
            return _write_column(inputs, t + 1, drawn)  # input t + 1 is sample t

        inputs = ops.full((num, length + 1), self.silence, dtype="int32")
        return self._run_steps(step, inputs, length, start, uniforms, *extra)[:, 1:]

    def _run_steps(self, step: Any, state: Any, length: int, start: float, *args: Any) -> Any:
        """`state = step(t, state, *args)` for t = 0 .. length - 1, in compiled chunks.

        One compiled function runs a chunk of steps in a loop (`ops.fori_loop`), so the
        cost of calling it is paid once per `STEPS_PER_CALL` samples, not per sample;
        step 0 runs alone first, so `last_sample_timing["first_step_s"]` is the trace.
        """

        def steps(state: Any, first: Any, count: Any, *args: Any) -> Any:
            return ops.fori_loop(first, first + count, lambda t, s: step(t, s, *args), state)

        run = compiled(steps)  # traced once, reused for every chunk
        as_int = lambda value: ops.convert_to_tensor(value, dtype="int32")  # noqa: E731
        state = run(state, as_int(0), as_int(1), *args)
        self._first_step_done(start, keras.tree.flatten(state)[-1])
        t = 1
        while t < length:
            count = min(STEPS_PER_CALL, length - t)
            state = run(state, as_int(t), as_int(count), *args)
            t += count
        return state

    # === Export ===

    def export_endpoints(self) -> dict[str, Any]:
        x_spec = keras.InputSpec(shape=(None, self.input_length), dtype="int32")
        sample_spec = keras.InputSpec(shape=(None,), dtype="int32")
        queue_specs = [
            keras.InputSpec(shape=(None, *shape), dtype="float32") for shape in self.queue_shapes
        ]

        def step(x: Any, queues: list[Any], *condition: Any) -> dict[str, Any]:
            logits, new_queues = self.generation_step(x, queues, *condition)
            return {"logits": logits, **{f"queue_{i}": q for i, q in enumerate(new_queues)}}

        if self.num_conditions is None:
            return {
                "log_prob": (lambda x: self.log_prob(x), [x_spec]),
                "generation_step": (step, [sample_spec, queue_specs]),
            }
        label_spec = keras.InputSpec(shape=(None,), dtype="int32")
        return {
            "log_prob": (lambda x, condition: self.log_prob(x, condition), [x_spec, label_spec]),
            "generation_step": (step, [sample_spec, queue_specs, label_spec]),
        }

    def export_samples(self, name: str, num: int, seed: int) -> list[Any]:
        """Classes, queues (and labels) for the export's parity check."""
        rng = np.random.default_rng(seed)
        labels = (
            []
            if self.num_conditions is None
            else [rng.integers(0, self.num_conditions, num).astype("int32")]
        )
        if name == "log_prob":
            length = self.input_length or self.receptive_field + 2
            return [rng.integers(0, self.num_classes, (num, length)).astype("int32"), *labels]
        x = rng.integers(0, self.num_classes, num).astype("int32")
        queues = [rng.normal(size=(num, *shape)).astype("float32") for shape in self.queue_shapes]
        return [x, queues, *labels]
