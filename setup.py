"""Build of genai-exporter: the package of pyproject.toml, with its data path compiled by Cython.

The modules along the OTLP data path (genai_exporter.extensions.COMPILED_MODULES) are plain
Python, and Cython compiles these very files to C extensions: there is no second implementation
to keep equivalent, and the sources stay the reference that runs wherever the extensions do not.
A module may have a .pxd beside it (receive.pxd), which Cython reads as C types for the names of
the .py: it declares, it implements nothing. Compiled, the path spends less CPU time per span
(bench/RESULTS.md). Beside the extensions goes a manifest of the source (and .pxd) each was built
from, so that an extension older than either is never imported (genai_exporter/extensions.py).

GENAI_EXPORTER_NO_EXTENSIONS=1 builds the package without extensions. A machine without a C
compiler or Python's headers builds it without them too, with a warning: the package works the
same, only slower.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_ROOT = Path(__file__).resolve().parent
_SPEC = importlib.util.spec_from_file_location("_genai_exporter_extensions",
                                               _ROOT / "exporter" / "genai_exporter" / "extensions.py")
assert _SPEC is not None and _SPEC.loader is not None
extensions = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(extensions)


class BuildDataPath(build_ext):
    """Compiles the data path; records what it compiled; falls back to the sources when it cannot."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:  # one compiler per CPU: the modules are independent
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # a missing compiler or headers surfaces as several error classes
            self.warn(f"genai-exporter: the data path is not compiled ({error}); it runs from its "
                      "Python sources, which are slower")
            return
        if self.extensions:
            self._write_manifest()

    def _write_manifest(self) -> None:
        # Only the extensions this build made are vouched for: a build without them (refused) leaves
        # an earlier manifest, whose digests then no longer match any source edited since.
        package_dir = Path(self.get_ext_fullpath(self.extensions[0].name)).parent
        manifest = {}
        for extension in self.extensions:
            name = extension.name.rpartition(".")[2]
            manifest[name] = extensions.source_digest(_ROOT / "exporter" / extensions.PACKAGE / f"{name}.py")
        (package_dir / extensions.MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n",
                                                            encoding="utf-8")


def _data_path_extensions() -> list[Extension]:
    if extensions.extensions_refused(os.environ):
        return []
    from Cython.Build import cythonize

    modules = [
        Extension(f"{extensions.PACKAGE}.{name}", [f"exporter/{extensions.PACKAGE}/{name}.py"])
        for name in extensions.COMPILED_MODULES
    ]
    # language_level 3: the sources' own semantics. Nothing else is tuned here: the compiled modules
    # must behave exactly as the sources do, which the tests check by running on both.
    return cythonize(modules, build_dir="build/cython", language_level=3, quiet=True, nthreads=os.cpu_count() or 1)


setup(ext_modules=_data_path_extensions(), cmdclass={"build_ext": BuildDataPath})
