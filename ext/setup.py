"""Builds the Cython kernels (configuration lives in pyproject.toml)."""

from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "tempo_fast_kernels.histogram",
        ["tempo_fast_kernels/histogram.pyx"],
        extra_compile_args=["-O3"],
    ),
    Extension(
        "tempo_fast_kernels.sketch",
        ["tempo_fast_kernels/sketch.pyx"],
        extra_compile_args=["-O3"],
    ),
    Extension(
        "tempo_fast_kernels.timeseries",
        ["tempo_fast_kernels/timeseries.pyx"],
        extra_compile_args=["-O3"],
        libraries=["m"],
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )
)
