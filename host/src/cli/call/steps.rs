//! The methods one `call` sends, in order, to one instance: checked before anything starts,
//! answered one at a time, each result printed as it comes.

use serde_json::{Map, Value, json};

use super::{CallArgs, host_failure, refusal};
use crate::cli::Failure;
use crate::cli::input::parse_json;
use crate::plugin::{Plugin, PluginError};
use crate::protocol::HostMethod;

/// One method to send, with the params the caller gave (or the method's default).
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub method: HostMethod,
    pub params: Value,
}

/// Every step of a `call`: `METHOD [PARAMS_JSON]`, then each `--then METHOD [PARAMS_JSON]`,
/// each checked against its method's type. `shutdown` may only come last.
pub(super) fn steps(args: &CallArgs) -> Result<Vec<Step>, Failure> {
    let mut steps = vec![step(&args.method, args.params.as_deref(), "PARAMS_JSON")?];
    for (method, params) in then_steps(&args.then)? {
        steps.push(step(method, params, &format!("the params of --then {method}"))?);
    }
    let last = steps.len() - 1;
    if steps[..last].iter().any(|step| step.method == HostMethod::Shutdown) {
        return Err(Failure::usage("`shutdown` ends the plugin: it can only be the last method"));
    }
    Ok(steps)
}

/// The values of every `--then`, as clap gives them (one list): a method starts a step,
/// a JSON object or array after it is its params; `METHOD PARAMS_JSON` in one value is a
/// step too.
fn then_steps(values: &[String]) -> Result<Vec<(&str, Option<&str>)>, Failure> {
    let mut steps: Vec<(&str, Option<&str>)> = Vec::new();
    for value in values {
        let value = value.trim();
        let is_params = value.starts_with('{') || value.starts_with('[');
        match steps.last_mut() {
            Some((_, params @ None)) if is_params => *params = Some(value),
            Some((method, Some(_))) if is_params => {
                return Err(Failure::usage(format!("--then {method} was given params twice")));
            }
            None if is_params => return Err(Failure::usage("--then needs a METHOD before its PARAMS_JSON")),
            _ => steps.push(match value.split_once(char::is_whitespace) {
                Some((method, params)) => (method, Some(params.trim())),
                None => (value, None),
            }),
        }
    }
    Ok(steps)
}

fn step(name: &str, params: Option<&str>, what: &str) -> Result<Step, Failure> {
    let method =
        HostMethod::from_name(name).ok_or_else(|| refusal(&PluginError::UnknownMethod { method: name.to_owned() }))?;
    let params = match (params, method) {
        (Some(_), HostMethod::Initialize) => {
            return Err(Failure::usage(
                "`initialize` takes its params from --admin-config, --user-config and --credentials",
            ));
        }
        (Some(text), _) => parse_json(what, text)?,
        (None, _) => default_params(method),
    };
    if method != HostMethod::Initialize {
        let checked = method.prepare_params(params.clone());
        checked.map_err(|why| refusal(&PluginError::InvalidParams { method: name.to_owned(), why }))?;
    }
    Ok(Step { method, params })
}

fn default_params(method: HostMethod) -> Value {
    match method {
        HostMethod::Initialize | HostMethod::Ping | HostMethod::Shutdown => Value::Null,
        _ => Value::Object(Map::new()),
    }
}

/// Sends a step to a started plugin; `initialize` answers with the manifest it returned.
pub(super) async fn answer(plugin: &Plugin, step: Step) -> Result<Value, Failure> {
    match step.method {
        HostMethod::Initialize => {
            serde_json::to_value(plugin.manifest()).map_err(|error| host_failure(error.to_string()))
        }
        method => plugin.call_raw(method.name(), step.params, None).await.map_err(|error| refusal(&error)),
    }
}

/// Prints results as they come: a lone method's result as it is; with `--then`, each as
/// `{"method", "result"}`, one JSON document after another.
pub(super) struct Output {
    several: bool,
}

impl Output {
    pub fn for_steps(steps: &[Step]) -> Self {
        Self { several: steps.len() > 1 }
    }

    pub fn print(&self, step: &Step, result: Value) {
        let document = if self.several { json!({"method": step.method.name(), "result": result}) } else { result };
        let text = serde_json::to_string_pretty(&document).expect("a JSON value always serializes");
        crate::cli::print_line(&text);
    }

    /// Says which step failed, and that the ones after it were not sent.
    pub fn failed(&self, steps: &[Step], index: usize, mut failure: Failure) -> Failure {
        if self.several {
            let unsent = steps.len() - index - 1;
            let method = steps[index].method.name();
            failure.message = format!(
                "step {} of {} (`{method}`): {}{}",
                index + 1,
                steps.len(),
                failure.message,
                if unsent > 0 { format!("; the {unsent} after it were not sent") } else { String::new() }
            );
        }
        failure
    }
}
