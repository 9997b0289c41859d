//! Hostile modules against the real `relay` binary, each in a fresh
//! process: every attack ends in its named error, the process serves the
//! next record, and its peak RSS stays under the Lambda function's memory
//! (`MemorySize` in deploy/template.yaml). Also: forged precompiled
//! artifacts (native code) are never loaded unless the user vouches for
//! them, and an event type cannot leave its URL path.
//!
//! The peak RSS of each run is printed (`cargo test --test hostile --
//! --nocapture` shows the table).

mod hostile_wat;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::stack::{insert, Stack, StackOptions};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relay-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The Lambda function's memory, from the template, in bytes.
fn function_memory() -> u64 {
    let template = std::fs::read_to_string(relay_testkit::fixture("deploy/template.yaml")).unwrap();
    let mib: u64 = template
        .lines()
        .find_map(|line| line.trim().strip_prefix("MemorySize:"))
        .expect("MemorySize in the template")
        .trim()
        .parse()
        .expect("MemorySize is a number");
    mib << 20
}

/// What a finished process left: exit code, output, peak RSS.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    peak_rss: u64,
}

/// Runs `relay args…` to the end and measures its peak RSS.
///
/// A child's `ru_maxrss` starts at the RSS of the process that forked it
/// (Linux carries the high-water mark over `exec`), so the relay is started
/// by a small Python process that forks, execs it and reports the child's
/// `wait4` usage, as `/usr/bin/time` does.
fn measured(args: &[&std::ffi::OsStr]) -> Run {
    const SPAWN: &str = "import os, sys\n\
        pid = os.fork()\n\
        if pid == 0:\n    os.execv(sys.argv[2], sys.argv[2:])\n\
        _, status, usage = os.wait4(pid, 0)\n\
        open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n\
        sys.exit(os.waitstatus_to_exitcode(status))\n";
    let python = relay_testkit::workspace().join(".venv/bin/python");
    let python = match python.exists() {
        true => python.into_os_string(),
        false => "python3".into(),
    };
    let report = std::env::temp_dir().join(format!(
        "relay-hostile-rss-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let out = Command::new(python)
        .args(["-c", SPAWN])
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_relay"))
        .args(args)
        .env("RELAY_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run python3 to start relay");
    let kib: u64 = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no RSS report ({e}): {}", text(&out.stderr)))
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_file(&report);
    Run {
        code: out.status.code(),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
        peak_rss: kib * 1024,
    }
}

fn relay() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_relay"));
    command.env("RELAY_LOG", "warn");
    command
}

/// A Lambda event: one record of table `orders` with these extra
/// attributes (the attack), then one of table `ok` (the next record).
fn attack_then_ok(extra: Value) -> Value {
    json!({"Records": [
        insert("orders", "100", "o-1", extra),
        insert("ok", "200", "o-2", json!({"mode": {"S": "ok"}})),
    ]})
}

/// One hostile module and what it must come to.
struct Case {
    name: &'static str,
    module: PathBuf,
    /// Extra image attributes of the attacking record.
    attack: Value,
    /// `relay test` options.
    options: &'static [&'static str],
    /// What stderr must say.
    says: &'static [&'static str],
    /// Its exit status: 1 (the attacking record failed, the next one
    /// mapped), 2 (refused at start, no record run) or 0 (nothing failed).
    exit: i32,
}

fn cases(dir: &Path) -> Vec<Case> {
    let rust = relay_testkit::guest("hostile");
    let mode = |m: &str| json!({"mode": {"S": m}});
    let wat = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let roomy: &[&str] = &["--cpu-budget-ms", "5000"];
    let mut cases = vec![
        Case {
            name: "rust: infinite loop",
            module: rust.clone(),
            attack: mode("loop"),
            options: &[],
            says: &["ran out of its CPU budget of 100 ms"],
            exit: 1,
        },
        Case {
            name: "rust: allocates forever",
            module: rust.clone(),
            attack: mode("alloc"),
            options: roomy,
            says: &["exhausted its memory cap of 33554432 bytes"],
            exit: 1,
        },
        Case {
            name: "rust: one 20 MiB event",
            module: rust.clone(),
            attack: mode("huge"),
            options: roomy,
            says: &["output is too large"],
            exit: 1,
        },
        Case {
            name: "rust: 100,000 events",
            module: rust.clone(),
            attack: mode("many"),
            options: roomy,
            says: &["output is too large"],
            exit: 1,
        },
        Case {
            name: "rust: panics",
            module: rust.clone(),
            attack: mode("panic"),
            options: &[],
            says: &["trapped", "hostile panic"],
            exit: 1,
        },
        Case {
            name: "rust: reads /etc/passwd",
            module: rust.clone(),
            attack: mode("read-file"),
            options: &[],
            says: &["granted no files"],
            exit: 1,
        },
        Case {
            name: "rust: event type a/../../admin?q=",
            module: rust.clone(),
            attack: json!({"mode": {"S": "event-type"}, "event_type": {"S": "a/../../admin?q="}}),
            options: &[],
            says: &["malformed event", "\"a/../../admin?q=\""],
            exit: 1,
        },
        Case {
            name: "rust: logs 100,000 lines of 4 KiB",
            module: rust.clone(),
            attack: json!({"mode": {"S": "log-flood"}, "lines": {"N": "100000"}}),
            options: roomy,
            says: &["logged more than its budget", "99996 lines"],
            exit: 0,
        },
    ];
    let wat_cases = [
        (
            "wat: 8 memories of 30 MiB",
            wat(
                "memories",
                hostile_wat::many_memories(8, hostile_wat::PAGES_30_MIB),
            ),
            "exhausted its memory cap",
            false,
        ),
        (
            "wat: 7 core instances of 30 MiB",
            wat(
                "instances",
                hostile_wat::many_instances(7, hostile_wat::PAGES_30_MIB),
            ),
            "exhausted its memory cap",
            false,
        ),
        (
            "wat: 20 memories",
            wat(
                "memories-20",
                hostile_wat::many_memories(20, hostile_wat::PAGES_30_MIB),
            ),
            "more than 8 linear memories",
            true,
        ),
        (
            "wat: 20 core instances of 30 MiB",
            wat(
                "instances-20",
                hostile_wat::many_instances(20, hostile_wat::PAGES_30_MIB),
            ),
            "more than 8 linear memories",
            true,
        ),
        (
            "wat: 40 core instances",
            wat("instances-40", hostile_wat::many_empty_instances(40)),
            "more than 32 core instances",
            true,
        ),
        (
            "wat: 50 tables",
            wat("tables-50", hostile_wat::many_tables(50, 100_000)),
            "more than 16 tables",
            true,
        ),
        (
            "wat: 4 tables of 2M elements",
            wat("tables", hostile_wat::many_tables(4, 2_000_000)),
            "exhausted its memory cap",
            false,
        ),
        (
            "wat: 64 MiB initial memory",
            wat("big", hostile_wat::big_initial_memory(1024)),
            "exhausted its memory cap",
            true,
        ),
        (
            "wat: 600 events naming one 1 MiB body",
            wat("aliased", hostile_wat::aliased_output(600, 1 << 20)),
            "output is too large",
            false,
        ),
        (
            "wat: 1,000,000 events",
            wat("million", hostile_wat::aliased_output(1_000_000, 8)),
            "output is too large",
            false,
        ),
    ];
    for (name, module, says, refused_at_start) in wat_cases {
        cases.push(Case {
            name,
            module,
            attack: json!({}),
            options: roomy,
            says: Vec::leak(vec![says]),
            exit: if refused_at_start { 3 } else { 1 },
        });
    }
    cases
}

#[test]
fn every_hostile_module_ends_in_its_named_error_within_the_functions_memory() {
    let dir = scratch("suite");
    let limit = function_memory();
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for case in cases(&dir) {
        let event = dir.join("event.json");
        std::fs::write(&event, attack_then_ok(case.attack.clone()).to_string()).unwrap();
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "test".as_ref(),
            "-t".as_ref(),
            case.module.as_os_str(),
            "-e".as_ref(),
            event.as_os_str(),
            "-s".as_ref(),
            r#"{"mode":"ok"}"#.as_ref(),
        ];
        args.extend(case.options.iter().map(std::ffi::OsStr::new));
        let run = measured(&args);
        let mut wrong = Vec::new();
        for says in case.says {
            if !run.stderr.contains(says) {
                wrong.push(format!("stderr lacks {says:?}"));
            }
        }
        if run.code != Some(case.exit) {
            wrong.push(format!("exit {:?}, not {}", run.code, case.exit));
        }
        if case.exit != 3 {
            // The next record is served.
            let next: Vec<Value> = run
                .stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if !next
                .iter()
                .any(|e| e["event_type"] == "hostile.ok" || e["event_type"] == "wat.ok")
            {
                wrong.push(format!("the next record was not served: {}", run.stdout));
            }
        }
        if run.stderr.len() > 64 << 10 {
            wrong.push(format!("{} bytes of log", run.stderr.len()));
        }
        if run.peak_rss >= limit {
            wrong.push(format!(
                "peak RSS {} MiB is not under the function's {} MiB",
                run.peak_rss >> 20,
                limit >> 20
            ));
        }
        table.push(format!(
            "{:<42} peak RSS {:>6.1} MiB  exit {:?}",
            case.name,
            run.peak_rss as f64 / (1 << 20) as f64,
            run.code
        ));
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}\n--- stderr (first 2 KiB):\n{}",
                case.name,
                wrong.join("; "),
                &run.stderr[..run.stderr.len().min(2048)]
            ));
        }
    }
    eprintln!(
        "peak RSS per hostile module (function memory {} MiB):\n{}",
        limit >> 20,
        table.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- Forged artifacts -------------------------------------------------

/// Instructions that end the process with exit status 42, and a no-op, for
/// this machine; `None` where the test does not know them.
fn exit_42() -> Option<(&'static [u8], &'static [u8])> {
    if cfg!(target_arch = "x86_64") {
        // nop; mov eax, 231 (exit_group); mov edi, 42; syscall
        Some((
            &[0x90],
            &[0xb8, 0xe7, 0, 0, 0, 0xbf, 42, 0, 0, 0, 0x0f, 0x05],
        ))
    } else if cfg!(target_arch = "aarch64") {
        // nop; mov x8, #94 (exit_group); mov x0, #42; svc #0
        Some((
            &[0x1f, 0x20, 0x03, 0xd5],
            &[
                0xc8, 0x0b, 0x80, 0xd2, 0x40, 0x05, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4,
            ],
        ))
    } else {
        None
    }
}

/// A `relay compile` artifact of data-change whose machine code was
/// replaced: a slide of no-ops into `exit_group(42)`, so whatever function
/// the relay enters ends the process. Its wasmtime metadata is intact, so
/// wasmtime accepts it: nothing in an artifact is verified.
fn forged_artifact(dir: &Path) -> Option<PathBuf> {
    let (nop, exit) = exit_42()?;
    let path = dir.join("data_change.cwasm");
    let out = relay()
        .args(["compile"])
        .arg(relay_testkit::guest("data-change"))
        .arg("-o")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut elf = std::fs::read(&path).unwrap();
    let (offset, size) = text_section(&elf).expect("the artifact has a .text section");
    let code = &mut elf[offset..offset + size];
    let end = size - exit.len();
    let slide = end - end % nop.len();
    for chunk in code[..slide].chunks_mut(nop.len()) {
        chunk.copy_from_slice(nop);
    }
    code[slide..slide + exit.len()].copy_from_slice(exit);
    std::fs::write(&path, &elf).unwrap();
    Some(path)
}

/// Offset and size of the `.text` section of a 64-bit little-endian ELF.
fn text_section(elf: &[u8]) -> Option<(usize, usize)> {
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    if !elf.starts_with(b"\x7fELF") || elf[4] != 2 || elf[5] != 1 {
        return None;
    }
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let names = u64_at(header(shstrndx) + 24);
    (0..shnum).find_map(|i| {
        let h = header(i);
        let name_at = names + u32_at(h);
        let name = &elf[name_at..name_at + elf[name_at..].iter().position(|&b| b == 0)?];
        (name == b".text").then(|| (u64_at(h + 24), u64_at(h + 32)))
    })
}

#[test]
fn a_forged_artifact_is_never_run_unless_the_user_vouches_for_it() {
    let dir = scratch("forged");
    let Some(forged) = forged_artifact(&dir) else {
        eprintln!("skipped: no exit_group(42) for this architecture");
        return;
    };
    let event = dir.join("event.json");
    std::fs::write(&event, attack_then_ok(json!({})).to_string()).unwrap();
    let test = |extra: &[&str]| {
        relay()
            .arg("test")
            .arg("-t")
            .arg(&forged)
            .arg("-e")
            .arg(&event)
            .args(["-s", r#"{"data_type":"x"}"#])
            .args(extra)
            .output()
            .unwrap()
    };
    // Violated (the reported attack): refused as what it is.
    let out = test(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is a precompiled artifact, not WebAssembly"),
        "{}",
        text(&out.stderr)
    );
    // What vouching for it means: its code runs natively, as the relay.
    let out = test(&["--trust-artifact"]);
    assert_eq!(
        out.status.code(),
        Some(42),
        "the forgery is real native code"
    );

    // In a configuration: an artifact outside the trusted folders is refused
    // by `relay check` (which would otherwise run its init), naming it.
    let config = dir.join("relay.toml");
    let write_config = |modules: &str| {
        std::fs::write(
            &config,
            format!(
                "{modules}\n[bus]\nurl = \"http://127.0.0.1:9\"\n\
                 [fallback]\nqueue_url = \"http://127.0.0.1:9/1/q\"\n\
                 [tables.orders]\nmodule = \"data_change.cwasm\"\n\
                 settings = {{ data_type = \"x\" }}\n"
            ),
        )
        .unwrap()
    };
    let check = || {
        relay()
            .args(["check", "--config"])
            .arg(&config)
            .env("RELAY_MODULE_CACHE", dir.join("cache"))
            .output()
            .unwrap()
    };
    write_config("");
    let out = check();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "invalid: table orders: transform module {} is a precompiled artifact",
            forged.display()
        )) && stdout.contains("trusted artifact folders: none"),
        "{stdout}{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_artifact_in_a_trusted_folder_loads_and_check_says_so() {
    let dir = scratch("trusted");
    let shipped = dir.join("shipped");
    std::fs::create_dir_all(&shipped).unwrap();
    let artifact = shipped.join("data_change.cwasm");
    let out = relay()
        .arg("compile")
        .arg(relay_testkit::guest("data-change"))
        .arg("-o")
        .arg(&artifact)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::copy(
        relay_testkit::guest("order-status"),
        dir.join("order_status.wasm"),
    )
    .unwrap();
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        "[modules]\ntrusted_artifact_dirs = [\"shipped\"]\n\
         [bus]\nurl = \"http://127.0.0.1:9\"\n\
         [fallback]\nqueue_url = \"http://127.0.0.1:9/1/q\"\n\
         [tables.orders]\nmodule = \"shipped/data_change.cwasm\"\n\
         settings = { data_type = \"x\" }\n\
         [tables.payments]\nmodule = \"order_status.wasm\"\n",
    )
    .unwrap();
    let cache = dir.join("cache");
    let check = || {
        relay()
            .args(["check", "--config"])
            .arg(&config)
            .env("RELAY_MODULE_CACHE", &cache)
            .output()
            .unwrap()
    };
    let out = check();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let shipped = shipped.canonicalize().unwrap();
    for line in [
        format!(
            "ok: table orders → {} (not pinned, sha256 ",
            artifact.display()
        ),
        format!(
            "precompiled artifact from the trusted folder {}; ready in",
            shipped.display()
        ),
        "ok: table payments → ".to_owned(),
        "compiled by the relay, cached at ".to_owned(),
        format!(
            "trusted artifact folders: {}",
            dir.join("shipped").display()
        ),
    ] {
        assert!(stdout.contains(&line), "{line:?} missing in:\n{stdout}");
    }
    // The second start finds the relay's own artifact of the .wasm.
    let out = check();
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("compiled by the relay earlier, loaded from its cache"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- Event types ------------------------------------------------------

#[test]
fn an_event_type_cannot_leave_its_url_path() {
    let mut stack = Stack::start(
        "event-type",
        StackOptions {
            orders_module: "hostile",
            orders_settings: r#"{ mode = "ok" }"#,
            ..StackOptions::default()
        },
    );
    let batch = json!({"Records": [
        insert("orders", "100", "o-1", json!({
            "mode": {"S": "event-type"},
            "event_type": {"S": "a/../../admin?q="}
        })),
        insert("orders", "200", "o-2", json!({})),
    ]});
    let response = stack
        .invoke(&batch, Duration::from_secs(60))
        .expect("the invocation ends");
    assert_eq!(
        response,
        json!({"batchItemFailures": []}),
        "{}",
        stack.log()
    );
    // Only the good record reached the bus, on its event type's path.
    let requests = stack.nakadi.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(request.event_type, "hostile.ok", "{requests:?}");
    }
    // The bad one is parked with the reason, as the record's transform error.
    let parked = stack.parked();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0]["kind"], "record");
    assert_eq!(parked[0]["sequence_number"], "100");
    let reason = parked[0]["last_error"].as_str().unwrap();
    assert!(
        reason.contains("transform hostile failed on record 100")
            && reason.contains("event 0 has the event type \"a/../../admin?q=\""),
        "{reason}"
    );
}

/// `relay compile --artifact-dir` ships artifacts next to the `.wasm` the
/// config names: a relay of the same build loads them instead of compiling;
/// one made for another machine (aarch64 here, as for Lambda on Graviton)
/// or damaged is passed over with a warning and the `.wasm` is compiled,
/// so a mismatched layer costs time, never the function.
#[test]
fn shipped_artifacts_are_used_for_their_wasm_and_passed_over_when_they_do_not_load() {
    let dir = scratch("shipped-for-wasm");
    let artifacts = dir.join("artifacts");
    for module in ["data-change", "order-status"] {
        std::fs::copy(
            relay_testkit::guest(module),
            dir.join(format!("{}.wasm", module.replace('-', "_"))),
        )
        .unwrap();
    }
    let compile = |target: Option<&str>, out: &Path| {
        let mut command = relay();
        command
            .arg("compile")
            .arg(dir.join("data_change.wasm"))
            .arg(dir.join("order_status.wasm"));
        command.arg("--artifact-dir").arg(out);
        if let Some(triple) = target {
            command.args(["--target", triple]);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    compile(None, &artifacts);
    // The same modules for arm64, in a folder of their own.
    let arm = dir.join("arm64");
    let said = compile(Some("aarch64-unknown-linux-gnu"), &arm);
    assert!(said.contains("for aarch64"), "{said}");
    let sha = |module: &str| {
        use sha2::Digest as _;
        let bytes = std::fs::read(dir.join(module)).unwrap();
        format!("{:x}", sha2::Sha256::digest(bytes))
    };
    let arm_artifact = arm.join(format!("{}-aarch64.cwasm", sha("data_change.wasm")));
    let elf = std::fs::read(&arm_artifact).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "an ELF object");
    assert_eq!(
        u16::from_le_bytes([elf[18], elf[19]]),
        183,
        "for EM_AARCH64"
    );

    let arch = std::env::consts::ARCH;
    let own = artifacts.join(format!("{}-{arch}.cwasm", sha("data_change.wasm")));
    assert!(own.is_file(), "named by the .wasm's digest and the machine");
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        "[modules]\ntrusted_artifact_dirs = [\"artifacts\"]\n\
         [bus]\nurl = \"http://127.0.0.1:9\"\n\
         [fallback]\nqueue_url = \"http://127.0.0.1:9/1/q\"\n\
         [tables.orders]\nmodule = \"data_change.wasm\"\n\
         [tables.payments]\nmodule = \"order_status.wasm\"\n",
    )
    .unwrap();
    let cache = dir.join("cache");
    let check = || {
        let out = relay()
            .args(["check", "--config"])
            .arg(&config)
            .env("RELAY_MODULE_CACHE", &cache)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        (text(&out.stdout), text(&out.stderr))
    };
    let (stdout, _) = check();
    let trusted = artifacts.canonicalize().unwrap();
    assert_eq!(
        stdout
            .matches(&format!(
                "precompiled artifact from the trusted folder {}",
                trusted.display()
            ))
            .count(),
        2,
        "both .wasm modules load their shipped artifacts:\n{stdout}"
    );
    assert!(
        !cache.exists() || std::fs::read_dir(&cache).unwrap().next().is_none(),
        "nothing compiled"
    );

    // An artifact for another machine under this machine's name, and one
    // cut short: both passed over, both modules compiled instead.
    let other = artifacts.join(format!("{}-{arch}.cwasm", sha("order_status.wasm")));
    std::fs::copy(&arm_artifact, &own).unwrap();
    let bytes = std::fs::read(&other).unwrap();
    std::fs::write(&other, &bytes[..bytes.len() / 2]).unwrap();
    let (stdout, stderr) = check();
    assert_eq!(
        stdout.matches("compiled by the relay, cached at").count(),
        2,
        "{stdout}"
    );
    assert_eq!(
        stderr
            .matches("the shipped artifact does not load into this relay")
            .count(),
        2,
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
