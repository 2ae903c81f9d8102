from __future__ import annotations

import re

import samkit
from samkit import version


def test_the_one_version_is_the_package_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", version.__version__)
    assert samkit.__version__ == version.__version__
