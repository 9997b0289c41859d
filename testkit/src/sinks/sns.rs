//! `FakeSns`: Amazon SNS's `PublishBatch` as `aws-sdk-sns` sends it:
//! awsQuery, `POST /`, a form body `Action=PublishBatch&Version=2010-03-31&
//! TopicArn=...&PublishBatchRequestEntries.member.N.Id=...` (`.Message`,
//! `.Subject`, `.MessageStructure`, `.MessageDeduplicationId`,
//! `.MessageGroupId`, `.MessageAttributes.entry.M.Name` /
//! `.Value.DataType` / `.Value.StringValue` / `.Value.BinaryValue`); answers
//! in XML (`PublishBatchResponse` / `ErrorResponse`). A topic ARN ending in
//! `.fifo` is a FIFO topic.
//!
//! Order of checks:
//! 1. the behaviour is chosen (see [the module docs](super));
//! 2. the operation: another `Action` gets 400 `InvalidAction`;
//! 3. an injected whole-request error (SNS's throttling code is `Throttling`,
//!    "Rate exceeded");
//! 4. the entries: none → `EmptyBatchRequest`; more than 10 →
//!    `TooManyEntriesInBatchRequest`; two with one `Id` →
//!    `BatchEntryIdsNotDistinct`; an `Id` not of 1 to 80 alphanumerics,
//!    hyphens and underscores → `InvalidBatchEntryId` (all 400, the whole
//!    request);
//! 5. the total size, each message's UTF-8 bytes plus each attribute's name,
//!    data type and value, over
//!    [`max_batch_bytes`](FakeSns::max_batch_bytes) (the topic's
//!    `MaximumMessageSize`: 256 KiB by default, up to 1 MiB) → 400
//!    `BatchRequestTooLong`;
//! 6. FIFO topics: an entry without `MessageGroupId` → 400 `InvalidParameter`
//!    for the whole request (as moto answers);
//! 7. per entry (`Failed`, `SenderFault` true): a FIFO entry without
//!    `MessageDeduplicationId` on a topic without content-based
//!    deduplication ([`content_based_deduplication`](FakeSns::content_based_deduplication))
//!    → `InvalidParameter`;
//! 8. per entry: injected failures (`SenderFault` is false for codes starting
//!    with `Internal`, true otherwise);
//! 9. the rest are `Successful` (`Id`, `MessageId`, and `SequenceNumber` on
//!    FIFO topics) and accepted; on a FIFO topic a deduplication id seen
//!    before (in the fake's life, not only 5 minutes) is answered with the
//!    first message's ids and not accepted again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::server::Response;
use super::{Core, EntryFailure, Handled, Keyed, Plan};
use crate::nakadi::Request;

const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// A message attribute as sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnsAttribute {
    /// `DataType`: `String`, `Number`, `Binary`, `String.Array`, ...
    pub data_type: String,
    /// `StringValue`.
    pub string_value: Option<String>,
    /// `BinaryValue`, base64-decoded.
    pub binary_value: Option<Vec<u8>>,
}

/// One `PublishBatch` entry as the fake read it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnsMessage {
    /// `TopicArn` of the request.
    pub topic_arn: String,
    /// The batch entry's `Id`.
    pub id: String,
    /// `Message`.
    pub message: String,
    /// `Subject`.
    pub subject: Option<String>,
    /// `MessageStructure`.
    pub message_structure: Option<String>,
    /// `MessageGroupId`.
    pub group_id: Option<String>,
    /// `MessageDeduplicationId`.
    pub dedup_id: Option<String>,
    /// `MessageAttributes` by name.
    pub attributes: BTreeMap<String, SnsAttribute>,
    /// The `MessageId` answered (accepted entries only).
    pub message_id: Option<String>,
    /// The `SequenceNumber` answered (accepted entries of FIFO topics).
    pub sequence_number: Option<String>,
}

impl Keyed for SnsMessage {
    /// The batch entry's `Id`.
    fn key(&self) -> Option<&str> {
        Some(&self.id)
    }
}

impl SnsMessage {
    /// The size SNS counts: the message plus each attribute's name, data
    /// type and value, in bytes.
    pub fn size(&self) -> usize {
        self.message.len()
            + self
                .attributes
                .iter()
                .map(|(name, a)| {
                    name.len()
                        + a.data_type.len()
                        + a.string_value.as_deref().map_or(0, str::len)
                        + a.binary_value.as_deref().map_or(0, <[u8]>::len)
                })
                .sum::<usize>()
    }

    /// The message parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.message).ok()
    }
}

#[derive(Debug)]
struct Settings {
    max_batch_bytes: usize,
    content_based_deduplication: bool,
    sequence: u64,
    /// `(topic, dedup id)` → `(message id, sequence number)`.
    seen: HashMap<(String, String), (String, String)>,
}

/// A fake SNS on `127.0.0.1` (random port); stops on drop. Any topic ARN is
/// accepted.
pub struct FakeSns {
    core: Core<SnsMessage>,
    settings: Arc<Mutex<Settings>>,
}

impl std::fmt::Debug for FakeSns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSns").field("url", &self.url()).finish()
    }
}

/// The default maximum batch size: 256 KiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 256 * 1024;

impl FakeSns {
    /// Starts a healthy fake. Panics if it cannot listen.
    pub fn start() -> FakeSns {
        let settings = Arc::new(Mutex::new(Settings {
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            content_based_deduplication: false,
            sequence: 0,
            seen: HashMap::new(),
        }));
        let core = {
            let settings = settings.clone();
            Core::start("fake-sns", move |request, plan| {
                publish_batch(request, plan, &settings)
            })
        };
        FakeSns { core, settings }
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The topic's `MaximumMessageSize`, the limit of a batch's total size
    /// (default [`DEFAULT_MAX_BATCH_BYTES`]).
    pub fn max_batch_bytes(&self, bytes: usize) {
        self.settings().max_batch_bytes = bytes;
    }

    /// Whether FIFO topics deduplicate by content (a SHA-256 of the message)
    /// when an entry has no `MessageDeduplicationId` (default false: such
    /// entries fail).
    pub fn content_based_deduplication(&self, on: bool) {
        self.settings().content_based_deduplication = on;
    }

    super::common_methods!(SnsMessage);
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// An awsQuery error answer, as the SDK parses it (`code()`, `message()`).
fn xml_error(status: u16, code: &str, message: &str) -> Response {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{kind}</Type><Code>{}</Code>\
         <Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        xml_escape(code),
        xml_escape(message),
        super::request_id()
    );
    Response::new(status, "text/xml", body.into_bytes())
}

/// The entries of a `PublishBatch` form, in member order.
fn parse_entries(form: &[(String, String)], topic: &str) -> Vec<SnsMessage> {
    let mut members: BTreeMap<usize, SnsMessage> = BTreeMap::new();
    let mut attributes: BTreeMap<(usize, usize), (String, SnsAttribute)> = BTreeMap::new();
    for (key, value) in form {
        let Some(rest) = key.strip_prefix("PublishBatchRequestEntries.member.") else {
            continue;
        };
        let Some((n, field)) = rest.split_once('.') else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else { continue };
        let entry = members.entry(n).or_default();
        let value = value.clone();
        match field {
            "Id" => entry.id = value,
            "Message" => entry.message = value,
            "Subject" => entry.subject = Some(value),
            "MessageStructure" => entry.message_structure = Some(value),
            "MessageDeduplicationId" => entry.dedup_id = Some(value),
            "MessageGroupId" => entry.group_id = Some(value),
            other => {
                let Some(attr) = other.strip_prefix("MessageAttributes.entry.") else {
                    continue;
                };
                let Some((m, part)) = attr.split_once('.') else {
                    continue;
                };
                let Ok(m) = m.parse::<usize>() else { continue };
                let (name, attribute) = attributes.entry((n, m)).or_default();
                match part {
                    "Name" => *name = value,
                    "Value.DataType" => attribute.data_type = value,
                    "Value.StringValue" => attribute.string_value = Some(value),
                    "Value.BinaryValue" => {
                        attribute.binary_value = base64::engine::general_purpose::STANDARD
                            .decode(&value)
                            .ok()
                    }
                    _ => {}
                }
            }
        }
    }
    for ((n, _), (name, attribute)) in attributes {
        if let Some(entry) = members.get_mut(&n) {
            entry.attributes.insert(name, attribute);
        }
    }
    members
        .into_values()
        .map(|mut entry| {
            entry.topic_arn = topic.to_owned();
            entry
        })
        .collect()
}

fn valid_id(id: &str) -> bool {
    (1..=80).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn publish_batch(
    request: &Request,
    plan: &Plan<SnsMessage>,
    settings: &Mutex<Settings>,
) -> Handled<SnsMessage> {
    let form: Vec<(String, String)> = form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let action = field("Action").unwrap_or_default();
    let refuse = |status, code: &str, message: &str, entries| {
        Handled::refused(
            &action,
            xml_error(status, code, message),
            Some(code),
            entries,
        )
    };
    if action != "PublishBatch" || request.method != "POST" {
        let message = format!("action {action:?} is not supported by FakeSns");
        return refuse(400, "InvalidAction", &message, Vec::new());
    }
    let topic = field("TopicArn").unwrap_or_default();
    let entries = parse_entries(&form, &topic);
    if let Some((status, code, message)) = &plan.error {
        return refuse(*status, code, message, entries);
    }
    if entries.is_empty() {
        let message = "The batch request doesn't contain any entries.";
        return refuse(400, "EmptyBatchRequest", message, entries);
    }
    if entries.len() > 10 {
        let message = "The batch request contains more entries than permissible.";
        return refuse(400, "TooManyEntriesInBatchRequest", message, entries);
    }
    let mut ids = std::collections::HashSet::new();
    if !entries.iter().all(|e| ids.insert(e.id.as_str())) {
        let message = "Two or more batch entries in the request have the same Id.";
        return refuse(400, "BatchEntryIdsNotDistinct", message, entries);
    }
    if let Some(bad) = entries.iter().find(|e| !valid_id(&e.id)) {
        let message = format!(
            "The Id of a batch entry in a batch request doesn't abide by the specification: {:?}",
            bad.id
        );
        return refuse(400, "InvalidBatchEntryId", &message, entries);
    }
    let mut settings = settings.lock().unwrap_or_else(|e| e.into_inner());
    let total: usize = entries.iter().map(SnsMessage::size).sum();
    if total > settings.max_batch_bytes {
        let message = format!(
            "The length of all the batch messages put together is more than the limit: \
             {total} bytes > {} bytes.",
            settings.max_batch_bytes
        );
        return refuse(400, "BatchRequestTooLong", &message, entries);
    }
    let fifo = topic.ends_with(".fifo");
    if fifo && entries.iter().any(|e| e.group_id.is_none()) {
        let message = "Invalid parameter: The MessageGroupId parameter is required for FIFO topics";
        return refuse(400, "InvalidParameter", message, entries);
    }

    let mut successful = String::new();
    let mut failed_xml = String::new();
    let mut accepted = Vec::new();
    let mut failed = 0;
    for (position, entry) in entries.iter().enumerate() {
        let dedup = match (&entry.dedup_id, settings.content_based_deduplication) {
            (Some(id), _) => Some(id.clone()),
            (None, true) => Some(format!("{:x}", Sha256::digest(entry.message.as_bytes()))),
            (None, false) => None,
        };
        let failure = if fifo && dedup.is_none() {
            Some((
                "InvalidParameter".to_owned(),
                "Invalid parameter: The topic should either have ContentBasedDeduplication \
                 enabled or MessageDeduplicationId provided explicitly"
                    .to_owned(),
                true,
            ))
        } else {
            EntryFailure::find(&plan.fail, position, entry).map(|f| {
                let sender = !f.code.starts_with("Internal");
                (f.code.clone(), f.message.clone(), sender)
            })
        };
        if let Some((code, message, sender)) = failure {
            failed += 1;
            failed_xml.push_str(&format!(
                "<member><Id>{}</Id><Code>{}</Code><Message>{}</Message>\
                 <SenderFault>{sender}</SenderFault></member>",
                xml_escape(&entry.id),
                xml_escape(&code),
                xml_escape(&message)
            ));
            continue;
        }
        let duplicate = dedup
            .as_ref()
            .filter(|_| fifo)
            .and_then(|d| settings.seen.get(&(topic.clone(), d.clone())).cloned());
        let (message_id, sequence) = match duplicate {
            Some(ids) => ids,
            None => {
                settings.sequence += 1;
                let ids = (
                    uuid::Uuid::new_v4().to_string(),
                    format!("{:020}", 10_000_000_000_000_000u64 + settings.sequence),
                );
                if let (true, Some(d)) = (fifo, &dedup) {
                    settings
                        .seen
                        .insert((topic.clone(), d.clone()), ids.clone());
                }
                let mut entry = entry.clone();
                entry.message_id = Some(ids.0.clone());
                entry.sequence_number = fifo.then(|| ids.1.clone());
                accepted.push(entry);
                ids
            }
        };
        let sequence = match fifo {
            true => format!("<SequenceNumber>{sequence}</SequenceNumber>"),
            false => String::new(),
        };
        successful.push_str(&format!(
            "<member><Id>{}</Id><MessageId>{message_id}</MessageId>{sequence}</member>",
            xml_escape(&entry.id)
        ));
    }
    let body = format!(
        "<PublishBatchResponse xmlns=\"{XMLNS}\"><PublishBatchResult>\
         <Successful>{successful}</Successful><Failed>{failed_xml}</Failed>\
         </PublishBatchResult><ResponseMetadata><RequestId>{}</RequestId>\
         </ResponseMetadata></PublishBatchResponse>",
        super::request_id()
    );
    Handled {
        response: Response::new(200, "text/xml", body.into_bytes()),
        operation: action,
        error_code: None,
        entries,
        accepted,
        failed,
    }
}
