#!/usr/bin/env bash
# SNL and SENet on a TinyImageNet (64x64, 200 classes) ResNet18 at the published budgets
# (anchors: SNL and SENet via ReLUPruner). The anchors give no TinyImageNet-specific recipe:
# the CIFAR-100 settings are used.
#   DATA_ROOT=~/data bash recipes/tinyimagenet_resnet18.sh      # DATA_ROOT holds tiny-imagenet-200/
#   QUICK=1 bash recipes/tinyimagenet_resnet18.sh
source "$(dirname "$0")/_common.sh"

DATA=$(dataset tinyimagenet)
SNL_BUDGETS=${SNL_BUDGETS:-59.4k 99.6k 198.1k 298.8k}
SENET_BUDGETS=${SENET_BUDGETS:-142k 298k}
if [[ "$QUICK" == 1 ]]; then SNL_BUDGETS="5k"; SENET_BUDGETS="10k"; fi

train_run resnet18 "$OUT/teacher-snl" "$DATA" 0.1
train_run resnet18 "$OUT/teacher-senet" "$DATA" 0.05
budget_runs snl "$OUT/teacher-snl" "$DATA" $SNL_BUDGETS
budget_runs senet "$OUT/teacher-senet" "$DATA" $SENET_BUDGETS
front "$DATA" snl,senet "${RUNS[@]}"
