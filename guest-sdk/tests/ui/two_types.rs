// One component exports one transform.

use relay_sdk::{Event, Record, Transform, TransformError};

pub struct A;
pub struct B;

impl Transform for A {
    type Settings = ();
    fn new(_: ()) -> Result<Self, TransformError> {
        Ok(A)
    }
    fn transform(&self, _: &Record) -> Result<Vec<Event>, TransformError> {
        Ok(vec![])
    }
}

impl Transform for B {
    type Settings = ();
    fn new(_: ()) -> Result<Self, TransformError> {
        Ok(B)
    }
    fn transform(&self, _: &Record) -> Result<Vec<Event>, TransformError> {
        Ok(vec![])
    }
}

relay_sdk::export_transform!(A, B);

fn main() {}
