//! The host's own open-file limit. Every wasm guest holds a few descriptors (its data
//! directory, its pipes) and every process plugin several; at the usual soft limit of
//! 1,024 a host runs out at about 500 wasm users. The soft limit is raised to the hard
//! limit when a host opens, which needs no privilege.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft open-file limit to the hard one; returns the limit now in force.
pub fn raise_to_hard_limit() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                tracing::debug!("open-file limit raised from {soft} to {hard}");
                hard
            }
            Err(error) => {
                tracing::warn!("could not raise the open-file limit from {soft} to {hard}: {error}");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(error) => {
            tracing::warn!("could not read the open-file limit: {error}");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(super::raise_to_hard_limit(), hard);
        let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, hard);
    }
}
