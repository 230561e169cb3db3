//! `serve`: the host as a long-running server (the HTTP API and the page) until SIGINT or
//! SIGTERM, then a clean stop.

use clap::Args;
use std::net::SocketAddr;

use super::Failure;
use super::pipeline_host::{HostArgs, host_failure, runtime};
use super::termination::Termination;
use crate::server::{ServerConfig, Services};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0: any free port; the one taken is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The address browsers and OAuth providers reach the server at (behind a reverse proxy
    /// or TLS terminator, its address); the OAuth redirect URI is built from it, and an
    /// https one makes the page's cookie Secure. At the root of its host name (no path).
    /// Default: http:// and the listen address.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// The npm registry npx plugins added over the API or the page are installed from
    /// (an admin's token cannot name another).
    #[arg(long, value_name = "URL", default_value = crate::install::DEFAULT_REGISTRY)]
    npm_registry: String,
    #[command(flatten)]
    host: HostArgs,
}

pub fn run(args: ServeArgs) -> Result<(), Failure> {
    let public_url = match &args.public_url {
        Some(text) => public_url(text)?,
        None => None,
    };
    let npm_registry =
        crate::install::registry_url(&args.npm_registry).map_err(|error| Failure::usage(error.to_string()))?;
    let config = args.host.host_config()?;
    let runtime = runtime()?;
    let served = runtime.block_on(async move {
        let mut termination = Termination::listen();
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|error| Failure::usage(format!("could not listen on {}: {error}", args.listen)))?;
        let address = listener.local_addr().map_err(|error| host_failure(error.to_string()))?;
        let public_url = match public_url {
            Some(url) => url,
            None => url::Url::parse(&format!("http://{address}/")).map_err(|error| host_failure(error.to_string()))?,
        };
        let mut services = Services::open(config).map_err(host_failure)?;
        services.npm_registry = npm_registry;
        super::print_line(&format!("listening on {address}; open {public_url}"));
        let stop = async move {
            let signal = termination.recv().await;
            tracing::warn!("{signal}: stopping (a second signal stops at once)");
            tokio::spawn(async move {
                let signal = termination.recv().await;
                eprintln!("{signal} again: stopping at once, without waiting for requests and plugins");
                std::process::exit(130);
            });
        };
        crate::server::serve(listener, services, ServerConfig { public_url }, stop).await.map_err(host_failure)
    });
    // Blocking work still under way (an install waiting for a lock the command line
    // holds) does not keep the process: it was given its grace with the jobs.
    runtime.shutdown_timeout(crate::server::JOB_GRACE);
    served
}

/// An http or https URL at the root of its host, without a query or fragment: the page's
/// links and its cookies are at `/`, and a `__Host-` cookie cannot be given a narrower path.
fn public_url(text: &str) -> Result<Option<url::Url>, Failure> {
    let url = url::Url::parse(text).map_err(|error| Failure::usage(format!("--public-url {text:?}: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.query().is_some() || url.fragment().is_some() {
        return Err(Failure::usage(format!("--public-url {text:?}: give an http or https URL without a query")));
    }
    if url.path() != "/" {
        return Err(Failure::usage(format!(
            "--public-url {text:?}: the server is served at the root of a host name (https://plugins.example/), \
             not under a path such as {:?}: give it a host name of its own at the proxy",
            url.path()
        )));
    }
    Ok(Some(url))
}
