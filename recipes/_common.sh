# Sourced by every recipe: environment knobs, the QUICK dry mode and the teacher step.
# Not a recipe itself. See recipes/README.md.
#
#   DATA_ROOT    folder holding the dataset files (passed as --root); required unless QUICK=1
#   OUT          output folder of the recipe (default runs/recipes/<recipe>)
#   EPOCH_SCALE  multiplies every published epoch count (default 1; 0.1 = a 10x shorter try)
#   DEVICE       auto, cpu, cuda or cuda:N (default auto)
#   WORKERS      DataLoader workers (default 4)
#   SEED         training seed (default 0)
#   QUICK=1      wiring check without the data: the packaged fashion-mnist-mini, 1 epoch per
#                stage, --limit 256 training images, named networks narrowed with --width 8
#                (NARROW=8; synthesized specs train as they are) and the
#                recipe's small QUICK budgets. Its accuracies mean nothing.
set -euo pipefail

RECIPE=$(basename "$0" .sh)
QUICK=${QUICK:-0}
EPOCH_SCALE=${EPOCH_SCALE:-1}
DEVICE=${DEVICE:-auto}
SEED=${SEED:-0}
if [[ "$QUICK" == 1 ]]; then
    WORKERS=${WORKERS:-0}
    OUT=${OUT:-runs/recipes-quick/$RECIPE}
    ROOT_ARGS=()
    QUICK_ARGS=(--limit 256)
    NARROW=8
else
    WORKERS=${WORKERS:-4}
    OUT=${OUT:-runs/recipes/$RECIPE}
    : "${DATA_ROOT:?set DATA_ROOT to the folder holding the dataset (see docs/data.md), or run with QUICK=1}"
    ROOT_ARGS=(--root "$DATA_ROOT")
    QUICK_ARGS=()
    NARROW=
fi
RUN_ARGS=(--device "$DEVICE" --workers "$WORKERS" --seed "$SEED")
mkdir -p "$OUT"

# dataset NAME: the dataset to use, the packaged mini set under QUICK=1.
dataset() {
    if [[ "$QUICK" == 1 ]]; then echo fashion-mnist-mini; else echo "$1"; fi
}

# ep N: N published epochs scaled by EPOCH_SCALE (at least 1); 1 under QUICK=1.
ep() {
    if [[ "$QUICK" == 1 ]]; then echo 1; return; fi
    awk -v n="$1" -v s="$EPOCH_SCALE" 'BEGIN { e = int(n * s + 0.5); print (e < 1 ? 1 : e) }'
}

# resume_flag DIR: --resume when DIR already holds a checkpoint, so a rerun continues it.
resume_flag() {
    if [[ -f "$1/checkpoint.pt" ]]; then echo --resume; fi
}

# train_run MODEL DIR DATA LR [TEACHER_DIR]: the all-ReLU teacher recipe of the anchors
# (anchors.md, "Training recipes"): SGD momentum 0.9, weight decay 5e-4, batch 128, step
# decay x0.1 (at 50% and 75% of training), 200 epochs (the anchors used 160-240). LR: 0.1
# (SNL) or 0.05 (SENet). With TEACHER_DIR the same recipe distills from that run (KD, T=4).
# Rerunning continues an interrupted run and skips a finished one.
train_run() {
    local model=$1 dir=$2 data=$3 lr=$4 teacher_dir=${5:-}
    echo "== train $model -> $dir"
    reshape train "$model" --data "$data" "${ROOT_ARGS[@]}" --out "$dir" ${NARROW:+--width "$NARROW"} \
        --epochs "$(ep 200)" --batch-size 128 --lr "$lr" --optimizer sgd --weight-decay 5e-4 \
        --schedule step ${teacher_dir:+--teacher "$teacher_dir" --kd-temperature 4} \
        "${RUN_ARGS[@]}" "${QUICK_ARGS[@]}" $(resume_flag "$dir")
}

# snl_run TEACHER_DIR DATA BUDGET DIR: SNL as published (methods.md section 2): mask phase
# Adam lr 1e-3, CE + KL(T=4) + lambda * L1, lambda 1e-5 grown x1.1 when the count stalls
# after epoch 5, threshold 0.01 (built in), at most 200 mask epochs (ours: a cap; the phase
# stops once the count is within the budget); then 100 epochs of KD fine-tuning, SGD lr 1e-3
# cosine. Rerunning the same command resumes.
snl_run() {
    local teacher_dir=$1 data=$2 budget=$3 dir=$4
    echo "== SNL $budget -> $dir"
    reshape snl "$teacher_dir" --budget "$budget" --data "$data" "${ROOT_ARGS[@]}" --out "$dir" \
        --mask-epochs "$(ep 200)" --mask-lr 1e-3 --lambda 1e-5 --lambda-growth 1.1 --lambda-warmup 5 \
        --epochs "$(ep 100)" --lr 1e-3 --optimizer sgd --schedule cosine --batch-size 128 \
        --kd-temperature 4 "${RUN_ARGS[@]}" "${QUICK_ARGS[@]}"
}

# senet_run TEACHER_DIR DATA BUDGET DIR: SENet as published (anchors.md): per-neuron
# locations learned with 0.5 CE + 0.5 KL(T=4), then the final stage with KD and 1000 x
# attention transfer, SGD lr 0.05, step decay. --epochs sets both stages: the published
# 240 of the final stage (the location stage published 150 runs 240 here), and the step
# decay falls at 50%/75% (120/180) instead of the published 150/180/210.
senet_run() {
    local teacher_dir=$1 data=$2 budget=$3 dir=$4
    echo "== SENet $budget -> $dir"
    reshape senet "$teacher_dir" --budget "$budget" --data "$data" "${ROOT_ARGS[@]}" --out "$dir" \
        --granularity neuron --sensitivity pruning --allocation sensitivity --at-weight 1000 \
        --epochs "$(ep 240)" --lr 0.05 --optimizer sgd --schedule step --batch-size 128 \
        --kd-alpha 0.5 --kd-temperature 4 "${RUN_ARGS[@]}" "${QUICK_ARGS[@]}"
}

# front DATA METHODS RUN_DIR...: our runs against the published ones of METHODS (none under
# QUICK=1: the mini set has no anchors), plotted and as JSON.
front() {
    local data=$1 methods=$2
    shift 2
    if [[ "$QUICK" == 1 ]]; then methods=; fi
    reshape pareto "$@" --dataset "$data" ${methods:+--methods "$methods"} --out "$OUT/front.png" \
        --json > "$OUT/front.json"
    echo "== $OUT/front.png, $OUT/front.json"
}

# budget_runs METHOD TEACHER DATA BUDGET...: METHOD_run (snl or senet) from TEACHER at every
# budget, into $OUT/METHOD-<budget>; appends each run folder to RUNS for front.
RUNS=()
budget_runs() {
    local method=$1 teacher=$2 data=$3 b
    shift 3
    for b in "$@"; do
        "${method}_run" "$teacher" "$data" "$b" "$OUT/$method-$b"
        RUNS+=("$OUT/$method-$b")
    done
}
