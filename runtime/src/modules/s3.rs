//! Fetching a module's bytes from S3.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;

/// GetObject, the whole body; on failure a readable reason and whether it
/// may pass by itself.
pub(super) async fn get_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, (String, bool)> {
    let output = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(describe)?;
    let body = output.body.collect().await.map_err(|e| {
        (
            format!("the download broke off: {}", DisplayErrorContext(&e)),
            true,
        )
    })?;
    Ok(body.into_bytes().to_vec())
}

fn describe(error: SdkError<GetObjectError>) -> (String, bool) {
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let err = service.err();
            let reason = match err {
                GetObjectError::NoSuchKey(_) => "the object does not exist (NoSuchKey)".to_owned(),
                _ => match (err.code(), err.message()) {
                    (Some("NoSuchBucket"), _) => "the bucket does not exist (NoSuchBucket)".into(),
                    (Some("AccessDenied"), _) => {
                        "access denied: the relay's role needs s3:GetObject on it (AccessDenied)"
                            .into()
                    }
                    (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
                    (Some(code), None) => format!("{code} (HTTP {status})"),
                    _ => format!("HTTP {status}: {}", DisplayErrorContext(&error)),
                },
            };
            let retriable = status >= 500 || status == 429 || err.code() == Some("SlowDown");
            (reason, retriable)
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => (
            format!("S3 did not answer: {}", DisplayErrorContext(&error)),
            true,
        ),
        _ => (DisplayErrorContext(&error).to_string(), false),
    }
}
