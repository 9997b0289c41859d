//! The HTTP side: one POST of a batch of CloudEvents, with the configured
//! headers and the bearer token; redirects are never followed.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use super::classify::classify;
use super::envelope::BATCH_CONTENT_TYPE;
use super::HttpConfig;
use crate::sinks::chain;
use crate::sinks::rounds::BatchResult;
use crate::sinks::token::TokenFile;

/// A client for one endpoint.
pub struct HttpClient {
    http: reqwest::Client,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    token: Option<TokenFile>,
}

impl HttpClient {
    /// Builds the client (rustls, no proxies from the environment).
    pub fn new(config: &HttpConfig) -> Result<Self, reqwest::Error> {
        let http = crate::sinks::http_client()?;
        Ok(HttpClient {
            http,
            url: config.url.clone(),
            headers: config.headers.clone(),
            token: config.token_file.clone().map(TokenFile::new),
        })
    }

    /// Forgets the cached bearer token: the next request reads the token
    /// file again.
    pub fn forget_token(&self) {
        if let Some(token) = &self.token {
            token.forget();
        }
    }

    /// Posts `payload` (a JSON array of `count` CloudEvents).
    pub async fn post(&self, payload: Vec<u8>, count: usize, timeout: Duration) -> BatchResult {
        let mut request = self
            .http
            .post(&self.url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, BATCH_CONTENT_TYPE);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(token) = &self.token {
            match token.read() {
                Ok(token) => request = request.bearer_auth(token),
                Err(e) => return BatchResult::RetryAll(e),
            }
        }
        let response = match request.body(payload).send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return BatchResult::RetryAll(format!(
                    "no answer within {} ms (the outcome is unknown; resent with the same ids)",
                    timeout.as_millis()
                ))
            }
            Err(e) => {
                return BatchResult::RetryAll(format!("cannot reach the endpoint: {}", chain(&e)))
            }
        };
        let status = response.status().as_u16();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => {
                return BatchResult::RetryAll(format!(
                    "status {status} but the answer broke off: {}",
                    chain(&e)
                ))
            }
        };
        classify(status, &body, count)
    }
}
