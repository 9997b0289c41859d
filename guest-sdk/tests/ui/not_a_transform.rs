// A type that does not implement `Transform` cannot be exported.

pub struct OrderPaid;

relay_sdk::export_transform!(OrderPaid);

fn main() {}
