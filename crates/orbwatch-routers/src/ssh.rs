//! The SSH transport: the system OpenSSH client, run as a process.
//!
//! Why the system client and not a library: it is the client operators
//! already trust and configure (agent, `~/.ssh/config` for jump hosts,
//! hardware keys), it multiplexes sessions through a ControlMaster socket
//! so an audit of a dozen commands costs one handshake, and it keeps host
//! key handling in well-reviewed code. It runs with `std::process::Command`
//! rather than the `openssh` crate: the crate needs a tokio runtime, which
//! nothing else in this synchronous CLI uses, and the handful of options
//! below is all orbwatch needs.
//!
//! Host keys: orbwatch keeps its own known-hosts file and names each router
//! by `HostKeyAlias=<inventory name>`, with `StrictHostKeyChecking=accept-new`:
//! the first contact pins the key, a changed key makes `ssh` refuse, and
//! [`SshError::HostKeyChanged`] stops all work on that router.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::inventory::Router;

/// What can go wrong talking to a router.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error(
        "HOST KEY CHANGED for router {router}: its SSH host key is not the one pinned in {known_hosts}. \
         All work on this router is stopped. If the device was re-flashed on purpose, remove its line \
         (`ssh-keygen -R {router} -f {known_hosts}`) and run again; otherwise treat it as compromised."
    )]
    HostKeyChanged { router: String, known_hosts: String },
    #[error("router {router}: ssh could not connect or log in: {detail}")]
    Connect { router: String, detail: String },
    #[error("router {router}: command timed out after {secs} s: {command}")]
    Timeout {
        router: String,
        command: String,
        secs: u64,
    },
    #[error("router {router}: command {command:?} is not in the {profile} allowlist; refused")]
    NotAllowed {
        router: String,
        command: String,
        profile: String,
    },
    #[error(
        "router {router}: password_env is set, but this version authenticates with keys or the agent only; install a key on the device"
    )]
    PasswordUnsupported { router: String },
    #[error("cannot run ssh ({program}): {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The result of one command.
#[derive(Debug, Clone)]
pub struct SshOutput {
    pub command: String,
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A transport for one run: the known-hosts file and a private folder for
/// the ControlMaster sockets.
#[derive(Debug)]
pub struct Ssh {
    program: PathBuf,
    known_hosts: PathBuf,
    control: tempfile::TempDir,
    /// Seconds one command may take.
    pub command_timeout: Duration,
    /// Seconds to wait for the TCP connection.
    pub connect_timeout: u64,
    used: std::sync::Mutex<Vec<Router>>,
}

impl Ssh {
    /// A transport that pins host keys in `known_hosts` (created if
    /// missing).
    pub fn new(known_hosts: &Path) -> Result<Ssh, SshError> {
        if let Some(dir) = known_hosts.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| SshError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let control = tempfile::Builder::new()
            .prefix("owssh")
            .tempdir_in("/tmp")
            .map_err(|source| SshError::Io {
                path: "/tmp".into(),
                source,
            })?;
        Ok(Ssh {
            program: std::env::var_os("ORBWATCH_SSH")
                .map(PathBuf::from)
                .unwrap_or_else(|| "ssh".into()),
            known_hosts: known_hosts.to_path_buf(),
            control,
            command_timeout: Duration::from_secs(60),
            connect_timeout: 10,
            used: std::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    fn args(&self, r: &Router) -> Vec<String> {
        let mut a = vec![
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "StrictHostKeyChecking=accept-new".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "-o".into(),
            "GlobalKnownHostsFile=/dev/null".into(),
            "-o".into(),
            format!("HostKeyAlias={}", r.name),
            "-o".into(),
            "CheckHostIP=no".into(),
            "-o".into(),
            "UpdateHostKeys=no".into(),
            "-o".into(),
            "HashKnownHosts=no".into(),
            "-o".into(),
            "ControlMaster=auto".into(),
            "-o".into(),
            format!("ControlPath={}/%C", self.control.path().display()),
            "-o".into(),
            "ControlPersist=60".into(),
            "-o".into(),
            format!("ConnectTimeout={}", self.connect_timeout),
            "-o".into(),
            "ServerAliveInterval=5".into(),
            "-o".into(),
            "ServerAliveCountMax=2".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
            "-p".into(),
            r.port.to_string(),
            "-l".into(),
            r.user.clone(),
        ];
        if let Some(id) = &r.identity {
            a.push("-o".into());
            a.push("IdentitiesOnly=yes".into());
            a.push("-i".into());
            a.push(id.display().to_string());
        }
        a
    }

    /// Run one audit command, which must be in the router's allowlist.
    pub fn run_probe(&self, r: &Router, command: &str) -> Result<SshOutput, SshError> {
        if !r.profile.allows(command) {
            return Err(SshError::NotAllowed {
                router: r.name.clone(),
                command: command.into(),
                profile: r.profile.to_string(),
            });
        }
        self.exec(r, command, self.command_timeout)
    }

    /// Run one of the router's health checks (after a reboot); only the
    /// commands [`Router::health_commands`] builds are sent.
    pub fn run_health(&self, r: &Router, command: &str) -> Result<SshOutput, SshError> {
        if !r.health_commands().iter().any(|h| h.command == command) {
            return Err(SshError::NotAllowed {
                router: r.name.clone(),
                command: command.into(),
                profile: format!("{} health", r.profile),
            });
        }
        self.exec(r, command, self.command_timeout)
    }

    /// Send the profile's reboot command. The connection usually drops
    /// before an answer, so only a host-key error is an error here.
    pub fn reboot(&self, r: &Router) -> Result<SshOutput, SshError> {
        let out = self.exec(r, r.profile.reboot_command(), Duration::from_secs(20));
        self.close(r);
        match out {
            Err(SshError::HostKeyChanged { .. }) => out,
            Err(SshError::Timeout { .. }) | Err(SshError::Connect { .. }) => Ok(SshOutput {
                command: r.profile.reboot_command().into(),
                status: None,
                stdout: String::new(),
                stderr: String::new(),
            }),
            other => other,
        }
    }

    /// End the master connection of `r` (after a reboot it is dead).
    pub fn close(&self, r: &Router) {
        let _ = Command::new(&self.program)
            .args(self.args(r))
            .args(["-O", "exit", &r.host])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    fn exec(&self, r: &Router, command: &str, timeout: Duration) -> Result<SshOutput, SshError> {
        if r.password_env.is_some() && r.identity.is_none() {
            return Err(SshError::PasswordUnsupported {
                router: r.name.clone(),
            });
        }
        if let Ok(mut used) = self.used.lock()
            && !used.iter().any(|u| u.name == r.name)
        {
            used.push(r.clone());
        }
        let mut child = Command::new(&self.program)
            .args(self.args(r))
            .arg(&r.host)
            .arg("--")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| SshError::Spawn {
                program: self.program.display().to_string(),
                source,
            })?;
        let out_reader = child.stdout.take().map(reader);
        let err_reader = child.stderr.take().map(reader);
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if start.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break None,
            }
        };
        let stdout = out_reader.and_then(|h| h.join().ok()).unwrap_or_default();
        let stderr = err_reader.and_then(|h| h.join().ok()).unwrap_or_default();
        let Some(status) = status else {
            return Err(SshError::Timeout {
                router: r.name.clone(),
                command: command.into(),
                secs: timeout.as_secs(),
            });
        };
        if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || stderr.contains("Host key verification failed")
        {
            return Err(SshError::HostKeyChanged {
                router: r.name.clone(),
                known_hosts: self.known_hosts.display().to_string(),
            });
        }
        // 255 is ssh's own failure (the remote command's codes are passed
        // through otherwise).
        if status.code() == Some(255) {
            return Err(SshError::Connect {
                router: r.name.clone(),
                detail: stderr
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or("exit 255")
                    .to_string(),
            });
        }
        Ok(SshOutput {
            command: command.into(),
            status: status.code(),
            stdout,
            stderr,
        })
    }
}

impl Drop for Ssh {
    fn drop(&mut self) {
        let used = self.used.lock().map(|u| u.clone()).unwrap_or_default();
        for r in &used {
            self.close(r);
        }
    }
}

/// Read a pipe to its end on a thread (so neither pipe can fill and stall
/// the other); output is capped at 16 MiB and read as lossy UTF-8.
fn reader<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut r).take(16 << 20).read_to_end(&mut buf);
        // Drain the rest so the remote side is not blocked.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
        String::from_utf8_lossy(&buf).into_owned()
    })
}
