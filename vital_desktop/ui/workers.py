"""Run service calls off the GUI thread and bring results back by signal.

Two pools, as STYLE.md asks: a compute pool for reads, decoding and long jobs, and a
single-thread pool for store writes (the Store serialises writes anyway; one writer thread
keeps the order of a user's saves). Each job gets a `Progress` with its own `CancelToken`;
the status bar polls `Job.snapshot()` (no cross-thread signal per tick). Cancel sets the token;
a thread is never terminated. Every exception reaches `JobRunner.failed`, which the main window
shows to the user and logs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from vital_desktop.core.errors import Cancelled
from vital_desktop.core.progress import CancelToken, Progress, ProgressSnapshot

log = logging.getLogger(__name__)

#: How much nicer than the GUI thread the pools' threads run (Linux: per-thread nice values;
#: VITAL_WORKER_NICE overrides). Under load the GUI thread's long gaps are mostly spent waiting
#: in the kernel's run queue, not for the GIL (benchmarks/bench_ui_stall.py reads /proc
#: schedstat), and a nicer worker lets the GUI thread win the CPU against our own jobs. Off by
#: default: measured on a machine busy with other programs, nice workers starved so badly that
#: the DATA page's first reads and thumbnails took minutes (a job yields to every other program
#: too), which is worse than a late repaint. Threads a job starts (onnxruntime, numba) inherit it.
WORKER_NICE = 0
#: In the app, DuckDB runs each query on this many fewer threads than the machine has cores
#: (at least one; VITAL_ENGINE_THREADS sets the count itself): a long import or training keeps a
#: core free for the window, which would otherwise wait for a CPU behind DuckDB's parallel
#: workers. The command line on its own keeps every core.
CORES_KEPT_FOR_THE_WINDOW = 1
#: native ids of the pools' threads (the stall benchmark flips their nice values for its A/B)
WORKER_THREADS: set[int] = set()
_lowered = threading.local()


def lower_this_thread() -> None:
    """Run this pool thread `WORKER_NICE` (or VITAL_WORKER_NICE) steps nicer, once; never raises
    (not Linux, or refused)."""
    if getattr(_lowered, "done", False):
        return
    _lowered.done = True
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    WORKER_THREADS.add(tid)
    try:
        steps = int(os.environ.get("VITAL_WORKER_NICE", WORKER_NICE))
    except ValueError:
        steps = WORKER_NICE
    if steps <= 0:
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps))


def engine_threads() -> int:
    """DuckDB's thread count for the app: VITAL_ENGINE_THREADS, else the cores less
    `CORES_KEPT_FOR_THE_WINDOW` (at least one)."""
    try:
        return max(1, int(os.environ["VITAL_ENGINE_THREADS"]))
    except (KeyError, ValueError):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, cores - CORES_KEPT_FOR_THE_WINDOW)


class _Relay(QObject):
    """Lives in the GUI thread; worker threads emit on it, so slots run queued in the GUI thread."""

    done = Signal(object)
    error = Signal(object)


class Job(QObject):
    """One piece of background work: a title, a progress, a cancel token, and its outcome."""

    finished = Signal(object)  # the result
    failed = Signal(object)  # the exception
    ended = Signal()  # after finished or failed

    def __init__(self, title: str, fn: Callable[[Progress], Any], *, cancellable: bool, visible: bool) -> None:
        super().__init__()
        self.title = title
        self.cancellable = cancellable
        self.visible = visible
        self.cancel_token = CancelToken()
        self.progress = Progress(cancel=self.cancel_token)
        self.running = False
        self.result: Any = None
        self.error: BaseException | None = None
        self._fn = fn
        self._relay = _Relay()
        self._relay.done.connect(self._on_done)
        self._relay.error.connect(self._on_error)

    def cancel(self) -> None:
        """Ask the work to stop at its next `progress.check()`."""
        self.cancel_token.cancel()

    def snapshot(self) -> ProgressSnapshot:
        return self.progress.snapshot()

    def _run(self) -> None:  # worker thread
        try:
            result = self._fn(self.progress)
        except BaseException as exc:  # noqa: BLE001 - every error goes to the GUI
            if not isinstance(exc, Cancelled):
                log.error("job %r failed:\n%s", self.title, "".join(traceback.format_exception(exc)))
            self._relay.error.emit(exc)
        else:
            self._relay.done.emit(result)

    @Slot(object)
    def _on_done(self, result: Any) -> None:
        self.running = False
        self.result = result
        self.finished.emit(result)
        self.ended.emit()

    @Slot(object)
    def _on_error(self, exc: BaseException) -> None:
        self.running = False
        self.error = exc
        self.failed.emit(exc)
        self.ended.emit()


class _Runnable(QRunnable):
    def __init__(self, job: Job) -> None:
        super().__init__()
        self._job = job
        self.setAutoDelete(True)

    def run(self) -> None:
        lower_this_thread()
        self._job._run()


class JobRunner(QObject):
    """Starts jobs on the compute or writer pool and keeps the list of running ones."""

    job_started = Signal(object)
    job_ended = Signal(object)
    #: an exception nobody handled (no `on_error` given): the main window shows it
    failed = Signal(str, object)

    def __init__(self, parent: QObject | None = None, *, compute_threads: int = 2) -> None:
        super().__init__(parent)
        self.compute_pool = QThreadPool(self)
        self.compute_pool.setMaxThreadCount(compute_threads)
        self.writer_pool = QThreadPool(self)
        self.writer_pool.setMaxThreadCount(1)
        self.jobs: list[Job] = []
        self._lock = threading.Lock()

    def submit(
        self,
        title: str,
        fn: Callable[[Progress], Any],
        *,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        writes: bool = False,
        cancellable: bool = False,
        visible: bool = True,
    ) -> Job:
        """Run ``fn(progress)`` in a pool; callbacks run in the GUI thread.

        Without `on_error`, the exception goes to `failed` (shown to the user); a `Cancelled`
        job without `on_error` ends quietly with a status message.
        """
        job = Job(title, fn, cancellable=cancellable, visible=visible)
        job.running = True
        if on_result is not None:
            job.finished.connect(on_result)
        if on_error is not None:
            job.failed.connect(on_error)
        else:
            job.failed.connect(lambda exc, t=title: self.failed.emit(t, exc))
        job.ended.connect(lambda j=job: self._forget(j))
        self.jobs.append(job)
        if visible:
            self.job_started.emit(job)
        (self.writer_pool if writes else self.compute_pool).start(_Runnable(job))
        return job

    def _forget(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        if job.visible:
            self.job_ended.emit(job)

    def visible_jobs(self) -> list[Job]:
        return [j for j in self.jobs if j.visible]

    def cancel_all(self) -> None:
        for job in list(self.jobs):
            job.cancel()

    def wait(self, msecs: int = 30_000) -> bool:
        """Wait for both pools to drain (called on close: cancel, then wait; never terminate)."""
        ok_compute = self.compute_pool.waitForDone(msecs)
        ok_writer = self.writer_pool.waitForDone(msecs)
        return ok_compute and ok_writer

    def active_threads(self) -> int:
        return self.compute_pool.activeThreadCount() + self.writer_pool.activeThreadCount()
