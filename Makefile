# stegshield — set-up and everyday tasks. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export MALLOC_MMAP_MAX_ := 0
export MALLOC_TRIM_THRESHOLD_ := 100000000000

.PHONY: demo test lint bench train train-linear train-pretrained calibrate-photos compare clean browser lock

# requirements.lock pins every dependency's version (regenerate with `make lock`).
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev,bench,train]'
	touch $(STAMP)

lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^stegshield' > requirements.lock

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP) browser
	$(VENV)/bin/ruff check src tests scripts
	$(PY) -m pytest

# The web page is tested in Debian's Chromium (driven by Playwright, never `playwright install`).
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get install -y -q --no-install-recommends chromium >/dev/null; } || echo "chromium not installed: the browser test will be skipped"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts

bench: $(STAMP)
	$(PY) scripts/bench.py --out BENCHMARKS.md

train: $(STAMP)
	nice -n 5 $(PY) scripts/train.py
	$(MAKE) train-linear

# The learned linear detectors (about 30 min on 2 cores): `structural` (LSB replacement), `spam`
# (LSB matching), `srm` (content-adaptive) and `srm-lsbm` (the rich model against LSB matching);
# fit on train tiles, ridge and calibration on validation, test report -> BENCHMARKS.md, ship.
# Then the fused detectors (a CNN + linear members per tile; weights, calibration on validation).
train-linear: $(STAMP)
	$(PY) scripts/train_linear.py --detector structural --ship
	$(PY) scripts/train_linear.py --detector spam --ship
	$(PY) scripts/train_linear.py --detector srm --ship
	$(PY) scripts/train_linear.py --detector srm-lsbm --ship
	$(PY) scripts/train_fusion.py --name fused-light-gray --cnn light-gray --linear spam --linear srm:srm-lsbm --ship
	$(PY) scripts/train_fusion.py --name fused-light-thorough --cnn light-thorough --linear srm --linear srm:srm-lsbm --linear spam --ship
	$(MAKE) calibrate-photos

# Thresholds of the tiled detectors fitted on whole clean validation photographs (a few minutes
# with the cache, ~30 without) -> <model>.photos.json beside the weights and BENCHMARKS.md
# `## Photo calibration`; rerun after any of their weights change.
calibrate-photos: $(STAMP)
	$(PY) scripts/calibrate_photos.py --write --bench

# ImageNet EfficientNet-Lite0: (a) frozen features + logistic regression, (b) fine-tuned with
# the stem stride removed (~80 min on 2 cores); then the side-by-side comparison and shipping
# of (b) as `--detector pretrained` (see docs/CNN.md).
train-pretrained: $(STAMP)
	nice -n 5 $(VENV)/bin/stegshield train --covers .cache/corpus/gray --out out/train/effnet-frozen-tf --arch effnet-lite0 --arch-config '{"stem_stride": 2, "norm": "tf"}' --linear-probe --tile 256 --rates 0.4,0.2 --seed 1 --no-progress
	nice -n 5 $(VENV)/bin/stegshield train --covers .cache/corpus/gray --out out/train/effnet-ft --arch effnet-lite0 --arch-config '{"stem_stride": 1}' --init imagenet --lr 5e-4 --epochs 5 --rates 0.4,0.2 --stage-epochs 2 --early-algorithms lsbm,lsbr --alg-stage-epochs 1 --group-balance 0.5 --workers 1 --threads 2 --patience 4 --seed 1 --scan-tile 256 --no-progress
	$(MAKE) compare
	$(PY) scripts/ship_pretrained.py --detector out/train/effnet-ft/detector.safetensors --label "pretrained fine-tuned, stride 1 (b)" --command "make train-pretrained"
	$(MAKE) calibrate-photos

# Every detector family on the same test pairs, one run -> BENCHMARKS.md `## Detector comparison`
compare: $(STAMP)
	$(PY) scripts/compare_detectors.py --fisher --model "cnn light-gray=light-gray" --model "cnn-thorough light-thorough=light-thorough" --model "pretrained frozen + logistic (a)=out/train/effnet-frozen-tf/detector.safetensors" --model "pretrained fine-tuned, stride 1 (b)=out/train/effnet-ft/detector.safetensors"

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .hypothesis
