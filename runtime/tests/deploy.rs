//! The deployment template is valid CloudFormation/SAM (cfn-lint) and keeps
//! the settings the no-loss guarantee depends on.

use std::path::PathBuf;
use std::process::Command;

fn cfn_lint() -> PathBuf {
    let venv = relay_testkit::workspace().join(".venv/bin/cfn-lint");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/setup (scripts/test does)",
        venv.display()
    );
    venv
}

fn lint(path: &std::path::Path) -> std::process::Output {
    Command::new(cfn_lint())
        .arg(path)
        .output()
        .expect("run cfn-lint")
}

#[test]
fn template_passes_cfn_lint() {
    let template = relay_testkit::workspace().join("deploy/template.yaml");
    let out = lint(&template);
    assert!(
        out.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cfn_lint_catches_a_broken_template() {
    let template = std::fs::read_to_string(relay_testkit::workspace().join("deploy/template.yaml"))
        .expect("template");
    let broken = template.replace("MaximumMessageSize: 262144", "MaximumMessageSize: 99999999");
    assert_ne!(broken, template);
    let path = std::env::temp_dir().join(format!("relay-broken-{}.yaml", std::process::id()));
    std::fs::write(&path, broken).unwrap();
    let out = lint(&path);
    assert!(
        !out.status.success(),
        "a message size SQS does not allow must be refused"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("E3034"));
}

#[test]
fn template_keeps_what_no_loss_depends_on() {
    let template = std::fs::read_to_string(relay_testkit::workspace().join("deploy/template.yaml"))
        .expect("template");
    for needed in [
        "FunctionResponseTypes: [ReportBatchItemFailures]",
        "BisectBatchOnFunctionError: true",
        "Runtime: provided.al2023",
        "Architectures: [arm64]",
        "RELAY_FALLBACK_QUEUE_URL: !Ref FallbackQueue",
        "deadLetterTargetArn: !GetAtt FallbackDeadLetterQueue.Arn",
        "MessageRetentionPeriod: 1209600",
        "SqsManagedSseEnabled: true",
        "Input: '{\"relay\": \"redrive\"}'",
        "MetricName: IteratorAge",
        "MetricName: ApproximateNumberOfMessagesVisible",
        "RELAY_REGISTRY_TABLE: !Ref ParkedItemsTable",
        "RELAY_CLAIM_CHECK_BUCKET: !Ref ParkedPayloadsBucket",
        "Resource: !GetAtt ParkedItemsTable.Arn",
    ] {
        assert!(template.contains(needed), "the template lacks {needed}");
    }
}

#[test]
fn template_grants_s3_on_the_modules_and_parked_prefixes_only() {
    let template = std::fs::read_to_string(relay_testkit::workspace().join("deploy/template.yaml"))
        .expect("template");
    assert!(template.contains("Action: s3:GetObject"));
    assert!(template.contains(
        r#"Resource: !Sub "arn:${AWS::Partition}:s3:::${ModulesBucket}/${ModulesPrefix}*""#
    ));
    assert!(!template.contains("s3:*"), "no wildcard S3 actions");
    assert_eq!(
        template.matches("Action: s3:").count(),
        1,
        "modules are only read"
    );
    // Claim checks: write, read and delete, under the parked prefix only.
    assert!(template.contains(r#"Resource: !Sub "${ParkedPayloadsBucket.Arn}/relay/parked/*""#));
    assert_eq!(template.matches("- s3:").count(), 3, "Put, Get, Delete");
    assert!(
        !template.contains("dynamodb:*"),
        "no wildcard DynamoDB actions"
    );
}

#[test]
fn template_grants_each_sink_one_action_on_its_own_resource() {
    let template = std::fs::read_to_string(relay_testkit::workspace().join("deploy/template.yaml"))
        .expect("template");
    for (action, resource) in [
        ("events:PutEvents", "EventBusArn"),
        ("kinesis:PutRecords", "KinesisStreamArn"),
        ("sns:Publish", "SnsTopicArn"),
    ] {
        let grant = format!("Action: {action}\n                Resource: !Ref {resource}");
        assert!(template.contains(&grant), "the template lacks {grant}");
    }
    for wildcard in [
        "events:*",
        "kinesis:*",
        "sns:*",
        "Resource: \"*\"",
        "Resource: '*'",
    ] {
        assert!(!template.contains(wildcard), "no {wildcard}");
    }
    assert_eq!(template.matches("kinesis:").count(), 1, "PutRecords only");
}

/// The README's first command as a new user runs it, with the relay this
/// test build made (`RELAY_BIN`) instead of a release build, and no AWS
/// region in the environment (a fresh machine has none): every event of
/// the batch parked while the bus was down, and of the next changes of the
/// same items parked behind them, is republished by re-drive.
#[test]
fn the_demo_parks_and_redrives_every_event() {
    let said = demo(&[]);
    for line in [
        "20 records: 20 events published, 0 events parked",
        "20 records: 0 events published, 20 events parked (0 behind",
        "20 records: 0 events published, 20 events parked (20 behind earlier parked changes of their item)",
        "\"republished\":40",
        "\"duplicates\":0",
        "the bus now holds 60 events",
    ] {
        assert!(said.contains(line), "{line:?} missing in:\n{said}");
    }
}

/// The demo's documented variant: table orders fans out to EventBridge on
/// moto too. EventBridge keeps receiving while the bus is down (the first
/// two batches), the third batch is held at both sinks behind what is
/// parked for the bus, and re-drive sends each parked event to its own sink:
/// 60 events at each, none twice.
#[test]
fn the_demo_variant_fans_out_to_eventbridge_on_moto() {
    let said = demo(&[
        ("DEMO_EVENTBRIDGE", "1"),
        ("DEMO_OUT", "target/demo-eventbridge"),
    ]);
    for line in [
        // Each record's event goes to both sinks.
        "20 records: 40 events published, 0 events parked",
        // The bus is down: its 20 are parked, EventBridge takes its 20.
        "20 records: 20 events published, 20 events parked (0 behind",
        // Both sinks hold the items' next changes behind the parked ones.
        "20 records: 0 events published, 40 events parked (40 behind",
        "\"by_sink\":{\"nakadi\":40,\"orders-bus\":20}",
        "\"republished\":60",
        "\"duplicates\":0",
        "the bus now holds 60 events",
        "EventBridge delivered 60 events to orders-delivered (nothing twice: 60 eids)",
        "{\"source\": \"relay.demo\", \"detail-type\": \"payment-order.changed\"}",
    ] {
        assert!(said.contains(line), "{line:?} missing in:\n{said}");
    }
}

/// Runs `scripts/demo` as a new user would, with `env` on top; returns all
/// it said.
fn demo(env: &[(&str, &str)]) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(root.join("scripts/demo"))
        .current_dir(&root)
        .env("RELAY_BIN", env!("CARGO_BIN_EXE_relay"))
        .env("DEMO_RECORDS", "20")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ENDPOINT_URL")
        .envs(env.iter().copied())
        .output()
        .expect("run scripts/demo");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "scripts/demo failed:\n{said}");
    said
}
