//! Sends a guest's `wasi:http` request: checks the host against the plugin's policy,
//! resolves it, checks every address, then connects to exactly those addresses (so a
//! second resolution cannot swap in an address that was never checked). Every step is
//! bounded in time: resolution, connection, TLS handshake, the response's first byte, and
//! each wait between two pieces of its body.

use crate::transport::wasm::host_budget;
use futures::StreamExt;
use http::uri::Scheme;
use http::{Request, Response};
use http_body_util::{BodyExt, BodyStream, StreamBody};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::policy::{HttpPolicy, normalize_host};

/// Longest wait for a name to resolve, a connection to open, a response to begin, or the
/// next piece of its body, whatever the guest asks for.
const MAX_WAIT: Duration = Duration::from_secs(30);

type Finished = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Sent = Result<(Response<WasiBody>, Finished), Error>;

/// The `wasi:http` hooks of one guest: every request goes through its policy, and at most
/// [`host_budget::HTTP_REQUESTS_IN_FLIGHT`] are open at once.
pub struct GuardedConnector {
    policy: Arc<HttpPolicy>,
    plugin: Arc<str>,
    in_flight: Arc<Semaphore>,
}

impl GuardedConnector {
    pub fn new(policy: Arc<HttpPolicy>, plugin: &str) -> Self {
        let in_flight = Arc::new(Semaphore::new(host_budget::HTTP_REQUESTS_IN_FLIGHT));
        Self { policy, plugin: plugin.into(), in_flight }
    }
}

impl WasiHttpHooks for GuardedConnector {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Finished,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            tracing::warn!(
                plugin = &*self.plugin,
                "HTTP request refused: {} requests are already open",
                host_budget::HTTP_REQUESTS_IN_FLIGHT
            );
            return Box::new(std::future::ready(Err(Error::ConnectionLimitReached)));
        };
        let sending = send(self.policy.clone(), self.plugin.clone(), request, options);
        // The permit is held until the connection ends.
        Box::new(async move {
            let (response, finished) = sending.await?;
            let finished: Finished = Box::new(async move {
                let ended = Box::into_pin(finished).await;
                drop(permit);
                ended
            });
            Ok((response, finished))
        })
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        host_budget::BODY_CHUNK_BYTES
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }
}

/// How long each step may take: what the guest asked for, within [`MAX_WAIT`].
struct Waits {
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl Waits {
    fn from(options: Option<RequestOptions>) -> Self {
        let options = options.unwrap_or_default();
        let within = |asked: Option<Duration>| asked.map_or(MAX_WAIT, |asked| asked.min(MAX_WAIT));
        Self {
            connect: within(options.connect_timeout),
            first_byte: within(options.first_byte_timeout),
            between_bytes: within(options.between_bytes_timeout),
        }
    }
}

async fn send(
    policy: Arc<HttpPolicy>,
    plugin: Arc<str>,
    mut request: Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Sent {
    let waits = Waits::from(options);
    let uri = request.uri();
    let tls = uri.scheme() == Some(&Scheme::HTTPS);
    let host = normalize_host(uri.host().ok_or(Error::HttpRequestUriInvalid)?);
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    if !policy.permits_host(&host, port) {
        tracing::warn!(
            plugin = &*plugin,
            "HTTP request to {host}:{port} refused: not among the plugin's allowed hosts"
        );
        return Err(Error::HttpRequestDenied);
    }
    let addresses = resolve(&host, port, waits.connect).await?;
    if let Some(internal) = addresses.iter().find(|address| !policy.permits_address(address.ip())) {
        tracing::warn!(
            plugin = &*plugin,
            "HTTP request to {host}:{port} refused: it resolves to {}, an internal address the plugin may not reach",
            internal.ip()
        );
        return Err(Error::DestinationIpProhibited);
    }
    let stream = tokio::time::timeout(waits.connect, TcpStream::connect(&addresses[..]))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    let stream: Box<dyn Stream> = if tls {
        let handshake = tokio::time::timeout(waits.connect, tls_handshake(&host, stream));
        Box::new(handshake.await.map_err(|_| Error::ConnectionTimeout)??)
    } else {
        Box::new(stream)
    };
    let (mut sender, connection) =
        tokio::time::timeout(waits.connect, hyper::client::conn::http1::handshake(TokioIo::new(stream)))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
    // On the wire the request names only its path; the host went into the Host header.
    let path = request.uri().path_and_query().map_or("/", |path| path.as_str()).to_owned();
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
    // The connection is driven while the response is awaited; a server that answers and
    // closes may end the connection first, with the response already read.
    let mut connection = Box::pin(connection);
    let mut sending = std::pin::pin!(tokio::time::timeout(waits.first_byte, sender.send_request(request)));
    let mut ended = None;
    let response = tokio::select! {
        biased;
        response = &mut sending => response,
        result = &mut connection => {
            ended = Some(result.map_err(Error::from));
            (&mut sending).await
        }
    };
    let response = response.map_err(|_| Error::ConnectionReadTimeout)??;
    let response = response.map(|body| cut_off_when_quiet(body, waits.between_bytes));
    let finished: Finished = match ended {
        Some(result) => Box::new(std::future::ready(result)),
        None => Box::new(async move { connection.await.map_err(Error::from) }),
    };
    Ok((response, finished))
}

/// The response body, failed with `ConnectionReadTimeout` when the server sends nothing
/// for longer than `wait` between two pieces of it.
fn cut_off_when_quiet(body: hyper::body::Incoming, wait: Duration) -> WasiBody {
    let frames = futures::stream::unfold(Some(BodyStream::new(body)), move |frames| async move {
        let mut frames = frames?;
        match tokio::time::timeout(wait, frames.next()).await {
            Ok(Some(frame)) => Some((frame.map_err(Error::from), Some(frames))),
            Ok(None) => None,
            Err(_) => Some((Err(Error::ConnectionReadTimeout), None)),
        }
    });
    StreamBody::new(frames).boxed_unsync()
}

pub(crate) async fn resolve(host: &str, port: u16, wait: Duration) -> Result<Vec<SocketAddr>, Error> {
    let found = tokio::time::timeout(wait, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Error::DnsTimeout)?
        .map_err(|error| Error::DnsError { rcode: Some(error.to_string()), info_code: None })?;
    let addresses: Vec<SocketAddr> = found.collect();
    if addresses.is_empty() { Err(Error::DestinationNotFound) } else { Ok(addresses) }
}

pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

pub(crate) async fn tls_handshake(host: &str, stream: TcpStream) -> Result<impl Stream + use<>, Error> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| Error::HttpRequestUriInvalid)?;
    tokio_rustls::TlsConnector::from(tls_config()).connect(name, stream).await.map_err(Error::Tls)
}

/// The web's root certificates, with the ring provider; built once.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
            let config =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default TLS versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}
