"""Knowledge-distillation losses: reference values, the usual KL pitfalls, T**2 scaling, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinyml_helpers import config
from tinyml_helpers.distillation import (DistillationLoss, distillation_loss, embedding_loss, kd_loss,
                                         soft_labels, teacher_outputs)
from tinyml_helpers.training import StepOutputs, make_loader, train_classifier


def hand_kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def test_soft_labels_match_the_formula_by_hand():
    z = [2.0, 1.0, -1.0]
    T = 2.0
    e = [math.exp(v / T) for v in z]
    want = [v / sum(e) for v in e]
    got = soft_labels(torch.tensor([z]), T)[0].tolist()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert soft_labels(torch.tensor(z), 1.0).sum().item() == pytest.approx(1.0)  # 1-D works too


def test_large_temperature_gives_uniform_soft_labels_and_small_gives_one_hot():
    z = torch.tensor([[5.0, 1.0, -3.0, 0.5]])
    np.testing.assert_allclose(soft_labels(z, 1e6).numpy(), np.full((1, 4), 0.25), atol=1e-5)
    np.testing.assert_allclose(soft_labels(z, 1e-3).numpy(), [[1.0, 0.0, 0.0, 0.0]], atol=1e-6)
    # entropy grows with T
    ent = [float(-(p * p.log()).sum()) for p in (soft_labels(z, T)[0] for T in (0.5, 1, 4, 16))]
    assert ent == sorted(ent)


def test_kd_loss_matches_a_hand_computed_reference():
    s = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    t = torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 1.0]])
    T = 2.0
    want = 0.0
    for si, ti in zip(s.tolist(), t.tolist()):
        p_t = [math.exp(v / T) for v in ti]; p_t = [v / sum(p_t) for v in p_t]
        p_s = [math.exp(v / T) for v in si]; p_s = [v / sum(p_s) for v in p_s]
        want += hand_kl(p_t, p_s)  # KL(teacher || student)
    want = T * T * want / 2  # mean over the 2 samples, times T^2
    assert float(kd_loss(s, t, T)) == pytest.approx(want, rel=1e-6)


def test_batchmean_is_the_kl_and_mean_divides_by_the_class_count_too():
    torch.manual_seed(0)
    s, t = torch.randn(8, 5), torch.randn(8, 5)
    log_q_s, q_t = F.log_softmax(s, 1), F.softmax(t, 1)
    per_sample = (q_t * (q_t.log() - log_q_s)).sum(1)
    ours = kd_loss(s, t, 1.0)
    assert float(ours) == pytest.approx(float(per_sample.mean()), rel=1e-6)
    with pytest.warns(UserWarning):  # PyTorch itself warns that 'mean' is not the KL
        wrong_mean = F.kl_div(log_q_s, q_t, reduction="mean")
    assert float(wrong_mean) == pytest.approx(float(ours) / 5, rel=1e-6)  # the pitfall


def test_kl_div_needs_log_probabilities_as_input():
    torch.manual_seed(1)
    s = torch.randn(4, 3)
    # identical student and teacher: the true KL is zero ...
    assert float(kd_loss(s, s.clone(), 3.0)) == pytest.approx(0.0, abs=1e-6)
    # ... but feeding probabilities instead of log-probabilities gives a non-zero, wrong value
    q = F.softmax(s / 3.0, 1)
    assert abs(float(F.kl_div(q, q, reduction="batchmean"))) > 0.1


def test_kl_direction_teacher_to_student():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(9.0), 0.0]])  # teacher (0.9, 0.1), student (0.5, 0.5)
    want = hand_kl([0.9, 0.1], [0.5, 0.5])
    reverse = hand_kl([0.5, 0.5], [0.9, 0.1])
    got = float(kd_loss(s, t, 1.0))
    assert got == pytest.approx(want, rel=1e-6) and abs(got - reverse) > 0.05


def grad_norm(T, scale):
    torch.manual_seed(2)
    s = (0.5 * torch.randn(16, 10)).requires_grad_()
    t = 0.5 * torch.randn(16, 10)
    kd_loss(s, t, T, scale_by_t2=scale).backward()
    return float(s.grad.norm())


def test_t_squared_keeps_the_gradient_scale_constant():
    # Without T^2 the gradient shrinks like 1/T^2: doubling T divides it by about 4.
    ratio_raw = grad_norm(8.0, False) / grad_norm(16.0, False)
    assert ratio_raw == pytest.approx(4.0, rel=0.05)
    # With T^2 it stays about the same.
    ratio_scaled = grad_norm(8.0, True) / grad_norm(16.0, True)
    assert ratio_scaled == pytest.approx(1.0, rel=0.05)


def test_teacher_gets_no_gradient():
    s = torch.randn(3, 4, requires_grad=True)
    t = torch.randn(3, 4, requires_grad=True)
    kd_loss(s, t, 2.0).backward()
    assert t.grad is None and s.grad is not None


def test_distillation_loss_combines_the_terms():
    torch.manual_seed(3)
    s, t = torch.randn(6, 4), torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    se, te = torch.randn(6, 5), torch.randn(6, 5)
    kd = kd_loss(s, t, 4.0)
    ce = F.cross_entropy(s, y)
    le = embedding_loss(se, te, "euclidean")
    got = distillation_loss(s, t, y, 4.0, alpha=0.7, beta=0.3, student_emb=se, teacher_emb=te)
    assert float(got) == pytest.approx(float(kd + 0.7 * ce + 0.3 * le), rel=1e-6)
    assert float(distillation_loss(s, t, y, 4.0, alpha=0.0)) == pytest.approx(float(kd), rel=1e-6)


def test_embedding_losses_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 4.0]])
    # squared distances 2 and 4 -> mean 3, divided by width 2
    assert float(embedding_loss(a, b, "euclidean")) == pytest.approx(1.5)
    # cosines 0 and 1 -> mean(1 - cos) = 0.5
    assert float(embedding_loss(a, b, "cosine")) == pytest.approx(0.5)


def test_projection_maps_student_width_to_teacher_width():
    proj = nn.Linear(3, 5, bias=False)
    se, te = torch.randn(4, 3), torch.randn(4, 5)
    got = embedding_loss(se, te, "cosine", projection=proj)
    want = (1 - F.cosine_similarity(proj(se), te, dim=1)).mean()
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    got.backward()
    assert proj.weight.grad is not None


@pytest.mark.parametrize("T", [0, -1.0, float("nan"), float("inf")])
def test_bad_temperature(T):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        soft_labels(torch.zeros(1, 3), T)
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(torch.zeros(1, 3), torch.zeros(1, 3), T)


def test_bad_shapes_and_values():
    with pytest.raises(ValueError, match="same shape"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 4), 2.0)
    with pytest.raises(ValueError, match=r"shape \(batch, n_classes\)"):
        kd_loss(torch.zeros(3), torch.zeros(3), 2.0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        kd_loss([[0.0, 1.0]], torch.zeros(1, 2), 2.0)
    with pytest.raises(ValueError, match="labels must lie in"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 3]), 2.0)
    with pytest.raises(ValueError, match="labels must be a \\(2,\\) tensor"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0]), 2.0)
    with pytest.raises(ValueError, match="alpha must be a finite weight"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1]), 2.0, alpha=-1)
    with pytest.raises(ValueError, match="needs student_emb and teacher_emb"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1]), 2.0, beta=1.0)
    with pytest.raises(ValueError, match=r"pass projection=nn.Linear\(3, 5\)"):
        embedding_loss(torch.zeros(2, 3), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="unknown embedding loss kind"):
        embedding_loss(torch.zeros(2, 3), torch.zeros(2, 3), kind="manhattan")
    with pytest.raises(ValueError, match="different batch sizes"):
        embedding_loss(torch.zeros(2, 3), torch.zeros(4, 3))


def test_distillation_loss_module_builds_a_projection_only_when_needed():
    assert DistillationLoss(4.0, beta=0.0).projection is None
    assert not DistillationLoss(4.0).needs_embedding
    assert DistillationLoss(4.0, beta=1.0, student_dim=8, teacher_dim=8).projection is None
    assert DistillationLoss(4.0, beta=1.0, student_dim=8, teacher_dim=16).projection.in_features == 8
    with pytest.raises(ValueError, match="student_dim and teacher_dim"):
        DistillationLoss(4.0, beta=1.0)
    with pytest.raises(ValueError, match="no teacher outputs"):
        DistillationLoss(4.0)(StepOutputs(torch.zeros(2, 3), torch.tensor([0, 1])))


def tiny_net(width, seed):
    config.seed_everything(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, width), nn.ReLU(), nn.Linear(width, 2))


def test_kd_with_embedding_trains_end_to_end_with_precomputed_teacher_outputs():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(128, 1, 4, 4, generator=g)
    y = (X[:, 0, 0, 0] > 0).long()
    teacher = train_classifier(tiny_net(32, 1), {"train": make_loader(X, y, batch_size=32),
                                                  "val": make_loader(X, y)},
                               epochs=10, lr=1e-2, progress=False, save_checkpoint=False).model
    t_logits, t_emb = teacher_outputs(teacher, X)
    assert t_emb.shape == (128, 32)
    loss = DistillationLoss(temperature=4.0, alpha=1.0, beta=0.5, student_dim=4, teacher_dim=32)
    ls = {"train": make_loader(X, y, t_logits, t_emb, batch_size=32, shuffle=True),
          "val": make_loader(X, y)}
    before = loss.projection.weight.detach().clone()
    res = train_classifier(tiny_net(4, 2), ls, epochs=10, lr=1e-2, loss_fn=loss,
                           progress=False, save_checkpoint=False)
    assert res.curve("train_loss")[-1] < 0.8 * res.curve("train_loss")[0]
    assert res.best_val_accuracy > 0.7
    assert not torch.equal(before, loss.projection.weight), "the projection must learn"
    assert res.loss_module is loss


def test_teacher_outputs_refuses_empty_input():
    with pytest.raises(ValueError, match="empty"):
        teacher_outputs(tiny_net(4, 0), torch.zeros(0, 1, 4, 4))


# --- exercise checks (notebook 01) -------------------------------------------------------
from tinyml_helpers.checks import ExerciseNotSolved  # noqa: E402
from tinyml_helpers.checks.distillation import check_kd_loss, check_soft_labels  # noqa: E402
from tinyml_helpers.distillation import VariantSummary, compare_with_baseline  # noqa: E402


@pytest.fixture
def learner(monkeypatch):
    monkeypatch.delenv("TINYML_EXPECT_SOLVED", raising=False)


def test_checks_accept_the_reference(learner):
    assert check_soft_labels(soft_labels) and check_kd_loss(kd_loss)


@pytest.mark.parametrize("fn, why", [
    (lambda z, T: torch.softmax(z, -1), "temperature is missing"),
    (lambda z, T: torch.softmax(z * T, -1), "multiplied the logits by T"),
    (lambda z, T: torch.softmax(z / T, 0), "wrong axis"),
    (lambda z, T: torch.exp(z / T), "sum to 1"),
    (lambda z, T: None, "not attempted"),
])
def test_soft_label_check_explains_mistakes(learner, capsys, fn, why):
    assert check_soft_labels(fn) is False
    assert why in capsys.readouterr().out


def _kl(s, t, T, reduction="batchmean"):
    return F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction=reduction)


@pytest.mark.parametrize("fn, why", [
    (lambda s, t, T: _kl(s, t, T), "T**2 factor is missing"),
    (lambda s, t, T: T * T * _kl(s, t, T, "mean"), "reduction='mean'"),
    (lambda s, t, T: T * T * _kl(s, t, T, "sum"), "reduction='sum'"),
    (lambda s, t, T: T * T * _kl(t, s, T), "wrong way"),
    (lambda s, t, T: T * T * F.kl_div(F.softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean"),
     "LOG-probabilities"),
    (lambda s, t, T: T * T * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t, 1), reduction="batchmean"),
     "teacher's logits must be softened"),
    (lambda s, t, T: T * T * (-(F.softmax(t / T, 1) * F.log_softmax(s / T, 1)).sum(1)).mean(),
     "soft cross-entropy"),
    (lambda s, t, T: T * T * F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), reduction="batchmean"),
     "log_target=True"),
    (lambda s, t, T: T * T * F.kl_div(F.log_softmax(s / T, 0), F.softmax(t / T, 0), reduction="batchmean"),
     "not the clips (dim=0)"),
])
def test_kd_check_explains_mistakes(learner, capsys, fn, why):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns about reduction='mean'
        assert check_kd_loss(fn) is False
    assert why in capsys.readouterr().out


def test_checks_raise_when_solutions_are_expected(monkeypatch):
    monkeypatch.setenv("TINYML_EXPECT_SOLVED", "1")
    with pytest.raises(ExerciseNotSolved, match="T\\*\\*2 factor"):
        check_kd_loss(lambda s, t, T: _kl(s, t, T))


def test_compare_with_baseline_verdicts():
    out = compare_with_baseline({"scratch": [0.70, 0.71, 0.72], "kd": [0.80, 0.81, 0.79],
                                 "worse": [0.60, 0.61, 0.59], "same": [0.70, 0.73, 0.71]}, "scratch")
    assert out["scratch"].verdict == "baseline" and out["scratch"].gain == 0.0
    assert out["kd"].verdict == "better" and out["kd"].gain == pytest.approx(0.09)
    assert out["worse"].verdict == "worse"
    assert out["same"].verdict == "no measurable difference"
    assert isinstance(out["kd"], VariantSummary) and "+9.0 points" in out["kd"].line()
    assert out["kd"].std == pytest.approx(0.01)
    assert out["scratch"].line() == "scratch: 71.0 % +- 1.0 (3 seed(s)), the baseline"
    with pytest.raises(ValueError, match="baseline 'x'"):
        compare_with_baseline({"a": [0.5]}, "x")
    with pytest.raises(ValueError, match="n_eval"):
        compare_with_baseline({"a": [0.5]}, "a", n_eval=0)


def test_compare_with_baseline_never_calls_one_seed_better():
    # one seed per recipe: a 3-point gain on 384 clips is within the test split's noise
    one = compare_with_baseline({"scratch": [0.80], "kd": [0.83]}, "scratch", n_eval=384)
    assert one["kd"].verdict == "no measurable difference" and one["kd"].stderr > 0.02
    # a large gain on one seed is flagged, but not as a win
    big = compare_with_baseline({"scratch": [0.60], "kd": [0.90]}, "scratch", n_eval=384)
    assert big["kd"].verdict == "higher on one seed"
    # without n_eval, one seed cannot be judged at all
    assert compare_with_baseline({"s": [0.6], "k": [0.9]}, "s")["k"].verdict == "no measurable difference"
    # three seeds with tiny spread: the binomial floor still applies
    tight = compare_with_baseline({"s": [0.800, 0.801, 0.800], "k": [0.815, 0.816, 0.815]}, "s", n_eval=384)
    assert tight["k"].verdict == "no measurable difference"
    with pytest.raises(ValueError, match="fractions"):
        compare_with_baseline({"a": [50.0]}, "a")


# --- teacher and student models ------------------------------------------------------------
import shutil  # noqa: E402

from tinyml_helpers.files import ChecksumError  # noqa: E402
from tinyml_helpers.models.kws_cnn import (KWSTeacherCNN, TinyKWSCNN, load_kws_teacher,  # noqa: E402
                                           save_kws_teacher)


def test_shipped_teacher_loads_verified_in_fp32_and_is_clearly_larger():
    teacher = load_kws_teacher()
    assert not teacher.training
    assert all(p.dtype == torch.float32 for p in teacher.parameters())
    n_teacher = sum(p.numel() for p in teacher.parameters())
    n_student = sum(p.numel() for p in TinyKWSCNN().parameters())
    assert 300_000 < n_teacher < 2_000_000 and 10_000 < n_student < 100_000
    assert n_teacher > 10 * n_student
    logits, emb = teacher_outputs(teacher, torch.zeros(2, 1, 49, 40))
    assert logits.shape == (2, 12) and emb.shape == (2, teacher.embedding_dim)


def test_corrupted_teacher_is_refused(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(config.data_dir() / "checkpoints", data / "checkpoints")
    shutil.copy(config.data_dir() / "manifest.json", data / "manifest.json")
    with open(data / "checkpoints" / "kws_teacher.pt", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    monkeypatch.setenv("TINYML_DATA", str(data))
    with pytest.raises(ChecksumError, match="kws_teacher.pt is corrupted"):
        load_kws_teacher()
    (data / "checkpoints" / "kws_teacher.pt").unlink()
    with pytest.raises(FileNotFoundError, match="train_teacher"):
        load_kws_teacher()


def test_fp16_storage_round_trip(tmp_path):
    config.seed_everything(0)
    net = KWSTeacherCNN(n_classes=3, widths=(4, 8), hidden=8).eval()
    path = save_kws_teacher(net, tmp_path / "t.pt", info={"model": {"n_classes": 3, "widths": [4, 8], "hidden": 8}})
    back = load_kws_teacher(path, verify=False)
    x = torch.randn(2, 1, 49, 40)
    with torch.no_grad():
        assert torch.allclose(net(x), back(x), atol=2e-2)
    state = torch.load(path, weights_only=True)
    assert state["classifier.weight"].dtype == torch.float16
    with pytest.raises(ValueError, match="does not fit KWSTeacherCNN"):
        load_kws_teacher(path, verify=False, n_classes=5)


def test_models_reject_bad_shapes_and_settings():
    with pytest.raises(ValueError, match=r"\(batch, 1, frames, bands\)"):
        TinyKWSCNN()(torch.zeros(49, 40))
    with pytest.raises(ValueError, match=r"\(batch, 1, frames, bands\)"):
        KWSTeacherCNN()(torch.zeros(1, 49, 40))
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        KWSTeacherCNN(n_classes=1)
    with pytest.raises(ValueError, match="stride 1 or 2"):
        TinyKWSCNN(blocks=((8, 3),))


def test_teacher_is_traceable_by_the_cost_model_and_still_checks_its_input_rank():
    # The forward's rank check used to stop torch.fx, so measuring the teacher warned and fell back
    # to exporting ONNX.
    import warnings

    from tinyml_helpers import cost
    from tinyml_helpers.models.kws_cnn import KWSTeacherCNN

    teacher = KWSTeacherCNN(n_classes=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        measured = cost.measure(teacher, (1, 49, 40))
    assert measured.macs == cost.count_macs(teacher, (1, 49, 40)) and measured.peak_ram_bytes > 0
    with pytest.raises(ValueError, match="expected input"):
        teacher(torch.zeros(49, 40))
