//! A raw SigV4-signed requester, for requests an SDK refuses to send.

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::SystemTime;

/// A parsed response.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// Body parsed as JSON (Null if not JSON).
    pub json: serde_json::Value,
    /// Raw body.
    pub raw: Bytes,
}

impl Reply {
    /// The `__type` of an error body.
    pub fn code(&self) -> &str {
        self.json["__type"].as_str().unwrap_or("")
    }
    /// The error message.
    pub fn message(&self) -> &str {
        self.json["message"]
            .as_str()
            .or_else(|| self.json["Message"].as_str())
            .unwrap_or("")
    }
}

/// Signs and sends AWS JSON 1.1 requests with a fixed identity.
pub struct Raw {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// Access key id.
    pub akid: String,
    /// Secret access key.
    pub secret: String,
    /// Region in the credential scope.
    pub region: String,
}

/// Send a prepared request.
pub async fn send(req: http::Request<Full<Bytes>>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let resp = client.request(req).await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null);
    Reply {
        status,
        headers,
        json,
        raw,
    }
}

impl Raw {
    /// A requester for `endpoint` with this key.
    pub fn new(endpoint: &str, akid: &str, secret: &str) -> Raw {
        Raw {
            endpoint: endpoint.into(),
            akid: akid.into(),
            secret: secret.into(),
            region: "us-east-1".into(),
        }
    }

    fn host(&self) -> String {
        self.endpoint.trim_start_matches("http://").to_string()
    }

    /// Build a signed request for `target` with `body`, signed at `time`, with extra headers.
    pub fn signed_at(
        &self,
        target: &str,
        body: &[u8],
        time: SystemTime,
        extra: &[(&str, &str)],
    ) -> http::Request<Full<Bytes>> {
        let host = self.host();
        let target = format!("secretsmanager.{target}");
        let mut pairs: Vec<(&str, &str)> = vec![
            ("host", &host),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", &target),
        ];
        pairs.extend_from_slice(extra);
        let identity =
            aws_credential_types::Credentials::new(&self.akid, &self.secret, None, None, "raw")
                .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("secretsmanager")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .expect("params")
            .into();
        let signable = SignableRequest::new(
            "POST",
            format!("{}/", self.endpoint),
            pairs.iter().copied(),
            SignableBody::Bytes(body),
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        let mut builder = http::Request::builder()
            .method("POST")
            .uri(format!("{}/", self.endpoint));
        for (k, v) in &pairs {
            builder = builder.header(*k, *v);
        }
        for (k, v) in instructions.headers() {
            builder = builder.header(k, v);
        }
        builder
            .body(Full::new(Bytes::copy_from_slice(body)))
            .expect("request")
    }

    /// Sign now and send.
    pub async fn call(&self, target: &str, body: &str) -> Reply {
        send(self.signed_at(target, body.as_bytes(), SystemTime::now(), &[])).await
    }

    /// Sign now and send a JSON value.
    pub async fn call_json(&self, target: &str, body: serde_json::Value) -> Reply {
        self.call(target, &body.to_string()).await
    }
}
