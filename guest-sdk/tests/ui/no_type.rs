// The macro needs the type to export.

relay_sdk::export_transform!();

fn main() {}
