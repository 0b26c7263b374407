"""Work around a reference-count bug of the PySide6 build in use on CPython 3.11.

Measured here (PySide6 6.12.0, CPython 3.11.7): every call of a Qt method that returns nothing
(``widget.setEnabled(True)``, ``table.setRowCount(3)``, a button click, a signal emission…)
releases one reference to ``None`` that it never took. CPython 3.12 made ``None``, ``True`` and
``False`` immortal, so there the release is harmless; on 3.11 ``None``'s count (about 34,000 after
start-up) runs down, and after that many calls the process aborts with "Fatal Python error:
none_dealloc: deallocating None" - minutes of normal use, or one test session.

`pin_singletons` does what CPython 3.12 does: it gives these singletons a reference count no
program can exhaust. It only ever adds references, and only on CPython before 3.12. The real
fix is a PySide6 build that keeps the counts (or CPython >= 3.12); then this becomes a no-op.
"""

from __future__ import annotations

import ctypes
import platform
import sys

#: added to each singleton's reference count: 2**40 releases would take centuries of calls
BALLAST = 1 << 40

_pinned = False


def pin_singletons() -> bool:
    """Make None, True and False effectively immortal (CPython < 3.12 only). Returns whether it did."""
    global _pinned
    if _pinned or sys.version_info >= (3, 12) or platform.python_implementation() != "CPython":
        return False
    for singleton in (None, True, False, Ellipsis, NotImplemented):
        # ob_refcnt is the first field of every object in a release build of CPython
        ctypes.c_ssize_t.from_address(id(singleton)).value += BALLAST
    _pinned = True
    return True
