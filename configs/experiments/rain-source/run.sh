#!/usr/bin/env bash
# Train each arm and score its final weights on Rain100L; results in runs/rain-source/*.json.
set -euo pipefail
for arm in real synthetic-light synthetic-mixed both; do
  fclip-derain train --config configs/experiments/rain-source/$arm.yaml --quiet
  fclip-derain eval ../shared/data/Rain100L --checkpoint runs/rain-source/$arm/last.safetensors \
    --json runs/rain-source/$arm-rain100l.json --quiet
done
