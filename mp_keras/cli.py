"""The `mp-keras` command: a thin layer over `mp_keras.training`, `export` and `benchmark`.

Keras reads `KERAS_BACKEND` once, when it is first imported, so this module imports
nothing from Keras until `--backend` has been applied.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

BACKENDS = ("tensorflow", "jax", "torch")


def _global_options(defaults: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name.

    Subcommands get them with `SUPPRESS` defaults, so a value given before the
    subcommand is not reset by the subparser's default.
    """
    options = argparse.ArgumentParser(add_help=False)
    default = None if defaults else argparse.SUPPRESS
    options.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default,
        help="Keras backend (default: $KERAS_BACKEND, else tensorflow).",
    )
    options.add_argument(
        "--debug",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help="show the full traceback of an error",
    )
    options.add_argument(
        "--verbose",
        action="store_true",
        default=False if defaults else argparse.SUPPRESS,
        help="show the backends' own log lines (TensorFlow, XLA, JAX)",
    )
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mp-keras",
        description="Machine Perception course models on TensorFlow, JAX and PyTorch.",
        parents=[_global_options(defaults=True)],
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = [_global_options(defaults=False)]

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=common)

    command("list", help="list the models and datasets")

    train = command("train", help="train a model and save it with metrics and a figure")
    train.add_argument("model", help="model name (see `mp-keras list`)")
    train.add_argument("--dataset", help="dataset name (default: the model's own)")
    train.add_argument("--epochs", type=int, help="epochs (default: the model's recipe)")
    train.add_argument("--batch-size", type=int, help="batch size (default: the recipe's)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument(
        "--recipe",
        choices=("default", "paper"),
        default="default",
        help="hyper-parameters: 'default' trains in minutes on a CPU, 'paper' uses the "
        "published ones (for a GPU; see `mp-keras list`)",
    )
    train.add_argument(
        "--condition",
        choices=("none", "class"),
        default="none",
        help="'class' trains the class-conditional variant (diffusion: for guidance)",
    )
    train.add_argument("--out", default=None, help="output folder (default: runs/MODEL)")
    train.add_argument(
        "--export",
        action="store_true",
        help="also export to OUT/export (SavedModel, model.tflite, manifest.json)",
    )
    train.add_argument(
        "--devices",
        type=int,
        default=1,
        help="data-parallel training on N devices (JAX; on a CPU-only machine N are simulated)",
    )
    train.add_argument(
        "--jit-compile",
        action="store_true",
        help="compile the training step (torch.compile on PyTorch: faster steps after "
        "~30 s of compilation; XLA and jax.jit are already the default elsewhere)",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="discard an unfinished run in OUT, or replace a finished one (kept until the "
        "new run succeeds)",
    )

    evaluate = command("evaluate", help="print a saved model's metrics as JSON")
    evaluate.add_argument("model_file", help="a .keras file")
    evaluate.add_argument("--dataset", required=True, help="dataset name")
    evaluate.add_argument("--split", default="test", help="train or test (default: test)")
    evaluate.add_argument(
        "--classifier",
        default=None,
        help="GANs on images: cache path of the feature CNN of fid/kid (trained if missing)",
    )
    evaluate.add_argument(
        "--num-samples", type=int, default=2500, help="GANs: samples to judge (default: 2500)"
    )

    sample = command("sample", help="draw samples from a saved generative model")
    sample.add_argument("model_file", help="a .keras file")
    sample.add_argument("--num", type=int, default=64, help="number of samples (default: 64)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    sample.add_argument("--out", default="samples.png", help="PNG path (default: samples.png)")
    sample.add_argument(
        "--steps", type=int, default=None, help="diffusion: sampling steps (DDIM; default: T)"
    )
    sample.add_argument(
        "--sampler", choices=("ddpm", "ddim"), default=None, help="diffusion: sampler"
    )
    sample.add_argument("--guidance", type=float, default=None, help="guidance strength (rho or s)")
    sample.add_argument(
        "--label", type=int, default=None, help="class-conditional models: draw this class"
    )
    sample.add_argument("--prompt", default=None, help="text-conditioned models: a caption to draw")

    export = command("export", help="export to SavedModel and TFLite, checked for parity")
    export.add_argument("model_file", help="a .keras file (trained on any backend)")
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference")
    export.add_argument(
        "--overwrite", action="store_true", help="replace OUT even if it is not an export"
    )

    approximate = command(
        "approximate", help="universal approximation: fits and max error per hidden width"
    )
    approximate.add_argument("--out", default="universal_approximation.png", help="PNG path")
    approximate.add_argument("--widths", default="1,2,4,8,16,32", help="comma-separated")
    approximate.add_argument("--target", default="sines", help="sines, sin or kink")
    approximate.add_argument("--epochs", type=int, default=3000, help="full-batch steps")
    approximate.add_argument("--restarts", type=int, default=5, help="best of N starts")
    approximate.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    flow = command(
        "gradient-flow", help="how far gradients reach back through Elman and LSTM cells"
    )
    flow.add_argument("--out", default="gradient_flow.png", help="PNG path")
    flow.add_argument("--steps", type=int, default=50, help="largest t - k (default: 50)")
    flow.add_argument("--units", type=int, default=16, help="state size (default: 16)")
    flow.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    field = command(
        "receptive-field", help="PixelCNN's blind spot vs Gated PixelCNN, by gradient (figure)"
    )
    field.add_argument("--out", default="receptive_field.png", help="PNG path")
    field.add_argument("--size", type=int, default=7, help="image height = width (default: 7)")
    field.add_argument("--layers", type=int, default=4, help="masked layers (default: 4)")
    field.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    bench = command("benchmark", help="steps/s of the engine vs Keras' own trainer")
    bench.add_argument("--steps", type=int, default=300, help="timed steps per run")
    bench.add_argument("--repeats", type=int, default=3, help="runs per trainer")
    bench.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    bench.add_argument("--out", default=None, help="also write the Markdown table here")
    bench.add_argument(
        "--jit-compile", action="store_true", help="compile the Keras steps (torch.compile)"
    )
    return parser


def _set_backend(backend: str | None) -> None:
    if backend is None:
        return
    if "keras" in sys.modules and os.environ.get("KERAS_BACKEND", "tensorflow") != backend:
        raise SystemExit(f"Keras is already imported with another backend; cannot use {backend}.")
    os.environ["KERAS_BACKEND"] = backend


def _list() -> None:
    from mp_keras.data import list_datasets
    from mp_keras.registry import RECIPES

    print("Models:")
    for recipe in RECIPES.values():
        print(
            f"  {recipe.name:<15} {recipe.summary} (notes {recipe.chapter}; "
            f"default dataset {recipe.dataset}{'; --recipe paper' if recipe.paper else ''})"
        )
    print("Datasets:")
    for name, description in list_datasets().items():
        print(f"  {name:<20} {description}")


# Errors that mean "the command was asked for something it cannot do" (exit 2), as
# opposed to failures while doing it (exit 1).
_USAGE_ERRORS = (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mp-keras` console script.

    Args:
        argv: the arguments; `None` reads them from the command line and, unless
            `--verbose`, filters the backends' C++ log lines out of stderr.

    Exit codes: 0 on success, 2 for a usage error (bad argument, unknown name, a file
    that is not what it should be, a folder holding another run), 1 for a failure while
    running (non-finite loss, failed export parity, an unexpected error). Errors are
    one line on stderr; `--debug` shows the traceback.
    """
    args = _parser().parse_args(argv)
    _set_backend(args.backend)
    if getattr(args, "devices", 1) > 1:
        from mp_keras.distribution import simulate_cpu_devices

        simulate_cpu_devices(args.devices)  # XLA reads its flags when JAX starts
    _one_line_warnings()
    # As a program (argv from the command line), not when called from Python code whose
    # stderr is its own business (e.g. pytest's capture).
    if argv is None and not args.verbose and args.command != "list":
        from mp_keras.quiet import quiet_backends

        quiet_backends()
    try:
        return _run(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("mp-keras: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        code = 2 if isinstance(error, _USAGE_ERRORS) else 1
        print(f"mp-keras: error: {_describe(error, code)}", file=sys.stderr)
        return code


def _describe(error: Exception, code: int) -> str:
    message = str(error).strip() or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        message = f"{error.strerror}: {error.filename}"
    message = " ".join(message.split())  # one line
    if code == 1 and not isinstance(error, RuntimeError):
        # Not an error of ours: say what it was, and how to see more.
        message = f"{type(error).__name__}: {message} (run with --debug for the traceback)"
    return message


def _one_line_warnings() -> None:
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"mp-keras: warning: {message}", file=file or sys.stderr)

    warnings.showwarning = show


def _run(args: argparse.Namespace) -> int:
    if args.command == "list":
        _list()
    elif args.command == "train":
        _train(args)
    elif args.command == "evaluate":
        from mp_keras.training import evaluate

        result = evaluate(
            args.model_file,
            args.dataset,
            split=args.split,
            classifier=args.classifier,
            num_samples=args.num_samples,
        )
        print(json.dumps(result, indent=2))
    elif args.command == "sample":
        from mp_keras.training import sample

        options = {
            name: getattr(args, name)
            for name in ("steps", "sampler", "guidance", "label", "prompt")
            if getattr(args, name) is not None
        }
        sample(args.model_file, args.out, num=args.num, seed=args.seed, **options)
        print(f"Wrote {args.out}")
    elif args.command == "export":
        from mp_keras.export import export_model

        manifest = export_model(
            args.model_file, args.out, tolerance=args.tolerance, overwrite=args.overwrite
        )
        print(json.dumps(manifest, indent=2))
    elif args.command == "approximate":
        from mp_keras.tools.universal_approximation import run as run_approximation

        return run_approximation(args)
    elif args.command == "gradient-flow":
        from mp_keras.tools.gradient_flow import run as run_gradient_flow

        return run_gradient_flow(args)
    elif args.command == "receptive-field":
        from mp_keras.tools.receptive_field import run as run_receptive_field

        return run_receptive_field(args)
    elif args.command == "benchmark":
        from mp_keras import io
        from mp_keras.benchmark import run_benchmark

        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        table = run_benchmark(
            backends, steps=args.steps, repeats=args.repeats, jit_compile=args.jit_compile
        )
        print(table)
        if args.out:
            io.write_text(args.out, table + "\n")
    return 0


def _train(args: argparse.Namespace) -> None:
    from mp_keras.runs import describe
    from mp_keras.training import train

    out = args.out or os.path.join("runs", args.model)
    metrics = train(
        args.model,
        out,
        dataset=args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        recipe=args.recipe,
        condition=args.condition,
        overwrite=args.overwrite,
        devices=args.devices,
        jit_compile=True if args.jit_compile else "auto",
    )
    if metrics.status == "finished":
        print(
            f"{out} holds this finished run ({describe(metrics)}): nothing to do. "
            "Pass --overwrite to train it again."
        )
    else:
        summary = {k: v for k, v in metrics.items() if k != "history"}
        print(json.dumps(summary, indent=2))
        resumed = f" (resumed after epoch {metrics.initial_epoch})" if metrics.initial_epoch else ""
        print(f"Wrote {out}/model.keras, metrics.json, a PNG and TensorBoard logs{resumed}.")
    export_dir = os.path.join(out, "export")
    if args.export and not (metrics.status == "finished" and _is_export(export_dir)):
        from mp_keras.export import export_model

        export_model(os.path.join(out, "model.keras"), export_dir, overwrite=True)
        print(f"Exported to {export_dir}: saved_model/, model.tflite, manifest.json.")


def _is_export(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "manifest.json"))


if __name__ == "__main__":
    sys.exit(main())
