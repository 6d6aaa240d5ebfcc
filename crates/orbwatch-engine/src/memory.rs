//! Handing freed heap back to the operating system between the phases of
//! a hunt.
//!
//! The sweep builds the IOC aggregate and findings from millions of small
//! allocations on two threads, then frees them when the findings go to
//! disk ([`crate::held_findings`]) and the behaviour replay starts. glibc
//! keeps that freed memory in its arenas (it returns only the top of each
//! heap on its own), so without this the replay's resident memory starts
//! from the sweep's high-water mark, which grows with the number of IOC
//! findings, that is with the input. `malloc_trim(0)` releases every whole
//! free page of every arena (`madvise(MADV_DONTNEED)`); it costs a walk of
//! the free lists, a few milliseconds, once per hunt.
//!
//! It reaches glibc's heap only. The `orbwatch` binary has run on
//! jemalloc since 2026-12-06, so there this call gives nothing back.
//! Purging jemalloc's arenas at this point was measured on the 3 GB sshd
//! hunt and did no better (session 29): the IOC sessions and findings
//! are freed later, while the replay runs. What bounds a hunt's memory
//! now is that they never all stand in memory (`held_sessions`,
//! `held_findings`), and jemalloc's background thread, set in the
//! binary's `malloc_conf`, which gives pages back a second after they are
//! freed (bench/README.md, session 30).

/// Return the pages of freed heap memory to the kernel (glibc's heap only:
/// under another global allocator, and on other platforms, this does
/// nothing).
pub(crate) fn give_back_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks and trims the allocator's own free
        // lists; it takes no pointer and is thread-safe in glibc.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(
            "heap given back to the kernel after the sweep: {}",
            if released == 1 { "some" } else { "none" }
        );
    }
}
