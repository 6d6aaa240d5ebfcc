//! A router that accepts nothing but a password (`password_env`): ssh asks
//! it through SSH_ASKPASS from the variable the inventory names; without
//! the variable the audit stops with a clear error, before connecting. One
//! test in its own binary: it sets an environment variable, which no other
//! thread may read at the same time.

mod common;

use common::{LAB_PASSWORD, LAB_PASSWORD_ENV, Lab, LabSpec, Plant};
use orbwatch_routers::{AuditOptions, Inventory, Ssh, audit_router};

#[test]
fn a_router_that_takes_only_a_password_is_audited_with_the_named_variable() {
    let mut spec = LabSpec::new("legacy", Plant::MemoryImplant);
    spec.password = true;
    let Some(lab) = Lab::start(&[spec]) else {
        return;
    };
    let inv_path = lab.dir.path().join("routers.toml");
    let text = lab.inventory(|_| String::new());
    assert!(
        text.contains(&format!("password_env = \"{LAB_PASSWORD_ENV}\""))
            && !text.contains("identity"),
        "{text}"
    );
    std::fs::write(&inv_path, &text).unwrap();
    let inv = Inventory::load(&inv_path).unwrap();
    let ssh = Ssh::new(&lab.dir.path().join("known_hosts")).unwrap();
    let opts = AuditOptions::default();
    let r = &inv.routers[0];

    // Not set: refused before connecting, naming the variable.
    let a = audit_router(&ssh, r, &opts);
    let err = a.error.expect("refused");
    assert!(
        err.contains(LAB_PASSWORD_ENV) && err.contains("not set"),
        "{err}"
    );
    assert!(lab.commands(0).is_empty(), "nothing reached the router");

    // A wrong password: ssh's refusal, no command run.
    // SAFETY: the only test of this binary; no other thread reads the
    // environment while it is changed.
    unsafe { std::env::set_var(LAB_PASSWORD_ENV, "not-the-password") };
    let a = audit_router(&ssh, r, &opts);
    assert!(
        a.error.is_some(),
        "a wrong password logs in: {:?}",
        a.findings
    );
    assert!(lab.commands(0).is_empty());

    // The right one: the audit runs and finds the memory implant.
    unsafe { std::env::set_var(LAB_PASSWORD_ENV, LAB_PASSWORD) };
    let ssh = Ssh::new(&lab.dir.path().join("known_hosts")).unwrap();
    let a = audit_router(&ssh, r, &opts);
    assert_eq!(a.error, None);
    let checks: Vec<&str> = a
        .findings
        .iter()
        .map(orbwatch_routers::checks::check_of)
        .collect();
    assert!(checks.contains(&"listening_port"), "{checks:?}");
    assert!(!lab.commands(0).is_empty(), "the audit's commands ran");
    // The password is in no file of the transport and no argument.
    for e in std::fs::read_dir("/tmp").unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("owssh") {
            for f in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                let t = std::fs::read(f.path()).unwrap_or_default();
                assert!(
                    !String::from_utf8_lossy(&t).contains(LAB_PASSWORD),
                    "{} holds the password",
                    f.path().display()
                );
            }
        }
    }
    unsafe { std::env::remove_var(LAB_PASSWORD_ENV) };
}
