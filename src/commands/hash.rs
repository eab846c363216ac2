//! Commands of this family land here (see string.rs for the model).

use super::CommandSpec;

pub static COMMANDS: &[CommandSpec] = &[];
