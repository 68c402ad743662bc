#!/usr/bin/env bash
# SNL on a CIFAR-100 ResNet18 at the published budgets (anchors: SNL, Cho et al., ICML 2022).
#   DATA_ROOT=~/data bash recipes/cifar100_resnet18_snl.sh       # GPU; ~1 teacher + 4 SNL runs
#   QUICK=1 bash recipes/cifar100_resnet18_snl.sh                 # wiring check, CPU, no data
# Budgets are SNL's published counts (SNL counts no stem ReLU; ours counts it: recipes/README.md).
source "$(dirname "$0")/_common.sh"

DATA=$(dataset cifar100)
BUDGETS=${BUDGETS:-25k 49.4k 99.9k 180k}
[[ "$QUICK" == 1 ]] && BUDGETS="5k 10k"

train_run resnet18 "$OUT/teacher" "$DATA" 0.1
budget_runs snl "$OUT/teacher" "$DATA" $BUDGETS
front "$DATA" snl "${RUNS[@]}"
