"""pip install ./python  (offline: pip install --no-build-isolation ./python,
with Debian's python3-setuptools).  Builds galvani._core from
galvani/_core*.c and libgalvani's sources in ../src/core, so no installed
libgalvani is needed."""

import glob
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rel(path):
    return os.path.relpath(path, HERE)


# galvani/_core.c says what each of the module's files holds.
module_sources = [os.path.join(HERE, "galvani", n) for n in ("_core.c", "_core_signal.c", "_core_effect.c")]
core_sources = sorted(glob.glob(os.path.join(ROOT, "src", "core", "*.c")))
if not core_sources:
    raise SystemExit("setup.py: libgalvani's sources (../src/core) not found; build from the repository")

setup(
    name="galvani",
    version="0.23.0",
    description="reaktiv's signals API on libgalvani (C)",
    packages=["galvani"],
    ext_modules=[
        Extension(
            "galvani._core",
            sources=[rel(p) for p in module_sources] + [rel(p) for p in core_sources],
            depends=[rel(os.path.join(HERE, "galvani", "_core.h"))],
            include_dirs=[rel(os.path.join(ROOT, "include")), rel(os.path.join(ROOT, "src", "core"))],
            define_macros=[("_POSIX_C_SOURCE", "200809L")],
            extra_compile_args=["-std=c11"],
        )
    ],
    python_requires=">=3.10",
)
