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
# The same diagnostics for code scanning (CI uploads it; an error still fails the line above).
"$opsplan" validate plans --format sarif >"$out/opsplan.sarif" || true
# The JSON Schema editors read (each plan's first line names it): when it is not this
# opsplan's, say how to refresh it, without failing the check.
"$opsplan" schema --check schemas/plan.v1.json || true
for check in "${checks[@]}"; do
  read -r plan params <<<"$check"
  "$opsplan" validate "$plan" --params "$params" --deny-warnings
  for file in "$params"/*.yaml; do
    env=$(basename "$file" .yaml)
    name=$(basename "$params")
    # Preview needs no secret: a value only the run has shows as ⟨params.NAME⟩, and the
    # preview names it; a preview that fails is a failed check.
    "$opsplan" preview "$plan" --params "$file" --format markdown >"$out/$name-$env.md"
    echo "$out/$name-$env.md"
  done
done
