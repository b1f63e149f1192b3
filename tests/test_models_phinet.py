"""PhiNet classifier builder and the keyword PhiNet save/load handoff."""
from __future__ import annotations

import json

import pytest
import torch

from tinyml_helpers.models import phinet as ph


def test_build_phinet_classifies_log_mel_and_images():
    model = ph.build_phinet((1, 49, 40), 12, alpha=0.25, beta=1.0, t0=3.0, num_layers=5).eval()
    assert tuple(model(torch.zeros(3, 1, 49, 40)).shape) == (3, 12)
    model = ph.build_phinet((1, 28, 28), 10, alpha=0.25, beta=1.0, t0=3.0, num_layers=5).eval()
    assert tuple(model(torch.zeros(2, 1, 28, 28)).shape) == (2, 10)
    assert model.phinet_config["num_classes"] == 10


def test_compatibility_mode_uses_only_mcu_friendly_modules():
    model = ph.build_phinet((1, 49, 40), 12, 0.5, 1.0, 4.0, 7, compatibility=True)
    kinds = {type(m).__name__ for m in model.modules()}
    assert "Hardswish" not in kinds and "SEBlock" not in kinds and "ZeroPad2d" not in kinds
    assert "ReLUMax" in kinds
    full = ph.build_phinet((1, 49, 40), 12, 0.5, 1.0, 4.0, 7, compatibility=False)
    kinds = {type(m).__name__ for m in full.modules()}
    assert "Hardswish" in kinds and "SEBlock" in kinds


def test_folded_stem_padding_keeps_output_size_and_costs():
    from micromind.networks import PhiNet

    for shape in [(1, 49, 40), (3, 32, 32)]:
        ours = ph.build_phinet(shape, 10, 0.5, 1.0, 4.0, 7).eval()
        ref = PhiNet(list(shape), num_layers=7, alpha=0.5, beta=1.0, t_zero=4.0, include_top=True,
                     num_classes=10, compatibility=True).eval()
        x = torch.zeros(1, *shape)
        assert ours._layers[1](ours._layers[0](x)).shape == ref._layers[1](ref._layers[0](x)).shape
        assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


def test_seeded_build_is_reproducible():
    a = ph.build_phinet((1, 49, 40), 12, 0.25, 1.0, 3.0, 5, seed=3)
    b = ph.build_phinet((1, 49, 40), 12, 0.25, 1.0, 3.0, 5, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_shape=(49, 40)), "input_shape must be"),
    (dict(input_shape=(1, 4, 4)), "too small for a PhiNet"),
    (dict(num_classes=1), "num_classes must be an integer >= 2"),
    (dict(alpha=0.0), "alpha must be a number"),
    (dict(t0=100), "t0 must be a number"),
    (dict(num_layers=2), "num_layers must be an integer"),
    (dict(downsampling_layers=(2,)), "downsampling_layers index blocks 4"),
])
def test_build_phinet_rejects_bad_arguments(kwargs, message):
    args = dict(input_shape=(1, 49, 40), num_classes=12, alpha=0.5, beta=1.0, t0=4.0, num_layers=7)
    downsampling = kwargs.pop("downsampling_layers", (5, 7))
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ph.build_phinet(**args, downsampling_layers=downsampling)


def test_save_and_load_round_trip_prefers_the_run_folder(tmp_path):
    model = ph.build_phinet((1, 49, 40), 12, 0.25, 1.0, 3.0, 5, seed=0).eval()
    cfg = dict(model.phinet_config, classes=[str(i) for i in range(12)])
    path = ph.save_kws_phinet(model, cfg)  # default: artifacts/models (a tmp folder in tests)
    saved = json.loads(path.with_suffix(".json").read_text())
    assert saved["weights_sha256"] and saved["classes"][0] == "0"
    loaded, loaded_cfg = ph.load_kws_phinet("auto")
    assert loaded_cfg["alpha"] == 0.25 and not loaded.training
    x = torch.randn(2, 1, 49, 40)
    torch.testing.assert_close(loaded(x), model(x))
    loaded2, _ = ph.load_kws_phinet("artifacts")
    torch.testing.assert_close(loaded2(x), model(x))


def test_load_detects_corruption_and_missing_files(tmp_path):
    from tinyml_helpers.files import ChecksumError

    with pytest.raises(FileNotFoundError, match="run notebook 04_phinets first"):
        ph.load_kws_phinet("artifacts")
    model = ph.build_phinet((1, 49, 40), 12, 0.25, 1.0, 3.0, 5)
    path = ph.save_kws_phinet(model, model.phinet_config, tmp_path / "k.pt")
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ChecksumError, match="corrupted or out of date"):
        ph._load_from(path, path.with_suffix(".json"))
    with pytest.raises(ValueError, match="source must be"):
        ph.load_kws_phinet("cloud")


def test_save_rejects_a_config_that_does_not_match(tmp_path):
    model = ph.build_phinet((1, 49, 40), 12, 0.25, 1.0, 3.0, 5)
    other = ph.phinet_config((1, 49, 40), 12, 0.5, 1.0, 3.0, 5)
    with pytest.raises(ValueError, match="does not describe this model"):
        ph.save_kws_phinet(model, other, tmp_path / "k.pt")
    with pytest.raises(ValueError, match="family='phinet'"):
        ph.save_kws_phinet(model, {"alpha": 1}, tmp_path / "k.pt")


def test_shipped_checkpoint_loads_when_present():
    weights, cfg_path = ph.shipped_kws_phinet_paths()
    if not weights.exists():
        pytest.skip("shipped keyword PhiNet not made yet (python -m tinyml_helpers.scripts.train_kws_phinet)")
    model, cfg = ph.load_kws_phinet("shipped")
    assert cfg["compatibility"] is True and cfg["input_shape"] == [1, 49, 40]
    assert tuple(model(torch.zeros(1, 1, 49, 40)).shape) == (1, cfg["num_classes"])


def test_checkpoint_script_validates_its_arguments():
    from tinyml_helpers.scripts import train_kws_phinet as script

    with pytest.raises(SystemExit):
        script.main(["--epochs", "0"])
    assert script.KWS_RECIPE["optimizer"] == "adamw" and script.SHIPPED_EPOCHS >= 10
