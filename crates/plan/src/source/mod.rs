//! Source text, byte spans and the spanned YAML tree every later stage reads.
//!
//! The YAML is parsed once (serde-saphyr, which reports positions) into [`Node`]s that keep
//! their byte span; typed structs are then deserialized from nodes by [`de`], so an error in
//! any field points at the exact token even after fragments were inlined.

pub mod de;
mod node;

pub use node::{Node, NodeValue, YamlError};

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct Span {
    pub file: FileId,
    pub offset: usize,
    pub len: usize,
}

impl Span {
    pub fn new(file: FileId, offset: usize, len: usize) -> Self {
        Span { file, offset, len }
    }
    pub fn end(&self) -> usize {
        self.offset + self.len
    }
    /// A span inside this one, for errors that point into a string (a template token).
    pub fn sub(&self, offset: usize, len: usize) -> Span {
        let offset = self.offset + offset.min(self.len);
        let len = len.min(self.end().saturating_sub(offset));
        Span {
            file: self.file,
            offset,
            len,
        }
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.offset, s.len).into()
    }
}

/// Index of a file in the [`Sources`] of one load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, serde::Serialize)]
pub struct FileId(pub u32);

/// One loaded file: its display name and text.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub name: String,
    pub text: Arc<str>,
    /// Whether the file began with a byte-order mark (dropped from `text`).
    pub bom: bool,
    line_starts: Vec<usize>,
    /// Whether the text holds a `\r`: then miette's lines (see [`SourceFile::break_starts`])
    /// are not `line_starts`.
    has_cr: bool,
    break_starts: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    /// A leading byte-order mark is dropped: it is not content, and every offset and column
    /// counts from the first real character. Lines end at `\n` (a `\r` before it is not
    /// counted as a column of any label).
    pub fn new(path: &Path, text: String) -> Self {
        let (text, bom) = match text.strip_prefix('\u{feff}') {
            Some(rest) => (rest.to_string(), true),
            None => (text, false),
        };
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            name: path.display().to_string(),
            path: path.to_path_buf(),
            has_cr: text.contains('\r'),
            text: text.into(),
            bom,
            line_starts,
            break_starts: std::sync::OnceLock::new(),
        }
    }

    /// Byte offsets where lines start as miette counts them when it renders a snippet: after
    /// `\n`, `\r\n` or a lone `\r`. The same as the line index unless the text holds a `\r`
    /// (then computed once, on first use).
    pub fn break_starts(&self) -> &[usize] {
        if !self.has_cr {
            return &self.line_starts;
        }
        self.break_starts.get_or_init(|| {
            let bytes = self.text.as_bytes();
            let mut starts = vec![0];
            for (i, &b) in bytes.iter().enumerate() {
                match b {
                    b'\n' => starts.push(i + 1),
                    b'\r' if bytes.get(i + 1) != Some(&b'\n') => starts.push(i + 1),
                    _ => {}
                }
            }
            starts
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start);
        (line + 1, col + 1)
    }

    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.offset..span.end()).unwrap_or("")
    }
}

/// Every file read while loading one plan (the plan and the fragments it uses).
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId((self.files.len() - 1) as u32)
    }
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }
    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| f.path == path)
            .map(|i| FileId(i as u32))
    }
    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }
}
