#!/usr/bin/env bash
# HybReNets on CIFAR-100 (DeepReShape; anchor: "+2.35 points over SNL at 180K", i.e. about
# 80.00% against SNL's 77.65%). Two paths:
#  a) ours, O(1): `reshape synthesize` sizes a HybReNet for each budget (no ReLU
#     optimization needed), trained with the teacher recipe and KD from a ResNet18 teacher;
#  b) the paper's pipeline: train the all-ReLU HRN-5x5x3x-m16 (343,040 ReLUs,
#     recipes/specs/hrn_5x5x3x_m16.json), then SNL down to each budget of HRN_BUDGETS.
#   DATA_ROOT=~/data bash recipes/cifar100_hybrenet_sweep.sh
#   QUICK=1 bash recipes/cifar100_hybrenet_sweep.sh
source "$(dirname "$0")/_common.sh"

DATA=$(dataset cifar100)
BUDGETS=${BUDGETS:-25k,50k,100k,180k}
HRN_BUDGETS=${HRN_BUDGETS:-180k}
if [[ "$QUICK" == 1 ]]; then BUDGETS="15k,30k"; HRN_BUDGETS="30k"; fi
HRN=$(dirname "$0")/specs/hrn_5x5x3x_m16.json

# a) synthesized HybReNets, distilled from a ResNet18 teacher (SNL's teacher recipe).
train_run resnet18 "$OUT/teacher" "$DATA" 0.1
reshape synthesize --backbone resnet18 --dataset "$DATA" --sweep "$BUDGETS" --criticality 1,4,2,3 \
    --out "$OUT/specs"
runs=()
for spec in "$OUT"/specs/resnet18-*.json; do
    name=$(basename "$spec" .json)
    NARROW= train_run "$spec" "$OUT/hrn-$name" "$DATA" 0.1 "$OUT/teacher"
    runs+=("$OUT/hrn-$name")
done

# b) all-ReLU HRN-5x5x3x-m16, then SNL.
train_run "$HRN" "$OUT/hrn-5x5x3x-m16" "$DATA" 0.1
for b in $HRN_BUDGETS; do
    snl_run "$OUT/hrn-5x5x3x-m16" "$DATA" "$b" "$OUT/hrn-5x5x3x-m16-snl-$b"
    runs+=("$OUT/hrn-5x5x3x-m16-snl-$b")
done
front "$DATA" snl,deepreshape "${runs[@]}"
