"""A model's tokenizer, to show token ids as the text they stand for (the window's flipped samples).

A Hugging Face model folder, and many ONNX exports, keep a ``tokenizer.json`` beside the weights. It is data (the
vocabulary and the rules), read by the ``tokenizers`` package (installed with the ``transformers`` extra); nothing
in it runs as code. Without the package, or without the file, token ids are shown as numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

TOKENIZER_FILE = "tokenizer.json"
#: A tokenizer file larger than this is not read (real ones are a few megabytes).
MAX_TOKENIZER_BYTES = 64 * 2**20

Decoder = Callable[[Sequence[int]], str]


def tokenizer_file(model_path: str | Path) -> Path | None:
    """The ``tokenizer.json`` of the model at ``model_path``: inside it when it is a folder (a Hugging Face
    model), else beside the file; None when there is none, or it is a link or too large to be one."""
    path = Path(model_path)
    folder = path if path.is_dir() else path.parent
    candidate = folder / TOKENIZER_FILE
    if candidate.is_symlink() or not candidate.is_file():
        return None
    return candidate if candidate.stat().st_size <= MAX_TOKENIZER_BYTES else None


def load_decoder(path: Path) -> tuple[Decoder | None, str | None]:
    """(ids -> text, None), or (None, why not) when the ``tokenizers`` package is missing or the file is not a
    tokenizer it can read."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None, (f"{path.name} is not read: the tokenizers package is missing "
                      "(pip install 'quantbench[transformers]')")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust parser's errors have their own type
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        return None, f"{path} could not be read as a tokenizer ({first})"

    def decode(ids: Sequence[int]) -> str:
        return tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    return decode, None
