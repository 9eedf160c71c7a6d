#!/usr/bin/env bash
# The ops repository's check, run by CI (.github/workflows/opsplan.yml), by pre-commit and
# by opsplan's own CI (.ci/test): every plan validates, every environment's params file
# validates against its plan, and each environment's preview is rendered as Markdown into
# the folder given (default previews/), for review as CI artifacts.
#
# Needs no secret: secrets come from the environment, a mounted file or a command at run
# time, and a preview leaves them unread.
set -euo pipefail
cd "$(dirname "$0")/.."
opsplan="${OPSPLAN:-opsplan}"
out="${1:-previews}"
mkdir -p "$out"

# Each line: a plan (a file here, or a shipped plan by name) and the folder of its params
# files, one per environment.
checks=(
  "plans/restore-app.yaml params/restore-app"
  "plans/restore-mimir.yaml params/restore-mimir"
  "cosmos7/backup params/cosmos7-backup"
)

"$opsplan" validate plans --deny-warnings
# The JSON Schema editors read (each plan's first line names it): when it is not this
# opsplan's, say how to refresh it, without failing the check.
"$opsplan" schema --check schemas/plan.v1.json || true
for check in "${checks[@]}"; do
  read -r plan params <<<"$check"
  "$opsplan" validate "$plan" --params "$params" --deny-warnings
  for file in "$params"/*.yaml; do
    env=$(basename "$file" .yaml)
    name=$(basename "$params")
    # A plan whose secret comes from the environment (cosmos7/backup's
    # OPENC3_TSDB_PASSWORD) cannot be previewed without it yet: preview still needs every
    # secret's value. It is validated above; its preview waits for preview without values.
    if "$opsplan" preview "$plan" --params "$file" --format markdown >"$out/$name-$env.md" 2>"$out/$name-$env.err"; then
      rm -f "$out/$name-$env.err"
      echo "$out/$name-$env.md"
    elif grep -q 'E041' "$out/$name-$env.err" && [ "${OPSPLAN_PREVIEW_STRICT:-0}" != 1 ]; then
      echo "$out/$name-$env.md: not rendered (a value only the run has; see $out/$name-$env.err)"
      rm -f "$out/$name-$env.md"
    else
      cat "$out/$name-$env.err" >&2
      exit 2
    fi
  done
done
