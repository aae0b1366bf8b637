//! The CLI's client for the gateway's HTTP API: the key in `authorization`, and any refusal turned into one
//! readable error (status, code, message).

use anyhow::{Context, bail};
use serde_json::Value;

use crate::cli::ServerArgs;

/// A configured API client.
pub(crate) struct ApiClient {
    pub(crate) base: String,
    key: String,
    pub(crate) http: reqwest::Client,
}

impl ApiClient {
    /// Builds a client; fails when no key is given.
    pub(crate) fn new(server: &ServerArgs) -> anyhow::Result<Self> {
        let key = server
            .api_key
            .clone()
            .context("no API key: pass --api-key or set UPDRAFT_API_KEY (see `updraft apikey create`)")?;
        // A connection idle for longer than the gateway's keep-alive (`serve::KEEP_ALIVE`) may be closed by it just as
        // the next request goes out on it, which fails that request; reuse only recently used connections.
        let http = reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(1))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { base: server.server.trim_end_matches('/').to_owned(), key, http })
    }

    /// A request to `path` with the key.
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).header("authorization", &self.key)
    }

    /// Sends a request and returns the JSON answer, or one error line.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.send().await.with_context(|| format!("cannot reach the gateway at {}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message =
                body["message"].as_str().or_else(|| body["error"].as_str()).unwrap_or("no error message in the answer");
            let code = body["error"].as_str().unwrap_or("error");
            bail!("the gateway at {} refused the request ({status}, {code}): {message}", self.base);
        }
        Ok(body)
    }

    /// Sends a request and reads the answer as `T`.
    async fn send_as<T: serde::de::DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let answer = self.send(request).await?;
        serde_json::from_value(answer)
            .with_context(|| format!("the gateway at {} answered in a shape this CLI does not know", self.base))
    }

    /// POST a contract body; read a contract answer.
    pub(crate) async fn post<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send_as(self.request(reqwest::Method::POST, path).json(body)).await
    }

    /// DELETE with a contract body; read a contract answer.
    pub(crate) async fn delete<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send_as(self.request(reqwest::Method::DELETE, path).json(body)).await
    }

    /// GET; read a contract answer.
    pub(crate) async fn get_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send_as(self.request(reqwest::Method::GET, path)).await
    }

    /// GET with a query.
    pub(crate) async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        self.send(self.request(reqwest::Method::GET, path).query(query)).await
    }
}
