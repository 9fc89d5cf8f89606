"""Keep the setup column narrow: combo boxes size to a few characters, not their longest item."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QSizePolicy, QWidget


def compact_combos(root: QWidget, characters: int = 8) -> None:
    for combo in root.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(characters)
        combo.setSizePolicy(QSizePolicy.Policy.Expanding, combo.sizePolicy().verticalPolicy())
