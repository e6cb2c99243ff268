"""Selection-channel-aware CNN input: HILL change probabilities, their map, warm start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stegshield.analysis.cnn.model import SCA_PARAMS, LightNet, build_model  # noqa: E402
from stegshield.analysis.cnn.sca import (  # noqa: E402
    box_mean,
    change_probability,
    hill_cost,
    hill_cost_fast,
)
from stegshield.stego.costs import COSTS  # noqa: E402

from imagegen import natural_like  # noqa: E402


def _img(seed: int, h: int = 48, w: int = 64) -> torch.Tensor:
    return torch.from_numpy(natural_like(h, w, seed=seed)).float()[None, None]


def test_hill_cost_is_the_embedders_hill() -> None:
    x = _img(1)
    got = hill_cost(x.double())[0, 0].numpy()
    ref = COSTS["hill"](x[0, 0].numpy().astype(np.uint8))
    m = ref < 1e8  # the embedders clamp huge costs; the detector keeps them
    assert np.allclose(got[m], ref[m], rtol=1e-5)
    fast = hill_cost_fast(x)[0, 0].numpy()  # the detector's version, away from the borders
    assert np.allclose(fast[10:-10, 10:-10], ref[10:-10, 10:-10], rtol=1e-3)


def test_box_mean_is_a_reflected_moving_average() -> None:
    x = torch.rand(2, 3, 20, 17, dtype=torch.float64)
    ref = torch.nn.functional.avg_pool2d(
        torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect"), 5, stride=1)
    assert torch.allclose(box_mean(x, 5), ref) and torch.equal(box_mean(x, 1), x)


@pytest.mark.parametrize("rate", [0.1, 0.4])
def test_change_probability_carries_the_payload(rate: float) -> None:
    x = torch.cat([_img(2, 128, 128), _img(3, 128, 128)])
    x[1, 0, :, :64] = 128.0  # a flat half: nearly nothing may change there
    rho = hill_cost_fast(x)

    def entropy(b: torch.Tensor) -> torch.Tensor:
        p0, pc = (1 - b).clamp_min(1e-30), (b / 2).clamp_min(1e-30)
        return -(p0 * torch.log2(p0) + 2 * pc * torch.log2(pc)).sum(dim=(1, 2, 3))

    exact = change_probability(rho, rate, iters=30, stride=1)
    assert exact.shape == x.shape and 0 <= float(exact.min()) <= float(exact.max()) <= 2 / 3
    target = torch.full((2,), rate * 128 * 128)
    assert torch.allclose(entropy(exact), target, rtol=1e-3)
    # the detector's default: λ from every 4th pixel of each axis, 14 halvings
    assert torch.allclose(entropy(change_probability(rho, rate)), target, rtol=0.15)
    assert float(exact[1, 0, :, 72:].mean()) > 20 * float(exact[1, 0, 8:-8, 8:56].mean())


def test_sca_model_starts_as_the_plain_model_it_was_warm_started_from() -> None:
    torch.manual_seed(0)
    plain = LightNet(width=8, full_res_layers=1, widths=(8, 16)).eval()
    sca = LightNet(width=8, full_res_layers=1, widths=(8, 16), sca=True).eval()
    missing, unexpected = sca.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == sorted(SCA_PARAMS) and not unexpected
    x = torch.cat([_img(4), _img(5)])
    with torch.no_grad():
        assert torch.allclose(sca(x), plain(x), atol=1e-5)
        sca.sca_gain.fill_(3.0)  # once trained, the selection channel changes the output
        sca.sca_offset.fill_(1.0)
        assert not torch.allclose(sca(x), plain(x), atol=1e-3)
        # and it acts where HILL would embed: in the textured half, not the flat one
        half = x[:1].clone()
        half[..., :32] = 128.0
        d = (sca.stem_input(half) - sca.front(half)).abs().mean(dim=1)[0]
        assert float(d[8:-8, 4:24].mean()) * 20 < float(d[8:-8, 40:].mean())


def test_sca_model_through_the_shipped_inference_path(tmp_path: Path) -> None:
    from stegshield.analysis.cnn.inference import CNNDetector, save_model

    torch.manual_seed(1)
    net = build_model("light", width=8, full_res_layers=1, sca=True, sca_rate=0.2)
    with torch.no_grad():  # a trained model: the selection channel matters
        net.sca_gain.normal_()
        net.sca_offset.normal_()
    save_model(tmp_path / "m.safetensors", net,
               {"arch": "light", "config": {"width": 8, "full_res_layers": 1, "sca": True,
                                            "sca_rate": 0.2}})
    det = CNNDetector(tmp_path / "m.safetensors", tile=32)
    tiles = np.stack([natural_like(32, 32, seed=s) for s in range(3)])
    fast = det.tile_logits(tiles)
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(tiles).float()[:, None]).numpy()
        net.sca_gain.zero_()
        net.sca_offset.zero_()
        plain = net(torch.from_numpy(tiles).float()[:, None]).numpy()
    # the detector path (BatchNorm folded, bf16 body) used the saved SCA parameters: it is far
    # closer to the model with them than the model is to itself without them
    assert np.abs(fast - ref).max() * 5 < np.abs(ref - plain).max()
    with pytest.raises(ValueError, match="8 px"):
        det.tile_logits(np.zeros((1, 7, 7), np.uint8))


def test_warm_start_from_the_plain_model(tmp_path: Path) -> None:
    from stegshield.analysis.cnn.inference import save_model
    from stegshield.training.train import TrainConfig, _warm_start

    torch.manual_seed(2)
    plain = build_model("light", width=8, full_res_layers=1).eval()
    save_model(tmp_path / "p.safetensors", plain,
               {"arch": "light", "config": {"width": 8, "full_res_layers": 1}})
    conf = {"width": 8, "full_res_layers": 1, "sca": True, "sca_rate": 0.2}
    sca = build_model("light", **conf)
    _warm_start(sca, TrainConfig(arch_config=conf, init=str(tmp_path / "p.safetensors")))
    x = _img(6)
    with torch.no_grad():
        assert torch.allclose(sca.eval()(x), plain(x), atol=1e-5)
    with pytest.raises(ValueError, match="differs"):
        _warm_start(build_model("light", width=4, sca=True),
                    TrainConfig(arch_config={"width": 4, "sca": True},
                                init=str(tmp_path / "p.safetensors")))
    save_model(tmp_path / "s.safetensors", sca, {"arch": "light", "config": conf})
    with pytest.raises(ValueError, match="differs"):  # an SCA model into a plain one
        _warm_start(build_model("light", width=8, full_res_layers=1),
                    TrainConfig(arch_config={"width": 8, "full_res_layers": 1},
                                init=str(tmp_path / "s.safetensors")))
    with pytest.raises(ValueError, match="differs"):  # another assumed payload
        _warm_start(build_model("light", **{**conf, "sca_rate": 0.4}),
                    TrainConfig(arch_config={**conf, "sca_rate": 0.4},
                                init=str(tmp_path / "s.safetensors")))
