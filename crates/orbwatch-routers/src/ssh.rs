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
        "router {router}: password_env names {var}, but {var} is not set in orbwatch's environment (set it, e.g. through systemd's LoadCredential= or an EnvironmentFile= readable by root only)"
    )]
    PasswordMissing { router: String, var: String },
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

    /// Does `r` log in with the password its `password_env` names (no
    /// key given)?
    fn by_password(r: &Router) -> Option<&str> {
        match (&r.password_env, &r.identity) {
            (Some(var), None) => Some(var),
            _ => None,
        }
    }

    /// The program ssh runs to ask `var`'s password (see [`Ssh::exec`]):
    /// a script in the private folder that prints the variable. It holds
    /// the variable's name only (letters, digits and `_`, checked by the
    /// inventory), never the password.
    fn askpass(&self, var: &str) -> Result<PathBuf, SshError> {
        use std::os::unix::fs::PermissionsExt;
        let p = self.control.path().join(format!("askpass-{var}"));
        if !p.exists() {
            let io = |source| SshError::Io {
                path: p.clone(),
                source,
            };
            std::fs::write(&p, format!("#!/bin/sh\nprintf '%s\\n' \"${var}\"\n")).map_err(io)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        Ok(p)
    }

    fn args(&self, r: &Router) -> Vec<String> {
        let password = Self::by_password(r).is_some();
        let mut a = vec![
            "-o".into(),
            // A password is asked through SSH_ASKPASS, which batch mode
            // would refuse; nothing else ever prompts.
            if password {
                "BatchMode=no"
            } else {
                "BatchMode=yes"
            }
            .into(),
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
        if password {
            for o in [
                "PreferredAuthentications=password,keyboard-interactive",
                "PubkeyAuthentication=no",
                "NumberOfPasswordPrompts=1",
            ] {
                a.push("-o".into());
                a.push(o.into());
            }
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
        let mut cmd = Command::new(&self.program);
        if let Some(var) = Self::by_password(r) {
            // A device that takes nothing but a password: ssh asks it
            // through SSH_ASKPASS, forced even without a terminal
            // (OpenSSH 8.4 and later), from the variable the operator set.
            // The password stays in the environment: never an argument
            // (which `ps` shows), never a file.
            if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
                return Err(SshError::PasswordMissing {
                    router: r.name.clone(),
                    var: var.to_string(),
                });
            }
            cmd.env("SSH_ASKPASS", self.askpass(var)?)
                .env("SSH_ASKPASS_REQUIRE", "force");
        }
        if let Ok(mut used) = self.used.lock()
            && !used.iter().any(|u| u.name == r.name)
        {
            used.push(r.clone());
        }
        let mut child = cmd
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
