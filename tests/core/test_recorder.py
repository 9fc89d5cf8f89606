"""The one recorder the CLI and the window share, driven by real engine event streams into a real history."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.errors import BadInput
from core.history.recorder import StudyRecording
from core.history.saved_variants import SIDECAR_SUFFIX, VariantSaver
from core.history.store import StudyStore
from core.study.events import Event, StudyFinished, StudyStarted, VariantFailed, VariantFinished
from core.study.result import VariantResult, variant_to_json
from core.study.spec import SchemeSpec, StudySpec, TimingSpec, VariantSpec


def _spec() -> StudySpec:
    """The demo model, 60 digits, the baseline and two ONNX Runtime variants, timed briefly."""
    from core.engine.run import demo_study_spec

    spec = demo_study_spec(TimingSpec(threads=1, max_time_s=0.15, min_samples=10, warmup_runs=1, warmup_s=0.01))
    return replace(
        spec,
        dataset=replace(spec.dataset, limit=60),
        variants=(VariantSpec(scheme=SchemeSpec("ort-int8-dynamic")), VariantSpec(scheme=SchemeSpec("ort-fp16"))),
    )


@pytest.fixture(scope="module")
def demo_run() -> tuple[StudySpec, list[Event]]:
    """(spec, every event) of one real, short demo study."""
    from core.engine.run import run_study

    spec = _spec()
    return spec, list(run_study(spec))


class _Told:
    """Collects what a StudyRecording tells its driver."""

    def __init__(self) -> None:
        self.store_failed: list[str] = []
        self.save_failed: list[str] = []
        self.recorded: list[str] = []

    def listeners(self) -> dict[str, Any]:
        return {
            "on_store_failed": self.store_failed.append,
            "on_save_failed": self.save_failed.append,
            "on_recorded": self.recorded.append,
        }


def _finished_variants(events: list[Event]) -> list[VariantResult]:
    return [e.result for e in events if isinstance(e, (VariantFinished, VariantFailed))]


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))  # what a round trip through the store's JSON gives (tuples -> lists)


def test_a_live_study_is_recorded_whole_and_its_variants_kept(tmp_path: Path) -> None:
    from core.engine.run import run_study

    spec = _spec()
    told = _Told()
    saver = VariantSaver(tmp_path / "saved")
    recording = StudyRecording(
        spec, open_store=lambda: StudyStore(tmp_path / "home"), saver=saver, name="live", **told.listeners()
    )
    workdir = recording.workdir
    assert workdir is not None and workdir.is_dir()
    events = list(recording.record(run_study(spec, workdir=workdir)))

    final = next(e for e in events if isinstance(e, StudyFinished)).result
    store = StudyStore(tmp_path / "home")
    assert _as_json(store.load_study(spec.study_id).to_json_dict()) == _as_json(final.to_json_dict())
    summary = store.summary(spec.study_id)
    assert (summary.status, summary.name, summary.variants_finished) == ("finished", "live", 3)
    assert recording.finished and told.store_failed == [] and told.save_failed == []
    # One "recorded" per state the history took: the start, each variant, the end.
    assert told.recorded == [spec.study_id] * (1 + len(_finished_variants(events)) + 1)
    # The two built variants are kept with their sidecars; the baseline is the user's own file; the work folder goes.
    built = {r.label for r in final.results[1:] if r.ok}
    assert set(saver.saved) == built and built
    for label in built:
        sidecar = json.loads((tmp_path / "saved" / f"{label}{SIDECAR_SUFFIX}").read_text())
        assert sidecar["study_id"] == spec.study_id and sidecar["label"] == label
    assert not workdir.exists()


def test_a_stream_closed_midway_keeps_its_finished_variants_as_interrupted(tmp_path: Path) -> None:
    from core.engine.run import run_study

    spec = _spec()
    recording = StudyRecording(spec, open_store=lambda: StudyStore(tmp_path))
    stream = recording.record(run_study(spec))
    seen: list[Event] = []
    for event in stream:
        seen.append(event)
        if len(_finished_variants(seen)) == 2:
            break
    stream.close()  # the driver went away (the window closed, the CLI was killed politely)

    store = StudyStore(tmp_path)
    stored = store.load_study(spec.study_id)
    assert stored.status == "interrupted" and recording.finished
    expected = [variant_to_json(r) for r in _finished_variants(seen)]
    assert [variant_to_json(r) for r in stored.results] == _as_json(expected)
    summary = store.summary(spec.study_id)
    assert (summary.variants_finished, summary.variants_planned) == (2, 3)
    assert store.load_spec(spec.study_id).dataset.limit == 60  # still re-runnable


def test_an_engine_error_marks_the_study_failed_and_goes_on_to_the_driver(tmp_path: Path, demo_run: tuple) -> None:
    spec, events = demo_run
    start = next(e for e in events if isinstance(e, StudyStarted))
    first = next(e for e in events if isinstance(e, VariantFinished))

    def broken() -> Any:
        yield start
        yield first
        raise RuntimeError("the runtime crashed")

    recording = StudyRecording(spec, open_store=lambda: StudyStore(tmp_path))
    with pytest.raises(RuntimeError, match="crashed"):
        list(recording.record(broken()))
    stored = StudyStore(tmp_path).load_study(spec.study_id)
    assert stored.status == "failed"
    assert [variant_to_json(r) for r in stored.results] == _as_json([variant_to_json(first.result)])


def test_a_history_that_cannot_be_opened_is_one_sentence_and_every_event_passes(
    tmp_path: Path, demo_run: tuple
) -> None:
    spec, events = demo_run
    not_a_folder = tmp_path / "home-is-a-file"
    not_a_folder.write_text("x")
    told = _Told()
    recording = StudyRecording(spec, open_store=lambda: StudyStore(not_a_folder), **told.listeners())
    assert list(recording.record(iter(events))) == events
    (sentence,) = told.store_failed
    assert sentence.startswith("the study is not recorded in the history (QuantBench's home ")
    assert "home-is-a-file" in sentence and sentence.endswith("; the run goes on.")
    assert told.recorded == [] and recording.store is None and not recording.finished


class _FullAfterOneVariant(StudyStore):
    """A real history whose disk fills up after the first variant."""

    def add_variant(self, study_id: str, index: int, result: VariantResult) -> None:
        if index > 0:
            raise BadInput(f"could not write the history database {self.path}: no space left on device.")
        super().add_variant(study_id, index, result)


def test_a_store_failing_midway_warns_once_and_keeps_what_was_committed(tmp_path: Path, demo_run: tuple) -> None:
    spec, events = demo_run
    told = _Told()
    recording = StudyRecording(spec, open_store=lambda: _FullAfterOneVariant(tmp_path), **told.listeners())
    assert list(recording.record(iter(events))) == events
    assert told.store_failed == [
        f"the rest of the study is not recorded in the history (could not write the history database "
        f"{tmp_path / 'history.sqlite3'}: no space left on device); the run goes on."
    ]
    stored = StudyStore(tmp_path).load_study(spec.study_id)
    assert [variant_to_json(r) for r in stored.results] == _as_json([variant_to_json(_finished_variants(events)[0])])


def test_without_a_store_the_events_pass_untouched(demo_run: tuple) -> None:
    spec, events = demo_run
    told = _Told()
    recording = StudyRecording(spec, open_store=None, **told.listeners())
    assert recording.store is None and recording.workdir is None
    assert list(recording.record(iter(events))) == events
    assert not recording.finished and (told.store_failed, told.save_failed, told.recorded) == ([], [], [])
