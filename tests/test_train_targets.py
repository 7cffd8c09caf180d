"""The training campaign's target check, on made-up results files (no training needed)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from denoisers import report
from train import targets


def results(idresnet_gain: float, gan_cost: float, gan_detail: float, images: int = 24,
            resnet_detail: float = 0.6) -> pd.DataFrame:
    """DnCNN at 30 dB (+/- a per-image wobble), IDResNet ``idresnet_gain`` above it, IDGAN
    ``gan_cost`` below IDResNet; detail through hf over hf_clean = 100."""
    rng = np.random.default_rng(0)
    rows = []
    for sigma in targets.SIGMAS:
        for i in range(24):
            base = 30 + rng.normal(0, 1)
            wobble = 0.02 if i % 2 else -0.02  # averages to 0 over the 24 images
            for method, psnr, hf in (("dncnn", base, 60.0), ("idresnet", base + idresnet_gain + wobble, resnet_detail * 100),
                                     ("idgan", base + idresnet_gain - gan_cost, gan_detail * 100)):
                if method != "dncnn" and i >= images:
                    continue
                rows.append({"image": f"kodim{i + 1:02d}.png", "method": method, "sigma": sigma, "seed": 0,
                             "psnr": psnr, "ssim": 0.9, "seconds": 1.0, "weights": "w", "hf": hf, "hf_clean": 100.0})
    return pd.DataFrame(rows, columns=report.COLUMNS)


def test_all_targets_met():
    lines, met = targets.check(results(idresnet_gain=0.3, gan_cost=1.0, gan_detail=0.9))
    assert met, lines
    first = lines[0]
    assert "IDResNet" in first and "+0.30 dB" in first and "-> met" in first
    low, high = (float(x) for x in first.split("95% interval ")[1].split(" over")[0].split(" to "))
    assert 0.25 < low < 0.3 < high < 0.35  # IDResNet minus DnCNN, not the other way round
    assert "paper 32.52" in first
    assert "cost 1.00 dB" in lines[1] and "closer to 1" in lines[1]


@pytest.mark.parametrize("kwargs, failing", [
    ({"idresnet_gain": -0.1, "gan_cost": 1.0, "gan_detail": 0.9}, "IDResNet"),  # trails DnCNN
    ({"idresnet_gain": 0.3, "gan_cost": 3.0, "gan_detail": 0.9}, "IDGAN"),  # too costly
    ({"idresnet_gain": 0.3, "gan_cost": 1.0, "gan_detail": 1.5}, "IDGAN"),  # overshoots: further from 1
    ({"idresnet_gain": 0.3, "gan_cost": 1.0, "gan_detail": 0.9, "images": 6}, "partial set"),
])
def test_each_target_can_fail(kwargs, failing):
    lines, met = targets.check(results(**kwargs))
    assert not met
    assert any(failing in line and "-> met" not in line for line in lines), lines


def test_the_command_reports_missing_results(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no results"):
        targets.main([str(tmp_path)])
    results(0.3, 1.0, 0.9).to_csv(tmp_path / "results.csv", index=False)
    assert targets.main([str(tmp_path)]) == 0
    assert "all targets met" in capsys.readouterr().out
    results(0.3, 1.0, 0.9).query("method == 'dncnn'").to_csv(tmp_path / "results.csv", index=False)
    assert targets.main([str(tmp_path)]) == 1
    assert "not measured (idresnet has no rows)" in capsys.readouterr().out
