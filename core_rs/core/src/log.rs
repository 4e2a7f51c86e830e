//! Leveled logfmt lines on stderr from the Rust side, sharing the process's
//! level (set from Python's `server.log_level`). Quiet by default: warnings
//! and errors only until the level is raised.

use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

/// Writes `level=<l> component=<c> <fields>`; `fields` is already logfmt.
pub fn log(level: Level, component: &str, fields: &str) {
    if enabled(level) {
        eprintln!("level={} component={component} {fields}", level.name());
    }
}

/// Quotes a value for logfmt when it needs it.
pub fn quote(v: &str) -> String {
    if !v.is_empty() && v.bytes().all(|b| b > b' ' && b != b'"' && b != b'=' && b < 0x7f) {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}
