//! `check`'s run (orchestration.md §0, layer 2): asks a started plugin everything
//! [`crate::conformance`] says applies to it, in order, over a [`Target`] port, and turns
//! the answers into a report. A plugin that dies or stops answering mid-run still gets a
//! whole report: what could not be reached is marked not run, with why.

mod requests;
mod target;

pub use requests::{CheckRequests, RegisteredSource, StorageWrites};
pub use target::PluginTarget;

use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

use crate::conformance::judge::{self, Answered, Conditions, Exchange, SLOW};
use crate::conformance::probes::{self, Expect, Params, Probe};
use crate::conformance::report::{CheckResult, cut, shown};
use crate::conformance::{Finding, manifest, shapes, wire};
use crate::plugin::ExitStep;
use crate::protocol::Manifest;
use crate::transport::recorder::WireSnapshot;

/// Characters of a request or an answer shown in the report.
const SHOWN_CHARS: usize = 300;

/// A started plugin, as the run sees it.
pub trait Target: Send + Sync {
    /// Sends `method` with `params` as given and waits for the answer (or the deadline).
    fn call<'a>(&'a self, method: &'static str, params: Option<&'a Value>) -> BoxFuture<'a, Exchange>;
    /// Why the plugin ended, once it has.
    fn ended(&self) -> Option<String>;
    /// Refuses the plugin's storage writes as a full quota would, or lets them through.
    fn refuse_storage_writes(&self, refusing: bool);
    /// How its storage writes went so far.
    fn storage_writes(&self) -> StorageWrites;
    /// The release sources the plugin registered.
    fn release_sources(&self) -> Vec<RegisteredSource>;
    /// Every release candidate the plugin recorded.
    fn recorded_candidates(&self) -> Vec<Value>;
    /// "process" or "wasm".
    fn transport(&self) -> &'static str;
    /// Stops the plugin as the host does (`shutdown`, the grace period, then force).
    fn shutdown(self: Box<Self>) -> BoxFuture<'static, Stop>;
    /// Stops the plugin without asking; returns the whole wire.
    fn kill(self: Box<Self>) -> BoxFuture<'static, WireSnapshot>;
}

/// How a [`Target::shutdown`] went.
#[derive(Debug, Clone)]
pub struct Stop {
    /// `Ok` when `shutdown` was answered; why not otherwise.
    pub answered: Result<(), String>,
    pub exit: ExitStep,
    /// The grace period it had.
    pub grace: Duration,
    /// The whole wire, the plugin's last stderr lines included.
    pub wire: WireSnapshot,
}

/// What the run may do, and what it runs under.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Send the methods that change something outside the plugin.
    pub allow_writes: bool,
    pub conditions: Conditions,
    /// The per-answer deadline: an answer that came no sooner (a wasm guest the watchdog
    /// ended at the deadline, say) counts as one that did not come in time.
    pub timeout: Option<Duration>,
}

/// Checks a started plugin whose `initialize` answer was `manifest_answer`: every check,
/// in the order of the report.
pub async fn run(
    target: Box<dyn Target>,
    manifest: &Manifest,
    manifest_answer: &Value,
    options: Options,
) -> Vec<CheckResult> {
    let probes = probes::capability_probes(manifest);
    let sources = probes
        .iter()
        .filter_map(|probe| match probe.params {
            Params::FoundId { probe, key } => Some((probe, key)),
            _ => None,
        })
        .collect();
    let mut run = Run {
        target: target.as_ref(),
        options,
        stopped: None,
        sources,
        found_ids: HashMap::new(),
        timings: Vec::new(),
        storage_probe: None,
    };
    let mut results = vec![manifest_check(manifest_answer)];
    results.push(run.send(&probes::ping("lifecycle.ping", "ping answered")).await);
    results.push(run.concurrent().await);
    for probe in &probes {
        results.push(run.send(probe).await);
    }
    results.push(run.send(&probes::unknown_method()).await);
    results.push(match probes::bad_params(manifest) {
        Some(probe) => run.send(&probe).await,
        None => not_run_bad_params(probes::NO_BAD_PARAMS_PROBE.to_owned()),
    });
    let ordinary = run.target.storage_writes();
    results.push(run.storage(ordinary).await);
    results.push(run.timing());
    let (stopped, transport) = (run.stopped.clone(), target.transport());
    let (shutdown, leftovers, wire) = match stopped {
        Some(why) => {
            let wire = target.kill().await;
            let shutdown = CheckResult::not_run(SHUTDOWN.0, SHUTDOWN.1, SHUTDOWN.2, why.clone());
            (shutdown, leftovers_not_run(why), wire)
        }
        None => {
            let stop = target.shutdown().await;
            let leftovers = leftovers_check(transport, &stop);
            (shutdown_check(&stop), leftovers, stop.wire)
        }
    };
    results.push(shutdown);
    results.push(leftovers);
    results.extend(wire::hygiene(&wire));
    results
}

/// The report of a plugin whose manifest the host refuses: the manifest check, the
/// hygiene of what it wrote, and everything else not run.
pub fn refused_manifest(manifest_answer: &Value, wire: &WireSnapshot) -> Vec<CheckResult> {
    let why = "the host does not start a plugin whose manifest breaks the contract".to_owned();
    let mut results = vec![manifest_check(manifest_answer)];
    for probe in [probes::ping("lifecycle.ping", "ping answered"), probes::unknown_method()] {
        results.push(CheckResult::not_run(probe.id, probe.title, probe.why, why.clone()));
    }
    results.push(CheckResult::not_run(SHUTDOWN.0, SHUTDOWN.1, SHUTDOWN.2, why.clone()));
    results.extend(wire::hygiene(wire));
    results
}

fn manifest_check(answer: &Value) -> CheckResult {
    CheckResult::judged(
        "manifest",
        "the initialize answer is a manifest that keeps the contract",
        "Codex refuses to start a plugin whose manifest breaks a rule, and shows admins and users what the manifest says",
        manifest::findings(answer),
    )
}

const SHUTDOWN: (&str, &str, &str) = (
    "lifecycle.shutdown",
    "shutdown answered, then an exit within the grace period",
    "the host asks before it stops a plugin (upgrades, idle instances, its own exit); one that lingers is killed, and loses what it had not saved",
);
const LEFTOVERS: (&str, &str, &str) = (
    "lifecycle.leftovers",
    "no process left running when it ended",
    "Codex's own host does not kill what a plugin leaves behind: each start would leave more processes on the server",
);
const STORAGE: (&str, &str, &str) = (
    "storage.quota-full",
    "a request still answered when every storage write is refused",
    "a host answers writes past a plugin's quota with an error: a plugin that crashes or hangs on it stops working for good once its storage is full",
);
const TIMING: (&str, &str, &str) = (
    "timing",
    "each answer within 5 s",
    "Codex's users wait for searches and matches; its default timeout is 30 s, and a request past it is a fault",
);
const CONCURRENT: (&str, &str, &str) = (
    "lifecycle.concurrent",
    "two requests in flight answered, each by its own id",
    "the host sends requests without waiting for earlier answers and matches each answer to its request by id: an answer with the wrong id leaves its request waiting",
);

fn not_run_bad_params(reason: String) -> CheckResult {
    CheckResult::not_run(
        "lifecycle.bad-params",
        "params of the wrong type answered -32602",
        "-32602 tells the host the request was wrong, not the plugin",
        reason,
    )
}

fn leftovers_not_run(reason: String) -> CheckResult {
    CheckResult::not_run(LEFTOVERS.0, LEFTOVERS.1, LEFTOVERS.2, reason)
}

struct Run<'a> {
    target: &'a dyn Target,
    options: Options,
    /// Why nothing more can be asked of the plugin, once that is so.
    stopped: Option<String>,
    /// The probes whose answers give others an id, and where in the answer.
    sources: HashMap<&'static str, &'static str>,
    /// The first external id each of those answered with, if any.
    found_ids: HashMap<&'static str, Option<String>>,
    /// Each answer's latency, and whether it timed out.
    timings: Vec<(&'static str, Duration, bool)>,
    /// The first probe during which the plugin wrote to storage, and its params.
    storage_probe: Option<(Probe, Option<Value>)>,
}

impl Run<'_> {
    async fn send(&mut self, probe: &Probe) -> CheckResult {
        let not_run = |reason: String| CheckResult::not_run(probe.id, probe.title, probe.why, reason);
        if let Some(why) = &self.stopped {
            return not_run(why.clone());
        }
        if probe.writes && !self.options.allow_writes {
            return not_run(format!(
                "`{}` changes something outside the plugin; run `check --allow-writes` to send it",
                probe.method
            ));
        }
        let params = match self.params(probe) {
            Ok(params) => params,
            Err(reason) => return not_run(reason),
        };
        let writes_before = self.target.storage_writes().sent;
        let exchange = self.target.call(probe.method, params.as_ref()).await;
        if self.target.storage_writes().sent > writes_before && self.storage_probe.is_none() {
            self.storage_probe = Some((probe.clone(), params.clone()));
        }
        if let (Answered::Result(result), Some(key)) = (&exchange.answered, self.sources.get(probe.id)) {
            let first = result.get(key).and_then(|items| items.get(0)?.get("externalId")?.as_str());
            self.found_ids.insert(probe.id, first.map(str::to_owned));
        }
        let (mut found, note) = judge::judge(probe, &exchange, self.options.conditions);
        if probe.method == crate::protocol::HostMethod::ReleasesPoll.name() {
            for candidate in self.target.recorded_candidates() {
                found.extend(shapes::findings(&candidate, &shapes::RELEASE_CANDIDATE, "releases/record candidate"));
            }
            found.dedup();
        }
        self.timings.push((probe.id, exchange.latency, self.too_late(&exchange)));
        self.after(probe.id, &exchange).await;
        CheckResult::judged(probe.id, probe.title, probe.why, found)
            .with_exchange(
                Some(sent(probe.method, params.as_ref())),
                Some(received(&exchange.answered)),
                Some(exchange.latency),
            )
            .with_note(note)
    }

    fn params(&self, probe: &Probe) -> Result<Option<Value>, String> {
        match &probe.params {
            Params::Fixed(params) => Ok(params.clone()),
            Params::FoundId { probe: from, .. } => match self.found_ids.get(from) {
                Some(Some(id)) => Ok(Some(serde_json::json!({"externalId": id}))),
                Some(None) => Err(format!("`{from}` found nothing, so there is no id to ask for")),
                None => Err(format!("`{from}` gave no answer with an id to ask for")),
            },
            Params::RegisteredSource => {
                let source = self.target.release_sources().into_iter().next();
                let source = source
                    .ok_or("the plugin registered no release source when it started (`releases/register_sources`)")?;
                Ok(Some(serde_json::json!({"sourceId": source.id, "sourceKey": source.key})))
            }
        }
    }

    /// After an answer: whether the plugin can still be asked anything.
    async fn after(&mut self, probe: &str, exchange: &Exchange) {
        if let Answered::Ended(why) = &exchange.answered {
            self.stopped = Some(format!("the plugin had ended during `{probe}`: {why}"));
            return;
        }
        if let Some(why) = self.target.ended() {
            self.stopped = Some(format!("the plugin had ended after `{probe}`: {why}"));
            return;
        }
        if matches!(exchange.answered, Answered::TimedOut(_)) {
            let ping = self.target.call(crate::protocol::HostMethod::Ping.name(), None).await;
            if !matches!(ping.answered, Answered::Result(_)) {
                self.stopped = Some(format!(
                    "the plugin stopped answering after `{probe}` timed out: a ping got no answer either"
                ));
            }
        }
    }

    async fn concurrent(&mut self) -> CheckResult {
        let (id, title, why) = CONCURRENT;
        if let Some(reason) = &self.stopped {
            return CheckResult::not_run(id, title, why, reason.clone());
        }
        let ping = probes::ping(id, title);
        let (first, second) = tokio::join!(self.target.call(ping.method, None), self.target.call(ping.method, None));
        let mut found = Vec::new();
        for exchange in [&first, &second] {
            found.extend(judge::judge(&ping, exchange, self.options.conditions).0);
            self.timings.push((id, exchange.latency, self.too_late(exchange)));
        }
        found.dedup();
        let latency = first.latency.max(second.latency);
        let answers = format!("{}; {}", received(&first.answered), received(&second.answered));
        for exchange in [&first, &second] {
            self.after(id, exchange).await;
        }
        CheckResult::judged(id, title, why, found).with_exchange(
            Some("ping, twice, at once".into()),
            Some(answers),
            Some(latency),
        )
    }

    async fn storage(&mut self, ordinary: StorageWrites) -> CheckResult {
        let (id, title, why) = STORAGE;
        if let Some(reason) = &self.stopped {
            return CheckResult::not_run(id, title, why, reason.clone());
        }
        let Some((probe, params)) = self.storage_probe.clone() else {
            return CheckResult::not_run(id, title, why, "it wrote nothing to storage during the other checks");
        };
        self.target.refuse_storage_writes(true);
        let exchange = self.target.call(probe.method, params.as_ref()).await;
        self.target.refuse_storage_writes(false);
        let refused = self.target.storage_writes().refused_on_purpose;
        self.timings.push((id, exchange.latency, self.too_late(&exchange)));
        self.after(id, &exchange).await;
        if refused == 0 && !matches!(exchange.answered, Answered::Ended(_) | Answered::TimedOut(_)) {
            let reason = format!(
                "`{}` sent again wrote nothing this time (it may keep in storage what it wrote the first time), so no write could be refused",
                probe.method
            );
            return CheckResult::not_run(id, title, why, reason);
        }
        let mut found = Vec::new();
        match &exchange.answered {
            Answered::Ended(_) | Answered::TimedOut(_) | Answered::Malformed(_) => {
                found.extend(
                    judge::judge(
                        &Probe { expect: Expect::Survive, ..probe.clone() },
                        &exchange,
                        self.options.conditions,
                    )
                    .0,
                );
            }
            Answered::Error { code, message, .. } if *code == crate::protocol::ErrorCode::InternalError.code() => {
                found.push(Finding::warn(
                    "error",
                    format!("a refused write ended the request in an internal error ({code}: {message})"),
                    "catch the storage error: answer what you can without the cache, or a plugin error code",
                ));
            }
            _ => {}
        }
        if ordinary.refused_by_limits > 0 {
            found.push(Finding::warn(
                "storage",
                format!(
                    "{} of its writes were refused by the host's limits in an ordinary run: {}",
                    ordinary.refused_by_limits,
                    cut(&ordinary.messages.join("; "), SHOWN_CHARS)
                ),
                storage_limits_advice(),
            ));
        }
        let note =
            format!("{refused} writes refused during `{}`; it answered {}", probe.method, received(&exchange.answered));
        CheckResult::judged(id, title, why, found)
            .with_exchange(
                Some(sent(probe.method, params.as_ref())),
                Some(received(&exchange.answered)),
                Some(exchange.latency),
            )
            .with_note(Some(cut(&note, SHOWN_CHARS)))
    }

    /// Whether `exchange` came at or after the deadline.
    fn too_late(&self, exchange: &Exchange) -> bool {
        matches!(exchange.answered, Answered::TimedOut(_))
            || self.options.timeout.is_some_and(|timeout| exchange.latency >= timeout)
    }

    fn timing(&self) -> CheckResult {
        let (id, title, why) = TIMING;
        if self.timings.is_empty() {
            return CheckResult::not_run(id, title, why, "no request was answered");
        }
        let mut found = Vec::new();
        for (probe, latency, timed_out) in &self.timings {
            if *timed_out {
                found.push(Finding::fail(
                    *probe,
                    format!("no answer within {:.1} s", latency.as_secs_f64()),
                    "answer every request before the host's timeout",
                ));
            } else if *latency > SLOW {
                found.push(Finding::warn(
                    *probe,
                    format!("answered in {:.1} s", latency.as_secs_f64()),
                    "answer within 5 s",
                ));
            }
        }
        let mut latencies: Vec<Duration> = self.timings.iter().map(|(_, latency, _)| *latency).collect();
        latencies.sort();
        let (slowest_probe, slowest, _) =
            self.timings.iter().max_by_key(|(_, latency, _)| *latency).expect("not empty");
        let note = format!(
            "{} answers; median {:.1} ms, slowest `{slowest_probe}` {:.1} ms",
            latencies.len(),
            latencies[latencies.len() / 2].as_secs_f64() * 1e3,
            slowest.as_secs_f64() * 1e3
        );
        CheckResult::judged(id, title, why, found).with_note(Some(note))
    }
}

fn shutdown_check(stop: &Stop) -> CheckResult {
    let (id, title, why) = SHUTDOWN;
    let grace = stop.grace.as_secs_f64();
    let mut found = Vec::new();
    if let Err(error) = &stop.answered {
        found.push(Finding::warn(
            "shutdown",
            format!("`shutdown` was not answered: {error}"),
            "answer `shutdown` (with null), then exit",
        ));
    }
    match stop.exit {
        ExitStep::WithinGrace => {}
        ExitStep::InputClosed => found.push(Finding::fail(
            "exit",
            format!("it did not exit within the {grace} s grace period; it ended only when its input was closed"),
            "exit once `shutdown` is answered (the SDK does): Codex's host kills a plugin after the grace period",
        )),
        ExitStep::Terminated => found.push(Finding::fail(
            "exit",
            format!("it did not exit within the {grace} s grace period, nor when its input was closed: it was killed"),
            "exit once `shutdown` is answered, and when stdin ends",
        )),
    }
    CheckResult::judged(id, title, why, found).with_exchange(Some("shutdown".into()), None, None)
}

fn leftovers_check(transport: &str, stop: &Stop) -> CheckResult {
    let (id, title, why) = LEFTOVERS;
    if transport == crate::transport::wasm::TRANSPORT {
        return CheckResult::judged(id, title, why, Vec::new())
            .with_note(Some("a wasm plugin cannot start processes".into()));
    }
    // The launcher's last word, after the plugin ended: in the stderr tail, which no flood
    // pushes out.
    let left =
        stop.wire.stderr_tail.iter().rev().find_map(|line| crate::sandbox::confine::leftovers_reported(&line.text));
    match (left, stop.exit) {
        (Some(count), _) => CheckResult::judged(
            id,
            title,
            why,
            vec![Finding::fail(
                "processes",
                format!(
                    "it left {count} process{} running when it ended (this host killed them)",
                    if count == 1 { "" } else { "es" }
                ),
                "end or wait for every child process before exiting (`detached` children and `setsid` ones too)",
            )],
        ),
        (None, ExitStep::Terminated) => {
            leftovers_not_run("it had to be killed, so what it would leave on its own could not be told".into())
        }
        (None, _) => CheckResult::judged(id, title, why, Vec::new()),
    }
}

/// What the host's storage allows, as advice.
fn storage_limits_advice() -> String {
    let limits = crate::limits::StorageLimits::default();
    format!(
        "keep within the host's storage limits: {} keys, {} KiB a value, keys of at most {} bytes, RFC 3339 expiries",
        limits.max_keys,
        limits.max_value_bytes >> 10,
        limits.max_key_bytes
    )
}

/// A request, shown.
fn sent(method: &str, params: Option<&Value>) -> String {
    match params {
        Some(params) => format!("{method} {}", shown(params, SHOWN_CHARS)),
        None => method.to_owned(),
    }
}

/// An answer, shown.
fn received(answered: &Answered) -> String {
    match answered {
        Answered::Result(result) => shown(result, SHOWN_CHARS),
        Answered::Error { code, message, data } => cut(&judge::shown_error(*code, message, data.as_ref()), SHOWN_CHARS),
        Answered::Malformed(why) => format!("an unreadable answer: {}", cut(why, SHOWN_CHARS)),
        Answered::TimedOut(after) => format!("nothing within {:.1} s", after.as_secs_f64()),
        Answered::Ended(why) => format!("the plugin ended: {}", cut(why, SHOWN_CHARS)),
    }
}

#[cfg(test)]
mod tests;
