"""Command line entry point: `python -m mp_keras.export MODEL.keras OUT_DIR`.

Runs `mp_keras.export.export_model` and prints the manifest as JSON on stdout.
Exit status: 0 on success, 2 when the parity check fails (the export and its
manifest are written anyway), 1 on any other error; errors go to stderr.

`export_model` also runs this module as its TensorFlow worker when called from
a JAX or PyTorch process, with the hidden `--worker-result` option: the export
is then written straight into OUT_DIR (a staging folder) and the outcome is
reported in a JSON file instead of by exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from mp_keras.export.exporter import ExportParityError, export_model
from mp_keras.export.worker import run_worker, write_reference_outputs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mp_keras.export",
        description="Export a .keras model to SavedModel and TFLite and verify both.",
    )
    parser.add_argument("model_path", help="the .keras file to export")
    parser.add_argument("out_dir", help="folder for saved_model/, model.tflite, manifest.json")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference")
    parser.add_argument("--num-samples", type=int, default=8, help="verification batch size")
    parser.add_argument("--seed", type=int, default=0, help="verification seed")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="module to import before loading (defines custom objects); repeatable",
    )
    parser.add_argument(
        "--import-optional",
        dest="optional_imports",
        action="append",
        default=[],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--source-backend", default="tensorflow", help=argparse.SUPPRESS)
    parser.add_argument("--worker-result", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-samples", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--reference-inputs", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--reference-outputs", default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line.

    Args:
        argv: Arguments without the program name (default: `sys.argv[1:]`).

    Returns:
        The exit status.
    """
    args = _parser().parse_args(argv)
    if args.reference_inputs:
        return write_reference_outputs(
            args.model_path,
            args.reference_inputs,
            args.reference_outputs,
            [*args.imports, *args.optional_imports],
        )
    if args.worker_result:
        return run_worker(
            args.model_path,
            args.out_dir,
            tolerance=args.tolerance,
            num_samples=args.num_samples,
            seed=args.seed,
            source_backend=args.source_backend,
            imports=args.imports,
            optional_imports=args.optional_imports,
            result_path=args.worker_result,
            samples_path=args.worker_samples or args.worker_result + ".npz",
        )
    try:
        manifest = export_model(
            args.model_path,
            args.out_dir,
            tolerance=args.tolerance,
            num_samples=args.num_samples,
            seed=args.seed,
            imports=args.imports,
        )
    except ExportParityError as error:
        if error.manifest is not None:
            print(json.dumps(error.manifest, indent=2))
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
