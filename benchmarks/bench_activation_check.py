"""What the check before activating a classifier costs: both models on the held-out labelled items.

    python -m benchmarks.bench_activation_check [--repeats 7]   → benchmarks/results/activation_check.json

On a fresh demo site: v1 trained on the demo sheet and activated, v2 retrained with another seed.
Interleaved in the same process, medians of `--repeats`: (a) `activation_check.compare_with_active`
for v2 (lineage, held-out items, both classifiers loaded and run), (b) the floor: one model run on
the same items (`training.evaluate_models` with v2 alone). The ratio (a)/(b) is near 2 when the
check costs no more than running the two models.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    from vital_desktop.services import accounts, activation_check, deploy, site, training
    from vital_desktop.services.demo_site import DEMO_SHEET
    from vital_desktop.store.db import open_store

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "demo"
        site.init_site(home, demo=True)
        store = open_store(home)
        engineer = accounts.get_user(store, "engineer")
        v1, _ = training.train_classifier(store, actor=engineer, name="bench-classifier", sheet=DEMO_SHEET)
        deploy.activate(store, actor=engineer, model=v1.model_id)
        v2, _ = training.train_classifier(store, actor=engineer, name="bench-classifier", sheet=DEMO_SHEET, seed=7)
        check = activation_check.compare_with_active(store, model=v2.model_id)  # warm: imports, caches
        assert check is not None and check.not_compared is None, check
        compare_s, floor_s = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            activation_check.compare_with_active(store, model=v2.model_id)
            compare_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            training.evaluate_models(store, models=[v2.model_id], sheet=DEMO_SHEET)
            floor_s.append(time.perf_counter() - started)
        store.close()
    compare, floor = statistics.median(compare_s), statistics.median(floor_s)
    report = {
        "held_out_items": check.items, "repeats": args.repeats, "check": check.to_dict(),
        "compare_with_active_s_median": round(compare, 4), "one_model_on_the_same_items_s_median": round(floor, 4),
        "ratio_check_over_one_model": round(compare / floor, 2),
        "check_ms_per_item": round(compare * 1000 / check.items, 2),
        "samples": {"compare_s": compare_s, "one_model_s": floor_s},
    }
    path = write_report("activation_check", report)
    print(f"{check.items} items: check {compare * 1000:.0f} ms, one model {floor * 1000:.0f} ms "
          f"({compare / floor:.2f}x); {path}")


if __name__ == "__main__":
    main()
