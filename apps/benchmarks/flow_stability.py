"""A long Flow2D run: the loss stays finite, the log-determinants stay bounded.

`Flow2D` (RealNVP affine couplings, s = scale * tanh(raw); notes, 7.5) is trained with
`model.fit` for `--steps` steps (20,000 by default) on `checkerboard` (16,384 training
points, sharp edges that push the couplings towards large scales) with a constant Adam
learning rate (no decay, the harder case). Every training batch's loss and its largest
|log det df^-1/dx| over the batch's examples are recorded (the step logs them as epoch
means; a callback recovers each batch's value from consecutive means), and the run
reports:

* whether every batch loss is finite (no NaN or inf), its first and last epoch means,
  the largest batch loss after the first epoch and how many batches spiked above the
  first epoch's mean;
* the largest NLL of one training example in any batch (what a spike is made of);
* the largest |log-det| of any training example in any batch, next to the bound the
  tanh gives, num_couplings * scale (each coupling moves one of the two coordinates);
* whether all weights are finite at the end, and whether 10,000 samples at T = 1 (and
  their log-densities) are all finite; the final test NLL.

The table is printed and, unless `--no-docs`, written into `docs/chapter7.md` between
`<!-- flow-stability BACKEND begin/end -->` markers.

Usage (from the repository root; about 2 minutes on JAX on a 2-core machine):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/flow_stability.py
        [--dataset checkerboard] [--steps 20000] [--rate 1e-3] [--clipnorm C] [--seed 0]
        [--no-docs]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _docs import write_section  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs" / "chapter7.md"
TRAIN, BATCH = 16384, 256  # whole batches only: the per-batch recovery assumes equal sizes
COUPLINGS, HIDDEN, SCALE = 8, (64, 64), 2.0
SAMPLES = 10_000


def probed_flow(seed: int) -> Any:
    """Flow2D whose training step also logs the batch's largest |log-det| and NLL."""
    from keras import ops

    from mp_keras.models import Flow2D

    class ProbedFlow2D(Flow2D):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.track("max_abs_log_det", "max_nll")

        def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
            # The model's own loss; the second pass through the chain is the same
            # computation, which XLA and TensorFlow's grappler share.
            loss, logs = super()._loss(x, y, training)
            x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
            _, log_det = self.chain.inverse(x)
            probes = {
                "max_abs_log_det": ops.max(ops.abs(log_det)),
                "max_nll": ops.max(-self._log_prob(x)),
            }
            return loss, {**logs, **probes}

    return ProbedFlow2D(num_couplings=COUPLINGS, hidden_units=HIDDEN, scale=SCALE, seed=seed)


class BatchValues:
    """Keras callback: each batch's own values, from the running epoch means it gets."""

    def __init__(self, names: tuple[str, ...]) -> None:
        import keras

        self.names = names
        self.values: dict[str, list[float]] = {name: [] for name in names}
        self.epoch_means: list[float] = []
        outer = self

        class _Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                outer._previous = {name: 0.0 for name in outer.names}
                outer._count = 0

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                outer._count += 1
                k = outer._count
                for name in outer.names:
                    mean = float(logs[name])
                    # mean_k = ((k - 1) mean_{k-1} + v_k) / k, with equal batch sizes.
                    outer.values[name].append(k * mean - (k - 1) * outer._previous[name])
                    outer._previous[name] = mean

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                outer.epoch_means.append(float(logs["loss"]))

        self.callback = _Callback()


def run(
    dataset: str, steps: int, rate: float, seed: int, clipnorm: float | None = None
) -> dict[str, Any]:
    import keras
    import numpy as np

    from mp_keras import data

    train = data.load(dataset, "train", seed=seed, num_examples=TRAIN).x
    test = data.load(dataset, "test", seed=seed).x
    keras.utils.set_random_seed(seed)
    model = probed_flow(seed)
    model.compile(optimizer=keras.optimizers.Adam(rate, clipnorm=clipnorm))
    epochs = -(-steps // (TRAIN // BATCH))
    probe = BatchValues(("loss", "max_abs_log_det", "max_nll"))
    start = time.perf_counter()
    model.fit(
        train, epochs=epochs, batch_size=BATCH, shuffle=True, verbose=0, callbacks=[probe.callback]
    )
    seconds = time.perf_counter() - start
    losses = np.asarray(probe.values["loss"])
    log_dets = np.asarray(probe.values["max_abs_log_det"])
    later = losses[TRAIN // BATCH :]  # after the first epoch
    weights_finite = all(
        bool(np.all(np.isfinite(keras.ops.convert_to_numpy(v)))) for v in model.weights
    )
    samples = np.asarray(keras.ops.convert_to_numpy(model.sample(SAMPLES, seed=seed)))
    sample_log_p = np.asarray(keras.ops.convert_to_numpy(model.log_prob(samples)))
    return {
        "dataset": dataset,
        "steps": len(losses),
        "epochs": epochs,
        "rate": rate,
        "clipnorm": clipnorm,
        "seconds": seconds,
        "losses_finite": bool(np.all(np.isfinite(losses))),
        "first_epoch_loss": probe.epoch_means[0],
        "last_epoch_loss": probe.epoch_means[-1],
        "max_batch_loss_after_first_epoch": float(later.max()),
        "max_batch_loss_step": TRAIN // BATCH + int(later.argmax()) + 1,
        "spikes": int(np.sum(later > probe.epoch_means[0])),
        "max_nll": float(np.max(probe.values["max_nll"])),
        "max_nll_step": int(np.argmax(probe.values["max_nll"])) + 1,
        "max_abs_log_det": float(log_dets.max()),
        "max_abs_log_det_step": int(log_dets.argmax()) + 1,
        "bound": COUPLINGS * SCALE,
        "weights_finite": weights_finite,
        "samples_finite": int(np.isfinite(samples).all(axis=1).sum()),
        "sample_log_p_finite": int(np.isfinite(sample_log_p).sum()),
        "test_nll": model.nll(test),
    }


def table(r: dict[str, Any], backend: str) -> str:
    def yes(flag: bool) -> str:
        return "yes" if flag else "**no**"

    clipping = "" if r["clipnorm"] is None else f" (clipnorm {r['clipnorm']:g})"
    lines = [
        f"`Flow2D({COUPLINGS} couplings, MLP 2x{HIDDEN[0]}, scale {SCALE:g})` on "
        f"`{r['dataset']}` ({TRAIN:,} points), batch {BATCH}, Adam {r['rate']:g} constant"
        f"{clipping}, "
        f"{r['steps']:,} steps ({r['epochs']} epochs, {r['seconds']:.0f} s); backend "
        f"`{backend}`, {platform.machine()} with {os.cpu_count()} cores; rerun with "
        "`apps/benchmarks/flow_stability.py`.",
        "",
        "| check | result |",
        "|---|---|",
        f"| every batch loss finite (no NaN / inf) | {yes(r['losses_finite'])} |",
        f"| loss, first / last epoch mean (nats/point) | {r['first_epoch_loss']:.3f} / "
        f"{r['last_epoch_loss']:.3f} |",
        "| largest batch loss after the first epoch | "
        f"{r['max_batch_loss_after_first_epoch']:.3f} (step {r['max_batch_loss_step']:,}) |",
        "| batches after the first epoch with a loss above the first epoch's mean | "
        f"{r['spikes']:,} of {r['steps'] - TRAIN // BATCH:,} |",
        f"| largest NLL of one training example, over all batches | {r['max_nll']:,.1f} "
        f"(step {r['max_nll_step']:,}) |",
        f"| max \\|log det\\| of a training example, over all batches | "
        f"{r['max_abs_log_det']:.2f} (step {r['max_abs_log_det_step']:,}; tanh bound "
        f"{r['bound']:g}) |",
        f"| all weights finite at the end | {yes(r['weights_finite'])} |",
        f"| finite samples at T = 1 | {r['samples_finite']:,} / {SAMPLES:,} |",
        f"| finite log p of those samples | {r['sample_log_p_finite']:,} / {SAMPLES:,} |",
        f"| test NLL (nats/point) | {r['test_nll']:.3f} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="checkerboard", choices=("checkerboard", "moons"))
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1e-3)
    parser.add_argument("--clipnorm", type=float, default=None, help="Adam's gradient clipping")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    import keras

    result = run(args.dataset, args.steps, args.rate, args.seed, args.clipnorm)
    text = table(result, keras.backend.backend())
    print(text)
    if not args.no_docs:
        write_section(DOCS, "flow-stability", keras.backend.backend(), text)
    stable = result["losses_finite"] and result["weights_finite"]
    stable = stable and result["samples_finite"] == SAMPLES
    if not math.isfinite(result["test_nll"]):
        stable = False
    return 0 if stable else 1


if __name__ == "__main__":
    sys.exit(main())
