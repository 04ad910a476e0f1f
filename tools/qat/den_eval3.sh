#!/usr/bin/env bash
# The inverse-tanh-start runs (tools/qat/den5.sh, den6.sh, den7.sh), scored like den_eval.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
T=".venv/bin/tfdenoise"; O=out/qat; P=tfdenoise/samples/valentini
for r in den8a_s2 den8f_s2 den8r4a_s2; do
  recipe=qat8; [[ $r == den8r4* ]] && recipe=qat_rnn4
  [[ -f $O/lstm128_$r.tflite ]] || nice -n 10 $T export runs/qat/$r/best --recipe $recipe -o $O/lstm128_$r.tflite --json $O/lstm128_$r.export.json > $O/lstm128_$r.export.log 2>&1
  [[ -f $O/val_lstm128_$r.json ]] || nice -n 10 $T validate $O/lstm128_$r.tflite --pairs $P --checkpoint runs/qat/$r/best --json $O/val_lstm128_$r.json > $O/val_lstm128_$r.log 2>&1
done
