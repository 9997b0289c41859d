//! DynamoDB Streams records as Lambda delivers them, decoded to plain JSON, exactly.
//!
//! One implementation serves the host at run time and transform authors in
//! native tests. The batch is split into its records first
//! ([`split_records`], [`split_raw_records`]) and every record is decoded
//! on its own afterwards, so one bad record never spoils the others: from
//! its text in one pass ([`parse_record_text`], what the relay runs) or
//! from a parsed value ([`parse_record`]); both give the same record, or
//! the same error.
//!
//! # Layout
//!
//! In the order a batch is decoded, one file each:
//!
//! 1. `batch.rs`, the input shapes: a Lambda DynamoDB Streams event or a
//!    single stream record split into raw records ([`split_records`]), each
//!    parsed on its own ([`parse_records`]);
//! 2. `stream_record.rs`, a stream record's fields ([`parse_record`]): event
//!    name, ARN and table ([`table_from_arn`]), event id, sequence number
//!    ([`sequence_number`]), keys, images, TTL delete; `time.rs` reads its
//!    creation time; `text.rs` decodes the same straight from a record's
//!    text in one pass ([`parse_record_text`]), which is what the relay
//!    runs, and leaves anything unusual (and every error) to the tree path;
//! 3. `value.rs`, attribute values to plain JSON text ([`decode_item`],
//!    [`decode_value`]), with `number.rs` for the exact digits of numbers;
//! 4. `write.rs` ([`av`]), the other way round: attribute values for tools
//!    that make stream records;
//! 5. `error.rs`: [`DecodeError`] for a record, [`RecordError`] for a record
//!    at its position in a batch, [`InputError`] for input of neither shape.
//!
//! # Values
//!
//! | DynamoDB | plain JSON |
//! |---|---|
//! | `S` | string |
//! | `N` | number with the digits DynamoDB sent (see below) |
//! | `B` | the base64 string as received (checked to be standard, padded base64) |
//! | `BOOL` | `true` / `false` |
//! | `NULL` | `null` (the attribute value must be `{"NULL": true}`) |
//! | `M` / `L` | object / array |
//! | `SS` / `NS` / `BS` | array of strings / numbers / base64 strings |
//!
//! # Numbers
//!
//! A number never passes through `f64` or `i64`: its text is checked and
//! handed to serde_json's `arbitrary_precision` representation, so the
//! mantissa and exponent digits come out byte for byte (38-digit integers,
//! `-0.000000000000000000000000000000000000001`, `1E+130`). Accepted text is
//! an optional sign, digits with an optional fraction, and an optional
//! exponent. The representation changes only where JSON or serde_json
//! demands it, never the value:
//!
//! - the exponent marker is written `e` with an explicit sign:
//!   `1E+130` → `1e+130`, `1E130` → `1e+130`, `1e-5` stays `1e-5`
//!   (serde_json stores exponents that way);
//! - forms JSON forbids are normalized minimally: a leading `+` is dropped
//!   (`+5` → `5`), leading zeros of the integer part are dropped (`007` →
//!   `7`, `-00.5` → `-0.5`), a missing integer part becomes `0` (`.5` →
//!   `0.5`) and a dot without fraction digits is dropped (`5.` → `5`).
//!
//! DynamoDB's own limits (38 significant digits, magnitudes from 1E-130 to
//! below 1E+126) are enforced by DynamoDB when an item is written; the
//! decoder does not re-check them, so it never parks a record for a value
//! that it can carry exactly.

#[path = "write.rs"]
pub mod av;
mod batch;
mod error;
mod number;
mod stream_record;
mod text;
mod time;
mod value;

pub use batch::{not_json, parse_records, split_raw_records, split_records};
pub use error::{json_kind, DecodeError, InputError, RecordError};
pub use stream_record::{parse_record, sequence_number, table_from_arn};
pub use text::{decode_record_text, parse_record_text};
pub use value::{decode_item, decode_value};
