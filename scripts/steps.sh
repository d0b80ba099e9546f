# Shared by scripts/test.sh and scripts/demo.sh (sourced, not run): named steps with timings.
#   step "what"         starts a step (ends the previous one) and prints "==> [n] what"
#   quietly LOG cmd...  runs cmd with its output in LOG; prints LOG only if cmd fails
#   size_of PATH        human size of a file or folder ("0" if missing)
# The timing of every step is printed when the script exits, failed or not.
STEP_NAMES=()
STEP_SECONDS=()
STEP_CURRENT=""
STEP_STARTED=0

_step_end() {
  if [[ -n "$STEP_CURRENT" ]]; then
    STEP_NAMES+=("$STEP_CURRENT")
    STEP_SECONDS+=($((SECONDS - STEP_STARTED)))
    STEP_CURRENT=""
  fi
}

step() {
  _step_end
  STEP_CURRENT="$1"
  STEP_STARTED=$SECONDS
  printf '\n\033[1m==> [%d] %s\033[0m\n' "$((${#STEP_NAMES[@]} + 1))" "$1"
}

step_summary() {
  _step_end
  ((${#STEP_NAMES[@]})) || return 0
  printf '\n\033[1mstep timings\033[0m\n'
  local i total=0
  for i in "${!STEP_NAMES[@]}"; do
    printf '  %5ss  %s\n' "${STEP_SECONDS[$i]}" "${STEP_NAMES[$i]}"
    total=$((total + STEP_SECONDS[i]))
  done
  printf '  %5ss  total\n' "$total"
}

quietly() {
  local log="$1"; shift
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "failed: $* (output above, also in $log)" >&2
    return 1
  fi
}

size_of() {
  if [[ -e "$1" ]]; then du -sh "$1" 2>/dev/null | cut -f1; else echo 0; fi
}
