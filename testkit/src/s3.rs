//! `MotoS3`: synchronous S3 helpers (buckets, objects) against a [`Moto`]
//! server, through the SDK with path-style addressing, as the relay talks
//! to moto.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;

use crate::moto::Moto;

/// An S3 client for one moto server, with a private runtime.
pub struct MotoS3 {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
}

impl MotoS3 {
    /// A client for `moto` (region us-east-1, credentials test/test,
    /// path-style: moto cannot serve `bucket.127.0.0.1`).
    pub fn new(moto: &Moto) -> MotoS3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("MotoS3: build a tokio runtime");
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .endpoint_url(moto.endpoint())
            .force_path_style(true)
            .build();
        MotoS3 {
            runtime,
            client: aws_sdk_s3::Client::from_conf(config),
        }
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        self.runtime
            .block_on(self.client.create_bucket().bucket(bucket).send())
            .unwrap_or_else(|e| panic!("MotoS3: create bucket {bucket}: {e:?}"));
    }

    /// Uploads `bytes` as `s3://bucket/key`.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        self.runtime
            .block_on(
                self.client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(ByteStream::from(bytes.to_vec()))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("MotoS3: put s3://{bucket}/{key}: {e:?}"));
    }

    /// Deletes `s3://bucket/key`.
    pub fn delete(&self, bucket: &str, key: &str) {
        self.runtime
            .block_on(self.client.delete_object().bucket(bucket).key(key).send())
            .unwrap_or_else(|e| panic!("MotoS3: delete s3://{bucket}/{key}: {e:?}"));
    }

    /// The keys under `prefix` in `bucket`.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self
            .runtime
            .block_on(
                self.client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("MotoS3: list s3://{bucket}/{prefix}: {e:?}"));
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }
}
