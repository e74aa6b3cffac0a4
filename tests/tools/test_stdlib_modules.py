"""What the bundle must let algorithms import (tools/stdlib_modules.py)."""

from __future__ import annotations

from tests.helpers import stdlib_modules


def test_bundled_module_lists():
    std = set(stdlib_modules.stdlib_modules(include_tk=False))
    for name in [
        "json",
        "sqlite3",
        "zoneinfo",
        "xml.etree.ElementTree",
        "email.mime.text",
        "concurrent.futures",
        "asyncio",
        "multiprocessing.pool",
        "unittest.mock",
        "importlib.metadata",
        "encodings.idna",
        "sys",
        "decimal",
        "statistics",
    ]:
        assert name in std, name
    assert not {"test", "idlelib", "tkinter", "turtle"} & {n.partition(".")[0] for n in std}
    assert not [n for n in std if {"test", "tests", "idle_test"} & set(n.split("."))]
    numpy = set(stdlib_modules.numpy_modules())
    assert {"numpy", "numpy.linalg", "numpy.random", "numpy.fft", "numpy.polynomial"} <= numpy
    assert not [n for n in numpy if "tests" in n.split(".") or n.startswith("numpy.distutils")]
    pandas = set(stdlib_modules.pandas_modules())
    assert {"pandas", "pandas.core.frame", "pandas.api.types", "pandas.tseries.offsets"} <= pandas
    assert not [n for n in pandas if "tests" in n.split(".") or n == "pandas.conftest"]
    checked = stdlib_modules.import_check_modules(sorted(std))
    assert "antigravity" not in checked and "json.__main__" not in checked
    assert "json.tool" in checked
