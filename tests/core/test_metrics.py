"""Metrics, fidelity, latency statistics and the verdict against hand-computed numbers."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import numpy as np
import pytest

from core.measures.fidelity import SQNR_CAP_DB, fidelity
from core.measures.latency_stats import (
    bootstrap_median_ci,
    ci_half_width_rel,
    latency_stats,
    median_ci,
    quantiles,
    throughput_per_s,
)
from core.measures.task_metrics import classification_metrics, predicted_labels, regression_metrics
from core.measures.verdict import baseline_verdict, verdict
from core.study.result import Grade
from core.study.spec import Task, Thresholds

# --------------------------------------------------------------------------- classification

# true:  0 0 1 1 2 2 2
# pred:  0 1 1 1 2 0 2
#                 pred 0  1  2
# confusion  true 0 [ 1, 1, 0 ]
#                 1 [ 0, 2, 0 ]
#                 2 [ 1, 0, 2 ]
Y_TRUE = np.array([0, 0, 1, 1, 2, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 0, 2])


def _one_hot_logits(labels: np.ndarray, n: int) -> np.ndarray:
    logits = np.full((labels.size, n), -1.0, dtype=np.float32)
    logits[np.arange(labels.size), labels] = 3.0
    return logits


def test_classification_metrics_by_hand() -> None:
    m = classification_metrics(Y_TRUE, _one_hot_logits(Y_PRED, 3))
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert m["accuracy"] == pytest.approx(5 / 7)
    # precision = tp / predicted: 1/2, 2/3, 2/2; recall = tp / true: 1/2, 2/2, 2/3
    per = {c["label"]: c for c in m["per_class"]}
    assert per[0]["precision"] == pytest.approx(0.5)
    assert per[1]["precision"] == pytest.approx(2 / 3)
    assert per[2]["precision"] == pytest.approx(1.0)
    assert per[0]["recall"] == pytest.approx(0.5)
    assert per[1]["recall"] == pytest.approx(1.0)
    assert per[2]["recall"] == pytest.approx(2 / 3)
    assert per[0]["f1"] == pytest.approx(0.5)
    assert per[1]["f1"] == pytest.approx(0.8)
    assert per[2]["f1"] == pytest.approx(0.8)
    assert [c["support"] for c in m["per_class"]] == [2, 2, 3]
    assert m["precision_macro"] == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert m["recall_macro"] == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)
    assert m["f1_macro"] == pytest.approx(0.7)
    json.dumps(m)


def test_classification_from_labels_matches_logits() -> None:
    assert classification_metrics(Y_TRUE, Y_PRED, n_classes=3) == classification_metrics(
        Y_TRUE, _one_hot_logits(Y_PRED, 3)
    )


def test_unseen_class_still_has_a_row_and_column() -> None:
    # Four output classes, class 3 never true and never predicted.
    m = classification_metrics(Y_TRUE, _one_hot_logits(Y_PRED, 4))
    assert m["confusion_matrix"] == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    assert m["per_class"][3] == {"label": 3, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # Macro averages cover the classes that occur, so the empty class does not drag them down.
    assert m["f1_macro"] == pytest.approx(0.7)


def test_zero_division_is_zero() -> None:
    # Class 1 is never predicted: its precision is undefined and reported as 0.
    m = classification_metrics(np.array([0, 1, 1]), np.array([0, 0, 0]), n_classes=2)
    assert m["per_class"][1]["precision"] == 0.0
    assert m["per_class"][1]["recall"] == 0.0
    assert m["confusion_matrix"] == [[1, 0], [2, 0]]


def test_binary_single_score_thresholds() -> None:
    probs = np.array([[0.2], [0.7], [0.51], [0.1]])
    assert predicted_labels(probs).tolist() == [0, 1, 1, 0]
    logits = np.array([[-2.0], [0.3], [1.5], [-0.1]])
    assert predicted_labels(logits).tolist() == [0, 1, 1, 0]
    m = classification_metrics(np.array([0, 1, 0, 0]), probs)
    assert m["confusion_matrix"] == [[2, 1], [0, 1]]


# --------------------------------------------------------------------------- regression


def test_regression_metrics_by_hand() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([[1.5], [2.0], [2.0], [4.0]])  # errors 0.5, 0, -1, 0
    m = regression_metrics(y, pred)
    assert m["mse"] == pytest.approx((0.25 + 1.0) / 4)
    assert m["mae"] == pytest.approx(1.5 / 4)
    # R^2 = 1 - SSE/SST = 1 - 1.25 / 5
    assert m["r2"] == pytest.approx(0.75)


def test_regression_nonfinite_predictions_are_an_error() -> None:
    with pytest.raises(ValueError, match="1 predicted values are NaN"):
        regression_metrics(np.zeros(3), np.array([0.0, np.nan, 1.0]))


def test_regression_size_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError):
        regression_metrics(np.zeros(4), np.zeros(5))


# --------------------------------------------------------------------------- fidelity


def test_fidelity_known_noise() -> None:
    base = np.array([[3.0, 4.0], [0.0, 5.0]])
    var = base + np.array([[0.1, -0.1], [0.0, 0.2]])
    f = fidelity(base, var, classification=False)
    # signal = 9 + 16 + 25 = 50; noise = 0.01 + 0.01 + 0.04 = 0.06
    assert f["sqnr_db"] == pytest.approx(10 * math.log10(50 / 0.06))
    assert f["mse"] == pytest.approx(0.06 / 4)
    assert f["mae"] == pytest.approx(0.4 / 4)
    assert f["max_abs"] == pytest.approx(0.2)
    cos0 = (3 * 3.1 + 4 * 3.9) / (5 * math.hypot(3.1, 3.9))
    assert f["cosine"] == pytest.approx((cos0 + 1.0) / 2)
    assert f["identical"] is False
    assert f["nonfinite"] == 0
    assert "agreement" not in f


def test_fidelity_identical_outputs_are_capped_not_infinite() -> None:
    base = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    f = fidelity(base, base.copy(), classification=True)
    assert f["sqnr_db"] == SQNR_CAP_DB
    assert f["identical"] is True
    assert f["cosine"] == pytest.approx(1.0)
    assert f["agreement"] == 1.0
    assert f["flipped"] == [] and f["flipped_count"] == 0
    json.dumps(f, allow_nan=False)


def test_fidelity_agreement_and_flipped_indices() -> None:
    base = _one_hot_logits(np.array([0, 1, 2, 1, 0]), 3)
    var = _one_hot_logits(np.array([0, 2, 2, 1, 1]), 3)
    f = fidelity(base, var, classification=True)
    assert f["agreement"] == pytest.approx(3 / 5)
    assert f["flipped"] == [1, 4]
    assert f["flipped_count"] == 2
    assert f["flipped_from"] == [1, 0] and f["flipped_to"] == [2, 1]


def test_fidelity_nonfinite_outputs_are_reported() -> None:
    base = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    var = np.array([[1.0, 0.0], [np.nan, 1.0], [0.0, np.inf]])
    f = fidelity(base, var, classification=True)
    assert f["nonfinite"] == 2
    assert f["nonfinite_samples"] == 2
    # Only sample 0 is finite in both; it matches exactly.
    assert f["mse"] == 0.0 and f["identical"] is True
    assert f["flipped"] == [1, 2]
    assert f["agreement"] == pytest.approx(1 / 3)
    json.dumps(f, allow_nan=False)


def test_fidelity_all_nonfinite_gives_none() -> None:
    f = fidelity(np.ones((2, 2)), np.full((2, 2), np.nan), classification=False)
    assert f["mse"] is None and f["sqnr_db"] is None and f["nonfinite"] == 4
    json.dumps(f, allow_nan=False)


def test_fidelity_zero_signal_is_finite() -> None:
    f = fidelity(np.zeros((2, 2)), np.ones((2, 2)), classification=False)
    assert f["sqnr_db"] == -SQNR_CAP_DB
    assert f["cosine"] == 0.0


def test_fidelity_shape_mismatch() -> None:
    with pytest.raises(ValueError):
        fidelity(np.zeros((3, 2)), np.zeros((3, 3)), classification=False)


# --------------------------------------------------------------------------- latency


def test_latency_stats_of_one_to_hundred() -> None:
    samples = [float(i) for i in range(1, 101)]
    s = latency_stats(samples, block_size=4, first_ms=250.0, batch_size=8)
    assert s.p50 == 50.5
    assert s.p90 == pytest.approx(90.1)
    assert s.p99 == pytest.approx(99.01)
    assert s.mean == 50.5
    assert s.std == pytest.approx(np.std(samples, ddof=1))
    assert (s.min, s.max, s.n) == (1.0, 100.0, 100)
    # n = 100: the 95 % order-statistic interval is x(40)..x(61) (1-based).
    assert s.ci95_p50 == (40.0, 61.0)
    # IQR = 75.25 - 25.75 = 49.5
    assert s.iqr_rel == pytest.approx(49.5 / 50.5)
    assert s.noisy is True
    assert (s.block_size, s.first_ms, s.batch_size) == (4, 250.0, 8)


def test_quiet_samples_are_not_noisy() -> None:
    samples = [10.0] * 45 + [10.5] * 10 + [11.0] * 45
    s = latency_stats(samples)
    assert s.p50 == 10.5
    assert s.iqr_rel == pytest.approx(1.0 / 10.5)
    assert s.noisy is False
    loud = latency_stats([10.0] * 45 + [10.5] * 10 + [11.2] * 45)
    assert loud.iqr_rel == pytest.approx(1.2 / 10.5)
    assert loud.noisy is True


@pytest.mark.parametrize(
    ("n", "ranks"),
    # Classic table of distribution-free 95 % median intervals (1-based ranks).
    [(6, (1, 6)), (10, (2, 9)), (20, (6, 15)), (40, (14, 27)), (100, (40, 61))],
)
def test_median_ci_ranks(n: int, ranks: tuple[int, int]) -> None:
    assert median_ci(list(range(1, n + 1))) == (float(ranks[0]), float(ranks[1]))


def test_ci_half_width_rel() -> None:
    assert ci_half_width_rel([5.0] * 30) == 0.0
    assert ci_half_width_rel([1.0, 2.0, 3.0]) == math.inf  # too few for 95 %
    # 1..100: (61 - 40) / 2 / 50.5
    assert ci_half_width_rel(list(range(1, 101))) == pytest.approx(10.5 / 50.5)


def test_bootstrap_median_ci_is_seeded_and_brackets_the_median() -> None:
    samples = np.random.default_rng(1).lognormal(0.0, 0.2, size=400)
    a = bootstrap_median_ci(samples, n_boot=500, seed=3)
    b = bootstrap_median_ci(samples, n_boot=500, seed=3)
    assert a == b
    assert a[0] < np.median(samples) < a[1]
    lo, hi = median_ci(samples)
    # Both intervals estimate the same thing; they agree to within their own width.
    assert abs(a[0] - lo) < (hi - lo) and abs(a[1] - hi) < (hi - lo)


def test_latency_stats_rejects_empty() -> None:
    with pytest.raises(ValueError):
        latency_stats([])


def test_latency_stats_is_json_ready() -> None:
    json.dumps(asdict(latency_stats([2.0])), allow_nan=False)


def test_throughput() -> None:
    assert throughput_per_s(4.0, 8) == 2000.0
    assert throughput_per_s(0.5, 1) == 2000.0
    with pytest.raises(ValueError):
        throughput_per_s(0.0, 1)


# --------------------------------------------------------------------------- verdict

T = Thresholds()


def _verdict(**overrides: object):
    kwargs: dict[str, object] = dict(
        task=Task.CLASSIFICATION,
        baseline_metrics={"accuracy": 0.90},
        metrics={"accuracy": 0.90},
        baseline_size=1000,
        size=1000,
        baseline_p50=10.0,
        p50=10.0,
        fastest_float_p50=8.0,
        agreement=None,
        thresholds=T,
    )
    kwargs.update(overrides)
    return verdict(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("accuracy", "grade"),
    [
        (0.8950, Grade.GOOD),  # drop 0.5 points < 1
        (0.8901, Grade.GOOD),  # drop 0.99 points
        (0.8899, Grade.ACCEPTABLE),  # drop 1.01 points
        (0.8600, Grade.ACCEPTABLE),  # drop 4 points
        (0.8510, Grade.ACCEPTABLE),  # drop 4.9 points
        (0.8490, Grade.BAD),  # drop 5.1 points > 5
        (0.9300, Grade.GOOD),  # improved
    ],
)
def test_accuracy_grades(accuracy: float, grade: Grade) -> None:
    v = _verdict(metrics={"accuracy": accuracy})
    assert v.accuracy is grade
    assert v.accuracy_drop == pytest.approx(0.90 - accuracy)


def test_accuracy_reason_is_a_sentence() -> None:
    v = _verdict(metrics={"accuracy": 0.896})
    assert v.reasons[0] == "accuracy dropped 0.4 points (good: under 1 point)"


@pytest.mark.parametrize(
    ("size", "grade"),
    [
        (500, Grade.GOOD),  # exactly 50 % saved
        (250, Grade.GOOD),
        (501, Grade.ACCEPTABLE),
        (1000, Grade.ACCEPTABLE),  # same size
        (1001, Grade.BAD),  # larger
    ],
)
def test_size_grades(size: int, grade: Grade) -> None:
    v = _verdict(size=size)
    assert v.size is grade
    assert v.size_reduction == pytest.approx(1 - size / 1000)


@pytest.mark.parametrize(
    ("p50", "grade"),
    [
        (7.0, Grade.GOOD),  # exactly 30 % less
        (5.0, Grade.GOOD),
        (7.01, Grade.ACCEPTABLE),
        (10.0, Grade.ACCEPTABLE),
        (10.99, Grade.ACCEPTABLE),  # 9.9 % slower
        (11.01, Grade.BAD),  # 10.1 % slower
    ],
)
def test_speed_grades(p50: float, grade: Grade) -> None:
    v = _verdict(p50=p50)
    assert v.speed is grade
    assert v.speedup == pytest.approx(10.0 / p50)
    assert v.speedup_vs_fastest_float == pytest.approx(8.0 / p50)


@pytest.mark.parametrize(
    ("accuracy", "size", "p50", "overall"),
    [
        (0.895, 400, 10.0, Grade.GOOD),  # accuracy good, size good
        (0.895, 1000, 6.0, Grade.GOOD),  # accuracy good, speed good
        (0.895, 800, 9.0, Grade.ACCEPTABLE),  # accuracy good, nothing else good
        (0.870, 400, 6.0, Grade.ACCEPTABLE),  # accuracy only acceptable
        (0.800, 100, 1.0, Grade.BAD),  # accuracy bad wins over everything
        (0.900, 1200, 12.0, Grade.BAD),  # larger and slower
        (0.900, 300, 60.0, Grade.ACCEPTABLE),  # much smaller but 6x slower: a trade, not a win
        (0.900, 800, 12.0, Grade.ACCEPTABLE),  # slower, and not clearly smaller
        (0.900, 1100, 5.0, Grade.ACCEPTABLE),  # faster but larger
    ],
)
def test_overall_rule(accuracy: float, size: int, p50: float, overall: Grade) -> None:
    v = _verdict(metrics={"accuracy": accuracy}, size=size, p50=p50)
    assert v.overall is overall
    assert len(v.reasons) == 4 and all(isinstance(r, str) and r for r in v.reasons)


def test_regression_uses_r2_drop() -> None:
    v = _verdict(task=Task.REGRESSION, baseline_metrics={"r2": 0.80}, metrics={"r2": 0.78})
    assert v.accuracy_drop == pytest.approx(0.02)
    assert v.accuracy is Grade.ACCEPTABLE


def test_unlabelled_uses_agreement() -> None:
    v = _verdict(task=Task.UNLABELLED, baseline_metrics=None, metrics=None, agreement=0.995, size=400)
    assert v.accuracy_drop == pytest.approx(0.005)
    assert v.accuracy is Grade.GOOD
    assert v.overall is Grade.GOOD


def test_unknown_accuracy() -> None:
    v = _verdict(task=Task.UNLABELLED, baseline_metrics=None, metrics=None, agreement=None, size=400)
    assert v.accuracy is Grade.UNKNOWN and v.accuracy_drop is None
    assert v.overall is Grade.UNKNOWN


def test_missing_size_and_latency_are_unknown() -> None:
    v = _verdict(size=None, p50=None)
    assert v.size is Grade.UNKNOWN and v.speed is Grade.UNKNOWN
    assert v.speedup is None and v.size_reduction is None


def test_thresholds_are_recorded_and_user_thresholds_apply() -> None:
    strict = Thresholds(accuracy_drop_good=0.001, accuracy_drop_bad=0.002)
    v = _verdict(metrics={"accuracy": 0.897}, thresholds=strict)
    assert v.accuracy is Grade.BAD
    assert v.thresholds == asdict(strict)
    json.dumps(asdict(v), allow_nan=False, default=str)


def test_baseline_verdict() -> None:
    v = baseline_verdict(T)
    assert {v.accuracy, v.size, v.speed, v.overall} == {Grade.BASELINE}
    assert v.speedup == 1.0
    assert v.thresholds == asdict(T)


@pytest.mark.parametrize("seed", range(6))
def test_metrics_match_scikit_learn(seed: int) -> None:
    """The counting done here gives scikit-learn's numbers, edge cases included: classes that never
    occur, classes only predicted, a constant regression target."""
    from sklearn import metrics as skm

    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 12))
    n = int(rng.integers(1, 300))
    y = rng.integers(0, max(1, n_classes - 2), n)  # the top classes may never be true...
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, n_classes, n))  # ...but can be predicted
    got = classification_metrics(y, pred, n_classes)
    labels = list(range(n_classes))
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=labels, average=None, zero_division=0)
    mp, mr, mf, _ = skm.precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert (got["precision_macro"], got["recall_macro"], got["f1_macro"]) == pytest.approx((mp, mr, mf))
    assert [c["precision"] for c in got["per_class"]] == pytest.approx(list(p))
    assert [c["recall"] for c in got["per_class"]] == pytest.approx(list(r))
    assert [c["f1"] for c in got["per_class"]] == pytest.approx(list(f))
    assert [c["support"] for c in got["per_class"]] == list(s)
    assert got["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=labels).tolist()

    target = rng.normal(size=n) if seed % 3 else np.full(n, 2.5)
    guess = target + rng.normal(scale=0.3, size=n) if seed % 2 else target.copy()
    reg = regression_metrics(target, guess)
    assert reg["mse"] == pytest.approx(skm.mean_squared_error(target, guess))
    assert reg["mae"] == pytest.approx(skm.mean_absolute_error(target, guess))
    if n >= 2:
        assert reg["r2"] == pytest.approx(skm.r2_score(target, guess))


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1001, 20_000])
def test_quantiles_match_numpy_percentile_exactly(n: int) -> None:
    x = np.random.default_rng(n).lognormal(-3.0, 0.5, n)
    qs = (0, 25, 50, 90, 99, 99.5, 100)
    np.testing.assert_allclose(quantiles(x, qs), np.percentile(x, qs), rtol=4e-16, atol=0)  # within an ulp
    with pytest.raises(ValueError, match="0-100"):
        quantiles(x, (-1,))


def test_quantiles_interpolate_between_order_statistics() -> None:
    # 1, 2, 3, 4 (shuffled): the median sits halfway between 2 and 3, p90 at 3.7.
    assert quantiles(np.array([4.0, 1.0, 3.0, 2.0]), (50, 90, 0, 100)) == pytest.approx([2.5, 3.7, 1.0, 4.0])
