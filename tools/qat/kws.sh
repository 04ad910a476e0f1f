#!/usr/bin/env bash
# KWS QAT runs for docs/qat.md (stage 1 then stage 2 per width), from the shipped float kws_dnn
# (latent weights copied from the float ones, as these runs started: --qat-latent-init copy).
set -euo pipefail
cd "$(dirname "$0")/../.."
T=".venv/bin/tfdenoise"
common=(--model dnn --noise ../shared/data/noise --cache runs/cache --keywords 0 1 2 3 4 5 6 7 8 9 --shift 0.2 --quiet)
for b in "$@"; do
  [[ -d runs/qat/kws_b${b}_s1/best ]] || nice -n 5 $T kws train "${common[@]}" --lr 2e-6 --epochs 30 --qat-bits $b --qat-latent-init copy --init tfdenoise/pretrained/kws_dnn --out runs/qat/kws_b${b}_s1
  [[ -d runs/qat/kws_b${b}_s2/best ]] || nice -n 5 $T kws train "${common[@]}" --lr 2e-6 --epochs 15 --qat-bits $b --qat-stage 2 --init runs/qat/kws_b${b}_s1/best --out runs/qat/kws_b${b}_s2
done
