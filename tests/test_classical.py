"""Unit tests of tinyml_helpers.classical, its exercise checks, and the notebook-03 plots/widget."""
from __future__ import annotations

import cv2
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from tinyml_helpers import classical as C
from tinyml_helpers.checks import ExerciseNotSolved
from tinyml_helpers.checks import classical as K


@pytest.fixture(scope="module")
def small_run():
    frames = C.generate_frames(24, seed=0)
    blobs = C.run_blob_stage(frames)
    svm = C.train_svm(blobs.features, blobs.labels)
    return frames, blobs, svm


# ---------------------------------------------------------------- scenes
def test_generator_is_seeded_and_shaped():
    a, b = C.generate_frames(3, seed=5), C.generate_frames(3, seed=5)
    c = C.generate_frames(3, seed=6)
    assert all(np.array_equal(x.gray, y.gray) and np.array_equal(x.mask, y.mask) for x, y in zip(a, b))
    assert not all(np.array_equal(x.gray, y.gray) for x, y in zip(a, c))
    f = a[0]
    assert f.gray.shape == f.mask.shape == (72, 96) and f.gray.dtype == np.uint8
    assert set(np.unique(f.mask)).issubset({0, 255})
    assert f.boxes.shape == (len(f.labels), 4) and set(f.labels.tolist()).issubset({0, 1})


def test_boxes_lie_inside_the_frame_and_objects_show_in_the_mask():
    for f in C.generate_frames(10, seed=2, noise=0.0):
        for x, y, w, h in f.boxes:
            assert x >= 0 and y >= 0 and x + w <= 96 and y + h <= 72 and w > 0 and h > 0
            assert (f.mask[y:y + h, x:x + w] > 0).mean() > 0.2, "a visible object should light up the mask"


def test_people_are_tall_and_cars_are_wide():
    frames = C.generate_frames(40, seed=3, noise=0.0)
    boxes = np.concatenate([f.boxes for f in frames])
    labels = np.concatenate([f.labels for f in frames])
    aspect = boxes[:, 2] / boxes[:, 3]
    assert np.median(aspect[labels == 0]) < 0.7 < 1.2 < np.median(aspect[labels == 1])


def test_noise_adds_mask_pixels():
    quiet = C.generate_frames(5, seed=4, noise=0.0)
    loud = C.generate_frames(5, seed=4, noise=4.0)
    assert sum((f.mask > 0).sum() for f in loud) > 2 * sum((f.mask > 0).sum() for f in quiet)


@pytest.mark.parametrize("kwargs, message", [
    ({"noise": -1.0}, "noise must lie"), ({"size_scale": 9.0}, "size_scale"),
    ({"min_objects": 5, "max_objects": 2}, "min_objects"), ({"p_car": 2.0}, "p_car"),
    ({"height": 8}, "at least 16x16")])
def test_generator_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        C.generate_frames(1, **kwargs)


def test_generator_rejects_bad_counts():
    with pytest.raises(ValueError, match="positive number of frames"):
        C.generate_frames(0)


def test_renderers_draw_shapes():
    rng = np.random.default_rng(0)
    person = np.zeros((120, 80), np.uint8)
    C.render_person(person, 40, 110, 100, rng)
    car = np.zeros((80, 160), np.uint8)
    C.render_car(car, 80, 70, 140, rng)
    _, _, pw, ph = cv2.boundingRect(person)
    _, _, cw, ch = cv2.boundingRect(car)
    assert ph > 2 * pw and cw > 1.5 * ch


# ---------------------------------------------------------------- blob stage
def test_clean_mask_removes_specks_and_keeps_blobs():
    m = np.zeros((30, 30), np.uint8)
    m[5:20, 5:12] = 255
    m[25, 25] = 255
    out = C.clean_mask(m)
    assert out[25, 25] == 0 and out[10, 8] == 255


def test_detect_blobs_boxes_holes_and_min_area():
    m = np.zeros((40, 40), np.uint8)
    m[5:25, 5:25] = 255
    m[10:15, 10:15] = 0      # a hole
    m[30:32, 30:32] = 255    # 4 pixels: below the minimum area
    blobs = C.detect_blobs(m)
    assert len(blobs) == 1
    b = blobs[0]
    assert b.box == (5, 5, 20, 20) and b.holes == 1 and b.area == 400 - 25
    assert len(C.detect_blobs(m, min_area=1)) == 2


def test_detect_blobs_accepts_boolean_and_rejects_bad_input():
    m = np.zeros((10, 10), bool)
    m[2:8, 3:6] = True
    assert C.detect_blobs(m)[0].box == (3, 2, 3, 6)
    with pytest.raises(ValueError, match="2-D"):
        C.detect_blobs(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        C.detect_blobs(np.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="min_area"):
        C.detect_blobs(np.zeros((4, 4), np.uint8), min_area=0)


def test_moments_by_hand_match_opencv():
    rng = np.random.default_rng(1)
    for _ in range(5):
        b = (rng.random((9, 13)) < 0.4).astype(np.uint8)
        m = cv2.moments(b, binaryImage=True)
        want = [m["m00"], m["m10"] / m["m00"], m["m01"] / m["m00"], m["mu20"], m["mu11"], m["mu02"]]
        assert np.allclose(C.moments_by_hand(b), want)
    with pytest.raises(ValueError, match="empty"):
        C.moments_by_hand(np.zeros((3, 3)))


def test_features_are_invariant_to_translation_and_sensible():
    b = np.zeros((12, 6), np.uint8)
    b[1:11, 1:5] = 1
    f = C.blob_features(b)
    assert f.shape == (len(C.FEATURE_NAMES),) and f.dtype == np.float32
    shifted = np.pad(b, ((3, 0), (0, 2)))
    assert np.allclose(C.blob_features(shifted)[3:], f[3:], atol=1e-4), "Hu moments ignore position"
    assert f[1] == pytest.approx(0.5) and f[2] == pytest.approx(40 / 72)
    with pytest.raises(ValueError, match="non-empty"):
        C.blob_features(np.zeros((3, 3)))


def test_hu_log_and_iou_and_matching():
    assert C.hu_log(np.array([1e-2, -1e-4])).tolist() == [2.0, -4.0]
    assert C.box_iou((0, 0, 2, 2), (0, 0, 2, 2)) == 1.0
    assert C.box_iou((0, 0, 2, 2), (5, 5, 2, 2)) == 0.0
    pairs = C.match_detections([(0, 0, 4, 4), (0, 0, 4, 5)], [(0, 0, 4, 5)])
    assert pairs == [(1, 0, 1.0)], "one detection per object, the best first"
    with pytest.raises(ValueError, match="iou_threshold"):
        C.match_detections([], [], iou_threshold=0.0)


def test_crop_keeps_aspect_and_handles_edges():
    gray = np.zeros((40, 40), np.uint8)
    gray[10:30, 18:22] = 255
    crop = C.crop_for_cnn(gray, (18, 10, 4, 20))
    assert crop.shape == (32, 32) and crop.max() <= 1.0
    cols = (crop > 0.5).any(axis=0).sum()
    rows = (crop > 0.5).any(axis=1).sum()
    assert rows > 3 * cols, "a tall box stays tall in the square crop"
    assert C.crop_for_cnn(gray, (38, 38, 5, 5)).shape == (32, 32)


# ---------------------------------------------------------------- pipeline + costs
def test_blob_stage_and_svm_work_on_clean_frames(small_run):
    frames, blobs, svm = small_run
    assert 0.6 < blobs.recall <= 1.0 and 0.6 < blobs.precision <= 1.0
    assert blobs.features.shape == (len(blobs.labels), 10) and blobs.crops.shape[1:] == (32, 32)
    assert (svm.predict(blobs.features) == blobs.labels).mean() > 0.9
    with pytest.raises(ValueError, match="at least one frame"):
        C.run_blob_stage([])


def test_train_svm_validates():
    with pytest.raises(ValueError, match="single class"):
        C.train_svm(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="one label each"):
        C.train_svm(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="kernel"):
        C.train_svm(np.eye(2), np.array([0, 1]), kernel="poly")


def test_svm_operation_and_memory_counts(small_run):
    _, _, svm = small_run
    n_sv, d = svm[-1].support_vectors_.shape
    assert C.svm_rbf_ops(n_sv, d) == n_sv * (2 * d + 2 + C.OPS_MODEL["exp"][0]) + 2
    assert C.svm_ops(svm) == 2 * d + C.svm_rbf_ops(n_sv, d)
    mem = C.svm_memory_bytes(svm)
    assert mem["flash"] == 4 * (n_sv * d + n_sv + 1 + 2 * d) and mem["ram"] == 4 * (d + 1)
    with pytest.raises(ValueError, match="positive integer"):
        C.svm_rbf_ops(0, 10)
    with pytest.raises(ValueError, match="fitted sklearn SVC"):
        C.svm_ops(object())


def test_blob_stage_ops_counts_each_pass():
    ops = C.blob_stage_ops(10, 20, contour_pixels=30, box_pixels=50, blob_pixels=40, n_blobs=2)
    assert ops["majority_filter"] == 200 * 9 and ops["closing"] == 200 * 16 and ops["border_scan"] == 400
    assert ops["border_trace"] == 240 and ops["bounding_boxes"] == 120
    assert ops["moments"] == 50 + 40 * 17 and ops["features"] == 2 * (80 + 8 * 20 + 2)
    assert ops["total"] == sum(v for k, v in ops.items() if k != "total")
    with pytest.raises(ValueError, match="height"):
        C.blob_stage_ops(0, 5, 0, 0, 0, 0)
    assert C.resize_ops(32) == 32 * 32 * 8


def test_classical_costs_are_consistent(small_run):
    frames, blobs, svm = small_run
    c = C.classical_costs(frames, blobs, svm)
    assert c["ops_per_frame_mean"] == pytest.approx(c["blob_stage_ops_mean"] + c["blobs_per_frame_mean"] * c["svm_ops_per_blob"])
    assert c["working_memory_bytes"] > c["blob_stage_memory_bytes"] >= 2 * 72 * 96
    assert sum(c["breakdown"].values()) == pytest.approx(c["ops_per_frame_mean"])
    with pytest.raises(ValueError, match="same frames"):
        C.classical_costs(frames[:3], blobs, svm)


def test_grid_and_widget(small_run):
    _, _, svm = small_run
    rows = C.noise_size_grid(svm, [0.0, 5.0], [1.0], n_frames=4, progress=False,
                             crop_classifier=lambda crops: np.zeros(len(crops), int))
    assert len(rows) == 2 and rows[0]["recall"] > rows[1]["recall"]
    assert 0.0 <= rows[0]["cnn_accuracy"] <= 1.0
    from tinyml_helpers import widgets
    box = widgets.classical_breakdown_explorer(rows, noise=0.0, size=1.0)
    assert box is not None
    with pytest.raises(ValueError, match="grid values"):
        widgets.classical_breakdown_explorer(rows, noise=0.3, size=1.0)
    with pytest.raises(ValueError, match="no precomputed cell"):
        widgets.describe_breaking_point(rows, 9.0, 1.0)
    with pytest.raises(ValueError, match="at least one noise"):
        C.noise_size_grid(svm, [], [1.0])


def test_plots_draw():
    from tinyml_helpers import plots
    f = C.generate_frames(1, seed=0)[0]
    assert len(plots.draw_detections(f.gray, f.mask, f.boxes, f.labels)) == 2
    assert plots.plot_accuracy_vs_cost({"a": (1e3, 0.9), "b": (1e5, 0.95)}).get_xscale() == "log"
    assert len(plots.plot_ops_breakdown({"x": 10.0, "y": 100.0}).patches) == 2
    with pytest.raises(ValueError, match="no grid rows"):
        plots.plot_breaking_point([dict(noise=0.0, size=1.0, recall=1, precision=1, accuracy=1, cnn_accuracy=1)], 2.0)


def test_tiny_cnn_runs_on_crops():
    import torch
    model = C.tiny_cnn()
    assert tuple(model(torch.zeros(3, 1, 32, 32)).shape) == (3, 2)


# ---------------------------------------------------------------- checks
def test_checks_accept_the_reference(capsys):
    assert K.check_blob_moments(C.moments_by_hand)
    assert K.check_svm_ops(C.svm_rbf_ops)
    assert K.check_cleaning_ops(72 * 96 * 25)


def test_checks_explain_the_usual_slips(capsys, monkeypatch):
    monkeypatch.delenv("TINYML_EXPECT_SOLVED", raising=False)

    def swapped(b):
        m = C.moments_by_hand(b)
        return m[[0, 2, 1, 3, 4, 5]]

    def raw(b):
        ys, xs = np.nonzero(b)
        m = C.moments_by_hand(b)
        return np.array([m[0], m[1], m[2], (xs * xs).sum(), (xs * ys).sum(), (ys * ys).sum()])

    assert not K.check_blob_moments(swapped)
    assert "swapped" in capsys.readouterr().out
    assert not K.check_blob_moments(raw)
    assert "raw moments" in capsys.readouterr().out
    assert not K.check_svm_ops(lambda n, d: n * (2 * d + 2) + 2)
    assert "exp" in capsys.readouterr().out
    assert not K.check_cleaning_ops(72 * 96 * 9)
    assert "majority filter only" in capsys.readouterr().out


def test_checks_report_not_attempted_and_raise_when_solutions_expected(capsys, monkeypatch):
    def todo(*_):
        raise NotImplementedError

    monkeypatch.delenv("TINYML_EXPECT_SOLVED", raising=False)
    assert not K.check_svm_ops(todo)
    assert "not attempted" in capsys.readouterr().out
    assert not K.check_cleaning_ops(...)
    monkeypatch.setenv("TINYML_EXPECT_SOLVED", "1")
    with pytest.raises(ExerciseNotSolved):
        K.check_blob_moments(todo)
