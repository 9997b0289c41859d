//! Hand-written hostile components, in WebAssembly text: what a module can
//! do that a Rust transform cannot easily express (many memories, many core
//! instances, table growth, one body handed over many times).
//!
//! Each implements the `relay:transform@0.1.0` world by hand (canonical ABI
//! included), so the relay loads it like any transform (0.2.0 only added an
//! import, which these do not use). A record of the
//! table `ok` gets one event `wat.ok` with body `{}`; any other record runs
//! the attack, which ends (if it is allowed to) by returning no events.
#![allow(dead_code)]

/// 30 MiB in wasm pages.
pub const PAGES_30_MIB: u32 = 480;

/// The component around a core module: `imports` are imports of the main
/// core module, `decls` extra declarations (memories, tables), `attack` the body of a
/// function `(result i32)` that returns the result area's address, `before`
/// component items placed before the main instance (other core modules and
/// instances) and `with` the main instance's `(with ...)` arguments.
pub fn component(imports: &str, decls: &str, attack: &str, before: &str, with: &str) -> Vec<u8> {
    let text = format!(
        r#"
(component
  {before}
  (core module $main
    {imports}
    (memory (export "memory") 1)
    {decls}
    (global $bump (mut i32) (i32.const 4096))
    ;; "wat.ok" at 512, "{{}}" at 518
    (data (i32.const 512) "wat.ok{{}}")

    ;; A bump allocator, for what the host hands over (settings, records).
    (func $realloc (export "realloc")
          (param $old i32) (param $old_size i32) (param $align i32) (param $size i32)
          (result i32)
      (local $p i32) (local $end i32) (local $have i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $p) (local.get $size)))
      (local.set $have (i32.shl (memory.size) (i32.const 16)))
      (if (i32.gt_u (local.get $end) (local.get $have))
        (then
          (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have))
                                                      (i32.const 16))
                                           (i32.const 1)))
                      (i32.const -1))
            (then unreachable))))
      (global.set $bump (local.get $end))
      (local.get $p))

    ;; init: result<_, transform-error> at 16, always ok.
    (func (export "init") (param i32 i32) (result i32)
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.const 16))

    ;; ok(list of no events) at 16.
    (func $none (result i32)
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 0))
      (i32.store (i32.const 24) (i32.const 0))
      (i32.const 16))

    (func $attack (result i32)
      {attack})

    ;; transform: the record is at $rec (table name: pointer at 0, length
    ;; at 4); result<list<event>, transform-error> at 16.
    (func (export "transform") (param $rec i32) (result i32)
      (local $out i32)
      (if (i32.eq (i32.load offset=4 (local.get $rec)) (i32.const 2))
        (then
          ;; one event at 528: type "wat.ok", body "{{}}", no key
          (i32.store (i32.const 528) (i32.const 512))
          (i32.store (i32.const 532) (i32.const 6))
          (i32.store (i32.const 536) (i32.const 518))
          (i32.store (i32.const 540) (i32.const 2))
          (i32.store8 (i32.const 544) (i32.const 0))
          (i32.store8 (i32.const 16) (i32.const 0))
          (i32.store (i32.const 20) (i32.const 528))
          (i32.store (i32.const 24) (i32.const 1))
          (global.set $bump (i32.const 4096))
          (return (i32.const 16))))
      (local.set $out (call $attack))
      (global.set $bump (i32.const 4096))
      (local.get $out))
  )
  (core instance $i (instantiate $main {with}))

  (type $operation (enum "insert" "modify" "remove"))
  (export $op "operation" (type $operation))
  (type $stream-record (record
    (field "table" string)
    (field "event-source-arn" string)
    (field "operation" $op)
    (field "keys" string)
    (field "old-image" (option string))
    (field "new-image" (option string))
    (field "sequence-number" string)
    (field "event-id" string)
    (field "approximate-creation-time-ms" (option u64))
    (field "ttl-delete" bool)))
  (export $rec "stream-record" (type $stream-record))
  (type $event (record (field "event-type" string) (field "body" string) (field "key" (option string))))
  (export $ev "event" (type $event))
  (type $transform-error (variant
    (case "invalid-record" string)
    (case "invalid-settings" string)
    (case "failed" string)))
  (export $err "transform-error" (type $transform-error))

  (func $init (param "settings" string) (result (result (error $err)))
    (canon lift (core func $i "init") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (export "init" (func $init))
  (func $transform (param "record" $rec) (result (result (list $ev) (error $err)))
    (canon lift (core func $i "transform") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (export "transform" (func $transform))
)
"#
    );
    wat::parse_str(&text).unwrap_or_else(|e| panic!("hostile component text: {e}\n{text}"))
}

/// Grows memory `memory` by `pages` (trapping if refused) and writes to every
/// byte of the new pages, so they are really used.
fn eat(memory: &str, pages: u32) -> String {
    format!(
        "(if (i32.eq (memory.grow {memory} (i32.const {pages})) (i32.const -1)) (then unreachable))
         (memory.fill {memory} (i32.const 0) (i32.const 90) (i32.const {bytes}))",
        bytes = pages << 16
    )
}

/// The component behaves: every record, whatever its table, is answered with
/// no events.
pub fn well_behaved() -> Vec<u8> {
    component("", "", "(call $none)", "", "")
}

/// `count` linear memories in one core instance (the main one and
/// `count - 1` more); the attack grows each extra one by `pages` and fills it.
pub fn many_memories(count: usize, pages: u32) -> Vec<u8> {
    let decls: String = (1..count).map(|k| format!("(memory $m{k} 0)\n")).collect();
    let attack: String = (1..count).map(|k| eat(&format!("$m{k}"), pages)).collect();
    component("", &decls, &format!("{attack}\n(call $none)"), "", "")
}

/// `count` more core instances, each with its own memory; the attack makes
/// each grow its memory by `pages` and fill it.
pub fn many_instances(count: usize, pages: u32) -> Vec<u8> {
    let bomb = format!(
        "(core module $bomb
           (memory 0)
           (func (export \"eat\") {}))",
        eat("0", pages)
    );
    let instances: String = (0..count)
        .map(|k| format!("(core instance $b{k} (instantiate $bomb))\n"))
        .collect();
    let imports: String = (0..count)
        .map(|k| format!("(import \"b{k}\" \"eat\" (func $eat{k}))\n"))
        .collect();
    let with: String = (0..count)
        .map(|k| format!("(with \"b{k}\" (instance $b{k}))"))
        .collect();
    let attack: String = (0..count).map(|k| format!("(call $eat{k})\n")).collect();
    component(
        &imports,
        "",
        &format!("{attack}\n(call $none)"),
        &format!("{bomb}\n{instances}"),
        &with,
    )
}

/// `count` more core instances of a module without memory or table.
pub fn many_empty_instances(count: usize) -> Vec<u8> {
    let instances: String = (0..count)
        .map(|k| format!("(core instance $e{k} (instantiate $empty))\n"))
        .collect();
    component(
        "",
        "",
        "(call $none)",
        &format!("(core module $empty (func (export \"nothing\")))\n{instances}"),
        "",
    )
}

/// `count` tables; the attack grows each by `elements` null references.
pub fn many_tables(count: usize, elements: u32) -> Vec<u8> {
    let decls: String = (0..count)
        .map(|k| format!("(table $t{k} 0 funcref)\n"))
        .collect();
    let attack: String = (0..count)
        .map(|k| {
            format!(
                "(if (i32.eq (table.grow $t{k} (ref.null func) (i32.const {elements})) (i32.const -1))
                   (then unreachable))\n"
            )
        })
        .collect();
    component("", &decls, &format!("{attack}\n(call $none)"), "", "")
}

/// A second memory declared with `pages` initial pages (never touched).
pub fn big_initial_memory(pages: u32) -> Vec<u8> {
    component(
        "",
        &format!("(memory $big {pages})"),
        "(call $none)",
        "",
        "",
    )
}

/// `events` events, each naming the same body of `body_bytes` bytes
/// (`{"a":"xxx…"}`) in the guest's memory: the guest spends `body_bytes` and
/// 28 bytes per event, a host that copied it all `events × body_bytes`.
pub fn aliased_output(events: u32, body_bytes: u32) -> Vec<u8> {
    let pages = (body_bytes + events * 28) / 65536 + 2;
    let attack = format!(
        "(local $base i32) (local $list i32) (local $i i32)
         (local.set $base (i32.shl (memory.grow (i32.const {pages})) (i32.const 16)))
         (if (i32.lt_s (local.get $base) (i32.const 0)) (then unreachable))
         ;; the body: {{\"a\":\"xxx…\"}}
         (memory.fill (local.get $base) (i32.const 120) (i32.const {body_bytes}))
         (i32.store8 (local.get $base) (i32.const 123))
         (i32.store8 offset=1 (local.get $base) (i32.const 34))
         (i32.store8 offset=2 (local.get $base) (i32.const 97))
         (i32.store8 offset=3 (local.get $base) (i32.const 34))
         (i32.store8 offset=4 (local.get $base) (i32.const 58))
         (i32.store8 offset=5 (local.get $base) (i32.const 34))
         (i32.store8 (i32.add (local.get $base) (i32.const {quote})) (i32.const 34))
         (i32.store8 (i32.add (local.get $base) (i32.const {brace})) (i32.const 125))
         ;; the list after it, every event naming the same body
         (local.set $list (i32.add (local.get $base) (i32.const {list_at})))
         (loop $each
           (i32.store (i32.add (local.get $list) (i32.mul (local.get $i) (i32.const 28))) (i32.const 512))
           (i32.store offset=4 (i32.add (local.get $list) (i32.mul (local.get $i) (i32.const 28))) (i32.const 6))
           (i32.store offset=8 (i32.add (local.get $list) (i32.mul (local.get $i) (i32.const 28))) (local.get $base))
           (i32.store offset=12 (i32.add (local.get $list) (i32.mul (local.get $i) (i32.const 28))) (i32.const {body_bytes}))
           (i32.store8 offset=16 (i32.add (local.get $list) (i32.mul (local.get $i) (i32.const 28))) (i32.const 0))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br_if $each (i32.lt_u (local.get $i) (i32.const {events}))))
         (i32.store8 (i32.const 16) (i32.const 0))
         (i32.store (i32.const 20) (local.get $list))
         (i32.store (i32.const 24) (i32.const {events}))
         (i32.const 16)",
        quote = body_bytes - 2,
        brace = body_bytes - 1,
        list_at = (body_bytes + 3) & !3,
    );
    component("", "", &attack, "", "")
}
