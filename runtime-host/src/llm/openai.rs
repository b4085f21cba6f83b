//! A client for an OpenAI-compatible `POST /v1/embeddings` endpoint
//! (OpenAI itself, and the many servers and gateways that copy its API:
//! vLLM, Ollama, LiteLLM, text-embeddings-inference, ...).
//!
//! Inputs go in batches of at most [`DEFAULT_MAX_BATCH`], one request per
//! batch, one batch after another; each request must finish within the
//! configured timeout. The answer's `data` is put back in `index` order and
//! checked: one vector per input, all of one dimension, every number finite.
//!
//! Errors say whether a retry can help. A 4xx other than 408 and 429 is
//! [`EmbedError::InvalidInput`]: the provider rejected this request (bad
//! input, bad key, unknown model) and will reject it again. 408, 429, 5xx,
//! connection and TLS failures, timeouts and malformed answers are
//! [`EmbedError::Runtime`]: the same request may succeed later.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Inputs per request unless [`OpenAiEmbedder::with_max_batch`] says
/// otherwise: small enough for self-hosted servers' limits and for one
/// request to fit in a timeout, large enough to amortize round trips.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// The largest answer read. 64 vectors of 3072 dimensions are about 4 MiB
/// of JSON; the cap only stops a broken server from exhausting memory.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// How much of an error answer's body is quoted in the error.
const QUOTED_BODY_CHARS: usize = 300;

/// Why embedding failed, and whether retrying can help.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbedError {
    /// The provider rejected the request; it will reject it again.
    InvalidInput(String),
    /// The provider is down, overloaded, unreachable or answered nonsense;
    /// a retry may succeed.
    Runtime(String),
}

impl fmt::Display for EmbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmbedError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            EmbedError::Runtime(m) => write!(f, "runtime error: {m}"),
        }
    }
}

impl std::error::Error for EmbedError {}

type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A configured endpoint with its own connection pool.
pub struct OpenAiEmbedder {
    /// The full URL of the embeddings route.
    endpoint: Uri,
    model: String,
    api_key: Option<String>,
    /// The limit on each request, connect to last byte.
    timeout: Duration,
    max_batch: usize,
    client: Client<HttpsConnector, Full<Bytes>>,
}

#[derive(Serialize)]
struct EmbeddingsRequest<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct EmbeddingsAnswer {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
    /// Position of the input; some servers leave it out and keep order.
    index: Option<usize>,
}

impl OpenAiEmbedder {
    /// An embedder for `endpoint`: either the full URL of the embeddings
    /// route (`https://host/v1/embeddings`) or a base URL, `https://host`
    /// or `https://host/v1`, which gets the rest of the route appended.
    pub fn new(endpoint: &str, model: &str, api_key: Option<String>, timeout: Duration) -> Result<OpenAiEmbedder> {
        let endpoint = endpoint_url(endpoint)?;
        // rustls' default provider: ring, the only one in the build (wasmtime-wasi-http
        // relies on the same). Plain http:// stays allowed for local servers.
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(OpenAiEmbedder {
            endpoint,
            model: model.to_string(),
            api_key,
            timeout,
            max_batch: DEFAULT_MAX_BATCH,
            client,
        })
    }

    /// Sends at most `max_batch` inputs per request (at least one).
    #[must_use]
    pub fn with_max_batch(mut self, max_batch: usize) -> OpenAiEmbedder {
        self.max_batch = max_batch.max(1);
        self
    }

    /// The provider's model name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// One vector per text, in the order of `texts`.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out: Vec<Vec<f32>> = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.max_batch) {
            let vectors = tokio::time::timeout(self.timeout, self.embed_batch(batch)).await.map_err(|_| {
                EmbedError::Runtime(format!("{} did not answer within {:?}", self.endpoint, self.timeout))
            })??;
            if let (Some(first), Some(next)) = (out.first(), vectors.first())
                && first.len() != next.len()
            {
                return Err(EmbedError::Runtime(format!(
                    "the embedder changed dimension between batches ({} then {})",
                    first.len(),
                    next.len()
                )));
            }
            out.extend(vectors);
        }
        Ok(out)
    }

    async fn embed_batch(&self, batch: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let (status, body) = self.post(batch).await?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        parse_answer(&body, batch.len())
    }

    /// POSTs one batch; the status and the whole body of the answer.
    async fn post(&self, batch: &[String]) -> Result<(StatusCode, Bytes), EmbedError> {
        let body = serde_json::to_vec(&EmbeddingsRequest { model: &self.model, input: batch })
            .map_err(|e| EmbedError::Runtime(format!("encoding the request: {e}")))?;
        let mut request = Request::post(self.endpoint.clone()).header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(key) = &self.api_key {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| EmbedError::Runtime(format!("building the request: {e}")))?;
        let answer = self
            .client
            .request(request)
            .await
            .map_err(|e| EmbedError::Runtime(format!("POST {}: {}", self.endpoint, error_chain(&e))))?;
        let status = answer.status();
        let body = Limited::new(answer.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| EmbedError::Runtime(format!("reading the answer of {}: {e}", self.endpoint)))?
            .to_bytes();
        Ok((status, body))
    }
}

/// The URL of the embeddings route for what the operator configured: a
/// path that is empty or `/` gets `/v1/embeddings`, one ending in `/v1`
/// gets `/embeddings` (the form OpenAI's SDKs call the base URL), any
/// other path is used as given. The query, if any, is kept.
fn endpoint_url(configured: &str) -> Result<Uri> {
    let uri: Uri = configured.trim().parse().with_context(|| format!("embedder URL '{configured}'"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        bail!("embedder URL '{configured}' must start with http:// or https://");
    }
    let base = uri.path().trim_end_matches('/');
    let path = if base.is_empty() {
        "/v1/embeddings".to_string()
    } else if base.ends_with("/v1") {
        format!("{base}/embeddings")
    } else {
        uri.path().to_string()
    };
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = uri.into_parts();
    parts.path_and_query = Some(path_and_query.parse().with_context(|| format!("embedder URL '{configured}'"))?);
    Uri::from_parts(parts).with_context(|| format!("embedder URL '{configured}'"))
}

/// The error for a non-success answer, quoting the start of its body
/// (providers explain themselves there).
fn status_error(status: StatusCode, body: &[u8]) -> EmbedError {
    let quoted: String = String::from_utf8_lossy(body).trim().chars().take(QUOTED_BODY_CHARS).collect();
    let message = format!("the embedder answered {status}: {quoted}");
    let retryable =
        !status.is_client_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS;
    if retryable { EmbedError::Runtime(message) } else { EmbedError::InvalidInput(message) }
}

/// An error with its causes, which is where hyper puts "connection
/// refused" or the TLS failure.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// The vectors of a successful answer, in input order.
fn parse_answer(body: &[u8], inputs: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    let malformed = |m: String| EmbedError::Runtime(format!("malformed embedder answer: {m}"));
    let answer: EmbeddingsAnswer = serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    if answer.data.len() != inputs {
        return Err(malformed(format!("{} vectors for {inputs} inputs", answer.data.len())));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; inputs];
    for (position, item) in answer.data.into_iter().enumerate() {
        let index = item.index.unwrap_or(position);
        match slots.get_mut(index) {
            Some(slot @ None) => *slot = Some(item.embedding),
            _ => return Err(malformed(format!("index {index} is out of range or repeated"))),
        }
    }
    // Every slot is filled: `inputs` distinct in-range indices were placed.
    let vectors: Vec<Vec<f32>> = slots.into_iter().flatten().collect();
    let dims = vectors.first().map_or(0, Vec::len);
    if vectors.iter().any(|v| v.len() != dims || v.is_empty()) {
        return Err(malformed("the vectors are empty or of different lengths".into()));
    }
    if vectors.iter().flatten().any(|x| !x.is_finite()) {
        return Err(malformed("a vector has a number out of range".into()));
    }
    Ok(vectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// One request as the test server saw it.
    struct Seen {
        /// Request line and headers, lowercased.
        head: String,
        body: Value,
    }

    type Log = Arc<Mutex<Vec<Seen>>>;
    type Reply = dyn Fn(&Value) -> (u16, String) + Send + Sync;

    /// An HTTP/1.1 server on a free port that answers every request with
    /// `reply(request body)`; its URL and the log of requests.
    async fn server(reply: impl Fn(&Value) -> (u16, String) + Send + Sync + 'static) -> (String, Log) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Log::default();
        let (reply, seen): (Arc<Reply>, Log) = (Arc::new(reply), log.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_connection(socket, reply.clone(), seen.clone()));
            }
        });
        (url, log)
    }

    /// Answers the requests of one keep-alive connection until it closes.
    async fn serve_connection(mut socket: TcpStream, reply: Arc<Reply>, log: Log) {
        let mut buf = Vec::new();
        while let Some((head, body)) = read_request(&mut socket, &mut buf).await {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (status, text) = reply(&body);
            log.lock().unwrap().push(Seen { head, body });
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{text}", text.len());
            if socket.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// The next request's head (lowercased) and body; None at end of stream.
    async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() >= end + 4 + length {
                    let body = buf[end + 4..end + 4 + length].to_vec();
                    buf.drain(..end + 4 + length);
                    return Some((head, body));
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// A successful answer: input "text i" gets the vector [i, 1], and
    /// `data` lists the items in reverse.
    fn reversed_answer(body: &Value) -> (u16, String) {
        let inputs = body["input"].as_array().unwrap();
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .rev()
            .map(|(i, t)| {
                let n: f32 = t.as_str().unwrap().trim_start_matches("text ").parse().unwrap();
                json!({"object": "embedding", "index": i, "embedding": [n, 1.0]})
            })
            .collect();
        (200, json!({"object": "list", "data": data, "usage": {"prompt_tokens": inputs.len()}}).to_string())
    }

    fn texts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("text {i}")).collect()
    }

    fn embedder(url: &str, key: Option<&str>) -> OpenAiEmbedder {
        OpenAiEmbedder::new(url, "test-model", key.map(String::from), Duration::from_secs(5)).unwrap()
    }

    async fn error_for(status: u16, body: &'static str) -> EmbedError {
        let (url, _) = server(move |_| (status, body.to_string())).await;
        embedder(&url, None).embed(&texts(1)).await.unwrap_err()
    }

    #[tokio::test]
    async fn batches_go_one_request_each_and_come_back_in_input_order() {
        let (url, log) = server(reversed_answer).await;
        let out = embedder(&url, Some("sk-test")).embed(&texts(150)).await.unwrap();
        let want: Vec<Vec<f32>> = (0..150).map(|i| vec![i as f32, 1.0]).collect();
        assert_eq!(out, want);
        let log = log.lock().unwrap();
        let sizes: Vec<usize> = log.iter().map(|s| s.body["input"].as_array().unwrap().len()).collect();
        assert_eq!(sizes, [64, 64, 22]);
        for seen in log.iter() {
            assert!(seen.head.starts_with("post /v1/embeddings http/1.1"), "{}", seen.head);
            assert!(seen.head.contains("\r\ncontent-type: application/json"), "{}", seen.head);
            assert!(seen.head.contains("\r\nauthorization: bearer sk-test"), "{}", seen.head);
            assert_eq!(seen.body["model"], "test-model");
        }
    }

    #[tokio::test]
    async fn max_batch_is_configurable() {
        let (url, log) = server(reversed_answer).await;
        let out = embedder(&url, None).with_max_batch(2).embed(&texts(5)).await.unwrap();
        assert_eq!(out.len(), 5);
        assert_eq!(log.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn no_key_means_no_authorization_header() {
        let (url, log) = server(reversed_answer).await;
        embedder(&url, None).embed(&texts(1)).await.unwrap();
        assert!(!log.lock().unwrap()[0].head.contains("authorization"));
    }

    #[tokio::test]
    async fn no_texts_means_no_request() {
        let (url, log) = server(reversed_answer).await;
        assert!(embedder(&url, None).embed(&[]).await.unwrap().is_empty());
        assert!(log.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn client_errors_are_invalid_input_with_status_and_body() {
        let err = error_for(400, r#"{"error":{"message":"input too long"}}"#).await;
        let EmbedError::InvalidInput(m) = &err else { panic!("{err}") };
        assert!(m.contains("400") && m.contains("input too long"), "{m}");
        for status in [401, 404, 422] {
            assert!(matches!(error_for(status, "no").await, EmbedError::InvalidInput(_)), "{status}");
        }
    }

    #[tokio::test]
    async fn overload_and_server_errors_are_runtime() {
        for status in [408, 429, 500, 502, 503] {
            let err = error_for(status, "busy").await;
            assert!(matches!(&err, EmbedError::Runtime(m) if m.contains(&status.to_string())), "{status}: {err}");
        }
    }

    #[tokio::test]
    async fn long_error_bodies_are_cut_to_300_chars() {
        let long: &'static str = "x".repeat(5000).leak();
        let EmbedError::InvalidInput(m) = error_for(400, long).await else { panic!() };
        assert_eq!(m.matches('x').count(), 300);
    }

    #[tokio::test]
    async fn refused_connections_are_runtime() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err = embedder(&format!("http://127.0.0.1:{port}"), None).embed(&texts(1)).await.unwrap_err();
        assert!(matches!(&err, EmbedError::Runtime(m) if m.to_lowercase().contains("refused")), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_as_runtime() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Accepts and reads, never answers.
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move { while socket.read(&mut [0u8; 1024]).await.is_ok_and(|n| n > 0) {} });
            }
        });
        let e = OpenAiEmbedder::new(&url, "m", None, Duration::from_millis(200)).unwrap();
        let started = Instant::now();
        let err = e.embed(&texts(1)).await.unwrap_err();
        assert!(matches!(&err, EmbedError::Runtime(m) if m.contains("did not answer")), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn malformed_answers_are_runtime() {
        let bodies = [
            "not json",
            r#"{"data": 5}"#,
            r#"{"object": "list"}"#,
            r#"{"data": [{"index": 0, "embedding": [1.0]}]}"#,
            r#"{"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]}"#,
            r#"{"data": [{"index": 0, "embedding": [1.0]}, {"index": 2, "embedding": [2.0]}]}"#,
            r#"{"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [2.0, 3.0]}]}"#,
            r#"{"data": [{"index": 0, "embedding": []}, {"index": 1, "embedding": []}]}"#,
            r#"{"data": [{"index": 0, "embedding": [1e300]}, {"index": 1, "embedding": [1.0]}]}"#,
            r#"{"data": [{"index": 0, "embedding": "AAAA"}, {"index": 1, "embedding": [1.0]}]}"#,
        ];
        for body in bodies {
            let (url, _) = server(move |_| (200, body.to_string())).await;
            let err = embedder(&url, None).embed(&texts(2)).await.unwrap_err();
            assert!(matches!(&err, EmbedError::Runtime(m) if m.starts_with("malformed")), "{body}: {err}");
        }
    }

    #[tokio::test]
    async fn items_without_index_keep_their_order() {
        let body = r#"{"data": [{"embedding": [1.0]}, {"embedding": [2.0]}]}"#;
        let (url, _) = server(move |_| (200, body.to_string())).await;
        assert_eq!(embedder(&url, None).embed(&texts(2)).await.unwrap(), [[1.0], [2.0]]);
    }

    #[tokio::test]
    async fn a_dimension_change_between_batches_is_runtime() {
        let (url, _) = server(|body| {
            let n = body["input"].as_array().unwrap().len();
            let data: Vec<Value> = (0..n).map(|i| json!({"index": i, "embedding": vec![0.5; n]})).collect();
            (200, json!({"data": data}).to_string())
        })
        .await;
        let err = embedder(&url, None).with_max_batch(2).embed(&texts(3)).await.unwrap_err();
        assert!(matches!(&err, EmbedError::Runtime(m) if m.contains("dimension")), "{err}");
    }

    #[tokio::test]
    async fn https_goes_through_tls() {
        // A plain-HTTP server behind an https:// URL: the TLS handshake
        // fails, retryably, on the server's first bytes; nothing is sent in
        // clear.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
            }
        });
        let err = embedder(&url, None).embed(&texts(1)).await.unwrap_err();
        assert!(matches!(&err, EmbedError::Runtime(m) if !m.contains("did not answer")), "{err}");
    }

    #[test]
    fn endpoint_urls() {
        let url = |s: &str| endpoint_url(s).unwrap().to_string();
        assert_eq!(url("http://h:8080"), "http://h:8080/v1/embeddings");
        assert_eq!(url("http://h:8080/"), "http://h:8080/v1/embeddings");
        assert_eq!(url("https://api.openai.com/v1"), "https://api.openai.com/v1/embeddings");
        assert_eq!(url("https://api.openai.com/v1/"), "https://api.openai.com/v1/embeddings");
        assert_eq!(url(" https://h/v1/embeddings "), "https://h/v1/embeddings");
        assert_eq!(url("https://h/openai/embeddings?api-version=1"), "https://h/openai/embeddings?api-version=1");
        assert_eq!(url("https://h?api-version=1"), "https://h/v1/embeddings?api-version=1");
        for bad in ["ftp://h/v1/embeddings", "h:8080", "/v1/embeddings", "", "http://"] {
            assert!(endpoint_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_display_their_kind() {
        assert_eq!(EmbedError::InvalidInput("x".into()).to_string(), "invalid input: x");
        assert_eq!(EmbedError::Runtime("y".into()).to_string(), "runtime error: y");
    }
}
