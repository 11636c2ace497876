"""Only the package list lives here; everything else is in pyproject.toml.

``rupture_nlp.data.models`` is the checkout's ``models/`` directory (``package-dir`` in
pyproject.toml): the committed default model ships inside the wheel as package data,
``rupture_nlp/data/models/rupture-3rs-minilm``, without a copy in the source tree. pyproject.toml's
``packages.find`` cannot add such a mapped package, and a list here would be overridden by it.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).resolve().parent
setup(
    packages=sorted(
        set(find_namespace_packages(where=str(HERE), include=["rupture_nlp*"])) | {"rupture_nlp.data.models"}
    )
)
