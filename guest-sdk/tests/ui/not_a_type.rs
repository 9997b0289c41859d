// The macro takes a type, not its name as a string.

relay_sdk::export_transform!("OrderPaid");

fn main() {}
