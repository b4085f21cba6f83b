//! A client for an OpenAI-compatible `POST /v1/embeddings` endpoint
//! (OpenAI, Azure-style gateways, vLLM, Ollama, LiteLLM, ...).
//!
//! Inputs go in batches of at most 64 per request; the answer's `data` is
//! put back in `index` order and checked (one vector per input, one
//! dimension). Errors say whether a retry can help: 4xx other than 408/429
//! are [`EmbedError::InvalidInput`] (the request is wrong and will stay
//! wrong); 408, 429, 5xx, connection failures, timeouts and malformed
//! answers are [`EmbedError::Runtime`].

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::time::Duration;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

#[derive(Debug, Clone, PartialEq)]
pub enum EmbedError {
    /// Not worth retrying: the provider rejected the request.
    InvalidInput(String),
    /// Worth retrying: the provider is down, overloaded or unreachable.
    Runtime(String),
}

impl std::fmt::Display for EmbedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmbedError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            EmbedError::Runtime(m) => write!(f, "runtime error: {m}"),
        }
    }
}

pub struct OpenAiEmbedder {
    endpoint: hyper::Uri,
    model: String,
    api_key: Option<String>,
    timeout: Duration,
    max_batch: usize,
    client: Client<Https, Full<Bytes>>,
}

/// `base` as the embeddings URL: a URL with no path gets `/v1/embeddings`.
fn endpoint_url(base: &str) -> Result<hyper::Uri> {
    let uri: hyper::Uri = base.parse().with_context(|| format!("embedder URL '{base}'"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => bail!("embedder URL '{base}' must be http:// or https://"),
    }
    if uri.path() == "/" || uri.path().is_empty() {
        let s = format!("{}/v1/embeddings", base.trim_end_matches('/'));
        return s.parse().with_context(|| format!("embedder URL '{s}'"));
    }
    Ok(uri)
}

impl OpenAiEmbedder {
    pub fn new(endpoint: &str, model: &str, api_key: Option<String>, timeout: Duration) -> Result<OpenAiEmbedder> {
        let endpoint = endpoint_url(endpoint)?;
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(8).build(https);
        Ok(OpenAiEmbedder { endpoint, model: model.to_string(), api_key, timeout, max_batch: 64, client })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// One vector per text, in order.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.max_batch.max(1)) {
            let vecs = tokio::time::timeout(self.timeout, self.request(batch)).await.map_err(|_| {
                EmbedError::Runtime(format!("embedder timed out after {} ms", self.timeout.as_millis()))
            })??;
            out.extend(vecs);
        }
        if let Some(first) = out.first()
            && out.iter().any(|v| v.len() != first.len())
        {
            return Err(EmbedError::Runtime("embedder returned vectors of different dimensions".into()));
        }
        Ok(out)
    }

    async fn request(&self, batch: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = json!({"model": self.model, "input": batch}).to_string();
        let mut req = hyper::Request::post(self.endpoint.clone()).header("content-type", "application/json");
        if let Some(k) = &self.api_key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| EmbedError::Runtime(e.to_string()))?;
        let resp =
            self.client.request(req).await.map_err(|e| EmbedError::Runtime(format!("embedder unreachable: {e}")))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| EmbedError::Runtime(format!("reading the embedder's answer: {e}")))?
            .to_bytes();
        if status != 200 {
            let text: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
            let msg = format!("embedder answered {status}: {text}");
            return Err(if (400..500).contains(&status) && status != 408 && status != 429 {
                EmbedError::InvalidInput(msg)
            } else {
                EmbedError::Runtime(msg)
            });
        }
        parse_answer(&bytes, batch.len())
    }
}

/// The vectors of an answer, in input order.
fn parse_answer(bytes: &[u8], want: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    let bad = |m: &str| EmbedError::Runtime(format!("malformed embedder answer: {m}"));
    let v: Value = serde_json::from_slice(bytes).map_err(|_| bad("not JSON"))?;
    let data = v.get("data").and_then(Value::as_array).ok_or_else(|| bad("no data array"))?;
    if data.len() != want {
        return Err(bad(&format!("{} vectors for {want} inputs", data.len())));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; want];
    for (pos, item) in data.iter().enumerate() {
        let idx = item.get("index").and_then(Value::as_u64).map(|i| i as usize).unwrap_or(pos);
        let emb = item.get("embedding").and_then(Value::as_array).ok_or_else(|| bad("an item has no embedding"))?;
        let vec: Option<Vec<f32>> = emb.iter().map(|x| x.as_f64().map(|f| f as f32)).collect();
        let vec = vec.ok_or_else(|| bad("an embedding has a non-number"))?;
        match slots.get_mut(idx) {
            Some(slot @ None) => *slot = Some(vec),
            _ => return Err(bad("duplicate or out-of-range index")),
        }
    }
    Ok(slots.into_iter().map(|s| s.expect("every index filled once")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-route server: answers each request with `reply(body, headers)`.
    async fn serve(
        reply: impl Fn(&Value, &str) -> (u16, String) + Send + Sync + 'static,
    ) -> (String, Arc<Mutex<usize>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(Mutex::new(0usize));
        let (reply, c) = (Arc::new(reply), count.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let (reply, c) = (reply.clone(), c.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 4096];
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            continue;
                        }
                        let body: Value = serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap_or(Value::Null);
                        buf.drain(..end + 4 + len);
                        *c.lock().unwrap() += 1;
                        let (status, text) = reply(&body, &head);
                        let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{text}", text.len());
                        if sock.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, count)
    }

    fn texts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("text {i}")).collect()
    }

    #[tokio::test]
    async fn batches_in_order_with_the_bearer_token() {
        let (url, count) = serve(|body, head| {
            assert!(head.to_ascii_lowercase().contains("authorization: bearer k1"));
            let inputs = body["input"].as_array().unwrap();
            // Reversed order: the client must sort by index.
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .rev()
                .map(|(i, t)| {
                    let n: f32 = t.as_str().unwrap().trim_start_matches("text ").parse().unwrap();
                    json!({"index": i, "embedding": [n, 1.0]})
                })
                .collect();
            (200, json!({"data": data, "usage": {"prompt_tokens": 1}}).to_string())
        })
        .await;
        let e = OpenAiEmbedder::new(&url, "m", Some("k1".into()), Duration::from_secs(5)).unwrap();
        let out = e.embed(&texts(150)).await.unwrap();
        assert_eq!(out.len(), 150);
        assert!(out.iter().enumerate().all(|(i, v)| v == &vec![i as f32, 1.0]));
        assert_eq!(*count.lock().unwrap(), 3);
    }

    #[tokio::test]
    async fn errors_say_whether_to_retry() {
        for (status, retry) in [(400, false), (422, false), (429, true), (503, true), (408, true)] {
            let (url, _) = serve(move |_, _| (status, "{\"error\":\"x\"}".into())).await;
            let e = OpenAiEmbedder::new(&url, "m", None, Duration::from_secs(5)).unwrap();
            let err = e.embed(&texts(1)).await.unwrap_err();
            assert_eq!(matches!(err, EmbedError::Runtime(_)), retry, "{status}: {err}");
        }
        let (url, _) = serve(|_, _| (200, "{\"data\": 5}".into())).await;
        let e = OpenAiEmbedder::new(&url, "m", None, Duration::from_secs(5)).unwrap();
        assert!(matches!(e.embed(&texts(2)).await, Err(EmbedError::Runtime(_))));
        // Nothing listens on a just-freed port.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = OpenAiEmbedder::new(&format!("http://127.0.0.1:{port}"), "m", None, Duration::from_secs(5)).unwrap();
        assert!(matches!(e.embed(&texts(1)).await, Err(EmbedError::Runtime(_))));
    }

    #[test]
    fn endpoint_urls() {
        assert_eq!(endpoint_url("http://h:1").unwrap().to_string(), "http://h:1/v1/embeddings");
        assert_eq!(endpoint_url("https://h/x/embeddings").unwrap().path(), "/x/embeddings");
        assert!(endpoint_url("ftp://h").is_err());
    }
}
