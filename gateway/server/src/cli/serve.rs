//! `vigie serve`: the gateway from a configuration file, or the embedded demo (seeded, then
//! announced once the port is bound).
use std::net::SocketAddr;
use std::path::PathBuf;

use super::{demo_config, init_logs};
use crate::config::Config;

/// Runs the gateway until it is stopped; without `config`, the embedded demo.
pub(super) fn run(
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    init_logs();
    let demo = config.is_none();
    let config = match &config {
        Some(path) => {
            let mut c = Config::load(path)?;
            if let Some(l) = listen {
                c.server.listen = l;
            }
            c
        }
        None => demo_config(data_dir.as_deref(), listen)?,
    };
    let data_dir = data_dir.unwrap_or_else(|| PathBuf::from(crate::demo::DEFAULT_DATA_DIR));
    actix_web::rt::System::new().block_on(async move {
        let metrics = crate::wiring::build::install_metrics()?;
        let state = crate::wiring::build::build_state(config, metrics).await?;
        let announce = if demo {
            let d = crate::demo::seed(&state.config, &data_dir, state.ports.directory.as_ref()).await?;
            crate::demo::grant_roles(state.ports.directory.as_ref(), state.ports.roles.as_ref()).await?;
            crate::demo::bind_demo_cpe(&data_dir, state.ports.directory.as_ref(), state.ports.cards.as_ref()).await?;
            crate::sponsorship::demo::seed_demo(&state.ports, &d).await?;
            Some(d)
        } else {
            None
        };
        crate::wiring::serve::serve(state, move |state| {
            if let Some(description) = announce {
                // demo.json and the banner appear once the port is ours: a script waiting
                // for them never talks to another process on that port.
                let path = crate::demo::describe(&data_dir, &description)?;
                println!("{}", crate::demo::banner(&state.config, &path));
            }
            Ok(())
        })
        .await
    })
}
