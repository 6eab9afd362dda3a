#!/bin/bash
# Run many contrast.py probes side by side (one CPU thread each, one GPU shared), then print
# every RESULT line. Usage: sweep.sh DEVICE LIMIT_S LOGDIR [CONFIGS]  (configs: "tag args..."
# per line; default the first sweep below).
dev=${1:-cpu}; lim=${2:-400}; logs=${3:-/tmp/sweep}; mkdir -p "$logs"
common="--easy 1500 --steps 3000 --device $dev"
cfg=${4:-}
i=0
while read -r tag args; do
  [ -z "$tag" ] && continue
  OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 PYTHONUNBUFFERED=1 timeout "$lim" \
    python3 examples/sync_probes/contrast.py $common $args --tag "$tag" > "$logs/$tag.log" 2>&1 &
  i=$((i+1))
done < <(if [ -n "$cfg" ]; then cat "$cfg"; else cat <<'CFG'
f16_t2 --enc flat16 --tau 0.2
f4_t2 --enc flat4 --tau 0.2
f4_t2_s1 --enc flat4 --tau 0.2 --seed 1
f4_t2_s2 --enc flat4 --tau 0.2 --seed 2
f8_t2 --enc flat8 --tau 0.2
f4_t3 --enc flat4 --tau 0.3
f4_t1 --enc flat4 --tau 0.1
f4_cw3 --enc flat4 --tau 0.2 --cw 3
f4_cw03 --enc flat4 --tau 0.2 --cw 0.3
f4_mm4 --enc flat4 --tau 0.2 --mm 0.04
f4_noshare --enc flat4 --tau 0.2 --shared 0
f4_48 --enc flat4 --tau 0.2 --size 48
f4_w32 --enc flat4 --tau 0.2 --width 32
f4_A16 --enc flat4 --tau 0.2 --A 16
f4_lr1 --enc flat4 --tau 0.2 --lr 1e-3
f4_cw0 --enc flat4 --cw 0
CFG
fi)
wait
for f in "$logs"/*.log; do grep -h -E "RESULT|heldout at|Error|error" "$f" | tail -n 6; tail -n 2 "$f" | grep step; done
