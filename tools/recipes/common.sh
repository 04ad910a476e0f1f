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
