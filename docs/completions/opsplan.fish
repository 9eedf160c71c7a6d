# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_opsplan_global_optspecs
    string join \n color= q/quiet v/verbose h/help V/version
end

function __fish_opsplan_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_opsplan_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_opsplan_using_subcommand
    set -l cmd (__fish_opsplan_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c opsplan -n "__fish_opsplan_needs_command" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_needs_command" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_needs_command" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_needs_command" -s V -l version -d 'Print version'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "validate" -d 'Check plan files (or folders of them) and report every problem found'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "preview" -d 'Show what a run would do, without touching anything'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "graph" -d 'Print the plan\'s DAG, with undo and cleanup edges'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "run" -d 'Run a plan'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "drill" -d 'Restore drill: run the backup plan, verify the backup against its manifest, run the restore plan against a scratch target, compare, check (docs/reference/drill.md)'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "resume" -d 'Finish a run that a crash (or kill -9) interrupted, from its journal'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "runs" -d 'List the runs in the journal folder, or show one run\'s timeline'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "plans" -d 'The plans this opsplan ships: list them, show, export an editable copy, diff a copy'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "generations" -d 'List the backup generations in a backup location with their state and age'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "new" -d 'Write a plan or an ops repository to start from, that validates as written'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "schema" -d 'Print the JSON Schema of plan files (or check a committed copy)'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "types" -d 'List the step types with their outputs, or print one type\'s arguments and outputs'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell), or write the committed bash, zsh and fish scripts into a folder (or check them with --check)'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "man" -d 'Print the man page (roff), or write the pages of every command into a folder (or check them with --check)'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "reference" -d 'Write the generated reference pages into a folder (or check them with --check)'
complete -c opsplan -n "__fish_opsplan_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c opsplan -n "__fish_opsplan_using_subcommand validate" -l params -d 'Check these params files (or folders of them, one file per environment) against the plan: unknown keys, types, choices, missing values, secrets in clear' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand validate" -s o -l format -d 'text (stderr), json, sarif (SARIF 2.1.0) or github (workflow annotations), on stdout; the summary line is on stderr in every format' -r -f -a "text\t'Diagnostics with source excerpts on stderr'
json\t'One JSON object on stdout: counts and every diagnostic'
sarif\t'SARIF 2.1.0 on stdout, for code scanning (GitHub, GitLab, Azure DevOps)'
github\t'GitHub workflow commands on stdout: `::error file=…,line=…,col=…::message`'"
complete -c opsplan -n "__fish_opsplan_using_subcommand validate" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand validate" -s W -l deny-warnings -d 'Fail on warnings too'
complete -c opsplan -n "__fish_opsplan_using_subcommand validate" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand validate" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand validate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand preview" -s s -l set -d 'Set a param: --set name=value (repeatable)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand preview" -s p -l params -d 'Read params from a YAML or JSON file' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand preview" -l fail-at -d 'Show exactly what runs when this step fails; `STEP:refused` when its failure matches its `refused_when` (nothing acquired)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand preview" -s o -l format -d 'text for a terminal, markdown for a change ticket, json for a program' -r -f -a "text\t''
json\t''
markdown\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand preview" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand preview" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand preview" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand preview" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand graph" -s s -l set -d 'Set a param: --set name=value (repeatable)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand graph" -s p -l params -d 'Read params from a YAML or JSON file' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand graph" -s o -l format -d 'dot (Graphviz) or mermaid (Markdown pages that render Mermaid)' -r -f -a "dot\t''
mermaid\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand graph" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand graph" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand graph" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand graph" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -s s -l set -d 'Set a param: --set name=value (repeatable)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -s p -l params -d 'Read params from a YAML or JSON file' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -s j -l max-parallel -d 'Most steps running at once' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -l grace -d 'Time a cancelled process gets between SIGTERM and SIGKILL' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -l log-format -d 'text (a line per event, a live view on a terminal) or json (JSON Lines on stderr)' -r -f -a "text\t''
json\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -l journal-dir -d 'Folder of run journals, one sub-folder per run [default: $STATE_DIRECTORY, else $XDG_STATE_HOME/opsplan, else ~/.local/state/opsplan, else /var/lib/opsplan for root; then runs/]' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -l lock-dir -d 'Folder of the local lock files [default: locks/ beside the default journal folder]' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -l wait-lock -d 'Wait up to this long for a lock held by a running run, instead of refusing at once' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -s y -l yes -d 'Answer every `confirm` step with yes'
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -s f -l force -d 'Allow destructive steps without asking'
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -l break-lock -d 'Take over a stale lock (its run\'s process is gone) after you checked that nothing that run held is left'
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -l no-journal -d 'Do not write a run journal (the run cannot be resumed after a crash)'
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l backup-params -d 'Read the backup plan\'s params from a YAML or JSON file' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l set-backup -d 'Set a backup plan param (repeatable)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l restore-params -d 'Read the restore plan\'s params from a YAML or JSON file' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l set-restore -d 'Set a restore plan param (repeatable)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l target-param -d 'The param that names the target: the backup plan\'s value is the source, the restore plan\'s the scratch target, and they must differ. `NAME` when both plans call it the same, else `BACKUP_NAME=RESTORE_NAME`. Repeatable: the target is then all of them together (host and database)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l compare -d 'Compare this restored folder with the backup\'s manifest (sizes and SHA-256); `DIR=PATH` compares it with the manifest\'s entries below PATH. Repeatable' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l check -d 'A plan run last that checks the restored data (its failing step fails the drill)' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l check-params -d 'Read the check plan\'s params from a YAML or JSON file' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l set-check -d 'Set a check plan param (repeatable)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l backup-folder -d 'Also verify this backup folder against its manifest (for backups whose plan has no `manifest` step of its own)' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l manifest-file -d 'The manifest\'s file name in --backup-folder' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l restore-from-backup -d 'Set a restore param from an output of a backup step, once the backup ran (a backup named by its time: `archive=archive-path.stdout`). Repeatable' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l verified-by -d 'Let this `verify` step of the restore plan verify the backup, instead of the drill reading the backup\'s manifest steps (a backup that keeps its manifest elsewhere than the folder its `manifest` step wrote)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l report -d 'Write the JSON report of the drill here (also when it fails)' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -s j -l max-parallel -d 'Most steps running at once' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l grace -d 'Time a cancelled process gets between SIGTERM and SIGKILL' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l log-format -d 'text (a line per event, a live view on a terminal) or json (JSON Lines on stderr)' -r -f -a "text\t''
json\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l journal-dir -d 'Folder of run journals, one sub-folder per run [default: $STATE_DIRECTORY, else $XDG_STATE_HOME/opsplan, else ~/.local/state/opsplan, else /var/lib/opsplan for root; then runs/]' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l lock-dir -d 'Folder of the local lock files [default: locks/ beside the default journal folder]' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l wait-lock -d 'Wait up to this long for a lock held by a running run, instead of refusing at once' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -s y -l yes -d 'Answer every `confirm` step with yes'
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -s f -l force -d 'Allow destructive steps without asking'
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -l break-lock -d 'Take over a stale lock (its run\'s process is gone) after you checked that nothing that run held is left'
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand drill" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -l rerun -d 'Run this step again although the crash left it in doubt and its `on_resume` is `ask` (repeatable)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -s s -l set -d 'Give a secret param again when its original source was `--set` (NAME=VALUE)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -s j -l max-parallel -d 'Most steps running at once' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -l grace -d 'Time a cancelled process gets between SIGTERM and SIGKILL' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -l log-format -d 'text (a line per event, a live view on a terminal) or json (JSON Lines on stderr)' -r -f -a "text\t''
json\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -l journal-dir -d 'Folder of run journals, one sub-folder per run [default: $STATE_DIRECTORY, else $XDG_STATE_HOME/opsplan, else ~/.local/state/opsplan, else /var/lib/opsplan for root; then runs/]' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -l lock-dir -d 'Folder of the local lock files [default: locks/ beside the default journal folder]' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -l wait-lock -d 'Wait up to this long for a lock held by a running run, instead of refusing at once' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -l rollback -d 'Do not go forward: only undo and clean up what the run did'
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -l allow-changed-plan -d 'Resume even though the plan file changed since the run started'
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -s y -l yes -d 'Answer every `confirm` step with yes'
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -s f -l force -d 'Allow destructive steps without asking'
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -l break-lock -d 'Take over a stale lock (its run\'s process is gone) after you checked that nothing that run held is left'
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand resume" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and not __fish_seen_subcommand_from show help" -l journal-dir -d 'Folder of run journals [default: $STATE_DIRECTORY, else $XDG_STATE_HOME/opsplan, else ~/.local/state/opsplan, else /var/lib/opsplan for root; then runs/]' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and not __fish_seen_subcommand_from show help" -s o -l format -d 'text (a table) or json' -r -f -a "text\t''
json\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and not __fish_seen_subcommand_from show help" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and not __fish_seen_subcommand_from show help" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and not __fish_seen_subcommand_from show help" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and not __fish_seen_subcommand_from show help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and not __fish_seen_subcommand_from show help" -f -a "show" -d 'The timeline of one run: every step, attempt, output, error and what was rolled back'
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and not __fish_seen_subcommand_from show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and __fish_seen_subcommand_from show" -l journal-dir -d 'Folder of run journals [default: $STATE_DIRECTORY, else $XDG_STATE_HOME/opsplan, else ~/.local/state/opsplan, else /var/lib/opsplan for root; then runs/]' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and __fish_seen_subcommand_from show" -s o -l format -d 'text (a table) or json' -r -f -a "text\t''
json\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and __fish_seen_subcommand_from show" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and __fish_seen_subcommand_from show" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and __fish_seen_subcommand_from help" -f -a "show" -d 'The timeline of one run: every step, attempt, output, error and what was rolled back'
complete -c opsplan -n "__fish_opsplan_using_subcommand runs; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and not __fish_seen_subcommand_from show export diff help" -s o -l format -d 'text (a table) or json' -r -f -a "text\t''
json\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and not __fish_seen_subcommand_from show export diff help" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and not __fish_seen_subcommand_from show export diff help" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and not __fish_seen_subcommand_from show export diff help" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and not __fish_seen_subcommand_from show export diff help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and not __fish_seen_subcommand_from show export diff help" -f -a "show" -d 'Print a shipped plan or fragment as shipped'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and not __fish_seen_subcommand_from show export diff help" -f -a "export" -d 'Write an editable copy of a shipped plan into DIR (DIR/<file>, and <file>.origin, the base `plans diff` compares with); the copy\'s first line records its origin'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and not __fish_seen_subcommand_from show export diff help" -f -a "diff" -d 'What changed in the shipped plan since FILE was exported, and what changed in FILE'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and not __fish_seen_subcommand_from show export diff help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from show" -s o -l format -d 'text (a table) or json' -r -f -a "text\t''
json\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from show" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from show" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from export" -s o -l format -d 'text (a table) or json' -r -f -a "text\t''
json\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from export" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from export" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from export" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from diff" -s o -l format -d 'text (a table) or json' -r -f -a "text\t''
json\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from diff" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from diff" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from diff" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print a shipped plan or fragment as shipped'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write an editable copy of a shipped plan into DIR (DIR/<file>, and <file>.origin, the base `plans diff` compares with); the copy\'s first line records its origin'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from help" -f -a "diff" -d 'What changed in the shipped plan since FILE was exported, and what changed in FILE'
complete -c opsplan -n "__fish_opsplan_using_subcommand plans; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c opsplan -n "__fish_opsplan_using_subcommand generations" -s o -l format -d 'text (a table) or json' -r -f -a "text\t''
json\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand generations" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand generations" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand generations" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand generations" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and not __fish_seen_subcommand_from plan ops-repo help" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and not __fish_seen_subcommand_from plan ops-repo help" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and not __fish_seen_subcommand_from plan ops-repo help" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and not __fish_seen_subcommand_from plan ops-repo help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and not __fish_seen_subcommand_from plan ops-repo help" -f -a "plan" -d 'Write a starter plan: metadata, params (a secret from `env:`), a confirmed destructive step, a resource released on every path, the `$schema` line'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and not __fish_seen_subcommand_from plan ops-repo help" -f -a "ops-repo" -d 'Write an ops repository like opsplan\'s examples/ops-repo/: a starter plan and two environments\' params, CI, pre-commit, a systemd timer and a Kubernetes CronJob'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and not __fish_seen_subcommand_from plan ops-repo help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from plan" -l name -d 'The plan\'s `metadata.name` (default: the file\'s name without `.yaml`; for `ops-repo`, also the starter plan\'s file and params folder)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from plan" -l system -d 'The plan\'s `metadata.system`' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from plan" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from plan" -l force -d 'Overwrite files that exist (otherwise nothing is written)'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from plan" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from plan" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from ops-repo" -l name -d 'The plan\'s `metadata.name` (default: the file\'s name without `.yaml`; for `ops-repo`, also the starter plan\'s file and params folder)' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from ops-repo" -l system -d 'The plan\'s `metadata.system`' -r
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from ops-repo" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from ops-repo" -l force -d 'Overwrite files that exist (otherwise nothing is written)'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from ops-repo" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from ops-repo" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from ops-repo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from help" -f -a "plan" -d 'Write a starter plan: metadata, params (a secret from `env:`), a confirmed destructive step, a resource released on every path, the `$schema` line'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from help" -f -a "ops-repo" -d 'Write an ops repository like opsplan\'s examples/ops-repo/: a starter plan and two environments\' params, CI, pre-commit, a systemd timer and a Kubernetes CronJob'
complete -c opsplan -n "__fish_opsplan_using_subcommand new; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c opsplan -n "__fish_opsplan_using_subcommand schema" -l check -d 'Compare with this file instead of printing; exit 1 when it differs' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand schema" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand schema" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand schema" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand schema" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand types" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand types" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand types" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand types" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand completions" -l dir -d 'Write `opsplan.bash`, `_opsplan` and `opsplan.fish` into this folder instead' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand completions" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand completions" -l check -d 'With --dir: exit 1 when a script there differs from what would be generated'
complete -c opsplan -n "__fish_opsplan_using_subcommand completions" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand completions" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand man" -l dir -d 'Write `opsplan.1` and one `opsplan-COMMAND.1` per command into this folder' -r -F
complete -c opsplan -n "__fish_opsplan_using_subcommand man" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand man" -l check -d 'With --dir: exit 1 when a page there differs from what would be generated'
complete -c opsplan -n "__fish_opsplan_using_subcommand man" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand man" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand reference" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it), always or never' -r -f -a "auto\t'Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)'
always\t''
never\t''"
complete -c opsplan -n "__fish_opsplan_using_subcommand reference" -l check -d 'Exit 1 when a page in DIR differs from what would be generated'
complete -c opsplan -n "__fish_opsplan_using_subcommand reference" -s q -l quiet -d 'Print only results and errors: no progress, notes or per-file lines; logs at `warn`'
complete -c opsplan -n "__fish_opsplan_using_subcommand reference" -s v -l verbose -d 'Print more: the journal and lock folders a run uses; logs at `debug`'
complete -c opsplan -n "__fish_opsplan_using_subcommand reference" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "validate" -d 'Check plan files (or folders of them) and report every problem found'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "preview" -d 'Show what a run would do, without touching anything'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "graph" -d 'Print the plan\'s DAG, with undo and cleanup edges'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "run" -d 'Run a plan'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "drill" -d 'Restore drill: run the backup plan, verify the backup against its manifest, run the restore plan against a scratch target, compare, check (docs/reference/drill.md)'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "resume" -d 'Finish a run that a crash (or kill -9) interrupted, from its journal'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "runs" -d 'List the runs in the journal folder, or show one run\'s timeline'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "plans" -d 'The plans this opsplan ships: list them, show, export an editable copy, diff a copy'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "generations" -d 'List the backup generations in a backup location with their state and age'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "new" -d 'Write a plan or an ops repository to start from, that validates as written'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "schema" -d 'Print the JSON Schema of plan files (or check a committed copy)'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "types" -d 'List the step types with their outputs, or print one type\'s arguments and outputs'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell), or write the committed bash, zsh and fish scripts into a folder (or check them with --check)'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "man" -d 'Print the man page (roff), or write the pages of every command into a folder (or check them with --check)'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "reference" -d 'Write the generated reference pages into a folder (or check them with --check)'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and not __fish_seen_subcommand_from validate preview graph run drill resume runs plans generations new schema types completions man reference help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and __fish_seen_subcommand_from runs" -f -a "show" -d 'The timeline of one run: every step, attempt, output, error and what was rolled back'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and __fish_seen_subcommand_from plans" -f -a "show" -d 'Print a shipped plan or fragment as shipped'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and __fish_seen_subcommand_from plans" -f -a "export" -d 'Write an editable copy of a shipped plan into DIR (DIR/<file>, and <file>.origin, the base `plans diff` compares with); the copy\'s first line records its origin'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and __fish_seen_subcommand_from plans" -f -a "diff" -d 'What changed in the shipped plan since FILE was exported, and what changed in FILE'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and __fish_seen_subcommand_from new" -f -a "plan" -d 'Write a starter plan: metadata, params (a secret from `env:`), a confirmed destructive step, a resource released on every path, the `$schema` line'
complete -c opsplan -n "__fish_opsplan_using_subcommand help; and __fish_seen_subcommand_from new" -f -a "ops-repo" -d 'Write an ops repository like opsplan\'s examples/ops-repo/: a starter plan and two environments\' params, CI, pre-commit, a systemd timer and a Kubernetes CronJob'
