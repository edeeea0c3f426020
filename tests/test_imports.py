"""Model and layer code is backend-free: only keras and keras.ops, never a backend."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mp_keras"
FORBIDDEN = {"tensorflow", "jax", "jaxlib", "torch"}
FILES = sorted(
    p
    for folder in ("models", "layers", "diffusion")
    for p in (PACKAGE / folder).rglob("*.py")
    if p.is_file()
)


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_there_are_model_files():
    assert any(p.name == "vae.py" for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_backend_imports(path):
    assert not imported_roots(path) & FORBIDDEN


def test_the_check_catches_a_backend_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import keras\nfrom torch import nn\n")
    assert imported_roots(bad) & FORBIDDEN == {"torch"}
