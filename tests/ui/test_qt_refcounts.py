"""The installed PySide6 must not lose references to None / True (PySide6 6.12.0 on 3.11).

Such a PySide6 aborts the app within minutes ("Fatal Python error: none_dealloc"), so it is
excluded in pyproject.toml; this test catches it if one gets installed anyway.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    signal = Signal()


def test_void_calls_and_emits_keep_reference_counts(qapp):
    probe = _Probe()
    none, true = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(100):
        probe.setObjectName("probe")
        probe.signal.emit()
    # Python >= 3.12 makes these immortal; on 3.11 a leak shows as a drop of ~100.
    assert sys.getrefcount(None) >= none - 5
    assert sys.getrefcount(True) >= true - 5
