"""Binarized MNIST test NLL of the density models, next to the published numbers.

Each model is trained on the standard 50,000 training images of binarized MNIST
(Larochelle & Murray 2011 split, read from `../shared/data/binarized_mnist.npz` or
`--data PATH`) with Adam, for a wall-clock budget of `--minutes` per model (whole epochs;
the epoch with the best NLL on the first `--valid` validation images is kept, and after
two epochs without improvement training resumes from it at 0.3 times the learning rate;
four such decays in a row without a gain of 0.01 nats end training early), then its
exact NLL (nats per image) is measured on all 10,000 test images. The VAE reports its
ELBO and the importance-weighted bound with k = 1000 (Burda et al. 2016). The CPU
configurations are small versions of the papers' (stated in the table); the papers'
own are the `--recipe paper` recipes.

The table is printed and, unless `--no-docs`, written into `docs/chapter6.md` (one block
per backend, replaced when run again); each model's result is also kept in
`runs/density_nll/BACKEND/NAME.json`, so a long run can be resumed model by model
(`--models made,pixelcnn` reruns only those); the rows of models not rerun are kept from
the docs, so a fresh checkout can rerun one model. After every epoch the whole training
state is checkpointed in `runs/density_nll/BACKEND/NAME.checkpoint.npz`; `--resume`
continues from there, `--minutes` then being the total over all sessions, so budgets of
hours can be spent in pieces.

Usage (from the repository root):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/density_nll.py [--minutes 8]
        [--models fvsbn,nade,made,made_500,made_plain,made_k,pixelrnn,pixelcnn,pixelcnn_deep,
                  gated_pixelcnn,gated_pixelcnn_deep,vae]
        [--data PATH] [--resume] [--no-docs]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from pathlib import Path
from typing import Any

from _docs import write_section  # benchmarks/ is on sys.path when run as a script
from _training import train_for_minutes

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "chapter6.md"
RESULTS = REPO / "runs" / "density_nll"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "binarized_mnist.npz"

# name: (class, constructor arguments, learning rate, batch size, published NLL, source)
CONFIGS: dict[str, tuple[str, dict[str, Any], float, int, str, str]] = {
    "fvsbn": ("FVSBN", {}, 1e-3, 100, "97.45", "Larochelle & Murray 2011"),
    "nade": (
        "NADE",
        {"hidden_units": 500},
        1e-3,
        100,
        "88.86",
        "Larochelle & Murray 2011",
    ),
    "made": (
        "MADE",
        {"hidden_units": (1000,), "direct_connections": True},
        1e-3,
        100,
        "88.40",
        "Germain et al. 2015",
    ),
    "made_500": (
        "MADE",
        {"hidden_units": (500,), "direct_connections": True},
        1e-3,
        100,
        "88.40",
        "Germain et al. 2015",
    ),
    "made_plain": ("MADE", {"hidden_units": (500,)}, 1e-3, 100, "88.40", "Germain et al. 2015"),
    "made_k": (
        "MADE",
        {
            "hidden_units": (1000,),
            "num_masks": 8,
            "ordering": "natural",
            "direct_connections": True,
        },
        1e-3,
        100,
        "88.04 (32 masks)",
        "Germain et al. 2015",
    ),
    "pixelrnn": ("PixelRNN", {}, 1e-3, 64, "80.54 (7 layers)", "van den Oord et al. 2016a"),
    "pixelcnn": ("PixelCNN", {}, 1e-3, 64, "81.30", "van den Oord et al. 2016a"),
    "pixelcnn_deep": (
        "PixelCNN",
        {"num_layers": 12},
        1e-3,
        64,
        "81.30",
        "van den Oord et al. 2016a",
    ),
    "gated_pixelcnn": ("GatedPixelCNN", {}, 1e-3, 64, "—", "van den Oord et al. 2016b"),
    "gated_pixelcnn_deep": (
        "GatedPixelCNN",
        {"filters": 16, "num_layers": 12},
        1e-3,
        64,
        "—",
        "van den Oord et al. 2016b",
    ),
    "transformer": (
        "Transformer",
        {"embed_dim": 32, "num_heads": 1, "num_layers": 2},
        2e-3,
        32,
        "—",
        "Vaswani et al. 2017 (decoder only)",
    ),
    "vae": (
        "VAE",
        {"latent_dim": 50, "hidden_units": (200, 200)},
        1e-3,
        100,
        "86.76 (ELBO) / 84.78 (IWAE k=50)",
        "Burda et al. 2016",
    ),
}
TARGETS = {"fvsbn": 99, "nade": 91, "made": 90, "made_k": 90, "vae": 92, "pixelcnn": 87}
TARGETS["made_500"] = TARGETS["made_plain"] = 90
TARGETS["pixelcnn_deep"] = 87
TARGETS["gated_pixelcnn"] = TARGETS["gated_pixelcnn_deep"] = 86


def _load(path: Path, valid: int) -> tuple[Any, Any, Any]:
    from mp_keras.data import load_binarized_mnist

    train = load_binarized_mnist(path, "train").x
    valid_x = load_binarized_mnist(path, "valid", num_examples=valid).x
    test = load_binarized_mnist(path, "test").x
    return train, valid_x, test


def free_parameters(model: Any) -> int:
    """Trainable parameters, without masks (MADE) or masked-out entries (FVSBN)."""
    if hasattr(model, "num_free_parameters"):  # an n x n matrix, (n^2 + n) / 2 entries free
        return int(model.num_free_parameters())
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))


def run_model(
    name: str,
    minutes: float,
    data: tuple[Any, Any, Any],
    seed: int,
    patience: int = 2,
    decay: float = 0.3,
    checkpoint: Path | None = None,
    resume: bool = False,
) -> dict:
    """Trains one model for `minutes` of wall clock and measures its test NLL.

    When the validation NLL has not improved for `patience` epochs, training goes back
    to the best weights and the learning rate is multiplied by `decay`.
    """
    import keras

    from mp_keras import models

    cls_name, kwargs, learning_rate, batch_size, published, source = CONFIGS[name]
    train, valid, test = data
    keras.utils.set_random_seed(seed)
    model = getattr(models, cls_name)(input_shape=train.shape[1:], seed=seed, **kwargs)
    optimizer = keras.optimizers.Adam(learning_rate)
    model.compile(optimizer=optimizer)
    best, epochs, seconds = train_for_minutes(
        model,
        optimizer,
        train,
        lambda: model.nll(valid, batch_size=500),
        minutes,
        batch_size,
        name,
        patience,
        decay,
        checkpoint=checkpoint,
        resume=resume,
    )
    result = {
        "model": name,
        "class": cls_name,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
        "parameters": free_parameters(model),
        "epochs": epochs,
        "train_seconds": round(seconds, 1),
        "learning_rate": learning_rate,
        "plateau_decay": [patience, decay],
        "valid_nll": round(best, 2),
        "published": published,
        "source": source,
        "target": TARGETS.get(name),
    }
    if cls_name == "VAE":
        metrics = model.density_metrics(test, batch_size=100, num_samples=1000)
        result["test_nll"] = round(metrics["nll"], 2)
        result["test_elbo_nll"] = round(-metrics["elbo"], 2)
    else:
        result["test_nll"] = round(model.nll(test, batch_size=500), 2)
    if cls_name == "MADE" and kwargs.get("num_masks", 1) > 1:
        one = model.nll(test, batch_size=500, mask_index=0)
        result["test_nll_one_mask"] = round(one, 2)
    return result


def table(results: list[dict], backend: str) -> str:
    lines = [
        f"Binarized MNIST, test NLL in nats (10,000 images), backend `{backend}`, "
        f"{platform.processor() or platform.machine()} with {os.cpu_count()} cores; "
        "rerun with `apps/benchmarks/density_nll.py`.",
        "",
        "| model | configuration | parameters | Adam | epochs | train time | test NLL | target "
        "| published |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        nll = f"{r['test_nll']:.2f}"
        if "test_elbo_nll" in r:
            nll = f"{r['test_elbo_nll']:.2f} (ELBO) / {r['test_nll']:.2f} (IWAE k=1000)"
        if "test_nll_one_mask" in r:
            nll = f"{r['test_nll']:.2f} (ensemble) / {r['test_nll_one_mask']:.2f} (1 mask)"
        config = ", ".join(f"{k}={v}" for k, v in r["config"].items()) or "defaults"
        target = f"≤ {r['target']}" if r.get("target") else "—"
        adam = f"{r['learning_rate']:g}" if "learning_rate" in r else "see text"
        if "plateau_decay" in r:
            adam += ", times {1:g} on plateau".format(*r["plateau_decay"])
        met = "" if not r.get("target") else (" ✓" if r["test_nll"] <= r["target"] else " ✗")
        lines.append(
            f"| {r['model']} | {r['class']}({config}) | {r['parameters']:,} | {adam} "
            f"| {r['epochs']} "
            f"| {r['train_seconds'] / 60:.1f} min | {nll}{met} | {target} "
            f"| {r['published']} ({r['source']}) |"
        )
    return "\n".join(lines)


def merged_table(results: list[dict], backend: str, doc: str) -> str:
    """The table of `results`, keeping the rows of other models already in `doc`.

    `runs/` is not in git, so a fresh checkout has no earlier results: rerunning one
    model (`--models fvsbn`) keeps the documented rows of the others, in `CONFIGS`
    order, rather than dropping them.
    """
    begin, end = f"<!-- density-nll {backend} begin -->", f"<!-- density-nll {backend} end -->"
    block = doc.split(begin, 1)[1].split(end, 1)[0] if begin in doc and end in doc else ""
    fresh = table(results, backend).split("\n")
    rows = {**_rows(block), **_rows("\n".join(fresh[4:]))}
    return "\n".join(fresh[:4] + [rows[n] for n in CONFIGS if n in rows])


def _rows(text: str) -> dict[str, str]:
    """The table rows of `text`, by model name (first column)."""
    rows = {}
    for line in text.splitlines():
        cells = line.split("|")
        if line.startswith("| ") and len(cells) > 2 and cells[1].strip() in CONFIGS:
            rows[cells[1].strip()] = line
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(CONFIGS), help="comma-separated names")
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget per model")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="binarized MNIST .npz")
    parser.add_argument("--valid", type=int, default=2000, help="validation images per epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue each model from its checkpoint; --minutes is then the total",
    )
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {sorted(CONFIGS)}")
    if not args.data.is_file():
        print(f"skipped: no binarized MNIST archive at {args.data} (pass --data PATH)")
        return 0

    import keras

    backend = keras.backend.backend()
    folder = RESULTS / backend
    folder.mkdir(parents=True, exist_ok=True)
    data = _load(args.data, args.valid)
    from mp_keras import io

    for name in names:
        print(f"{name}: training for {args.minutes} min", flush=True)
        checkpoint = folder / f"{name}.checkpoint.npz"
        result = run_model(
            name, args.minutes, data, args.seed, checkpoint=checkpoint, resume=args.resume
        )
        io.write_json(folder / f"{name}.json", result)
        print(json.dumps(result), flush=True)
    results = [
        json.loads((folder / f"{n}.json").read_text())
        for n in CONFIGS
        if (folder / f"{n}.json").exists()
    ]
    doc = DOCS.read_text(encoding="utf-8") if DOCS.exists() else ""
    text = merged_table(results, backend, doc)
    print(text)
    if not args.no_docs:
        write_section(DOCS, "density-nll", backend, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
