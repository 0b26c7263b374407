"""Keep the desktop app's long-lived objects out of Python's cyclic garbage collector.

A full (generation 2) collection walks every object the collector tracks while holding the GIL,
in whichever thread's allocation set it off. With the app's ~310,000 long-lived objects (modules,
Qt wrappers, pyqtgraph items, the pages) one took 300–370 ms at load 5, and
`benchmarks/bench_ui_stall.py --diagnose` caught one as the GUI thread's longest gap: a worker's
query allocating ORM rows started a 471 ms collection while the window waited for the GIL.

`gc.freeze()` moves every object alive now into the permanent generation (a list splice, not a
walk), so later full collections walk only what was made since. The app freezes once its window
is built and again after each page is built for the first time (pages live as long as the
window). The cost: cyclic garbage alive at those moments is never collected; start-up and page
construction leave little. Tests leave it off (`MainWindow(freeze_long_lived=False)`), since
their windows come and go.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Move every object tracked now into the collector's permanent generation."""
    gc.freeze()
