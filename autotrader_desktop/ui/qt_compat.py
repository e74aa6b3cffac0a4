"""A guard against the reference-counting bug of PySide6 6.12.0 on Python 3.11.

With PySide6 6.12.0 (the abi3 wheels) on Python 3.11, every call of a Qt method that
returns nothing takes one reference from `None`, and every `signal.emit()` one from
`True`: the functions hand out those objects without the reference they owe. A window
makes thousands of such calls a minute (pyqtgraph on each pan, qasync for each call from
another thread), and the process aborts once a count reaches zero ("Fatal Python error:
none_dealloc" / "bool_dealloc"). Python 3.12 made these objects immortal, so nothing
happens there; PySide6 6.11.3 does not have the bug.

`protect()` probes for the bug with one call of each kind. When it is there, it gives
`None`, `True` and `False` the immortal reference count that Python 3.12 gives them, so
lost references can never bring them to zero. The real fix is a PySide6 without the bug;
see docs/ui.md.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

# The value Python 3.12 uses for immortal objects: far beyond any number of calls.
_IMMORTAL = 2**32 - 1


class _Probe(QObject):
    signal = Signal()


def loses_references() -> bool:
    """Whether a void method call or an emit takes a reference it does not own."""
    probe = _Probe()
    none, true = sys.getrefcount(None), sys.getrefcount(True)
    probe.setObjectName("probe")
    probe.signal.emit()
    return sys.getrefcount(None) < none or sys.getrefcount(True) < true


def protect() -> bool:
    """Apply the guard if this PySide6 needs it; returns whether it was applied."""
    if sys.version_info >= (3, 12) or not loses_references():
        return False
    for singleton in (None, True, False):
        # ob_refcnt is the first field of every CPython object (3.11 layout).
        refcount = ctypes.c_ssize_t.from_address(id(singleton))
        refcount.value = max(refcount.value, _IMMORTAL)
    return True
