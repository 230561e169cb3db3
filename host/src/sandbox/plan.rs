//! Which confinement layers a process plugin gets: a pure decision from what the machine
//! offers, what the admin turned off, and how strict the plugin's confinement must be.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How strictly a process plugin must be confined before it may start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confinement {
    /// At least Landlock or a separate uid; every other layer the machine offers.
    #[default]
    Required,
    /// Every layer: Landlock, and a separate uid when the host runs as root.
    Strict,
    /// Knowingly unconfined: the plugin runs as the host's user and reads what it can. A
    /// warning on every start says so.
    Unconfined,
}

impl Confinement {
    pub fn as_str(self) -> &'static str {
        match self {
            Confinement::Required => "required",
            Confinement::Strict => "strict",
            Confinement::Unconfined => "unconfined",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "required" => Ok(Confinement::Required),
            "strict" => Ok(Confinement::Strict),
            "unconfined" => Ok(Confinement::Unconfined),
            other => Err(format!("unknown confinement `{other}`: use required, strict or unconfined")),
        }
    }
}

/// A layer an admin can turn off (where it misbehaves, or to see what the others hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// The Landlock filesystem (and, from ABI 6, signal) sandbox.
    Landlock,
    /// A uid of the plugin's own, when the host runs as root.
    SeparateUid,
}

impl Layer {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "landlock" => Ok(Layer::Landlock),
            "separate-uid" => Ok(Layer::SeparateUid),
            other => Err(format!("unknown layer `{other}`: use landlock or separate-uid")),
        }
    }
}

/// What this machine offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// The kernel's Landlock ABI version, if Landlock is enabled.
    pub landlock_abi: Option<u32>,
    /// Whether the host runs as root, so it can give a plugin another uid.
    pub root: bool,
}

/// The layers a plugin will run under. The launcher applies each or refuses to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Landlock at this ABI version.
    pub landlock_abi: Option<u32>,
    /// Whether the plugin gets its own uid.
    pub separate_uid: bool,
}

/// Why a plugin may not start with what is available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "confinement `{}` needs {needs}, which is not active here ({why}); {advice}",
    level.as_str()
)]
pub struct NotConfinable {
    pub level: Confinement,
    pub needs: &'static str,
    pub why: String,
    pub advice: &'static str,
}

/// Decides the layers. Landlock is used whenever the kernel has it and the admin did not
/// turn it off; a separate uid whenever the host runs as root and the admin did not turn it
/// off. Then the level decides whether that is enough.
pub fn plan(level: Confinement, machine: Machine, disabled: &BTreeSet<Layer>) -> Result<Plan, NotConfinable> {
    if level == Confinement::Unconfined {
        return Ok(Plan { landlock_abi: None, separate_uid: false });
    }
    let landlock_abi = machine.landlock_abi.filter(|_| !disabled.contains(&Layer::Landlock));
    let separate_uid = machine.root && !disabled.contains(&Layer::SeparateUid);
    let why = || {
        let landlock = match (machine.landlock_abi, disabled.contains(&Layer::Landlock)) {
            (None, _) => "the kernel has no Landlock",
            (Some(_), true) => "Landlock was turned off",
            (Some(_), false) => "Landlock is available",
        };
        let uid = match (machine.root, disabled.contains(&Layer::SeparateUid)) {
            (false, _) => "the host does not run as root, so it cannot give a plugin a uid of its own",
            (true, true) => "separate uids were turned off",
            (true, false) => "separate uids are available",
        };
        format!("{landlock}; {uid}")
    };
    let chosen = Plan { landlock_abi, separate_uid };
    match level {
        Confinement::Required if landlock_abi.is_none() && !separate_uid => Err(NotConfinable {
            level,
            needs: "Landlock or a separate uid",
            why: why(),
            advice: "run on a kernel with Landlock (5.13+), or run the host as root, or register the plugin with `--confinement unconfined` if you trust it",
        }),
        Confinement::Strict if landlock_abi.is_none() => Err(NotConfinable {
            level,
            needs: "Landlock",
            why: why(),
            advice: "run on a kernel with Landlock (5.13+) and do not turn it off",
        }),
        Confinement::Strict if machine.root && !separate_uid => Err(NotConfinable {
            level,
            needs: "a separate uid (the host runs as root)",
            why: why(),
            advice: "do not turn separate uids off",
        }),
        _ => Ok(chosen),
    }
}

impl Plan {
    /// The layers, as the admin reads them in `plugin show` and the log.
    pub fn describe(&self) -> String {
        let mut layers = Vec::new();
        match self.landlock_abi {
            Some(abi) if abi < 6 => {
                layers.push(format!("landlock (ABI {abi}: signals and abstract sockets not scoped)"))
            }
            Some(abi) => layers.push(format!("landlock (ABI {abi})")),
            None => layers.push("no landlock".to_owned()),
        }
        layers.push(if self.separate_uid { "separate uid" } else { "host's uid" }.to_owned());
        layers.push("no_new_privs".to_owned());
        layers.push("descendants killed with the plugin (a PID namespace under a root host; subreaper)".to_owned());
        layers.join(", ")
    }

    /// Whether any layer confines the plugin's reach.
    pub fn confines(&self) -> bool {
        self.landlock_abi.is_some() || self.separate_uid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: Machine = Machine { landlock_abi: Some(7), root: true };
    const ROOTLESS: Machine = Machine { landlock_abi: Some(7), root: false };
    const OLD_KERNEL_ROOT: Machine = Machine { landlock_abi: None, root: true };
    const OLD_KERNEL: Machine = Machine { landlock_abi: None, root: false };

    fn off(layers: &[Layer]) -> BTreeSet<Layer> {
        layers.iter().copied().collect()
    }

    #[test]
    fn the_default_takes_every_layer_there_is() {
        let chosen = plan(Confinement::Required, FULL, &off(&[])).unwrap();
        assert_eq!(chosen, Plan { landlock_abi: Some(7), separate_uid: true });
        let chosen = plan(Confinement::Required, ROOTLESS, &off(&[])).unwrap();
        assert_eq!(chosen, Plan { landlock_abi: Some(7), separate_uid: false });
        let chosen = plan(Confinement::Required, OLD_KERNEL_ROOT, &off(&[])).unwrap();
        assert_eq!(chosen, Plan { landlock_abi: None, separate_uid: true });
    }

    #[test]
    fn the_default_refuses_without_landlock_or_a_uid_and_says_what_is_missing() {
        let refused = plan(Confinement::Required, OLD_KERNEL, &off(&[])).unwrap_err();
        assert!(refused.to_string().contains("the kernel has no Landlock"), "{refused}");
        assert!(refused.to_string().contains("does not run as root"), "{refused}");
        let refused = plan(Confinement::Required, FULL, &off(&[Layer::Landlock, Layer::SeparateUid])).unwrap_err();
        assert!(refused.to_string().contains("Landlock was turned off"), "{refused}");
        assert!(refused.to_string().contains("separate uids were turned off"), "{refused}");
        let one_left = plan(Confinement::Required, FULL, &off(&[Layer::Landlock])).unwrap();
        assert_eq!(one_left, Plan { landlock_abi: None, separate_uid: true });
    }

    #[test]
    fn strict_needs_every_layer() {
        assert!(plan(Confinement::Strict, FULL, &off(&[])).is_ok());
        assert!(plan(Confinement::Strict, ROOTLESS, &off(&[])).is_ok());
        assert!(plan(Confinement::Strict, OLD_KERNEL_ROOT, &off(&[])).is_err());
        assert!(plan(Confinement::Strict, FULL, &off(&[Layer::SeparateUid])).is_err());
    }

    #[test]
    fn unconfined_is_what_the_admin_asked_for() {
        let chosen = plan(Confinement::Unconfined, FULL, &off(&[])).unwrap();
        assert!(!chosen.confines());
        assert!(chosen.describe().contains("no landlock"));
    }
}
