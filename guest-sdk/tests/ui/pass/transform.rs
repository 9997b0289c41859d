// A transform with settings, exported, then run natively on a record.

use relay_sdk::{testing, Event, Operation, Record, Transform, TransformError};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    event_type: String,
}

pub struct Echo {
    event_type: String,
}

impl Transform for Echo {
    type Settings = Settings;

    fn new(settings: Settings) -> Result<Self, TransformError> {
        Ok(Echo {
            event_type: settings.event_type,
        })
    }

    fn transform(&self, record: &Record) -> Result<Vec<Event>, TransformError> {
        Ok(vec![Event::new(&self.event_type, &record.keys)?])
    }
}

relay_sdk::export_transform!(Echo);

fn main() {
    let settings = serde_json::from_value(json!({"event_type": "orders.echo"})).unwrap();
    let echo = Echo::new(settings).unwrap();
    let record = testing::record(Operation::Insert, json!({"id": "a"}), None, None);
    let events = echo.transform(&record).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "orders.echo");
    assert_eq!(testing::body(&events[0]), json!({"id": "a"}));
}
