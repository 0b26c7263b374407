"""Process exit for the console entry points.

duckdb's Python bindings (nanobind) print "leaked instance" warnings while the interpreter
shuts down, after all our work is done and every store is closed. A person running `vital`
should not see that noise, so the entry points flush everything and leave with `os._exit`.
`main()` functions stay plain (tests call them in-process).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable


def run_and_exit(main: Callable[[], int | None]) -> None:
    """Run `main`, flush logs and output, and exit with its status without interpreter teardown."""
    try:
        code = main()
    except BrokenPipeError:
        # `vital … | head`: the reader stopped reading. That is not an error of ours; leave
        # quietly (no traceback, no "Exception ignored" at exit) with a success status.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(int(code or 0))
