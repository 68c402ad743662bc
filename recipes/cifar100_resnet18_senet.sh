#!/usr/bin/env bash
# SENet on a CIFAR-100 ResNet18 at 25K/50K/100K/180K (anchors: SENet, Kundu et al., ICLR 2023,
# published at 24.6K and 49.6K only).
#   DATA_ROOT=~/data bash recipes/cifar100_resnet18_senet.sh
#   QUICK=1 bash recipes/cifar100_resnet18_senet.sh
source "$(dirname "$0")/_common.sh"

DATA=$(dataset cifar100)
BUDGETS=${BUDGETS:-24.6k 49.6k 100k 180k}
[[ "$QUICK" == 1 ]] && BUDGETS="5k 10k"

train_run resnet18 "$OUT/teacher" "$DATA" 0.05
budget_runs senet "$OUT/teacher" "$DATA" $BUDGETS
front "$DATA" senet "${RUNS[@]}"
