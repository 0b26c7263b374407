"""MONITOR: the figures computed by SQL over the prediction log, checked against numpy on the same rows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from vital_desktop.core.errors import PermissionDenied, ValidationError
from vital_desktop.core.ids import new_id
from vital_desktop.inference.classifier import ImageStats
from vital_desktop.services import labels, monitor, training
from vital_desktop.store.bulk import insert_arrow
from vital_desktop.store.models import ModelRow, Sheet

CLASSES = ["crack", "inclusion", "none"]
DAY0 = dt.datetime(2024, 3, 1, 8, 0, 0)


def _model(store, rng: np.random.Generator) -> str:
    """A registered classifier whose card holds a training baseline of 300 images (256x256)."""
    stats = [ImageStats(float(m), float(s), 256, 256)
             for m, s in zip(rng.normal(130, 8, 300), rng.normal(7, 1, 300), strict=True)]
    baseline = training.baseline_statistics(stats, list(rng.choice(CLASSES, 300, p=[0.3, 0.3, 0.4])))
    model_id = new_id()
    with store.session() as s:
        s.add(ModelRow(id=model_id, name="watched", version=1, kind="onnx_classifier", path="/nonexistent.onnx",
                       file_sha256="0" * 64, size_bytes=1, classes=CLASSES,
                       card={"baseline": baseline, "metrics": {"accuracy": 0.95}}, created_by="engineer"))
    return model_id


def _log(store, model_id: str, rows: list[dict]) -> None:
    base = {"id": None, "model_id": model_id, "model_name": "watched", "model_version": 1, "kind": "onnx_classifier",
            "output": "{}", "created_by": "inspector"}
    with store.session() as s:
        insert_arrow(s, "predictions", pa.Table.from_pylist([base | {"id": new_id()} | r for r in rows]),
                     casts={"output": "JSON"})


def _rows(rng: np.random.Generator, n: int, *, day: int = 0, width: int = 256, mean_shift: float = 0.0,
          sheet_id: str | None = None, items: list[str] | None = None, classes=None) -> list[dict]:
    out = []
    for i in range(n):
        out.append({
            "sheet_id": sheet_id, "item_ref": items[i % len(items)] if items else None,
            "predicted_class": (classes or CLASSES)[i % len(classes or CLASSES)],
            "confidence": float(rng.uniform(0.3, 1.0)), "latency_ms": float(rng.gamma(2.0, 4.0)),
            "image_mean": float(rng.normal(130 + mean_shift, 8)), "image_std": float(rng.normal(7, 1)),
            "image_width": width, "image_height": width, "created_at": DAY0 + dt.timedelta(days=day, minutes=i),
        })
    return out


def test_figures_match_numpy_and_accuracy_joins_labels(small_site) -> None:
    store, rng = small_site.store, np.random.default_rng(3)
    model_id = _model(store, rng)
    with store.read() as s:
        sheet_id = s.query(Sheet).one().id
    # Expert labels for 3 items; day 0 predicts them right, day 1 gets one of three wrong.
    for ref, cls in (("INS-0000", "crack"), ("INS-0001", "inclusion"), ("INS-0002", "none")):
        labels.set_label(store, actor=small_site.user("inspector"), sheet="Crystals", item_ref=ref,
                         label_type="classification", label_data={"defect_type": cls})
    day0 = _rows(rng, 150, day=0, sheet_id=sheet_id, items=["INS-0000", "INS-0001", "INS-0002"])
    day1 = _rows(rng, 150, day=1, sheet_id=sheet_id, items=["INS-0000", "INS-0001", "INS-0002"],
                 classes=["crack", "crack", "none"])
    unlabelled = _rows(rng, 100, day=1)
    _log(store, model_id, day0 + day1 + unlabelled)
    everything = day0 + day1 + unlabelled

    report = monitor.monitor_report(store, model="watched@1")
    assert report.predictions == 400 and report.errors == 0
    assert [(d["day"], d["labelled"], d["correct"]) for d in report.accuracy["daily"]] == [
        ("2024-03-01", 150, 150), ("2024-03-02", 150, 100)]
    assert report.accuracy["overall"] == pytest.approx(250 / 300, abs=1e-4)
    latencies = np.array([r["latency_ms"] for r in everything])
    for key, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        assert report.latency_ms[key] == pytest.approx(np.percentile(latencies, q), abs=1e-3)
    confidences = np.array([r["confidence"] for r in everything])
    expected_hist = np.bincount(np.minimum((confidences * 10).astype(int), 9), minlength=10)
    assert [b["count"] for b in report.confidence_histogram] == expected_hist.tolist()
    assert report.low_confidence_fraction == pytest.approx((confidences < 0.6).mean(), abs=1e-4)
    counts = {c["class"]: c["count"] for c in report.class_distribution}
    assert counts == {c: sum(r["predicted_class"] == c for r in everything) for c in CLASSES}
    # Same distribution as the baseline: no input drift alert, the method is named.
    assert report.drift["available"] and "PSI" in report.drift["method"] and "Kolmogorov" in report.drift["method"]
    assert report.drift["statistics"]["image_mean"]["psi"] < 0.1
    assert not [a for a in report.alerts if a.metric in ("image_mean", "image_std", "resolution")]
    # A window selects by time.
    assert monitor.monitor_report(store, model="watched", since="2024-03-02").predictions == 250


def test_resolution_change_and_brightness_drift_raise_recorded_alerts(small_site) -> None:
    store, rng = small_site.store, np.random.default_rng(5)
    model_id = _model(store, rng)
    _log(store, model_id, _rows(rng, 200) + _rows(rng, 200, day=1, width=512, mean_shift=25.0))
    report = monitor.monitor_report(store, model=model_id, record_alerts=True, actor=small_site.user("engineer"))
    by_metric = {a.metric: a for a in report.alerts}
    assert "256x256 → 512x512" in by_metric["resolution"].message
    assert by_metric["image_mean"].value > 0.25 and report.drift["statistics"]["image_mean"]["ks_pvalue"] < 1e-6
    assert report.alerts_recorded == len(report.alerts)
    recorded = monitor.list_alerts(store, model="watched@1")
    assert {a.metric for a in recorded} == set(by_metric)
    # Within the cooldown the same alerts are not recorded twice.
    again = monitor.monitor_report(store, model=model_id, record_alerts=True)
    assert again.alerts and again.alerts_recorded == 0


def test_thresholds_are_settings_and_change_alerts(small_site) -> None:
    store, rng = small_site.store, np.random.default_rng(9)
    model_id = _model(store, rng)
    _log(store, model_id, _rows(rng, 150))
    assert not [a for a in monitor.monitor_report(store, model=model_id).alerts if a.kind == "latency"]
    with pytest.raises(PermissionDenied):
        monitor.set_thresholds(store, actor=small_site.user("inspector"), latency_p95_ms=1.0)
    with pytest.raises(ValidationError, match="unknown monitor threshold"):
        monitor.set_thresholds(store, actor=small_site.user("engineer"), latency_p95=1.0)
    monitor.set_thresholds(store, actor=small_site.user("engineer"), latency_p95_ms=1.0)
    assert monitor.get_thresholds(store).latency_p95_ms == 1.0
    alerts = monitor.monitor_report(store, model=model_id).alerts
    assert [a.kind for a in alerts if a.kind == "latency"] == ["latency"]


def test_model_without_baseline_reports_drift_unavailable(small_site) -> None:
    store = small_site.store
    with store.session() as s:
        s.add(ModelRow(name="imported", version=1, kind="onnx_classifier", path="/x.onnx", file_sha256="1" * 64,
                       size_bytes=1, classes=CLASSES, card={}, created_by="engineer"))
    report = monitor.monitor_report(store, model="imported")
    assert report.predictions == 0 and report.drift["available"] is False and report.alerts == ()


def test_psi_and_noise_floor() -> None:
    assert monitor.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert monitor.psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * np.log(1.8) + 0.4 * np.log(5.0))
    assert monitor.noise_floor(10, 100, 100) == pytest.approx(0.18)
