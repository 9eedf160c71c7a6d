//! `opsplan generations DIR`: the generations of a backup location, with state and age
//! (the listing is `opsplan_steps::generation::list`; this only prints it).

use opsplan_run::exit;
use opsplan_steps::generation;
use std::path::Path;

pub(super) fn cmd_generations(dir: &Path, json: bool) -> i32 {
    let listing = match generation::list(dir) {
        Ok(l) => l,
        Err(e) => {
            errln!("error: {e}");
            return exit::INVALID;
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&generation::listing_json(&listing, now))
                .unwrap_or_default()
        );
    } else {
        out!("{}", generation::listing_text(&listing, now));
    }
    exit::OK
}
