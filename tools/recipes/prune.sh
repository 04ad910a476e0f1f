#!/usr/bin/env bash
# The pruning experiments of docs/pruning.md: the shipped KWS model (kws_dnn) pruned four ways
# and the shipped LSTM128 with 25 % of its RNN units removed; each fine-tuned, exported, scored
# and costed. Every number of docs/pruning.md's tables comes from the files this writes under
# runs/prune/ (the JSON of each command). Re-running continues: a finished step is skipped.
#
#   tools/recipes/prune.sh            # all of it (about 1 h on a 2-core CPU)
#   tools/recipes/prune.sh kws        # only the shipped KWS model (dnn)
#   tools/recipes/prune.sh denoiser   # only the denoiser part
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"   # strict mode, project root, DATA/TFDENOISE/PYTHON
OUT=runs/prune
mkdir -p "$OUT"
part="${1:-all}"

# run_once FILE CMD...: run CMD unless FILE exists (the step's result)
run_once() { local f="$1"; shift; [[ -e "$f" ]] || "$@"; }

# kws_part NAME SOURCE: SOURCE (a KWS checkpoint) pruned four ways into runs/prune/kws_NAME_<tag>,
# then every model (dense = SOURCE) exported to INT8 and scored (Keras: accuracy + 1 h DET
# stream; INT8: accuracy). Fine-tuning: the shipped model's augmentation (real noise at 0-20 dB,
# 0.2 s shift; the task, keywords and split come from the checkpoint), 20 epochs, learning rate
# 3e-4 -> 3e-5 (the shipped run ended at 1e-4).
kws_part() {
    local name="$1" source="$2" tag method sparsity model
    local tune=(--noise "$DATA/noise" --shift 0.2 --lr 3e-4 --lr-final 3e-5 --epochs 20 --cache runs/cache_kws --quiet)
    for job in "u50 unstructured 0.5" "u75 unstructured 0.75" "m24 2:4 0.5" "s50 structured 0.5"; do
        read -r tag method sparsity <<< "$job"
        run_once "$OUT/kws_${name}_$tag/best" "$TFDENOISE" prune "$source" --method "$method" --sparsity "$sparsity" \
            "${tune[@]}" -o "$OUT/kws_${name}_$tag" --json "$OUT/kws_${name}_$tag.prune.json"
    done
    for tag in dense u50 u75 m24 s50; do
        model="$OUT/kws_${name}_$tag/best"; [[ "$tag" == dense ]] && model="$source"
        run_once "$OUT/kws_${name}_$tag.int8.tflite" "$TFDENOISE" export "$model" --int8 \
            --calib-data "$DATA/kws/fsdd" -o "$OUT/kws_${name}_$tag.int8.tflite" --json "$OUT/kws_${name}_$tag.export.json"
        run_once "$OUT/kws_${name}_$tag.eval.json" "$TFDENOISE" kws evaluate --model "$model" \
            --data "$DATA/kws/fsdd" --noise "$DATA/noise" --cache runs/cache_kws --json "$OUT/kws_${name}_$tag.eval.json"
        run_once "$OUT/kws_${name}_$tag.int8.eval.json" "$TFDENOISE" kws evaluate --model "$OUT/kws_${name}_$tag.int8.tflite" \
            --data "$DATA/kws/fsdd" --hours 0 --json "$OUT/kws_${name}_$tag.int8.eval.json"
        # the loop strategies of docs/design.md §9 priced on the STM32F767 (targets/strategies.py)
        run_once "$OUT/kws_${name}_$tag.strategies.json" "$TFDENOISE" report "$OUT/kws_${name}_$tag.int8.tflite" \
            --target stm32f767 --strategy all --json "$OUT/kws_${name}_$tag.strategies.json"
    done
}

if [[ "$part" == all || "$part" == kws ]]; then
    kws_part dnn tfdenoise/pretrained/kws_dnn   # the shipped model
fi

if [[ "$part" == all || "$part" == denoiser ]]; then
    # LSTM128, 25 % of the units of each RNN layer removed (128 -> 96), fine-tuned with the
    # second-phase recipe (common.sh) for 6 epochs (about 25 min on the 2-core CPU), learning
    # rate 3e-4 -> 3e-5 (the shipped run ended at 3.4e-5), best by PESQ on 32 held-out mixtures.
    run_once "$OUT/lstm128_s25/best" "$TFDENOISE" prune lstm128 --method structured --sparsity 0.25 \
        --speech "$DATA/speech" --noise "$DATA/noise" --batch 32 --seed 0 --cache runs/cache "${SECOND_PHASE[@]}" \
        --lr 3e-4 --lr-final 3e-5 --epochs 6 -o "$OUT/lstm128_s25" --json "$OUT/lstm128_s25.prune.json"
    for tag in dense s25; do
        model="$OUT/lstm128_s25/best"; [[ "$tag" == dense ]] && model=lstm128
        for prec in fp32 mixed int8; do
            run_once "$OUT/lstm128_$tag.$prec.tflite" "$TFDENOISE" export "$model" "--$prec" \
                -o "$OUT/lstm128_$tag.$prec.tflite" --json "$OUT/lstm128_$tag.$prec.export.json"
        done
        run_once "$OUT/lstm128_$tag.fp32.eval.json" "$TFDENOISE" evaluate --model "$model" \
            --json "$OUT/lstm128_$tag.fp32.eval.json"
        run_once "$OUT/lstm128_$tag.mixed.eval.json" "$TFDENOISE" evaluate --model "$OUT/lstm128_$tag.mixed.tflite" \
            --json "$OUT/lstm128_$tag.mixed.eval.json"
        for prec in mixed int8; do
            for board in gap9 stm32f746; do
                run_once "$OUT/lstm128_$tag.$prec.$board.json" "$TFDENOISE" report "$OUT/lstm128_$tag.$prec.tflite" \
                    --target "$board" -o "$OUT/report_${tag}_${prec}_$board" --json "$OUT/lstm128_$tag.$prec.$board.json"
            done
        done
    done
fi
