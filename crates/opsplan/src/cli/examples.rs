//! The `Examples:` section of each command's `--help` (and of its man page), with the names
//! of plans this binary ships (`examples/archive-folder`, `cosmos7/backup`) where one fits.

pub(super) const OPSPLAN: &str = "\
Examples:
  opsplan validate plans/                            # check every plan in a folder
  opsplan preview examples/archive-folder            # what a run would do, touching nothing
  opsplan run examples/archive-folder -s dest=/tmp/a # run a shipped plan
  opsplan runs                                       # the runs on record
  opsplan resume last                                # finish the last run after a crash";

pub(super) const VALIDATE: &str = "\
Examples:
  opsplan validate                                   # every opsplan file under ./plans
  opsplan validate plans/ ops/restore.yaml -W        # fail on warnings too (pre-commit, CI)
  opsplan validate plans/ -o sarif > opsplan.sarif   # for code scanning
  opsplan validate plans/ -o github                  # annotations in a GitHub workflow
  opsplan validate restore.yaml --params params/     # each environment's params file";

pub(super) const PREVIEW: &str = "\
Examples:
  opsplan preview examples/archive-folder                  # steps, locks, rollback map
  opsplan preview restore.yaml -p params/prod.yaml         # with one environment's params
  opsplan preview restore.yaml --fail-at restore-data      # what runs when that step fails
  opsplan preview restore.yaml -o markdown > ticket.md     # for a change ticket";

pub(super) const GRAPH: &str = "\
Examples:
  opsplan graph examples/archive-folder | dot -Tsvg > plan.svg
  opsplan graph restore.yaml -o mermaid                    # for a Markdown page";

pub(super) const RUN: &str = "\
Examples:
  opsplan run examples/archive-folder -s dest=/tmp/archive
  opsplan run restore.yaml -p params/prod.yaml -y -f       # answer confirms, allow destructive
  opsplan run backup.yaml -q >> backup.log                 # from cron: results and errors only
  opsplan run backup.yaml --log-format json                # events as JSON Lines on stderr";

pub(super) const DRILL: &str = "\
Examples:
  opsplan drill cosmos7/backup cosmos7/restore --target-param questdb_host \\
      -p backup.yaml --restore-params scratch.yaml --report drill.json";

pub(super) const RESUME: &str = "\
Examples:
  opsplan resume last                              # finish the run that started last
  opsplan resume 7f3a                              # a unique prefix of a run id
  opsplan resume 7f3a --rollback                   # only undo and clean up
  opsplan resume 7f3a --rerun restore-data -y      # run a step left in doubt again";

pub(super) const RUNS: &str = "\
Examples:
  opsplan runs                                     # every run on record, newest last
  opsplan runs show last                           # one run's timeline
  opsplan runs -o json                             # for a script";

pub(super) const RUNS_SHOW: &str = "\
Examples:
  opsplan runs show last
  opsplan runs show 7f3a -o json";

pub(super) const PLANS: &str = "\
Examples:
  opsplan plans                                    # the shipped plans
  opsplan plans show cosmos7/backup
  opsplan plans export cosmos7/backup ops/plans/
  opsplan plans diff ops/plans/backup.yaml";

pub(super) const PLANS_SHOW: &str = "\
Examples:
  opsplan plans show cosmos7/backup > backup.yaml";

pub(super) const PLANS_EXPORT: &str = "\
Examples:
  opsplan plans export cosmos7/backup ops/plans/   # writes backup.yaml and backup.yaml.origin";

pub(super) const PLANS_DIFF: &str = "\
Examples:
  opsplan plans diff ops/plans/backup.yaml         # after upgrading opsplan";

pub(super) const GENERATIONS: &str = "\
Examples:
  opsplan generations /srv/backups/cosmos7
  opsplan generations /srv/backups/cosmos7 -o json";

pub(super) const NEW: &str = "\
Examples:
  opsplan new plan plans/restore-app.yaml --system app
  opsplan new ops-repo ops/ --name restore-app";

pub(super) const NEW_PLAN: &str = "\
Examples:
  opsplan new plan plans/restore-app.yaml --system app";

pub(super) const NEW_OPS_REPO: &str = "\
Examples:
  opsplan new ops-repo ops/ --name restore-app";

pub(super) const SCHEMA: &str = "\
Examples:
  opsplan schema > schemas/plan.v1.json
  opsplan schema --check schemas/plan.v1.json";

pub(super) const TYPES: &str = "\
Examples:
  opsplan types                                    # every step type and its outputs
  opsplan types fs.sync                            # one type's arguments and outputs";

pub(super) const COMPLETIONS: &str = "\
Examples:
  opsplan completions bash > /etc/bash_completion.d/opsplan
  opsplan completions zsh > ~/.zfunc/_opsplan
  opsplan completions fish > ~/.config/fish/completions/opsplan.fish
  opsplan completions --dir docs/completions --check";

pub(super) const MAN: &str = "\
Examples:
  opsplan man | man -l -
  opsplan man --dir /usr/local/share/man/man1
  opsplan man --dir docs/man --check";

pub(super) const REFERENCE: &str = "\
Examples:
  opsplan reference docs/reference
  opsplan reference docs/reference --check";
