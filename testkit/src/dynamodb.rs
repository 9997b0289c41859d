//! DynamoDB tables with streams on a [`Moto`] server, through DynamoDB's JSON
//! API (moto accepts unsigned requests), for the `relay poll` tests.

use serde_json::{json, Value};

use crate::moto::Moto;

impl Moto {
    /// Calls a DynamoDB operation (`CreateTable`, `PutItem`, ...) and returns
    /// the answer; panics with moto's message when it fails.
    pub fn dynamodb(&self, operation: &str, body: Value) -> Value {
        let url = self.endpoint();
        let target = format!("DynamoDB_20120810.{operation}");
        self.block_on(async move {
            let response = reqwest::Client::new()
                .post(&url)
                .header("x-amz-target", target)
                .header("content-type", "application/x-amz-json-1.0")
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, \
                     SignedHeaders=host, Signature=0",
                )
                .body(body.to_string())
                .send()
                .await
                .unwrap_or_else(|e| panic!("DynamoDB {operation}: {e}"));
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "DynamoDB {operation}: {status} {text}");
            serde_json::from_str(&text).unwrap_or(Value::Null)
        })
    }

    /// Creates `table` keyed by `order_number` (a string), with a stream of
    /// `view_type` (`NEW_AND_OLD_IMAGES`, ...) or none; returns the stream ARN.
    pub fn create_table(&self, table: &str, view_type: Option<&str>) -> Option<String> {
        let mut body = json!({
            "TableName": table,
            "KeySchema": [{"AttributeName": "order_number", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "order_number", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        });
        if let Some(view_type) = view_type {
            body["StreamSpecification"] =
                json!({"StreamEnabled": true, "StreamViewType": view_type});
        }
        let answer = self.dynamodb("CreateTable", body);
        answer["TableDescription"]["LatestStreamArn"]
            .as_str()
            .map(str::to_owned)
    }

    /// Creates a parked-items registry table (partition key `item`).
    pub fn create_registry_table(&self, table: &str) {
        self.dynamodb(
            "CreateTable",
            json!({
                "TableName": table,
                "KeySchema": [{"AttributeName": "item", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "item", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            }),
        );
    }

    /// Every row of a table, in DynamoDB JSON.
    pub fn scan(&self, table: &str) -> Vec<Value> {
        let answer = self.dynamodb("Scan", json!({"TableName": table, "ConsistentRead": true}));
        answer["Items"].as_array().cloned().unwrap_or_default()
    }

    /// The registry's item rows that still hold units: item → unit names.
    pub fn registered_units(&self, table: &str) -> std::collections::BTreeMap<String, Vec<String>> {
        self.scan(table)
            .into_iter()
            .filter_map(|row| {
                let item = row["item"]["S"].as_str()?.to_owned();
                let units: Vec<String> = row
                    .as_object()?
                    .keys()
                    .filter(|k| k.starts_with("u:"))
                    .cloned()
                    .collect();
                (!units.is_empty()).then_some((item, units))
            })
            .collect()
    }

    /// Writes an item given in DynamoDB JSON.
    pub fn put_item(&self, table: &str, item: Value) {
        self.dynamodb("PutItem", json!({"TableName": table, "Item": item}));
    }

    /// Sets the string attribute `name` of order `order` to `value`.
    pub fn set_attribute(&self, table: &str, order: &str, name: &str, value: &str) {
        self.dynamodb(
            "UpdateItem",
            json!({
                "TableName": table,
                "Key": {"order_number": {"S": order}},
                "UpdateExpression": "SET #a = :v",
                "ExpressionAttributeNames": {"#a": name},
                "ExpressionAttributeValues": {":v": {"S": value}},
            }),
        );
    }

    /// Deletes order `order`.
    pub fn delete_item(&self, table: &str, order: &str) {
        self.dynamodb(
            "DeleteItem",
            json!({"TableName": table, "Key": {"order_number": {"S": order}}}),
        );
    }
}
