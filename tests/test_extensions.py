"""Specification of the compiled data path: built, run, and never run from an extension older than its source.

setup.py compiles genai_exporter.extensions.COMPILED_MODULES with Cython and writes a manifest of
the sources it compiled; the package's `__init__` imports a module compiled only when the
manifest vouches for the source now beside it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import genai_exporter
from genai_exporter import catalog
from genai_exporter.extensions import (
    BUILD_COMPILED,
    BUILD_PYTHON,
    COMPILED_MODULES,
    MANIFEST_NAME,
    NO_EXTENSIONS_VARIABLE,
    data_path_build,
    extensions_refused,
    sources_to_prefer,
)
from genai_exporter.pipeline import Pipeline
from tests.serving import ServeProcess

PACKAGE_DIR = Path(genai_exporter.__file__).resolve().parent
ALL_SOURCES = {f"genai_exporter.{name}": f"{name}.py" for name in COMPILED_MODULES}


def package_with_manifest(directory: Path, compiled_from: dict[str, bytes]) -> Path:
    """A package directory whose data-path sources read `source of <name>`, and a manifest of
    the sources its extensions were (said to be) compiled from."""
    for name in COMPILED_MODULES:
        (directory / f"{name}.py").write_bytes(f"source of {name}\n".encode())
    manifest = {name: hashlib.sha256(source).hexdigest() for name, source in compiled_from.items()}
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    return directory


def current_sources() -> dict[str, bytes]:
    return {name: f"source of {name}\n".encode() for name in COMPILED_MODULES}


def preferred(package_dir: Path, environ: dict[str, str]) -> dict[str, str]:
    return {fullname: path.name for fullname, path in sources_to_prefer(package_dir, environ).items()}


def test_the_data_path_runs_compiled_after_the_build_and_from_sources_when_asked() -> None:
    # scripts/test.sh runs the data-path tests a second time with GENAI_EXPORTER_NO_EXTENSIONS=1.
    expected = BUILD_PYTHON if extensions_refused(os.environ) else BUILD_COMPILED
    assert data_path_build() == expected


def test_build_info_says_how_the_data_path_runs() -> None:
    expected = BUILD_PYTHON if extensions_refused(os.environ) else BUILD_COMPILED
    build_info = next(family for family in Pipeline().collector.collect()
                      if family.name == catalog.BUILD_INFO.name)
    assert [sample.labels[catalog.DATA_PATH] for sample in build_info.samples] == [expected]


def test_extensions_built_from_the_sources_beside_them_are_used(tmp_path: Path) -> None:
    package_dir = package_with_manifest(tmp_path, current_sources())
    assert preferred(package_dir, {}) == {}


def test_a_source_edited_after_the_build_is_imported_instead_of_its_extension(tmp_path: Path) -> None:
    package_dir = package_with_manifest(tmp_path, current_sources())
    (package_dir / "normalize.py").write_bytes(b"source of normalize\n# edited\n")
    assert preferred(package_dir, {}) == {"genai_exporter.normalize": "normalize.py"}


def test_declarations_edited_after_the_build_send_their_module_to_its_source(tmp_path: Path) -> None:
    package_dir = package_with_manifest(tmp_path, current_sources())
    (package_dir / "receive.pxd").write_bytes(b"cdef Py_ssize_t _TAG_KEY\n")
    assert preferred(package_dir, {}) == {"genai_exporter.receive": "receive.py"}


def test_an_extension_built_from_a_source_and_its_declarations_is_used(tmp_path: Path) -> None:
    declarations = b"cdef Py_ssize_t _TAG_KEY\n"
    built = {**current_sources(), "receive": current_sources()["receive"] + declarations}
    package_dir = package_with_manifest(tmp_path, built)
    (package_dir / "receive.pxd").write_bytes(declarations)
    assert preferred(package_dir, {}) == {}


def test_a_module_the_manifest_does_not_list_comes_from_its_source(tmp_path: Path) -> None:
    built = {name: source for name, source in current_sources().items() if name != "aggregate"}
    package_dir = package_with_manifest(tmp_path, built)
    assert preferred(package_dir, {}) == {"genai_exporter.aggregate": "aggregate.py"}


def test_a_module_without_its_source_is_left_to_the_usual_import(tmp_path: Path) -> None:
    package_dir = package_with_manifest(tmp_path, current_sources())
    (package_dir / "receive.py").unlink()
    assert preferred(package_dir, {NO_EXTENSIONS_VARIABLE: "1"}) == {
        fullname: file for fullname, file in ALL_SOURCES.items() if file != "receive.py"}


def test_without_a_manifest_every_module_comes_from_its_source(tmp_path: Path) -> None:
    package_dir = package_with_manifest(tmp_path, current_sources())
    (package_dir / MANIFEST_NAME).unlink()
    assert preferred(package_dir, {}) == ALL_SOURCES


def test_a_manifest_that_is_not_json_counts_as_none(tmp_path: Path) -> None:
    package_dir = package_with_manifest(tmp_path, current_sources())
    (package_dir / MANIFEST_NAME).write_text("{not json", encoding="utf-8")
    assert preferred(package_dir, {}) == ALL_SOURCES


def test_the_environment_variable_sends_every_module_to_its_source(tmp_path: Path) -> None:
    package_dir = package_with_manifest(tmp_path, current_sources())
    assert preferred(package_dir, {NO_EXTENSIONS_VARIABLE: "1"}) == ALL_SOURCES


def test_the_environment_variable_set_to_0_or_empty_leaves_extensions_on(tmp_path: Path) -> None:
    package_dir = package_with_manifest(tmp_path, current_sources())
    assert (preferred(package_dir, {NO_EXTENSIONS_VARIABLE: "0"}),
            preferred(package_dir, {NO_EXTENSIONS_VARIABLE: ""})) == ({}, {})


def _loaded_from(package_parent: Path, environ: dict[str, str]) -> dict[str, str]:
    """Import every data-path module in a new interpreter from a copy of the package; file names."""
    program = ("import importlib, json; from genai_exporter.extensions import COMPILED_MODULES; "
               "print(json.dumps({n: importlib.import_module('genai_exporter.' + n).__file__.rsplit('/', 1)[1] "
               "for n in COMPILED_MODULES}))")
    environment = {key: value for key, value in os.environ.items() if key != NO_EXTENSIONS_VARIABLE}
    environment.update(environ, PYTHONPATH=str(package_parent))
    completed = subprocess.run([sys.executable, "-c", program], env=environment, capture_output=True, text=True,
                               check=True, cwd=package_parent)
    return json.loads(completed.stdout)


@pytest.fixture
def copy_of_the_built_package(tmp_path: Path) -> Path:
    """A copy of the installed package, extensions and manifest included (skips when not built)."""
    built = [path for path in PACKAGE_DIR.iterdir()
             if path.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))]
    if not (PACKAGE_DIR / MANIFEST_NAME).is_file() or len(built) != len(COMPILED_MODULES):
        pytest.skip("the package was built without its extensions (no C compiler?)")
    shutil.copytree(PACKAGE_DIR, tmp_path / "genai_exporter", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_a_real_import_takes_the_extension_only_while_it_matches_its_source(copy_of_the_built_package: Path) -> None:
    package_dir = copy_of_the_built_package / "genai_exporter"
    with (package_dir / "pricing.py").open("a", encoding="utf-8") as source:
        source.write("\n# edited after the build\n")
    loaded = _loaded_from(copy_of_the_built_package, {})
    assert {name: file.endswith(".py") for name, file in loaded.items()} == {
        name: name == "pricing" for name in COMPILED_MODULES}


def test_a_real_import_takes_every_source_when_extensions_are_refused(copy_of_the_built_package: Path) -> None:
    loaded = _loaded_from(copy_of_the_built_package, {NO_EXTENSIONS_VARIABLE: "1"})
    assert loaded == {name: f"{name}.py" for name in COMPILED_MODULES}


def test_the_declarations_of_compiled_modules_are_installed_beside_them() -> None:
    # The manifest's digest of receive covers receive.pxd: an installed package without the .pxd
    # would find its receive differ from the manifest, and run it from source.
    repository = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((repository / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"]["setuptools"]["package-data"]["genai_exporter"]
    declarations = sorted(path.name for path in (repository / "exporter" / "genai_exporter").glob("*.pxd"))
    assert [(name, any(fnmatch.fnmatch(name, pattern) for pattern in patterns)) for name in declarations] == [
        ("receive.pxd", True)]


def _startup_warnings(environment: dict[str, str]) -> list[str]:
    """The messages `genai-exporter serve` logs at level WARNING up to shortly after it listens."""
    server = ServeProcess([], environment=environment)
    assert server.stop() == 0
    return [line.partition('msg="')[2].removesuffix('"') for line in server.log if " level=WARNING " in line]


def test_serve_from_the_python_sources_warns_once_at_startup() -> None:
    environment = {**os.environ, NO_EXTENSIONS_VARIABLE: "1"}
    assert _startup_warnings(environment) == [
        "the data path runs from its Python sources (data path: python), which take far more CPU time per span "
        "than the compiled path: reinstall where a C compiler is at hand, with GENAI_EXPORTER_NO_EXTENSIONS unset"]


def test_serve_compiled_gives_no_warning_at_startup() -> None:
    if data_path_build() != BUILD_COMPILED:
        pytest.skip("the package was built without its extensions (no C compiler?)")
    environment = {key: value for key, value in os.environ.items() if key != NO_EXTENSIONS_VARIABLE}
    assert _startup_warnings(environment) == []
