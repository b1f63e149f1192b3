"""train_classifier / evaluate on micromind's MicroMind, with tiny random tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tinyml_helpers import config
from tinyml_helpers.training import (StepOutputs, classifier_layer, evaluate, make_loader,
                                     predict_logits, train_classifier)


def toy_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 1, 4, 4, generator=g)
    y = (X[:, 0, 0, 0] + X[:, 0, 1, 1] > 0).long()  # linearly separable
    return X, y


def tiny_net(n_classes=2, seed=0):
    config.seed_everything(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, n_classes))


def loaders(n=256, batch_size=32):
    X, y = toy_data(n)
    return {"train": make_loader(X, y, batch_size=batch_size, shuffle=True),
            "val": make_loader(X, y, batch_size=128)}


def test_learns_a_separable_toy_set_and_loss_decreases():
    res = train_classifier(tiny_net(), loaders(), epochs=8, lr=1e-2, progress=False, run_name="toy")
    losses = res.curve("train_loss")
    assert len(res.history) == 8 and losses[-1] < losses[0]
    assert res.best_val_accuracy >= 0.9
    assert evaluate(res.model, loaders()["val"]).accuracy == pytest.approx(res.best_val_accuracy)
    assert res.checkpoint is not None and res.checkpoint.name == "best.pt"
    state = torch.load(res.checkpoint, weights_only=True)
    assert set(state) == set(res.model.state_dict())


def test_same_seed_gives_identical_weights_and_history():
    a = train_classifier(tiny_net(), loaders(), epochs=2, progress=False, save_checkpoint=False)
    b = train_classifier(tiny_net(), loaders(), epochs=2, progress=False, save_checkpoint=False)
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert a.curve("val_accuracy") == b.curve("val_accuracy")


def test_reusing_a_loader_with_its_own_generator_is_still_deterministic():
    ls = loaders()
    a = train_classifier(tiny_net(), ls, epochs=1, progress=False, save_checkpoint=False)
    b = train_classifier(tiny_net(), ls, epochs=1, progress=False, save_checkpoint=False)
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))


def test_restores_the_best_validation_epoch():
    res = train_classifier(tiny_net(), loaders(), epochs=4, lr=0.5, optimizer="sgd",
                           progress=False, save_checkpoint=False)
    best = max(res.curve("val_accuracy"))
    assert res.best_val_accuracy == best
    assert res.history[res.best_epoch - 1]["val_accuracy"] == best
    assert evaluate(res.model, loaders()["val"]).accuracy == pytest.approx(best)


def test_cosine_schedule_and_adamw_run():
    res = train_classifier(tiny_net(), loaders(), epochs=2, optimizer="adamw", schedule="cosine",
                           weight_decay=1e-4, progress=False, save_checkpoint=False)
    assert len(res.history) == 2


def test_custom_loss_sees_precomputed_teacher_logits_and_embeddings():
    X, y = toy_data(64)
    teacher_logits = torch.randn(64, 2)
    seen = {}

    def loss_fn(out: StepOutputs):
        seen["t"] = out.teacher_logits
        seen["emb"] = out.embedding
        return nn.functional.cross_entropy(out.logits, out.labels)

    loss_fn.needs_embedding = True
    ls = {"train": make_loader(X, y, teacher_logits, batch_size=16), "val": make_loader(X, y)}
    train_classifier(tiny_net(), ls, epochs=1, loss_fn=loss_fn, progress=False, save_checkpoint=False)
    assert seen["t"].shape == (16, 2) and torch.equal(seen["t"], teacher_logits[-16:])
    assert seen["emb"].shape == (16, 8)  # input of the last nn.Linear


def test_teacher_model_fills_teacher_outputs_on_the_fly_and_loss_module_params_train():
    teacher = tiny_net(seed=1)

    class ProjectedLoss(nn.Module):
        needs_embedding = True

        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(8, 8)

        def forward(self, out: StepOutputs):
            assert out.teacher_logits is not None and out.teacher_embedding is not None
            return (nn.functional.cross_entropy(out.logits, out.labels)
                    + (self.proj(out.embedding) - out.teacher_embedding).pow(2).mean())

    loss = ProjectedLoss()
    before = loss.proj.weight.detach().clone()
    t_before = [p.detach().clone() for p in teacher.parameters()]
    res = train_classifier(tiny_net(), loaders(64), epochs=1, loss_fn=loss, teacher=teacher,
                           progress=False, save_checkpoint=False)
    assert not torch.equal(before, loss.proj.weight), "the loss module's projection must be trained"
    assert all(torch.equal(a, b) for a, b in zip(t_before, teacher.parameters())), "teacher must stay frozen"
    assert res.loss_module is loss


def test_evaluate_confusion_matrix_and_per_class_accuracy():
    net = nn.Linear(3, 3, bias=False)
    net.weight.data = torch.eye(3)
    X = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]])
    y = torch.tensor([0, 1, 2, 1])
    res = evaluate(net, make_loader(X, y, batch_size=3))
    assert res.n == 4 and res.accuracy == 0.75
    np.testing.assert_array_equal(res.confusion, [[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(res.per_class_accuracy, [1.0, 0.5, 1.0])


def test_predict_logits_returns_embeddings_and_labels_in_order():
    X, y = toy_data(10)
    net = tiny_net()
    logits, emb, labels = predict_logits(net, make_loader(X, y, batch_size=4),
                                         return_embeddings=True, return_labels=True)
    assert logits.shape == (10, 2) and emb.shape == (10, 8) and torch.equal(labels, y)
    assert net.training, "predict_logits must restore the model's train/eval mode"


def test_classifier_layer_needs_a_linear():
    with pytest.raises(ValueError, match="no nn.Linear"):
        classifier_layer(nn.Conv2d(1, 2, 1))


@pytest.mark.parametrize("epochs", [0, -1, 1.5])
def test_bad_epochs(epochs):
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        train_classifier(tiny_net(), loaders(), epochs=epochs, progress=False)


def test_empty_loader_is_refused():
    empty = DataLoader(TensorDataset(torch.zeros(0, 1, 4, 4), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="'train' loader is empty"):
        train_classifier(tiny_net(), {"train": empty, "val": loaders()["val"]}, epochs=1, progress=False)
    with pytest.raises(ValueError, match="empty"):
        evaluate(tiny_net(), empty)


def test_missing_val_loader_is_refused():
    with pytest.raises(ValueError, match="'train' and 'val'"):
        train_classifier(tiny_net(), {"train": loaders()["train"]}, epochs=1, progress=False)


def test_output_width_must_cover_the_labels():
    X, y = toy_data(32)
    y = y + 2  # labels 2..3 but the model has 2 outputs
    ls = {"train": make_loader(X, y), "val": make_loader(X, y)}
    with pytest.raises(ValueError, match="only 2 logits"):
        train_classifier(tiny_net(), ls, epochs=1, progress=False)
    with pytest.raises(ValueError, match="num_classes=5"):
        train_classifier(tiny_net(), loaders(), epochs=1, num_classes=5, progress=False)


def test_model_must_return_2d_logits():
    net = nn.Sequential(nn.Conv2d(1, 2, 1))  # forgot flatten + classifier
    with pytest.raises(ValueError, match=r"logits of shape \(32, n_classes\)"):
        train_classifier(net, loaders(), epochs=1, progress=False)


def test_unknown_optimizer_and_schedule():
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        train_classifier(tiny_net(), loaders(), epochs=1, optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="unknown schedule"):
        train_classifier(tiny_net(), loaders(), epochs=1, schedule="step", progress=False)


def test_diverging_training_is_reported():
    X, y = toy_data(32)
    X[0] = float("nan")
    ls = {"train": make_loader(X, y), "val": make_loader(X, y)}
    with pytest.raises(FloatingPointError, match="diverged"):
        train_classifier(tiny_net(), ls, epochs=1, progress=False)


def test_make_loader_checks_lengths():
    with pytest.raises(ValueError, match="same length"):
        make_loader(torch.zeros(3, 2), torch.zeros(4))


def test_channels_last_training_returns_a_model_in_the_default_layout():
    X = torch.randn(64, 1, 8, 8)
    y = (X.mean((1, 2, 3)) > 0).long()
    config.seed_everything(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    ls = {"train": make_loader(X, y, batch_size=16), "val": make_loader(X, y)}
    res = train_classifier(net, ls, epochs=2, progress=False, save_checkpoint=False, channels_last=True)
    assert res.model[0].weight.is_contiguous()
    assert len(res.history) == 2
