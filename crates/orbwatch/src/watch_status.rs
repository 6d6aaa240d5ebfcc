//! Memory figures of the running process for `watch`'s status line and
//! reload log, read from `/proc/self/status` (0 where it is unreadable,
//! off Linux).

/// Resident set size now, in bytes.
pub fn rss_bytes() -> u64 {
    status_kb("VmRSS:") * 1024
}

/// Highest resident set size so far, in bytes.
pub fn peak_rss_bytes() -> u64 {
    status_kb("VmHWM:") * 1024
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| kb_in(&s, key))
        .unwrap_or(0)
}

/// The value of `key` (in kB) in a `/proc/<pid>/status` text (0 if absent).
fn kb_in(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(super::rss_bytes() > 0);
            assert!(super::peak_rss_bytes() > 0);
            // The peak against the size from one read of the file: the
            // kernel updates the high-water mark lazily, so a peak read
            // after the size can be below it once memory was given back
            // in between (CI failed so, in either order, with other test
            // threads allocating and freeing); within one read it is the
            // larger of the two.
            let status = std::fs::read_to_string("/proc/self/status").expect("status");
            let (now, peak) = (
                super::kb_in(&status, "VmRSS:"),
                super::kb_in(&status, "VmHWM:"),
            );
            assert!(now > 0 && peak >= now, "{now} kB now, {peak} kB peak");
        }
    }
}
