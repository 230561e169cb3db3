//! `plugin permissions` and `plugin search-settings`: what a plugin may write and see, and
//! how it searches and matches. Each prints the settings as they are after the change.

use clap::Args;
use serde_json::json;

use super::Failure;
use super::pipeline_host::read_json_argument;
use crate::metadata::conditions::Conditions;
use crate::metadata::permissions::{Permission, all};
use crate::metadata::rules::TitleRule;
use crate::metadata::settings::{MetadataSettings, Target};
use crate::registry::{Registry, RegistryError};

#[derive(Debug, Args)]
pub struct PermissionsArgs {
    /// The plugin.
    id: String,
    /// Grant a permission (repeatable): `metadata:write:<field>`, `metadata:write:*`,
    /// `metadata:read`, `library:read`. None is granted by default.
    #[arg(long = "grant", value_name = "PERMISSION")]
    grant: Vec<String>,
    /// Take a permission back (repeatable).
    #[arg(long = "revoke", value_name = "PERMISSION")]
    revoke: Vec<String>,
    /// Only these libraries (repeatable); the plugin sees no other.
    #[arg(long = "library", value_name = "ID", conflicts_with = "all_libraries")]
    libraries: Vec<String>,
    /// Every library (the default).
    #[arg(long)]
    all_libraries: bool,
    /// List every permission string and exit.
    #[arg(long, exclusive = true)]
    list: bool,
}

#[derive(Debug, Args)]
pub struct SearchSettingsArgs {
    /// The plugin.
    id: String,
    /// The search query template (Handlebars, e.g. `{{metadata.title}} {{metadata.year}}`);
    /// `""` removes it (the cleaned title is searched).
    #[arg(long, value_name = "TEMPLATE")]
    template: Option<String>,
    /// The plugin's title rules, after the library's: JSON or `@FILE`; `[]` clears them.
    #[arg(long, value_name = "JSON")]
    rules: Option<String>,
    /// The plugin's auto-match conditions: JSON or `@FILE`; `null` clears them.
    #[arg(long, value_name = "JSON")]
    conditions: Option<String>,
    /// How sure the best result must be, 0 to 1 (default 0.8).
    #[arg(long, value_name = "SCORE")]
    threshold: Option<f64>,
    /// Whether a stored external id of this plugin skips the search (default true).
    #[arg(long, value_name = "BOOL")]
    reuse_external_id: Option<bool>,
    /// Take an unscored best result as sure (for plugins that never score; default false).
    #[arg(long, value_name = "BOOL")]
    accept_unscored: Option<bool>,
    /// What auto-match asks it for: `series`, `book` (repeatable; default: what its
    /// manifest provides).
    #[arg(long = "target", value_name = "TARGET", value_parser = parse_target)]
    targets: Vec<Target>,
    /// At most this many calls a minute from the host's jobs (its rate limit; 0: none).
    #[arg(long, value_name = "N")]
    requests_per_minute: Option<u32>,
}

fn parse_target(text: &str) -> Result<Target, String> {
    match text {
        "series" => Ok(Target::Series),
        "book" => Ok(Target::Book),
        other => Err(format!("`{other}` is not a target: `series` or `book`")),
    }
}

pub fn permissions(
    registry: &Registry,
    library: &dyn crate::library::LibraryPort,
    args: PermissionsArgs,
) -> Result<(), Failure> {
    if args.list {
        for name in all() {
            super::print_line(&name);
        }
        return Ok(());
    }
    let mut settings = registry.metadata_settings(&args.id).map_err(failure)?;
    for name in args.grant.iter().chain(&args.revoke) {
        name.parse::<Permission>().map_err(Failure::usage)?;
    }
    settings.permissions.retain(|granted| !args.revoke.contains(granted));
    for name in args.grant {
        if !settings.permissions.contains(&name) {
            settings.permissions.push(name);
        }
    }
    settings.permissions.sort();
    for id in &args.libraries {
        library.library(id).map_err(|error| Failure::usage(error.to_string()))?;
    }
    if args.all_libraries {
        settings.library_ids.clear();
    } else if !args.libraries.is_empty() {
        settings.library_ids = args.libraries;
    }
    registry.set_metadata_settings(&args.id, &settings).map_err(failure)?;
    super::print_line(
        &json!({"id": args.id, "permissions": settings.permissions, "libraryIds": settings.library_ids}).to_string(),
    );
    Ok(())
}

pub fn search_settings(registry: &Registry, args: SearchSettingsArgs) -> Result<(), Failure> {
    let mut settings: MetadataSettings = registry.metadata_settings(&args.id).map_err(failure)?;
    if let Some(template) = args.template {
        settings.search_template = Some(template).filter(|text| !text.trim().is_empty());
    }
    if let Some(rules) = args.rules {
        settings.title_rules = read_json_argument::<Vec<TitleRule>>("--rules", &rules)?;
    }
    if let Some(conditions) = args.conditions {
        settings.auto_match_conditions = read_json_argument::<Option<Conditions>>("--conditions", &conditions)?;
    }
    if args.threshold.is_some() {
        settings.confidence_threshold = args.threshold;
    }
    if args.reuse_external_id.is_some() {
        settings.reuse_external_id = args.reuse_external_id;
    }
    if args.accept_unscored.is_some() {
        settings.accept_unscored = args.accept_unscored;
    }
    if let Some(rate) = args.requests_per_minute {
        settings.requests_per_minute = Some(rate).filter(|rate| *rate > 0);
    }
    if !args.targets.is_empty() {
        let mut targets = args.targets;
        targets.sort();
        targets.dedup();
        settings.targets = Some(targets);
    }
    registry.set_metadata_settings(&args.id, &settings).map_err(failure)?;
    super::print_line(&serde_json::to_string(&settings).expect("settings serialize"));
    Ok(())
}

fn failure(error: RegistryError) -> Failure {
    match error {
        RegistryError::NotRegistered(_) | RegistryError::Invalid { .. } => Failure::usage(error.to_string()),
        other => Failure { message: other.to_string(), exit_code: 3 },
    }
}
