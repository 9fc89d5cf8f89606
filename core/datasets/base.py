"""A dataset ready for evaluation: inputs as float32 arrays, labels optional."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.study.spec import Task


@dataclass(frozen=True)
class PoolRecipe:
    """How to make a calibration pool of ``samples`` samples, the same ones every time (a seeded random draw):
    ``make(n)`` gives its first n samples. Such a pool is never held whole: a draw is made when a variant asks
    for calibration samples, and let go of between builds."""

    samples: int
    make: Callable[[int], np.ndarray]


@dataclass
class Dataset:
    #: Inputs, shape (N, *sample_shape), float32 (or the dtype the model wants).
    x: np.ndarray
    #: Labels (N,) int64 for classification, (N,) or (N, k) float32 for regression; None if unlabelled.
    y: np.ndarray | None
    #: The task as far as the data can tell; the engine refines it with the model's outputs.
    task: Task
    spec: str  # e.g. "builtin:digits"
    class_names: list[str] | None = None
    preprocessing: str = "none"
    #: A calibration pool that does not overlap x (e.g. the train split); None: draw from x.
    calibration: np.ndarray | None = None
    #: Where the calibration pool came from (the result JSON's ``dataset.calibration.source``):
    #: "train_split", "holdout", "separate_draw", "same" (the evaluated samples) or another dataset's spec.
    calibration_source: str = "same"
    #: Whether calibration samples are also evaluated (asked for with ``same``, or the same data named again).
    calibration_overlaps: bool = True
    #: Whether the pool's samples are independent random draws in no order (a synthetic draw): then its
    #: first n samples are as random a draw as any, and are taken as they lie, without a copy.
    calibration_exchangeable: bool = False
    #: Set where the pool can be made at will (a synthetic draw): then ``calibration`` stays None, a draw is made
    #: when a variant asks for samples, and ``forget_calibration_draws`` lets go of it until the next one asks.
    calibration_recipe: PoolRecipe | None = None
    #: Per-sample image shape for showing inputs (e.g. (8, 8) or (H, W, 3)); None if not images.
    image_shape: tuple[int, ...] | None = None
    notes: list[str] = field(default_factory=list)
    #: Calibration draws already made, by (n, seed, pool): see ``calibration_samples``.
    _calibration_drawn: dict[tuple[int, int, int], np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    #: The calibration block of a separate pool let go of (forget_calibration_draws); None while it is held.
    _pool_released: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def calibration_samples(self, n: int, seed: int = 0) -> np.ndarray:
        """Up to ``n`` samples for calibrating static quantization, drawn reproducibly.

        Drawn once per (n, seed) and shared: every scheme of a study that calibrates on the same number
        of samples gets the same array (not a copy each), so it must not change it. Every sample of the pool,
        or the first n of an exchangeable pool, is the pool itself or a view of it, not a copy."""
        if self._pool_released is not None:
            raise RuntimeError("the calibration pool was let go of: no variant was left to calibrate")
        recipe = self.calibration_recipe if self.calibration is None else None
        pool = self.calibration if self.calibration is not None and len(self.calibration) else self.x
        n = min(n, recipe.samples if recipe is not None else len(pool))
        key = (n, seed, 0 if recipe is not None else id(pool))
        if key not in self._calibration_drawn:
            if recipe is not None:  # the pool's first n samples made for this draw, not the whole pool
                self._calibration_drawn[key] = recipe.make(n)
            elif n == len(pool) or self.calibration_exchangeable:  # a view: a 200-image draw copied is 120 MB
                self._calibration_drawn[key] = pool[:n]
            else:
                rng = np.random.default_rng(seed)
                idx = np.sort(rng.choice(len(pool), size=n, replace=False))
                self._calibration_drawn[key] = pool[idx]
        return self._calibration_drawn[key]

    def forget_calibration_draws(self, pool_too: bool = False) -> None:
        """Let go of the shared calibration draws (once no variant left to build calibrates), and with
        ``pool_too`` of a separate calibration pool as well (once nothing can ask for a draw again: a 256-image
        pool is 150 MB). The pool's description stays for the result; a draw asked for later is a mistake,
        except from a pool with a recipe, which is made again (the same samples)."""
        self._calibration_drawn.clear()
        if pool_too and self.calibration is not None and self._pool_released is None:
            self._pool_released = self.calibration_info()
            self.calibration = None

    @property
    def holds_calibration(self) -> bool:
        """Whether calibration samples apart from the evaluated ones are held now (a pool, or a draw of one)."""
        return self.calibration is not None or any(
            not np.may_share_memory(d, self.x) for d in self._calibration_drawn.values())

    def calibration_info(self) -> dict[str, Any]:
        """The ``dataset.calibration`` block of the result JSON: where static schemes calibrate."""
        if self._pool_released is not None:
            return dict(self._pool_released)
        if self.calibration is None and self.calibration_recipe is not None:
            samples = self.calibration_recipe.samples
        else:
            samples = len(self.calibration if self.calibration is not None and len(self.calibration) else self.x)
        return {
            "source": self.calibration_source,
            "samples": int(samples),
            "overlaps_evaluation": bool(self.calibration_overlaps),
        }

    def info(self) -> dict[str, Any]:
        """The ``dataset`` block of the result JSON."""
        return {
            "spec": self.spec,
            "samples": len(self),
            "task": self.task.value,
            "classes": len(self.class_names) if self.class_names else None,
            "class_names": self.class_names,
            "sample_shape": list(self.x.shape[1:]),
            # Each input array with its per-sample shape and dtype (several for a model with several inputs).
            "inputs": _describe_arrays(self.x),
            "preprocessing": self.preprocessing,
            "has_labels": self.y is not None,
            "notes": list(self.notes),
            "calibration": self.calibration_info(),
        }


def _describe_arrays(x: np.ndarray) -> list[dict[str, Any]]:
    from core.models.io_spec import describe_arrays

    return describe_arrays(x)
