"""The scheme catalogue as a checklist: one line of explanation each, options, and why a scheme cannot apply."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.schemes.base import SchemeInfo, SchemeParam
from core.schemes.params import param_problem
from core.study.spec import SchemeSpec
from qtapp.panels.compact import compact_combos
from qtapp.panels.elided_label import ElidedLabel


class SchemeRow(QWidget):
    """A checkbox, its one-line description, the reason it is disabled, and its options.

    An option the scheme cannot take (a sparsity of 2, a sample count of "lots", a choice a hand-edited
    project file made up) is marked and said under the options as it is typed, and ``problem`` keeps Run
    disabled until it is mended: the study is not started to fail at that variant's build."""

    toggled = Signal()

    def __init__(self, info: SchemeInfo, parent=None) -> None:
        super().__init__(parent)
        self.info = info
        self.baseline = info.family == "baseline"
        self.check = QCheckBox(info.title or info.id, self)
        self.check.setObjectName(f"scheme-{info.id}")
        tip = f"{info.id}: {info.description}\nNeeds: {info.needs}"
        self.check.setToolTip(tip)
        self.check.toggled.connect(self._on_toggled)
        # One line each keeps a long catalogue scannable; the whole sentence is the tooltip.
        self.description = ElidedLabel(info.description, self)
        self.description.setObjectName("mutedLabel")
        self.description.setToolTip(tip)
        self.reason = QLabel(self)
        self.reason.setObjectName("errorLabel")
        self.reason.setWordWrap(True)
        self.reason.hide()
        self.editors: dict[str, QComboBox | QLineEdit] = {}
        self.options = QWidget(self)
        options_box = QVBoxLayout(self.options)
        options_box.setContentsMargins(24, 0, 0, 4)
        options_box.setSpacing(2)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        options_box.addLayout(form)
        for param in info.params:
            editor = _editor_for(param, self.options)
            self.editors[param.name] = editor
            label = QLabel(param.name, self.options)
            label.setToolTip(param.explained)
            form.addRow(label, editor)
            if isinstance(editor, QComboBox):
                editor.currentTextChanged.connect(self._options_edited)
            else:
                editor.textChanged.connect(self._options_edited)
        self.option_error = QLabel(self.options)
        self.option_error.setObjectName("errorLabel")
        self.option_error.setWordWrap(True)
        self.option_error.hide()
        options_box.addWidget(self.option_error)  # not a form row: a wrapped label there gets one line's height
        #: Parameters a project file named that the scheme does not have: said under the options, left out.
        self._dropped: list[str] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        layout.setSpacing(1)
        layout.addWidget(self.check)
        text = QVBoxLayout()
        text.setContentsMargins(24, 0, 0, 0)
        text.addWidget(self.description)
        text.addWidget(self.reason)
        layout.addLayout(text)
        layout.addWidget(self.options)
        if self.baseline:
            self.check.setChecked(True)
            self.check.setEnabled(False)
            self.check.setToolTip(tip + "\nAlways included: every variant is compared with it.")
        self.options.setVisible(False)

    def _on_toggled(self, checked: bool) -> None:
        self.options.setVisible(checked and bool(self.editors))
        self._options_edited()  # emits toggled

    def set_reason(self, reason: str | None) -> None:
        """Disable the row with ``reason`` (None enables it again)."""
        if self.baseline:
            return
        self.reason.setText(f"Not available: {reason}" if reason else "")
        self.reason.setVisible(bool(reason))
        self.check.setEnabled(reason is None)
        if reason:
            self.check.setChecked(False)

    def problem(self) -> str | None:
        """Why this ticked row's options cannot run ("ort-int8-static: samples must be …"), or None."""
        if not self.check.isChecked():
            return None
        for param in self.info.params:
            problem = param_problem(param, _value_of(self.editors[param.name]))
            if problem:
                return f"{self.info.id}: {problem}"
        return None

    def _options_edited(self, *_args) -> None:
        """Mark the options that cannot be taken, say why under them, and let the window re-check Run."""
        for param in self.info.params:
            editor = self.editors[param.name]
            bad = param_problem(param, _value_of(editor)) is not None
            if isinstance(editor, QComboBox) and not bad:
                _drop_made_up_choices(editor, param)
            if editor.property("invalid") != bad:
                editor.setProperty("invalid", bad)
                editor.style().polish(editor)  # the style sheet marks [invalid="true"] editors
        problem = self.problem()
        said = [problem.split(": ", 1)[1]] if problem else []
        if self._dropped:
            said.append(f"not options of this scheme, left out: {', '.join(self._dropped)}")
        text = "; ".join(said)
        self.option_error.setText(text[:1].upper() + text[1:] + ("." if text else ""))
        self.option_error.setVisible(bool(text))
        self.toggled.emit()

    def spec(self) -> SchemeSpec:
        """The scheme with the options the user changed from their defaults."""
        params = []
        for param in self.info.params:
            value = _value_of(self.editors[param.name])
            if value != param.default:
                params.append((param.name, value))
        return SchemeSpec(self.info.id, tuple(params))

    def set_params(self, params: tuple[tuple[str, str], ...]) -> None:
        """Show ``params`` in the editors, as they are: a value the scheme cannot take is shown and marked."""
        names = {p.name for p in self.info.params}
        self._dropped = [f"{key}={value}" for key, value in params if key not in names]
        for param in self.info.params:
            _set_value(self.editors[param.name], dict(params).get(param.name, param.default))
        self._options_edited()


def _editor_for(param: SchemeParam, parent: QWidget) -> QComboBox | QLineEdit:
    if param.choices:
        combo = QComboBox(parent)
        combo.addItems(list(param.choices))
        combo.setCurrentText(param.default)
        combo.setToolTip(param.explained)
        return combo
    edit = QLineEdit(param.default, parent)
    edit.setToolTip(param.explained)
    return edit


def _value_of(editor: QComboBox | QLineEdit) -> str:
    return editor.currentText() if isinstance(editor, QComboBox) else editor.text().strip()


def _set_value(editor: QComboBox | QLineEdit, value: str) -> None:
    if isinstance(editor, QComboBox):
        if editor.findText(value) < 0:
            editor.addItem(value)  # not one of its choices: shown (and marked) rather than replaced unseen
        editor.setCurrentText(value)
    else:
        editor.setText(value)


def _drop_made_up_choices(combo: QComboBox, param: SchemeParam) -> None:
    """Once a real choice is picked, take out the items ``_set_value`` added for values that were not one."""
    for index in reversed(range(combo.count())):
        if combo.itemText(index) not in param.choices:
            combo.removeItem(index)


class SchemesPanel(QGroupBox):
    """The scheme checklist; its part of the StudySpec (the scheme variants) is read with
    ``selected`` and written with ``set_spec``."""

    selection_changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__("Schemes", parent)
        self.rows: dict[str, SchemeRow] = {}
        #: True until the catalogue has arrived (or failed to).
        self.loading = True
        #: Schemes to tick once both the catalogue and the model's applicability are in (set_spec).
        self._wanted: list[SchemeSpec] | None = None
        #: Whether the rows' enabled state is the loaded model's (set_applicability with reasons).
        self._applicability_known = False
        self.status = QLabel("Loading the scheme catalogue…", self)
        self.status.setObjectName("mutedLabel")
        self.status.setWordWrap(True)
        self._rows_box = QVBoxLayout()
        self._rows_box.setSpacing(4)
        all_button = QPushButton("All", self)
        all_button.setToolTip("Tick every scheme that applies to this model.")
        all_button.clicked.connect(lambda: self._check_all(True))
        none_button = QPushButton("None", self)
        none_button.clicked.connect(lambda: self._check_all(False))
        buttons = QHBoxLayout()
        buttons.addWidget(all_button)
        buttons.addWidget(none_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addLayout(self._rows_box)

    def set_catalogue(self, infos: list[SchemeInfo]) -> None:
        self.loading = False
        for row in self.rows.values():
            row.setParent(None)
            row.deleteLater()
        self.rows = {}
        for info in infos:
            row = SchemeRow(info, self)
            row.toggled.connect(self.selection_changed)
            self._rows_box.addWidget(row)
            self.rows[info.id] = row
        compact_combos(self)
        self.status.setText("Open a model to see which schemes apply." if infos else "No schemes are available.")
        self._applicability_known = False  # new rows: the window passes the model's reasons next
        self._apply_wanted()

    def set_catalogue_error(self, message: str) -> None:
        self.loading = False
        self.status.setText(f"The scheme catalogue could not be loaded: {message}")
        self.status.setObjectName("errorLabel")
        self.status.style().polish(self.status)  # the style sheet picks rules by object name

    def set_applicability(self, reasons: dict[str, str | None] | None) -> None:
        """Reasons per scheme id from the loaded model; None (no model) enables everything."""
        for scheme_id, row in self.rows.items():
            row.set_reason((reasons or {}).get(scheme_id))
        if reasons is not None:
            blocked = sum(1 for r in reasons.values() if r)
            self.status.setText(
                f"{blocked} of {len(self.rows)} schemes do not apply to this model." if blocked else
                "Every scheme applies to this model."
            )
        self._applicability_known = reasons is not None
        self._apply_wanted()
        self.selection_changed.emit()

    def problem(self) -> str | None:
        """The first ticked scheme whose options cannot run, and why (None: all can)."""
        return next((p for row in self.rows.values() if (p := row.problem())), None)

    def selected(self) -> list[SchemeSpec]:
        """The ticked schemes (the baseline is always run by the engine and is left out)."""
        return [row.spec() for row in self.rows.values() if row.check.isChecked() and not row.baseline]

    def set_spec(self, schemes: list[SchemeSpec]) -> None:
        """Tick ``schemes`` with their parameters (this panel's part of a StudySpec).

        The catalogue and the model load in the background, in either order, and a scheme that
        does not apply to the model cannot be ticked: the choice is applied now and again as each
        arrives, and kept until the model's applicability is known.
        """
        self._wanted = list(schemes)
        self._apply_wanted()

    def _apply_wanted(self) -> None:
        if self._wanted is None or not self.rows:
            return
        self.set_selected(self._wanted)
        if self._applicability_known:
            self._wanted = None

    def set_selected(self, specs: list[SchemeSpec]) -> None:
        """Tick exactly ``specs`` (those that apply to the model), with their parameters."""
        wanted = {s.id: s for s in specs}
        for scheme_id, row in self.rows.items():
            if row.baseline:
                continue
            spec = wanted.get(scheme_id)
            if spec is not None:
                row.set_params(spec.params)
            row.check.setChecked(spec is not None and row.check.isEnabled())
        self.selection_changed.emit()

    def _check_all(self, checked: bool) -> None:
        for row in self.rows.values():
            if not row.baseline and row.check.isEnabled():
                row.check.setChecked(checked)
