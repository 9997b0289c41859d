//! The Lambda entry point: set up once in the init phase, then run each
//! invocation through the pipeline and answer with a partial batch response.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::Mutex;
use tracing::Instrument as _;

use crate::config::Config;
use crate::pipeline::{InvocationStats, Relay};
use crate::redrive::RedriveOptions;

/// Runs the relay as a Lambda function until the runtime stops it.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let relay = super::start(&config).await?;
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "relay".into());
    tracing::info!(
        tables = config.tables.len(),
        init_ms = started.elapsed().as_millis() as u64,
        "relay ready"
    );
    let relay = Arc::new(Mutex::new(relay));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let relay = relay.clone();
        let function = function.clone();
        let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
        async move { invoke(&relay, &function, event).await }.instrument(span)
    }))
    .await
    .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
}

/// Whether an invocation asks for a re-drive: an EventBridge schedule, or
/// `{"relay": "redrive"}`.
fn is_redrive(payload: &RawValue) -> bool {
    #[derive(serde::Deserialize)]
    struct Ask {
        #[serde(rename = "detail-type")]
        detail_type: Option<String>,
        relay: Option<String>,
    }
    match serde_json::from_str::<Ask>(payload.get()) {
        Ok(ask) => {
            ask.detail_type.as_deref() == Some("Scheduled Event")
                || ask.relay.as_deref() == Some("redrive")
        }
        Err(_) => false,
    }
}

async fn invoke(
    relay: &Mutex<Relay>,
    function: &str,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Value, lambda_runtime::Error> {
    let left = event
        .context
        .deadline()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let deadline = Instant::now() + left;
    let mut relay = relay.lock().await;
    if is_redrive(&event.payload) {
        let options = RedriveOptions {
            // Leave time to delete and postpone what was received.
            time_budget: left.saturating_sub(Duration::from_secs(10)),
            ..RedriveOptions::default()
        };
        let summary = relay.redrive(&options).await?;
        return Ok(serde_json::to_value(summary)?);
    }
    let outcome = match relay
        .handle(&event.payload, deadline, &event.context.request_id)
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => {
            // Failing the invocation has Lambda deliver the whole batch again.
            tracing::error!("{e}");
            return Err(e.into());
        }
    };
    println!("{}", emf_line(function, &outcome.stats, crate::unix_ms()));
    outcome.stats.log_batch_done();
    Ok(serde_json::to_value(outcome.response)?)
}

/// One CloudWatch Embedded Metric Format line for an invocation.
pub fn emf_line(function: &str, stats: &InvocationStats, timestamp_ms: u64) -> String {
    let mut latencies: Vec<f64> = stats
        .publish
        .latencies
        .iter()
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let counts = [
        ("RecordsIn", stats.records_in),
        ("EventsPublished", stats.events_published),
        ("EventsParked", stats.events_parked),
        ("EventsHeld", stats.events_held),
        ("RecordsDeferred", stats.records_deferred),
        ("RecordsParked", stats.records_parked),
        ("RecordsFailed", stats.records_failed),
        ("TransformErrors", stats.transform_errors),
        ("DecodeErrors", stats.decode_errors),
        ("UnknownTable", stats.unknown_table),
        ("PublishAttempts", stats.publish.attempts as usize),
    ];
    let mut metrics: Vec<Value> = counts
        .iter()
        .map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"}))
        .collect();
    metrics.push(serde_json::json!({"Name": "PublishLatency", "Unit": "Milliseconds"}));
    metrics.push(serde_json::json!({"Name": "InvocationDuration", "Unit": "Milliseconds"}));
    metrics.push(serde_json::json!({"Name": "RegistryLookup", "Unit": "Milliseconds"}));
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Relay",
                "Dimensions": [["FunctionName"]],
                "Metrics": metrics,
            }],
        },
        "FunctionName": function,
        "PublishLatency": latencies,
        "InvocationDuration": stats.duration.as_secs_f64() * 1e3,
        "RegistryLookup": stats.registry_lookup.as_secs_f64() * 1e3,
    });
    for (name, value) in counts {
        line[name] = value.into();
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_declares_every_metric_it_carries() {
        let stats = InvocationStats {
            records_in: 3,
            events_published: 2,
            records_failed: 1,
            ..InvocationStats::default()
        };
        let line: Value = serde_json::from_str(&emf_line("relay-fn", &stats, 1_000)).unwrap();
        assert_eq!(line["FunctionName"], "relay-fn");
        let declared = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        for metric in declared {
            let name = metric["Name"].as_str().unwrap();
            assert!(line.get(name).is_some(), "{name} is declared but missing");
        }
        assert_eq!(line["RecordsIn"], 3);
        assert_eq!(line["RecordsFailed"], 1);
    }
}
