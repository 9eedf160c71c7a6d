//! The binary on a pseudo-terminal (expectrl): what an operator sees, keys they type, and
//! the whole screen output kept for assertions, with or without its escape codes.

use expectrl::process::unix::WaitStatus;
use std::io::ErrorKind;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A process whose stdin, stdout and stderr are one terminal of `cols` x `rows`.
pub struct Pty {
    session: expectrl::session::OsSession,
    raw: Vec<u8>,
    eof: bool,
    size: (u16, u16),
}

impl Pty {
    /// Starts `cmd` on a new terminal of `cols` columns and `rows` rows. The command's own
    /// stdio settings are replaced by the terminal.
    pub fn spawn(mut cmd: Command, cols: u16, rows: u16) -> Pty {
        // Inherit: the child's stdin, stdout and stderr are already the terminal.
        cmd.stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        let mut session = expectrl::Session::spawn(cmd).expect("start the command on a pty");
        session
            .get_process_mut()
            .set_window_size(cols, rows)
            .expect("set the terminal's size");
        Pty {
            session,
            raw: Vec::new(),
            eof: false,
            size: (cols, rows),
        }
    }

    /// The screen as the terminal shows it now, one line per row (a vt100 emulator fed
    /// everything so far): what was drawn and then cleared or overwritten is not there.
    pub fn screen(&self) -> String {
        let (cols, rows) = self.size;
        let size = |n: u16| std::num::NonZeroU16::new(n).unwrap_or(std::num::NonZeroU16::MIN);
        let mut parser = vt100::Parser::new(size(rows), size(cols), 0);
        parser.process(&self.raw);
        let rows: Vec<String> = parser.screen().rows(0, cols).collect();
        rows.join("\n")
    }

    /// Everything the terminal received so far, escape codes included.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// Everything the terminal received so far, escape codes stripped.
    pub fn text(&self) -> String {
        strip(&self.raw())
    }

    /// Reads what is there now, without waiting; false once the terminal is closed.
    fn pump(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.session.try_read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return false;
                }
                Ok(n) => self.raw.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // EIO: the other side was closed (the process ended).
                Err(_) => {
                    self.eof = true;
                    return false;
                }
            }
        }
    }

    /// Waits until `needle` is in the output (escape codes stripped), at most `limit`;
    /// returns the byte length of the raw output at that moment. Panics with the output
    /// when it does not come.
    #[track_caller]
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let open = self.pump();
            if self.text().contains(needle) {
                return self.raw.len();
            }
            if !open || Instant::now() > deadline {
                panic!(
                    "`{needle}` did not appear on the terminal within {limit:?}; it shows:\n{}",
                    self.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Reads for `time` and returns what arrived meanwhile (escape codes stripped).
    pub fn read_for(&mut self, time: Duration) -> String {
        let from = self.raw.len();
        let deadline = Instant::now() + time;
        while Instant::now() < deadline && self.pump() {
            std::thread::sleep(Duration::from_millis(20));
        }
        strip(&String::from_utf8_lossy(&self.raw[from..]))
    }

    /// Types `keys` on the terminal.
    pub fn send(&mut self, keys: &str) {
        use expectrl::Expect;
        self.session.send(keys).expect("type on the terminal");
    }

    /// Reads until the process ends (at most `limit`, else it is killed and the test
    /// fails); returns its exit code.
    #[track_caller]
    pub fn finish(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        while !self.eof && Instant::now() < deadline {
            if self.pump() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if !self.eof {
            let _ = self
                .session
                .get_process_mut()
                .kill(expectrl::process::unix::Signal::SIGKILL);
            panic!(
                "the process did not end within {limit:?}; the terminal shows:\n{}",
                self.text()
            );
        }
        match self.session.get_process().wait() {
            Ok(WaitStatus::Exited(_, code)) => code,
            other => panic!("the process did not exit normally: {other:?}"),
        }
    }
}

impl Drop for Pty {
    /// A failed assertion must not leave the run going.
    fn drop(&mut self) {
        if !self.eof {
            let _ = self
                .session
                .get_process_mut()
                .kill(expectrl::process::unix::Signal::SIGKILL);
        }
    }
}

/// `text` without ANSI escape codes.
pub fn strip(text: &str) -> String {
    console::strip_ansi_codes(text).into_owned()
}
