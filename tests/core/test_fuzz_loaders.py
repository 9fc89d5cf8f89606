"""Fuzzing the loaders (issue #5): random and mutated bytes get BadInput or load, never anything else.

Each loader sees a bounded number of deterministic examples (hypothesis, derandomized,
no example database) so CI time stays fixed: random bytes behind every format's magic,
and real tiny files (an ONNX graph, a state dict zip, a legacy PyTorch file, the shared
TFLite models, .npz and .csv data) with bytes overwritten, inserted or cut off. A file
that still loads may be fed to a runtime; those go through ``run_study_isolated`` so a
native crash ends only the child process.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.datasets import load_dataset
from core.errors import BadInput
from core.models import detect_file, load_model
from core.models.loaded import LoadedModel
from core.study.events import StudyFinished, VariantFailed
from core.study.result import VariantStatus
from core.study.spec import DatasetSpec, ModelSpec, StudySpec, TimingSpec, VariantSpec
from tests.shared_data import SHARED_DATA

SHARED = SHARED_DATA
TFLITE_MODELS = sorted(SHARED.glob("*.tflite")) if SHARED.is_dir() else []
FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MAGICS = [b"", b"PK\x03\x04", b"\x80\x02", b"\x08\x08\x12", b"\x00\x00\x00\x00TFL3", b"\x93NUMPY", b"<html>"]
EXTENSIONS = [".onnx", ".pt", ".pth", ".pt2", ".tflite", ".bin"]


@st.composite
def mutations(draw: st.DrawFn) -> list[tuple[str, float, bytes]]:
    """Edits to apply to a file: overwrite, insert or cut, at relative positions."""
    edit = st.tuples(
        st.sampled_from(["overwrite", "overwrite", "insert", "cut"]),
        st.floats(0.0, 1.0, exclude_max=True),
        st.binary(min_size=1, max_size=8),
    )
    return draw(st.lists(edit, min_size=1, max_size=6))


def mutate(data: bytes, edits: list[tuple[str, float, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, where, chunk in edits:
        at = int(where * len(out)) if out else 0
        if kind == "overwrite":
            out[at : at + len(chunk)] = chunk
        elif kind == "insert":
            out[at:at] = chunk
        else:
            del out[at:]
    return bytes(out)


def load_or_refuse(path: Path, **kwargs: Any) -> LoadedModel | None:
    """load_model, where BadInput is an accepted answer; anything else escapes and fails the test."""
    try:
        return load_model(ModelSpec(path=str(path), **kwargs))
    except BadInput as exc:
        message = str(exc)
        assert "\n" not in message and message, message
        assert str(path) in message, message
        return None


# ----------------------------------------------------------------------------- sources


class _Sources(SimpleNamespace):
    """The files to mutate; a short repr keeps hypothesis's failure reports readable."""

    def __repr__(self) -> str:
        return "sources"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory, kit: SimpleNamespace) -> SimpleNamespace:
    """Real tiny files to mutate, and a scratch folder each example overwrites."""
    import torch

    root = tmp_path_factory.mktemp("fuzz_sources")
    onnx_bytes = kit.make_mlp_onnx(root / "mlp.onnx").read_bytes()
    torch.save({"w": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.ones(3)}, str(root / "sd.pt"))
    torch.save({"w": torch.zeros(8)}, str(root / "legacy.pth"), _use_new_zipfile_serialization=False)
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    npz, npz_compressed = io.BytesIO(), io.BytesIO()
    np.savez(npz, x=x, y=np.arange(6) % 2)
    np.savez_compressed(npz_compressed, x=x, y=np.arange(6) % 2)
    return _Sources(
        scratch=tmp_path_factory.mktemp("fuzz_scratch"),
        onnx=onnx_bytes,
        state_dict=(root / "sd.pt").read_bytes(),
        legacy=(root / "legacy.pth").read_bytes(),
        npz=npz.getvalue(),
        npz_compressed=npz_compressed.getvalue(),
        csv=b"a,b,c,d,label\n1,2,3,4,0\n5,6,7,8,1\n9,10,11,12,0\n0.5,-1,2e3,4,1\n",
    )


# ----------------------------------------------------------------------------- model files


@FUZZ
@given(magic=st.sampled_from(MAGICS), body=st.binary(max_size=1024), ext=st.sampled_from(EXTENSIONS))
def test_random_bytes_are_refused_by_detection_and_loading(
    sources: SimpleNamespace, magic: bytes, body: bytes, ext: str
) -> None:
    path = sources.scratch / f"random{ext}"
    path.write_bytes(magic + body)
    try:
        detect_file(path)
    except BadInput as exc:
        assert str(path) in str(exc)
    load_or_refuse(path, arch="demo")


@pytest.mark.parametrize("source", ["onnx", "state_dict", "legacy"])
@FUZZ
@given(edits=mutations())
def test_mutated_model_files_load_or_are_refused(sources: SimpleNamespace, source: str, edits: Any) -> None:
    path = sources.scratch / f"mutated-{source}.bin"
    path.write_bytes(mutate(getattr(sources, source), edits))
    load_or_refuse(path)


@pytest.mark.skipif(not TFLITE_MODELS, reason="the shared TFLite models are not here")
@FUZZ
@given(which=st.sampled_from(TFLITE_MODELS or [Path("absent")]), edits=mutations())
def test_mutated_tflite_files_load_or_are_refused(sources: SimpleNamespace, which: Path, edits: Any) -> None:
    path = sources.scratch / "mutated.tflite"
    # Keep the identifier so the LiteRT reader, not detection, meets the damage.
    data = which.read_bytes()
    path.write_bytes(data[:8] + mutate(data[8:], edits))
    load_or_refuse(path)


# ----------------------------------------------------------------------------- datasets


def _dataset_or_refusal(spec: str) -> None:
    try:
        ds = load_dataset(DatasetSpec.parse(spec))
    except BadInput as exc:
        message = str(exc)
        assert "\n" not in message and spec in message, message
        return
    assert len(ds) > 0 and ds.x.dtype.kind in "fiu"


@pytest.mark.parametrize("source", ["npz", "npz_compressed"])
@FUZZ
@given(edits=mutations())
def test_mutated_npz_files_load_or_are_refused(sources: SimpleNamespace, source: str, edits: Any) -> None:
    path = sources.scratch / f"mutated-{source}.npz"
    path.write_bytes(mutate(getattr(sources, source), edits))
    _dataset_or_refusal(f"npz:{path}")


@FUZZ
@given(edits=mutations())
def test_mutated_csv_files_load_or_are_refused(sources: SimpleNamespace, edits: Any) -> None:
    path = sources.scratch / "mutated.csv"
    path.write_bytes(mutate(sources.csv, edits))
    _dataset_or_refusal(f"csv:{path}")


@FUZZ
@given(text=st.text(alphabet=st.sampled_from("0123456789.,;-e \t\n\"abnNaIif"), max_size=200))
def test_csv_made_of_number_like_text_loads_or_is_refused(sources: SimpleNamespace, text: str) -> None:
    path = sources.scratch / "typed.csv"
    path.write_text(text, encoding="utf-8")
    _dataset_or_refusal(f"csv:{path}")


@pytest.fixture(scope="module")
def pictures() -> dict[str, bytes]:
    """One small noisy picture in each format the folder loader reads, as bytes."""
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    encoded = {}
    for fmt, suffix in (("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"), ("GIF", ".gif"), ("TIFF", ".tif")):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, fmt)
        encoded[suffix] = buffer.getvalue()
    return encoded


@FUZZ
@given(suffix=st.sampled_from([".png", ".jpg", ".bmp", ".gif", ".tif"]), edits=mutations())
def test_mutated_images_in_a_folder_load_or_are_refused(
    sources: SimpleNamespace, pictures: dict[str, bytes], suffix: str, edits: Any
) -> None:
    import warnings

    from core.models.loaded import TensorInfo

    folder = sources.scratch / "images"
    for old in folder.glob("*/*"):
        old.unlink()
    (folder / "cat").mkdir(parents=True, exist_ok=True)
    (folder / "cat" / f"picture{suffix}").write_bytes(mutate(pictures[suffix], edits))
    spec = f"folder:{folder}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about damaged metadata it skips
            ds = load_dataset(DatasetSpec.parse(spec), TensorInfo("x", ("batch", 3, 8, 8), "float32"))
    except BadInput as exc:
        assert "\n" not in str(exc) and spec in str(exc) and f"picture{suffix}" in str(exc), str(exc)
        return
    assert ds.x.shape == (1, 3, 8, 8) and np.all(np.isfinite(ds.x))


# ----------------------------------------------------------------------------- through a runtime, isolated

QUICK = TimingSpec(threads=1, max_time_s=0.02, min_samples=3, max_samples=20, warmup_runs=1, warmup_s=0.0)


def _mutants(data: bytes, folder: Path, suffix: str, keep: int, loads: Callable[[Path], bool], seed: int) -> list[Path]:
    """Up to ``keep`` mutated copies of ``data`` that still load here: they will reach the runtime."""
    rng = np.random.default_rng(seed)
    found: list[Path] = []
    for i in range(200):
        blob = bytearray(data)
        for at in rng.integers(16, len(blob), size=int(rng.integers(1, 6))):
            blob[int(at)] = int(rng.integers(0, 256))
        path = folder / f"mutant-{i}{suffix}"
        path.write_bytes(bytes(blob))
        if loads(path):
            found.append(path)
            if len(found) == keep:
                break
        else:
            path.unlink()
    return found


def _run_isolated_with_variants(base: Path, mutants: list[Path]) -> None:
    from core.engine.isolation import run_study_isolated

    spec = StudySpec(
        model=ModelSpec(path=str(base)),
        dataset=DatasetSpec.parse("synthetic:8"),
        variants=tuple(VariantSpec(path=str(p)) for p in mutants),
        timing=QUICK,
    )
    try:
        events = list(run_study_isolated(spec, hang_timeout_s=60))
    except BadInput:
        return  # refused in the child before the study started: the parent is still here
    final = events[-1]
    assert isinstance(final, StudyFinished)
    rows = final.result.results
    assert rows and rows[0].label == "fp32"
    for row in rows:
        assert row.status in (VariantStatus.OK, VariantStatus.FAILED), row
        if row.status is VariantStatus.FAILED:
            assert row.error and "\n" not in row.error
    failed = [e for e in events if isinstance(e, VariantFailed)]
    assert all(e.error for e in failed)


def test_mutated_onnx_models_that_still_load_run_in_a_child_process(
    sources: SimpleNamespace, tmp_path: Path
) -> None:
    base = tmp_path / "mlp.onnx"
    base.write_bytes(sources.onnx)
    mutants = _mutants(sources.onnx, tmp_path, ".onnx", 8, lambda p: load_or_refuse(p) is not None, seed=7)
    assert mutants, "some mutations leave the graph loadable"
    _run_isolated_with_variants(base, mutants)


@pytest.mark.skipif(not TFLITE_MODELS, reason="the shared TFLite models are not here")
def test_mutated_tflite_models_that_still_load_run_in_a_child_process(tmp_path: Path) -> None:
    base = TFLITE_MODELS[0]

    def loads(path: Path) -> bool:
        try:
            return load_or_refuse(path) is not None
        except UnicodeDecodeError:  # a damaged tensor name (test_bad_inputs pins that bug); never reaches a runtime
            return False

    mutants = _mutants(base.read_bytes(), tmp_path, ".tflite", 8, loads, seed=11)
    assert mutants, "some mutations leave the flatbuffer loadable"
    _run_isolated_with_variants(base, mutants)
