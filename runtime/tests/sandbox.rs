//! The transform sandbox, in pairs: each limit obeyed, then violated.
//!
//! The `hostile` guest (tests/guests/hostile) misbehaves on request: its
//! settings, or a record's `mode` attribute, pick what it does.

mod support;

use std::sync::Arc;

use relay::transform::{
    Limits, LoadError, TransformEngine, TransformErrorKind, TransformInstance, TransformModule,
};
use relay_sdk::{Operation, Record};
use serde_json::json;

fn engine() -> &'static TransformEngine {
    static ENGINE: std::sync::OnceLock<TransformEngine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| TransformEngine::new().expect("engine"))
}

fn hostile() -> Arc<TransformModule> {
    engine()
        .load(&support::guest("hostile"))
        .expect("hostile guest loads")
}

fn instance(limits: Limits) -> TransformInstance {
    hostile()
        .instantiate(r#"{"mode":"ok"}"#, limits)
        .expect("hostile guest accepts its settings")
}

fn record(mode: &str) -> Record {
    Record {
        sequence_number: "4200000000000000000001".into(),
        ..relay_sdk::testing::record(
            Operation::Insert,
            json!({"order_number": "ORD-1"}),
            None,
            Some(json!({"order_number": "ORD-1", "mode": mode})),
        )
    }
}

fn fails_with(instance: &mut TransformInstance, mode: &str) -> TransformErrorKind {
    let err = instance
        .transform(&record(mode))
        .expect_err("the transform must fail");
    assert_eq!(err.module, "hostile");
    assert_eq!(err.sequence_number, "4200000000000000000001");
    assert!(
        err.to_string().contains("hostile") && err.to_string().contains("4200000000000000000001"),
        "the message names module and record: {err}"
    );
    err.kind
}

#[test]
fn well_behaved_record_produces_its_event() {
    let mut instance = instance(Limits::default());
    let events = instance.transform(&record("ok")).expect("ok mode succeeds");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "hostile.ok");
    let body: serde_json::Value = serde_json::from_str(events[0].body.get()).unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(body["metadata"]["eid"], relay_sdk::eid(&record("ok"), 0));
}

#[test]
fn infinite_loop_stops_at_the_cpu_budget() {
    let limits = Limits {
        cpu_budget_ms: 30,
        ..Limits::default()
    };
    let mut instance = instance(limits);
    // Obeyed: a normal record fits the same small budget.
    instance.transform(&record("ok")).expect("ok within budget");
    // Violated.
    let kind = fails_with(&mut instance, "loop");
    assert_eq!(kind, TransformErrorKind::Timeout { budget_ms: 30 });
    // The trapped instance is rebuilt for the next record.
    instance
        .transform(&record("ok"))
        .expect("the instance recovers after a timeout");
}

#[test]
fn memory_bomb_hits_the_cap() {
    let mut roomy = instance(Limits {
        memory_bytes: 32 << 20,
        ..Limits::default()
    });
    roomy
        .transform(&record("alloc-small"))
        .expect("4 MiB fits a 32 MiB cap");
    let kind = fails_with(&mut roomy, "alloc");
    assert_eq!(
        kind,
        TransformErrorKind::OutOfMemory {
            cap_bytes: 32 << 20
        }
    );

    let mut tight = instance(Limits {
        memory_bytes: 3 << 20,
        ..Limits::default()
    });
    let kind = fails_with(&mut tight, "alloc-small");
    assert_eq!(kind, TransformErrorKind::OutOfMemory { cap_bytes: 3 << 20 });
    tight
        .transform(&record("ok"))
        .expect("the instance recovers after running out of memory");
}

#[test]
fn huge_output_is_rejected() {
    // Building 20 MiB takes a while; this pair is about the output cap.
    let cpu_budget_ms = 20_000;
    let mut generous = instance(Limits {
        cpu_budget_ms,
        memory_bytes: 128 << 20,
        max_output_bytes: 32 << 20,
        ..Limits::default()
    });
    let events = generous
        .transform(&record("huge"))
        .expect("20 MiB passes a 32 MiB output cap");
    assert!(events[0].body.get().len() > 20 << 20);

    let mut capped = instance(Limits {
        cpu_budget_ms,
        memory_bytes: 128 << 20,
        ..Limits::default()
    });
    let kind = fails_with(&mut capped, "huge");
    assert!(
        matches!(kind, TransformErrorKind::OutputTooLarge(ref m) if m.contains("bytes")),
        "{kind:?}"
    );
}

#[test]
fn too_many_events_are_rejected() {
    let cpu_budget_ms = 20_000;
    let mut generous = instance(Limits {
        cpu_budget_ms,
        max_events: 200_000,
        max_output_bytes: 64 << 20,
        ..Limits::default()
    });
    let events = generous.transform(&record("many")).expect("under the cap");
    assert_eq!(events.len(), 100_000);

    let mut capped = instance(Limits {
        cpu_budget_ms,
        ..Limits::default()
    });
    let kind = fails_with(&mut capped, "many");
    assert!(
        matches!(kind, TransformErrorKind::OutputTooLarge(ref m) if m.contains("100000 events")),
        "{kind:?}"
    );
}

#[test]
fn guest_cannot_read_files_clock_or_environment() {
    let mut instance = instance(Limits::default());
    for mode in ["read-file", "clock", "env"] {
        let kind = fails_with(&mut instance, mode);
        match kind {
            TransformErrorKind::Trap(reason) => assert!(
                reason.contains("granted no files"),
                "{mode}: the trap explains the missing capability: {reason}"
            ),
            other => panic!("{mode}: expected a trap, got {other:?}"),
        }
        // Obeyed: the same instance still maps a plain record.
        instance.transform(&record("ok")).expect("recovers");
    }
}

#[test]
fn guest_panic_is_a_trap_with_its_message() {
    let mut instance = instance(Limits::default());
    match fails_with(&mut instance, "panic") {
        TransformErrorKind::Trap(reason) => {
            assert!(reason.contains("hostile panic"), "{reason}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn malformed_event_body_is_rejected() {
    let mut instance = instance(Limits::default());
    let kind = fails_with(&mut instance, "garbage");
    assert!(
        matches!(kind, TransformErrorKind::BadOutput(ref m) if m.contains("not JSON")),
        "{kind:?}"
    );
}

#[test]
fn guest_error_is_reported_as_such() {
    let mut instance = instance(Limits::default());
    let kind = fails_with(&mut instance, "error");
    assert_eq!(kind, TransformErrorKind::Guest("told to fail".into()));
}

#[test]
fn bad_settings_are_refused_at_start() {
    let err = hostile()
        .instantiate(r#"{"mode": 42}"#, Limits::default())
        .err()
        .expect("a number is not a mode");
    assert!(matches!(err, LoadError::Init { .. }), "{err:?}");
    assert!(err.to_string().contains("hostile"), "{err}");
}

#[test]
fn module_with_wrong_exports_is_refused_at_load() {
    // A valid component that implements nothing of the contract.
    let empty = wat::parse_str("(component)").expect("valid component text");
    let err = engine()
        .load_bytes("empty", &empty)
        .err()
        .expect("must be refused");
    assert!(matches!(err, LoadError::WrongShape { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("empty") && message.contains("relay:transform@0.1.0"),
        "{message}"
    );

    // Not WebAssembly at all.
    let err = engine()
        .load_bytes("text", b"hello")
        .err()
        .expect("must be refused");
    assert!(matches!(err, LoadError::Invalid { .. }), "{err:?}");
}

#[test]
fn precompiled_artifact_loads_and_behaves_like_the_component() {
    let wasm = std::fs::read(support::guest("hostile")).unwrap();
    let artifact = engine().precompile("hostile", &wasm).expect("precompiles");
    let module = Arc::new(engine().load_bytes("hostile", &artifact).expect("loads"));
    let mut instance = module
        .instantiate(r#"{"mode":"ok"}"#, Limits::default())
        .unwrap();
    assert_eq!(instance.transform(&record("ok")).unwrap().len(), 1);

    // An artifact from another engine configuration is a clean load error.
    let other = wasmtime::Engine::default();
    let foreign = other.precompile_component(&wasm).unwrap();
    let err = engine()
        .load_bytes("hostile", &foreign)
        .err()
        .expect("must be refused");
    assert!(matches!(err, LoadError::Invalid { .. }), "{err:?}");
}
