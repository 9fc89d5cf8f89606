"""Train the bundled demo model and write resources/demo/digits_cnn.{pt,onnx}.

Run from the repository root:

    .venv/bin/python resources/demo/make_demo.py

The run is deterministic: fixed seed, one thread, deterministic kernels, a fixed
number of epochs and a shuffling order drawn from a seeded generator, so running
it again on the same machine and library versions writes the same weights.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

EPOCHS = 30
SEED = 0
BATCH_SIZE = 32
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
OPSET = 17


@contextmanager
def _reproducible_torch(seed: int) -> Iterator[None]:
    """Seed torch, use one thread and deterministic kernels; restore all of it afterwards.

    Restoring matters because tests import ``train``: the caller's thread count,
    RNG state and determinism flag must be as they were.
    """
    import torch

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(deterministic)
            torch.set_num_threads(threads)


def train(epochs: int = EPOCHS, seed: int = SEED) -> nn.Module:
    """Train the demo CNN on the digits train split; returns it in eval mode."""
    import torch
    from torch import nn

    from core.datasets.builtin import digits_split
    from core.models.architectures import build_architecture

    x_train, y_train, _, _ = digits_split()
    x = torch.from_numpy(x_train)
    y = torch.from_numpy(y_train)
    with _reproducible_torch(seed):
        model = build_architecture("demo")
        optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        steps_per_epoch = -(-len(x) // BATCH_SIZE)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=LEARNING_RATE, epochs=epochs, steps_per_epoch=steps_per_epoch
        )
        loss_fn = nn.CrossEntropyLoss()
        # The shuffling order comes from its own seeded generator, not the global RNG.
        order_rng = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=order_rng)
            for start in range(0, len(x), BATCH_SIZE):
                batch = order[start : start + BATCH_SIZE]
                optimizer.zero_grad()
                loss_fn(model(x[batch]), y[batch]).backward()
                optimizer.step()
                schedule.step()
    return model.eval()


def digits_test_accuracy(model: nn.Module) -> float:
    """Top-1 accuracy of ``model`` on the digits test split."""
    import torch

    from core.datasets.builtin import digits_split

    _, _, x_test, y_test = digits_split()
    with torch.no_grad():
        predicted = model(torch.from_numpy(x_test)).argmax(dim=1).numpy()
    return float((predicted == y_test).mean())


def export_onnx(model: nn.Module, path: Path) -> None:
    """Write ``model`` as one self-contained ONNX file with a dynamic batch axis."""
    import torch

    from core.models.demo_arch import DEMO_INPUT_SHAPE

    example = torch.zeros(DEMO_INPUT_SHAPE, dtype=torch.float32)
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated but gives a small, plain graph
        # (BatchNorm folded into the convolutions) that every runtime reads.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )


def write_digits_split() -> None:
    """The fixed digits split as row indices (core.datasets.builtin.DIGITS_SPLIT_FILE), so loading
    the digits needs no scikit-learn import; the same bytes on every run."""
    import json

    from core.datasets.builtin import DIGITS_SPLIT_FILE, _digits_arrays, sklearn_digits_split_indices

    _, y = _digits_arrays()
    train, test = sklearn_digits_split_indices(y)
    text = json.dumps({"rows": len(y), "train": train.tolist(), "test": test.tolist()}, separators=(",", ":"))
    DIGITS_SPLIT_FILE.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {DIGITS_SPLIT_FILE} ({len(train)} train, {len(test)} test)")


def main() -> None:
    """Train, report test accuracy, and write the state dict and the ONNX file."""
    import torch

    from core.study.demo import DEMO_ONNX, DEMO_WEIGHTS

    write_digits_split()
    model = train()
    print(f"test accuracy: {digits_test_accuracy(model):.4f}")
    DEMO_WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), DEMO_WEIGHTS)
    export_onnx(model, DEMO_ONNX)
    print(f"wrote {DEMO_WEIGHTS} ({DEMO_WEIGHTS.stat().st_size} bytes)")
    print(f"wrote {DEMO_ONNX} ({DEMO_ONNX.stat().st_size} bytes)")


if __name__ == "__main__":
    # Run as a script from a checkout that is not pip-installed: make core/ importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
