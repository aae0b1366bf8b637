//! The S3 backend: AWS S3, Cloudflare R2, MinIO or any S3-compatible server, through `aws-sdk-s3`.
//!
//! Objects below 8 MiB are one PUT; larger ones are multipart uploads that are aborted on any error, so nothing
//! partial is ever visible. Every request has a timeout. Credentials come from the configuration or the standard
//! AWS chain; they never appear in `Display`, `Debug` or errors.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region, timeout::TimeoutConfig};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};

use crate::ObjectStore;
use crate::error::{Error, Result};
use crate::key::ObjectKey;
use crate::types::{ByteStream, GetOptions, GetResult, ObjectMeta, PutMode, PutOptions, PutResult};

const BACKEND: &str = "s3";
/// Below this an object is one PUT; above, a multipart upload in parts of this size.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// How to reach a bucket.
#[derive(Clone, Default)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Region (`auto` for Cloudflare R2).
    pub region: String,
    /// Endpoint URL for R2, MinIO or another S3-compatible server; `None` for AWS.
    pub endpoint: Option<String>,
    /// Key prefix inside the bucket (`""` or ending in `/`).
    pub prefix: String,
    /// Path-style addressing (`http://host/bucket/key`), which most S3-compatible servers need.
    pub force_path_style: bool,
    /// Static credentials; `None` uses the standard AWS chain (environment, profile, instance role).
    pub access_key_id: Option<String>,
    /// Secret for `access_key_id`.
    pub secret_access_key: Option<String>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .field("force_path_style", &self.force_path_style)
            .field("credentials", &if self.access_key_id.is_some() { "static [redacted]" } else { "AWS chain" })
            .finish()
    }
}

/// Objects in an S3 bucket.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    /// Builds a client for the bucket. Nothing is sent until the first operation; use a probe (such as
    /// `updraft storage check`) to find configuration problems early.
    pub async fn connect(config: &S3Config) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(60))
            .build();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new(if config.region.is_empty() { "us-east-1".to_owned() } else { config.region.clone() }))
            .timeout_config(timeouts);
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            loader = loader.credentials_provider(Credentials::new(id, secret, None, None, "updraft-config"));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared).force_path_style(config.force_path_style);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        let prefix = match config.prefix.trim_matches('/') {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        };
        Self { client: Client::from_conf(builder.build()), bucket: config.bucket.clone(), prefix }
    }

    fn full_key(&self, key: &ObjectKey) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }
}

impl fmt::Display for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store").field("bucket", &self.bucket).field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// An S3 failure as text: the service's code and message, or the transport problem. Never includes request
/// signatures or credentials.
fn describe<E: ProvideErrorMetadata + std::fmt::Debug, R>(error: &SdkError<E, R>) -> String {
    match error {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            format!("{}: {}", inner.code().unwrap_or("error"), inner.message().unwrap_or("no message"))
        }
        SdkError::TimeoutError(_) => "request timed out".to_owned(),
        SdkError::DispatchFailure(failure) => {
            if failure.is_io() {
                "cannot connect to the S3 endpoint".to_owned()
            } else {
                "request could not be sent".to_owned()
            }
        }
        other => format!("{other}"),
    }
}

fn backend(message: String) -> Error {
    Error::Backend { backend: BACKEND, source: message.into() }
}

fn status_of<E, R: HttpStatus>(error: &SdkError<E, R>) -> Option<u16> {
    match error {
        SdkError::ServiceError(service) => Some(service.raw().status()),
        _ => None,
    }
}

/// The HTTP status of a raw S3 response.
trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &ObjectKey, mut body: ByteStream, options: PutOptions) -> Result<PutResult> {
        let full_key = self.full_key(key);
        // Read up to one part; a smaller object is a single PUT.
        let mut first = BytesMut::new();
        let mut exhausted = false;
        while first.len() < PART_SIZE {
            match body.next().await {
                Some(chunk) => {
                    first.extend_from_slice(&chunk.map_err(|e| backend(format!("reading the upload: {e}")))?)
                }
                None => {
                    exhausted = true;
                    break;
                }
            }
        }
        if exhausted {
            let size = first.len() as u64;
            let mut request = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&full_key)
                .body(S3Body::from(first.freeze()))
                .set_content_type(options.content_type.clone())
                .set_cache_control(options.cache_control.clone());
            if options.mode == PutMode::Create {
                request = request.if_none_match("*");
            }
            return match request.send().await {
                Ok(output) => Ok(PutResult { size, etag: output.e_tag().map(str::to_owned) }),
                Err(error) if status_of(&error) == Some(412) => Err(Error::AlreadyExists { key: key.to_string() }),
                Err(error) => Err(backend(format!("putting {key}: {}", describe(&error)))),
            };
        }
        if options.mode == PutMode::Create && self.head(key).await.is_ok() {
            return Err(Error::AlreadyExists { key: key.to_string() });
        }
        self.put_multipart(key, &full_key, first.freeze(), body, &options).await
    }

    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult> {
        let meta = self.head(key).await?;
        let span = match options.range {
            None => 0..meta.size,
            Some(range) => range
                .resolve(meta.size)
                .ok_or_else(|| Error::RangeNotSatisfiable { key: key.to_string(), size: meta.size })?,
        };
        let mut request = self.client.get_object().bucket(&self.bucket).key(self.full_key(key));
        if options.range.is_some() {
            request = request.range(format!("bytes={}-{}", span.start, span.end.saturating_sub(1)));
        }
        let output = match request.send().await {
            Ok(output) => output,
            Err(error) if status_of(&error) == Some(404) => return Err(Error::NotFound { key: key.to_string() }),
            Err(error) => return Err(backend(format!("getting {key}: {}", describe(&error)))),
        };
        let reader = output.body.into_async_read();
        let body = tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024).boxed();
        Ok(GetResult { meta, range: span, body })
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        match self.client.head_object().bucket(&self.bucket).key(self.full_key(key)).send().await {
            Ok(output) => Ok(ObjectMeta {
                key: key.to_string(),
                size: u64::try_from(output.content_length().unwrap_or(0)).unwrap_or(0),
                last_modified: output
                    .last_modified()
                    .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                    .unwrap_or_default(),
                etag: output.e_tag().map(str::to_owned),
                content_type: output.content_type().map(str::to_owned),
            }),
            Err(error) if status_of(&error) == Some(404) => Err(Error::NotFound { key: key.to_string() }),
            Err(error) => Err(backend(format!("reading metadata of {key}: {}", describe(&error)))),
        }
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        match self.client.delete_object().bucket(&self.bucket).key(self.full_key(key)).send().await {
            Ok(_) => Ok(()),
            Err(error) if status_of(&error) == Some(404) => Ok(()),
            Err(error) => Err(backend(format!("deleting {key}: {}", describe(&error)))),
        }
    }

    fn list(&self, prefix: Option<&ObjectKey>) -> BoxStream<'static, Result<ObjectMeta>> {
        let store_prefix = self.prefix.clone();
        let listing_prefix = format!("{store_prefix}{}", prefix.map(ObjectKey::as_str).unwrap_or_default());
        let pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(listing_prefix).into_paginator().send();
        stream::unfold(pages, |mut pages| async move { pages.next().await.map(|page| (page, pages)) })
            .flat_map(move |page| {
                let items: Vec<Result<ObjectMeta>> = match page {
                    Ok(page) => page
                        .contents()
                        .iter()
                        .filter_map(|object| {
                            let key = object.key()?.strip_prefix(store_prefix.as_str())?.to_owned();
                            Some(Ok(ObjectMeta {
                                key,
                                size: u64::try_from(object.size().unwrap_or(0)).unwrap_or(0),
                                last_modified: object
                                    .last_modified()
                                    .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                                    .unwrap_or_default(),
                                etag: object.e_tag().map(str::to_owned),
                                content_type: None,
                            }))
                        })
                        .collect(),
                    Err(error) => vec![Err(backend(format!("listing: {}", describe(&error))))],
                };
                stream::iter(items)
            })
            .boxed()
    }

    async fn presigned_get(&self, key: &ObjectKey, ttl: Duration) -> Result<Option<String>> {
        let config = PresigningConfig::expires_in(ttl).map_err(|e| backend(format!("presigning: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .presigned(config)
            .await
            .map_err(|e| backend(format!("presigning {key}: {}", describe(&e))))?;
        Ok(Some(request.uri().to_owned()))
    }

    async fn presigned_get_encoded(
        &self,
        key: &ObjectKey,
        ttl: Duration,
        content_encoding: &str,
    ) -> Result<Option<String>> {
        let config = PresigningConfig::expires_in(ttl).map_err(|e| backend(format!("presigning: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .response_content_encoding(content_encoding)
            .presigned(config)
            .await
            .map_err(|e| backend(format!("presigning {key}: {}", describe(&e))))?;
        Ok(Some(request.uri().to_owned()))
    }
}

impl S3Store {
    async fn put_multipart(
        &self,
        key: &ObjectKey,
        full_key: &str,
        first: Bytes,
        mut body: ByteStream,
        options: &PutOptions,
    ) -> Result<PutResult> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full_key)
            .set_content_type(options.content_type.clone())
            .set_cache_control(options.cache_control.clone())
            .send()
            .await
            .map_err(|e| backend(format!("starting the upload of {key}: {}", describe(&e))))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let uploaded = async {
            let mut parts = Vec::new();
            let mut size = 0u64;
            let mut pending = BytesMut::from(&first[..]);
            let mut done = false;
            loop {
                // Every part but the last is exactly PART_SIZE (S3 wants at least 5 MiB).
                while !done && pending.len() < PART_SIZE {
                    match body.next().await {
                        Some(chunk) => {
                            pending.extend_from_slice(&chunk.map_err(|e| backend(format!("reading the upload: {e}")))?)
                        }
                        None => done = true,
                    }
                }
                if pending.is_empty() {
                    break;
                }
                let part = pending.split_to(pending.len().min(PART_SIZE)).freeze();
                size += part.len() as u64;
                let number = i32::try_from(parts.len() + 1).unwrap_or(i32::MAX);
                let output = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(full_key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(S3Body::from(part))
                    .send()
                    .await
                    .map_err(|e| backend(format!("uploading part {number} of {key}: {}", describe(&e))))?;
                parts.push(
                    CompletedPart::builder().part_number(number).set_e_tag(output.e_tag().map(str::to_owned)).build(),
                );
                if done && pending.is_empty() {
                    break;
                }
            }
            let completed = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(full_key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(|e| backend(format!("completing the upload of {key}: {}", describe(&e))))?;
            Ok(PutResult { size, etag: completed.e_tag().map(str::to_owned) })
        }
        .await;
        if uploaded.is_err() {
            // Nothing partial stays behind, and the bucket is not billed for orphaned parts.
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(full_key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        uploaded
    }
}
