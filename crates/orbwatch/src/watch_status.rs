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
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            // The size now first, then the peak: other test threads may
            // allocate between the two reads (CI failed once with the
            // peak read first), and the peak can only have grown since.
            let now = super::rss_bytes();
            assert!(now > 0);
            assert!(super::peak_rss_bytes() >= now);
        }
    }
}
