//! Children that outlived the engine. Each step's child runs in its own process group,
//! recorded in the journal with its leader's start time (`ChildStarted`). After a kill -9
//! those groups keep running; before `resume` reruns or releases anything it stops them, so
//! that two writers never work on the same files.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// Fields of /proc/PID/stat after the command name: (process group, start time).
fn stat(pid: i32) -> Option<(i32, u64)> {
    let text = read_stat(pid)?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): pgrp is field 5, starttime field 22.
    let pgrp = fields.get(2)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((pgrp, start))
}

/// /proc/PID/stat in one `read` (it is generated whole; `read_to_string` would add a
/// `statx` and several growing reads, on every step's child).
fn read_stat(pid: i32) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = vec![0u8; 1024];
    let mut len = 0;
    loop {
        let n = f.read(&mut buf[len..]).ok()?;
        len += n;
        if n == 0 || len < buf.len() {
            break;
        }
        buf.resize(buf.len() * 2, 0);
    }
    buf.truncate(len);
    String::from_utf8(buf).ok()
}

/// The start time of process `pid` (clock ticks since boot), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Processes still in group `pgid` that started no earlier than its recorded leader: the
/// group's survivors (a pid reused since would have started later than the leader did, but
/// could not be in a group whose leader pid it does not have unless it is that leader).
pub fn members(pgid: i32, leader_start: u64) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            stat(pid).is_some_and(|(pgrp, start)| {
                pgrp == pgid && start >= leader_start && (pid != pgid || start == leader_start)
            })
        })
        .collect()
}

/// Stops group `pgid` if anything of it survives: SIGTERM, up to `grace` to end, then
/// SIGKILL. Returns how many processes were found.
pub async fn stop(pgid: i32, leader_start: u64, grace: Duration) -> usize {
    let found = members(pgid, leader_start).len();
    if found == 0 {
        return 0;
    }
    let group = Pid::from_raw(pgid);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while !members(pgid, leader_start).is_empty() {
        if Instant::now() > deadline {
            let _ = killpg(group, Signal::SIGKILL);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    found
}
