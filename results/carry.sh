#!/usr/bin/env bash
# Carries a grid's unfinished runs to the next session through git, maybe onto a new machine: a run longer than a
# session (results/multi_teacher.sh's 8M-step students: about 4 hours) or one stopped at a session's end would
# otherwise restart from zero wherever $GRID/runs/ (not committed) is missing.
#
#     GRID=runs/grid_multi bash results/carry.sh save      # after a piece (results/multi_teacher.sh, run_grid.sh)
#     GRID=runs/grid_multi bash results/carry.sh restore   # before a piece
#
# save packs each unfinished run of $GRID/runs (a checkpoint.pt, no eval.json) whole, its tensorboard files
# included, so the resumed run's curves have no gap, into $CARRY_DIR/{grid}/{run}.tar.gz (CARRY_DIR: default
# results/carry; {grid}: $GRID's last folder name), drops the pack of a run that has finished since, and commits
# the folder (COMMIT=0: write only). restore unpacks each pack whose run $GRID/runs lacks and whose data is not in
# results/runs/ yet; a run already here is newer than its pack, or the same, and is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
GRID=${GRID:?GRID: the grid folder whose runs/ to carry}
store=${CARRY_DIR:-results/carry}/$(basename "$GRID")
case ${1:-} in
  restore)
    for pack in "$store"/*.tar.gz; do
      [ -e "$pack" ] || continue
      name=$(basename "$pack" .tar.gz)
      if [ -d "$GRID/runs/$name" ] || [ -f "results/runs/$name/eval.json" ]; then continue; fi
      mkdir -p "$GRID/runs"
      tar -xzf "$pack" -C "$GRID/runs"
      echo "restored $GRID/runs/$name from $pack"
    done
    ;;
  save)
    mkdir -p "$store"
    for dir in "$GRID"/runs/*/; do
      [ -d "$dir" ] || continue
      name=$(basename "$dir")
      if [ -f "$dir/eval.json" ]; then
        rm -f "$store/$name.tar.gz"
      elif [ -f "$dir/checkpoint.pt" ]; then
        # exit 1: a file changed while read (a second stream's run writing): the pack is still a state it resumes from
        tar -czf "$store/$name.tar.gz.tmp" -C "$GRID/runs" "$name" || [ $? -eq 1 ]
        mv "$store/$name.tar.gz.tmp" "$store/$name.tar.gz"  # a pack is whole or absent
        echo "carried $name in $store/$name.tar.gz"
      fi
    done
    if [ "${COMMIT:-1}" = 1 ]; then
      for try in 1 2 3 4 5; do  # another stream's git command may hold the index lock for a moment
        git add -A -- "$store" || { sleep 10; continue; }
        git diff --cached --quiet -- "$store" && exit 0
        git commit -q -m "carry: the unfinished runs of $GRID" -- "$store" && exit 0
        sleep 10
      done
      exit 1
    fi
    ;;
  *)
    echo "carry.sh: say save or restore, got '${1:-}'" >&2
    exit 2
    ;;
esac
