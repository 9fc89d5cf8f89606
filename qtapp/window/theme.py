"""Light and dark themes: Qt palette, style sheet and the colours charts use.

Sizes are chosen for a projector at the back of a room: a 12 pt base font,
bold verdicts, thick chart lines. The style sheet is a template in
``resources/style/quantbench.qss`` filled with the theme's colours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

from core.study.result import Grade

STYLE_DIR = Path(__file__).resolve().parents[2] / "resources" / "style"
BASE_POINT_SIZE = 12


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    base: str  # text fields, tables
    alt_base: str
    text: str
    muted: str  # secondary text
    disabled: str  # text of disabled controls: clearly fainter than muted text
    border: str
    accent: str
    plot_bg: str
    plot_fg: str
    grid_alpha: float
    good: str
    acceptable: str
    bad: str
    error_text: str

    def grade_color(self, grade: Grade | None) -> str | None:
        """Background colour for a verdict cell; None for baseline/unknown."""
        return {Grade.GOOD: self.good, Grade.ACCEPTABLE: self.acceptable, Grade.BAD: self.bad}.get(grade)  # type: ignore[arg-type]

    def grade_text_color(self, grade: Grade | None) -> str:
        # Amber needs dark text; green and red carry white text at projector contrast.
        return "#1a1a1a" if grade is Grade.ACCEPTABLE else "#ffffff"


LIGHT = Theme(
    name="light",
    window="#f3f3f3",
    base="#ffffff",
    alt_base="#f1f4f8",
    text="#1a1a1a",
    muted="#555555",
    disabled="#a3a3a3",
    border="#c4c4c4",
    accent="#0a64c8",
    plot_bg="#ffffff",
    plot_fg="#222222",
    grid_alpha=0.25,
    good="#1e8e3e",
    acceptable="#f2b400",
    bad="#c62828",
    error_text="#b00020",
)

DARK = Theme(
    name="dark",
    window="#1e1f22",
    base="#27292d",
    alt_base="#2e3136",
    text="#ececec",
    muted="#a8a8a8",
    disabled="#686b70",
    border="#4a4d52",
    accent="#4aa3ff",
    plot_bg="#1b1c1f",
    plot_fg="#dddddd",
    grid_alpha=0.3,
    good="#2ea44f",
    acceptable="#e3a600",
    bad="#e0443e",
    error_text="#ff7a70",
)

THEMES = {"light": LIGHT, "dark": DARK}


def theme_named(name: str) -> Theme:
    try:
        return THEMES[name]
    except KeyError:
        raise ValueError(f"unknown theme {name!r}; use light or dark") from None


def _palette(theme: Theme) -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: theme.window,
        QPalette.ColorRole.WindowText: theme.text,
        QPalette.ColorRole.Base: theme.base,
        QPalette.ColorRole.AlternateBase: theme.alt_base,
        QPalette.ColorRole.Text: theme.text,
        QPalette.ColorRole.Button: theme.alt_base,
        QPalette.ColorRole.ButtonText: theme.text,
        QPalette.ColorRole.ToolTipBase: theme.base,
        QPalette.ColorRole.ToolTipText: theme.text,
        QPalette.ColorRole.Highlight: theme.accent,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: theme.muted,
        QPalette.ColorRole.Link: theme.accent,
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(theme.disabled))
    return p


#: Radio buttons drawn in the theme's colours. Fusion outlines them in the window colour made
#: darker, which on the dark theme's near-black window left them nearly invisible.
_RADIO_RULES = """
QRadioButton::indicator {
    width: 12px; height: 12px; border-radius: 8px;
    border: 2px solid $muted; background: $base;
}
QRadioButton::indicator:hover { border-color: $accent; }
QRadioButton::indicator:checked {
    border-color: $accent;
    background: qradialgradient(cx: 0.5, cy: 0.5, radius: 0.5, fx: 0.5, fy: 0.5,
                                stop: 0 $accent, stop: 0.55 $accent, stop: 0.65 $base, stop: 1 $base);
}
QRadioButton::indicator:disabled { border-color: $disabled; }
"""


def style_sheet(theme: Theme) -> str:
    """The application style sheet for ``theme`` (only the radio buttons if the template is not installed)."""
    values = {k: v for k, v in theme.__dict__.items() if isinstance(v, str)}
    path = STYLE_DIR / "quantbench.qss"
    template = path.read_text(encoding="utf-8") if path.is_file() else ""
    return Template(template + _RADIO_RULES).safe_substitute(values)


def apply_theme(app: QApplication, theme: Theme) -> None:
    """Fonts, palette and style sheet for the whole application."""
    # The same look on every platform, and it honours the palette. Set once: a new style object for every switch
    # of theme would delete the one every widget was polished with while they live on.
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    font = QFont(app.font())
    font.setPointSize(BASE_POINT_SIZE)
    app.setFont(font)
    app.setPalette(_palette(theme))
    app.setStyleSheet(style_sheet(theme))
