#!/usr/bin/env bash
# PESQ-WB / STOI on the 10 bundled Valentini pairs of every denoiser form in docs/qat.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
T=".venv/bin/tfdenoise"; O=out/qat; P=tfdenoise/samples/valentini; S=tfdenoise/pretrained/lstm128/tflite
val() { [[ -f $O/val_$1.json ]] || nice -n 10 $T validate "$2" --pairs $P ${3:+--checkpoint $3} --json $O/val_$1.json > $O/val_$1.log 2>&1; }
exp() { [[ -f $2 ]] || nice -n 10 $T export "$1" --recipe "$3" -o "$2" --json "${2%.tflite}.export.json" > "${2%.tflite}.export.log" 2>&1; }
for run in den8_s2b:qat8 den8r4_s2:qat_rnn4 den8_s1:qat8 den8_s2:qat8; do
  r=${run%%:*}; rec=${run##*:}
  [[ -d runs/qat/$r/best ]] || continue
  exp runs/qat/$r/best $O/lstm128_$r.tflite $rec
  val lstm128_$r $O/lstm128_$r.tflite runs/qat/$r/best
done
val lstm128_fp32 $S/lstm128_fp32.tflite
val lstm128_int8_max $S/lstm128_int8_max.tflite
val lstm128_int8_std3 $S/lstm128_int8_std3.tflite
val lstm128_mixed_max $S/lstm128_mixed_max.tflite
