//! `orbwatch routers`: audit the organisation's own edge devices for
//! implants over SSH, and reboot them safely, with proof.
//!
//! Why a crate of its own: the router work shares the finding contract and
//! the store with the rest of orbwatch, but none of the log pipeline. It is
//! split the way the work flows:
//!
//! - [`inventory`]: the TOML file that names the routers (strict: unknown
//!   keys are errors, credentials are keys or the agent only);
//! - [`profiles`]: per platform, the read-only commands an audit may run
//!   (the allowlist) and the one command a reboot runs;
//! - [`ssh`]: the transport, the system OpenSSH client with orbwatch's own
//!   pinned known-hosts file;
//! - [`checks`]: pure functions from command output to findings;
//! - [`vulnerable`]: the shipped list of known-vulnerable firmware;
//! - [`audit`]: one audit of one router, from transport to findings;
//! - [`reboot`]: the verified, staggered reboot of a fleet;
//! - [`vendor`]: parsers of RouterOS, EdgeOS/VyOS `config.boot` and DD-WRT
//!   nvram output.

pub mod audit;
pub mod checks;
pub mod inventory;
pub mod profiles;
pub mod reboot;
pub mod ssh;
pub mod vendor;
pub mod vulnerable;

pub use audit::{AuditOptions, RouterAudit, audit_router, hash_indicators, ip_indicators};
pub use inventory::{Inventory, InventoryError, Policy, RebootWindow, Router};
pub use profiles::{Probe, Profile};
pub use ssh::{Ssh, SshError, SshOutput};
