"""Every action of the app in one table: name, menu, text, shortcuts, and who handles it.

The shell turns each row into a `QAction` in its menu (so the menus list every shortcut) and
dispatches a trigger to the handler method: on the shell for `scope="window"`, otherwise on
the active page when its `stage` equals the scope (the action is disabled elsewhere). The `?`
dialog is generated from the same table, so it cannot drift from what the keys do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ActionSpec:
    name: str
    menu: str
    text: str
    shortcuts: tuple[str, ...]
    handler: str
    scope: str = "window"  # "window" or a page's stage ("canonical", "label", …)
    argument: Any = None


STAGES: tuple[tuple[str, str], ...] = (
    ("data", "DATA"),
    ("generate", "GENERATE"),
    ("label", "LABEL"),
    ("train", "TRAIN"),
    ("deploy", "DEPLOY"),
    ("monitor", "MONITOR"),
    ("improve", "IMPROVE"),
)

#: digit keys that pick a class: 1–9, then 0 for the tenth
MAX_CLASS_KEYS = 10

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("create_sheet", "&File", "Create Sheet…", ("Ctrl+N",), "create_sheet"),
    ActionSpec("refresh", "&File", "Refresh", ("F5",), "refresh"),
    ActionSpec("quit", "&File", "Quit", ("Ctrl+Q",), "close"),
    *(ActionSpec(f"go_{key}", "&Go", f"{title}", (f"Ctrl+{i + 1}",), "go", argument=key)
      for i, (key, title) in enumerate(STAGES)),
    ActionSpec("go_canonical", "&Go", "Canonical Labels", ("Ctrl+L",), "go", argument="canonical"),
    ActionSpec("go_calibration", "&Go", "Calibration (Monte Carlo)", ("Ctrl+8",), "go", argument="calibration"),
    ActionSpec("go_bundles", "&Go", "Bundles (administrators)", ("Ctrl+9",), "go", argument="bundles"),
    ActionSpec("go_users", "&Go", "Users (administrators)", ("Ctrl+0",), "go", argument="users"),
    # Canonical Labeling Tool (Mode B)
    *(ActionSpec(f"pick_class_{n}", "&Label", f"Pick class {n}", (str(n % 10),), "pick_class", "canonical", n - 1)
      for n in range(1, MAX_CLASS_KEYS + 1)),
    ActionSpec("save_next", "&Label", "Save and next unlabeled", ("Return", "Enter"), "save_and_next", "canonical"),
    ActionSpec("next_item", "&Label", "Next item", ("Right",), "next_item", "canonical"),
    ActionSpec("previous_item", "&Label", "Previous item", ("Left",), "previous_item", "canonical"),
    ActionSpec("undo_label", "&Label", "Undo label action", ("Ctrl+Z",), "undo", "canonical"),
    ActionSpec("redo_label", "&Label", "Redo label action", ("Ctrl+Shift+Z", "Ctrl+Y"), "redo", "canonical"),
    ActionSpec("confirm_unchanged", "&Label", "Label still holds for the changed image", ("Ctrl+K",),
               "confirm_unchanged", "canonical"),
    ActionSpec("close_tool", "&Label", "Close the labeling tool", ("Escape",), "close_tool", "canonical"),
    # LABEL Mode A (review of Q&A pairs)
    ActionSpec("approve", "&Review", "Approve pair", ("A",), "approve", "label"),
    ActionSpec("edit_pair", "&Review", "Edit answer", ("E",), "edit", "label"),
    ActionSpec("reject", "&Review", "Reject pair", ("R",), "reject", "label"),
    ActionSpec("flag", "&Review", "Flag pair", ("F",), "flag", "label"),
    ActionSpec("reject_reason", "&Review", "Reject with a reason…", ("Shift+R",), "ask_reason", "label", "reject"),
    ActionSpec("flag_reason", "&Review", "Flag with a reason…", ("Shift+F",), "ask_reason", "label", "flag"),
    ActionSpec("review_next", "&Review", "Next pair", ("Right",), "next_pair", "label"),
    ActionSpec("review_previous", "&Review", "Previous pair", ("Left",), "previous_pair", "label"),
    ActionSpec("review_back", "&Review", "Back to training sheets", ("Escape",), "back", "label"),
    # Lifecycle, calibration and bundles pages (each enabled only on its page)
    ActionSpec("train_export", "&Actions", "TRAIN: export JSONL", ("Ctrl+E",), "export", "train"),
    ActionSpec("train_start", "&Actions", "TRAIN: train classifier", ("Ctrl+T",), "train", "train"),
    ActionSpec("deploy_activate", "&Actions", "DEPLOY: activate selected version", ("Ctrl+Shift+D",),
               "activate_selected", "deploy"),
    ActionSpec("feedback_accept", "&Actions", "IMPROVE: accept feedback", ("Ctrl+Shift+A",), "accept_selected",
               "improve"),
    ActionSpec("feedback_reject", "&Actions", "IMPROVE: reject feedback", ("Ctrl+Shift+R",), "reject_selected",
               "improve"),
    ActionSpec("mc_run", "&Actions", "Calibration: run", ("Ctrl+R",), "run", "calibration"),
    ActionSpec("bundle_verify", "&Actions", "Bundles: verify a bundle…", ("Ctrl+O",), "verify", "bundles"),
    ActionSpec("bundle_import", "&Actions", "Bundles: import the verified bundle", ("Ctrl+I",), "import_verified",
               "bundles"),
    ActionSpec("shortcuts", "&Help", "Keyboard shortcuts", ("?", "F1"), "show_shortcuts"),
    ActionSpec("diagnostics", "&Help", "Save Diagnostics…", (), "save_diagnostics"),
    ActionSpec("about", "&Help", "About VITAL Desktop", (), "show_about"),
)


def actions_for(scope: str) -> list[ActionSpec]:
    return [a for a in ACTIONS if a.scope == scope]
