"""Generation streams pending items: trial runs (--limit), per-item progress with rate, constant memory.

The memory test runs each generation in its own subprocess and reads that process's peak RSS.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import snapshot_tables
from tests.services.test_templates_review import SPEC, FakePrelabeler
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.progress import Progress
from vital_desktop.services import generate, labels, review, templates


@pytest.fixture
def site(small_site):
    engineer = small_site.user("engineer")
    templates.create_template(small_site.store, actor=engineer, spec=SPEC)
    templates.publish_template(small_site.store, actor=engineer, ref="Crystal check@1.0.0")
    return small_site


class _CountingPrelabeler(FakePrelabeler):
    """The fake pre-labeler, advancing the progress per item as slow pre-labelers do."""

    def prelabel(self, requests, progress):
        out = []
        for request in requests:
            out += super().prelabel([request], progress)
            progress.advance(1)
        return out


def test_a_trial_run_prelabels_only_the_first_n_items_and_resume_continues(site, monkeypatch) -> None:
    store, engineer = site.store, site.user("engineer")
    labels.set_label(store, actor=engineer, sheet="Crystals", item_ref="INS-0001", label_type="classification",
                     label_data={"defect_type": "none"})
    monkeypatch.setitem(generate.BATCH_SIZES, "llm", 2)  # several pages
    seen: list = []
    progress = Progress(on_update=seen.append, min_interval_s=0.0)
    result, _ = generate.generate_training_sheet(store, actor=engineer, sheet="Crystals", template="Crystal check",
                                                 name="trial", ai_mode="llm", limit=3, progress=progress,
                                                 prelabeler=_CountingPrelabeler())
    pairs = review.list_pairs(store, training_sheet="trial", limit=None)
    # INS-0000, INS-0002, INS-0003 needed a pre-label; INS-0001 (canonical) lies before the third one.
    assert [p.item_ref for p in pairs] == ["INS-0000", "INS-0001", "INS-0002", "INS-0003"]
    assert [p.source for p in pairs] == ["llm", "canonical", "llm", "llm"]
    assert result.written == 4 and result.training_sheet.status == "partial"
    # Progress counted this run's 4 items, moved one item at a time, and said the rate.
    done = [s.done for s in seen]
    assert seen[0].total == 4 and done == sorted(done) and {1, 2, 3, 4} <= set(done)
    assert any("items/s" in s.message for s in seen)
    # Resume continues the rest (a new limit may be given, or none).
    result, _ = generate.generate_training_sheet(store, actor=engineer, sheet=None, template=None, name="trial",
                                                 resume=True, prelabeler=FakePrelabeler())
    assert result.written == 8 and result.training_sheet.status == "complete"
    assert [p.item_ref for p in review.list_pairs(store, training_sheet="trial", limit=None)] == [
        f"INS-{i:04d}" for i in range(12)]


def test_a_limit_that_is_not_a_positive_whole_number_is_refused(site) -> None:
    store, engineer = site.store, site.user("engineer")
    before = snapshot_tables(store)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValidationError, match="--limit"):
            generate.generate_training_sheet(store, actor=engineer, sheet="Crystals", template="Crystal check",
                                             name="bad", ai_mode="none", limit=bad)  # type: ignore[arg-type]
    assert snapshot_tables(store) == before


# --- constant memory ---------------------------------------------------------------------------

TEXT_SPEC = {**SPEC, "name": "Batch check", "few_shot": [], "user_prompt": "Batch {{crystal_batch_id}}, {{note}}.",
             "input_schema": {"type": "object", "properties": {"crystal_batch_id": {"type": "string"},
                                                               "note": {"type": "string"}}}}


def build_site(home: Path, items: int) -> None:
    """A site with one metadata-only sheet of `items` rows and a published text template."""
    from vital_desktop.core.users import SYSTEM_USER
    from vital_desktop.services import accounts, sheets
    from vital_desktop.services.demo_site import seed_demo_label_types
    from vital_desktop.store import open_store

    home.mkdir(parents=True, exist_ok=True)
    metadata = home.parent / f"rows-{items}.csv"
    with open(metadata, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["inspection_id", "crystal_batch_id", "note"])
        for i in range(items):
            writer.writerow([f"INS-{i:07d}", f"XL-{i % 7}", f"reading {i} " + "x" * 120])
    store = open_store(home)
    try:
        seed_demo_label_types(store)
        accounts.add_user(store, actor=SYSTEM_USER, username="eng", password="engineer-pass", role="engineer")
        engineer = accounts.get_user(store, "eng")
        sheets.import_sheet(store, actor=engineer, name="Rows", metadata_path=metadata, key_column="inspection_id")
        templates.create_template(store, actor=engineer, spec=TEXT_SPEC)
        templates.publish_template(store, actor=engineer, ref="Batch check")
    finally:
        store.close()


def generate_and_report(home: str, limit: str) -> None:
    """Subprocess body: generate (AI off) and print the pairs written and this process's peak RSS in MB.

    The peak is VmHWM (this process image's own high-water mark): `getrusage`'s ru_maxrss would carry
    over the parent's peak at fork time (the test runner's).
    """
    from vital_desktop.services import accounts
    from vital_desktop.store import open_store

    store = open_store(Path(home))
    try:
        engineer = accounts.get_user(store, "eng")
        result, _ = generate.generate_training_sheet(store, actor=engineer, sheet="Rows", template="Batch check",
                                                     name="all", ai_mode="none",
                                                     limit=int(limit) if int(limit) else None)
    finally:
        store.close()
    status = Path("/proc/self/status").read_text()
    peak_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024.0
    print(json.dumps({"written": result.written, "peak_mb": round(peak_mb, 1)}))


def _run(home: Path, limit: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                         os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", "import sys; from tests.services.test_generate_stream import "
                           "generate_and_report as g; g(sys.argv[1], sys.argv[2])", str(home), str(limit)],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc (Linux)")
def test_generation_memory_does_not_grow_with_the_number_of_items(tmp_path) -> None:
    build_site(tmp_path / "big" / "home", 20_000)
    shutil.copytree(tmp_path / "big", tmp_path / "small", symlinks=True)
    small = _run(tmp_path / "small" / "home", 1_000)  # same store, a trial run of 1,000 items
    big = _run(tmp_path / "big" / "home", 0)  # all 20,000
    assert small["written"] == 1_000 and big["written"] == 20_000
    # Holding every pending row (the old way) costs ~10 kB per item here, i.e. ~190 MB more for the big run.
    assert big["peak_mb"] - small["peak_mb"] < 60, (small, big)


def test_the_store_memory_limit_is_lowered_only_while_generating(site) -> None:
    store, engineer = site.store, site.user("engineer")

    def limit() -> str:
        with store.read() as s:
            return str(s.connection().exec_driver_sql("SELECT current_setting('memory_limit')").scalar())

    before = limit()
    seen: list[str] = []

    class Watching(FakePrelabeler):
        def prelabel(self, requests, progress):
            seen.append(limit())
            return super().prelabel(requests, progress)

    generate.generate_training_sheet(store, actor=engineer, sheet="Crystals", template="Crystal check", name="ts",
                                     ai_mode="llm", prelabeler=Watching())
    assert seen and all(v != before for v in seen)
    assert limit().split()[0][:3] == before.split()[0][:3]  # restored (DuckDB rounds the text it reports)
