"""Document items: import/extraction speed against a floor, and the Document Extraction template's
field accuracy with the embedded model.

    .venv/bin/python benchmarks/bench_documents.py [--pdfs 40] [--pages 5] [--texts 40] [--runs 5]
    .venv/bin/python benchmarks/bench_documents.py --accuracy [--home DIR]   # the demo's 8 reports
    .venv/bin/python benchmarks/bench_documents.py --telemetry-accuracy [--home DIR]   # 12 detector histories

Speed: a folder of generated PDFs (text on every page) and plain-text files is imported as a
document sheet (`item_import.import_documents`: hash, extract every page with pypdf, write the
items and their text in one transaction) into a fresh store, interleaved in the same run with
the floor — reading every file's bytes and hashing them (what any import must do). Medians of
`--runs`; the ratio is import / floor. Extraction alone (`documents.extract` per file) is timed
too, since it is the part the floor cannot include.

Accuracy: on a demo site (built in a temporary folder unless `--home` names one) the shipped
template answers each of the demo's compliance documents with the embedded GGUF, through the
template evaluation service; every field is scored by exact match (text fields after trimming
whitespace) against the canonical labels, the dose rate also by absolute error.
Telemetry accuracy: the Remaining Useful Life template on the demo's 12 detector histories (one
telemetry item each, the model reading the per-channel summary), scored by the evaluation
service against the labels the demo derives from its generator's failure flags.
Writes benchmarks/results/documents.json (speed), documents_accuracy.json and
telemetry_accuracy.json.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_report

LOREM = ("Sealed source inventory reviewed against the licence; leak test certificates on file; survey meter "
         "calibrated; boundary dose rates measured at the storage room door and the public corridor.")


def make_corpus(folder: Path, *, pdfs: int, pages: int, texts: int) -> int:
    """Generated documents under `folder`; returns the number of pages."""
    from vital_desktop.demo.pdf import LINES_PER_PAGE, write_pdf

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(pdfs):
        lines = [f"{i:04d}-{n:03d} {LOREM[: 60 + n % 40]}" for n in range(pages * LINES_PER_PAGE)]
        write_pdf(folder / f"report-{i:04d}.pdf", lines, title=f"Inspection report {i}")
    for i in range(texts):
        (folder / f"note-{i:04d}.txt").write_text("\n".join([LOREM] * 40) + "\n", encoding="utf-8")
    return pdfs * pages + texts


def floor(folder: Path) -> float:
    start = time.perf_counter()
    for path in sorted(folder.iterdir()):
        hashlib.sha256(path.read_bytes()).hexdigest()
    return time.perf_counter() - start


def extraction(folder: Path) -> float:
    from vital_desktop.services import documents

    start = time.perf_counter()
    for path in sorted(folder.iterdir()):
        documents.extract(path)
    return time.perf_counter() - start


def full_import(folder: Path, work: Path, run: int) -> float:
    from vital_desktop.core.users import SYSTEM_USER
    from vital_desktop.services import item_import
    from vital_desktop.store import open_store

    store = open_store(work / f"store-{run}")
    try:
        start = time.perf_counter()
        item_import.import_documents(store, actor=SYSTEM_USER, name="Bench", folder=folder)
        return time.perf_counter() - start
    finally:
        store.close()


def speed(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="vital-bench-docs-") as tmp:
        root = Path(tmp)
        folder = root / "docs"
        pages = make_corpus(folder, pdfs=args.pdfs, pages=args.pages, texts=args.texts)
        floors, extracts, imports = [], [], []
        full_import(folder, root, -1)  # warm-up: imports, first store
        for run in range(args.runs):  # interleaved: floor, extraction, import
            floors.append(floor(folder))
            extracts.append(extraction(folder))
            imports.append(full_import(folder, root, run))
        f, e, i = (statistics.median(x) for x in (floors, extracts, imports))
        files = args.pdfs + args.texts
        write_report("documents", {
            "what": "document sheet import (hash + pypdf extraction + one-transaction write) vs reading and hashing "
                    "the files, interleaved, medians",
            "files": files, "pages": pages, "pdfs": args.pdfs, "pages_per_pdf": args.pages, "texts": args.texts,
            "runs": args.runs,
            "floor_read_hash_s": round(f, 4), "extraction_s": round(e, 4), "import_s": round(i, 4),
            "import_pages_per_s": round(pages / i, 1), "extraction_pages_per_s": round(pages / e, 1),
            "floor_pages_per_s": round(pages / f, 1), "ratio_import_to_floor": round(i / f, 1),
            "samples": {"floor": floors, "extraction": extracts, "import": imports},
        })


def _norm(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def accuracy(args: argparse.Namespace) -> None:
    from vital_desktop.core.progress import Progress
    from vital_desktop.demo.documents import DOCUMENT_LABEL_TYPE, DOCUMENT_SHEET
    from vital_desktop.services import accounts, labels, site, template_eval
    from vital_desktop.store import open_store

    template = "Document Extraction - Compliance Reports"
    with tempfile.TemporaryDirectory(prefix="vital-bench-docs-acc-") as tmp:
        home = Path(args.home) if args.home else Path(tmp) / "demo"
        if not args.home:
            site.init_site(home, demo=True)
        store = open_store(home)
        try:
            actor = accounts.get_user(store, "engineer")
            start = time.perf_counter()
            info, _ = template_eval.evaluate_template(store, actor=actor, template=template, sheet=DOCUMENT_SHEET,
                                                      progress=Progress())
            seconds = time.perf_counter() - start
            truth = {x.item_ref: x.label_data for x in labels.labels_for_sheet(store, sheet=DOCUMENT_SHEET,
                                                                              label_type=DOCUMENT_LABEL_TYPE)}
            result = info.to_dict()
        finally:
            store.close()
    per_item = result["details"]["per_item"]
    fields = sorted({k for data in truth.values() for k in data})
    exact: dict[str, float] = {}
    for name in fields:
        hits = [(_norm((item.get("answer") or {}).get(name)) == _norm(truth[item["item_ref"]].get(name)))
                for item in per_item]
        exact[name] = round(sum(hits) / len(hits), 3) if hits else 0.0
    errors = [abs(float((item.get("answer") or {}).get("max_dose_rate_usv_h", 0.0)) -
                  float(truth[item["item_ref"]]["max_dose_rate_usv_h"])) for item in per_item if item.get("answer")]
    write_report("documents_accuracy", {
        "what": "Document Extraction template on the demo's compliance documents with the embedded GGUF "
                "(SmolLM2-135M-Instruct), every field by exact match against the canonical labels",
        "template": template, "items": len(per_item), "model": result.get("model"),
        "schema_valid_rate": result["score"]["schema_valid_rate"],
        "field_exact_match": exact,
        "mean_field_exact_match": round(statistics.fmean(exact.values()), 3) if exact else None,
        "dose_rate_mean_abs_error_usv_h": round(statistics.fmean(errors), 3) if errors else None,
        "evaluation_service_score": result["score"], "seconds": round(seconds, 1),
        "answers": [{"item_ref": i["item_ref"], "answer": i.get("answer"), "truth": truth[i["item_ref"]]}
                    for i in per_item],
    })


def telemetry_accuracy(args: argparse.Namespace) -> None:
    from vital_desktop.core.progress import Progress
    from vital_desktop.services import accounts, site, template_eval
    from vital_desktop.services.demo_site import DEMO_HISTORY_SHEET
    from vital_desktop.store import open_store

    template = "Remaining Useful Life - Detector History"
    with tempfile.TemporaryDirectory(prefix="vital-bench-rul-") as tmp:
        home = Path(args.home) if args.home else Path(tmp) / "demo"
        if not args.home:
            site.init_site(home, demo=True)
        store = open_store(home)
        try:
            info, _ = template_eval.evaluate_template(store, actor=accounts.get_user(store, "engineer"),
                                                      template=template, sheet=DEMO_HISTORY_SHEET, progress=Progress())
        finally:
            store.close()
    result = info.to_dict()
    answers = [i.get("answer") or {} for i in result["details"]["per_item"]]
    actions = sorted({a.get("action") for a in answers if a})
    write_report("telemetry_accuracy", {
        "what": "Remaining Useful Life template on the demo's detector histories (telemetry items) with the embedded "
                "GGUF, scored against the demo's labels from its failure flags",
        "template": template, "model": result.get("model"), "score": result["score"],
        "distinct_actions_answered": actions,
        "per_item": [{"item_ref": i["item_ref"], "answer": i.get("answer"), "correct": i.get("correct")}
                     for i in result["details"]["per_item"]],
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=int, default=40)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--texts", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--accuracy", action="store_true", help="measure the demo template's field accuracy")
    parser.add_argument("--telemetry-accuracy", action="store_true",
                        help="measure the demo telemetry template's accuracy on the detector histories")
    parser.add_argument("--home", default=None, help="with --accuracy: an existing demo site (else a fresh one)")
    args = parser.parse_args()
    if args.telemetry_accuracy:
        telemetry_accuracy(args)
    elif args.accuracy:
        accuracy(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
