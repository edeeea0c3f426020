"""Endpoints of a model to export: signatures, sample inputs, outputs, comparison.

An endpoint is a named function of the model with an input signature; each
becomes one SavedModel and TFLite signature. This module resolves them from the
model, draws the inputs of the parity check, runs them in Keras and compares
outputs. It imports Keras lazily and works on any backend.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Leaf:
    """One input tensor of an endpoint: signature name, shape and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str


@dataclass
class Endpoint:
    """An endpoint: its function and the nested input structure of `Leaf`s."""

    name: str
    fn: Callable
    structure: list  # one entry per positional argument, nested list/tuple/dict
    leaves: list[Leaf]

    def args(self, flat: list) -> list:
        """Nests `flat` (one value per leaf) like the positional arguments."""
        values = iter(flat)
        return [_pack(arg, values) for arg in self.structure]


def _flatten(structure: Any) -> list:
    """Flattens nested lists, tuples and dicts (in insertion order)."""
    if isinstance(structure, dict):
        return [leaf for value in structure.values() for leaf in _flatten(value)]
    if isinstance(structure, (list, tuple)):
        return [leaf for value in structure for leaf in _flatten(value)]
    return [structure]


def _pack(structure: Any, leaves: Iterator) -> Any:
    """Rebuilds `structure` with its leaves taken from the iterator `leaves`."""
    if isinstance(structure, dict):
        return {key: _pack(value, leaves) for key, value in structure.items()}
    if isinstance(structure, list):
        return [_pack(value, leaves) for value in structure]
    if isinstance(structure, tuple):
        return tuple(_pack(value, leaves) for value in structure)
    return next(leaves)


def _sanitize(name: str) -> str:
    """Turns `name` into a valid signature input name.

    >>> _sanitize("input layer:0"), _sanitize("3d"), _sanitize("")
    ('input_layer_0', 'x_3d', 'x')
    """
    name = re.sub(r"[^0-9A-Za-z_]", "_", str(name))
    if not name or not (name[0].isalpha() or name[0] == "_"):
        name = "x_" + name if name else "x"
    return name


def _positional_names(fn: Callable) -> list[str]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in kinds]


def _leaf_from_spec(spec: Any, default_name: str, where: str) -> Leaf:
    shape = getattr(spec, "shape", None)
    if shape is None:
        raise ValueError(f"{where}: input spec {spec!r} has no shape.")
    try:
        shape = tuple(None if d is None else int(d) for d in shape)
    except TypeError:
        raise ValueError(f"{where}: input spec {spec!r} has an unknown rank.") from None
    dtype = getattr(spec, "dtype", None)
    if dtype is None:
        import keras

        dtype = keras.config.floatx()
    dtype = np.dtype(getattr(dtype, "name", dtype)).name
    name = getattr(spec, "name", None) or default_name
    return Leaf(name=_sanitize(name), shape=shape, dtype=dtype)


def _spec_structure(structure: Any, path: tuple[str, ...], where: str, leaves: list[Leaf]) -> Any:
    """Replaces the specs in `structure` by `Leaf`s (also appended to `leaves`).

    A leaf without its own name is named after its path, e.g. `inputs_0_image`.
    """
    if isinstance(structure, dict):
        return {
            key: _spec_structure(value, (*path, str(key)), where, leaves)
            for key, value in structure.items()
        }
    if isinstance(structure, (list, tuple)):
        items = [
            _spec_structure(value, (*path, str(i)), where, leaves)
            for i, value in enumerate(structure)
        ]
        return items if isinstance(structure, list) else tuple(items)
    leaf = _leaf_from_spec(structure, "_".join(path), where)
    leaves.append(leaf)
    return leaf


def resolve_endpoints(model: Any) -> list[Endpoint]:
    """Lists the endpoints to export for `model`.

    Uses `model.export_endpoints()` when defined, else one `"serve"` endpoint
    calling the model on its declared inputs (Functional and Sequential models).

    Args:
        model: A loaded Keras model.

    Returns:
        The endpoints, with unique, sanitized input names.

    Raises:
        ValueError: No endpoint can be derived, or an endpoint is malformed.
    """
    class_name = type(model).__name__
    if hasattr(model, "export_endpoints"):
        declared = model.export_endpoints()
        if not isinstance(declared, dict) or not declared:
            raise ValueError(
                f"{class_name}.export_endpoints() must return a non-empty dict "
                f"{{name: (function, [keras.InputSpec, ...])}}, got {declared!r}."
            )
        items = list(declared.items())
    else:
        items = [("serve", (model.__call__, [_declared_inputs(model)]))]

    endpoints = []
    for name, entry in items:
        where = f"{class_name} endpoint {name!r}"
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{where}: endpoint names must be Python identifiers.")
        if not isinstance(entry, (tuple, list)) or len(entry) != 2 or not callable(entry[0]):
            raise ValueError(f"{where}: expected a (function, input_signature) pair.")
        fn, signature = entry
        if not isinstance(signature, (list, tuple)):
            signature = [signature]
        arg_names = _positional_names(fn)
        leaves: list[Leaf] = []
        structure = [
            _spec_structure(
                spec,
                (arg_names[i] if i < len(arg_names) else f"input_{i}",),
                where,
                leaves,
            )
            for i, spec in enumerate(signature)
        ]
        if not leaves:
            raise ValueError(f"{where}: the input signature is empty.")
        seen: set[str] = set()
        for leaf in leaves:
            base, k = leaf.name, 1
            while leaf.name in seen:
                leaf.name, k = f"{base}_{k}", k + 1
            seen.add(leaf.name)
        endpoints.append(Endpoint(name=name, fn=fn, structure=structure, leaves=leaves))
    return endpoints


def _declared_inputs(model: Any) -> Any:
    """The input structure of a Functional or Sequential model."""
    import keras

    structure = None
    if not isinstance(model, keras.Sequential):
        try:
            structure = model.input
        except (AttributeError, ValueError):
            structure = None
    if structure is None:
        try:
            structure = model.inputs
        except (AttributeError, ValueError):
            structure = None
    if structure is None or (isinstance(structure, (list, tuple, dict)) and not structure):
        raise ValueError(
            f"Cannot export {type(model).__name__}: it has no `export_endpoints()` "
            "method and no declared inputs (only Functional and Sequential models "
            "have those). Define `export_endpoints(self)` returning "
            "{name: (function, [keras.InputSpec(shape=(None, ...), dtype='float32')])}."
        )
    if isinstance(structure, (list, tuple)) and len(structure) == 1:
        structure = structure[0]
    return structure


def make_samples(model: Any, endpoint: Endpoint, num: int, seed: int) -> tuple[list, str]:
    """Draws the verification inputs of one endpoint.

    Uses `model.export_samples(name, num, seed)` when the model defines it (and
    it does not return `None`), else standard normal values with batch `num`.

    Args:
        model: The loaded model.
        endpoint: The endpoint to draw inputs for.
        num: Batch size.
        seed: Seed of `np.random.default_rng`.

    Returns:
        The flat list of input arrays (one per leaf) and where they came from
        (`"export_samples"` or `"standard_normal"`).

    Raises:
        ValueError: The samples do not fit the input signature, or default
            samples cannot be drawn for it.
    """
    where = f"{type(model).__name__} endpoint {endpoint.name!r}"
    raw = None
    if hasattr(model, "export_samples"):
        raw = model.export_samples(endpoint.name, num, seed)
    if raw is not None:
        return _check_samples(raw, endpoint, where), "export_samples"

    rng = np.random.default_rng(seed)
    arrays = []
    for leaf in endpoint.leaves:
        if not leaf.shape:
            raise ValueError(f"{where}: input {leaf.name!r} is a scalar; no batch dimension.")
        batch = num if leaf.shape[0] is None else leaf.shape[0]
        if any(d is None for d in leaf.shape[1:]):
            raise ValueError(
                f"{where}: input {leaf.name!r} has shape {leaf.shape} with an unknown "
                "non-batch dimension; define `export_samples(self, name, num, seed)`."
            )
        if not np.issubdtype(np.dtype(leaf.dtype), np.floating):
            raise ValueError(
                f"{where}: input {leaf.name!r} has dtype {leaf.dtype}; random samples "
                "are only drawn for float inputs. Define "
                "`export_samples(self, name, num, seed)`."
            )
        shape = (batch, *leaf.shape[1:])
        arrays.append(rng.standard_normal(shape).astype(leaf.dtype))
    return arrays, "standard_normal"


def _check_samples(raw: Any, endpoint: Endpoint, where: str) -> list[np.ndarray]:
    """Flattens `export_samples` output to one array per leaf, checking shapes."""
    import keras

    single = len(endpoint.leaves) == 1 and not isinstance(raw, (list, tuple, dict))
    values = [raw] if single else _flatten(raw)
    if len(values) != len(endpoint.leaves):
        raise ValueError(
            f"{where}: export_samples returned {len(values)} arrays, the "
            f"signature has {len(endpoint.leaves)} inputs."
        )
    arrays = []
    for leaf, value in zip(endpoint.leaves, values):
        if not isinstance(value, np.ndarray):
            value = keras.ops.convert_to_numpy(value)
        array = np.asarray(value).astype(leaf.dtype, copy=False)
        if array.ndim != len(leaf.shape) or any(
            d is not None and d != a for d, a in zip(leaf.shape, array.shape)
        ):
            raise ValueError(
                f"{where}: export_samples gave input {leaf.name!r} shape "
                f"{array.shape}, which does not fit {leaf.shape}."
            )
        arrays.append(array)
    return arrays


def keras_outputs(endpoint: Endpoint, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Calls an endpoint function of a Keras model on numpy inputs.

    Args:
        endpoint: The endpoint.
        arrays: Its flat inputs, as returned by `make_samples`.

    Returns:
        The outputs as numpy arrays, keyed like the SavedModel and TFLite
        signature outputs (`output_0`, `output_1`, ... or the dict keys).

    Raises:
        ValueError: The endpoint returns nested outputs.
    """
    import keras

    outputs = endpoint.fn(*endpoint.args([keras.ops.convert_to_tensor(a) for a in arrays]))
    if isinstance(outputs, dict):
        items = [(str(k), v) for k, v in outputs.items()]
    elif isinstance(outputs, (list, tuple)):
        items = [(f"output_{i}", v) for i, v in enumerate(outputs)]
    else:
        items = [("output_0", outputs)]
    result = {}
    for key, value in items:
        if isinstance(value, (dict, list, tuple)):
            raise ValueError(
                f"Endpoint {endpoint.name!r} returns nested outputs; return a tensor, a "
                "tuple/list of tensors or a flat dict of tensors."
            )
        result[key] = np.asarray(keras.ops.convert_to_numpy(value))
    return result


def _max_abs_diff(expected: np.ndarray, actual: np.ndarray) -> float:
    """Largest absolute difference; `inf` on a shape mismatch or a lone NaN.

    >>> _max_abs_diff(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
    0.5
    >>> _max_abs_diff(np.zeros((2, 3)), np.zeros((3, 2)))
    inf
    """
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.shape != actual.shape:
        return math.inf
    if expected.size == 0:
        return 0.0
    diff = np.abs(expected - actual)
    both_nan = np.isnan(expected) & np.isnan(actual)
    same_inf = np.isinf(expected) & (expected == actual)
    diff = np.where(both_nan | same_inf, 0.0, diff)
    if np.isnan(diff).any():
        return math.inf
    return float(diff.max())


def compare(reference: dict[str, np.ndarray], actual: dict[str, Any]) -> tuple[float | None, str]:
    """Compares an artifact's outputs with the Keras outputs.

    Args:
        reference: The Keras outputs, as returned by `keras_outputs`.
        actual: The artifact's outputs under the same keys.

    Returns:
        The largest absolute difference over all outputs (`None` when they are
        not comparable, as recorded in the manifest), and a note saying why
        they are not (empty when their keys and shapes match).
    """
    if set(reference) != set(actual):
        return None, f"outputs {sorted(actual)} do not match the Keras outputs {sorted(reference)}"
    worst, note = 0.0, ""
    for key in reference:
        expected, value = np.asarray(reference[key]), np.asarray(actual[key])
        if expected.shape != value.shape:
            note = f"output {key!r} has shape {value.shape}, Keras gives {expected.shape}"
        worst = max(worst, _max_abs_diff(expected, value))
    return (worst if math.isfinite(worst) else None), note
