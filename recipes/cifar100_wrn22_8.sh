#!/usr/bin/env bash
# SENet on a CIFAR-100 WRN-22-8 at 150K (anchor: SENet WRN22-8, 78.32%). The teacher is the
# standard pre-activation WRN-22-8 (timm name wrn22_8: 1,392,640 ReLUs at 32x32; SNL's
# convention, without the final ReLU its network lacks, 1,359,872). No dropout, as in SNL's
# wide_resnet_22_8.
#   DATA_ROOT=~/data bash recipes/cifar100_wrn22_8.sh
#   QUICK=1 bash recipes/cifar100_wrn22_8.sh
source "$(dirname "$0")/_common.sh"

DATA=$(dataset cifar100)
BUDGETS=${BUDGETS:-150k}
[[ "$QUICK" == 1 ]] && BUDGETS="10k"

reshape count wrn22_8 --dataset "$DATA"
train_run wrn22_8 "$OUT/teacher" "$DATA" 0.05
budget_runs senet "$OUT/teacher" "$DATA" $BUDGETS
front "$DATA" senet "${RUNS[@]}"
