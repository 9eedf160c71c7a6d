//! Whether output is coloured: `--color always|never` decides; with `auto` (the default)
//! `NO_COLOR` (set and not empty) turns colour off, `CLICOLOR_FORCE` (set, not `0`) turns it
//! on, `CLICOLOR=0` turns it off, else a stream is coloured when it is a terminal (not
//! `TERM=dumb`), as the CLICOLOR convention (bixense.com/clicolors) says. Decided once at
//! start and kept in `console`'s switches, which indicatif, dialoguer and our own styled
//! text read; miette's theme and tracing's ANSI setting are chosen from [`stderr`].

use std::ffi::OsString;
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it).
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    fn decide(self, is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
                    false
                } else if std::env::var_os("CLICOLOR_FORCE")
                    .is_some_and(|v| !v.is_empty() && v != "0")
                {
                    true
                } else if std::env::var_os("CLICOLOR").is_some_and(|v| v == "0") {
                    false
                } else {
                    is_terminal && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
                }
            }
        }
    }

    /// The same choice for clap's own help and usage errors.
    pub(crate) fn for_clap(self) -> clap::ColorChoice {
        match self {
            ColorChoice::Auto if stderr() => clap::ColorChoice::Always,
            ColorChoice::Always => clap::ColorChoice::Always,
            _ => clap::ColorChoice::Never,
        }
    }

    /// `--color` as given on the command line, read before clap parses it (so that clap's
    /// own errors follow it too); `auto` when absent or not a choice.
    pub(crate) fn from_args(args: &[OsString]) -> Self {
        let mut value = None;
        let mut args = args.iter().skip(1);
        while let Some(arg) = args.next() {
            let arg = arg.to_string_lossy();
            if arg == "--" {
                break;
            }
            if arg == "--color" {
                value = args.next().map(|v| v.to_string_lossy().into_owned());
            } else if let Some(v) = arg.strip_prefix("--color=") {
                value = Some(v.to_string());
            }
        }
        value
            .and_then(|v| <ColorChoice as clap::ValueEnum>::from_str(&v, true).ok())
            .unwrap_or_default()
    }
}

/// Decides colour for stdout and stderr once, at start.
pub(crate) fn init(choice: ColorChoice) {
    console::set_colors_enabled(choice.decide(std::io::stdout().is_terminal()));
    console::set_colors_enabled_stderr(choice.decide(std::io::stderr().is_terminal()));
}

/// Whether what goes to stderr is coloured.
pub(crate) fn stderr() -> bool {
    console::colors_enabled_stderr()
}
