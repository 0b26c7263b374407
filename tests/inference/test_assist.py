"""Label next, possibly mislabelled, and occlusion heat maps: the pure parts and the CLI on the demo site."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vital_desktop.core.errors import ValidationError
from vital_desktop.inference import assist


def test_uncertainty_mixed_with_diversity_does_not_pick_near_copies():
    rng = np.random.default_rng(0)
    # Ten near-copies of one confusing image, and ten distinct, slightly less confusing ones.
    copies = rng.normal(0, 0.01, size=(10, 5)) + 5.0
    distinct = rng.normal(0, 3.0, size=(10, 5))
    embedding = np.concatenate([copies, distinct])
    probabilities = np.concatenate([np.tile([0.5, 0.5], (10, 1)), np.tile([0.6, 0.4], (10, 1))])
    pure = np.argsort(-assist.margin_uncertainty(probabilities), kind="stable")[:5]
    assert set(pure) <= set(range(10))  # uncertainty alone takes five copies
    picks = [i for i, _ in assist.select_next(probabilities, embedding, strategy="uncertainty", count=5)]
    assert picks[0] < 10  # the most uncertain first
    assert sum(i < 10 for i in picks) <= 2  # then it spreads out
    far = [i for i, _ in assist.select_next(probabilities, embedding, strategy="diversity", count=5)]
    assert sum(i < 10 for i in far) == 1


def test_random_order_is_seeded_and_bad_strategies_are_refused():
    first = assist.select_next(None, np.zeros((30, 1)), strategy="random", count=5, seed=3)
    again = assist.select_next(None, np.zeros((30, 1)), strategy="random", count=5, seed=3)
    assert first == again and len({i for i, _ in first}) == 5
    with pytest.raises(ValidationError, match="unknown strategy"):
        assist.select_next(None, None, strategy="loudest", count=3)
    with pytest.raises(ValidationError, match="needs a trained classifier"):
        assist.select_next(None, np.zeros((3, 1)), strategy="uncertainty", count=3)


def test_flipped_labels_are_found():
    rng = np.random.default_rng(1)
    target = rng.integers(0, 3, size=300)
    probabilities = np.full((300, 3), 0.05)
    probabilities[np.arange(300), target] = 0.9
    probabilities += rng.uniform(0, 0.05, size=probabilities.shape)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    noisy = target.copy()
    flipped = rng.choice(300, 15, replace=False)
    noisy[flipped] = (noisy[flipped] + 1) % 3
    found = {s.index for s in assist.find_suspects(probabilities, noisy)}
    assert found == set(flipped.tolist())


def test_occlusion_map_points_at_the_region_the_model_uses():
    def run(batch):  # "class 1" probability rises with the brightness of the top-left quarter
        score = batch[:, 0, :8, :8].mean(axis=(1, 2))
        p1 = 1 / (1 + np.exp(-score))
        return np.stack([1 - p1, p1], axis=1)

    image = np.zeros((1, 16, 16), dtype=np.float32)
    image[0, :8, :8] = 3.0
    drop, cls, probability = assist.occlusion_map(run, image, grid=4)
    assert cls == 1 and probability > 0.9
    assert drop.shape == (4, 4)
    assert drop[:2, :2].min() > 0.01 and np.abs(drop[2:, :]).max() < 1e-6 and np.abs(drop[:, 2:]).max() < 1e-6


@pytest.fixture
def cli(demo_home, monkeypatch, capsys):
    from vital_desktop import cli as vital

    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", "vital-engineer")

    def run(*argv):
        code = vital.main(["--home", str(demo_home), "--json", *argv])
        out, err = capsys.readouterr()
        return code, (json.loads(out) if out.strip() else None), err

    return run


@pytest.mark.slow
def test_label_next_suspects_and_explain_on_the_demo_site(cli):
    from vital_desktop.services.demo_site import DEMO_SHEET

    code, result, err = cli("label", "next", "--sheet", DEMO_SHEET, "--count", "5")
    assert code == 0, err
    items = result["items"]
    assert len(items) == 5 and [i["rank"] for i in items] == [1, 2, 3, 4, 5]
    assert all(i["predicted_class"] and 0 <= i["uncertainty"] <= 1 for i in items)
    code, shown, _ = cli("label", "show", "--sheet", DEMO_SHEET, "--item", items[0]["item_ref"])
    assert code == 0 and not any(label.get("label_type") == "classification" for label in shown.get("labels", []))
    code, result, _ = cli("label", "next", "--sheet", DEMO_SHEET, "--count", "3", "--strategy", "random")
    assert code == 0 and len(result["items"]) == 3 and result["items"][0]["predicted_class"] is None

    code, report, err = cli("label", "suspects", "--sheet", DEMO_SHEET)
    assert code == 0, err
    assert report["labels_checked"] > 50 and report["folds"] >= 2
    assert all(s["given"] != s["suggested"] and s["p_suggested"] > s["p_given"] for s in report["suspects"])

    code, heat, err = cli("explain", "--sheet", DEMO_SHEET, "--item", items[0]["item_ref"], "--grid", "4")
    assert code == 0, err
    assert len(heat["grid"]) == 4 and all(len(row) == 4 for row in heat["grid"])
    assert heat["predicted_class"] == items[0]["predicted_class"]

    with pytest.raises(SystemExit):  # argparse refuses an unknown strategy before any work
        cli("label", "next", "--sheet", DEMO_SHEET, "--strategy", "loudest")
