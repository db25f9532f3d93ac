//! reinit: a tiny init for containers. `main` parses the command line, sets up logging and
//! runs the event loop; it is the only place the process ends.
#![deny(unsafe_code)]

mod change;
mod child;
mod cli;
mod config;
mod content;
mod event_loop;
mod http;
mod http_side;
mod logging;
mod metrics;
mod procfs;
mod ready;
mod reap;
mod retry;
mod siblings;
mod signals;
mod sockets;
mod supervisor;
mod sys;
mod time;
mod validate;
mod watch;

use clap::Parser;
use std::io::Write;

/// Exit status for usage errors (nothing was started).
const USAGE: u8 = 2;

fn init_logging(filter: &str) {
    env_logger::Builder::new()
        .parse_filters(filter)
        .target(env_logger::Target::Stderr)
        .format(|buf, record| {
            let level = match record.level() {
                log::Level::Error => "error: ",
                log::Level::Warn => "warning: ",
                log::Level::Info => "",
                log::Level::Debug => "debug: ",
                log::Level::Trace => "trace: ",
            };
            writeln!(buf, "reinit: {level}{}", record.args())
        })
        .init();
}

fn run() -> u8 {
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        // --help and --version print to stdout and succeed.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            let _ = std::io::stdout().flush();
            return 0;
        }
        Err(e) => {
            eprintln!("reinit: error: {}", cli::clap_error_line(&e));
            return USAGE;
        }
    };
    let raw = args.resolve(&|name| std::env::var_os(name));
    let reinit_log = std::env::var("REINIT_LOG").ok();
    let config = match config::build(raw, reinit_log) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("reinit: error: {e}");
            return USAGE;
        }
    };
    init_logging(&config.log_filter);
    match event_loop::run(config) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e}");
            e.exit_code()
        }
    }
}

fn main() {
    let code = run();
    sys::exit(code)
}
