//! `opsplan generations DIR`: the generations of a backup location, with state and age
//! (the listing is `opsplan_steps::generation::list`; this only prints it, as a table).

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
        out!("{}", listing_text(&listing, now));
    }
    exit::OK
}

/// `latest` marked, newest first, one generation a row: name, state, age, why it is not
/// verified; then what `latest` is and what else is in the folder.
fn listing_text(listing: &generation::Listing, now: i64) -> String {
    let mut out = format!("generations in {}:\n", listing.dir.display());
    if listing.generations.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows = listing
            .generations
            .iter()
            .rev()
            .map(|g| {
                vec![
                    if g.latest { "*" } else { "" }.to_string(),
                    g.name.clone(),
                    g.state.words().to_string(),
                    generation::age_text(now - g.time),
                    g.reason.clone().unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&crate::tables::table(
            crate::tables::Stream::Stdout,
            &["", "generation", "state", "age", "note"],
            &["age"],
            rows,
        ));
    }
    let latest = generation::LATEST;
    match (&listing.latest, &listing.latest_problem) {
        (Some(l), _) => out.push_str(&format!("* = {latest} ({l})\n")),
        (None, Some(p)) => out.push_str(&format!("{latest}: {p}\n")),
        (None, None) => out.push_str(&format!("{latest}: not set (nothing committed yet)\n")),
    }
    if !listing.other.is_empty() {
        out.push_str(&format!(
            "not generations (left alone): {}\n",
            listing.other.join(", ")
        ));
    }
    if !listing.leftovers.is_empty() {
        out.push_str(&format!(
            "leftovers of an interrupted begin or prune (removed by the next prune): {}\n",
            listing.leftovers.join(", ")
        ));
    }
    out
}
