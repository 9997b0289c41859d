//! What a failed AWS call means for the whole request, shared by the AWS
//! sinks (EventBridge, Kinesis, SNS): throttling, server errors, timeouts
//! and broken connections are tried again; a request AWS refuses as such
//! (validation, access denied, a missing stream or topic) is final.
//!
//! The SDK's own retries are off in these sinks (each builds its client
//! with `RetryConfig::disabled()`): the shared driver retries and counts
//! attempts. `SdkError` is named through `aws_sdk_sns`; it is the same
//! smithy type in every service crate.

use std::error::Error;
use std::time::Duration;

use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};

use super::chain;
use super::rounds::BatchResult;

/// Error codes worth another try, whatever the service: throttling,
/// internal failures and unavailability, expired credentials (refreshed
/// by the provider), and KMS throttling or unavailability.
const RETRIABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "Throttled",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "ProvisionedThroughputExceededException",
    "InternalFailure",
    "InternalFailureException",
    "InternalException",
    "InternalError",
    "InternalErrorException",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "RequestTimeout",
    "RequestTimeoutException",
    "KMSThrottlingException",
    "KMSThrottling",
    "KMSUnavailableException",
];

/// Whether an AWS error code is worth another try: throttling, internal
/// failures, unavailability, expired credentials, KMS throttling.
pub fn retriable_code(code: &str) -> bool {
    RETRIABLE_CODES.contains(&code)
}

/// A failed AWS call, as far as retrying goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No answer within the time given.
    Timeout(Duration),
    /// The request could not be built: trying again cannot help.
    Construction(String),
    /// The request did not get through, or the answer broke off.
    Transport(String),
    /// AWS answered with an error.
    Service {
        /// The HTTP status.
        status: u16,
        /// The AWS error code, when the answer had one.
        code: Option<String>,
        /// The message (AWS's, or the SDK's description).
        message: String,
    },
}

impl Failure {
    /// Reads an SDK error.
    pub fn from_sdk<E>(error: &SdkError<E, HttpResponse>) -> Failure
    where
        E: ProvideErrorMetadata + Error + 'static,
    {
        match error {
            SdkError::ConstructionFailure(_) => Failure::Construction(chain(error)),
            SdkError::TimeoutError(_) => Failure::Timeout(Duration::ZERO),
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
                Failure::Transport(chain(error))
            }
            SdkError::ServiceError(service) => {
                let inner = service.err();
                Failure::Service {
                    status: service.raw().status().as_u16(),
                    code: inner.code().map(str::to_owned),
                    message: inner
                        .message()
                        .map(str::to_owned)
                        .unwrap_or_else(|| chain(inner)),
                }
            }
            _ => Failure::Transport(chain(error)),
        }
    }

    /// What the failure means for every event of the request; `service`
    /// names AWS's side in reasons ("EventBridge").
    pub fn classify(&self, service: &str) -> BatchResult {
        match self {
            Failure::Timeout(limit) => BatchResult::RetryAll(if limit.is_zero() {
                format!("{service} did not answer in time (the outcome is unknown; sent again)")
            } else {
                format!(
                    "{service} did not answer within {} ms (the outcome is unknown; sent again)",
                    limit.as_millis()
                )
            }),
            Failure::Construction(why) => {
                BatchResult::Final(format!("the {service} request could not be built: {why}"))
            }
            Failure::Transport(why) => {
                BatchResult::RetryAll(format!("cannot reach {service}: {why}"))
            }
            Failure::Service {
                status,
                code,
                message,
            } => {
                let code_text = code.as_deref().unwrap_or("no error code");
                let reason = format!("{service} answered {status} {code_text}: {message}");
                let retriable = code.as_deref().is_some_and(retriable_code)
                    || *status >= 500
                    || *status == 429
                    || *status == 408;
                if retriable {
                    BatchResult::RetryAll(reason)
                } else {
                    BatchResult::Final(reason)
                }
            }
        }
    }
}

/// Runs an AWS call within `timeout`, reading its error with
/// [`Failure::from_sdk`].
pub async fn within<T, E>(
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, Failure>
where
    E: ProvideErrorMetadata + Error + 'static,
{
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Err(Failure::Timeout(timeout)),
        Ok(Ok(output)) => Ok(output),
        Ok(Err(error)) => Err(Failure::from_sdk(&error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> Failure {
        Failure::Service {
            status,
            code: Some(code.into()),
            message: "m".into(),
        }
    }

    #[test]
    fn throttling_server_errors_and_timeouts_retry_everything() {
        for failure in [
            service(400, "ThrottlingException"),
            service(400, "ProvisionedThroughputExceededException"),
            service(400, "Throttled"),
            service(500, "InternalFailure"),
            service(503, "ServiceUnavailable"),
            service(502, "Whatever"),
            service(429, "Whatever"),
            service(400, "KMSThrottlingException"),
            Failure::Timeout(Duration::from_millis(5000)),
            Failure::Transport("connection refused".into()),
        ] {
            assert!(
                matches!(failure.classify("X"), BatchResult::RetryAll(_)),
                "{failure:?}"
            );
        }
    }

    #[test]
    fn refused_requests_are_final() {
        for failure in [
            service(400, "ValidationException"),
            service(400, "InvalidParameter"),
            service(403, "AccessDeniedException"),
            service(400, "ResourceNotFoundException"),
            service(404, "NotFound"),
            service(400, "KMSDisabledException"),
            Failure::Construction("no topic".into()),
        ] {
            assert!(
                matches!(failure.classify("X"), BatchResult::Final(_)),
                "{failure:?}"
            );
        }
        assert_eq!(
            service(400, "ValidationException").classify("Kinesis"),
            BatchResult::Final("Kinesis answered 400 ValidationException: m".into())
        );
    }

    #[test]
    fn sdk_errors_are_read() {
        let timeout: SdkError<aws_sdk_sns::operation::publish_batch::PublishBatchError> =
            SdkError::timeout_error("slow");
        assert_eq!(
            Failure::from_sdk(&timeout),
            Failure::Timeout(Duration::ZERO)
        );
        let construction: SdkError<aws_sdk_sns::operation::publish_batch::PublishBatchError> =
            SdkError::construction_failure("bad");
        assert!(matches!(
            Failure::from_sdk(&construction),
            Failure::Construction(_)
        ));
    }

    #[tokio::test]
    async fn a_call_past_its_timeout_is_a_timeout() {
        let result: Result<(), Failure> = within(
            Duration::from_millis(10),
            std::future::pending::<
                Result<(), SdkError<aws_sdk_sns::operation::publish_batch::PublishBatchError>>,
            >(),
        )
        .await;
        assert_eq!(result, Err(Failure::Timeout(Duration::from_millis(10))));
    }
}
