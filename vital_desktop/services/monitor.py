"""MONITOR stage: what the prediction log says about a deployed classifier.

Every figure is one aggregate SQL query over `predictions` run by DuckDB (no Python loop over
rows), so the page stays fast on a log of millions of rows (benchmarks/bench_monitor.py):

- accuracy per day, where an expert's canonical label exists for the predicted item
  (predictions joined to `canonical_labels` on sheet, item and label type);
- the confidence histogram, the predicted-class distribution, latency p50/p95/p99;
- drift against the training baseline stored in the model card at training time:
  the Population Stability Index (PSI) over the baseline's quantile bins for the image mean and
  standard deviation, over categories for the image resolution and the predicted-class mix,
  and a two-sample Kolmogorov-Smirnov test of the continuous statistics (production side: a
  reservoir sample of at most 10,000 rows);
- alerts against thresholds kept in the `settings` table, recorded in `monitor_alerts`.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.ids import iso, utcnow
from vital_desktop.core.users import SYSTEM_USER, User
from vital_desktop.services.accounts import require
from vital_desktop.services.training import held_out_metrics, resolve_model
from vital_desktop.store import audit
from vital_desktop.store.bulk import raw_connection
from vital_desktop.store.db import Store
from vital_desktop.store.models import MonitorAlert, Setting

SETTING_THRESHOLDS = "monitor.thresholds"
PSI_EPSILON = 1e-4
KS_SAMPLE_ROWS = 10_000
CONFIDENCE_BINS = 10
DRIFT_METHOD = (
    "PSI = sum((p - q) * ln(p / q)) over the training baseline's 10 quantile bins (continuous statistics) or "
    "categories (resolution, predicted class), fractions floored at 1e-4; plus a two-sample Kolmogorov-Smirnov "
    "test (scipy.stats.ks_2samp) of the continuous statistics on a reservoir sample of at most 10,000 predictions"
)


@dataclass(frozen=True)
class MonitorThresholds:
    """Alert thresholds; a site changes them with `set_thresholds` (stored in `settings`)."""

    psi_alert: float = 0.25  # PSI above this is an alert (0.1-0.25 is the usual "watch" band)
    psi_warning: float = 0.10
    accuracy_min: float = 0.85
    min_labelled: int = 20  # labelled predictions needed before accuracy can raise an alert
    latency_p95_ms: float = 500.0
    low_confidence: float = 0.6
    low_confidence_fraction_max: float = 0.30
    resolution_unseen_fraction_max: float = 0.05
    ks_alpha: float = 0.001
    min_predictions: int = 100  # predictions needed before drift or confidence can raise an alert
    noise_floor_factor: float = 2.0  # a PSI alert also needs PSI above this x the sampling-noise floor
    alert_cooldown_hours: float = 24.0

    def to_dict(self) -> dict:
        return asdict(self)


def get_thresholds(store: Store) -> MonitorThresholds:
    with store.read() as s:
        row = s.get(Setting, SETTING_THRESHOLDS)
        stored = row.value if row is not None and isinstance(row.value, dict) else {}
    known = {f.name for f in fields(MonitorThresholds)}
    return replace(MonitorThresholds(), **{k: v for k, v in stored.items() if k in known})


def set_thresholds(store: Store, *, actor: User, **changes: float) -> tuple[MonitorThresholds, Changes]:
    """Change alert thresholds (engineers and administrators)."""
    require(actor, "deploy")
    known = {f.name: f for f in fields(MonitorThresholds)}
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise ValidationError(f"unknown monitor threshold(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for key, value in changes.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise ValidationError(f"threshold {key} must be a non-negative number, got {value!r}")
    updated = replace(get_thresholds(store), **dict[str, Any](changes))
    with store.session() as s:
        row = s.get(Setting, SETTING_THRESHOLDS)
        if row is None:
            s.add(Setting(key=SETTING_THRESHOLDS, value=updated.to_dict()))
        else:
            row.value = updated.to_dict()
            row.updated_at = utcnow()
        audit.record(s, actor, "monitor.thresholds", SETTING_THRESHOLDS, changes)
    return updated, Changes(models=True)


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    kind: str  # drift | accuracy | latency | confidence
    metric: str
    value: float | None
    threshold: float | None
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MonitorReport:
    model_id: str
    model: str
    since: str | None
    until: str | None
    predictions: int
    errors: int
    first_at: str | None
    last_at: str | None
    per_day: float | None
    accuracy: dict[str, Any]
    confidence_histogram: list[dict[str, Any]]
    low_confidence_fraction: float | None
    class_distribution: list[dict[str, Any]]
    latency_ms: dict[str, float | None]
    drift: dict[str, Any]
    alerts: tuple[Alert, ...]
    alerts_recorded: int
    thresholds: MonitorThresholds
    query_ms: dict[str, float]

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["alerts"] = [a.to_dict() for a in self.alerts]
        data["thresholds"] = self.thresholds.to_dict()
        return data

    def text(self) -> str:
        acc = self.accuracy.get("overall")
        lines = [
            f"{self.model}: {self.predictions} predictions ({self.errors} unreadable) "
            f"{self.first_at or ''} - {self.last_at or ''}",
            f"accuracy where labelled: {acc:.1%} on {self.accuracy.get('labelled')} items" if acc is not None
            else "accuracy: no labelled predictions yet",
            "latency ms: " + ", ".join(f"{k} {v:.1f}" for k, v in self.latency_ms.items() if v is not None),
            "classes: " + ", ".join(f"{c['class']} {c['fraction']:.0%}" for c in self.class_distribution),
        ]
        for name, entry in self.drift.get("statistics", {}).items():
            if entry.get("psi") is not None:
                lines.append(f"drift {name}: PSI {entry['psi']:.3f}" + (
                    f", KS p={entry['ks_pvalue']:.2g}" if entry.get("ks_pvalue") is not None else ""))
        lines += [f"ALERT [{a.kind}] {a.message}" for a in self.alerts] or ["no alerts"]
        return "\n".join(lines)


# --- the queries -------------------------------------------------------------------------------


def _where(model_id: str, since: dt.datetime | None, until: dt.datetime | None, alias: str = "") -> tuple[str, list]:
    prefix = f"{alias}." if alias else ""
    clauses: list[str] = [f"{prefix}model_id = ?"]
    params: list[Any] = [model_id]
    if since is not None:
        clauses.append(f"{prefix}created_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append(f"{prefix}created_at < ?")
        params.append(until)
    return " AND ".join(clauses), params


def psi(expected: list[float], actual: list[float], epsilon: float = PSI_EPSILON) -> float:
    """Population Stability Index between two distributions over the same bins."""
    p = np.maximum(np.asarray(actual, dtype=float), epsilon)
    q = np.maximum(np.asarray(expected, dtype=float), epsilon)
    return float(np.sum((p - q) * np.log(p / q)))


def noise_floor(categories: int, production: int, baseline: int) -> float | None:
    """Expected PSI of two samples of one distribution: ~ (k - 1) * (1/n + 1/m) (chi-square approximation).

    With a few hundred predictions this is not small (10 bins, 100 vs 130 rows: ~0.16), so an
    alert needs PSI well above it, not only above the threshold."""
    if production <= 0 or baseline <= 0 or categories < 2:
        return None
    return round((categories - 1) * (1.0 / production + 1.0 / baseline), 4)


def _bin_sql(column: str, edges: list[float]) -> list[str]:
    """One COUNT FILTER per bin (-inf, e0], (e0, e1], ..., (e_last, inf): the baseline's binning rule."""
    parts = []
    for i in range(len(edges) + 1):
        conditions = []
        if i > 0:
            conditions.append(f"{column} > {float(edges[i - 1])!r}")
        if i < len(edges):
            conditions.append(f"{column} <= {float(edges[i])!r}")
        parts.append(f"count(*) FILTER (WHERE {column} IS NOT NULL AND {' AND '.join(conditions) or 'TRUE'})")
    return parts


class _Timer:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def run(self, name: str, raw: Any, sql: str, params: list) -> list[tuple]:
        started = time.perf_counter()
        rows = raw.execute(sql, params).fetchall()
        self.ms[name] = round((time.perf_counter() - started) * 1000.0, 2)
        return rows


def _class_field(source: Any, label_type: str) -> str:
    from vital_desktop.services.label_types import get_label_type

    field_name = get_label_type(source, label_type).class_field
    if not field_name:
        raise ValidationError(f"label type {label_type!r} has no class to compare predictions with")
    return field_name


def _parse_time(value: str | dt.datetime | None, what: str) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{what} must be an ISO date or time like 2024-03-01, got {value!r}") from None
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def monitor_report(
    store: Store,
    *,
    model: str,
    since: str | dt.datetime | None = None,
    until: str | dt.datetime | None = None,
    label_type: str | None = None,
    record_alerts: bool = False,
    actor: User | None = None,
) -> MonitorReport:
    """Compute every monitoring figure for one model over [since, until); optionally record alerts.

    Accuracy on labelled items uses `label_type`, else the label type the model learnt."""
    since_t, until_t = _parse_time(since, "since"), _parse_time(until, "until")
    label_type = _model_label_type(store, model, label_type)
    thresholds = get_thresholds(store)
    class_field = _class_field(store, label_type) if label_type else ""  # "": no labelled accuracy
    timer = _Timer()
    with store.read() as s:
        row = resolve_model(s, model)
        model_id, ref, card = row.id, f"{row.name}@{row.version}", dict(row.card or {})
        raw = raw_connection(s)
        where, params = _where(model_id, since_t, until_t)

        (count, errors, first_at, last_at, p50, p95, p99, mean_ms, max_ms, low_conf, with_conf) = timer.run(
            "summary_latency", raw,
            "SELECT count(*), count(*) FILTER (WHERE predicted_class IS NULL), min(created_at), max(created_at), "
            "quantile_cont(latency_ms, 0.5), quantile_cont(latency_ms, 0.95), quantile_cont(latency_ms, 0.99), "
            "avg(latency_ms), max(latency_ms), count(*) FILTER (WHERE confidence < ?), count(confidence) "
            f"FROM predictions WHERE {where}",
            [thresholds.low_confidence, *params],
        )[0]

        pwhere, pparams = _where(model_id, since_t, until_t, "p")
        daily = timer.run(
            "accuracy_daily", raw,
            "SELECT CAST(p.created_at AS DATE) AS day, count(*) AS labelled, "
            f"count(*) FILTER (WHERE p.predicted_class = json_extract_string(c.label_data, '$.{class_field}')) AS correct "
            "FROM predictions p JOIN canonical_labels c ON c.sheet_id = p.sheet_id AND c.item_ref = p.item_ref "
            f"AND c.label_type = ? WHERE {pwhere} AND p.predicted_class IS NOT NULL GROUP BY day ORDER BY day",
            [label_type, *pparams],
        )

        histogram = timer.run(
            "confidence_histogram", raw,
            f"SELECT least(CAST(floor(confidence * {CONFIDENCE_BINS}) AS INTEGER), {CONFIDENCE_BINS - 1}) AS bin, "
            f"count(*) FROM predictions WHERE {where} AND confidence IS NOT NULL GROUP BY bin ORDER BY bin",
            params,
        )
        classes = timer.run(
            "class_distribution", raw,
            f"SELECT predicted_class, count(*) AS n FROM predictions WHERE {where} AND predicted_class IS NOT NULL "
            "GROUP BY predicted_class ORDER BY n DESC, predicted_class",
            params,
        )
        drift = _drift(raw, timer, card.get("baseline"), where, params, classes)

    labelled = sum(r[1] for r in daily)
    correct = sum(r[2] for r in daily)
    accuracy = {
        "label_type": label_type,
        "labelled": int(labelled),
        "correct": int(correct),
        "overall": round(correct / labelled, 4) if labelled else None,
        "daily": [{"day": r[0].isoformat(), "labelled": int(r[1]), "correct": int(r[2]),
                   "accuracy": round(r[2] / r[1], 4)} for r in daily],
        "training_held_out": held_out_metrics(card).get("accuracy"),
    }
    hist_counts = {int(b): int(n) for b, n in histogram}
    confidence_histogram = [
        {"lower": round(i / CONFIDENCE_BINS, 2), "upper": round((i + 1) / CONFIDENCE_BINS, 2), "count": hist_counts.get(i, 0)}
        for i in range(CONFIDENCE_BINS)
    ]
    total_classified = sum(n for _, n in classes)
    class_distribution = [{"class": c, "count": int(n), "fraction": round(n / total_classified, 4)} for c, n in classes]
    span_days = ((last_at - first_at).total_seconds() / 86400.0) if first_at and last_at else 0.0
    report = MonitorReport(
        model_id=model_id, model=ref, since=iso(since_t), until=iso(until_t), predictions=int(count), errors=int(errors),
        first_at=iso(first_at), last_at=iso(last_at),
        per_day=round(count / max(span_days, 1.0), 2) if count else None,
        accuracy=accuracy, confidence_histogram=confidence_histogram,
        low_confidence_fraction=round(low_conf / with_conf, 4) if with_conf else None,
        class_distribution=class_distribution,
        latency_ms={"p50": _round(p50), "p95": _round(p95), "p99": _round(p99), "mean": _round(mean_ms), "max": _round(max_ms)},
        drift=drift, alerts=(), alerts_recorded=0, thresholds=thresholds, query_ms=timer.ms,
    )
    alerts = evaluate_alerts(report)
    recorded = _record(store, actor or SYSTEM_USER, report, alerts, thresholds) if record_alerts and alerts else 0
    return replace(report, alerts=tuple(alerts), alerts_recorded=recorded)


def _round(value: Any) -> float | None:
    return round(float(value), 3) if value is not None else None


def _drift(raw: Any, timer: _Timer, baseline: Any, where: str, params: list, classes: list[tuple]) -> dict[str, Any]:
    if not isinstance(baseline, dict) or "continuous" not in baseline:
        return {"available": False, "method": DRIFT_METHOD,
                "reason": "the model card has no training baseline (the model was not trained on this site)"}
    continuous: dict[str, Any] = baseline["continuous"]
    names = [n for n in ("image_mean", "image_std") if n in continuous]
    parts: list[str] = []
    for name in names:
        parts += _bin_sql(name, continuous[name]["edges"])
    binned = timer.run("drift_bins", raw, f"SELECT {', '.join(parts)}, avg(image_mean), avg(image_std) "
                                         f"FROM predictions WHERE {where}", params)[0]
    sample = timer.run(
        "drift_ks_sample", raw,
        f"SELECT image_mean, image_std FROM (SELECT image_mean, image_std FROM predictions WHERE {where} "
        "AND image_mean IS NOT NULL) USING SAMPLE reservoir(%d ROWS) REPEATABLE (7)" % KS_SAMPLE_ROWS,
        params,
    )
    resolutions = timer.run(
        "drift_resolution", raw,
        "SELECT CAST(image_width AS VARCHAR) || 'x' || CAST(image_height AS VARCHAR) AS resolution, count(*) AS n "
        f"FROM predictions WHERE {where} AND image_width IS NOT NULL GROUP BY resolution ORDER BY n DESC",
        params,
    )
    from scipy.stats import ks_2samp

    stats: dict[str, Any] = {}
    offset = 0
    means_offset = sum(len(continuous[n]["edges"]) + 1 for n in names)
    sample_array = np.asarray(sample, dtype=float) if sample else np.empty((0, 2))
    for name in names:
        entry = continuous[name]
        n_bins = len(entry["edges"]) + 1
        counts = [int(c) for c in binned[offset : offset + n_bins]]
        offset += n_bins
        total = sum(counts)
        actual = [c / total for c in counts] if total else []
        ks_stat = ks_p = None
        if len(sample_array) >= 2 and entry.get("sample"):
            column = ["image_mean", "image_std"].index(name)
            result = ks_2samp(np.asarray(entry["sample"], dtype=float), sample_array[:, column])
            ks_stat, ks_p = round(float(result.statistic), 4), float(result.pvalue)
        stats[name] = {
            "psi": round(psi(entry["fractions"], actual), 4) if total else None,
            "noise_floor": noise_floor(n_bins, total, int(baseline.get("count") or 0)),
            "production_count": total,
            "baseline_mean": round(entry.get("mean", float("nan")), 3),
            "production_mean": _round(binned[means_offset + ("image_mean", "image_std").index(name)]),
            "ks_statistic": ks_stat,
            "ks_pvalue": ks_p,
        }
    base_res: dict[str, float] = baseline.get("resolution", {})
    res_total = sum(n for _, n in resolutions)
    production_res = {r: n / res_total for r, n in resolutions} if res_total else {}
    categories = sorted(set(base_res) | set(production_res))
    unseen = sum(f for r, f in production_res.items() if r not in base_res)
    stats["resolution"] = {
        "psi": round(psi([base_res.get(c, 0.0) for c in categories], [production_res.get(c, 0.0) for c in categories]), 4)
        if res_total else None,
        "noise_floor": noise_floor(len(categories), res_total, int(baseline.get("count") or 0)),
        "production_count": res_total,
        "baseline": base_res,
        "production": {r: round(f, 4) for r, f in list(production_res.items())[:10]},
        "unseen_fraction": round(unseen, 4) if res_total else None,
    }
    base_mix: dict[str, float] = baseline.get("class_mix", {})
    class_total = sum(n for _, n in classes)
    production_mix = {c: n / class_total for c, n in classes} if class_total else {}
    mix_categories = sorted(set(base_mix) | set(production_mix))
    stats["predicted_class_mix"] = {
        "psi": round(psi([base_mix.get(c, 0.0) for c in mix_categories], [production_mix.get(c, 0.0) for c in mix_categories]), 4)
        if class_total else None,
        "noise_floor": noise_floor(len(mix_categories), class_total, int(baseline.get("count") or 0)),
        "production_count": class_total,
        "baseline": base_mix,
        "production": {c: round(f, 4) for c, f in production_mix.items()},
    }
    return {"available": True, "method": DRIFT_METHOD, "baseline_count": baseline.get("count"), "statistics": stats}


def evaluate_alerts(report: MonitorReport) -> list[Alert]:
    """Compare a report with its thresholds; the alert messages are what an inspector reads."""
    t = report.thresholds
    alerts: list[Alert] = []
    acc = report.accuracy
    if acc["overall"] is not None and acc["labelled"] >= t.min_labelled and acc["overall"] < t.accuracy_min:
        alerts.append(Alert("accuracy", "accuracy", acc["overall"], t.accuracy_min,
                            f"accuracy {acc['overall']:.0%} on {acc['labelled']} labelled predictions is below "
                            f"{t.accuracy_min:.0%}" + (f" (training held-out: {acc['training_held_out']:.0%})"
                                                        if acc.get("training_held_out") is not None else "")))
    p95 = report.latency_ms.get("p95")
    if p95 is not None and report.predictions >= t.min_predictions and p95 > t.latency_p95_ms:
        alerts.append(Alert("latency", "latency_p95_ms", p95, t.latency_p95_ms,
                            f"latency p95 {p95:.0f} ms exceeds {t.latency_p95_ms:.0f} ms"))
    low = report.low_confidence_fraction
    if low is not None and report.predictions >= t.min_predictions and low > t.low_confidence_fraction_max:
        alerts.append(Alert("confidence", "low_confidence_fraction", low, t.low_confidence_fraction_max,
                            f"{low:.0%} of predictions have confidence below {t.low_confidence:.2f}"))
    stats = report.drift.get("statistics", {}) if report.drift.get("available") else {}
    if report.predictions >= t.min_predictions:
        resolution = stats.get("resolution", {})
        unseen = resolution.get("unseen_fraction")
        if unseen is not None and unseen > t.resolution_unseen_fraction_max:
            before = max(resolution["baseline"], key=resolution["baseline"].get) if resolution["baseline"] else "?"
            # The most common resolution training never saw (production is ordered by count).
            now = next((r for r in resolution["production"] if r not in resolution["baseline"]), "?")
            alerts.append(Alert("drift", "resolution", unseen, t.resolution_unseen_fraction_max,
                                f"Input image resolution changed ({before} → {now}): {unseen:.0%} of predictions "
                                "have a resolution never seen in training"))
        for name in ("image_mean", "image_std", "predicted_class_mix"):
            value = stats.get(name, {}).get("psi")
            floor = stats.get(name, {}).get("noise_floor") or 0.0
            if value is not None and value > t.psi_alert and value > t.noise_floor_factor * floor:
                what = "predicted-class mix" if name == "predicted_class_mix" else f"input {name.replace('_', ' ')}"
                alerts.append(Alert("drift", name, value, t.psi_alert,
                                    f"{what} drifted from the training baseline: PSI {value:.2f} > {t.psi_alert:.2f} "
                                    f"(sampling noise ~{floor:.2f})"))
    return alerts


def _record(store: Store, actor: User, report: MonitorReport, alerts: list[Alert], t: MonitorThresholds) -> int:
    """Store new alerts; the same (kind, metric) within the cooldown is not recorded twice."""
    cutoff = utcnow() - dt.timedelta(hours=t.alert_cooldown_hours)
    recorded = 0
    with store.session() as s:
        recent = set(s.execute(sa.select(MonitorAlert.kind, MonitorAlert.metric).where(
            MonitorAlert.model_id == report.model_id, MonitorAlert.created_at >= cutoff)).all())
        for alert in alerts:
            if (alert.kind, alert.metric) in recent:
                continue
            s.add(MonitorAlert(model_id=report.model_id, kind=alert.kind, metric=alert.metric, value=alert.value,
                               threshold=alert.threshold, message=alert.message))
            recorded += 1
        if recorded:
            audit.record(s, actor, "monitor.alerts", report.model, {"alerts": [a.metric for a in alerts]})
    return recorded


@dataclass(frozen=True)
class AlertInfo:
    id: str
    model_id: str
    kind: str
    metric: str
    value: float | None
    threshold: float | None
    message: str
    created_at: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def list_alerts(store: Store, *, model: str | None = None, limit: int = 100) -> list[AlertInfo]:
    """Recorded alerts, newest first."""
    with store.read() as s:
        query = sa.select(MonitorAlert).order_by(MonitorAlert.created_at.desc()).limit(limit)
        if model is not None:
            query = query.where(MonitorAlert.model_id == resolve_model(s, model).id)
        return [AlertInfo(a.id, a.model_id, a.kind, a.metric, a.value, a.threshold, a.message, iso(a.created_at))
                for a in s.scalars(query)]


def _model_label_type(store: Store, model: str, label_type: str | None) -> str:
    """The given label type, else the model's recorded one, else the site's only classification type
    (else "", which matches no label)."""
    from vital_desktop.services.training_gate import resolve_label_type

    try:
        return resolve_label_type(store, label_type=label_type, model=model)
    except ValidationError:
        return ""  # no single answer: the report leaves accuracy on labelled items out rather than fail


def labelled_training_overlap(store: Store, *, model: str, label_type: str | None = None) -> tuple[int, int]:
    """(labelled predictions, of which on items the model learnt from): accuracy on labelled items
    is optimistic when most of them were training items, and the dashboard says so."""
    from vital_desktop.services.training import lineage

    label_type = _model_label_type(store, model, label_type)
    used = {(src.sheet_id, entry["item_ref"]) for src in lineage(store, model=model).sources
            for entry in src.canonical_labels if entry.get("item_ref")}
    with store.read() as s:
        model_id = resolve_model(s, model).id
        rows = raw_connection(s).execute(
            "SELECT p.sheet_id, p.item_ref, count(*) FROM predictions p JOIN canonical_labels c "
            "ON c.sheet_id = p.sheet_id AND c.item_ref = p.item_ref AND c.label_type = ? "
            "WHERE p.model_id = ? AND p.predicted_class IS NOT NULL GROUP BY p.sheet_id, p.item_ref",
            [label_type, model_id]).fetchall()
    labelled = sum(int(n) for _, _, n in rows)
    in_training = sum(int(n) for sheet_id, ref, n in rows if (sheet_id, ref) in used)
    return labelled, in_training
