//! What an `npx` command line asks for: which registry package, at which version, and the
//! arguments its program gets. Pure: no I/O.
//!
//! The seeds register npx plugins as `npx`, then one argument per line: `-y`, optionally
//! `--prefer-offline`, then `@scope/name@1.2.3`. The host installs that package itself
//! (see [`super`]) and runs its program with `node`; these flags only matter to npx.

/// npx flags that change nothing once the package is installed by the host.
const IGNORED_FLAGS: [&str; 7] = ["-y", "--yes", "--prefer-offline", "--prefer-online", "--offline", "-q", "--quiet"];

/// The longest package name npm accepts.
const MAX_NAME_LENGTH: usize = 214;

/// A registry package as npx names it: `name`, `name@version`, `@scope/name@version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    pub name: String,
    /// An exact version, a range or a tag; `None` is npm's `latest`.
    pub version: Option<String>,
}

impl PackageSpec {
    /// Reads a spec, refusing what is not a package of a registry (paths, URLs, git).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let not_registry = ["./", "../", "/", "~", "file:", "git+", "git:", "github:", "http:", "https:"];
        if not_registry.iter().any(|prefix| spec.starts_with(prefix)) || spec.ends_with(".tgz") {
            return Err(format!(
                "`{spec}` is not a package of a registry: the host installs registry packages only (`name@1.2.3`)"
            ));
        }
        // A scope's `@` is the first character; the version's is the next one.
        let version_at = spec.char_indices().skip(1).find(|(_, character)| *character == '@').map(|(at, _)| at);
        let (name, version) = match version_at {
            Some(at) => (&spec[..at], Some(&spec[at + 1..])),
            None => (spec, None),
        };
        check_name(name)?;
        match version {
            Some("") => Err(format!("`{spec}` has an empty version after `@`")),
            Some(version) if version.contains([':', '/', '#', '\\']) => Err(format!(
                "`{spec}` names its version by a URL, a path, git or an alias: the host installs registry versions only (`1.2.3`, `^1.2`, a tag)"
            )),
            Some(version) if version.chars().any(|character| character.is_whitespace() || character.is_control()) => {
                Err(format!("the version of `{spec}` has spaces or control characters"))
            }
            _ => Ok(Self { name: name.to_owned(), version: version.map(str::to_owned) }),
        }
    }

    /// Whether the version is exact (`1.2.3`), so every install gets the same code.
    pub fn is_pinned(&self) -> bool {
        self.version.as_deref().is_some_and(|version| semver::Version::parse(version).is_ok())
    }

    /// The name without its scope: the program npx runs when a package has several.
    pub fn unscoped_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }
}

impl std::fmt::Display for PackageSpec {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(version) => write!(formatter, "{}@{version}", self.name),
            None => formatter.write_str(&self.name),
        }
    }
}

/// npm's rules for a package name, the ones that matter here: lower case, URL-safe, at most
/// 214 characters, `@scope/name` or `name`, not starting with `.` or `_`.
fn check_name(name: &str) -> Result<(), String> {
    let parts: Vec<&str> = match name.strip_prefix('@') {
        Some(scoped) => scoped.split('/').collect(),
        None => vec![name],
    };
    let scoped = name.starts_with('@');
    let well_formed = (if scoped { parts.len() == 2 } else { parts.len() == 1 })
        && name.len() <= MAX_NAME_LENGTH
        && parts.iter().all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && !part.starts_with('_')
                // npm would read it as one of its own flags.
                && !part.starts_with('-')
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._~".contains(c))
        });
    if well_formed {
        Ok(())
    } else {
        Err(format!("`{name}` is not a valid npm package name (lower case, `name` or `@scope/name`)"))
    }
}

/// An `npx` command line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpxCommand {
    pub package: PackageSpec,
    /// What the package's program gets, after the package.
    pub program_args: Vec<String>,
}

impl NpxCommand {
    /// Reads npx's arguments (the command itself left out).
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut rest = args.iter();
        let package = loop {
            let Some(arg) = rest.next() else {
                return Err("the npx command names no package".into());
            };
            match arg.as_str() {
                flag if IGNORED_FLAGS.contains(&flag) => continue,
                "--" => match rest.next() {
                    Some(package) => break package.as_str(),
                    None => return Err("the npx command names no package after `--`".into()),
                },
                flag if flag.starts_with('-') => {
                    return Err(format!(
                        "npx's `{flag}` is not one the host's installer understands (it knows {}); register the plugin with `--no-install` to run npx as given at every start",
                        IGNORED_FLAGS.join(", ")
                    ));
                }
                package => break package,
            }
        };
        Ok(Self { package: PackageSpec::parse(package)?, program_args: rest.cloned().collect() })
    }
}

/// Whether a registered command is npx (by name or path).
pub fn is_npx(command: &str) -> bool {
    std::path::Path::new(command).file_name().is_some_and(|name| name == "npx")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &[&str]) -> Vec<String> {
        text.iter().map(|arg| arg.to_string()).collect()
    }

    #[test]
    fn the_seeds_command_lines_are_read() {
        let seeds = args(&["-y", "--prefer-offline", "@ashdev/codex-plugin-metadata-echo@1.9.3"]);
        let command = NpxCommand::parse(&seeds).unwrap();
        assert_eq!(command.package.name, "@ashdev/codex-plugin-metadata-echo");
        assert_eq!(command.package.version.as_deref(), Some("1.9.3"));
        assert!(command.package.is_pinned());
        assert_eq!(command.package.unscoped_name(), "codex-plugin-metadata-echo");
        assert!(command.program_args.is_empty());

        let latest = NpxCommand::parse(&args(&["-y", "@ashdev/codex-plugin-metadata-echo"])).unwrap();
        assert_eq!(latest.package.version, None);
        assert!(!latest.package.is_pinned());
        let ranged = NpxCommand::parse(&args(&["--yes", "--", "cowsay@^1.6", "--verbose", "-x"])).unwrap();
        assert_eq!(ranged.package.to_string(), "cowsay@^1.6");
        assert!(!ranged.package.is_pinned());
        assert_eq!(ranged.program_args, ["--verbose", "-x"]);
    }

    #[test]
    fn what_the_installer_cannot_do_is_refused_with_the_way_out() {
        let cases: [(&[&str], &str); 9] = [
            (&["-y"], "names no package"),
            (&["-y", "--", "--no-ignore-scripts"], "not a valid npm package name"),
            (&["-y", "--"], "names no package after"),
            (&["--package=x", "x"], "register the plugin with `--no-install`"),
            (&["-c", "echo hi"], "`-c` is not one"),
            (&["./local"], "not a package of a registry"),
            (&["git+https://example.test/x.git"], "not a package of a registry"),
            (&["Capitals@1.0.0"], "not a valid npm package name"),
            (&["@scope@1.0.0"], "not a valid npm package name"),
        ];
        for (given, fragment) in cases {
            let error = NpxCommand::parse(&args(given)).unwrap_err();
            assert!(error.contains(fragment), "{given:?}: {error}");
        }
        assert!(PackageSpec::parse("x@").unwrap_err().contains("empty version"));
        for sneaky in
            ["x@github:user/repo", "x@git+ssh://host/r.git", "x@file:/tmp/x", "x@npm:other@1.0.0", "x@https://h/x"]
        {
            assert!(PackageSpec::parse(sneaky).unwrap_err().contains("registry versions only"), "{sneaky}");
        }
        assert!(PackageSpec::parse("x@>=1.0.0 <2").is_err(), "spaces");
        assert_eq!(PackageSpec::parse("x@^1.2").unwrap().version.as_deref(), Some("^1.2"));
        assert_eq!(PackageSpec::parse("x@next").unwrap().version.as_deref(), Some("next"));
        assert!(PackageSpec::parse("x@1.0.0 && rm").unwrap_err().contains("spaces"));
    }

    #[test]
    fn npx_is_known_by_name_or_path() {
        assert!(is_npx("npx") && is_npx("/usr/local/bin/npx"));
        assert!(!is_npx("node") && !is_npx("npx-other"));
    }
}
