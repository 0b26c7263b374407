"""Colours, spacing and the one application style sheet (calm, light, readable)."""

from __future__ import annotations

ACCENT = "#1f6f8b"
ACCENT_SOFT = "#e3f0f5"
ACCENT_DARK = "#15546a"
TEXT = "#1f2933"
MUTED = "#66788a"
BORDER = "#d5dce3"
SURFACE = "#ffffff"
BACKGROUND = "#f4f6f8"
PLACEHOLDER = "#e6eaee"
DANGER = "#b3261e"
WARNING = "#a15c00"
SUCCESS = "#2e7d32"
#: disabled controls must look disabled (a disabled primary button used to look like an enabled one)
DISABLED_TEXT = "#9aa5b1"
DISABLED_FILL = "#eef1f4"
DISABLED_PRIMARY = "#b8c6cf"

STATUS_COLORS = {
    "labeled": SUCCESS,
    "unlabeled": "#9aa5b1",
    "conflict": DANGER,
    "rejected": DANGER,
    "flagged": WARNING,
}

TAG_COLORS = {
    "PHI": "#b3261e",
    "PII": "#a15c00",
    "EXPORT_CONTROLLED": "#6a1b9a",
    "CONFIDENTIAL": "#37474f",
}

SPACING = 12

STYLE_SHEET = f"""
QMainWindow, QDialog {{ background: {BACKGROUND}; }}
QWidget {{ color: {TEXT}; font-size: 10pt; }}
QLabel#pageTitle {{ font-size: 15pt; font-weight: 600; }}
QLabel#sectionTitle {{ font-size: 11pt; font-weight: 600; color: {TEXT}; }}
QLabel#muted, QLabel[muted="true"] {{ color: {MUTED}; }}
QLabel#appTitle {{ font-size: 12pt; font-weight: 700; color: {ACCENT_DARK}; letter-spacing: 1px; }}
QFrame#header {{ background: {SURFACE}; border-bottom: 1px solid {BORDER}; }}
QFrame#card {{ background: {SURFACE}; border: 1px solid {BORDER}; border-radius: 6px; }}
QPushButton {{ background: {SURFACE}; border: 1px solid {BORDER}; border-radius: 5px; padding: 5px 12px; }}
QPushButton:hover {{ border-color: {ACCENT}; }}
QPushButton:disabled {{ color: {DISABLED_TEXT}; background: {DISABLED_FILL}; border-color: {DISABLED_FILL}; }}
QPushButton[primary="true"] {{ background: {ACCENT}; color: white; border-color: {ACCENT}; font-weight: 600; }}
QPushButton[primary="true"]:hover {{ background: {ACCENT_DARK}; }}
QPushButton[primary="true"]:disabled {{ background: {DISABLED_PRIMARY}; border-color: {DISABLED_PRIMARY};
    color: {DISABLED_FILL}; font-weight: 600; }}
QLabel#permissionReason {{ color: {WARNING}; }}
QPushButton[stage="true"] {{ border: none; background: transparent; padding: 5px 8px; color: {MUTED};
    font-weight: 600; border-radius: 14px; }}
QPushButton[stage="true"]:hover {{ color: {ACCENT_DARK}; background: {ACCENT_SOFT}; }}
QPushButton[stage="true"]:checked {{ background: {ACCENT}; color: white; }}
QLabel#crumbArrow {{ color: #aab4be; }}
QTableView, QListView, QTreeView, QPlainTextEdit, QTextEdit, QLineEdit, QComboBox, QSpinBox, QDoubleSpinBox {{
    background: {SURFACE}; border: 1px solid {BORDER}; border-radius: 4px; }}
QTableView, QListView {{ selection-background-color: {ACCENT_SOFT}; selection-color: {TEXT}; }}
QHeaderView::section {{ background: {BACKGROUND}; border: none; border-bottom: 1px solid {BORDER};
    padding: 4px 6px; font-weight: 600; color: {MUTED}; }}
QTabWidget::pane {{ border: 1px solid {BORDER}; border-radius: 4px; background: {SURFACE}; }}
QTabBar::tab {{ padding: 6px 12px; }}
QTabBar::tab:selected {{ color: {ACCENT_DARK}; font-weight: 600; }}
QGroupBox {{ border: 1px solid {BORDER}; border-radius: 6px; margin-top: 14px; padding-top: 6px;
    background: {SURFACE}; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {MUTED}; font-weight: 600; }}
QStatusBar {{ background: {SURFACE}; border-top: 1px solid {BORDER}; }}
QProgressBar {{ border: 1px solid {BORDER}; border-radius: 4px; background: {BACKGROUND}; text-align: center;
    max-height: 14px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
QSplitter::handle {{ background: {BACKGROUND}; }}
"""


def tag_html(tags: list[str]) -> str:
    """Classification tags as small coloured chips (rich text for QLabel)."""
    if not tags:
        return f"<span style='color:{MUTED}'>no classification tags</span>"
    return " ".join(
        f"<span style='background:{TAG_COLORS.get(t, MUTED)}; color:white; font-weight:600;'>&nbsp;{t}&nbsp;</span>"
        for t in tags
    )
