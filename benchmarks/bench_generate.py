"""Generation and review at scale → benchmarks/results/generate.json.

0. Peak memory of a 100,000-item generation (AI off, the fast path, so it runs in minutes), in a
   subprocess that opens the store and generates; the floor is the same subprocess opening the
   store and reading the sheet's summary without generating (imports + DuckDB + the store's pages).
   Generation streams pending items in pages, so the peak should sit near the floor.
L. The language model on the demo's image template with the demo classifier's evidence: per-item
   latency and items/s at 1 and 2 llama.cpp threads (interleaved item by item, medians of
   `--llm-items` >= 5 answers each), the share of each prompt the runtime had cached, the
   schema-valid rate, and the share of each answer's time spent on the per-field confidence (the
   token-probability scoring, timed inside the answer).

1. A training sheet of N items (default 100,000) of which half have canonical labels, AI off:
   seconds end to end (service call: planning, canonical join, rendering, Arrow batches) and items/s.
   Repeated `--repeats` times; the median is reported.
2. The same with the demo's ONNX classifier pre-labeling the unlabeled half, on
   `--classifier-items` items (default 5,000: on 2 shared cores the classifier runs at ~100
   images/s, so 50,000 classifications would take ~10 minutes); items/s is comparable.
3. Bulk approve of 10,000 pre-labels (preview, then one transaction that writes 10,000
   canonical labels and updates 10,000 pairs). The proposals are written into an AI-off
   training sheet by SQL (answer + confidence) so that setup does not take minutes of
   classification; the approve path does not depend on where a proposal came from.

The sheet is built from the demo site: the rows cycle over the 500 demo images (image files are
shared between rows, which changes nothing for generation). Setup time is not measured.

    python benchmarks/bench_generate.py [--items 100000] [--repeats 3] [--classifier] [--llm-items 6]
                                        [--sections memory,llm,ai_off,bulk]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vital_desktop.services import accounts, demo_site, generate, labels, review, sheets, site
from vital_desktop.store import open_store

TEMPLATE = "Defect Classification - Visual Inspection"
COLUMNS = ["inspection_id", "image_path", "detector_serial", "crystal_batch_id", "temperature_c", "humidity_percent",
           "inspector_id", "inspection_timestamp"]


def _write_sheet_csv(path: Path, demo_rows: list[dict], n: int) -> list[str]:
    refs = []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for i in range(n):
            row = dict(demo_rows[i % len(demo_rows)])
            row["inspection_id"] = f"B-{i:07d}"
            refs.append(row["inspection_id"])
            writer.writerow({k: row[k] for k in COLUMNS})
    return refs


def _write_labels_csv(path: Path, sheet: str, refs: list[str]) -> None:
    kinds = ["inclusion", "crack", "delamination", "surface_contamination", "none"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sheet", "item_ref", "label_type", "label_data"])
        for i, ref in enumerate(refs):
            kind = kinds[i % len(kinds)]
            writer.writerow([sheet, ref, "classification",
                             json.dumps({"defect_type": kind, "severity": "none" if kind == "none" else "minor"})])


def _timed_generation(store, actor, sheet: str, name: str, ai_mode: str) -> tuple[float, generate.GenerationResult]:
    started = time.perf_counter()
    result, _ = generate.generate_training_sheet(store, actor=actor, sheet=sheet, template=TEMPLATE, name=name,
                                                 ai_mode=ai_mode)
    return time.perf_counter() - started, result


_PEAK_CHILD = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from vital_desktop.services import accounts, generate
from vital_desktop.store import open_store
store = open_store(Path(sys.argv[2]))
engineer = accounts.get_user(store, "engineer")
started = time.perf_counter()
written = 0
if sys.argv[3] == "generate":
    result, _ = generate.generate_training_sheet(store, actor=engineer, sheet="Bench", template=sys.argv[4],
                                                 name="memory probe", ai_mode="none")
    written = result.written
else:
    generate.list_training_sheets(store)
store.close()
print(json.dumps({"written": written, "seconds": round(time.perf_counter() - started, 2),
                  # VmHWM: this process image's own peak (ru_maxrss would include the parent's at fork)
                  "peak_mb": round(int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024.0, 1)}))
"""


def _peak(home: Path, what: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _PEAK_CHILD, str(ROOT), str(home), what, TEMPLATE],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_memory(home: Path) -> dict:
    """Peak RSS of a whole-sheet generation vs the floor (open the store, no generation), in subprocesses."""
    floor_before = _peak(home, "floor")
    run = _peak(home, "generate")
    floor_after = _peak(home, "floor")  # the store now also holds the 100k pairs
    floor = max(floor_before["peak_mb"], floor_after["peak_mb"])
    print(f"memory: generation peak {run['peak_mb']:.0f} MB ({run['written']} pairs in {run['seconds']} s), "
          f"floor {floor_before['peak_mb']:.0f} / {floor_after['peak_mb']:.0f} MB", flush=True)
    return {"generation": run, "floor_before": floor_before, "floor_after": floor_after,
            "peak_mb": run["peak_mb"], "over_floor_mb": round(run["peak_mb"] - floor, 1),
            "target_mb": 400, "before_this_change_mb": "1,300-2,000 (issue 18)"}


def bench_llm(store, items: int) -> dict:
    """The demo image template with classifier evidence, at 1 and 2 threads, interleaved item by item."""
    from vital_desktop.inference.llm import get_llm
    from vital_desktop.services import llm_answer, predict, templates

    info = templates.get_template(store, TEMPLATE)
    sheet = sheets.get_sheet(store, demo_site.DEMO_SHEET)
    page = sheets.list_items(store, demo_site.DEMO_SHEET, limit=items + 1)
    rows = [(i.item_ref, dict(i.metadata), i.absolute_image_path) for i in page][: items + 1]
    runners = {t: llm_answer.TemplateRunner(store, info, llm=get_llm(n_ctx=predict.llm_context(store), threads=t))
               for t in (1, 2)}
    assert all(r.evidence is not None for r in runners.values()), "the demo site should have an active classifier"
    out: dict = {"template": info.ref, "sheet": sheet.name, "evidence": "demo classifier (calibrated probabilities + "
                 "occlusion summary)", "items_per_thread_count": items}
    samples: dict[int, list] = {1: [], 2: []}
    for runner in runners.values():  # warm-up: load the model, fill the cache with the shared start
        runner.answer(*rows[0])
    for ref, data, image in rows[1:]:
        for t, runner in runners.items():  # interleaved item by item: both see the same machine load
            answer = runner.answer(ref, data, image, classifier=runner.evidence_for([image])[0])
            samples[t].append(answer)
            print(f"  {t} thread(s) {ref}: {answer.seconds:.2f} s (confidence scoring {answer.scoring_seconds:.2f} s), "
                  f"{answer.cached_tokens}/{answer.prompt_tokens} cached, valid {answer.schema_valid}, "
                  f"conf {answer.field_confidence}", flush=True)
    for t in (1, 2):
        seconds = [a.seconds for a in samples[t]]
        median = statistics.median(seconds)
        out[f"threads_{t}"] = {
            "answers": len(seconds), "seconds_per_item": [round(x, 3) for x in seconds],
            "median_seconds_per_item": round(median, 3), "items_per_second": round(1.0 / median, 3),
            "median_confidence_scoring_seconds": round(statistics.median(a.scoring_seconds for a in samples[t]), 3),
            "confidence_scoring_share": round(statistics.median(a.scoring_seconds / a.seconds for a in samples[t]), 3),
            "prompt_tokens_median": statistics.median(a.prompt_tokens for a in samples[t]),
            "cached_tokens_median": statistics.median(a.cached_tokens for a in samples[t]),
            "cached_share_median": round(statistics.median(a.cached_tokens / a.prompt_tokens for a in samples[t]), 3),
            "schema_valid_rate": round(sum(a.schema_valid for a in samples[t]) / len(samples[t]), 3),
            "answers_with_field_confidence": sum(bool(a.field_confidence) for a in samples[t]),
            "field_confidences": [a.field_confidence for a in samples[t]],
        }
    out["ratio_2_threads_to_1"] = round(out["threads_2"]["median_seconds_per_item"]
                                        / out["threads_1"]["median_seconds_per_item"], 3)
    return out


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bulk", type=int, default=10_000)
    parser.add_argument("--classifier-items", type=int, default=5_000)
    parser.add_argument("--classifier", action="store_true", help="also time the classifier pre-label section")
    parser.add_argument("--llm-items", type=int, default=6)
    parser.add_argument("--sections", default="memory,llm,ai_off,bulk")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "generate.json")
    args = parser.parse_args()
    sections = set(args.sections.split(","))

    work = Path(tempfile.mkdtemp(prefix="vital-bench-generate-"))
    t0 = time.perf_counter()
    site.init_site(work / "home", demo=True)
    store = open_store(work / "home")
    engineer = accounts.get_user(store, "engineer")
    inspector = accounts.get_user(store, "inspector")
    demo_sheet = sheets.get_sheet(store, demo_site.DEMO_SHEET)
    with open(demo_sheet.metadata_path, newline="", encoding="utf-8") as handle:
        demo_rows = list(csv.DictReader(handle))

    big_csv = work / "bench_records.csv"
    refs = _write_sheet_csv(big_csv, demo_rows, args.items)
    sheets.import_sheet(store, actor=engineer, name="Bench", metadata_path=big_csv, key_column="inspection_id",
                        image_root=demo_sheet.image_root, image_column="image_path")
    labels_csv = work / "bench_labels.csv"
    _write_labels_csv(labels_csv, "Bench", refs[::2])
    labels.import_labels(store, actor=inspector, path=labels_csv)
    setup_s = time.perf_counter() - t0
    print(f"setup {setup_s:.1f} s ({args.items} items, {len(refs[::2])} canonical labels)", flush=True)

    report: dict = {
        "benchmark": "generate", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": _git_commit(),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_at_start": list(os.getloadavg())},
        "items": args.items, "canonical_labels": len(refs[::2]), "setup_seconds": round(setup_s, 1),
    }

    if "llm" in sections:
        report["llm"] = bench_llm(store, max(5, args.llm_items))
    if "memory" in sections:
        store.close()
        report["memory"] = bench_memory(work / "home")
        store = open_store(work / "home")
        engineer = accounts.get_user(store, "engineer")
        inspector = accounts.get_user(store, "inspector")

    # 1. AI off
    runs = []
    for repeat in range(args.repeats if "ai_off" in sections else 0):
        seconds, result = _timed_generation(store, engineer, "Bench", f"bench none {repeat}", "none")
        assert result.summary.pre_approved == len(refs[::2]) and result.summary.generated == args.items
        runs.append(seconds)
        print(f"AI off run {repeat + 1}: {seconds:.2f} s ({args.items / seconds:,.0f} items/s)", flush=True)
    if runs:
        median = statistics.median(runs)
        report["ai_off"] = {"runs_seconds": [round(r, 3) for r in runs], "median_seconds": round(median, 3),
                            "items_per_second": round(args.items / median)}

    # 2. classifier on (the unlabeled half is classified), on a smaller sheet of the same shape
    if not args.classifier:
        report["classifier_on"] = {"skipped": True}
    else:
        n = args.classifier_items
        small_csv = work / "classifier_records.csv"
        small_refs = _write_sheet_csv(small_csv, demo_rows, n)
        sheets.import_sheet(store, actor=engineer, name="BenchC", metadata_path=small_csv, key_column="inspection_id",
                            image_root=demo_sheet.image_root, image_column="image_path")
        _write_labels_csv(work / "classifier_labels.csv", "BenchC", small_refs[::2])
        labels.import_labels(store, actor=inspector, path=work / "classifier_labels.csv")
        off_s, _ = _timed_generation(store, engineer, "BenchC", "benchC none", "none")
        seconds, result = _timed_generation(store, engineer, "BenchC", "benchC classifier", "classifier")
        assert result.summary.pre_approved == len(small_refs[::2])
        report["classifier_on"] = {
            "items": n, "classified_items": n - len(small_refs[::2]),
            "seconds": round(seconds, 3), "items_per_second": round(n / seconds),
            "classified_per_second": round((n - len(small_refs[::2])) / seconds),
            "ai_off_seconds_same_sheet": round(off_s, 3), "ratio_to_ai_off": round(seconds / off_s, 2),
        }
        print(f"classifier on ({n} items): {seconds:.2f} s vs AI off {off_s:.2f} s", flush=True)

    # 3. bulk approve of `--bulk` pre-labels
    if "bulk" in sections:
        _bench_bulk(report, store, engineer, inspector, demo_rows, work, args.bulk)
    report["load_average_at_end"] = list(os.getloadavg())
    store.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def _bench_bulk(report: dict, store, engineer, inspector, demo_rows: list[dict], work: Path, bulk: int) -> None:
    demo_sheet = sheets.get_sheet(store, demo_site.DEMO_SHEET)
    bulk_csv = work / "bulk_records.csv"
    _write_sheet_csv(bulk_csv, demo_rows, bulk)
    sheets.import_sheet(store, actor=engineer, name="Bulk", metadata_path=bulk_csv, key_column="inspection_id",
                        image_root=demo_sheet.image_root, image_column="image_path")
    generate.generate_training_sheet(store, actor=engineer, sheet="Bulk", template=TEMPLATE, name="bulk")
    info = generate.get_training_sheet(store, "bulk")
    with store.session() as s:
        s.connection().exec_driver_sql(
            "UPDATE qa_pairs SET source = 'classifier', confidence = 0.5 + (position % 50) / 100.0, "
            "answer = CAST('{\"defect_type\": \"crack\", \"severity\": \"minor\", \"confidence\": 0.9}' AS JSON) "
            f"WHERE training_sheet_id = '{info.id}'")
    started = time.perf_counter()
    preview = review.preview_bulk(store, actor=inspector, training_sheet="bulk", action="approve", threshold=0.0)
    preview_s = time.perf_counter() - started
    started = time.perf_counter()
    result, _ = review.bulk_action(store, actor=inspector, training_sheet="bulk", action="approve", threshold=0.0,
                                   expected_count=preview.count)
    approve_s = time.perf_counter() - started
    assert result.done == preview.count == bulk and result.labels_created == bulk
    report["bulk_approve"] = {"pairs": result.done, "preview_seconds": round(preview_s, 3),
                              "approve_seconds": round(approve_s, 3),
                              "pairs_per_second": round(result.done / approve_s)}
    print(f"bulk approve {result.done}: preview {preview_s:.2f} s, approve {approve_s:.2f} s", flush=True)


if __name__ == "__main__":
    main()
