"""Which modules of the data path run compiled, and the rule that keeps a stale build from running.

setup.py compiles the modules named in COMPILED_MODULES with Cython, from these very sources (no
second implementation: a .pxd beside a source only declares C types for it), and writes beside
the extensions a manifest of the SHA-256 of each source it compiled, with its .pxd. Python
imports an extension before a source of the same name, so an extension built from an older
source would run instead of the file a developer has just edited,
and tests would judge code that is no longer there. `prefer_current_sources`, called by the
package's `__init__` before any of these modules is imported, sends the import of such a module
to its source instead: a module runs compiled only when the manifest vouches that its extension
was built from the source now beside it. GENAI_EXPORTER_NO_EXTENSIONS=1 sends all of them to
their sources, which is how the tests check that both builds give the same results.

Standard library only: setup.py reads the module list from here before anything is installed.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

PACKAGE = "genai_exporter"
# The data path, receive → normalize → price → aggregate, the pipeline that runs it and the records
# they pass along: where the exporter spends its time per span (bench/RESULTS.md).
COMPILED_MODULES = ("records", "receive", "normalize", "pricing", "aggregate", "pipeline")
# Set to a non-empty value other than "0": run (and build) every module from its source.
NO_EXTENSIONS_VARIABLE = "GENAI_EXPORTER_NO_EXTENSIONS"
# Written by setup.py beside the extensions: {"module": "sha256 of the source it was compiled from"}.
MANIFEST_NAME = "_extensions.json"

BUILD_COMPILED = "compiled"
BUILD_PYTHON = "python"
BUILD_MIXED = "mixed"


def extensions_refused(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for the sources only (GENAI_EXPORTER_NO_EXTENSIONS)."""
    return environ.get(NO_EXTENSIONS_VARIABLE, "") not in ("", "0")


def source_digest(source: Path) -> str:
    """SHA-256 of what a module is compiled from: what the manifest records and what it is checked against.

    The source, followed by its C declarations for Cython when it has some (a .pxd beside it):
    editing either makes the module run from its source until it is built again.
    """
    digest = hashlib.sha256(source.read_bytes())
    declarations = source.with_suffix(".pxd")
    if declarations.is_file():
        digest.update(declarations.read_bytes())
    return digest.hexdigest()


def sources_to_prefer(package_dir: Path, environ: Mapping[str, str]) -> dict[str, Path]:
    """Data-path modules to import from their sources: every one without a vouched-for extension.

    Keyed by full module name, and only modules whose source is there. All of them when the
    environment refuses extensions or there is no readable manifest; otherwise each module whose
    source differs from the one its extension was built from, or that the manifest does not list.
    """
    sources = {f"{PACKAGE}.{name}": package_dir / f"{name}.py" for name in COMPILED_MODULES}
    sources = {fullname: source for fullname, source in sources.items() if source.is_file()}
    if extensions_refused(environ):
        return sources
    try:
        manifest = json.loads((package_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return sources
    if not isinstance(manifest, dict):
        return sources
    return {
        fullname: source for fullname, source in sources.items()
        if manifest.get(fullname.rpartition(".")[2]) != source_digest(source)
    }


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the listed modules at their sources, ahead of the extensions beside them."""

    def __init__(self, sources: Mapping[str, Path]) -> None:
        self._sources = dict(sources)

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        source = self._sources.get(fullname)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


def prefer_current_sources(package_dir: Path, environ: Mapping[str, str]) -> None:
    """Make the import of each data-path module without a current extension load its source."""
    sources = sources_to_prefer(package_dir, environ)
    if sources:
        sys.meta_path.insert(0, _SourceFinder(sources))


def is_compiled(module: ModuleType) -> bool:
    """Whether a module was loaded from an extension (a compiled file) rather than from source."""
    return isinstance(getattr(module.__spec__, "loader", None), importlib.machinery.ExtensionFileLoader)


def data_path_build() -> str:
    """"compiled" when every data-path module runs compiled, "python" when none does, else "mixed".

    Imports the modules, so that the answer is what runs, not what was built.
    """
    compiled = [is_compiled(importlib.import_module(f"{PACKAGE}.{name}")) for name in COMPILED_MODULES]
    if all(compiled):
        return BUILD_COMPILED
    return BUILD_MIXED if any(compiled) else BUILD_PYTHON
