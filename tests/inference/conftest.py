"""Fixtures for the local AI runtime: demo images and a trained demo classifier, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

# 300 images keep the session fixture at a few seconds while leaving 60 held out.
DEMO_IMAGES = 300


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory):
    from vital_desktop.demo import generate_demo_files

    return generate_demo_files(tmp_path_factory.mktemp("demo") / "data", seed=7, n_images=DEMO_IMAGES)


@pytest.fixture(scope="session")
def trained(demo_files):
    from vital_desktop.inference.train_classifier import train_image_classifier

    refs = sorted(demo_files.labels)
    return train_image_classifier(
        [demo_files.image_paths[r] for r in refs], [demo_files.labels[r] for r in refs], demo_files.classes, seed=0
    )


@pytest.fixture(scope="session")
def model_file(trained, tmp_path_factory) -> Path:
    return trained.save(tmp_path_factory.mktemp("model") / "defects.onnx")


@pytest.fixture(scope="session")
def llm():
    from vital_desktop.inference.llm import get_llm

    return get_llm(n_ctx=1024, threads=1)


@pytest.fixture(scope="session")
def defect_schema() -> dict:
    return {
        "type": "object",
        "properties": {
            "defect_type": {"type": "string", "enum": ["none", "inclusion", "crack", "delamination", "surface_contamination"]},
            "severity": {"type": "string", "enum": ["none", "low", "medium", "high"]},
            "confidence": {"type": "number"},
        },
        "required": ["defect_type", "severity", "confidence"],
        "additionalProperties": False,
    }
