"""CI gate on the shipped weights: re-score the held-out RainTrainL validation pairs with the
default model and fail when it falls more than 0.05 dB below what its checkpoint records.

Every other test passes on weights re-saved with noise (their checksum is valid): this one
does not (noise of 0.15 x each tensor's std costs several dB here). The pairs are the ones
training held out (holdout_split with the run's seed), scored with the training's own scorer;
the checkpoint records `val_psnr_pairs` (shipped by scripts/ship_default_model.py), or, in
checkpoints older than it, `val_psnr`, which was then the score of these pairs alone.
"""
import pytest

from fclip_derain.data.datasets import holdout_split
from fclip_derain.data.pairing import pairs_from
from fclip_derain.models import load_model
from fclip_derain.models.loading import DEFAULT_CHECKPOINT
from fclip_derain.train.validation import pair_set, score
from fclip_derain.weights import read_checkpoint

TOLERANCE_DB = 0.05


def recorded_pairs_score(meta: dict) -> float:
    return float(meta["val_psnr_pairs"] if "val_psnr_pairs" in meta else meta["val_psnr"])


def held_out_pairs(data_dir, meta: dict):
    """The validation pairs the shipped model's training held out from RainTrainL."""
    pairs = pairs_from(None, data_dir / "RainTrainL" / "input", data_dir / "clean" / "BSDS500-test")
    _, val = holdout_split(pairs, int(meta.get("val_holdout", 20)), int(meta.get("val_seed", 0)))
    return val[: int(meta.get("val_pairs", len(val)))]


def test_shipped_model_scores_what_its_checkpoint_records(data_dir):
    _, _, meta = read_checkpoint(DEFAULT_CHECKPOINT)
    if "val_psnr" not in meta:
        pytest.fail(f"{DEFAULT_CHECKPOINT} records no validation score to check it against")
    recorded = recorded_pairs_score(meta)
    val = held_out_pairs(data_dir, meta)
    assert len(val) == int(meta.get("val_pairs", 20))
    got = score(load_model(), [pair_set(val)]).summary()["val_psnr"]
    assert got >= recorded - TOLERANCE_DB, (
        f"the shipped model scores {got:.3f} dB on its {len(val)} held-out validation pairs, "
        f"{recorded - got:.3f} dB below the {recorded:.3f} its checkpoint records: the weights are damaged")


def test_ship_script_records_what_the_gate_checks(tmp_path):
    """scripts/ship_default_model.py on a tiny run with synthetic validation kinds: the metadata
    holds the aggregate and, apart, the held-out pairs' score and split, and re-scoring those
    pairs the gate's way gives the recorded score."""
    import subprocess
    import sys

    from conftest import REPO
    from test_train import _config
    from fclip_derain.train.config import load_config
    from fclip_derain.train.loop import Trainer

    cfg_path = _config(tmp_path, optim__iterations=2, data__val_every=2, run__seed=3, model__block="res",
                       data__val_synthetic=[{"name": "heavy", "preset": "heavy", "seed": 1}])
    cfg = load_config(cfg_path)
    Trainer(cfg, progress=False).fit()
    dest = tmp_path / "shipped.safetensors"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "ship_default_model.py"), cfg.run.out,
                        "--dest", str(dest), "--version", "t"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    _, model_cfg, meta = read_checkpoint(dest)
    assert {"val_psnr", "val_psnr_heavy", "val_psnr_pairs", "val_ssim_pairs"} <= set(meta)
    assert float(meta["val_psnr"]) != float(meta["val_psnr_pairs"])  # the aggregate is not the pairs' score
    assert (meta["val_holdout"], meta["val_seed"], meta["val_pairs"]) == ("2", "3", "2")
    assert "kernel_size" not in model_cfg  # block res: the config records only what the network uses
    src = cfg.data.train[0]
    _, val = holdout_split(pairs_from(src.root, None, None), int(meta["val_holdout"]), int(meta["val_seed"]))
    got = score(load_model(dest), [pair_set(val)]).summary()["val_psnr"]
    assert abs(got - recorded_pairs_score(meta)) < 1e-6


def test_shipped_heavy_expert_scores_what_its_checkpoint_records(data_dir):
    """The heavy expert of the routed default (issue 46), gated like the light one, on the
    validation pairs of Rain100H's own generator it was selected on."""
    from fclip_derain.data.pairing import pairs_from
    from fclip_derain.models.loading import HEAVY_CHECKPOINT
    _, _, meta = read_checkpoint(HEAVY_CHECKPOINT)
    recorded = float(meta["val_psnr_heavy"])
    pairs = pairs_from(data_dir / "RainTrainH-20" / "val")
    got = score(load_model(HEAVY_CHECKPOINT), [pair_set(pairs, "heavy")]).summary()["val_psnr"]
    assert got >= recorded - TOLERANCE_DB, f"heavy expert: {got:.3f} dB, recorded {recorded:.3f}: damaged weights"


def test_shipped_router_sends_held_out_light_and_heavy_rain_to_their_experts(data_dir):
    """The router's choices on validation images it was not fitted on (scripts/train_router.py):
    the 20 held-out RainTrainL pairs go to the light expert, the 5 RainTrainH-20 validation
    pairs to the heavy one. A damaged or swapped head fails this."""
    import torch
    from fclip_derain.data.io import load_image
    from fclip_derain.data.pairing import pairs_from
    from fclip_derain.models.loading import load_routed
    from fclip_derain.train.router import to_tensor
    _, _, meta = read_checkpoint(DEFAULT_CHECKPOINT)
    routed = load_routed("cpu")
    def weights(paths):
        with torch.inference_mode():
            return [float(routed.heavy_weight(to_tensor(load_image(p)))[0]) for p in paths]
    light = weights([p.input for p in held_out_pairs(data_dir, meta)])
    heavy = weights([p.input for p in pairs_from(data_dir / "RainTrainH-20" / "val")])
    assert max(light) == 0.0, f"held-out light rain sent towards the heavy expert: {light}"
    assert min(heavy) == 1.0, f"heavy validation rain not sent to the heavy expert: {heavy}"
