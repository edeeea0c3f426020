"""mp_keras: the models of a Machine Perception course in Keras 3.

`import mp_keras` is enough to load any `.keras` file of the project with
`keras.saving.load_model`: it registers every layer, model, metric and optimizer of the
package with Keras' serialization. It does so without fixing the Keras backend (which
Keras reads from `KERAS_BACKEND` once, when it is first imported): if Keras is already
imported the classes are registered at once, otherwise right after the first
`import keras` finishes. The subpackages (`mp_keras.models`, `mp_keras.data`, ...) are
imported when first used.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

__version__ = "0.1.0"

# The modules whose import registers the package's serializable classes.
_REGISTERING = ("mp_keras.engine", "mp_keras.layers", "mp_keras.models")
_SUBMODULES = (
    "callbacks",
    "data",
    "engine",
    "export",
    "io",
    "layers",
    "losses",
    "models",
    "plots",
    "registry",
    "runs",
    "tools",
    "training",
)


def register_all() -> None:
    """Registers every serializable class of mp_keras with Keras (imports Keras)."""
    for name in _REGISTERING:
        importlib.import_module(name)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Finds `keras` like the other finders do, and registers mp_keras once it has loaded."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # once, and out of the way of the real search
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            try:
                register_all()
            except Exception as error:  # never break `import keras` itself
                warnings.warn(
                    f"mp_keras could not register its classes with Keras: {error!r}",
                    stacklevel=2,
                )

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if "keras" in sys.modules:
    register_all()
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"mp_keras.{name}")
    raise AttributeError(f"module 'mp_keras' has no attribute {name!r}")
