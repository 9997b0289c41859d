//! The AWS SDK clients, built once from the standard environment
//! (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_<SERVICE>`), with timeouts short enough for a Lambda
//! invocation. Nothing else in the relay builds a client.

use std::time::Duration;

/// The clients the relay uses.
#[derive(Debug, Clone)]
pub struct Clients {
    /// SQS: the fallback queue.
    pub sqs: aws_sdk_sqs::Client,
    /// S3: transform modules and claim checks.
    pub s3: aws_sdk_s3::Client,
    /// DynamoDB: the parked-items registry.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// What the clients are built from, for the sinks' own clients.
    pub shared: aws_config::SdkConfig,
}

impl Clients {
    /// Builds every client from one shared configuration (no network call).
    pub async fn from_env() -> Clients {
        let shared = shared().await;
        Clients {
            sqs: aws_sdk_sqs::Client::new(&shared),
            s3: s3_client(&shared),
            dynamodb: aws_sdk_dynamodb::Client::new(&shared),
            shared,
        }
    }
}

/// The DynamoDB Streams client (for `relay poll`).
pub async fn streams_client() -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::new(&shared().await)
}

async fn shared() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(12))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await
}

/// The S3 client. With a custom endpoint (`AWS_ENDPOINT_URL_S3` or
/// `AWS_ENDPOINT_URL` set, e.g. moto, MinIO or LocalStack) requests use
/// path-style addressing (`http://host:port/bucket/key`): the default
/// virtual-hosted style puts the bucket in the host name
/// (`bucket.127.0.0.1`), which such endpoints cannot serve. Real S3 keeps
/// the default.
fn s3_client(shared: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    let config = aws_sdk_s3::config::Builder::from(shared)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

pub use aws_config::SdkConfig;

// Sinks' clients are built from the shared configuration with the SDK's
// own retries off: the sinks' retry driver (`sinks::rounds`) retries,
// counts the attempts and bounds each call by the time left.

/// The EventBridge client of an EventBridge sink (SDK retries off).
pub fn eventbridge_client(shared: &SdkConfig) -> aws_sdk_eventbridge::Client {
    let config = aws_sdk_eventbridge::config::Builder::from(shared)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_eventbridge::Client::from_conf(config)
}

/// The Kinesis client of a Kinesis sink (SDK retries off).
pub fn kinesis_client(shared: &SdkConfig) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::config::Builder::from(shared)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

/// The SNS client of an SNS sink (SDK retries off).
pub fn sns_client(shared: &SdkConfig) -> aws_sdk_sns::Client {
    let config = aws_sdk_sns::config::Builder::from(shared)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sns::Client::from_conf(config)
}

/// A configuration for a local endpoint (a fake or an emulator, in tests and
/// benchmarks): fixed test credentials, region `eu-central-1`, every service
/// at `endpoint`.
pub fn local_config(endpoint: &str) -> SdkConfig {
    let credentials = aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "local");
    SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-central-1"))
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
            credentials,
        ))
        .endpoint_url(endpoint)
        .build()
}

/// A configuration for unit tests: no region, credentials or network call.
#[cfg(test)]
pub(crate) fn offline_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_clients_leave_retries_to_the_driver() {
        let shared = offline_config();
        let disabled = aws_config::retry::RetryConfig::disabled();
        assert_eq!(
            eventbridge_client(&shared).config().retry_config(),
            Some(&disabled)
        );
        assert_eq!(
            kinesis_client(&shared).config().retry_config(),
            Some(&disabled)
        );
        assert_eq!(sns_client(&shared).config().retry_config(), Some(&disabled));
    }
}
