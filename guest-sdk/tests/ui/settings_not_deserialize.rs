// Settings come from the table's JSON, so they must implement `Deserialize`.

use relay_sdk::{Event, Record, Transform, TransformError};

pub struct Settings {
    pub event_type: String,
}

pub struct OrderPaid;

impl Transform for OrderPaid {
    type Settings = Settings;
    fn new(_: Settings) -> Result<Self, TransformError> {
        Ok(OrderPaid)
    }
    fn transform(&self, _: &Record) -> Result<Vec<Event>, TransformError> {
        Ok(vec![])
    }
}

relay_sdk::export_transform!(OrderPaid);

fn main() {}
