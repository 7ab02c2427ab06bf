#!/usr/bin/env bash
# Two arms at a time, one thread each, equal CPU budget; then score every arm's final weights on
# the held-out validation pairs (the runs' own final validation) into runs/decoder-study/summary.
set -euo pipefail
here=configs/experiments/decoder-study
out=${OUT:-runs/decoder-study}
arms=(${ARMS:-convnext-v3 res res-no-zero-init res-charbonnier naf res-resnet50})
lscpu | grep -E "Model name|Flags" | sed 's/Flags:.*\(avx512f\).*/AVX-512: yes/;s/Flags:.*/AVX-512: no/' > "$out.cpu.txt" 2>/dev/null || true
for ((i = 0; i < ${#arms[@]}; i += 2)); do
  for a in "${arms[@]:i:2}"; do
    fclip-derain train --config "$here/$a.yaml" --out "$out/$a" -q > "$out/$a.summary.json" 2> "$out/$a.stderr" &
  done
  wait
done
