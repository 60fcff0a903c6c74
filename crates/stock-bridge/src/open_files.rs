//! How many connections this process can hold: each needs a file descriptor, and the
//! process may open only so many (`ulimit -n`, systemd's `LimitNOFILE`).
//!
//! A cap above that limit does not hold: past it `accept` fails (`EMFILE`) and the
//! listener stops taking anything, the back office's posts and `/metrics` included, while
//! tills wait in the kernel's backlog until their connect times out (measured: two nodes
//! left with 51,000 tills at 20,000 files each answered nothing for minutes). So at start
//! the soft limit is raised to the hard one, and the cap is brought under what it leaves
//! after [`RESERVED_FILES`]; a till refused at the cap is closed at once and moves on to
//! its next bridge address.

/// Files kept back from client connections: the listeners, Redis, the fleet's store,
/// certificates being reloaded, the back office's own places are counted apart.
pub const RESERVED_FILES: u64 = 128;

/// The connection cap to use: `configured`, or fewer when `limit` (the process's open-file
/// limit, None where it is not known) leaves less room after [`RESERVED_FILES`] and the
/// back office's `admin_places`.
pub fn connection_cap(configured: usize, admin_places: usize, limit: Option<u64>) -> usize {
    match limit {
        Some(limit) => {
            let room = limit.saturating_sub(RESERVED_FILES).saturating_sub(admin_places as u64);
            configured.min(usize::try_from(room).unwrap_or(usize::MAX)).max(1)
        }
        None => configured,
    }
}

/// Raises the soft open-file limit to the hard one and returns it (None where the platform
/// has no such limit or it cannot be read).
#[cfg(unix)]
pub fn raise_limit() -> Option<u64> {
    let (_, hard) = rlimit::Resource::NOFILE.get().ok()?;
    match rlimit::increase_nofile_limit(hard) {
        Ok(soft) => Some(soft),
        Err(e) => {
            tracing::debug!("could not raise the open-file limit: {e}");
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
        }
    }
}

#[cfg(not(unix))]
pub fn raise_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_under_the_open_file_limit() {
        // This machine: 20,000 files a process, the default cap 20,000.
        assert_eq!(connection_cap(20_000, 256, Some(20_000)), 20_000 - 128 - 256);
        // Room to spare: the configured cap holds.
        assert_eq!(connection_cap(20_000, 256, Some(1_048_576)), 20_000);
        assert_eq!(connection_cap(500, 0, Some(1_024)), 500);
        // Unknown limit: as configured; a limit below the reserve still leaves one place.
        assert_eq!(connection_cap(20_000, 256, None), 20_000);
        assert_eq!(connection_cap(20_000, 256, Some(64)), 1);
    }
}
