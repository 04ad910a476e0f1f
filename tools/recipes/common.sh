# Sourced by every recipe in this folder: strict mode, the project root as working folder,
# and the settings a user may override from the environment.
#   DATA       folder with speech/ and noise/ (default ../shared/data, relative to the project)
#   TFDENOISE  the CLI (default .venv/bin/tfdenoise);  PYTHON  for tools/ship_model.py
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."   # the project root: run folders are runs/..., data ../shared/data
DATA="${DATA:-../shared/data}"
TFDENOISE="${TFDENOISE:-.venv/bin/tfdenoise}"
PYTHON="${PYTHON:-.venv/bin/python}"
[[ -d "$DATA/speech" && -d "$DATA/noise" ]] || { echo "$0: no speech/ and noise/ in DATA=$DATA" >&2; exit 2; }

# fork_best RUN NEW: a new run folder whose last/ is RUN's best/ (weights only: Adam restarts),
# so the next phase's changed options start from that checkpoint.
fork_best() { [[ -d "$2" ]] || { mkdir -p "$2.tmp" && cp -r "$1/best" "$2.tmp/last" && mv "$2.tmp" "$2"; }; }

# The mixtures, loss and selection of the phases that moved LSTM128 (docs/training.md), as the
# 2026-12-02 second phases of GRU128 and GRU256 ran them: 2048 x 2 s segments, SNR 0-15 dB by
# active speech level, no `voice/*` noise, 40 % babble / speech-shaped noise, + 3 x the
# compressed spectral loss, best by PESQ on 32 held-out mixtures.
SECOND_PHASE=(--segment 2.0 --segments-per-epoch 2048 --snr 0 15 --snr-level active --exclude-noise 'voice/*'
              --synthetic-noise 0.4 --compressed-loss 3 --valid-pesq 32)
