# Sourced by den*.sh: strict mode, the project root, the CLI, and the denoiser QAT runs' shared
# training options (the second-phase mixtures of tools/recipes/common.sh with fewer segments per
# epoch and 16 PESQ selection mixtures: the CPU budget).
#   run OUT ARGS...   train into OUT unless OUT/$DONE exists (DONE=.done by default), then mark it
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
T=".venv/bin/tfdenoise"
D=../shared/data
DONE="${DONE:-.done}"
common=(--variant lstm128 --speech $D/speech --noise $D/noise --batch 32 --seed 0 --cache runs/cache
        --segment 2.0 --segments-per-epoch 512 --snr 0 15 --snr-level active --exclude-noise 'voice/*'
        --synthetic-noise 0.4 --compressed-loss 3 --valid-pesq 16 --quiet)
run() { local out=$1; shift; [[ -f $out/$DONE ]] || { nice -n 5 $T train "${common[@]}" --out $out "$@" && touch $out/$DONE; }; }
