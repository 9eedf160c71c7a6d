//! Output for people and tools: preview (text, JSON, Markdown), graphs (DOT, Mermaid) and
//! the console sink of a run; the run list and timeline read from journals.

pub mod console;
pub mod graph;
pub mod preview;
pub mod runs;
