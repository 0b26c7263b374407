"""The PySide6 desktop front end: a shell that composes one page per stage.

Only this package imports Qt. Pages call services (never SQL), run slow work through
`ui.workers`, and refresh their part of the screen when a `Changes` arrives on
`AppContext.changed`.
"""

from vital_desktop.ui.qt_compat import pin_singletons as _pin_singletons

_pin_singletons()  # before any Qt call: see ui/qt_compat.py (a PySide6 refcount bug on CPython 3.11)
