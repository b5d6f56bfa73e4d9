//! The configuration file (`vigie_gateway::config::Config`): any TOML text either extracts
//! or is refused with errors, and validation of what extracts never panics.
#![no_main]

use figment::Figment;
use figment::providers::{Format, Toml};
use libfuzzer_sys::fuzz_target;
use vigie_gateway::config::Config;

fuzz_target!(|text: &str| {
    match Figment::from(Toml::string(text)).extract::<Config>() {
        Ok(config) => {
            if let Err(errors) = config.validate() {
                // One line per bad key, each naming the key.
                assert!(!errors.0.is_empty(), "refused without a reason");
                for e in &errors.0 {
                    assert!(e.starts_with('`'), "error without its key: {e}");
                }
            }
        }
        Err(e) => assert!(e.count() > 0),
    }
});
