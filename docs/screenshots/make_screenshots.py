"""Render every page offscreen into docs/screenshots/<stage>.png, on a fresh demo site.

    python docs/screenshots/make_screenshots.py [--home DIR]

Builds the demo site (`vital init --demo`'s service) in a temporary folder unless --home is
given, signs in as the demo engineer, labels one item, generates a training sheet, and grabs
the main window on each page at 1280×720 (a laptop) and 1920×1080, as
``<stage>-1280x720.png`` and ``<stage>-1920x1080.png``; prints each page's minimum size. Also
DEPLOY's question before activating a less accurate model (``deploy-activate-worse-*.png``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent


SIZES = ((1280, 720), (1920, 1080))


def spin(app, seconds: float, window=None) -> None:
    """Run the event loop for `seconds`, and then until `window` has no job left (pages load off
    the GUI thread)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or (window is not None and window.context.jobs.jobs
                                        and time.perf_counter() < end + 30):
        app.processEvents()
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--only", default=None, help="comma-separated shot names (e.g. generate,generate-quality)")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    tmp = tempfile.TemporaryDirectory()
    home = args.home or Path(tmp.name) / "demo"

    from vital_desktop.services import site

    site.init_site(home, demo=True)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from vital_desktop.app import build_main_window
    from vital_desktop.services import accounts, generate, templates
    from vital_desktop.services.demo_site import DEMO_SHEET
    from vital_desktop.store.db import open_store
    from vital_desktop.ui.theme import STYLE_SHEET

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(Path(tmp.name) / "settings"))
    app = QApplication.instance() or QApplication([])
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE_SHEET)
    store = open_store(home)
    user = accounts.get_user(store, "engineer")
    classification = next(t for t in templates.list_templates(store) if t.label_type == "classification")
    if not generate.list_training_sheets(store):
        generate.generate_training_sheet(store, actor=user, sheet=DEMO_SHEET, template=classification.ref,
                                         name="Defect classification v1", ai_mode="classifier")
    from vital_desktop.services import template_eval

    if not template_eval.list_evaluations(store):  # the Quality tab shows a real (small) evaluation
        template_eval.evaluate_template(store, actor=user, template=classification.ref, sheet=DEMO_SHEET, limit=3)
    window = build_main_window(store, user, stage="data", sheet=DEMO_SHEET)
    window.resize(*SIZES[0])
    window.show()
    spin(app, 1.0, window)

    def shoot(stage: str, target=None, name: str | None = None, **arguments) -> None:
        if only is not None and (name or stage) not in only:
            return
        target = target or window
        target.go(stage, **arguments)
        spin(app, 0.8, target)
        for width, height in SIZES:
            target.resize(width, height)
            spin(app, 0.4, target)
            path = HERE / f"{name or stage}-{width}x{height}.png"
            target.grab().save(str(path))
        hint = target.pages[stage].minimumSizeHint()
        print(f"wrote {stage}: page minimum {hint.width()}x{hint.height()}, window minimum "
              f"{target.minimumSizeHint().width()}x{target.minimumSizeHint().height()}")
        target.resize(*SIZES[0])

    data = window.pages["data"]
    data.grid.setCurrentIndex(data.model.index(3))
    shoot("data")
    shoot("generate", template=classification.name)
    generate_page = window.page("generate")  # built even when --only skips its shot
    generate_page.tabs.setCurrentWidget(generate_page.quality)
    shoot("generate", name="generate-quality", template=classification.name)
    generate_page.tabs.setCurrentIndex(0)
    shoot("label")
    shoot("canonical", sheet=DEMO_SHEET, item="INS-00007")
    # document items: DATA's text preview, and the labeling tool with the text beside the answer
    from vital_desktop.demo.documents import DOCUMENT_LABEL_TYPE, DOCUMENT_SHEET

    shoot("data", name="data-documents", sheet=DOCUMENT_SHEET, item="inspection-report-007.pdf")
    shoot("canonical", name="canonical-document", sheet=DOCUMENT_SHEET, label_type=DOCUMENT_LABEL_TYPE,
          item="inspection-report-007.pdf")
    from vital_desktop.services.demo_site import DEMO_HISTORY_SHEET  # a telemetry item: its channels plotted

    shoot("canonical", name="canonical-telemetry", sheet=DEMO_HISTORY_SHEET, label_type="maintenance",
          item="DET-NAI-0003")
    if only is not None and not only & {"train", "deploy", "monitor", "improve", "calibration", "taxonomy",
                                        "bundles", "users", "deploy-activate-worse"}:
        window.quit_answer = True
        window.close()
        store.close()
        sys.stdout.flush()
        os._exit(0)
    _lifecycle_data(store, user)
    window.refresh()  # every page reloads what the lifecycle data changed
    spin(app, 1.0)
    for stage in ("train", "deploy", "monitor", "improve", "calibration", "taxonomy"):
        shoot(stage)
    if only is None or "deploy-activate-worse" in only:
        _activation_question(app, window, store, user, Path(tmp.name))
    window.page("train").tabs.setCurrentIndex(0)
    window.quit_answer = True
    window.close()
    # Bundles is an administrators' page: a second window signed in as the demo admin
    admin = build_main_window(store, accounts.get_user(store, "admin"), stage="data")
    admin.resize(*SIZES[0])
    admin.show()
    admin.go("bundles")
    bundles = admin.pages["bundles"]
    bundles.verify(str(HERE.parents[1] / "bundles" / "demo" / "01-model-update.vbundle"))
    spin(app, 3.0, admin)
    shoot("bundles", admin)
    shoot("users", admin)
    admin.quit_answer = True
    admin.close()
    store.close()
    sys.stdout.flush()
    os._exit(0)


def _activation_question(app, window, store, user, folder: Path) -> None:
    """DEPLOY asking before it activates a model less accurate than the serving one: a model from
    elsewhere (the hub samples' tiny brightness classifier, with the site's classes) is selected
    and Activate pressed; the question is drawn over the window as the user sees it."""
    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QMessageBox

    from vital_desktop.bundles.samples import tiny_classifier_onnx
    from vital_desktop.services import registry

    classes = registry.get_model(store, "defect-classifier").classes
    path = folder / "from-elsewhere.onnx"
    path.write_bytes(tiny_classifier_onnx(classes))
    info, _ = registry.register_model(store, actor=user, path=path, kind=registry.KIND_ONNX, name="from-elsewhere")
    window.go("deploy")
    page = window.pages["deploy"]
    page.reload(select=info.id)
    spin(app, 1.0, window)
    asked: list[tuple[str, str]] = []
    page.confirm = lambda title, text: bool(asked.append((title, text)))  # answers No, keeps the question
    page.activate_selected()
    spin(app, 1.0, window)
    title, text = asked[0]
    for width, height in SIZES:
        window.resize(width, height)
        spin(app, 0.4, window)
        shot = window.grab()
        box = QMessageBox(QMessageBox.Icon.Question, title, text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, window)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.show()
        spin(app, 0.3)
        dialog = box.grab()
        painter = QPainter(shot)
        painter.drawPixmap((shot.width() - dialog.width()) // 2, (shot.height() - dialog.height()) // 2, dialog)
        painter.end()
        box.close()
        shot.save(str(HERE / f"deploy-activate-worse-{width}x{height}.png"))
    print(f"wrote deploy-activate-worse: {title!r}")
    window.resize(*SIZES[0])


def _lifecycle_data(store, user) -> None:
    """What makes TRAIN … IMPROVE and Calibration worth looking at: a site-trained model (with a
    baseline, so drift is computed), its predictions on the demo sheet, inspector feedback
    (one correction, one new defect type) and a small Monte Carlo run."""
    from vital_desktop.montecarlo import Source, make_config
    from vital_desktop.services import accounts, calibration, deploy, feedback, predict, training
    from vital_desktop.services.demo_site import DEMO_SHEET

    result, _ = training.train_classifier(store, actor=user, name="defect-classifier", sheet=DEMO_SHEET)
    deploy.activate(store, actor=user, model=result.model_id, notes="retrained on the site's canonical labels")
    predictions, _ = predict.predict_images(store, actor=user, sheet=DEMO_SHEET)
    inspector = accounts.get_user(store, "inspector")
    classes = result.classes
    first, second = predictions[0], predictions[1]
    feedback.add_feedback(store, actor=inspector, prediction_id=first.id,
                          corrected_class=next(c for c in classes if c != first.predicted_class),
                          comment="hairline crack along the edge")
    feedback.add_feedback(store, actor=inspector, prediction_id=second.id, corrected_class="edge_chipping",
                          comment="chipped edge: not in the taxonomy yet")
    config = make_config(detector="nai-3x3", source=Source(kind="point", distance_cm=10.0), nuclide="Cs-137")
    calibration.run_calibration(store, actor=user, config=config, histories=1e6, seed=1)


if __name__ == "__main__":
    main()
