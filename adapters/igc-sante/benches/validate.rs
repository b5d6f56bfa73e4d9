//! Card validations per second (helper A writes this benchmark).
fn main() {}
