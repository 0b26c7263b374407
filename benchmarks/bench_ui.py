"""Desktop ergonomics on the demo site: start-up, key press → next image, a 100,000-item sheet.

    python -m benchmarks.bench_ui        → benchmarks/results/ui.json

- start-up: `vital-desktop --quit-after-show` as a subprocess (offscreen), signed in through
  VITAL_USER/VITAL_PASSWORD, from process start to the main window shown and one event-loop
  turn done (median of 3);
- labeling latency: in the Canonical Labeling Tool, the time from a key press (→, or Enter
  which saves and moves on) to the next item's image set in the view and painted; the expert's
  pause between keys is 150 ms (the prefetch works during it); `image_misses` counts images
  that had to be decoded on the GUI thread because the prefetch had not finished;
- 100,000-item sheet: time from selecting it to the first rows and first thumbnail shown, and
  the worst GUI-thread stall while scrolling through it (a 5 ms timer measures the largest
  gap between its ticks while the scroll bar moves in 100 steps over the whole range).
"""

from __future__ import annotations

import csv
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

DEMO_USER, DEMO_PASSWORD = "engineer", "vital-engineer"
BIG_ROWS = 100_000


def build_demo(home: Path) -> None:
    from vital_desktop.services import site

    site.init_site(home, demo=True)


def measure_startup(home: Path, runs: int = 3) -> dict:
    env = {**os.environ, "VITAL_USER": DEMO_USER, "VITAL_PASSWORD": DEMO_PASSWORD, "QT_QPA_PLATFORM": "offscreen"}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vital_desktop.app", "--home", str(home), "--stage", "data",
                        "--quit-after-show"], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return {"runs_s": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3)}


def spin(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)


def measure_labeling(app, window, presses: int = 60) -> dict:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    window.go("canonical")
    tool = window.pages["canonical"]
    spin(app, 0.5)
    arrows = []
    for _ in range(presses):
        before = tool.item.item_ref
        start = time.perf_counter()
        QTest.keyClick(window, Qt.Key.Key_Right)
        while tool.item.item_ref == before:
            app.processEvents()
        tool.image_view.viewport().repaint()
        arrows.append(time.perf_counter() - start)
        spin(app, 0.15)
    arrow_misses = tool.image_misses
    saves, stored = [], []
    for i in range(max(10, presses // 3)):
        before = tool.item.item_ref
        QTest.keyClick(window, Qt.Key.Key_1 + (i % 5))
        start = time.perf_counter()
        QTest.keyClick(window, Qt.Key.Key_Return)
        while tool.item.item_ref == before:
            app.processEvents()
            time.sleep(0.0005)
        tool.image_view.viewport().repaint()
        saves.append(time.perf_counter() - start)
        while tool.saving:  # the save lands on the writer thread while the next image is shown
            app.processEvents()
            time.sleep(0.0005)
        stored.append(time.perf_counter() - start)
        spin(app, 0.15)
    return {"arrow_next_image": percentiles(arrows), "enter_save_and_next_image": percentiles(saves),
            "enter_to_label_stored": percentiles(stored),
            "image_misses_arrows": arrow_misses, "image_misses_total": tool.image_misses,
            "expert_pause_s": 0.15}


def make_big_sheet(store, actor, folder: Path, images: list[str], image_root: Path) -> str:
    from vital_desktop.services import sheets

    path = folder / "big.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["reading_id", "image_path", "value"])
        for i in range(BIG_ROWS):
            writer.writerow([f"R-{i:06d}", images[i % len(images)], i])
    sheets.import_sheet(store, actor=actor, name="Big sheet", metadata_path=path, key_column="reading_id",
                        image_root=image_root, image_column="image_path")
    return "Big sheet"


def measure_big_sheet(app, window, name: str) -> dict:
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer

    window.go("data")
    data = window.pages["data"]
    spin(app, 0.3)
    start = time.perf_counter()
    data.reload(select=name)
    model = data.model
    while model.index(0).data() in (None, "…"):
        app.processEvents()
    rows_shown = time.perf_counter() - start
    while model.index(0).data(Qt.ItemDataRole.DecorationRole) is None:
        app.processEvents()
        time.sleep(0.0005)
    thumbnail_shown = time.perf_counter() - start

    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def tick() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e9)
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    bar = data.grid.verticalScrollBar()
    steps = 100
    for step in range(steps + 1):
        bar.setValue(int(bar.maximum() * step / steps))
        spin(app, 0.03)
    spin(app, 0.5)
    timer.stop()
    return {"rows": model.rowCount(), "open_to_first_rows_ms": round(rows_shown * 1000, 1),
            "open_to_first_thumbnail_ms": round(thumbnail_shown * 1000, 1),
            "scroll_worst_gui_stall_ms": round(max(gaps) * 1000, 1),
            "scroll_p95_gap_ms": round(percentiles(gaps)["p95_ms"], 1), "timer_interval_ms": 5,
            "pages_loaded": model.pager.loaded_pages()}


def main() -> None:
    from PySide6.QtWidgets import QApplication

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "demo"
        started = time.perf_counter()
        build_demo(home)
        build_s = time.perf_counter() - started
        startup = measure_startup(home)

        from vital_desktop.app import build_main_window
        from vital_desktop.services import accounts, sheets
        from vital_desktop.services.demo_site import DEMO_SHEET
        from vital_desktop.store.db import open_store
        from vital_desktop.ui.theme import STYLE_SHEET

        app = QApplication.instance() or QApplication([])
        app.setStyle("Fusion")
        app.setStyleSheet(STYLE_SHEET)
        store = open_store(home)
        user = accounts.get_user(store, DEMO_USER)
        window = build_main_window(store, user, stage="data")
        window.resize(1360, 860)
        window.show()
        spin(app, 0.5)
        labeling = measure_labeling(app, window)
        demo = sheets.get_sheet(store, DEMO_SHEET)
        images = [item.image_path for item in sheets.list_items(store, DEMO_SHEET, limit=200) if item.image_path]
        started = time.perf_counter()
        name = make_big_sheet(store, user, Path(tmp), images, Path(demo.image_root))
        import_s = time.perf_counter() - started
        big = measure_big_sheet(app, window, name)
        window.close()
        store.close()
    write_report("ui", {
        "demo_site_build_s": round(build_s, 2),
        "startup_to_usable_window": startup,
        "labeling_key_to_next_image": labeling,
        "labeling_target_p95_ms": 50,
        "big_sheet": {**big, "import_s": round(import_s, 2)},
    })


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: PySide6 and duckdb objects finalised in a bad order can abort it
