# Shared by scripts/test.sh and scripts/demo.sh (sourced, not run): named steps with timings.
#   step "what"         starts a step (ends the previous one) and prints "==> [n] what"
#   quietly LOG cmd...  runs cmd with its output in LOG; prints LOG only if cmd fails
#   size_of PATH        human size of a file or folder ("0" if missing)
#   pip_downloads LOG   what a pip install logged to LOG as downloaded: "N files, X MB" (or from its cache)
# step_summary prints the timing of every step so far (the scripts call it on exit, failed or not).
STEP_NAMES=()
STEP_SECONDS=()
STEP_CURRENT=""
STEP_STARTED=0
if [[ -t 1 ]]; then STEP_BOLD=$'\033[1m' STEP_PLAIN=$'\033[0m'; else STEP_BOLD="" STEP_PLAIN=""; fi

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
  printf '\n%s==> [%d] %s%s\n' "$STEP_BOLD" "$((${#STEP_NAMES[@]} + 1))" "$1" "$STEP_PLAIN"
}

step_summary() {
  _step_end
  ((${#STEP_NAMES[@]})) || return 0
  printf '\n%sstep timings%s\n' "$STEP_BOLD" "$STEP_PLAIN"
  local i total=0
  for i in "${!STEP_NAMES[@]}"; do
    printf '  %5ss  %s\n' "${STEP_SECONDS[$i]}" "${STEP_NAMES[$i]}"
    total=$((total + STEP_SECONDS[i]))
  done
  printf '  %5ss  total\n' "$total"
  STEP_NAMES=()
  STEP_SECONDS=()
}

quietly() {
  local log="$1" status=0; shift
  "$@" >"$log" 2>&1 || status=$?
  if ((status)); then
    cat "$log" >&2
    echo "failed (exit $status): $* (output above, also in $log)" >&2
  fi
  return "$status"
}

size_of() {
  if [[ -e "$1" ]]; then du -sh "$1" 2>/dev/null | cut -f1; else echo 0; fi
}

pip_downloads() {
  awk '
    /Downloading .*\(/ {
      size = $0; sub(/.*\(/, "", size); sub(/\).*/, "", size); split(size, part, " ")
      factor = part[2] == "kB" ? 0.001 : part[2] == "MB" ? 1 : part[2] == "GB" ? 1000 : 0.000001
      total += part[1] * factor; files++
    }
    /Using cached/ { cached++ }
    END {
      if (files) printf "downloaded %d file(s), %.1f MB", files, total; else printf "downloaded nothing"
      if (cached) printf " (%d from pip'"'"'s cache)", cached
      print ""
    }' "$1"
}
