#!/usr/bin/env bash
# SENet on a CIFAR-100 wide ResNet at 150K (anchor: SENet WRN22-8, 78.32%).
# The spec builder takes 4-stage ResNets only, so the teacher is the closest 4-stage form
# of WRN22-8 (recipes/specs/wrn22_8_4stage.json: WRN22-8's three stages plus one 512-wide
# block at 4x4; post-activation timm BasicBlocks, not WRN's pre-activation ones).
#   DATA_ROOT=~/data bash recipes/cifar100_wrn22_8.sh
#   QUICK=1 bash recipes/cifar100_wrn22_8.sh
source "$(dirname "$0")/_common.sh"

DATA=$(dataset cifar100)
BUDGETS=${BUDGETS:-150k}
[[ "$QUICK" == 1 ]] && BUDGETS="10k"
SPEC=$(dirname "$0")/specs/wrn22_8_4stage.json

reshape count "$SPEC" --dataset "$DATA"
train_run "$SPEC" "$OUT/teacher" "$DATA" 0.05
budget_runs senet "$OUT/teacher" "$DATA" $BUDGETS
front "$DATA" senet "${RUNS[@]}"
