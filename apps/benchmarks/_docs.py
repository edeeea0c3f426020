"""Writing benchmark figures into the docs, between markers a rerun replaces."""

from __future__ import annotations

import re
from pathlib import Path

from mp_keras import io


def write_section(docs: Path, tag: str, key: str, text: str) -> None:
    """Replaces (or appends) the block between `<!-- {tag} {key} begin/end -->` in `docs`."""
    begin, end = f"<!-- {tag} {key} begin -->", f"<!-- {tag} {key} end -->"
    block = f"{begin}\n{text}\n{end}"
    doc = docs.read_text(encoding="utf-8") if docs.exists() else ""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: block, doc)
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    io.write_text(docs, doc)
