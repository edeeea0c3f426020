"""NADE's cost in the number of dimensions n: the O(n d) recursion against the definition.

Times `NADE.log_prob` (the exclusive cumulative sum of notes section 6.2, compiled) on a
batch of random binary vectors for each n, with d hidden units, and prints the seconds per
batch and the ratio to the previous n. Linear cost means a ratio close to the ratio of
the sizes (4 for the default 64, 256, 1024); the definition, computing every h_i afresh
(`naive_conditional_logits`, with `--naive`), grows like n^2. Timings are the best of
`--repeats` runs after one warm-up call (which compiles).

Usage (from the repository root):

    .venv/bin/python apps/benchmarks/nade_cost.py [--backend tensorflow|jax|torch]
        [--sizes 64,256,1024] [--hidden-units 500] [--batch-size 32] [--repeats 5]
        [--naive]
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
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive", action="store_true")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend  # Keras reads it once, at import
    sizes = [int(size) for size in args.sizes.split(",")]
    result = measure(sizes, args.hidden_units, args.batch_size, args.repeats, args.naive)
    print(f"backend {args.backend}, d = {args.hidden_units}, batch {args.batch_size}")
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
