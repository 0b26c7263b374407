"""Does the window stay responsive while the store is busy? Worst GUI-thread stall during a big
label import, a training run and a bundle import, and the time from start to a usable window.

    python -m benchmarks.bench_ui_stall [--labels 1000000] [--startups 5]   → benchmarks/results/ui_stall.json

- The GUI thread's responsiveness is read from a 5 ms QTimer: the longest gap between its ticks
  (minus the 5 ms interval) is the worst stall. While it runs, a scripted user switches pages every
  250 ms and asks every page to reload (`MainWindow.refresh`, all `Changes`) once a second, so the
  pages' reads and writes go through the operation layer exactly as in use.
- Each background job (label import of N labels from CSV, training the demo classifier, importing
  the demo model bundle) is started through `context.change`, as the pages start it. Before each
  job the same scripted user runs for 5 s with nothing in the background (the interleaved
  baseline); the report gives both and their ratio.
- The old path, for comparison: once per job, with the stall monitor paused, the GUI thread opens
  a write transaction itself (what template publish, undo/redo did before) and a read (what
  every page did): how long the window would have frozen.
- Where the time went: the GUI thread's own CPU time and run-queue wait are read from Linux's
  /proc/thread-self/schedstat at every tick, so each gap over 100 ms splits into running (the
  GUI's own work), waiting for a CPU (the machine's load), and the rest (blocked on the GIL, a
  lock, or sleeping). `--diagnose` adds a watchdog thread sampling every thread's stack during
  late ticks and times each Qt event (benchmarks/_stall_watch.py).
- The app runs with its own settings throughout. Interleaved A/B inside every phase (`--flip`):
  `--flip nice:0,10` alternates the job runner's threads each second between
  nice 0 (the app's default, WORKER_NICE) and nice +10, each gap counting for the condition in
  force; `--flip switch:0.005,0.001` flips the GIL switch interval.
- Start to usable window: `vital-desktop`'s own start-up code in a subprocess, from process start
  until the DATA page shows its sheets and the first thumbnail (median of `--startups` runs).
- Before/after (`--baseline COMMIT [--rounds 3]`): fresh runs of this script with the baseline's
  app and with this tree's take turns (ABBA), one report `<out>_compare.json` with both and their
  ratio (benchmarks/_stall_compare.py). Quick iteration: `--labels 200000 --jobs label_import`.

Numbers from a shared 2-core machine: the load average is in the report.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import percentiles, write_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "demo" / "01-model-update.vbundle"
ADMIN, ADMIN_PASSWORD = "admin", "vital-admin"
STAGES = ("data", "generate", "train", "deploy", "monitor", "improve", "calibration", "bundles")
CLASSES = ["inclusion", "crack", "delamination", "surface_contamination", "none"]

STARTUP_CHILD = r"""
import os, sys, time
t0 = float(sys.argv[2])
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication
from vital_desktop.app import build_main_window
from vital_desktop.services import accounts
from vital_desktop.store.db import open_store
from vital_desktop.ui.theme import STYLE_SHEET
from PySide6.QtCore import Qt
from benchmarks.bench_ui_stall import app_options
app = QApplication([])
app.setStyle("Fusion")
app.setStyleSheet(STYLE_SHEET)
store = open_store(sys.argv[1])
user = accounts.authenticate(store, "engineer", "vital-engineer")
window = build_main_window(store, user, stage="data", **app_options(build_main_window))
window.show()
app.processEvents()
shown = time.time() - t0
data = window.pages["data"]
from vital_desktop.ui.item_models import ItemRole

def usable():
    # the first sheet's first item is listed, with its thumbnail when it is an image (a demo
    # sheet of documents has none)
    if not (data.sheets_loaded and data.model is not None and data.model.rowCount()):
        return False
    first = data.model.index(0)
    info = first.data(ItemRole)
    return info is not None and (not info.absolute_image_path
                                 or first.data(Qt.ItemDataRole.DecorationRole) is not None)

while not usable():
    app.processEvents()
    time.sleep(0.001)
print("USABLE", shown, time.time() - t0, flush=True)
window.quit_answer = True
window.close()
store.close()
os._exit(0)
"""


def app_options(build) -> dict:
    """What `vital-desktop` (app.main) passes to `build_main_window` beyond the store and user, so
    the window measured is the app's; a baseline commit may not know them yet."""
    import inspect

    known = inspect.signature(build).parameters
    return {name: value for name, value in (("freeze_long_lived", True),) if name in known}


def spin(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)


def _schedstat() -> tuple[int, int] | None:
    """This thread's (CPU time, run-queue wait) in ns from Linux's schedstat, or None elsewhere."""
    try:
        with open("/proc/thread-self/schedstat") as handle:
            cpu, wait, _slices = handle.read().split()
        return int(cpu), int(wait)
    except (OSError, ValueError):
        return None


class StallMonitor:
    """The longest gap between ticks of a 5 ms timer on the GUI thread."""

    def __init__(self, watch=None) -> None:
        from PySide6.QtCore import QElapsedTimer, QTimer

        self.watch = watch
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self.by_condition: dict[str, list[float]] = {}
        self.condition = "as the app runs"
        # (gap, GUI-thread CPU, run-queue wait, when it ended: seconds since start)
        self.split: list[tuple[float, float, float, float]] = []
        self.sched: tuple[int, int] | None = None
        self.last = 0

    def start(self) -> None:
        self.sched = _schedstat()
        self.clock.start()
        self.last = self.clock.nsecsElapsed()
        self.timer.start()

    def pause(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed()
        if self.watch is not None:
            self.watch.tick()
        gap = (now - self.last) / 1e9
        self.gaps.append(gap)
        sched = _schedstat()
        if sched is not None and self.sched is not None:
            self.split.append((gap, (sched[0] - self.sched[0]) / 1e9, (sched[1] - self.sched[1]) / 1e9, now / 1e9))
        self.sched = sched
        self.by_condition.setdefault(self.condition, []).append(gap)
        self.last = now

    def where_stalls_went(self, over_s: float = 0.1) -> dict:
        """Where the GUI thread's time went during the gaps longer than `over_s`: running on a CPU
        (its own work), waiting in the kernel's run queue for a CPU (the machine's load), or
        neither (blocked: waiting for the GIL, a lock, or sleeping) — from /proc schedstat."""
        long = [x for x in self.split if x[0] > over_s]
        if not long:
            return {"gaps_over_ms": over_s * 1000, "count": 0}
        total = sum(x[0] for x in long)
        cpu = sum(x[1] for x in long)
        queue = sum(x[2] for x in long)
        worst = sorted(long, reverse=True)[:5]
        return {"gaps_over_ms": over_s * 1000, "count": len(long), "total_ms": round(total * 1000),
                "gui_thread_running_pct": round(100 * cpu / total, 1),
                "waiting_for_a_cpu_pct": round(100 * queue / total, 1),
                "blocked_gil_lock_or_sleep_pct": round(100 * max(0.0, total - cpu - queue) / total, 1),
                "worst": [{"gap_ms": round(g * 1000), "running_ms": round(c * 1000), "cpu_wait_ms": round(q * 1000),
                           "ended_at_s": round(at, 2)} for g, c, q, at in worst]}

    def report_by_condition(self) -> dict:
        """Worst stall and p99 gap under each condition that was in force (the A/B flips)."""
        out = {}
        for condition, gaps in sorted(self.by_condition.items()):
            stats = percentiles(gaps)
            out[condition] = {"ticks": len(gaps), "worst_stall_ms": round(max(gaps) * 1000 - 5, 1),
                              "p99_gap_ms": round(stats["p99_ms"], 1)}
        return out

    def report(self) -> dict:
        stats = percentiles(self.gaps) if self.gaps else {}
        return {"ticks": len(self.gaps), "worst_stall_ms": round(max(self.gaps, default=0) * 1000 - 5, 1),
                "p99_gap_ms": round(stats.get("p99_ms", 0), 1), "p50_gap_ms": round(stats.get("p50_ms", 0), 1)}


class ScriptedUser:
    """Switches pages every 250 ms and asks every page to reload once a second."""

    def __init__(self, window) -> None:
        self.window = window
        self.step = 0
        self.next_at = 0.0

    def poke(self) -> None:
        now = time.perf_counter()
        if now < self.next_at:
            return
        self.next_at = now + 0.25
        self.window.go(STAGES[self.step % len(STAGES)])
        if self.step % 4 == 0:
            self.window.refresh()
        self.step += 1


def set_worker_nice(nice: int) -> None:
    """Put the job runner's pool threads at `nice` (lowering it again needs root, as here)."""
    from vital_desktop.ui.workers import WORKER_THREADS

    for tid in list(WORKER_THREADS):
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:
            WORKER_THREADS.discard(tid)


def set_duckdb_threads(store, threads: int) -> None:
    """DuckDB's worker threads for the whole database (0: its default, one per core)."""
    import sqlalchemy as sa

    with store.engine.connect() as connection:
        connection.execute(sa.text("RESET threads" if threads <= 0 else f"SET threads = {int(threads)}"))


def conditions(kind: str, values: str, store=None) -> list[tuple[str, object]]:
    """The A/B conditions to flip between: GIL switch intervals, the workers' nice values, or
    DuckDB's thread count (duckdb:0,1 — every core, or one, leaving the other to the GUI)."""
    if kind == "duckdb":
        return [(f"duckdb threads {v or 'default'}", lambda v=int(v): set_duckdb_threads(store, v))
                for v in values.split(",") if v]
    if kind == "switch":
        return [(f"switch interval {float(v) * 1000:g} ms", lambda v=float(v): sys.setswitchinterval(v))
                for v in values.split(",") if v]
    if kind == "nice":
        return [(f"workers at nice {int(v)}", lambda v=int(v): set_worker_nice(v)) for v in values.split(",") if v]
    return []


def drive(app, window, seconds: float | None = None, job=None, probe=None, diagnose: bool = False,
          flip: list | tuple = ()) -> dict:
    """Run the scripted user with a stall monitor for `seconds` or until `job` ends (with `diagnose`,
    a watchdog thread samples the stacks of every late tick: benchmarks/_stall_watch.py). With
    `flip` (label, apply) conditions, they take turns, 1 s each (an interleaved A/B in the same run
    and load; each tick's gap counts for the condition in force when it ended)."""
    app_interval = sys.getswitchinterval()
    from benchmarks._stall_watch import StallWatch

    watch = StallWatch() if diagnose else None
    global CURRENT_WATCH
    CURRENT_WATCH = watch
    monitor, user = StallMonitor(watch), ScriptedUser(window)
    if watch is not None:
        watch.start()
    monitor.start()
    started = time.perf_counter()
    probed: dict = {}
    while True:
        elapsed = time.perf_counter() - started
        if flip:
            label, apply = flip[int(elapsed) % len(flip)]
            if monitor.condition != label:
                apply()
                monitor.condition = label
        if job is None and elapsed >= (seconds or 0):
            break
        if job is not None and not job.running:
            break
        if probe is not None and not probed and elapsed > 2.0:
            monitor.pause()
            probed = probe()
            monitor.last = monitor.clock.nsecsElapsed()  # the probe's own freeze is reported, not counted
            monitor.timer.start()
        user.poke()
        app.processEvents()
        time.sleep(0.0005)
    monitor.pause()
    sys.setswitchinterval(app_interval)
    if flip:
        flip[0][1]()
    out = {**monitor.report(), "seconds": round(time.perf_counter() - started, 2),
           "where_long_gaps_went": monitor.where_stalls_went()}
    if flip:
        out["by_condition"] = monitor.report_by_condition()
    if watch is not None:
        watch.stop()
        out["diagnosis"] = watch.summary()
    if probed:
        out["old_path"] = probed
    if job is not None:
        out["job_error"] = repr(job.error) if job.error is not None else None
    return out


def old_path_probe(store):
    """What the window did before: a write and a read on the GUI thread. The write is only tried
    (its lock taken with a 1 s limit): while the job holds the lock, an old-path GUI write would
    have frozen the window until the job ended; the monitor stays paused only for that second."""
    from vital_desktop.services import sheets

    def probe() -> dict:
        start = time.perf_counter()
        got = store.write_lock.acquire(timeout=1.0)
        if got:
            store.write_lock.release()
        write_wait = time.perf_counter() - start
        start = time.perf_counter()
        sheets.list_sheets(store)
        read = time.perf_counter() - start
        return {"gui_thread_write_would_wait": "until the job ends" if not got else f"{write_wait * 1000:.1f} ms",
                "gui_thread_read_ms": round(read * 1000, 1)}

    return probe


def make_label_file(store, actor, folder: Path, n: int) -> tuple[str, Path]:
    """A metadata-only sheet of `n` items and a CSV of `n` classification labels for it."""
    from vital_desktop.services import sheets

    meta, labels = folder / "big.csv", folder / "labels.csv"
    with open(meta, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "value"])
        writer.writerows([f"B-{i:07d}", i] for i in range(n))
    sheets.import_sheet(store, actor=actor, name="big", metadata_path=meta, key_column="item_id")
    with open(labels, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sheet", "item_ref", "label_type", "label_data"])
        for i in range(n):
            writer.writerow(["big", f"B-{i:07d}", "classification", json.dumps({"defect_type": CLASSES[i % 5]})])
    return "big", labels


def measure_startup(home: Path, runs: int) -> dict:
    shown, usable = [], []
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    for _ in range(runs):
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", STARTUP_CHILD, str(home), repr(t0)], env=env, check=True,
                             capture_output=True, text=True).stdout
        line = next(x for x in out.splitlines() if x.startswith("USABLE"))
        _, shown_s, usable_s = line.split()
        shown.append(float(shown_s))
        usable.append(float(usable_s))
    return {"runs": runs, "window_shown_median_s": round(statistics.median(shown), 3),
            "usable_median_s": round(statistics.median(usable), 3), "usable_runs_s": [round(u, 3) for u in usable],
            "usable_means": "the DATA page lists the sheets and shows the first item (its thumbnail, for an image)"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--startups", type=int, default=5)
    parser.add_argument("--diagnose", action="store_true", help="sample the stacks of late ticks into the report")
    parser.add_argument("--jobs", default="label_import,training,bundle_import")
    parser.add_argument("--out", default="ui_stall")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="override the GIL switch interval the app sets (seconds; CPython's default is 0.005)")
    parser.add_argument("--flip", default="",
                        help="conditions to alternate each second in every phase: nice:A,B (the job runner's threads' "
                             "nice values), switch:A,B (GIL switch intervals, s) or duckdb:A,B (DuckDB threads, 0 its "
                             "default); default none: the app's own settings throughout")
    parser.add_argument("--baseline", default=None,
                        help="compare with this commit: runs of its vital_desktop and of this tree take turns "
                             "(ABBA, --rounds each, same options), one report with both and their ratio")
    parser.add_argument("--rounds", type=int, default=3, help="runs per side with --baseline")
    parser.add_argument("--tree", default=None, help=argparse.SUPPRESS)  # a --baseline run: import the app from here
    parser.add_argument("--report-to", default=None, help=argparse.SUPPRESS)  # a --baseline run's JSON
    args = parser.parse_args()
    if args.baseline:
        from benchmarks._stall_compare import compare

        compare(args, Path(__file__).resolve())
        return
    if args.tree:
        sys.path.insert(0, args.tree)
    from PySide6.QtWidgets import QApplication

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "demo"
        from vital_desktop.services import site

        site.init_site(home, demo=True)
        startup = measure_startup(home, args.startups) if args.startups > 0 else {}

        from vital_desktop.app import build_main_window
        from vital_desktop.services import accounts, exchange, label_files, training
        try:
            from vital_desktop.services.demo_site import DEMO_SHEET
        except ImportError:  # a --baseline commit from before the demo-site split
            from vital_desktop.services.site import DEMO_SHEET  # type: ignore[attr-defined, no-redef]
        from vital_desktop.store.db import open_store
        from vital_desktop.ui.theme import STYLE_SHEET

        app = QApplication.instance() or (diagnosing_app([]) if args.diagnose else QApplication([]))
        app.setStyle("Fusion")
        app.setStyleSheet(STYLE_SHEET)
        store = open_store(home)
        admin = accounts.authenticate(store, ADMIN, ADMIN_PASSWORD)
        started = time.perf_counter()
        sheet, label_csv = make_label_file(store, admin, Path(tmp), args.labels)
        prepare_s = time.perf_counter() - started
        window = build_main_window(store, admin, stage="data", **app_options(build_main_window))
        if args.switch_interval is not None:
            sys.setswitchinterval(args.switch_interval)
        window.resize(1280, 720)
        window.show()
        for stage in STAGES:  # build every page once: the measurement is about store work, not page building
            window.go(stage)
            spin(app, 0.3)
        spin(app, 2.0)
        floor = StallMonitor()
        floor.start()
        spin(app, 3.0)
        floor.pause()

        jobs = {
            "label_import": lambda op: label_files.import_labels(op.store, actor=op.actor, path=label_csv,
                                                                 progress=op.progress),
            "training": lambda op: training.train_classifier(op.store, actor=op.actor, name="bench-classifier",
                                                             sheet=DEMO_SHEET, progress=op.progress),
            "bundle_import": lambda op: (exchange.import_bundle(op.store, actor=op.actor, path=BUNDLE,
                                                                progress=op.progress), exchange_changes()),
        }
        results = {}
        for name, fn in jobs.items():
            if name not in args.jobs.split(","):
                continue
            kind, _, values = args.flip.partition(":")
            flip = conditions(kind, values, store)
            baseline = drive(app, window, seconds=6.0, diagnose=args.diagnose, flip=flip)
            job = window.context.change(f"bench: {name}", fn, on_error=lambda _exc: None)
            busy = drive(app, window, job=job, probe=old_path_probe(store), diagnose=args.diagnose, flip=flip)
            spin(app, 1.0)
            busy["job_seconds"] = busy["seconds"]
            results[name] = {"idle_baseline": baseline, "with_job": busy,
                             "worst_stall_ratio_vs_idle": round(busy["worst_stall_ms"] / max(baseline["worst_stall_ms"], 1.0), 2)}
            print(name, json.dumps(results[name]), flush=True)
        window.quit_answer = True
        window.close()
        store.close()
    report = {
        "labels": args.labels, "label_sheet": sheet, "prepare_big_sheet_and_label_csv_s": round(prepare_s, 1),
        "target_worst_stall_ms": 100, "gil_switch_interval_s": sys.getswitchinterval(), "flip": args.flip,
        "timer_only_floor": floor.report(),
        "jobs": results,
        "startup_to_usable_window": startup,
    }
    if args.report_to:
        Path(args.report_to).write_text(json.dumps(report, default=str))
    else:
        write_report(args.out, report)


CURRENT_WATCH = None


def diagnosing_app(argv):
    """A QApplication whose `notify` times every event delivered on the GUI thread, wall and the GUI
    thread's CPU, outermost events only (diagnosis only: it costs a Python call per event)."""
    from PySide6.QtWidgets import QApplication

    class TimedApp(QApplication):
        depth = 0

        def notify(self, receiver, event):
            start, cpu = time.perf_counter(), time.thread_time()
            TimedApp.depth += 1
            try:
                return super().notify(receiver, event)
            finally:
                TimedApp.depth -= 1
                spent, used = time.perf_counter() - start, time.thread_time() - cpu
                if TimedApp.depth == 0 and (spent > 0.03 or used > 0.008) and CURRENT_WATCH is not None:
                    name = receiver.objectName() if hasattr(receiver, "objectName") else ""
                    CURRENT_WATCH.record_event(spent, used, f"{type(receiver).__name__}({name}) {event.type().name}")

    return TimedApp(argv)


def exchange_changes():
    from vital_desktop.core.changes import Changes

    return Changes(bundles=True, models=True)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (PySide6 and duckdb finalisers in a bad order can abort it)
