#!/usr/bin/env bash
# The later 8-bit stage-2 runs (runs/qat/den3.sh, den4.sh), scored like runs/qat/den_eval.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
T=".venv/bin/tfdenoise"; O=out/qat; P=tfdenoise/samples/valentini
for r in den8_s2z den8_s2c; do
  [[ -f $O/lstm128_$r.tflite ]] || nice -n 10 $T export runs/qat/$r/best --recipe qat8 -o $O/lstm128_$r.tflite --json $O/lstm128_$r.export.json > $O/lstm128_$r.export.log 2>&1
  [[ -f $O/val_lstm128_$r.json ]] || nice -n 10 $T validate $O/lstm128_$r.tflite --pairs $P --checkpoint runs/qat/$r/best --json $O/val_lstm128_$r.json > $O/val_lstm128_$r.log 2>&1
done
