"""NADE's cost in the number of dimensions n: the O(n d) recursion against the definition.

Times `NADE.log_prob` (the exclusive cumulative sum of notes section 6.2, compiled) on a
batch of random binary vectors for each n, with d hidden units, and prints the seconds per
batch and the ratio to the previous n. Linear cost means a ratio close to the ratio of
the sizes (4 for the default 64, 256, 1024); the definition, computing every h_i afresh
(`naive_conditional_logits`, with `--naive`), grows like n^2. Timings are the best of
`--repeats` runs after one warm-up call (which compiles). With `--train`, it times a
training step instead: `model.fit` for one epoch of `--steps` batches of 28x28 random
binary images (after a warm-up epoch), the cost of one binarized-MNIST step.

Usage (from the repository root):

    .venv/bin/python apps/benchmarks/nade_cost.py [--backend tensorflow|jax|torch]
        [--sizes 64,256,1024] [--hidden-units 500] [--batch-size 32] [--repeats 5]
        [--naive]
    .venv/bin/python apps/benchmarks/nade_cost.py --train [--hidden-units 500]
        [--batch-size 100] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence


def measure(
    sizes: Sequence[int] = (64, 256, 1024),
    hidden_units: int = 500,
    batch_size: int = 32,
    repeats: int = 5,
    naive: bool = False,
) -> dict[str, dict[int, float]]:
    """Best-of-`repeats` seconds of one batch's log-likelihood, per n.

    Returns `{"recursion": {n: seconds}}`, plus `"naive"` (the definition) if asked.
    """
    import keras
    import numpy as np

    from mp_keras.engine import compiled
    from mp_keras.models.density import bernoulli_log_prob
    from mp_keras.models.nade import NADE

    methods = ["recursion", *(["naive"] if naive else [])]
    result: dict[str, dict[int, float]] = {method: {} for method in methods}
    rng = np.random.default_rng(0)
    for n in sizes:
        model = NADE(input_shape=(n,), hidden_units=hidden_units, seed=0)
        x = keras.ops.convert_to_tensor((rng.random((batch_size, n)) < 0.5).astype("float32"))
        functions = {
            "recursion": compiled(model.log_prob),
            "naive": compiled(
                lambda v, m=model: bernoulli_log_prob(v, m.naive_conditional_logits(v))
            ),
        }
        for method in methods:
            run = functions[method]
            keras.ops.convert_to_numpy(run(x))  # warm-up: compiles
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                keras.ops.convert_to_numpy(run(x))
                best = min(best, time.perf_counter() - start)
            result[method][n] = best
    return result


def train_step_seconds(hidden_units: int = 500, batch_size: int = 100, steps: int = 10) -> float:
    """Seconds per `model.fit` step of a 28x28 NADE (Adam), after a warm-up epoch."""
    import numpy as np

    from mp_keras.models.nade import NADE

    rng = np.random.default_rng(0)
    x = (rng.random((batch_size * steps, 28, 28, 1)) < 0.5).astype("float32")
    model = NADE(input_shape=(28, 28, 1), hidden_units=hidden_units, seed=0)
    model.compile(optimizer="adam")
    model.fit(x[: 2 * batch_size], epochs=1, batch_size=batch_size, verbose=0)  # compiles
    start = time.perf_counter()
    model.fit(x, epochs=1, batch_size=batch_size, verbose=0)
    return (time.perf_counter() - start) / steps


def report(result: dict[str, dict[int, float]]) -> str:
    """The table `main` prints: seconds per batch and ratio to the previous size."""
    lines = ["method     n      seconds   ratio"]
    for method, timings in result.items():
        previous = None
        for n, seconds in timings.items():
            ratio = "" if previous is None else f"{seconds / previous:7.2f}"
            lines.append(f"{method:<10} {n:<6} {seconds:9.5f} {ratio}")
            previous = seconds
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--sizes", default="64,256,1024")
    parser.add_argument("--hidden-units", type=int, default=500)
    parser.add_argument("--batch-size", type=int, help="default 32 (100 with --train)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive", action="store_true")
    parser.add_argument("--train", action="store_true", help="time a 28x28 training step")
    parser.add_argument("--steps", type=int, default=10, help="timed steps with --train")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend  # Keras reads it once, at import
    batch = args.batch_size or (100 if args.train else 32)
    if args.train:
        seconds = train_step_seconds(args.hidden_units, batch, args.steps)
        print(
            f"backend {args.backend}, d = {args.hidden_units}, batch {batch}: "
            f"{seconds:.3f} s per training step"
        )
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    result = measure(sizes, args.hidden_units, batch, args.repeats, args.naive)
    print(f"backend {args.backend}, d = {args.hidden_units}, batch {batch}")
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
