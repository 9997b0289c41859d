//! The parked-items registry: which items have something parked, so that an
//! item's newer changes wait behind its parked ones across batches, and
//! re-drive publishes an item's parked units strictly in stream order across
//! runs.
//!
//! The protocol (every step is safe to repeat, and a crash between two steps
//! loses nothing):
//! - parking registers a unit *before* sending it to the queue; if the send
//!   fails, the unit stays registered (its record is reported back to Lambda,
//!   delivered again and parked again), so none of the item's later parked
//!   units can go first meanwhile;
//! - each batch looks up its items; an item with registered units has its
//!   events parked behind them, never published;
//! - re-drive publishes an item's message only when its unit is the item's
//!   lowest registered one, then unregisters the unit, then deletes the
//!   message. A message whose unit is not registered (any more) was already
//!   delivered: it is a duplicate.
//!
//! [`DynamoRegistry`] keeps one DynamoDB row per item with parked units
//! (`item` = table/key; an attribute `u:<unit>` per unit holding when it was
//! registered; a version `v`, bumped by every change, so the row is deleted
//! only when no unit was registered since it was read), plus one counter
//! row per table (`#parked/<table>`, attribute `n`), an upper bound of the
//! table's registered units: a batch whose tables count zero needs no
//! per-item lookup, which is the common case.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata as _};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use futures_util::StreamExt as _;
use tokio::time::timeout_at;

use super::UnitId;

/// A unit in the registry, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The unit.
    pub unit: UnitId,
    /// When it was registered, in milliseconds since the Unix epoch.
    pub since_ms: u64,
}

/// The registry could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The store refused or could not be reached.
    #[error("the parked-items registry is unavailable: {0}")]
    Unavailable(String),
    /// The invocation's deadline came first.
    #[error("the invocation deadline came before the parked-items registry answered")]
    Deadline,
}

/// Which items have parked units.
#[async_trait::async_trait]
pub trait Registry: Send + Sync {
    /// Where the registry is, for logs.
    fn location(&self) -> &str;

    /// The registered units, in stream order, of those of `items` that have
    /// any. An item missing from the answer has nothing parked.
    async fn lookup(
        &self,
        items: &[&str],
        deadline: Instant,
    ) -> Result<HashMap<String, Vec<Registered>>, RegistryError>;

    /// Registers `units` of `item` (before they are parked). Registering a
    /// unit again is harmless.
    async fn register(
        &self,
        item: &str,
        units: &[UnitId],
        deadline: Instant,
    ) -> Result<(), RegistryError>;

    /// Unregisters `units` of `item` (once delivered, or when parking them
    /// failed). Unregistering an unknown unit is harmless.
    async fn unregister(
        &self,
        item: &str,
        units: &[UnitId],
        deadline: Instant,
    ) -> Result<(), RegistryError>;
}

/// The table part of an item (`orders/{"id":"a"}` → `orders`).
pub fn item_table(item: &str) -> &str {
    item.split_once('/').map_or(item, |(table, _)| table)
}

/// The registry in a DynamoDB table with a string partition key `item`.
pub struct DynamoRegistry {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// Keys per BatchGetItem request.
const BATCH_GET_KEYS: usize = 100;
/// BatchGetItem requests in flight at once.
const GETS_IN_FLIGHT: usize = 8;
/// Units per UpdateItem (the update expression is limited to 4 KB).
const UNITS_PER_UPDATE: usize = 200;
const UNIT_PREFIX: &str = "u:";

impl DynamoRegistry {
    /// The registry in DynamoDB table `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        DynamoRegistry { client, table }
    }

    fn key(item: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("item".to_owned(), AttributeValue::S(item.to_owned()))])
    }

    fn counter(table: &str) -> String {
        format!("#parked/{table}")
    }

    fn unavailable<E: std::error::Error>(what: &str, error: E) -> RegistryError {
        RegistryError::Unavailable(format!("{what}: {}", DisplayErrorContext(&error)))
    }

    /// Strongly consistent BatchGetItem of `items`, retrying unprocessed keys.
    async fn get_rows(
        &self,
        items: Vec<String>,
        deadline: Instant,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, RegistryError> {
        let chunks: Vec<Vec<String>> = items
            .chunks(BATCH_GET_KEYS)
            .map(<[String]>::to_vec)
            .collect();
        let answers: Vec<Result<Vec<HashMap<String, AttributeValue>>, RegistryError>> =
            futures_util::stream::iter(chunks)
                .map(|chunk| self.get_chunk(chunk, deadline))
                .buffer_unordered(GETS_IN_FLIGHT)
                .collect()
                .await;
        let mut rows = Vec::new();
        for answer in answers {
            rows.extend(answer?);
        }
        Ok(rows)
    }

    async fn get_chunk(
        &self,
        items: Vec<String>,
        deadline: Instant,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, RegistryError> {
        let mut keys: Vec<HashMap<String, AttributeValue>> =
            items.iter().map(|i| Self::key(i)).collect();
        let mut rows = Vec::new();
        for round in 0u32.. {
            if round > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20 << round.min(5))).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .expect("keys are set");
            let call = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send();
            let out = timeout_at(deadline.into(), call)
                .await
                .map_err(|_| RegistryError::Deadline)?
                .map_err(|e| Self::unavailable("BatchGetItem failed", e))?;
            if let Some(found) = out.responses().and_then(|r| r.get(&self.table)) {
                rows.extend(found.iter().cloned());
            }
            keys = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if keys.is_empty() {
                break;
            }
        }
        Ok(rows)
    }

    async fn add_to_counter(
        &self,
        table: &str,
        delta: i64,
        deadline: Instant,
    ) -> Result<(), RegistryError> {
        let call = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&Self::counter(table))))
            .update_expression("ADD n :d")
            .expression_attribute_values(":d", AttributeValue::N(delta.to_string()))
            .send();
        timeout_at(deadline.into(), call)
            .await
            .map_err(|_| RegistryError::Deadline)?
            .map_err(|e| Self::unavailable("cannot update the parked count", e))?;
        Ok(())
    }
}

fn number(value: Option<&AttributeValue>) -> i64 {
    value
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The units recorded in a row.
fn units_of(row: &HashMap<String, AttributeValue>) -> Vec<Registered> {
    let mut units: Vec<Registered> = row
        .iter()
        .filter_map(|(name, value)| {
            let unit = UnitId::parse(name.strip_prefix(UNIT_PREFIX)?)?;
            Some(Registered {
                unit,
                since_ms: number(Some(value)).max(0) as u64,
            })
        })
        .collect();
    units.sort_by(|a, b| a.unit.cmp(&b.unit));
    units
}

#[async_trait::async_trait]
impl Registry for DynamoRegistry {
    fn location(&self) -> &str {
        &self.table
    }

    async fn lookup(
        &self,
        items: &[&str],
        deadline: Instant,
    ) -> Result<HashMap<String, Vec<Registered>>, RegistryError> {
        let mut by_table: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for item in items {
            by_table.entry(item_table(item)).or_default().push(item);
        }
        let counters = self
            .get_rows(
                by_table.keys().map(|t| Self::counter(t)).collect(),
                deadline,
            )
            .await?;
        let mut wanted = Vec::new();
        for row in &counters {
            if number(row.get("n")) <= 0 {
                continue;
            }
            let Some(Ok(key)) = row.get("item").map(AttributeValue::as_s) else {
                continue;
            };
            if let Some(items) = key.strip_prefix("#parked/").and_then(|t| by_table.get(t)) {
                wanted.extend(items.iter().map(|i| (*i).to_owned()));
            }
        }
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        wanted.sort();
        wanted.dedup();
        let rows = self.get_rows(wanted, deadline).await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let item = row.get("item")?.as_s().ok()?.clone();
                let units = units_of(row);
                (!units.is_empty()).then_some((item, units))
            })
            .collect())
    }

    async fn register(
        &self,
        item: &str,
        units: &[UnitId],
        deadline: Instant,
    ) -> Result<(), RegistryError> {
        let table = item_table(item);
        // The counter goes up first, so it never counts less than what is
        // registered, whatever happens between the two writes.
        self.add_to_counter(table, units.len() as i64, deadline)
            .await?;
        let now = crate::unix_ms().to_string();
        let mut already = 0;
        for chunk in units.chunks(UNITS_PER_UPDATE) {
            let mut sets = Vec::new();
            let mut call = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(item)))
                .expression_attribute_values(":t", AttributeValue::N(now.clone()))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .return_values(ReturnValue::UpdatedOld);
            for (i, unit) in chunk.iter().enumerate() {
                sets.push(format!("#u{i} = :t"));
                call = call
                    .expression_attribute_names(format!("#u{i}"), format!("{UNIT_PREFIX}{unit}"));
            }
            let call = call
                .update_expression(format!("SET {} ADD v :one", sets.join(", ")))
                .send();
            let out = timeout_at(deadline.into(), call)
                .await
                .map_err(|_| RegistryError::Deadline)?
                .map_err(|e| Self::unavailable("cannot register parked units", e))?;
            already += out
                .attributes()
                .map(|old| old.keys().filter(|k| k.starts_with(UNIT_PREFIX)).count())
                .unwrap_or(0);
        }
        if already > 0 {
            // Best effort: a counter that stays too high only costs lookups.
            if let Err(e) = self
                .add_to_counter(table, -(already as i64), deadline)
                .await
            {
                tracing::debug!(item, "cannot correct the parked count: {e}");
            }
        }
        Ok(())
    }

    async fn unregister(
        &self,
        item: &str,
        units: &[UnitId],
        deadline: Instant,
    ) -> Result<(), RegistryError> {
        let mut removed = 0;
        for chunk in units.chunks(UNITS_PER_UPDATE) {
            let mut names = Vec::new();
            let mut call = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(item)))
                .condition_expression("attribute_exists(#item)")
                .expression_attribute_names("#item", "item")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .return_values(ReturnValue::AllOld);
            for (i, unit) in chunk.iter().enumerate() {
                names.push(format!("#u{i}"));
                call = call
                    .expression_attribute_names(format!("#u{i}"), format!("{UNIT_PREFIX}{unit}"));
            }
            let call = call
                .update_expression(format!("REMOVE {} ADD v :one", names.join(", ")))
                .send();
            let old = match timeout_at(deadline.into(), call).await {
                Err(_) => return Err(RegistryError::Deadline),
                Ok(Err(e))
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    break; // no row: nothing registered
                }
                Ok(Err(e)) => return Err(Self::unavailable("cannot unregister parked units", e)),
                Ok(Ok(out)) => out.attributes().cloned().unwrap_or_default(),
            };
            let before = units_of(&old);
            let ours = before.iter().filter(|r| chunk.contains(&r.unit)).count();
            removed += ours;
            if before.len() == ours {
                // Nothing left: delete the row unless a unit came meanwhile.
                let version = number(old.get("v")) + 1;
                let call = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(item)))
                    .condition_expression("v = :v")
                    .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
                    .send();
                match timeout_at(deadline.into(), call).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) if e.code() == Some("ConditionalCheckFailedException") => {}
                    Ok(Err(e)) => tracing::debug!(
                        item,
                        "cannot delete an empty registry row: {}",
                        DisplayErrorContext(&e)
                    ),
                    Err(_) => {}
                }
            }
        }
        if removed > 0 {
            // After the units are gone, so the counter never undercounts.
            if let Err(e) = self
                .add_to_counter(item_table(item), -(removed as i64), deadline)
                .await
            {
                tracing::debug!(item, "cannot lower the parked count: {e}");
            }
        }
        Ok(())
    }
}
