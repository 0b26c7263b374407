"""The PySide6 desktop front end: a shell that composes one page per stage.

Only this package imports Qt. Pages call services (never SQL), run slow work through
`ui.workers`, and refresh their part of the screen when a `Changes` arrives on
`AppContext.changed`.
"""
